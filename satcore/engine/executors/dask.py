"""The Dask executor: the same spec and output contract, batches spread over Dask workers.

``execution.address`` names a running scheduler (``dask scheduler`` plus ``dask worker`` processes, on this
machine or others); without it a local cluster of ``execution.workers`` processes is started and closed.

Each worker process builds the pipeline's components once per run and caches them, keyed by spec hash, output
folder and fitted state, so two runs on one persistent cluster never write into each other's folders or use
each other's fitted models. The fitted state travels with the tasks (the state files' bytes, scattered to the
workers), so workers need not see the driver's filesystem for it; they write maps into the run folder and
return result rows, which the driver journals exactly as the local executor does. Before any batch is sent,
every worker reports which of the pipeline's components it can build, so a plugin missing on one worker stops
the run naming that worker and the plugin. Needs the ``[dask]`` extra.
"""

from __future__ import annotations

import hashlib
import shutil
import sys
import tempfile
import time
from collections import Counter, OrderedDict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from satcore.components import Detector
from satcore.data import ItemRef
from satcore.engine.executors.base import batches_of
from satcore.engine.journal import Journal
from satcore.engine.manifest import planned_execution
from satcore.engine.rows import rows_for
from satcore.engine.steps import Engine
from satcore.errors import MissingDependencyError, RunStopped

if TYPE_CHECKING:
    from satcore.spec import Pipeline

#: engines built in this worker, newest last: (spec hash, output folder, fitted-state digest) → engine
_WORKER_ENGINES: OrderedDict[tuple[str, str, str], Engine] = OrderedDict()
#: engines kept per worker: a persistent cluster serving run after run should not hold every model
_KEEP_ENGINES = 2
#: each cached engine's private folder of shipped state files, removed with the engine
_WORKER_SCRATCH: dict[tuple[str, str, str], Path] = {}
#: seconds to reach a scheduler at ``execution.address``, and for its first worker to join
CONNECT_TIMEOUT_S = 30

#: fitted state as shipped: step id → file name → bytes (the state file and its sidecars, e.g. a sha256)
States = dict[str, dict[str, bytes]]


def fitted_states(engine: Engine) -> States:
    """The driver's fitted state, step id → {file name: bytes}, to ship to the workers.

    A step's files are its state file and every sidecar beside it named after it (the tabular detectors
    record the sha256 of their joblib file in ``<step>.joblib.sha256`` and refuse a state file without it).
    """
    out: States = {}
    for rs, c in engine.steps:
        if not (isinstance(c, Detector) and c.fittable and c.state_path().exists()):
            continue
        path = c.state_path()
        out[rs.id] = {p.name: p.read_bytes() for p in sorted(path.parent.iterdir())
                      if p.is_file() and p.name.startswith(path.name)}
    return out


def _digest(states: States | dict[str, bytes] | None) -> str:
    if states is None:
        return "from-run-folder"
    h = hashlib.sha256()
    for sid in sorted(states):
        files = states[sid]
        h.update(sid.encode() + b"\0")
        for name, data in sorted(files.items()) if isinstance(files, dict) else [("", files)]:
            h.update(name.encode() + b"\0" + hashlib.sha256(data).digest())
    return h.hexdigest()


def _write_state(scratch: Path, step_id: str, comp: Detector, files: dict[str, bytes] | bytes) -> Path:
    """Write one step's shipped files into ``scratch``; the path of its state file."""
    state_name = f"{step_id}{comp.state_suffix}"
    if isinstance(files, bytes):  # the state file alone (the format before sidecars were shipped)
        files = {state_name: files}
    for name, data in files.items():
        (scratch / Path(name).name).write_bytes(data)
    return scratch / state_name


