import json

import numpy as np
import pytest
from satcore_clip.delta import OptimiseThreshold, ProbabilityDeltaDetector, ProbabilityDeltaParams, delta
from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score

import satcore
from satcore.components import Batch, RunContext
from satcore.data import Item, Raster
from satcore.evaluate.threshold import optimise_threshold, threshold_curve

SK = {"f1": f1_score, "accuracy": accuracy_score, "recall": recall_score, "precision": precision_score}


def brute_force(scores, labels, objective):
    """Every way to split the sorted scores (nothing positive, everything positive, and at the midpoint of
    each pair of neighbouring distinct scores), scored with scikit-learn metrics."""
    u = np.unique(scores)
    cands = np.r_[u.max(), (u[:-1] + u[1:]) / 2, np.nextafter(scores.min(), -np.inf)]
    best_v, best_t = -1.0, None
    for t in np.sort(cands):
        kw = {} if objective == "accuracy" else {"zero_division": 0}
        v = SK[objective](labels, (scores > t).astype(int), **kw)
        if v >= best_v:  # ties → highest threshold
            best_v, best_t = v, t
    return best_t, best_v


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("objective", ["f1", "accuracy", "recall", "precision"])
def test_threshold_optimisation_equals_brute_force(seed, objective):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(5, 300))
    # rounded scores → many ties; labels correlated with scores
    scores = np.round(rng.random(n) * rng.choice([3, 10, 50]), 1) / 10
    labels = (scores + rng.normal(0, 0.2, n) > np.median(scores)).astype(int)
    if seed == 0:
        labels[:] = 1  # one class only
    t, v = optimise_threshold(scores, labels, objective)
    bt, bv = brute_force(scores, labels, objective)
    assert v == pytest.approx(bv, abs=1e-12)
    assert t == pytest.approx(bt, rel=1e-12, abs=1e-300)
    assert np.array_equal(scores > t, scores > bt)
    # a fitted threshold never sits on a training score unless it is the maximum (nothing positive)
    assert t not in set(scores) or t == scores.max()
    # and the detector's fit uses the same thresholds for all four objectives
    det = ProbabilityDeltaDetector(ProbabilityDeltaParams(threshold=OptimiseThreshold(optimise=objective)))
    summary = det.fit(list(scores), labels)
    assert det.threshold == t and summary[f"best_{objective}"]["value"] == pytest.approx(bv, abs=1e-12)


def test_curve_counts_match_sklearn_on_every_candidate():
    rng = np.random.default_rng(3)
    s = rng.integers(0, 8, 100) / 7
    y = rng.integers(0, 2, 100)
    c = threshold_curve(s, y)
    for i, t in enumerate(c.thresholds):
        pred = s > t
        assert (c.tp[i], c.fp[i], c.fn[i], c.tn[i]) == (
            int((pred & (y == 1)).sum()),
            int((pred & (y == 0)).sum()),
            int((~pred & (y == 1)).sum()),
            int((~pred & (y == 0)).sum()),
        )


def test_distances():
    p1, p2 = np.array([0.7, 0.2, 0.1]), np.array([0.1, 0.2, 0.7])
    assert delta(p1, p2, "l1") == pytest.approx(1.2)
    assert delta(p1, p2, "l2") == pytest.approx(np.sqrt(0.72))
    assert delta(p1, p2, "cosine") == pytest.approx(1 - (0.07 + 0.04 + 0.07) / (0.54))
    assert delta(p1, p1, "l1") == 0


@pytest.mark.parametrize(
    ("p1", "p2"),
    [
        ([0.7, 0.2, 0.1], [0.3, 0.3, 0.4]),  # different norms (0.735 vs 0.583)
        ([0.98, 0.01, 0.01], [0.2, 0.5, 0.3]),
        ([1.0, 0.0, 0.0, 0.0], [0.25, 0.25, 0.25, 0.25]),  # one-hot vs uniform: norms 1 and 0.5
        ([0.5, 0.5, 0.0], [0.0, 0.1, 0.9]),
    ],
)
def test_distances_against_scipy_and_numpy(p1, p2):
    from scipy.spatial import distance

    a, b = np.array(p1), np.array(p2)
    assert np.linalg.norm(a) != pytest.approx(np.linalg.norm(b), rel=0.05)  # unequal norms
    assert delta(a, b, "cosine") == pytest.approx(distance.cosine(a, b), rel=1e-12, abs=1e-15)
    assert delta(a, b, "l2") == pytest.approx(np.linalg.norm(b - a), rel=1e-12)
    assert delta(a, b, "l1") == pytest.approx(distance.cityblock(a, b), rel=1e-12)
    # symmetric, and float32 inputs (what torch gives) are computed in float64
    for dist in ("l1", "l2", "cosine"):
        assert delta(a, b, dist) == pytest.approx(delta(b, a, dist), rel=1e-12)
        assert delta(a.astype(np.float32), b.astype(np.float32), dist) == pytest.approx(
            delta(a.astype(np.float32).astype(np.float64), b.astype(np.float32).astype(np.float64), dist),
            rel=1e-12,
        )


def test_cosine_of_a_zero_vector_is_no_change():
    # scipy gives nan here; Δ is 0 (as for identical vectors), so sorting and thresholds stay defined
    assert delta(np.zeros(3), np.array([0.2, 0.3, 0.5]), "cosine") == 0.0


