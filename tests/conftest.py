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
