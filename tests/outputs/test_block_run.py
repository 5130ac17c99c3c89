"""A run with a recognizer, a captioner and a generator: metrics.json blocks against independent references.

The test components are deterministic rules: the recognizer ranks three labels by image brightness, the
captioner fills a template with that label, the generator scales the image. The items (a ``manifest``) carry
classes, reference captions and a target raster, with truth chosen so that the rules are sometimes wrong.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest

from satcore.components import Batch, Captioner, Generator, Recognizer
from satcore.data import Raster, read_raster, write_geotiff
from satcore.evaluate.blocks import CaptionsBlock

LABELS = ("dark", "mid", "bright")
N = 12


def rule_label(img: np.ndarray) -> str:
    m = float(np.asarray(img, dtype=np.float64).mean())
    return LABELS[0] if m < 85 else LABELS[1] if m < 170 else LABELS[2]


class BrightnessRecognizer(Recognizer):
    """Ranks dark/mid/bright by the mean brightness of the image."""

    name = "test-brightness"
    consumes: ClassVar[tuple[str, ...]] = ("scene",)

    def process(self, batch: Batch) -> list[dict[str, Any]]:
        out = []
        for item in batch:
            best = rule_label(item.images[0].array)
            ranked = [best, *[lab for lab in LABELS if lab != best]]
            out.append({"labels": ranked, "scores": [0.7, 0.2, 0.1]})
        return out


class TemplateCaptioner(Captioner):
    """``a <label> scene with fields``."""

    name = "test-template"
    consumes: ClassVar[tuple[str, ...]] = ("scene",)

    def process(self, batch: Batch) -> list[dict[str, Any]]:
        return [{"captions": [f"a {rule_label(it.images[0].array)} scene with fields"]} for it in batch]


class ScaleGenerator(Generator):
    """A 3-band float raster: 0.9 × the image + 5."""

    name = "test-scale"
    consumes: ClassVar[tuple[str, ...]] = ("scene",)

    def process(self, batch: Batch) -> list[dict[str, Any]]:
        return [{"images": [it.images[0].with_array(it.images[0].array.astype(np.float32) * 0.9 + 5)]}
                for it in batch]


def generated(img: np.ndarray) -> np.ndarray:
    return img.astype(np.float64) * np.float32(0.9) + 5


@pytest.fixture
def manifest(tmp_path: Path) -> Path:
    rng = np.random.default_rng(3)
    root = tmp_path / "data"
    root.mkdir()
    rows = []
    truths = ["dark", "mid", "bright", "dark", "mid", "bright", "mid", "mid", "bright", "dark", "dark", "mid"]
    refs = {"dark": "a dark scene with fields|fields at night", "mid": "a grey scene with fields|a mid field",
            "bright": "a bright scene with fields|a bright sunny field"}
    for i in range(N):
        level = [40, 120, 220][i % 3] + int(rng.integers(-20, 20))
        img = np.clip(rng.normal(level, 10, (3, 8, 8)), 0, 255).astype(np.uint8)
        target = (img.astype(np.float32) + rng.normal(0, 8, img.shape)).astype(np.float32)
        ref = Raster(img)
        write_geotiff(root / f"img{i}.tif", img, like=ref)
        write_geotiff(root / f"tgt{i}.tif", target, like=ref)
        rows.append({"item_id": f"it{i:02d}", "a": f"img{i}.tif", "labels": truths[i],
                     "captions": refs[truths[i]], "target": f"tgt{i}.tif"})
    path = root / "items.csv"
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return path


SPEC_STEPS = [{"id": "rec", "type": "test-brightness"}, {"id": "cap", "type": "test-template"},
              {"id": "gen", "type": "test-scale"}]


def test_blocks_equal_independent_references(register_components, run_pipeline, manifest):
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

    register_components(BrightnessRecognizer, TemplateCaptioner, ScaleGenerator)
    out = run_pipeline({"source": {"type": "manifest", "path": str(manifest)}, "steps": SPEC_STEPS,
                        "output": {"report": True, "maps": False}})
    assert out.errors == []
    m = out.metrics
    assert m is not None and "class_balance" not in m and "baseline" not in m  # no change truth
    table = out.table.sort_values("item_id")
    with open(manifest, newline="") as f:
        rows = list(csv.DictReader(f))
    truth = {r["item_id"]: r["labels"] for r in rows}
    y_true = [truth[i] for i in table["item_id"]]
    y_pred = [list(v)[0] for v in table["rec.labels"]]
    assert y_true != y_pred  # the rule is wrong on some items: the metrics are not trivially 1

    rec = m["steps"]["rec"]["all"]["recognition"]
    assert rec["items"] == N
    assert rec["top1"] == pytest.approx(np.mean(np.asarray(y_true) == np.asarray(y_pred)))
    assert rec["top5"] == 1.0  # three labels, all ranked
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, average="macro", zero_division=np.nan)
    assert (rec["precision"], rec["recall"], rec["f1"]) == pytest.approx((p, r, f))
    labels = sorted(set(y_true) | set(y_pred))
    pc, rc, fc, sc = precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=np.nan)
    for k, lab in enumerate(labels):
        assert rec["per_class"][lab]["f1"] == pytest.approx(fc[k])
        assert rec["per_class"][lab]["support"] == sc[k]
    assert rec["confusion"]["labels"] == labels
    assert rec["confusion"]["matrix"] == confusion_matrix(y_true, y_pred, labels=labels).tolist()
    top = max(y_true.count(lab) for lab in y_true)
    majority = min(lab for lab in y_true if y_true.count(lab) == top)
    assert rec["baseline"]["top1"] == pytest.approx(y_true.count(majority) / N)

    # captions: the block library on the captions in results.parquet, and coco-caption's BLEU
    caps = {iid: list(c)[0] for iid, c in zip(table["item_id"], table["cap.captions"], strict=True)}
    refs = {r["item_id"]: r["captions"].split("|") for r in rows}
    block = CaptionsBlock()
    for iid in sorted(caps):
        block.add(iid, CaptionsBlock.item_record(refs[iid], caps[iid]))
    want = block.result()
    got = m["steps"]["cap"]["all"]["captions"]
    assert got == pytest.approx(want)
    from pycocoevalcap.bleu.bleu import Bleu

    bleu, _ = Bleu(4).compute_score(refs, {k: [v] for k, v in caps.items()}, verbose=0)
    assert [got[f"bleu_{k}"] for k in range(1, 5)] == pytest.approx(bleu, rel=1e-6)

    # spectral: numpy on the rasters (generated = the rule applied to the input)
    root = manifest.parent
    xs = [generated(read_raster(root / f"img{i}.tif").array) for i in range(N)]
    ts = [read_raster(root / f"tgt{i}.tif").array.astype(np.float64) for i in range(N)]
    gen_all = np.concatenate([x.reshape(3, -1) for x in xs], axis=1)
    tgt_all = np.concatenate([t.reshape(3, -1) for t in ts], axis=1)
    sp = m["steps"]["gen"]["all"]["spectral"]
    assert sp["items"] == N
    assert sp["mae"] == pytest.approx(np.abs(gen_all - tgt_all).mean(), rel=1e-6)
    assert sp["mse"] == pytest.approx(((gen_all - tgt_all) ** 2).mean(), rel=1e-6)
    cos = (gen_all * tgt_all).sum(0) / (np.linalg.norm(gen_all, axis=0) * np.linalg.norm(tgt_all, axis=0))
    assert sp["spectral_angle_deg"] == pytest.approx(np.degrees(np.arccos(np.clip(cos, -1, 1))).mean(),
                                                     rel=1e-6)

    # the report shows each block, the confusion matrix as an image, and the recognizer/captioner outputs
    html = (out.output_dir / "report.html").read_text()
    for needle in ("Recognition", "Captions", "Spectral", "rec.labels", "cap.captions", "confusion matrix",
                   "a bright scene with fields", "majority"):
        assert needle in html, needle
    assert 'alt="rec confusion matrix (all)"' in html
    assert "data:image/png;base64" in html


def test_summary_when_every_item_fails(register_components, manifest, tmp_path):
    from click.testing import CliRunner

    from satcore.cli import cli

    class Broken(Recognizer):
        """Fails on every item."""

        name = "test-broken"

        def process(self, batch: Batch) -> list[dict[str, Any]]:
            raise RuntimeError("boom")

    register_components(Broken)
    spec = tmp_path / "spec.yaml"
    spec.write_text(json.dumps({"version": 1, "source": {"type": "manifest", "path": str(manifest)},
                                "steps": [{"id": "rec", "type": "test-broken"}],
                                "output": {"dir": str(tmp_path / "run"), "report": False}}))
    res = CliRunner().invoke(cli, ["run", str(spec), "--quiet"])
    assert res.exit_code == 0, res.output
    assert "every item failed" in res.output
    assert "errors.jsonl" in res.output
    assert "no ground truth" not in res.output
    assert not (tmp_path / "run" / "metrics.json").exists()


def test_summary_prints_blocks(register_components, manifest, tmp_path):
    from click.testing import CliRunner

    from satcore.cli import cli

    register_components(BrightnessRecognizer, TemplateCaptioner, ScaleGenerator)
    spec = tmp_path / "spec.yaml"
    spec.write_text(json.dumps({"version": 1, "source": {"type": "manifest", "path": str(manifest)},
                                "steps": SPEC_STEPS,
                                "output": {"dir": str(tmp_path / "run"), "report": False}}))
    res = CliRunner().invoke(cli, ["run", str(spec), "--quiet"])
    assert res.exit_code == 0, res.output
    m = json.loads((tmp_path / "run" / "metrics.json").read_text())
    rec = m["steps"]["rec"]["all"]["recognition"]
    assert f"top1 {rec['top1']:.3f}" in res.output and "majority baseline" in res.output
    assert "captions: BLEU-4" in res.output and "spectral: angle°" in res.output
    assert "no ground truth" not in res.output