def _worker_engine(raw: dict[str, Any], spec_path: str | None, out: str, spec_hash: str,
                   states: States | dict[str, bytes] | None = None) -> Engine:
    """This worker's engine for one run, built and set up on first use.

    ``states``: the fitted state per step id (:func:`fitted_states`); ``None`` reads it from the run folder
    (a shared filesystem).
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
            comp.load_state(_write_state(scratch, rs.id, comp, states[rs.id]))
    _WORKER_ENGINES[key] = eng
    _WORKER_SCRATCH[key] = scratch
    while len(_WORKER_ENGINES) > _KEEP_ENGINES:
        old_key, old = _WORKER_ENGINES.popitem(last=False)
        old.teardown()
        old_scratch = _WORKER_SCRATCH.pop(old_key, None)
        if old_scratch is not None:
            shutil.rmtree(old_scratch, ignore_errors=True)
    return eng


def _process_batch(refs: list[ItemRef], splits: dict[str, str], raw: dict[str, Any], spec_path: str | None,
                   out: str, spec_hash: str, states: States | None = None) -> list[dict[str, Any]]:
    eng = _worker_engine(raw, spec_path, out, spec_hash, states)
    return rows_for(eng, refs, [eng.loader.load(r) for r in refs], splits)


def _timed_batch(*args: Any, **kwargs: Any) -> dict[str, Any]:
    """:func:`_process_batch` with the worker that ran it and the seconds it took there."""
    t0, c0 = time.perf_counter(), time.process_time()
    rows = _process_batch(*args, **kwargs)
    try:
        from distributed import get_worker

        worker = str(get_worker().address)
    except (ImportError, ValueError):  # run outside a worker (tests)
        worker = "in-process"
    return {"rows": rows, "worker": worker, "seconds": time.perf_counter() - t0,
            "cpu_seconds": time.process_time() - c0}


def needed_components(pipeline: Pipeline) -> list[dict[str, Any]]:
    """What a worker must be able to build: the source and each step's component, with its plugin."""
    uses = [("source", pipeline.source_cls)] + [(s.id, s.cls) for s in pipeline.steps]
    return [{"step": sid, "kind": cls.kind, "name": cls.name, "plugin": getattr(cls, "plugin_name", None),
             "distribution": getattr(cls, "distribution", None)} for sid, cls in uses]


def worker_report(needed: list[dict[str, Any]]) -> dict[str, Any]:
    """Run on a worker: its satcore version and which of ``needed`` its installed plugins cannot provide."""
    from satcore.plugins import get_plugin_manager
    from satcore.version import __version__

    pm = get_plugin_manager()
    missing = [n for n in needed if n["name"] not in pm.components(n["kind"])]
    return {"satcore": __version__, "python": sys.executable, "missing": missing,
            "load_errors": [str(e) for e in pm.load_errors]}


def check_workers(client: Any, pipeline: Pipeline) -> dict[str, dict[str, Any]]:
    """Ask every worker of ``client`` whether it can build ``pipeline``; worker address → its report.

    Raises:
        RunStopped: a worker cannot import satcore, or lacks a plugin the pipeline uses (each worker and
            plugin named, with the install command).
    """
    from satcore.version import __version__

    needed = needed_components(pipeline)
    reports: dict[str, Any] = client.run(worker_report, needed, on_error="return")
    problems: list[str] = []
    for addr, rep in sorted(reports.items()):
        if isinstance(rep, BaseException):
            problems.append(f"worker {addr} cannot run satcore ({type(rep).__name__}: {rep}); install "
                            "satcore and the pipeline's plugins in the Python environment the worker runs in")
            continue
        for n in rep["missing"]:
            dist = n["distribution"] or n["plugin"] or "the plugin that provides it"
            problems.append(f"worker {addr} lacks the plugin {n['plugin'] or dist!r} ({dist}) that provides "
                            f"{n['kind']} {n['name']!r} (step {n['step']!r}): pip install {dist} in the "
                            f"worker's environment ({rep['python']})"
                            + (f"; its plugin load errors: {'; '.join(rep['load_errors'])}"
                               if rep["load_errors"] else ""))
        if rep["satcore"] != __version__:
            import logging

            logging.getLogger("satcore").warning("Dask worker %s runs satcore %s, this process %s", addr,
                                                 rep["satcore"], __version__)
    if problems:
        raise RunStopped("the Dask workers cannot run this pipeline:\n  " + "\n  ".join(problems))
    return reports


def _connect(address: str) -> Any:
    """A client of the scheduler at ``address``, once at least one worker has joined it."""
    from dask.distributed import Client

    try:
        client = Client(address, timeout=CONNECT_TIMEOUT_S)
    except (OSError, TimeoutError) as exc:
        raise RunStopped(f"execution.address: no Dask scheduler answered at {address} ({exc}); start one "
                         "(`dask scheduler`) and its workers (`dask worker ADDRESS`), or set "
                         "execution.address: null for a local cluster") from None
    try:
        client.wait_for_workers(1, timeout=CONNECT_TIMEOUT_S)
    except (OSError, TimeoutError):
        client.close()
        raise RunStopped(f"execution.address: the Dask scheduler at {address} has no workers "
                         f"({CONNECT_TIMEOUT_S} s waited); start them with `dask worker {address}`") from None
    return client


