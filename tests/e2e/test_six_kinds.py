"""Issue 16's acceptance run: a recognizer, a captioner and a generator in one spec with a change detector.

The items are georeferenced before/after pairs (a ``manifest``) carrying a change mask, class labels,
reference captions and a target raster. Every metrics block is checked against an independent reference
computed from what the run wrote (results.parquet, the generated GeoTIFFs): scikit-learn for change and
recognition, coco-caption's scorer for BLEU, numpy formulas for the spectral block.
"""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.crs import CRS
from satcore_classic.detectors import CVADetector

from satcore.data import Raster, write_geotiff
from tests.toyplugins import TOY_COMPONENTS

N = 10
LABELS = ["water", "field", "city"]  # toy-recognizer ranks them by brightness, darkest first
CRS_UTM = CRS.from_epsg(32633)


def _geo(i: int) -> Affine:
    return Affine(10.0, 0.0, 500000.0 + 1000 * i, 0.0, -10.0, 5100000.0)


@pytest.fixture
def items(tmp_path):
    rng = np.random.default_rng(16)
    root = tmp_path / "data"
    root.mkdir()
    rows = []
    for i in range(N):
        level = int(rng.integers(30, 225))
        a = np.clip(rng.normal(level, 12, (3, 16, 16)), 0, 255).astype(np.uint8)
        a[int(rng.integers(0, 3))] += 20  # a dominant colour, so captions differ
        b = a.copy()
        label = np.zeros((1, 16, 16), np.uint8)
        if i % 3:  # a planted change in two of three pairs
            b[:, 4:10, 5:12] = 255 - b[:, 4:10, 5:12]
            label[0, 4:10, 5:12] = 1
        like = Raster(a, crs=CRS_UTM, transform=_geo(i))
        write_geotiff(root / f"a{i}.tif", a, like=like)
        write_geotiff(root / f"b{i}.tif", b, like=like)
        write_geotiff(root / f"m{i}.tif", label, like=like)
        target = np.concatenate([a, a.mean(0, keepdims=True)]) + rng.normal(0, 6, (4, 16, 16))
        write_geotiff(root / f"t{i}.tif", target.astype(np.float32), like=like)
        rows.append({"item_id": f"p{i:02d}", "a": f"a{i}.tif", "b": f"b{i}.tif", "label": f"m{i}.tif",
                     "labels": LABELS[int(rng.integers(0, 3))], "target": f"t{i}.tif",
                     "captions": "a dark red scene|a bright blue scene|a green field"})
    path = root / "items.csv"
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return path, rows


def test_recognizer_captioner_generator_and_detector_in_one_spec(register_components, run_pipeline, items):
    from pycocoevalcap.bleu.bleu import Bleu
    from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support

    path, rows = items
    register_components(CVADetector, *TOY_COMPONENTS)
    out = run_pipeline({
        "source": {"type": "manifest", "path": str(path)},
        "steps": [{"id": "change", "type": "cva", "threshold": 0.5},
                  {"id": "rec", "type": "toy-recognizer", "labels": LABELS},
                  {"id": "cap", "type": "toy-captioner"},
                  {"id": "gen", "type": "toy-generator"}],
        "evaluate": {"bootstrap": 0},
        "output": {"maps": True, "report": True}})
    assert out.errors == []
    t = out.table.set_index("item_id").sort_index()
    m = out.metrics
    by_id = {r["item_id"]: r for r in rows}

    # the detector: image-level metrics against scikit-learn on the table
    y = [int(t.loc[i, "truth.change"]) for i in t.index]
    yhat = [int(v) for v in t["change.label"]]
    img = m["steps"]["change"]["all"]["image"]
    assert img["accuracy"] == pytest.approx(accuracy_score(y, yhat))
    assert img["f1"] == pytest.approx(f1_score(y, yhat))
    assert m["class_balance"]["items"] == N

    # the recognizer: top-1, macro P/R/F1 and the confusion matrix against scikit-learn
    truth = [by_id[i]["labels"] for i in t.index]
    pred = [list(v)[0] for v in t["rec.labels"]]
    assert truth != pred and accuracy_score(truth, pred) > 0  # neither trivially right nor always wrong
    rec = m["steps"]["rec"]["all"]["recognition"]
    assert rec["items"] == N
    assert rec["top1"] == pytest.approx(accuracy_score(truth, pred))
    p, r, f, _ = precision_recall_fscore_support(truth, pred, average="macro", zero_division=np.nan)
    for got, want in zip((rec["precision"], rec["recall"], rec["f1"]), (p, r, f), strict=True):
        assert got == pytest.approx(want) if want == want else got is None
    labels = rec["confusion"]["labels"]
    assert rec["confusion"]["matrix"] == confusion_matrix(truth, pred, labels=labels).tolist()

    # the captioner: BLEU against coco-caption's scorer on the captions the table holds (first image's)
    caps = {i: list(t.loc[i, "cap.captions"])[0] for i in t.index}
    refs = {i: by_id[i]["captions"].split("|") for i in t.index}
    bleu, _ = Bleu(4).compute_score(refs, {k: [v] for k, v in caps.items()}, verbose=0)
    cap = m["steps"]["cap"]["all"]["captions"]
    assert [cap[f"bleu_{k}"] for k in range(1, 5)] == pytest.approx(bleu, rel=1e-6)

    # the generator: GeoTIFFs under generated/ with the input's georeferencing and band descriptions, and the
    # spectral block equal to numpy formulas over the written rasters and the targets
    gen, tgt = [], []
    for iid in t.index:
        rel = t.loc[iid, "gen.path"]
        assert rel == f"generated/{iid}/gen.tif"
        with rasterio.open(out.output_dir / rel) as src, rasterio.open(path.parent / by_id[iid]["a"]) as a:
            assert src.crs == a.crs == CRS_UTM and src.transform == a.transform == _geo(int(iid[1:]))
            assert src.descriptions == ("red", "green", "blue", "mean")
            gen.append(src.read().reshape(4, -1).astype(np.float64))
        with rasterio.open(path.parent / by_id[iid]["target"]) as tg:
            tgt.append(tg.read().reshape(4, -1).astype(np.float64))
    g, tt = np.concatenate(gen, axis=1), np.concatenate(tgt, axis=1)
    sp = m["steps"]["gen"]["all"]["spectral"]
    assert sp["items"] == N
    assert sp["mse"] == pytest.approx(((g - tt) ** 2).mean(), rel=1e-6)
    assert sp["mae"] == pytest.approx(np.abs(g - tt).mean(), rel=1e-6)
    cos = (g * tt).sum(0) / (np.linalg.norm(g, axis=0) * np.linalg.norm(tt, axis=0))
    angle = np.degrees(np.arccos(np.clip(cos, -1, 1))).mean()
    assert sp["spectral_angle_deg"] == pytest.approx(angle, rel=1e-6)

    # change maps beside the generated files; the report shows every block
    assert sorted(p.name for p in (out.output_dir / "maps").iterdir()) == [f"{i}.tif" for i in t.index]
    html = (out.output_dir / "report.html").read_text()
    for needle in ("Recognition", "Captions", "Spectral", "rec confusion matrix"):
        assert needle in html, needle
    steps = json.loads((out.output_dir / "metrics.json").read_text())["steps"]
    assert steps.keys() == {"change", "rec", "cap", "gen"}
