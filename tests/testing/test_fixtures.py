"""The satcore.testing fixtures: plugin manager, registration, building, data makers, whole pipelines."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest
from pydantic import Field

from satcore import plugins
from satcore.components import Batch, Detection, Detector, DetectorParams
from satcore.errors import SpecError
from satcore.testing import DetectorContract


class DiffParams(DetectorParams):
    threshold: float = Field(0.1, gt=0, lt=1, description="Score above which a pixel counts as changed.")


class FixtureDiffDetector(Detector):
    """Mean absolute band difference scaled to [0, 1]."""

    name = "fixture-diff"
    params_model = DiffParams
    consumes: ClassVar[tuple[str, ...]] = ("pair",)

    def process(self, batch: Batch) -> list[Detection]:
        out = []
        for item in batch:
            before, after = item.pair_arrays()
            score = np.clip(np.abs(after - before).mean(axis=0) / 255.0, 0, 1)
            changed = score > self.params.threshold
            frac = float(changed.mean())
            out.append(Detection(score=frac, label=int(frac > 0.01), score_map=score, label_map=changed))
        return out


class FittedThresholdDetector(FixtureDiffDetector):
    """Learns the image-level threshold on the changed fraction from the training items."""

    name = "fitted-threshold"
    fittable = True

    def setup(self) -> None:
        self.cut = 0.5

    def fit_records(self, batch: Batch) -> list[Any]:
        return [d.score for d in super().process(batch)]

    def fit(self, records, labels, groups=None):
        records = np.asarray(records, float)
        # midway between the busiest unchanged and the quietest changed item
        self.cut = float((records[labels == 0].max() + records[labels == 1].min()) / 2)
        return {"cut": self.cut}

    def save_state(self, path: Path) -> None:
        path.write_text(json.dumps({"cut": self.cut}))

    def load_state(self, path: Path) -> None:
        self.cut = json.loads(path.read_text())["cut"]

    def process(self, batch: Batch) -> list[Detection]:
        out = super().process(batch)
        for d in out:
            d.label = int(d.score > self.cut)
            d.threshold = self.cut
        return out


class TestFittedThresholdDetector(DetectorContract):
    component = FittedThresholdDetector


def test_satcore_pm_is_fresh_and_restored(satcore_pm):
    assert plugins.get_plugin_manager() is satcore_pm
    # built-ins only: installed plugins (e.g. satcore-classic's cva) are not loaded
    assert "folder-pairs" in satcore_pm.components("source")
    assert satcore_pm.components("detector") == {}
    assert [p for p in satcore_pm.info] == ["satcore"]


def test_satcore_pm_restores_previous_manager(request):
    sentinel = plugins.get_plugin_manager(fresh=True, entrypoints=False)
    plugins.set_plugin_manager(sentinel)
    # finalisers run last-in first-out: this one runs after satcore_pm's teardown
    request.addfinalizer(lambda: _check_restored(sentinel))
    pm = request.getfixturevalue("satcore_pm")
    assert plugins.get_plugin_manager() is pm is not sentinel


def _check_restored(sentinel):
    try:
        assert plugins.set_plugin_manager(None) is sentinel
    finally:
        plugins.set_plugin_manager(None)


def test_register_and_run_pipeline(register_components, satcore_pm, pairs_dir, run_pipeline):
    name = register_components(FixtureDiffDetector)
    assert satcore_pm.components("detector") == {"fixture-diff": FixtureDiffDetector}
    out = run_pipeline({"source": {"type": "folder-pairs", "root": str(pairs_dir)},
                        "steps": [{"id": "diff", "type": "fixture-diff"}]})
    assert out.result.items_ok == 4 and out.errors == []
    assert sorted(out.table["item_id"]) == ["pair-0", "pair-1", "pair-2", "pair-3"]
    assert list(out.table.sort_values("item_id")["diff.label"]) == [0, 1, 1, 1]
    # pooled pixel metrics against the planted squares
    px = out.metrics["steps"]["diff"]["all"]["pixel"]
    assert px["f1"] > 0.95 and px["auc"] > 0.99
    assert out.manifest["status"] == "complete"
    assert out.output_dir == out.result.output_dir and (out.output_dir / "maps" / "pair-1.tif").exists()
    satcore_pm.unregister_plugin(name)
    with pytest.raises(SpecError, match="unknown step type 'fixture-diff'"):
        run_pipeline({"source": {"type": "folder-pairs", "root": str(pairs_dir)},
                      "steps": [{"id": "diff", "type": "fixture-diff"}],
                      "output": {"dir": str(pairs_dir.parent / "again")}})


def test_register_components_rejects_non_components(register_components):
    with pytest.raises(TypeError, match="not component classes"):
        register_components(int)


def test_build_component_validates_and_seeds(build_component):
    det = build_component(FixtureDiffDetector, threshold=0.3, seed=4)
    assert det.params.threshold == 0.3 and det.context.seed == 4
    with pytest.raises(Exception, match="threshold"):
        build_component(FixtureDiffDetector, threshold=2)
    with pytest.raises(Exception, match="extra"):
        build_component(FixtureDiffDetector, treshold=0.2)


def test_change_items_fixture(change_items):
    assert [it.image_label for it in change_items] == [0, 1, 1, 1]
    assert all(it.images[0].shape == (32, 32) for it in change_items)


def test_fitted_detector_learns_a_cut(build_component, change_items):
    det = build_component(FittedThresholdDetector)
    b = Batch(change_items)
    det.fit(det.fit_records(b), np.array([it.image_label for it in change_items]))
    assert [d.label for d in det.process(b)] == [0, 1, 1, 1]
