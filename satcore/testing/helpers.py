"""Helpers behind the fixtures: build components, register them, run whole pipelines, compare outputs.

Usable without pytest fixtures too (``from satcore.testing import build_component``).
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import types
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

    from satcore.components import Component, RunContext
    from satcore.engine import RunResult
    from satcore.plugins import SatcorePluginManager


def build_component(cls: type[Component], params: Mapping[str, Any] | None = None, *, seed: int = 0,
                    run_dir: str | Path | None = None, base_dir: str | Path | None = None,
                    step_id: str | None = None, setup: bool = True, context: RunContext | None = None,
                    **kwargs: Any) -> Any:
    """Validate ``params`` (and keyword params) with the class's ``params_model`` and build an instance.

    Params are validated exactly as a spec's would be (relative paths against ``base_dir``), so a typo raises
    pydantic's ``ValidationError``. ``setup()`` is called unless ``setup=False``.
    """
    from satcore.components import RunContext

    data = {**dict(params or {}), **kwargs}
    base = Path(base_dir) if base_dir is not None else Path.cwd()
    validated = cls.params_model.model_validate(data, context={"base_dir": base})
    ctx = context or RunContext(seed=seed, device="cpu", batch_size=8, loader_workers=0,
                                run_dir=Path(run_dir) if run_dir is not None else None, spec_dir=base)
    comp = cls(validated, ctx, step_id or cls.name)
    if setup:
        comp.setup()
    return comp


def components_plugin(*classes: type[Component], name: str = "test-plugin") -> types.ModuleType:
    """A plugin object (a module) whose ``satcore_register_*`` hooks return ``classes`` grouped by kind."""
    from satcore.hookspecs import hookimpl
    from satcore.kinds import KIND_HOOKS

    module = types.ModuleType(f"satcore_testing_{name.replace('-', '_')}")
    for kind, hook_name in KIND_HOOKS.items():
        mine = [c for c in classes if getattr(c, "kind", None) == kind]
        if not mine:
            continue

        def impl(mine: list[type[Component]] = mine) -> list[type[Component]]:
            return list(mine)

        impl.__name__ = hook_name
        setattr(module, hook_name, hookimpl(impl))
    unknown = [c for c in classes if getattr(c, "kind", None) not in KIND_HOOKS]
    if unknown:
        raise TypeError(f"not component classes (no known `kind`): {[c.__qualname__ for c in unknown]}")
    return module


def fresh_plugin_manager(*plugins: Any) -> SatcorePluginManager:
    """A plugin manager with the built-ins only (no entry points), plus ``plugins`` registered."""
    from satcore.plugins import get_plugin_manager

    pm = get_plugin_manager(fresh=True, entrypoints=False)
    for i, plugin in enumerate(plugins):
        pm.register_plugin(plugin, getattr(plugin, "__name__", f"plugin-{i}"))
    return pm


@dataclass
class PipelineOutputs:
    """What :func:`run_pipeline` returns: the run result plus the files of the output contract, read back."""

    result: RunResult
    output_dir: Path
    table: pd.DataFrame
    metrics: dict[str, Any] | None
    errors: list[dict[str, Any]]
    manifest: dict[str, Any] = field(default_factory=dict)

    def column(self, name: str) -> list[Any]:
        """One column of ``results.parquet`` in item order (``item_id`` order as written)."""
        return list(self.table[name])


def run_pipeline(spec: Mapping[str, Any], tmp_path: str | Path, *, pm: SatcorePluginManager | None = None,
                 overrides: Mapping[str, Any] | None = None, **kwargs: Any) -> PipelineOutputs:
    """Run a spec dict into ``tmp_path/run`` (unless ``output.dir`` is given) and read the outputs back.

    Test-friendly defaults are filled in only where the spec says nothing: ``version: 1``, no report,
    ``evaluate.bootstrap: 20``, ``execution.loader_workers: 0``. ``pm`` defaults to the process-wide manager
    (which the ``satcore_pm`` fixture replaces with a fresh one).
    """
    import pandas as pd

    from satcore.engine import run_pipeline as engine_run

    data = copy.deepcopy(dict(spec))
    data.setdefault("version", 1)
    out = dict(data.get("output") or {})
    out.setdefault("dir", str(Path(tmp_path) / "run"))
    out.setdefault("report", False)
    data["output"] = out
    ev = dict(data.get("evaluate") or {})
    ev.setdefault("bootstrap", 20)
    data["evaluate"] = ev
    ex = dict(data.get("execution") or {})
    ex.setdefault("loader_workers", 0)
    data["execution"] = ex
    kwargs.setdefault("progress", False)
    res = engine_run(data, overrides=overrides, pm=pm, **kwargs)
    d = res.output_dir
    metrics_path = d / "metrics.json"
    return PipelineOutputs(
        result=res,
        output_dir=d,
        table=pd.read_parquet(d / "results.parquet"),
        metrics=json.loads(metrics_path.read_text()) if metrics_path.exists() else None,
        errors=res.errors(),
        manifest=json.loads((d / "manifest.json").read_text()),
    )


# ------------------------------------------------------------------------------------------ comparing outputs

def assert_same_output(a: Any, b: Any, rtol: float = 1e-5, atol: float = 1e-6, where: str = "output") -> None:
    """Assert two component outputs are equal: dataclasses, dicts, lists, arrays (``allclose``), scalars.

    The assertion message names the first differing path (``output.score_map``, ``output['captions'][1]``).
    """
    if dataclasses.is_dataclass(a) and not isinstance(a, type):
        if type(a) is not type(b):
            raise AssertionError(f"{where}: {type(a).__name__} vs {type(b).__name__}")
        for f in dataclasses.fields(a):
            assert_same_output(getattr(a, f.name), getattr(b, f.name), rtol, atol, f"{where}.{f.name}")
        return
    if isinstance(a, Mapping):
        if not isinstance(b, Mapping) or set(a) != set(b):
            raise AssertionError(f"{where}: keys differ: {sorted(map(str, a))} vs "
                                 f"{sorted(map(str, b)) if isinstance(b, Mapping) else type(b).__name__}")
        for k in a:
            assert_same_output(a[k], b[k], rtol, atol, f"{where}[{k!r}]")
        return
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        x, y = np.asarray(a), np.asarray(b)
        if x.shape != y.shape:
            raise AssertionError(f"{where}: shapes differ: {x.shape} vs {y.shape}")
        if x.dtype.kind in "fc" or y.dtype.kind in "fc":
            if not np.allclose(x, y, rtol=rtol, atol=atol, equal_nan=True):
                diff = np.nanmax(np.abs(x.astype(np.float64) - y.astype(np.float64))) if x.size else 0.0
                raise AssertionError(f"{where}: arrays differ (max abs difference {diff:g})")
        elif not np.array_equal(x, y):
            raise AssertionError(f"{where}: arrays differ ({int(np.sum(x != y))} of {x.size} values)")
        return
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        if len(a) != len(b):
            raise AssertionError(f"{where}: lengths differ: {len(a)} vs {len(b)}")
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_same_output(x, y, rtol, atol, f"{where}[{i}]")
        return
    if isinstance(a, (float, np.floating)) and isinstance(b, (int, float, np.number)):
        fa, fb = float(a), float(b)
        if not (math.isclose(fa, fb, rel_tol=rtol, abs_tol=atol) or (math.isnan(fa) and math.isnan(fb))):
            raise AssertionError(f"{where}: {fa!r} vs {fb!r}")
        return
    if a != b:
        raise AssertionError(f"{where}: {a!r} vs {b!r}")


def assert_same_outputs(a: Iterable[Any], b: Iterable[Any], rtol: float = 1e-5, atol: float = 1e-6,
                        ids: list[str] | None = None) -> None:
    """:func:`assert_same_output` item by item; messages name the item id when ``ids`` is given."""
    la, lb = list(a), list(b)
    if len(la) != len(lb):
        raise AssertionError(f"{len(la)} results vs {len(lb)}")
    for i, (x, y) in enumerate(zip(la, lb, strict=True)):
        assert_same_output(x, y, rtol, atol, f"result for {ids[i]!r}" if ids else f"result[{i}]")
