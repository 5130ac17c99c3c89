"""End to end: geotiff-series → band-values → var-forecast, checked against rasterio and statsmodels."""

from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.stats
from satcore_timeseries.synthetic import geotiff_series
from statsmodels.tsa.api import VAR

from satcore.testing import run_pipeline

H = 12


def observed(root, dates, r, c) -> np.ndarray:
    """B04 and NDVI window means read straight from the files (no satcore code)."""
    import rasterio

    rows = []
    for d in dates:
        with rasterio.open(root / f"S2_{d}.tif") as ds:
            a = ds.read()[:, r - 2:r + 3, c - 2:c + 3].astype(np.float64)
        red, nir = a[2], a[3]
        rows.append([red.mean(), ((nir - red) / (nir + red)).mean()])
    return np.asarray(rows)


@pytest.fixture(scope="module")
def series(tmp_path_factory):
    return geotiff_series(tmp_path_factory.mktemp("series") / "s2", t=30, seed=0)


def spec(series, out, **var):
    locs = [{"id": k, "lat": v[0], "lon": v[1]} for k, v in series["locations"].items()]
    return {
        "source": {"type": "geotiff-series", "root": str(series["root"]), "locations": locs, "window": 5},
        "steps": [
            {"id": "bands", "type": "band-values", "bands": ["B04"], "indices": ["NDVI"]},
            {"id": "var", "type": "var-forecast", "input": ["bands"], "horizon": H, "max_lags": 3,
             "flag_features": ["NDVI"], **var},
        ],
        "output": {"dir": str(out), "report": True, "maps": False},
    }


def test_run_matches_an_independent_recomputation(series, tmp_path, pm):
    res = run_pipeline(spec(series, tmp_path / "run"), tmp_path, pm=pm)
    t = res.table.set_index("item_id")
    # the all-nodata location is one item error, nothing crashes
    assert [e["item_id"] for e in res.errors] == ["void"]
    assert res.errors[0]["step"] == "var" and "no value" in res.errors[0]["message"]
    assert t.loc["broken", "var.label"] == 1 and t.loc["steady", "var.label"] == 0

    preds, truths, los, his, aics = [], [], [], [], []
    for loc in ("broken", "steady"):
        lat, lon, r, c = series["locations"][loc]
        assert t.loc[loc, "var.lat"] == pytest.approx(lat) and t.loc[loc, "var.lon"] == pytest.approx(lon)
        y = observed(series["root"], series["dates"], r, c)
        train = y[:-H]
        fit = VAR(train).fit(maxlags=3, ic="aic")
        p = fit.k_ar
        fc = fit.forecast(train[len(train) - p:], H)
        df = len(train) - p - 2 * p - 1
        half = scipy.stats.t.ppf(0.975, df) * np.sqrt(np.diag(fit.sigma_u))
        lo, hi = fc - half, fc + half
        assert t.loc[loc, "var.lag_order"] == p and t.loc[loc, "var.aic"] == pytest.approx(fit.aic)
        inside = ((y[-H:] >= lo) & (y[-H:] <= hi)).mean(axis=0)
        assert t.loc[loc, "var.NDVI_fall_in_ci"] == pytest.approx(inside[1])
        assert t.loc[loc, "var.B04_fall_in_ci"] == pytest.approx(inside[0])
        assert t.loc[loc, "var.NDVI_fall_in_ci_n"] == H
        rmse = np.sqrt(((fc - y[-H:]) ** 2).mean(axis=0))
        assert t.loc[loc, "var.NDVI_rmse"] == pytest.approx(rmse[1], rel=1e-6)
        assert t.loc[loc, "var.score"] == pytest.approx(1 - inside[1])
        preds.append(fc), truths.append(y[-H:]), los.append(lo), his.append(hi), aics.append(fit.aic)

    block = res.metrics["steps"]["var"]["all"]["forecast"]
    f, y, lo, hi = (np.concatenate(a) for a in (preds, truths, los, his))
    assert block["items"] == 2 and block["values"] == f.size
    assert block["rmse"] == pytest.approx(np.sqrt(np.mean((f - y) ** 2)), rel=1e-6)
    assert block["fall_in_ci"] == pytest.approx(np.mean((y >= lo) & (y <= hi)))
    assert block["aic"] == pytest.approx(np.mean(aics))

    art = res.output_dir / "artifacts" / "var"
    import pandas as pd

    table = pd.read_csv(art / "table.csv")
    assert list(table["item_id"]) == ["broken", "steady"] and list(table["index"]) == [0, 1]
    want = {"lat", "lon", "NDVI_rmse", "NDVI_aic", "NDVI_fall_in_ci", "NDVI_fall_in_ci_n"}
    assert want <= set(table.columns)
    assert pd.read_parquet(art / "table.parquet").shape == table.shape

    import pyogrio
    import shapely

    meta, _fids, geom, fields = pyogrio.raw.read(art / "locations.gpkg")
    assert "4326" in meta["crs"] and meta["geometry_type"] == "Point"
    pts = shapely.from_wkb(geom)
    cols = dict(zip(meta["fields"], fields, strict=True))
    for pt, item, flag in zip(pts, cols["item_id"], cols["flag"], strict=True):
        lat, lon = series["locations"][item][:2]
        assert (pt.x, pt.y) == pytest.approx((lon, lat)) and flag == t.loc[item, "var.label"]

    report = (res.output_dir / "report.html").read_text()
    assert "thesis Figure 7" in report and "thesis Table 2" in report and report.count("<img") >= 2
    loc_doc = json.loads((art / "locations" / "broken.json").read_text())
    assert loc_doc["names"] == ["B04", "NDVI"] and len(loc_doc["forecast"]) == H


def test_in_sample_and_statsmodels_options(series, tmp_path, pm):
    res = run_pipeline(spec(series, tmp_path / "run", fall_in="in_sample", interval="statsmodels"), tmp_path,
                       pm=pm)
    t = res.table.set_index("item_id")
    p = int(t.loc["steady", "var.lag_order"])
    assert t.loc["steady", "var.NDVI_fall_in_ci_n"] == 30 - H - p  # the training dates a fit exists for
    assert 0 <= t.loc["steady", "var.NDVI_fall_in_ci"] <= 1
