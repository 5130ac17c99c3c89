"""One optimal threshold per metric (issue 13): ``{optimise: [f1, accuracy, recall, precision]}``."""

import json

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score

import satcore
from satcore.errors import SatcoreError

OBJECTIVES = ["f1", "accuracy", "recall", "precision"]
SK = {"f1": f1_score, "accuracy": accuracy_score, "recall": recall_score, "precision": precision_score}


def sweep(scores, labels, objective):
    """Brute force: every candidate threshold (above all, between neighbours, below all), sklearn metrics,
    ties → the highest threshold. Returns the predictions at the best threshold."""
    u = np.unique(scores)
    cands = np.sort(np.r_[u.max(), (u[:-1] + u[1:]) / 2, np.nextafter(scores.min(), -np.inf)])
    best_v, best_t = -1.0, None
    for t in cands:
        kw = {} if objective == "accuracy" else {"zero_division": 0}
        v = SK[objective](labels, (scores > t).astype(int), **kw)
        if v >= best_v:
            best_v, best_t = v, t
    return best_t, best_v


def test_by_objective_equals_a_brute_force_sklearn_sweep(tiny_env, make_spec, tmp_path):
    spec = make_spec(tmp_path)
    spec["steps"][1]["threshold"] = {"optimise": OBJECTIVES}
    res = satcore.run(spec, progress=False)
    df = res.results().dropna(subset=["change.score"])
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    train = df[df["split"] == "train"]
    s, y = train["change.score"].to_numpy(float), train["truth.change"].to_numpy(int)
    assert len(set(y)) == 2  # both classes, so the sweep means something
    for split in ("train", "test"):
        block = metrics["steps"]["change"][split]["image"]["by_objective"]
        assert list(block) == OBJECTIVES
        part = df[df["split"] == split]
        ps, py = part["change.score"].to_numpy(float), part["truth.change"].to_numpy(int)
        for obj in OBJECTIVES:
            t, v = sweep(s, y, obj)
            entry = block[obj]
            assert entry["threshold"] == pytest.approx(t, rel=1e-9)
            pred = (ps > entry["threshold"]).astype(int)
            assert np.array_equal(pred, (ps > t).astype(int))
            assert entry["accuracy"] == pytest.approx(accuracy_score(py, pred))
            for m in ("precision", "recall", "f1"):
                ref = SK[m](py, pred, zero_division=np.nan)
                want = None if np.isnan(ref) else pytest.approx(ref)
                assert entry[m] == want, (split, obj, m)
            if split == "train":
                assert entry[obj] == pytest.approx(v)
    # the step's own label is the first objective's decision
    f1_t = metrics["steps"]["change"]["train"]["image"]["by_objective"]["f1"]["threshold"]
    assert metrics["steps"]["change"]["test"]["image"]["threshold"] == pytest.approx(f1_t)
    html = (tmp_path / "run" / "report.html").read_text()
    assert "thesis-style row" in html and "mixes thresholds" in html


def test_single_objective_writes_no_by_objective(tiny_env, make_spec, tmp_path):
    satcore.run(make_spec(tmp_path), progress=False)
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert "by_objective" not in metrics["steps"]["change"]["train"]["image"]


def test_duplicate_objectives_are_refused(tiny_env, make_spec, tmp_path):
    spec = make_spec(tmp_path)
    spec["steps"][1]["threshold"] = {"optimise": ["f1", "f1"]}
    with pytest.raises(SatcoreError, match="distinct"):
        satcore.run(spec, progress=False)
