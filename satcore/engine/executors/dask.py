"""The Dask executor: the same spec and output contract, batches spread over Dask workers.

Each worker process builds the pipeline's components once per run and caches them, keyed by spec hash, output
folder and fitted state, so two runs on one persistent cluster never write into each other's folders or use
each other's fitted models. The fitted state travels with the tasks (bytes scattered to the workers), so
workers need not see the driver's filesystem for it; they write maps into the run folder and return result
rows, which the driver journals exactly as the local executor does. Needs the ``[dask]`` extra.
"""

from __future__ import annotations

import hashlib
import sys
import tempfile
from collections import OrderedDict
from pathlib import Path
from typing import Any

from satcore.components import Detector
from satcore.data import ItemRef
from satcore.engine.executors.base import batches_of
from satcore.engine.journal import Journal
from satcore.engine.rows import rows_for
from satcore.engine.steps import Engine
from satcore.errors import MissingDependencyError

#: engines built in this worker, newest last: (spec hash, output folder, fitted-state digest) → engine
_WORKER_ENGINES: OrderedDict[tuple[str, str, str], Engine] = OrderedDict()
#: engines kept per worker: a persistent cluster serving run after run should not hold every model
_KEEP_ENGINES = 2


def fitted_states(engine: Engine) -> dict[str, bytes]:
    """The driver's fitted state, step id → the bytes its detector saved (to ship to the workers)."""
    return {rs.id: c.state_path().read_bytes() for rs, c in engine.steps
            if isinstance(c, Detector) and c.fittable and c.state_path().exists()}


def _digest(states: dict[str, bytes] | None) -> str:
    if states is None:
        return "from-run-folder"
    h = hashlib.sha256()
    for sid in sorted(states):
        h.update(sid.encode() + b"\0" + hashlib.sha256(states[sid]).digest())
    return h.hexdigest()


def _worker_engine(raw: dict[str, Any], spec_path: str | None, out: str, spec_hash: str,
                   states: dict[str, bytes] | None = None) -> Engine:
    """This worker's engine for one run, built and set up on first use.

    ``states``: the fitted state per step id; ``None`` reads it from the run folder (a shared filesystem).
    """
    key = (spec_hash, str(Path(out).resolve()), _digest(states))
    eng = _WORKER_ENGINES.get(key)
    if eng is not None:
        _WORKER_ENGINES.move_to_end(key)
        return eng
    import warnings

    from rasterio.errors import NotGeoreferencedWarning

    # the worker process is ours: PNG/JPEG pairs have no georeference by design (as in the local executor)
    warnings.filterwarnings("ignore", category=NotGeoreferencedWarning)
    from satcore.spec import build_pipeline

    pipeline = build_pipeline(raw, Path(spec_path) if spec_path else None)
    eng = Engine(pipeline, Path(out), progress=False)
    # a worker reads its items itself (no loader threads) and shares the machine with the other local workers
    ex = pipeline.spec.execution
    eng.context.loader_workers = 0
    eng.context.processes = 1 if ex.address else ex.workers
    eng.setup()  # models loaded once per worker
    scratch = Path(tempfile.mkdtemp(prefix="satcore-fitted-"))
    for rs, comp in eng.steps:
        if not (isinstance(comp, Detector) and comp.fittable):
            continue
        if states is None:
            comp.load_state(comp.state_path())
        elif rs.id in states:
            local = scratch / f"{rs.id}{comp.state_suffix}"
            local.write_bytes(states[rs.id])
            comp.load_state(local)
    _WORKER_ENGINES[key] = eng
    while len(_WORKER_ENGINES) > _KEEP_ENGINES:
        _key, old = _WORKER_ENGINES.popitem(last=False)
        old.teardown()
    return eng


def _process_batch(refs: list[ItemRef], splits: dict[str, str], raw: dict[str, Any], spec_path: str | None,
                   out: str, spec_hash: str, states: dict[str, bytes] | None = None) -> list[dict[str, Any]]:
    eng = _worker_engine(raw, spec_path, out, spec_hash, states)
    return rows_for(eng, refs, [eng.loader.load(r) for r in refs], splits)


class DaskExecutor:
    """``execution.executor: dask``: a cluster at ``execution.address``, or a local one of ``workers``."""

    def run(self, engine: Engine, todo: list[ItemRef], splits: dict[str, str], journal: Journal) -> None:
        """Process ``todo`` on the cluster; see :class:`~satcore.engine.executors.Executor`."""
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
                                   dashboard_address=":0")  # any free port: another cluster may hold 8787
            client = Client(cluster)
        try:
            self.submit_all(client, as_completed, engine, todo, splits, journal)
        finally:
            client.close()
            if cluster is not None:
                cluster.close()
            sys.stderr.flush()

    @staticmethod
    def submit_all(client: Any, as_completed: Any, engine: Engine, todo: list[ItemRef],
                   splits: dict[str, str], journal: Journal) -> None:
        """Submit every batch to ``client`` and journal the rows as they come back."""
        pipeline = engine.pipeline
        states = client.scatter([fitted_states(engine)], broadcast=True)[0]
        common = {"raw": pipeline.raw, "spec_path": str(pipeline.path) if pipeline.path else None,
                  "out": str(engine.out), "spec_hash": pipeline.spec_hash(), "states": states}
        futures = [client.submit(_process_batch, b, {r.item_id: splits[r.item_id] for r in b}, **common,
                                 pure=False) for b in batches_of(todo, engine.spec.execution.batch_size)]
        bar = engine.bar(len(todo), f"{pipeline.name} (dask)")
        try:
            for fut in as_completed(futures):
                rows = fut.result()
                journal.add(rows)
                bar.update(len(rows))
        finally:
            journal.flush()
        bar.close()