class DaskExecutor:
    """``execution.executor: dask``: a cluster at ``execution.address``, or a local one of ``workers``."""

    def __init__(self) -> None:
        #: what ran, for ``manifest.json`` → ``execution`` (filled by :meth:`run`)
        self.info: dict[str, Any] = {"executor": "dask"}

    def describe(self) -> dict[str, Any]:
        """``manifest.json`` → ``execution``: the cluster, its workers and the items each processed."""
        return self.info

    def run(self, engine: Engine, todo: list[ItemRef], splits: dict[str, str], journal: Journal) -> None:
        """Process ``todo`` on the cluster; see :class:`~satcore.engine.executors.Executor`."""
        try:
            from dask.distributed import Client, LocalCluster, as_completed
        except ImportError as exc:
            raise MissingDependencyError("dask[distributed]", "execution.executor: dask",
                                         "pip install 'satcore[dask]'") from exc
        ex = engine.spec.execution
        self.info = planned_execution(ex)  # what a run that stops before the cluster answers still says
        cluster = None
        if ex.address:
            client = _connect(ex.address)
        else:
            cluster = LocalCluster(n_workers=ex.workers, threads_per_worker=1, processes=True,
                                   dashboard_address=":0")  # any free port: another cluster may hold 8787
            client = Client(cluster)
        try:
            workers = _workers(client)
            threads = sorted({int(w.get("nthreads", 1)) for w in workers.values()})
            self.info = {"executor": "dask", "cluster": "external" if ex.address else "local",
                         "address": ex.address or str(client.scheduler.address), "workers": len(workers),
                         "threads_per_worker": threads[0] if len(threads) == 1 else threads}
            check_workers(client, engine.pipeline)
            self.submit_all(client, as_completed, engine, todo, splits, journal, self.info)
        finally:
            client.close()
            if cluster is not None:
                cluster.close()
            sys.stderr.flush()

    @staticmethod
    def submit_all(client: Any, as_completed: Any, engine: Engine, todo: list[ItemRef],
                   splits: dict[str, str], journal: Journal, info: dict[str, Any] | None = None) -> None:
        """Submit every batch to ``client`` and journal the rows as they come back.

        ``info`` (the manifest's ``execution``) gets ``items_per_worker`` and ``worker_seconds`` (time spent
        in the workers' tasks, summed: the rest of the wall time is scheduling, transfer and waiting) and
        ``worker_cpu_seconds`` (the CPU time of the worker processes in those tasks: below
        ``worker_seconds`` when the workers waited for a core or for I/O).
        """
        pipeline = engine.pipeline
        states = client.scatter([fitted_states(engine)], broadcast=True)[0]
        common = {"raw": pipeline.raw, "spec_path": str(pipeline.path) if pipeline.path else None,
                  "out": str(engine.out), "spec_hash": pipeline.spec_hash(), "states": states}
        futures = [client.submit(_timed_batch, b, {r.item_id: splits[r.item_id] for r in b}, **common,
                                 pure=False) for b in batches_of(todo, engine.spec.execution.batch_size)]
        bar = engine.bar(len(todo), f"{pipeline.name} (dask)")
        per_worker: Counter[str] = Counter()
        busy = cpu = 0.0
        try:
            for fut in as_completed(futures):
                done = fut.result()
                journal.add(done["rows"])
                per_worker[done["worker"]] += len(done["rows"])
                busy += done["seconds"]
                cpu += done["cpu_seconds"]
                bar.update(len(done["rows"]))
        finally:
            journal.flush()
            if info is not None:
                info["items_per_worker"] = dict(sorted(per_worker.items()))
                info["worker_seconds"] = round(busy, 3)
                info["worker_cpu_seconds"] = round(cpu, 3)
        bar.close()


def _workers(client: Any) -> dict[str, Any]:
    """Every worker the scheduler knows (some distributed releases list the first five unless asked)."""
    try:
        return dict(client.scheduler_info(n_workers=-1)["workers"])
    except TypeError:  # a release without n_workers lists them all
        return dict(client.scheduler_info()["workers"])
