"""metrics.json is honest: scikit-learn on the written maps and the label masks gives the same numbers."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import rasterio
from sklearn.metrics import (
    accuracy_score,
    cohen_kappa_score,
    f1_score,
    jaccard_score,
    precision_score,
    recall_score,
    roc_auc_score,
)

import satcore


def _no_nan(text):
    def bad(c):
        raise AssertionError(f"{c} in metrics.json")

    return json.loads(text, parse_constant=bad)


def _truth(levir, item_id):
    with rasterio.open(levir / "label" / f"{item_id}.png") as ds:
        return (ds.read() != 0).any(axis=0)


def _maps(out, item_id):
    with rasterio.open(out / "maps" / f"{item_id}.tif") as ds:
        arr = ds.read()
        names = ds.descriptions
        dtypes = ds.dtypes
    return dict(zip(names, arr, strict=True)), dtypes


def _cva_spec(tmp_path, levir_dir, seed, evaluate):
    """CVA on the bundled LEVIR-CD sample, outputs in ``tmp_path/run``."""
    return {
        "version": 1,
        "seed": seed,
        "source": {"type": "folder-pairs", "root": str(levir_dir)},
        "steps": [{"id": "cva", "type": "cva"}],
        "output": {"dir": str(tmp_path / "run"), "report": False},
        "evaluate": evaluate,
        "execution": {"batch_size": 4},
    }


@pytest.mark.parametrize("split", [None, {"test": 0.4, "group_by": "tile"}])
def test_metrics_equal_sklearn_on_written_maps(tmp_path, levir_dir, split):
    spec = _cva_spec(tmp_path, levir_dir, 3, {"bootstrap": 200, **({"split": split} if split else {})})
    res = satcore.run(spec, progress=False)
    out = tmp_path / "run"
    m = _no_nan((out / "metrics.json").read_text())
    df = pd.read_parquet(out / "results.parquet")
    ok = df[df["error"].isna()]
    assert len(ok) == res.items_ok == 11
    splits = ["all"] if split is None else ["train", "test"]
    assert list(m["steps"]["cva"]) == splits
    for s in splits:
        rows = ok[ok["split"] == s]
        scores, preds, truths = [], [], []
        for iid in rows["item_id"]:
            bands, dtypes = _maps(out, iid)
            assert set(bands) == {"cva.score", "cva.label"} and set(dtypes) == {"float32"}
            t = _truth(levir_dir, iid)
            assert bands["cva.score"].shape == t.shape
            assert set(np.unique(bands["cva.label"])) <= {0.0, 1.0}
            scores.append(bands["cva.score"].ravel())
            preds.append(bands["cva.label"].ravel().astype(bool))
            truths.append(t.ravel())
        y, sc, p = np.concatenate(truths), np.concatenate(scores), np.concatenate(preds)
        px = m["steps"]["cva"][s]["pixel"]
        assert px["auc"] == pytest.approx(roc_auc_score(y, sc), abs=1e-9)
        assert px["f1"] == pytest.approx(f1_score(y, p), abs=1e-9)
        assert px["iou"] == pytest.approx(jaccard_score(y, p), abs=1e-9)
        assert px["precision"] == pytest.approx(precision_score(y, p), abs=1e-9)
        assert px["recall"] == pytest.approx(recall_score(y, p), abs=1e-9)
        assert px["kappa"] == pytest.approx(cohen_kappa_score(y, p), abs=1e-9)
        # image level from results.parquet
        yi, pi = rows["truth.change"].astype(int), rows["cva.label"].astype(int)
        im = m["steps"]["cva"][s]["image"]
        assert im["accuracy"] == pytest.approx(accuracy_score(yi, pi), abs=1e-12)
        if (yi + pi).sum():
            assert im["f1"] == pytest.approx(f1_score(yi, pi), abs=1e-12)
        else:
            assert im["f1"] is None and im["f1_reason"]
        # the "always change" baseline
        base = m["baseline"][s]
        assert base["image"]["accuracy"] == pytest.approx(yi.mean(), abs=1e-12)
        assert base["pixel"]["f1"] == pytest.approx(f1_score(y, np.ones_like(y)), abs=1e-9)
        assert base["pixel"]["auc"] is None and base["pixel"]["auc_reason"]
        # the per-item columns too
        for iid, f1_item in zip(rows["item_id"], rows["cva.pixel_f1"], strict=True):
            bands, _ = _maps(out, iid)
            t = _truth(levir_dir, iid)
            ref = f1_score(t.ravel(), bands["cva.label"].ravel().astype(bool), zero_division=np.nan)
            assert (pd.isna(f1_item) and np.isnan(ref)) or f1_item == pytest.approx(ref, abs=1e-9)
        # bootstrap intervals contain the point estimates
        ci = m["steps"]["cva"][s]["ci95"]
        if len(rows) >= 4:
            for k in ("auc", "f1", "iou"):
                lo, hi = ci["pixel"][k]
                assert lo <= px[k] <= hi, (s, k)
    cb = m["class_balance"]
    all_t = np.concatenate([_truth(levir_dir, i).ravel() for i in ok["item_id"]])
    assert cb["items"] == 11 and cb["pixels_changed_fraction"] == pytest.approx(all_t.mean(), abs=1e-12)
    assert cb["items_changed"] == int(ok["truth.change"].sum())


def test_ci95_equals_sklearn_bootstrap_on_written_maps(tmp_path, levir_dir, ci_reference):
    """Each split's ci95 is scikit-learn on the maps and masks, items reweighted by their Poisson weights."""
    spec = _cva_spec(tmp_path, levir_dir, 11,
                     {"bootstrap": 40, "bins": 200, "split": {"test": 0.4, "group_by": None}})
    satcore.run(spec, progress=False)
    out = tmp_path / "run"
    m = _no_nan((out / "metrics.json").read_text())
    df = pd.read_parquet(out / "results.parquet")
    for s in ("train", "test"):
        rows = df[df["error"].isna() & (df["split"] == s)]
        items = []
        for iid, y, yhat in zip(rows["item_id"], rows["truth.change"], rows["cva.label"], strict=True):
            bands, _ = _maps(out, iid)
            t, p, sc = _truth(levir_dir, iid), bands["cva.label"] > 0, bands["cva.score"]
            items.append((iid, t, p, sc, int(y), int(yhat)))
        ci = m["steps"]["cva"][s]["ci95"]
        ref_pixel, ref_image = ci_reference.intervals(items, 40, 11, 200)
        assert all(iv is not None and iv[1] > iv[0] for iv, _ in ref_pixel.values()), s  # not points
        ci_reference.check(ci, ref_pixel, ref_image)


