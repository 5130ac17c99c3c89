"""BERTScore and CLIPScore from local folders: tiny random BERT and CLIP, against torchmetrics directly."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from satcore_vlm.scores import BertScorer, ClipScorer
from satcore_vlm.testing import tiny_bert, tiny_clip

from satcore.testing import run_pipeline

SATCORE = str(Path(sys.executable).parent / "satcore")

CAPS = ["a forest near a road", "many buildings", "parking lot with cars"]
REFS = [["a forest", "green fields near a river"], ["buildings and a road"],
        ["cars in a parking lot", "a road", "an industrial area"]]


@pytest.fixture(scope="module")
def bert_dir(tmp_path_factory):
    return tiny_bert(tmp_path_factory.mktemp("models") / "tiny-bert")


@pytest.fixture(scope="module")
def clip_dir(tmp_path_factory):
    return tiny_clip(tmp_path_factory.mktemp("models") / "tiny-clip")


def test_bertscore_equals_torchmetrics(bert_dir):
    from torchmetrics.text.bert import BERTScore

    got = BertScorer(bert_dir, "cpu").f1(CAPS, REFS)
    # torchmetrics' own loading from the folder, one reference at a time; the best over the references
    for cap, refs, g in zip(CAPS, REFS, got, strict=True):
        metric = BERTScore(model_name_or_path=str(bert_dir))
        per_ref = []
        for r in refs:
            metric.reset()
            metric.update([cap], [r])
            per_ref.append(float(metric.compute()["f1"]))
        assert g == pytest.approx(max(per_ref), abs=1e-5)
    assert len(set(np.round(got, 6))) == 3  # the scores tell the captions apart
    # another layer gives other numbers, and torchmetrics agrees on them too
    from torchmetrics.functional.text.bert import bert_score

    l1 = BertScorer(bert_dir, "cpu", num_layers=1).f1(CAPS, REFS)
    want = [max(float(bert_score([c], [r], model_name_or_path=str(bert_dir), num_layers=1)["f1"])
                for r in refs) for c, refs in zip(CAPS, REFS, strict=True)]
    assert l1 == pytest.approx(want, abs=1e-5) and l1 != pytest.approx(got, abs=1e-4)


def _clip_reference(clip_dir, images, captions):
    """torchmetrics' CLIPScore, with a shim for transformers 5 (its get_*_features return output objects)."""
    from torchmetrics.multimodal.clip_score import CLIPScore
    from transformers import CLIPModel, CLIPProcessor

    model = CLIPModel.from_pretrained(clip_dir).eval()

    class Shim:  # what torchmetrics 1.9 expects: features as tensors
        config = model.config

        def to(self, device):
            return self

        def get_image_features(self, pixel_values):
            return model.get_image_features(pixel_values=pixel_values).pooler_output

        def get_text_features(self, input_ids, attention_mask):
            return model.get_text_features(input_ids=input_ids, attention_mask=attention_mask).pooler_output

    import torch

    out = []
    for img, cap in zip(images, captions, strict=True):
        metric = CLIPScore(model_name_or_path=lambda: (Shim(), CLIPProcessor.from_pretrained(clip_dir)))
        metric.update(torch.from_numpy(img.transpose(2, 0, 1).copy()), cap)
        out.append(float(metric.compute()))
    return out


def test_clipscore_equals_torchmetrics(clip_dir):
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 255, (40, 40, 3), dtype=np.uint8) for _ in CAPS]
    got = ClipScorer(clip_dir, "cpu").scores(images, CAPS)
    assert got == pytest.approx(_clip_reference(clip_dir, images, CAPS), abs=1e-4)
    assert all(g >= 0 for g in got) and len(set(np.round(got, 4))) > 1


@pytest.mark.slow  # BLIP, BERT and CLIP loaded twice (the run and the references): ~10-40 s
def test_vlm_caption_scores_feed_the_captions_block(tmp_path, tiny_blip, scenes_manifest, bert_dir, clip_dir):
    from PIL import Image

    out = run_pipeline({
        "source": {"type": "manifest", "path": str(scenes_manifest)},
        "steps": [{"id": "cap", "type": "vlm-caption", "model": str(tiny_blip), "max_new_tokens": 8,
                   "bertscore_model": str(bert_dir), "clipscore_model": str(clip_dir)}],
        "execution": {"batch_size": 3, "device": "cpu"}}, tmp_path)
    assert not out.errors
    t = out.table.sort_values("item_id")
    caps = [list(c)[0] for c in t["cap.captions"]]
    rows = [r.split(",") for r in scenes_manifest.read_text().splitlines()[1:]]
    refs = {r[0]: r[3].split("|") for r in rows}
    want_f1 = BertScorer(bert_dir, "cpu").f1(caps, [refs[i] for i in t["item_id"]])
    imgs = [np.asarray(Image.open(scenes_manifest.parent / f"{i}.png").convert("RGB")) for i in t["item_id"]]
    want_clip = _clip_reference(clip_dir, imgs, caps)
    assert list(t["cap.bertscore_f1"]) == pytest.approx(want_f1, abs=1e-5)
    assert list(t["cap.clipscore"]) == pytest.approx(want_clip, abs=1e-4)
    block = out.metrics["steps"]["cap"]["all"]["captions"]
    assert block["bertscore_f1"] == pytest.approx(np.mean(want_f1), abs=1e-5)
    assert block["clipscore"] == pytest.approx(np.mean(want_clip), abs=1e-4)


def test_missing_score_model_stops_in_setup_naming_the_setting(tmp_path, tiny_blip):
    from PIL import Image

    (tmp_path / "data" / "forest").mkdir(parents=True)
    Image.new("RGB", (16, 16), (0, 128, 0)).save(tmp_path / "data" / "forest" / "f1.png")
    spec = tmp_path / "spec.yaml"
    spec.write_text(f"version: 1\nsource: {{type: folder-classes, root: data}}\nsteps:\n"
                    f"  - {{id: c, type: vlm-caption, model: {tiny_blip}, bertscore_model: models/roberta}}\n"
                    f"output: {{dir: {tmp_path / 'out'}}}\n")
    env = dict(os.environ, SATCORE_MODELS=str(tmp_path / "models"), SATCORE_HOME=str(tmp_path / "home"),
               SATCORE_CACHE=str(tmp_path / "cache"), HF_HUB_OFFLINE="1")
    assert subprocess.run([SATCORE, "validate", str(spec)], capture_output=True, env=env).returncode == 0
    p = subprocess.run([SATCORE, "run", str(spec)], capture_output=True, text=True, env=env)
    assert p.returncode == 1, p.stderr
    assert "c.bertscore_model" in p.stderr and str(tmp_path / "models" / "roberta") in p.stderr
    assert "save_pretrained" in p.stderr and "Traceback" not in p.stderr
    # without the setting the block says how to get the score
    m = json.loads((tmp_path / "out").joinpath("metrics.json").read_text()) \
        if (tmp_path / "out" / "metrics.json").is_file() else None
    assert m is None or "bertscore_f1" not in json.dumps(m)
