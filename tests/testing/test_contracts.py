"""satcore.testing's contracts against the built-in sources and a tiny detector, and against broken ones."""

from __future__ import annotations

import csv
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
from pydantic import BaseModel, Field

from satcore.builtin.sources import FolderPairsSource, GeoTiffSeriesSource, ManifestSource
from satcore.components import Batch, Detection, Detector, DetectorParams
from satcore.testing import (
    DetectorContract,
    FolderPairsData,
    SourceContract,
    make_change_items,
    make_change_pair,
    make_pairs_dir,
)

# ------------------------------------------------------------------------------------------ a tiny detector

class TinyParams(DetectorParams):
    threshold: float = Field(0.1, gt=0, lt=1, description="Score above which a pixel counts as changed.")


class TinyDiffDetector(Detector):
    """Mean absolute band difference scaled to [0, 1], thresholded."""

    name = "tiny-diff"
    params_model = TinyParams
    consumes: ClassVar[tuple[str, ...]] = ("pair",)

    def process(self, batch: Batch) -> list[Detection]:
        out = []
        for item in batch:
            before, after = item.pair_arrays()
            score = np.clip(np.abs(after - before).mean(axis=0) / 255.0, 0, 1)
            changed = score > self.params.threshold
            out.append(Detection(score=float(changed.mean()), label=int(changed.any()), score_map=score,
                                 label_map=changed))
        return out


class TestTinyDiffDetector(DetectorContract):
    component = TinyDiffDetector
    params: ClassVar[dict[str, float]] = {"threshold": 0.1}


def test_tiny_detector_finds_the_planted_change():
    # the planted square is the independent reference the behaviour check compares against
    det = TinyDiffDetector(TinyParams(threshold=0.1))
    item = make_change_pair(seed=5)
    [d] = det.process(Batch([item]))
    inter = (d.label_map & item.label).sum()
    union = (d.label_map | item.label).sum()
    assert inter / union > 0.95
    [quiet] = det.process(Batch([make_change_pair(seed=5, change=False)]))
    assert quiet.label == 0


# ------------------------------------------------------------------------------------------ built-in sources

class TestFolderPairsSource(FolderPairsData, SourceContract):
    component = FolderPairsSource


def _manifest(tmp_path: Path) -> Path:
    root = make_pairs_dir(tmp_path / "pairs")
    path = tmp_path / "manifest.csv"
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["item_id", "a", "b", "label"])
        for a in sorted((root / "A").glob("*.tif")):
            w.writerow([a.stem, f"pairs/A/{a.name}", f"pairs/B/{a.name}", f"pairs/label/{a.name}"])
    return path


class TestManifestSource(SourceContract):
    component = ManifestSource

    def make_params(self, tmp_path):
        path = tmp_path / "manifest.csv"
        return {"path": str(path if path.exists() else _manifest(tmp_path))}


def _series(root: Path) -> Path:
    from affine import Affine

    from satcore.data import Raster, write_geotiff

    for i, day in enumerate(("20200101", "20200201", "20200301")):
        arr = make_change_pair(seed=i).images[1].array
        r = Raster(arr, crs="EPSG:32631", transform=Affine(10, 0, 500000, 0, -10, 5000000))
        write_geotiff(root / f"s2_{day}.tif", arr, like=r)
    return root


# rasterio 1.4's window_transform multiplies affines with `*`, which affine 3 deprecates (not satcore's code)
@pytest.mark.filterwarnings("ignore:Use `@` matmul:PendingDeprecationWarning")
class TestGeoTiffSeriesSource(SourceContract):
    component = GeoTiffSeriesSource

    def make_params(self, tmp_path):
        root = tmp_path / "series"
        if not root.exists():
            _series(root)
        return {"root": str(root), "window": 8}


# ------------------------------------------------------------------------------------------ data makers

def test_change_pair_is_seeded_and_labelled():
    a, b = make_change_pair(seed=3), make_change_pair(seed=3)
    assert np.array_equal(a.images[1].array, b.images[1].array) and np.array_equal(a.label, b.label)
    assert not np.array_equal(make_change_pair(seed=4).images[1].array, a.images[1].array)
    assert a.image_label == 1 and 0.05 < a.label.mean() < 0.3
    quiet = make_change_pair(seed=3, change=False)
    assert quiet.image_label == 0
    # the after image differs from the before image mostly inside the planted square
    d = np.abs(a.images[1].array.astype(float) - a.images[0].array.astype(float)).mean(axis=0)
    assert d[a.label].mean() > 10 * d[~a.label].mean()


def test_change_items_start_unchanged():
    items = make_change_items(5, seed=0, unchanged=2)
    assert [it.image_label for it in items] == [0, 0, 1, 1, 1]
    assert len({it.item_id for it in items}) == 5


def test_pairs_dir_reads_back_through_folder_pairs(tmp_path):
    from satcore.testing import build_component

    root = make_pairs_dir(tmp_path / "d", 3, seed=2)
    src = build_component(FolderPairsSource, {"root": str(root)})
    refs = list(src.list_items())
    assert [r.item_id for r in refs] == ["pair-0", "pair-1", "pair-2"]
    for ref, want in zip(refs, make_change_items(3, seed=2), strict=True):
        got = src.load(ref)
        assert np.array_equal(got.label, want.label)
        assert np.array_equal(got.images[0].array, want.images[0].array)
        assert got.reference.crs is not None