def test_one_class_split_gives_null_with_reason(tmp_path, h, pm):
    """No item changes: AUC, recall, F1 are undefined → null with a reason, never NaN."""
    root = tmp_path / "d"
    rng = np.random.default_rng(0)
    for i in range(4):
        a = rng.integers(0, 100, (3, 16, 16), dtype=np.uint8)
        h.write_raster(root / "A" / f"x{i}.png", a)
        h.write_raster(root / "B" / f"x{i}.png", a)
        h.write_raster(root / "label" / f"x{i}.png", np.zeros((16, 16), np.uint8))
    spec = h.spec_dict(root, tmp_path / "o")
    spec["evaluate"]["bootstrap"] = 100
    satcore.run(spec, progress=False, pm=pm)
    text = (tmp_path / "o" / "metrics.json").read_text()
    m = _no_nan(text)
    px = m["steps"]["diff"]["all"]["pixel"]
    assert px["auc"] is None and px["auc_reason"] == "only one class present"
    assert px["recall"] is None and px["recall_reason"] == "no positive truth"
    assert px["f1"] is None and px["kappa"] is None and px["kappa_reason"]
    im = m["steps"]["diff"]["all"]["image"]
    assert im["accuracy"] == 1.0 and im["recall"] is None and im["recall_reason"] == "no positive truth"
    assert m["class_balance"]["items_changed"] == 0 and m["class_balance"]["pixels_changed_fraction"] == 0.0
    ci = m["steps"]["diff"]["all"]["ci95"]
    assert ci["pixel"]["f1"] is None  # no finite resample → no interval, not NaN


def test_ignore_value_and_masks_exclude_pixels(tmp_path, h, pm):
    """Pixels marked unknown are left out of the pooled counts (compare with sklearn on the valid pixels)."""
    root = tmp_path / "d"
    ids = h.make_pairs(root, 4, size=16)
    rng = np.random.default_rng(1)
    valid = {}
    for iid in ids:
        ign = (rng.random((16, 16)) < 0.3).astype(np.uint8)
        h.write_raster(root / "ignore" / f"{iid}.png", ign * 255)
        valid[iid] = ign == 0
    spec = h.spec_dict(root, tmp_path / "o")
    spec["source"]["ignore"] = "ignore"
    satcore.run(spec, progress=False, pm=pm)
    m = _no_nan((tmp_path / "o" / "metrics.json").read_text())
    ys, ps, ss = [], [], []
    for iid in ids:
        bands, _ = _maps(tmp_path / "o", iid)
        with rasterio.open(root / "label" / f"{iid}.png") as ds:
            t = ds.read(1) != 0
        v = valid[iid]
        ys.append(t[v]), ps.append(bands["diff.label"][v] > 0), ss.append(bands["diff.score"][v])
    y, p, s = map(np.concatenate, (ys, ps, ss))
    px = m["steps"]["diff"]["all"]["pixel"]
    assert px["f1"] == pytest.approx(f1_score(y, p), abs=1e-12)
    assert px["auc"] == pytest.approx(roc_auc_score(y, s), abs=1e-12)
    assert m["class_balance"]["pixels_changed_fraction"] == pytest.approx(y.mean(), abs=1e-12)
