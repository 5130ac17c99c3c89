"""``manifest.json``: what ran (spec, versions, executor) and how it went (status, counts, timings).

The first write comes before any item is processed, so ``--resume`` can check the spec hash of a run that was
killed; the run's end (complete or stopped) rewrites it.
"""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from satcore.io import write_json

if TYPE_CHECKING:
    from satcore.plugins import SatcorePluginManager
    from satcore.spec import Pipeline


def versions(pm: SatcorePluginManager | None) -> dict[str, Any]:
    """satcore, Python and each plugin's distribution and version."""
    from satcore.plugins import get_plugin_manager
    from satcore.version import __version__

    pm = pm or get_plugin_manager()
    return {
        "satcore": __version__,
        "python": sys.version.split()[0],
        "plugins": {n: {"distribution": i.distribution, "version": i.version} for n, i in pm.info.items()},
    }


def start_manifest(pipeline: Pipeline, pm: SatcorePluginManager | None, started: datetime) -> dict[str, Any]:
    """The manifest of a run that has just begun (status ``running``)."""
    return {
        "spec_version": pipeline.spec.version,
        "spec_hash": pipeline.spec_hash(),
        "spec_path": str(pipeline.path) if pipeline.path else None,
        "name": pipeline.name,
        "spec": pipeline.resolved(),
        "versions": versions(pm),
        "params_versions": {s.id: s.cls.params_version for s in pipeline.steps},
        "executor": pipeline.spec.execution.executor,
        "workers": pipeline.spec.execution.workers,
        "execution": planned_execution(pipeline.spec.execution),
        "status": "running",
        "started": started.isoformat(),
    }


def planned_execution(ex: Any) -> dict[str, Any]:
    """``execution`` before the executor has run (``ex``: the spec's ``execution``).

    The executor replaces it with what actually ran (:meth:`Executor.describe`): for Dask the scheduler
    address, the workers that were connected and their threads, items per worker; locally the readers and CPU
    threads. The top-level ``executor`` and ``workers`` keys stay as the spec gave them.
    """
    if ex.executor == "dask":
        return {"executor": "dask", "cluster": "external" if ex.address else "local", "address": ex.address,
                "workers": None if ex.address else ex.workers}
    return {"executor": "local", "workers": 1}


def default_loading(ex: Any) -> dict[str, Any]:
    """``loading`` when no probe ran (``ex``: the spec's ``execution``)."""
    if ex.executor == "dask":
        return {"mode": "serial", "where": "in each Dask worker"}
    return {"mode": "serial" if ex.loader_workers <= 0 else "threads"}


def write_manifest(out: Path, manifest: dict[str, Any]) -> None:
    """Write ``out/manifest.json`` atomically."""
    write_json(out / "manifest.json", manifest)
