"""End to end offline through ``satcore.run`` with a tiny random BLIP: captions and recognition blocks."""

from __future__ import annotations

import json

import numpy as np
import pytest

from satcore.testing import run_pipeline


def _spec(manifest, steps):
    return {"source": {"type": "manifest", "path": str(manifest)}, "steps": steps,
            "execution": {"batch_size": 3, "device": "cpu"}}


def _direct_captions(model_dir, paths):
    """The same captions from transformers directly (the reference)."""
    from PIL import Image
    from transformers import BlipForConditionalGeneration, BlipProcessor

    model = BlipForConditionalGeneration.from_pretrained(model_dir).eval()
    proc = BlipProcessor.from_pretrained(model_dir)
    out = []
    for p in paths:  # one at a time: batching must not change a caption
        ids = model.generate(**proc(images=[Image.open(p).convert("RGB")], return_tensors="pt"),
                             max_new_tokens=12, do_sample=False)
        out.append(proc.tokenizer.decode(ids[0], skip_special_tokens=True).strip())
    return out


def test_blip_captioner_end_to_end(tmp_path, tiny_blip, scenes_manifest):
    out = run_pipeline(_spec(scenes_manifest, [
        {"id": "cap", "type": "vlm-caption", "model": str(tiny_blip), "max_new_tokens": 12}]), tmp_path)
    assert not out.errors
    caps = [json.loads(c) if isinstance(c, str) else list(c) for c in out.table["cap.captions"]]
    assert all(len(c) == 1 and isinstance(c[0], str) for c in caps)
    expected = _direct_captions(tiny_blip, [scenes_manifest.parent / f"s{i}.png" for i in range(4)])
    assert [c[0] for c in caps] == expected
    assert "captions" in json.dumps(out.metrics)
    used = out.manifest["models"] if "models" in out.manifest else json.dumps(out.manifest)
    assert "blip" in json.dumps(used)


def test_prompt_recognizer_end_to_end(tmp_path, tiny_blip, scenes_manifest):
    # the tiny model's words decide the labels: a vocabulary holding some of them gives a ranking to score
    out = run_pipeline(_spec(scenes_manifest, [
        {"id": "rec", "type": "vlm-prompt", "model": str(tiny_blip), "preset": None,
         "prompt": "Which of {labels}?", "vocabulary": ["parking", "forest", "river"],
         "multi_label": True, "max_new_tokens": 12}]), tmp_path)
    assert not out.errors
    rec = out.metrics
    assert "recognition" in json.dumps(rec)
    answers = list(out.table["rec.answer"])
    assert all(isinstance(a, str) for a in answers)


def test_sampling_is_seeded_per_item(tmp_path, tiny_blip, scenes_manifest):
    step = {"id": "cap", "type": "vlm-caption", "model": str(tiny_blip), "max_new_tokens": 8,
            "temperature": 5.0}
    a = run_pipeline(_spec(scenes_manifest, [step]), tmp_path / "a")
    b = run_pipeline({**_spec(scenes_manifest, [step]), "execution": {"batch_size": 1, "device": "cpu"}},
                     tmp_path / "b")
    assert list(a.table["cap.captions"]) == list(b.table["cap.captions"])
    c = run_pipeline({**_spec(scenes_manifest, [step]), "seed": 1}, tmp_path / "c")
    assert list(c.table["cap.captions"]) != list(a.table["cap.captions"])


def test_missing_weights_offline_names_alias_and_places(tmp_path, monkeypatch, scenes_manifest):
    from satcore.errors import SatcoreError

    monkeypatch.setenv("SATCORE_MODELS", str(tmp_path / "models"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(SatcoreError) as ei:
        run_pipeline(_spec(scenes_manifest, [{"id": "cap", "type": "vlm-caption", "model": "blip-large"}]),
                     tmp_path)
    msg = str(ei.value)
    assert "blip-large" in msg and str(tmp_path / "models") in msg
    assert "Salesforce/blip-image-captioning-large" in msg


def test_item_seed_is_stable():
    from satcore_vlm.backend import item_seed

    assert item_seed(0, "a") == item_seed(0, "a") != item_seed(0, "b") != item_seed(1, "a")
    assert 0 <= item_seed(3, "x") < 2**63
    assert np.int64(item_seed(3, "x")) >= 0


def test_chat_template_captioner_end_to_end(tmp_path, tiny_qwen2vl, scenes_manifest):
    """A Qwen2-VL-style model: the prompt goes through the model's own chat template; batched = one by one."""
    from PIL import Image
    from transformers import AutoModelForImageTextToText, AutoProcessor

    prompt = "Describe the satellite image!"
    out = run_pipeline(_spec(scenes_manifest, [
        {"id": "cap", "type": "vlm-caption", "model": str(tiny_qwen2vl), "max_new_tokens": 5}]), tmp_path)
    assert not out.errors
    got = [json.loads(c)[0] if isinstance(c, str) else list(c)[0] for c in out.table["cap.captions"]]
    model = AutoModelForImageTextToText.from_pretrained(tiny_qwen2vl).eval()
    proc = AutoProcessor.from_pretrained(tiny_qwen2vl)
    conv = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": prompt}]}]
    text = proc.apply_chat_template(conv, add_generation_prompt=True, tokenize=False)
    assert text.endswith("<|im_start|>assistant\n") and prompt in text
    expected = []
    for i in range(4):
        inputs = proc(images=[Image.open(scenes_manifest.parent / f"s{i}.png").convert("RGB")], text=[text],
                      return_tensors="pt")
        ids = model.generate(**inputs, max_new_tokens=5, do_sample=False)
        expected.append(proc.tokenizer.decode(ids[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True)
                        .strip())
    assert got == expected
    assert out.manifest and "chat" in json.dumps(out.manifest)


def test_texts_are_cached_by_model_prompt_and_image(tmp_path, monkeypatch, tiny_blip):
    from satcore_vlm.steps import VlmCaptioner

    from satcore.components import Batch
    from satcore.testing import build_component, make_caption_items

    monkeypatch.setenv("SATCORE_CACHE", str(tmp_path / "cache"))
    items = make_caption_items(3)
    comp = build_component(VlmCaptioner, {"model": str(tiny_blip), "max_new_tokens": 5})
    first = comp.process(Batch(items))

    def boom(*a, **k):
        raise AssertionError("generated although cached")

    comp._gen.generate = boom
    assert comp.process(Batch(items)) == first  # every text from the cache
    assert len(list((tmp_path / "cache" / "vlm-texts").rglob("*.json"))) == 3
    other = build_component(VlmCaptioner, {"model": str(tiny_blip), "max_new_tokens": 5, "prompt": "Other?",
                                           "prompt_mode": "prefix"})
    other._gen.generate = boom
    with pytest.raises(AssertionError, match="generated although cached"):  # another prompt: not the same key
        other.process(Batch(items))
    fresh = build_component(VlmCaptioner, {"model": str(tiny_blip), "max_new_tokens": 5, "cache": False})
    fresh._gen.generate = boom
    with pytest.raises(AssertionError):
        fresh.process(Batch(items))
