"""The thesis's full feature pipeline end to end: examples/timeseries/full-features.yaml on the tiny models.

geotiff-series → band-values, cloud-probability (s2cloudless), segmentation-probs (a 4-step trained UNet),
segment-anything-point (a random tiny SAM) → var-forecast, checked against rasterio and statsmodels.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import scipy.stats
import yaml

from satcore.testing import run_pipeline

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("s2cloudless")

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "timeseries"


def _maker():
    spec = importlib.util.spec_from_file_location("make_tiny_models", EXAMPLES / "make_tiny_models.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def run(tmp_path_factory, pm_module):
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        mk = _maker()
        tmp = tmp_path_factory.mktemp("full")
        made = mk.make(tmp / "tiny")
        doc = yaml.safe_load((EXAMPLES / "full-features.yaml").read_text())
        doc["source"]["root"] = str(made["series"])
        for step in doc["steps"]:
            if step["id"] in ("seg", "sam"):
                step["model"] = str(made[step["id"]])
        doc["output"]["dir"] = str(tmp / "run")
        res = run_pipeline(doc, tmp, pm=pm_module)
    finally:
        torch.set_num_threads(n)
    return mk, made, doc, res


@pytest.fixture(scope="module")
def pm_module():
    import satcore_timeseries

    from satcore.plugins import get_plugin_manager

    pm = get_plugin_manager(fresh=True, entrypoints=False)
    pm.register_plugin(satcore_timeseries, "timeseries", "satcore-timeseries", satcore_timeseries.__version__)
    return pm


def test_the_spec_locations_are_the_makers(run):
    mk, made, doc, _res = run
    want = {d["id"]: (d["lat"], d["lon"]) for d in made["locations"]}
    got = {d["id"]: (d["lat"], d["lon"]) for d in doc["source"]["locations"]}
    assert got.keys() == want.keys() == set(mk.PLACES)
    for k in want:
        assert got[k] == pytest.approx(want[k], abs=1e-9)


def test_every_feature_reaches_the_var(run):
    _mk, _made, doc, res = run
    assert res.errors == []
    t = res.table.set_index("item_id")
    assert (t["clouds.cloud_source"] == "s2cloudless").all()
    var = next(s for s in doc["steps"] if s["id"] == "var")
    feats = var["features"]
    from satcore_timeseries.dubai import CLASSES

    every = ["B04", "B03", "B02", "cloud_prob", *(f"seg_{c}" for c in CLASSES), "seg_confidence",
             "sam_iou_pred", "sam_mask_score"]
    # all 13 columns of the four extractors but the two exact functions of the others (see the spec)
    assert feats == [f for f in every if f not in ("seg_unlabeled", "seg_confidence")]
    for f in feats:
        for col in ("rmse", "fall_in_ci", "fall_in_ci_n"):
            assert f"var.{f}_{col}" in t.columns
        assert t[f"var.{f}_fall_in_ci_n"].tolist() == [12, 12]
    art = res.output_dir / "artifacts" / "var" / "locations"
    for loc in ("steady", "broken"):
        d = json.loads((art / f"{loc}.json").read_text())
        assert d["names"] == feats
        y = np.array(d["observed"], dtype=float)
        assert y.shape == (60, len(feats)) and np.isfinite(y).all()


def _window_means(root: Path, dates: list[str], r: int, c: int) -> np.ndarray:
    """B04, B03, B02 window means straight from the files (band order of make_tiny_models.BANDS)."""
    import rasterio

    out = []
    for d in dates:
        with rasterio.open(root / f"S2_{d}.tif") as ds:
            a = ds.read([4, 3, 2])[:, r - 2:r + 3, c - 2:c + 3].astype(np.float64)
        out.append(a.reshape(3, -1).mean(1))
    return np.asarray(out)


def test_forecast_block_equals_statsmodels_and_the_break_is_flagged(run):
    from statsmodels.tsa.api import VAR

    mk, made, doc, res = run
    var = next(s for s in doc["steps"] if s["id"] == "var")
    h, alpha = var["horizon"], var["alpha"]
    t = res.table.set_index("item_id")
    art = res.output_dir / "artifacts" / "var" / "locations"
    f_all, y_all, lo_all, hi_all, aics = [], [], [], [], []
    for loc in made["locations"]:
        d = json.loads((art / f"{loc['id']}.json").read_text())
        y = np.array(d["observed"], dtype=float)
        # the band columns are what rasterio reads from the files
        np.testing.assert_allclose(y[:, :3], _window_means(made["series"], made["dates"], loc["row"],
                                                           loc["col"]), rtol=1e-5)
        train = y[:-h]
        fit = VAR(train).fit(maxlags=var["max_lags"], ic="aic")
        p, k = fit.k_ar, train.shape[1]
        fc = fit.forecast(train[len(train) - p:], h) if p else np.tile(fit.params[0], (h, 1))
        df = len(train) - p - k * p - 1
        half = scipy.stats.t.ppf(1 - alpha / 2, df) * np.sqrt(np.diag(fit.sigma_u))
        np.testing.assert_allclose(d["forecast"], fc, rtol=1e-6, atol=1e-9)
        np.testing.assert_allclose(np.array(d["upper"]) - fc, np.tile(half, (h, 1)), rtol=1e-6)
        inside = ((y[-h:] >= fc - half) & (y[-h:] <= fc + half)).mean(0)
        assert t.loc[loc["id"], "var.B04_fall_in_ci"] == pytest.approx(inside[0])
        assert t.loc[loc["id"], "var.aic"] == pytest.approx(fit.aic)
        f_all.append(fc), y_all.append(y[-h:]), lo_all.append(fc - half), hi_all.append(fc + half)
        aics.append(fit.aic)
    block = res.metrics["steps"]["var"]["all"]["forecast"]
    f, y, lo, hi = (np.concatenate(a) for a in (f_all, y_all, lo_all, hi_all))
    assert block["items"] == 2 and block["values"] == f.size
    assert block["rmse"] == pytest.approx(np.sqrt(np.mean((f - y) ** 2)), rel=1e-6)
    assert block["fall_in_ci"] == pytest.approx(np.mean((y >= lo) & (y <= hi)))
    assert block["aic"] == pytest.approx(np.mean(aics))
    # the planted break (red + BREAK_SHIFT inside the held-out dates) is flagged, the steady place is not
    assert t.loc["broken", "var.label"] == 1 and t.loc["broken", "var.flag_feature"] == "B04"
    assert t.loc["broken", "var.B04_fall_in_ci"] <= (mk.BREAK_AT - (mk.T - h)) / h
    assert t.loc["steady", "var.label"] == 0 and t.loc["steady", "var.B04_fall_in_ci"] >= 0.5
