"""Shared fixtures for the core tests: synthetic rasters, fake plugins and fake distributions."""

from __future__ import annotations

import sys
import textwrap
import types
import warnings
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
LEVIR = REPO / "examples" / "data" / "levir-cd"
NAIP = SHARED_DATA / "naip-series-north-dakota" / "naip"


@pytest.fixture
def levir_dir() -> Path:
    """The bundled LEVIR-CD sample (A/, B/, label/, list/)."""
    return LEVIR


# ------------------------------------------------------------------------------------------ raster writers


def write_raster(
    path: Path, array: np.ndarray, crs: Any = None, transform: Any = None, driver: str | None = None
) -> Path:
    """Write ``(bands, H, W)`` or ``(H, W)`` with rasterio (PNG for .png, GeoTIFF otherwise)."""
    import rasterio
    from rasterio.errors import NotGeoreferencedWarning

    arr = array[None] if array.ndim == 2 else array
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    drv = driver or ("PNG" if path.suffix.lower() == ".png" else "GTiff")
    prof: dict[str, Any] = {
        "driver": drv,
        "height": arr.shape[1],
        "width": arr.shape[2],
        "count": arr.shape[0],
        "dtype": arr.dtype.name,
    }
    if crs is not None:
        prof.update(crs=crs, transform=transform)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with rasterio.open(path, "w", **prof) as dst:
            dst.write(arr)
    for aux in path.parent.glob(path.name + ".aux.xml"):
        aux.unlink()
    return path


def make_pairs(
    root: Path,
    n: int,
    size: int = 16,
    seed: int = 0,
    label_scale: int = 1,
    prefix: str = "img",
    ext: str = ".png",
) -> list[str]:
    """``n`` random RGB pairs with a planted changed square and its mask; returns the item ids."""
    rng = np.random.default_rng(seed)
    ids = []
    for i in range(n):
        iid = f"{prefix}{i:03d}"
        a = rng.integers(0, 100, (3, size, size), dtype=np.uint8)
        b = a.copy()
        lab = np.zeros((size, size), np.uint8)
        if i % 2 == 0:  # every other item changes
            b[:, 2:8, 2:8] = 250
            lab[2:8, 2:8] = 1
        write_raster(root / "A" / f"{iid}{ext}", a)
        write_raster(root / "B" / f"{iid}{ext}", b)
        write_raster(root / "label" / f"{iid}{ext}", lab * label_scale)
        ids.append(iid)
    return ids


# ------------------------------------------------------------------------------------------ fake plugins


def _diff_detector() -> type:
    from pydantic import Field

    from satcore.components import Detection, Detector, DetectorParams

    class DiffParams(DetectorParams):
        """Params of the test detector."""

        threshold: float = Field(0.2, gt=0, description="Score counted as change.")
        sleep: float = Field(0.0, ge=0, description="Seconds to sleep per item (resume tests).")

    class DiffDetector(Detector):
        """Normalised absolute difference of the mean band (a transparent reference detector)."""

        name = "test-diff"
        params_model = DiffParams
        consumes: ClassVar[tuple[str, ...]] = ("pair",)

        def process(self, batch: Any) -> list[Any]:
            import time

            out = []
            for item in batch:
                time.sleep(self.params.sleep)
                a, b = item.pair_arrays()
                score = np.abs(b.mean(0) - a.mean(0)) / 255.0
                lab = score > self.params.threshold
                out.append(
                    Detection(score=float(lab.mean()), label=int(lab.any()), score_map=score, label_map=lab)
                )
            return out

    return DiffDetector


@pytest.fixture
def diff_detector() -> type:
    """The ``test-diff`` detector class."""
    return _diff_detector()


def plugin_module(name: str, **hooks: Any) -> types.ModuleType:
    """A module object whose attributes are hook implementations returning the given classes."""
    import satcore

    mod = types.ModuleType(name)
    for hook, value in hooks.items():
        setattr(mod, hook, satcore.hookimpl(specname=hook)(lambda value=value: value))
    return mod


@pytest.fixture
def pm(diff_detector: type) -> Any:
    """A fresh plugin manager without entry points: built-ins plus the ``test-diff`` detector."""
    from satcore.plugins import get_plugin_manager

    m = get_plugin_manager(fresh=True, entrypoints=False)
    m.register_plugin(
        plugin_module("fake_tests", satcore_register_detectors=[diff_detector]),
        "fake-tests",
        "satcore-fake-tests",
        "0.0.1",
    )
    return m


# ------------------------------------------------------------------------------------ fake distributions

