"""``vlm-caption`` with ``pair:``: change captions of image pairs, offline with the tiny Qwen2-VL and BLIP.

joint: both images in one chat message, against transformers called directly with the same message;
separate + template: the template filled with the two single-image captions; bad params refused.
"""

from __future__ import annotations

import contextlib
import io

import numpy as np
import pytest
from pydantic import ValidationError

from satcore.evaluate.blocks import tokenize
from satcore.testing import run_pipeline

PROMPT = "The first image is before, the second after. Describe what changed."


@pytest.fixture
def pairs_manifest(tmp_path):
    """Three RGB pairs (before, after) with two reference change captions each."""
    from PIL import Image

    rows = ["item_id,a,b,captions"]
    for i in range(3):
        for side in "ab":
            arr = np.random.default_rng([i, ord(side)]).integers(0, 255, (40, 40, 3), dtype=np.uint8)
            Image.fromarray(arr).save(tmp_path / f"p{i}{side}.png")
        rows.append(f"p{i},p{i}a.png,p{i}b.png,a road is built|many buildings appear near the road")
    path = tmp_path / "pairs.csv"
    path.write_text("\n".join(rows) + "\n")
    return path


def _spec(manifest, step, batch_size=2):
    return {"source": {"type": "manifest", "path": str(manifest)}, "steps": [step],
            "execution": {"batch_size": batch_size, "device": "cpu"}}


def _pair_images(manifest, item_id):
    from PIL import Image

    return [Image.open(manifest.parent / f"{item_id}{s}.png").convert("RGB") for s in "ab"]


def test_joint_caption_equals_the_model_called_directly(tmp_path, tiny_qwen2vl, pairs_manifest):
    from transformers import AutoModelForImageTextToText, AutoProcessor

    out = run_pipeline(_spec(pairs_manifest, {"id": "cap", "type": "vlm-caption", "model": str(tiny_qwen2vl),
                                              "max_new_tokens": 6, "pair": {"mode": "joint"}}), tmp_path)
    assert not out.errors
    t = out.table.sort_values("item_id")
    got = list(t["cap.caption"])
    assert all(len(list(c)) == 0 for c in t["cap.captions"])  # the model saw both: no per-image captions

    model = AutoModelForImageTextToText.from_pretrained(tiny_qwen2vl).eval()
    proc = AutoProcessor.from_pretrained(tiny_qwen2vl)
    conv = [{"role": "user", "content": [{"type": "image"}, {"type": "image"},
                                         {"type": "text", "text": PROMPT}]}]
    text = proc.apply_chat_template(conv, add_generation_prompt=True, tokenize=False)
    want = []
    for item_id in t["item_id"]:  # one pair at a time: the run batches two, which must not change a caption
        inputs = proc(images=_pair_images(pairs_manifest, item_id), text=[text], return_tensors="pt")
        ids = inputs["input_ids"][0].tolist()
        vs = proc.tokenizer.convert_tokens_to_ids("<|vision_start|>")
        assert ids.count(vs) == 2  # two image placeholders, each expanded to the image's tokens
        assert ids.count(model.config.image_token_id) == 2 * 4  # 4 merged tokens per image (conftest)
        new = model.generate(**inputs, max_new_tokens=6, do_sample=False)[0, inputs["input_ids"].shape[1]:]
        want.append(proc.tokenizer.decode(new, skip_special_tokens=True).strip())
    assert got == want
    assert any(got)  # the random model says something: not a comparison of empty strings

    # the captions block scores the one caption per pair against the pair's references (BLEU-1 by coco)
    from pycocoevalcap.bleu.bleu import Bleu

    block = out.metrics["steps"]["cap"]["all"]["captions"]
    assert block["items"] == 3
    refs = ["a road is built", "many buildings appear near the road"]
    gts = {i: [" ".join(tokenize(r)) for r in refs] for i in range(3)}
    assert all(tokenize(c) for c in got)  # coco's BLEU needs a word in each caption
    res = {i: [" ".join(tokenize(c))] for i, c in enumerate(got)}
    with contextlib.redirect_stdout(io.StringIO()):
        bleu = Bleu(4).compute_score(gts, res)[0]
    assert block["bleu_1"] == pytest.approx(bleu[0], abs=1e-6)


def test_joint_captions_are_cached_and_sampled_per_item(tmp_path, monkeypatch, tiny_qwen2vl, pairs_manifest):
    from satcore_vlm.steps import VlmCaptioner

    from satcore.testing import build_component

    step = {"id": "cap", "type": "vlm-caption", "model": str(tiny_qwen2vl), "max_new_tokens": 5,
            "temperature": 3.0, "pair": {"mode": "joint"}}
    a = run_pipeline(_spec(pairs_manifest, step, batch_size=3), tmp_path / "a")
    monkeypatch.setenv("SATCORE_CACHE", str(tmp_path / "other-cache"))
    b = run_pipeline(_spec(pairs_manifest, step, batch_size=1), tmp_path / "b")
    assert list(a.table["cap.caption"]) == list(b.table["cap.caption"])  # seeded by (seed, item id)
    c = run_pipeline({**_spec(pairs_manifest, step), "seed": 1}, tmp_path / "c")
    assert list(c.table["cap.caption"]) != list(a.table["cap.caption"])

    # a second run takes every text from the cache: generate_joint is never called
    comp = build_component(VlmCaptioner, {k: v for k, v in step.items() if k not in ("id", "type")})

    def boom(*a, **k):
        raise AssertionError("generated although cached")

    comp._gen.generate_joint = boom
    from satcore.components import Batch
    from satcore.data import Item, Raster

    items = []
    for item_id in a.table["item_id"]:
        imgs = [Raster(np.transpose(np.asarray(im), (2, 0, 1)))
                for im in _pair_images(pairs_manifest, item_id)]
        items.append(Item(item_id=item_id, images=tuple(imgs)))
    cached = [o["caption"] for o in comp.process(Batch(items))]
    assert cached == list(b.table.set_index("item_id").loc[list(a.table["item_id"]), "cap.caption"])


