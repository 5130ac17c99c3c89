"""The Dask executor: the same spec and output contract, batches spread over Dask workers.

Each worker process builds the pipeline's components once (cached by spec hash) and loads the fitted state the
driver wrote; workers write maps into the run folder and return result rows, which the driver journals exactly
as the local executor does. Needs the ``[dask]`` extra.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from satcore.errors import MissingDependencyError

if TYPE_CHECKING:
    from satcore.data import ItemRef
    from satcore.engine.runner import Engine, Journal

_WORKER_ENGINES: dict[str, Engine] = {}


def _worker_engine(raw: dict[str, Any], spec_path: str | None, out: str, spec_hash: str) -> Engine:
    eng = _WORKER_ENGINES.get(spec_hash)
    if eng is not None:
        return eng
    import warnings

    from rasterio.errors import NotGeoreferencedWarning

    # the worker process is ours: PNG/JPEG pairs have no georeference by design (as in the local executor)
    warnings.filterwarnings("ignore", category=NotGeoreferencedWarning)
    from satcore.components import Detector
    from satcore.engine.runner import Engine
    from satcore.spec import build_pipeline

    pipeline = build_pipeline(raw, Path(spec_path) if spec_path else None)
    eng = Engine(pipeline, Path(out), progress=False)
    # a worker reads its items itself (no loader threads) and shares the machine with the other local workers
    ex = pipeline.spec.execution
    eng.context.loader_workers = 0
    eng.context.processes = 1 if ex.address else ex.workers
    eng.setup()  # models loaded once per worker
    for _rs, comp in eng.steps:
        if isinstance(comp, Detector) and comp.fittable:
            comp.load_state(comp.state_path())
    _WORKER_ENGINES[spec_hash] = eng
    return eng


def _process_batch(refs: list[ItemRef], splits: dict[str, str], raw: dict[str, Any], spec_path: str | None,
                   out: str, spec_hash: str) -> list[dict[str, Any]]:
    eng = _worker_engine(raw, spec_path, out, spec_hash)
    return eng.rows_for(refs, [eng._load(r) for r in refs], splits)


def run_dask(engine: Engine, todo: list[ItemRef], splits: dict[str, str], journal: Journal,
             batch_size: int) -> None:
    """Process ``todo`` on a Dask cluster (``execution.address``, or a local one of ``execution.workers``)."""
    try:
        from dask.distributed import Client, LocalCluster, as_completed
    except ImportError as exc:
        raise MissingDependencyError("dask[distributed]", "execution.executor: dask",
                                     "pip install 'satcore[dask]'") from exc
    ex = engine.spec.execution
    cluster = None
    if ex.address:
        client = Client(ex.address)
    else:
        cluster = LocalCluster(n_workers=ex.workers, threads_per_worker=1, processes=True,
                               dashboard_address=None)
        client = Client(cluster)
    try:
        pipeline = engine.pipeline
        common = {"raw": pipeline.raw, "spec_path": str(pipeline.path) if pipeline.path else None,
                  "out": str(engine.out), "spec_hash": pipeline.spec_hash()}
        batches = [todo[i:i + batch_size] for i in range(0, len(todo), batch_size)]
        futures = [client.submit(_process_batch, b, {r.item_id: splits[r.item_id] for r in b}, **common,
                                 pure=False) for b in batches]
        bar = engine._bar(len(todo), f"{pipeline.name} (dask)")
        try:
            for fut in as_completed(futures):
                rows = fut.result()
                journal.add(rows)
                bar.update(len(rows))
        finally:
            journal.flush()
        bar.close()
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
        sys.stderr.flush()