DIFF_PLUGIN_SOURCE = '''
"""A satcore plugin used by the core tests (installed as a fake distribution)."""
import time
from typing import ClassVar

import numpy as np
from pydantic import Field

import satcore
from satcore.components import Detection, Detector, DetectorParams


class SlowParams(DetectorParams):
    """Params."""

    threshold: float = Field(0.2, gt=0, description="Score counted as change.")
    sleep: float = Field(0.0, ge=0, description="Seconds per item.")


class SlowDiffDetector(Detector):
    """Mean-band difference, optionally slow."""

    name = "slow-diff"
    params_model = SlowParams
    consumes: ClassVar[tuple[str, ...]] = ("pair",)

    def process(self, batch):
        out = []
        for item in batch:
            time.sleep(self.params.sleep)
            a, b = item.pair_arrays()
            score = np.abs(b.mean(0) - a.mean(0)) / 255.0
            lab = score > self.params.threshold
            out.append(Detection(score=float(lab.mean()), label=int(lab.any()), score_map=score,
                                 label_map=lab))
        return out


@satcore.hookimpl
def satcore_register_detectors():
    return [SlowDiffDetector]
'''


def make_fake_dist(
    site: Path, dist: str, ep_name: str, module: str, source: str, version: str = "0.0.1"
) -> Path:
    """Write ``module.py`` and ``<dist>-<version>.dist-info`` with a ``satcore`` entry point into ``site``.

    This is how pluggy's own tests fake installed distributions: importlib.metadata finds any
    ``*.dist-info`` folder on ``sys.path``.
    """
    site.mkdir(parents=True, exist_ok=True)
    (site / f"{module}.py").write_text(textwrap.dedent(source))
    info = site / f"{dist.replace('-', '_')}-{version}.dist-info"
    info.mkdir(exist_ok=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    (info / "entry_points.txt").write_text(f"[satcore]\n{ep_name} = {module}\n")
    return site


@pytest.fixture
def fake_site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder on ``sys.path`` (and PYTHONPATH for subprocesses) for fake distributions."""
    import os

    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]))
    yield site
    for mod in [m for m in sys.modules if m.startswith("fake_satcore_")]:
        del sys.modules[mod]


@pytest.fixture(autouse=True)
def _no_global_pm() -> Any:
    """Each test starts without a cached process-wide plugin manager (env vars may differ)."""
    from satcore.plugins import set_plugin_manager

    set_plugin_manager(None)
    yield
    set_plugin_manager(None)


def spec_dict(root: Path, out: Path, step: str = "test-diff", **extra: Any) -> dict[str, Any]:
    """A minimal spec over a folder-pairs root."""
    d: dict[str, Any] = {
        "version": 1,
        "source": {"type": "folder-pairs", "root": str(root)},
        "steps": [{"id": "diff", "type": step}],
        "output": {"dir": str(out), "report": False},
        "evaluate": {"bootstrap": 0},
        "execution": {"batch_size": 4, "loader_workers": 0},
    }
    for k, v in extra.items():
        d[k] = v
    return d


@pytest.fixture
def h() -> types.SimpleNamespace:
    """Helper functions (conftest modules are not importable under --import-mode=importlib)."""
    return types.SimpleNamespace(
        write_raster=write_raster,
        make_pairs=make_pairs,
        spec_dict=spec_dict,
        make_fake_dist=make_fake_dist,
        plugin_module=plugin_module,
        DIFF_PLUGIN_SOURCE=DIFF_PLUGIN_SOURCE,
        LEVIR=LEVIR,
        NAIP=NAIP,
        REPO=REPO,
    )


# ------------------------------------------------------------------------------ bootstrap interval reference


def _bin_index(s: np.ndarray, bins: int) -> np.ndarray:
    """Scores in [0, 1] to histogram bins ``[k/bins, (k+1)/bins)``, 1.0 in the last bin."""
    return np.minimum((np.asarray(s, dtype=np.float64) * bins).astype(np.int64), bins - 1)


def _ref_pixel(y: np.ndarray, p: np.ndarray, b: np.ndarray, w: np.ndarray) -> dict[str, float]:
    """scikit-learn pixel metrics of one resample (pooled truth, prediction, score bin, per-pixel weight)."""
    from sklearn.exceptions import UndefinedMetricWarning
    from sklearn.metrics import (
        cohen_kappa_score,
        confusion_matrix,
        f1_score,
        jaccard_score,
        precision_score,
        recall_score,
        roc_auc_score,
    )

    (_, fp), (fn, tp) = confusion_matrix(y, p, labels=[False, True], sample_weight=w)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndefinedMetricWarning)  # undefined kappa: sklearn gives NaN
        kappa = cohen_kappa_score(y, p, sample_weight=w)
    return {
        "auc": roc_auc_score(y, b, sample_weight=w) if w[y].sum() > 0 and w[~y].sum() > 0 else np.nan,
        "f1": f1_score(y, p, sample_weight=w, zero_division=np.nan),
        # jaccard_score takes no NaN for zero_division
        "iou": jaccard_score(y, p, sample_weight=w, zero_division=0) if tp + fp + fn > 0 else np.nan,
        "precision": precision_score(y, p, sample_weight=w, zero_division=np.nan),
        "recall": recall_score(y, p, sample_weight=w, zero_division=np.nan),
        "kappa": kappa,
    }


def _ref_image(y: np.ndarray, yhat: np.ndarray, w: np.ndarray) -> dict[str, float]:
    from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score

    return {
        "accuracy": accuracy_score(y, yhat, sample_weight=w) if w.sum() > 0 else np.nan,
        "precision": precision_score(y, yhat, sample_weight=w, zero_division=np.nan),
        "recall": recall_score(y, yhat, sample_weight=w, zero_division=np.nan),
        "f1": f1_score(y, yhat, sample_weight=w, zero_division=np.nan),
    }


def _ref_interval(vals: list[float]) -> tuple[list[float] | None, int]:
    """(2.5th, 97.5th percentile) over the defined resamples, None under 10; and how many were defined."""
    a = np.asarray(vals, dtype=np.float64)
    a = a[~np.isnan(a)]
    return (None if a.size < 10 else np.percentile(a, [2.5, 97.5]).tolist()), int(a.size)


def bootstrap_reference(
    items: list[tuple[str, np.ndarray, np.ndarray, np.ndarray, int, int]], n_boot: int, seed: int, bins: int
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Item-bootstrap intervals computed independently of ``ItemBootstrap``.

    ``items`` are ``(item_id, truth map, prediction map, score map, image label, image prediction)``. Only
    the per-item Poisson weights are shared with satcore (``item_weights(seed, item_id, n_boot)``); each
    resample's metrics come from scikit-learn with ``sample_weight`` (every pixel weighted by its item's
    weight; an item's pixels with the same truth, prediction and score bin are merged into one row of summed
    weight: the same weighted sample, only faster), then numpy percentiles. Returns ``{metric: (interval,
    defined resamples)}`` for the pixel metrics and the same for the image metrics.
    """
    from satcore.evaluate.metrics import item_weights

    rows = []  # (item, truth, prediction, score bin, pixel count)
    for i, (_, t, p, s, _, _) in enumerate(items):
        tp_code = t.ravel().astype(np.int64) * 2 + p.ravel().astype(np.int64)
        key = tp_code * bins + _bin_index(s.ravel(), bins)
        u, cnt = np.unique(key, return_counts=True)
        rows.append(np.stack([np.full(u.size, i), u // bins // 2, u // bins % 2, u % bins, cnt], axis=1))
    r = np.concatenate(rows)
    item, y, p, b, cnt = r[:, 0], r[:, 1].astype(bool), r[:, 2].astype(bool), r[:, 3], r[:, 4]
    wts = np.stack([item_weights(seed, it[0], n_boot) for it in items])  # (items, resamples)
    yi, pi = np.array([it[4] for it in items]), np.array([it[5] for it in items])
    pix = [_ref_pixel(y, p, b, wts[item, k] * cnt) for k in range(n_boot)]
    img = [_ref_image(yi, pi, wts[:, k]) for k in range(n_boot)]
    return ({m: _ref_interval([d[m] for d in pix]) for m in pix[0]},
            {m: _ref_interval([d[m] for d in img]) for m in img[0]})


def assert_ci_matches(ci: dict[str, Any], ref_pixel: dict[str, Any], ref_image: dict[str, Any]) -> None:
    """``ci95`` equals the reference: same metrics, same intervals, null with the count where under 10."""
    for level, ref in (("pixel", ref_pixel), ("image", ref_image)):
        assert {k for k in ci[level] if not k.endswith("_reason")} == set(ref), level
        for k, (iv, n_defined) in ref.items():
            if iv is None:
                assert ci[level][k] is None, (level, k)
                why = f"defined in {n_defined} of {ci['resamples']} resamples (fewer than 10)"
                assert ci[level][f"{k}_reason"] == why, (level, k)
            else:
                assert ci[level][k] == pytest.approx(iv, abs=1e-12), (level, k)
                assert f"{k}_reason" not in ci[level], (level, k)


@pytest.fixture
def ci_reference() -> types.SimpleNamespace:
    """The independent ``ci95`` reference: ``intervals`` (:func:`bootstrap_reference`) and ``check``."""
    return types.SimpleNamespace(intervals=bootstrap_reference, check=assert_ci_matches)