def test_separate_with_template_fills_it_with_the_two_captions(tmp_path, tiny_blip, pairs_manifest):
    from transformers import BlipForConditionalGeneration, BlipProcessor

    tpl = "before: {before} after: {after}"
    out = run_pipeline(_spec(pairs_manifest, {"id": "cap", "type": "vlm-caption", "model": str(tiny_blip),
                                              "max_new_tokens": 8, "pair": {"mode": "separate",
                                                                            "template": tpl}}), tmp_path)
    assert not out.errors
    model = BlipForConditionalGeneration.from_pretrained(tiny_blip).eval()
    proc = BlipProcessor.from_pretrained(tiny_blip)
    t = out.table
    for item_id, caps, caption in zip(t["item_id"], t["cap.captions"], t["cap.caption"], strict=True):
        single = []
        for im in _pair_images(pairs_manifest, item_id):
            ids = model.generate(**proc(images=[im], return_tensors="pt"), max_new_tokens=8, do_sample=False)
            single.append(proc.tokenizer.decode(ids[0], skip_special_tokens=True).strip())
        assert list(caps) == single
        assert caption == f"before: {single[0]} after: {single[1]}"


def test_without_pair_nothing_changes(tmp_path, tiny_blip, pairs_manifest):
    out = run_pipeline(_spec(pairs_manifest, {"id": "cap", "type": "vlm-caption", "model": str(tiny_blip),
                                              "max_new_tokens": 4}), tmp_path)
    assert "cap.caption" not in out.table.columns
    assert all(len(list(c)) == 2 for c in out.table["cap.captions"])


def test_joint_on_a_model_without_chat_template_stops_in_setup(tmp_path, tiny_blip, pairs_manifest):
    from satcore.errors import SatcoreError

    with pytest.raises(SatcoreError) as ei:
        run_pipeline(_spec(pairs_manifest, {"id": "cap", "type": "vlm-caption", "model": str(tiny_blip),
                                            "pair": {"mode": "joint"}}), tmp_path)
    msg = str(ei.value)
    assert ei.value.exit_code == 1
    assert "pair: {mode: joint}" in msg and "no chat template" in msg and "mode: separate" in msg


def test_pair_on_a_single_scene_fails_the_item(tmp_path, tiny_blip, scenes_manifest):
    out = run_pipeline(_spec(scenes_manifest, {"id": "cap", "type": "vlm-caption", "model": str(tiny_blip),
                                               "pair": {"mode": "separate", "template": "{before}/{after}"}}),
                       tmp_path)
    assert len(out.errors) == 4 and "needs two (before, after)" in str(out.errors)


@pytest.mark.parametrize("pair, extra, match", [
    ({"mode": "joint", "template": "before: {before} after: {after}"}, {}, "drop `template`"),
    ({"mode": "separate", "template": "before: {before} then {later}"}, {}, r"\{later\}"),
    ({"mode": "separate", "template": "no fields"}, {}, "only {before} and {after}"),
    ({"mode": "separate", "template": "broken {before"}, {}, "not a format string"),
    ({"mode": "separate", "prompt": "What changed?"}, {}, "step's `prompt`"),
    ({"mode": "joint"}, {"prompt_mode": "prefix"}, "prompt_mode: prefix"),
    ({"mode": "joint"}, {"prompt": "What changed?"}, "move it to `pair.prompt`"),
    ({"mode": "both"}, {}, "separate"),
    ({"mode": "joint", "prompt": ""}, {}, "at least 1 character"),
])
def test_bad_pair_params_are_refused(pair, extra, match):
    from satcore_vlm.steps import VlmCaptionParams

    with pytest.raises(ValidationError, match=match):
        VlmCaptionParams.model_validate({"model": "blip-large", "pair": pair, **extra})


def test_good_pair_params():
    from satcore_vlm.pairs import DEFAULT_CHANGE_PROMPT, fill_template
    from satcore_vlm.steps import VlmCaptionParams

    p = VlmCaptionParams.model_validate({"pair": {"mode": "joint"}})
    assert p.pair is not None and p.pair.prompt == DEFAULT_CHANGE_PROMPT and p.pair.template is None
    assert VlmCaptionParams.model_validate({}).pair is None
    assert fill_template("{after} <- {before}", "a", "b") == "b <- a"


def test_caption_tfidf_on_a_joint_caption_says_what_to_do():
    from satcore_vlm.caption_tfidf import CaptionTfidfDetector

    from satcore.errors import ComponentError
    from satcore.testing import build_component, make_caption_items

    comp = build_component(CaptionTfidfDetector, {})
    item = make_caption_items(1)[0]
    with pytest.raises(ComponentError, match=r"pair: \{mode: joint\}.*use `pair: \{mode: separate\}`"):
        comp._pair(item, {"caption": "a road appears", "captions": []})
