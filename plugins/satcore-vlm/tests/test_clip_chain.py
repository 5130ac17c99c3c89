"""``clip-zeroshot`` (a tiny random CLIP) → ``clip-labels`` through ``satcore.run``: the recognition block."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from satcore.testing import run_pipeline

pytest.importorskip("open_clip")
pytest.importorskip("satcore_clip")  # the CLIP plugin (installed beside this one in CI)
CLASSES = ["parking", "forest", "river", "beach"]


@pytest.fixture
def tiny_clip_alias(tmp_path, monkeypatch):
    """The CLIP plugin's tiny architecture under the alias ``tiny-clip-a`` (random weights, offline)."""
    import open_clip
    import torch
    import yaml
    from satcore_clip.testing import TINY_CFG, TINY_NAME, TINY_PRE

    from satcore.registry import get_registry

    cfg = tmp_path / f"{TINY_NAME}.json"
    cfg.write_text(json.dumps(TINY_CFG))
    open_clip.add_model_config(str(cfg))
    models = tmp_path / "models"
    (models / "tiny-clip-a").mkdir(parents=True)
    torch.manual_seed(1)
    torch.save(open_clip.create_model(TINY_NAME, pretrained=None).state_dict(),
               models / "tiny-clip-a" / "model.pt")
    reg = tmp_path / "user-registry.yaml"
    reg.write_text(yaml.safe_dump({"models": {"tiny-clip-a": {
        "family": "open_clip", "architecture": TINY_NAME, "model_cfg": TINY_CFG, "load": {"strict": True},
        "preprocess": TINY_PRE, "licence": "test only"}}}))
    for k, v in {"SATCORE_MODELS": models, "SATCORE_REGISTRY": reg, "SATCORE_HOME": tmp_path / "home",
                 "HF_HUB_CACHE": tmp_path / "hf", "HF_HUB_OFFLINE": "1"}.items():
        monkeypatch.setenv(k, str(v))
    get_registry(refresh=True)
    yield "tiny-clip-a"
    monkeypatch.undo()
    get_registry(refresh=True)


def _as_list(v):
    return json.loads(v) if isinstance(v, str) else list(v)


def test_clip_zeroshot_then_clip_labels_recognition_matches_sklearn(tmp_path: Path, tiny_clip_alias,
                                                                    scenes_manifest):
    from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support

    spec = {"source": {"type": "manifest", "path": str(scenes_manifest)},
            "steps": [{"id": "probs", "type": "clip-zeroshot", "model": tiny_clip_alias, "classes": CLASSES},
                      {"id": "rec", "type": "clip-labels", "input": "probs", "top_k": 4}],
            "execution": {"batch_size": 3, "device": "cpu"}}
    out = run_pipeline(spec, tmp_path / "run")
    assert not out.errors
    rec = out.metrics["steps"]["rec"]["all"]["recognition"]
    truth = {r.split(",")[0]: r.split(",")[2] for r in scenes_manifest.read_text().splitlines()[1:]}
    ranked = {i: _as_list(v) for i, v in zip(out.table["item_id"], out.table["rec.labels"], strict=True)}
    ids = sorted(truth)
    y_true = [truth[i] for i in ids]
    y_pred = [ranked[i][0] for i in ids]
    assert all(sorted(ranked[i]) == sorted(CLASSES) for i in ids)  # top_k 4: every class ranked
    assert rec["items"] == 4 and rec["multilabel"] is False
    assert rec["top1"] == pytest.approx(accuracy_score(y_true, y_pred))
    assert rec["top5"] == pytest.approx(np.mean([truth[i] in ranked[i][:5] for i in ids]))
    p, r, f, _ = precision_recall_fscore_support(y_true, y_pred, average="macro", zero_division=np.nan)
    for key, ref in (("precision", p), ("recall", r), ("f1", f)):
        assert rec[key] == pytest.approx(ref, nan_ok=True), key
    pc, rc, fc, sc = precision_recall_fscore_support(y_true, y_pred, zero_division=np.nan,
                                                     labels=sorted(rec["per_class"]))
    for lab, pv, rv, fv, sv in zip(sorted(rec["per_class"]), pc, rc, fc, sc, strict=True):
        got = rec["per_class"][lab]
        assert got["support"] == sv
        assert (got["precision"] is None and np.isnan(pv)) or got["precision"] == pytest.approx(pv)
        assert got["recall"] == pytest.approx(rv) and got["f1"] == pytest.approx(np.nan_to_num(fv))
    cm = rec["confusion"]
    np.testing.assert_array_equal(cm["matrix"], confusion_matrix(y_true, y_pred, labels=cm["labels"]))
    majority = max(sorted(set(y_true)), key=y_true.count)
    assert rec["baseline"]["label"] == majority
    assert rec["baseline"]["top1"] == pytest.approx(y_true.count(majority) / len(y_true))
