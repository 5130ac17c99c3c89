"""examples/levir-tree-baselines.yaml: valid with satcore-clip; runnable with a stand-in for CLIP."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from satcore.engine import run_pipeline

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "levir-tree-baselines.yaml"
TREES = ["tree", "forest", "boosting", "xgboost"]


def test_example_validates_with_satcore_clip() -> None:
    # only this check needs the sibling plugin; everything else here runs without it
    pytest.importorskip("satcore_clip")
    import satcore

    pipe = satcore.validate(EXAMPLE)
    assert [(s.id, s.type, s.input) for s in pipe.steps] == [
        ("probs", "clip-zeroshot", "source"), ("delta", "probability-delta", "probs"),
        ("tree", "decision-tree", "probs"), ("forest", "random-forest", "probs"),
        ("boosting", "gradient-boosting", "probs"), ("xgboost", "xgboost", "probs")]


def test_example_declares_the_thesis_protocol() -> None:
    spec = yaml.safe_load(EXAMPLE.read_text())
    assert spec["evaluate"]["split"] == {"test": 0.3, "group_by": "tile"}
    assert spec["evaluate"]["augment"] == {"copies": 1, "balance": True}
    steps = {s["id"]: s for s in spec["steps"]}
    assert steps["probs"]["type"] == "clip-zeroshot" and steps["probs"]["model"] == "clip-vit-b32"
    assert steps["delta"]["threshold"] == {"optimise": "f1"}
    assert all(steps[t]["input"] == "probs" for t in TREES)


def test_example_runs_with_a_stand_in_extractor(tmp_path: Path, pm: Any) -> None:
    pytest.importorskip("xgboost")
    spec = yaml.safe_load(EXAMPLE.read_text())
    trees = [s for s in spec["steps"] if s["id"] in TREES]
    spec["steps"] = [{"id": "probs", "type": "synthetic-probs"}, *trees]
    spec["source"]["root"] = str(EXAMPLE.parent / spec["source"]["root"])
    spec["output"] = {"dir": str(tmp_path / "run"), "maps": False, "report": False}
    spec["evaluate"]["bootstrap"] = 0
    res = run_pipeline(spec, pm=pm, progress=False)
    table = res.results()
    ok = table[table["error"].isna()]
    train = ok[ok["split"] == "train"]
    assert len(train) and (ok["split"] == "test").any()
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert list(metrics["steps"]) == TREES
    for step in TREES:
        assert {"train", "test"} <= set(metrics["steps"][step])
        # augmentation: more training records than train items, copies of train items only
        assert res.manifest["fitted"][step]["items"] > len(train)
        assert (tmp_path / "run" / "fitted" / f"{step}.joblib").exists()
        assert np.all((ok[f"{step}.score"] >= 0) & (ok[f"{step}.score"] <= 1))