def _item(i):
    r = Raster(np.zeros((3, 4, 4), np.uint8))
    return Item(f"i{i}", [r, r])


def test_process_explains_rose_and_fell(tmp_path):
    det = ProbabilityDeltaDetector(
        ProbabilityDeltaParams(threshold=0.5, explain=2), RunContext(run_dir=tmp_path), "change"
    )
    classes = ("forest", "building", "road", "lake")
    inp = {"probabilities": np.array([[0.6, 0.1, 0.2, 0.1], [0.1, 0.5, 0.3, 0.1]]), "classes": classes}
    same = {"probabilities": np.array([[0.25] * 4, [0.25] * 4]), "classes": classes}
    d, s = det.process(Batch([_item(0), _item(1)], [inp, same]))
    assert d.score == pytest.approx(1.0) and d.label == 1 and d.threshold == 0.5
    assert d.extra["rose"] == "building +0.400; road +0.100" and d.extra["fell"] == "forest -0.500"
    assert s.score == 0 and s.label == 0 and s.extra["rose"] == "" and s.extra["fell"] == ""
    with pytest.raises(Exception, match="two images"):
        det.process(Batch([_item(2)], [{"probabilities": np.ones((1, 4)) / 4}]))


def test_state_round_trip(tmp_path):
    det = ProbabilityDeltaDetector(ProbabilityDeltaParams(), RunContext(run_dir=tmp_path), "change")
    det.fit([0.1, 0.2, 0.9, 1.1], np.array([0, 0, 1, 1]))
    assert det.threshold == pytest.approx(0.55)  # midway between the unchanged 0.2 and the changed 0.9
    det.save_state(det.state_path())
    other = ProbabilityDeltaDetector(ProbabilityDeltaParams(), RunContext(run_dir=tmp_path), "change")
    other.load_state(tmp_path / "fitted" / "change.json")
    assert other.threshold == det.threshold and other.state["best"]["precision"]["value"] == 1.0


def test_resume_reuses_fitted_threshold(tiny_env, make_spec, tmp_path, monkeypatch):
    spec = make_spec(tmp_path)
    satcore.run(spec, progress=False)
    path = tmp_path / "run" / "fitted" / "change.json"
    state = json.loads(path.read_text())
    state["threshold"] = 12345.0  # a value a refit could never produce
    path.write_text(json.dumps(state))

    def no_fit(*a, **k):
        raise AssertionError("refitted on resume")

    monkeypatch.setattr(ProbabilityDeltaDetector, "fit", no_fit)
    (tmp_path / "run" / "results.parquet").unlink()
    import pyarrow.parquet as pq

    parts = sorted((tmp_path / "run" / "parts").glob("part-*"))
    pq.write_table(pq.read_table(parts[0]).slice(0, 4), parts[0])  # as if the run had been interrupted
    for p in parts[1:]:
        p.unlink()
    res = satcore.run(spec, resume=True, progress=False)
    df = res.results()
    redone = df[df["change.threshold"].notna() & (df["change.threshold"] == 12345.0)]
    assert len(redone) >= 5 and (redone["change.label"] == 0).all()
    assert res.items_skipped >= 1


def test_fixed_threshold_needs_no_fit_pass_and_no_labels(tiny_env, make_spec, tmp_path, monkeypatch):
    def no_fit(*a, **k):
        raise AssertionError("a fixed threshold must not be fitted")

    monkeypatch.setattr(ProbabilityDeltaDetector, "fit", no_fit)
    spec = make_spec(tmp_path)
    spec["steps"][1]["threshold"] = 0.05
    res = satcore.run(spec, progress=False)
    assert not (tmp_path / "run" / "fitted" / "change.json").exists()
    df = res.results().dropna(subset=["change.score"])
    assert len(df) == 11 and (df["change.label"] == (df["change.score"] > 0.05).astype(int)).all()
    assert "Probability delta: change" in (tmp_path / "run" / "report.html").read_text()


def test_threshold_override_from_cli_set(tiny_env, make_spec, tmp_path):
    res = satcore.run(make_spec(tmp_path), overrides={"steps.change.threshold": 0.3}, progress=False)
    assert set(res.results()["change.threshold"].dropna()) == {0.3}


def test_fitted_best_values_are_null_with_a_reason_where_undefined():
    """No changed train item: recall (and precision/F1 where nothing is predicted) are 0/0 — stored as null
    with a reason, as scikit-learn's zero_division=nan says, never as a silent 0."""
    scores = np.array([0.1, 0.4, 0.4, 0.9])
    det = ProbabilityDeltaDetector(ProbabilityDeltaParams())
    for labels in (np.zeros(4, int), np.array([0, 1, 0, 1])):
        det.fit(list(scores), labels)
        for obj, entry in det.state["best"].items():
            pred = (scores > entry["threshold"]).astype(int)
            kw = {} if obj == "accuracy" else {"zero_division": np.nan}
            ref = SK[obj](labels, pred, **kw)
            if np.isnan(ref):
                assert entry["value"] is None and "0/0" in entry["value_reason"], (obj, entry)
            else:
                assert entry["value"] == pytest.approx(ref) and "value_reason" not in entry, (obj, entry)
    assert det.state["best"]["recall"]["value"] is not None  # the second, two-class split
    det.fit(list(scores), np.zeros(4, int))
    assert det.state["best"]["recall"]["value"] is None and det.state["best"]["accuracy"]["value"] == 1.0