# ------------------------------------------------------------------------------ broken components FAIL

class _Broken(DetectorContract):
    """Not collected (no Test prefix): the checks are called directly and must fail."""

    component = TinyDiffDetector


class DropsLastDetector(TinyDiffDetector):
    """Returns one result too few."""

    name = "drops-last"

    def process(self, batch):
        return super().process(batch)[:-1]


class BatchMeanDetector(TinyDiffDetector):
    """Scores depend on the batch: normalised by the batch maximum."""

    name = "batch-mean"

    def process(self, batch):
        out = super().process(batch)
        top = max(float(d.score_map.max()) for d in out)
        for d in out:
            d.score_map = d.score_map / top
        return out


class IndexErrorDetector(TinyDiffDetector):
    """A bad item crashes with IndexError instead of ComponentError."""

    name = "index-error"

    def process(self, batch):
        for item in batch:
            item.images[1]  # noqa: B018
        return super().process(batch)


class RandomDetector(TinyDiffDetector):
    """Unseeded randomness."""

    name = "random-noise"

    def process(self, batch):
        out = super().process(batch)
        for d in out:
            d.score = float(np.random.default_rng().random())
        return out


class BadName(TinyDiffDetector):
    """CamelCase name."""

    name = "BadName"


class LooseParams(BaseModel):
    threshold: float = 0.1


class LooseParamsDetector(TinyDiffDetector):
    """Params that allow extra keys and lack descriptions."""

    name = "loose-params"
    params_model = LooseParams  # type: ignore[assignment]


class ClashingDetector(TinyDiffDetector):
    """Takes the name of an installed detector."""

    name = "cva"


class ReversedDetector(TinyDiffDetector):
    """Results come back in reverse order."""

    name = "reversed"

    def process(self, batch):
        return super().process(batch)[::-1]


class OffGridDetector(TinyDiffDetector):
    """Score map off the item's grid."""

    name = "off-grid"

    def process(self, batch):
        out = super().process(batch)
        for d in out:
            d.score_map = d.score_map[:-1]
        return out


def _contract(cls):
    return type(f"Check{cls.__name__}", (_Broken,), {"component": cls})()


@pytest.mark.parametrize(("cls", "check"), [
    (DropsLastDetector, "test_one_result_per_item_in_order"),
    (ReversedDetector, "test_one_result_per_item_in_order"),
    (OffGridDetector, "test_one_result_per_item_in_order"),
    (BatchMeanDetector, "test_batch_independence"),
    (IndexErrorDetector, "test_bad_item_raises_component_error"),
    (RandomDetector, "test_same_seed_same_output"),
    (BadName, "test_name_is_kebab_case"),
    (LooseParamsDetector, "test_params_forbid_extra_keys"),
    (LooseParamsDetector, "test_params_are_documented"),
    (ClashingDetector, "test_name_is_unique"),
])
def test_broken_detector_fails_the_contract(cls, check, tmp_path):
    contract = _contract(cls)
    method = getattr(contract, check)
    with pytest.raises((AssertionError, pytest.fail.Exception)):
        method(tmp_path) if "tmp_path" in method.__code__.co_varnames else method()
    # and the honest detector passes the same check
    good = getattr(_contract(TinyDiffDetector), check)
    good(tmp_path / "good") if "tmp_path" in good.__code__.co_varnames else good()


def test_contract_run_by_pytest_reports_failures(tmp_path):
    """The whole machinery: pytest collects a contract subclass, and a broken detector fails it."""
    (tmp_path / "test_plugin.py").write_text(textwrap.dedent("""
        import numpy as np
        from satcore.components import Batch, Detection, Detector, DetectorParams
        from satcore.testing import DetectorContract

        class ShuffledDetector(Detector):
            '''Shares one score map across the batch (batch-dependent).'''
            name = "shuffled-demo"
            consumes = ("pair",)

            def process(self, batch):
                a, b = batch[0].pair_arrays()
                m = np.clip(np.abs(b - a).mean(axis=0) / 255, 0, 1)
                return [Detection(score=float(m.mean()), label=1, score_map=m) for _ in batch]

        class TestShuffled(DetectorContract):
            component = ShuffledDetector
    """))
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_plugin.py",
                           "-k", "order or independence or documented"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)
    out = proc.stdout
    assert proc.returncode == 1, out[-3000:]
    assert "FAILED test_plugin.py::TestShuffled::test_one_result_per_item_in_order" in out
    assert "FAILED test_plugin.py::TestShuffled::test_batch_independence" in out
    assert "1 passed" in out  # params documented (no params)


def test_import_check_detects_torch(tmp_path, monkeypatch):
    pytest.importorskip("torch")
    pkg = tmp_path / "satcore_heavy_demo"
    pkg.mkdir()
    (pkg / "__init__.py").write_text(textwrap.dedent("""
        import torch  # noqa: F401  -- the mistake the contract catches
        from satcore.components import Detector

        class HeavyDetector(Detector):
            '''Imports torch at module level.'''
            name = "heavy-demo"
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)  # the check's subprocess imports from the working directory
    import importlib

    mod = importlib.import_module("satcore_heavy_demo")
    try:
        with pytest.raises(AssertionError, match="imports \\['torch"):
            _contract(mod.HeavyDetector).test_import_does_not_import_torch()
    finally:
        sys.modules.pop("satcore_heavy_demo", None)
