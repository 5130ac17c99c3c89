"""Item loading: items read in threads, processes or serially (probed per run), a batch ahead of the model."""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from satcore.components import RunContext, Source
from satcore.data import Item, ItemRef, gdal_env
from satcore.errors import ComponentError, RunStopped, UsageError

log = logging.getLogger("satcore")

Loaded = tuple[list[ItemRef], list[Any]]  # a batch's refs and, for each, its Item or the exception reading it


class ItemLoader:
    """Reads a run's items through its source, the fastest way it finds (``execution.loader*``)."""

    #: threads are kept for reading unless one thread reads faster than this fraction of their rate: the
    #: probe times reading alone, and threads also overlap reading with the model's compute (256×256 PNGs
    #: probed at 1.15-1.5×, 8×8 to 128×128 at 0.5-0.9×, where two threads fight over the GIL)
    THREADS_WIN = 0.85
    #: items read serially (and at least as many by the pool) when probing how to read
    PROBE_ITEMS = 12

    def __init__(self, source: Source, workers: int, mode: str, context: RunContext) -> None:
        """``workers``, ``mode``: ``execution.loader_workers`` and ``execution.loader``."""
        self.source = source
        self.workers = workers
        self.mode = mode
        self.context = context
        #: how items are read: set by the first pass, recorded in manifest.json
        self.loading: dict[str, Any] | None = None
        self._process_pool: Any = None  # execution.loader: processes (started on first use)

    def close(self) -> None:
        """Stop the loader processes, if any were started."""
        if self._process_pool is not None:
            self._process_pool.shutdown(cancel_futures=True)
            self._process_pool = None

    def load(self, ref: ItemRef) -> Item | BaseException:
        """One item, or the exception reading it raised."""
        try:
            with gdal_env():  # one GDAL environment per item (a no-op inside the run's own)
                return self.source.load(ref)
        except Exception as exc:
            return exc

    def iter_loaded(self, batches: Sequence[list[ItemRef]]) -> Iterator[Loaded]:
        """Yield ``(refs, items-or-exceptions)`` per batch, reading ahead with ``loader_workers`` threads.

        Threads pay off only when reading releases the GIL (decoding pixels in GDAL); reading small chips is
        mostly Python in rasterio's wrappers, and two threads doing it were slower than one (8×8 to 128×128
        px: 0.5-0.7× the serial rate, 256×256: 1.4-2×; docs/performance.md). So the first pass probes on its
        first items (:meth:`_probe`: a few read serially, a few by the pool, nothing else running), and the
        rest of the run (and later passes) reads the faster way. Reading serially gives up overlapping
        reading with a model's compute, which matters little when reading is that cheap.
        """
        workers = self.workers
        batches = list(batches)
        if workers <= 0:
            for b in batches:
                yield b, [self.load(r) for r in b]
            return
        if self.mode == "processes":
            yield from self._iter_processes(batches, workers)
            return
        # one pool for the probe and the run (threads and their GDAL environments started once)
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="satcore-load",
                                initializer=_enter_thread_gdal_env) as pool:
            if self.loading is None:
                n_serial, n_threads = self.PROBE_ITEMS, max(self.PROBE_ITEMS, 4 * workers)
                need = 1 + n_serial + n_threads
                if sum(len(b) for b in batches) >= need:
                    m = count = 0
                    while count < need:  # the first batches, enough to hold the probe's items
                        count += len(batches[m])
                        m += 1
                    refs = [r for b in batches[:m] for r in b]
                    loaded = self._probe(refs[:need], n_serial, pool, workers)
                    rest = refs[need:]
                    threaded = self.loading is not None and self.loading["mode"] == "threads"
                    loaded += list(pool.map(self.load, rest)) if threaded else [self.load(r) for r in rest]
                    k = 0
                    for b in batches[:m]:
                        yield b, loaded[k:k + len(b)]
                        k += len(b)
                    batches = batches[m:]
                else:
                    self.loading = {"mode": "threads", "reason": "too few items to compare"}
            if self.loading is not None and self.loading["mode"] == "serial":
                for b in batches:
                    yield b, [self.load(r) for r in b]
                return
            yield from _read_ahead(batches, lambda b: [pool.submit(self.load, r) for r in b],
                                   lambda futs: [f.result() for f in futs])

    def _iter_processes(self, batches: list[list[ItemRef]], workers: int) -> Iterator[Loaded]:
        """``execution.loader: processes``: each batch split into one chunk per worker process, two in flight.

        The pool is started once per run and gets the source pickled once; items come back pickled. It forks
        where the platform can (Linux), as PyTorch's DataLoader workers do: a forkserver or spawned child
        re-imports the user's ``__main__``, which runs an unguarded script (or notebook cell) again.
        Elsewhere it spawns, and scripts need the ``if __name__ == "__main__":`` guard.
        """
        if self._process_pool is None:
            import multiprocessing as mp
            import pickle
            from concurrent.futures import ProcessPoolExecutor

            try:
                blob = pickle.dumps(self.source)
            except Exception as exc:
                raise UsageError(
                    f"execution.loader: processes needs a source that can be pickled into worker processes; "
                    f"{self.source.name!r} cannot ({type(exc).__name__}: {exc}). Use `loader: threads`."
                ) from exc
            method = "fork" if sys.platform.startswith("linux") else "spawn"
            self._process_pool = ProcessPoolExecutor(
                max_workers=workers, mp_context=mp.get_context(method), initializer=_init_loader_process,
                initargs=(blob,))
            self.loading = {"mode": "processes", "workers": workers, "start_method": method}
            log.info("reading in %d %s processes", workers, method)
        pool = self._process_pool

        def submit(b: list[ItemRef]) -> list[Future[Any]]:
            size = max(1, -(-len(b) // workers))
            return [pool.submit(_load_in_process, b[i:i + size]) for i in range(0, len(b), size)]

        def results(futs: list[Future[Any]]) -> list[Any]:
            from concurrent.futures.process import BrokenProcessPool

            try:
                return [x for f in futs for x in f.result()]
            except BrokenProcessPool as exc:
                raise RunStopped(
                    "a loader process ended abruptly while reading (killed, out of memory, or a crash in a "
                    "native library); finished items are kept: rerun with --resume, or set "
                    "`execution.loader: threads`") from exc

        yield from _read_ahead(batches, submit, results)

    def _probe(self, refs: list[ItemRef], n_serial: int, pool: ThreadPoolExecutor, workers: int) -> list[Any]:
        """Read ``refs``: one untimed (warm-up), ``n_serial`` serially, the rest by the pool; sets loading."""
        clock = time.perf_counter
        items = [self.load(refs[0])]  # not timed: the first read warms caches and GDAL
        t = clock()
        items += [self.load(r) for r in refs[1:1 + n_serial]]
        serial = (clock() - t) / n_serial
        pooled = refs[1 + n_serial:]
        list(pool.map(lambda _: None, range(workers)))  # threads started before the clock
        t = clock()
        items += list(pool.map(self.load, pooled))
        threaded = (clock() - t) / len(pooled)
        mode = "threads" if serial >= self.THREADS_WIN * threaded else "serial"
        self.context.reading_s_per_item = serial if mode == "threads" else 0.0
        self.loading = {"mode": mode, "serial_ms_per_item": round(1e3 * serial, 4),
                        "threads_ms_per_item": round(1e3 * threaded, 4), "threads": workers,
                        "probe_items": len(refs)}
        log.info("reading %s: %.3f ms/item serially, %.3f ms/item with %d threads", "in threads"
                 if mode == "threads" else "serially", 1e3 * serial, 1e3 * threaded, workers)
        return items


_THREAD_ENV = threading.local()


def _read_ahead(batches: list[list[ItemRef]], submit: Callable[[list[ItemRef]], Any],
                collect: Callable[[Any], list[Any]]) -> Iterator[Loaded]:
    """Yield ``(batch, collect(submit(batch)))``, submitting the next batch before collecting this one.

    One batch is in the model while the next is being read (threads and processes alike).
    """
    pending: list[tuple[list[ItemRef], Any]] = []
    for b in batches:
        pending.append((b, submit(b)))
        if len(pending) >= 2:
            refs_b, work = pending.pop(0)
            yield refs_b, collect(work)
    for refs_b, work in pending:
        yield refs_b, collect(work)


_PROCESS_SOURCE: Any = None


def _init_loader_process(source_blob: bytes) -> None:
    """Start a loader process: the run's source (unpickled once) and one GDAL environment for its life."""
    import pickle

    global _PROCESS_SOURCE
    _PROCESS_SOURCE = pickle.loads(source_blob)
    _enter_thread_gdal_env()


def _load_in_process(refs: list[ItemRef]) -> list[Any]:
    """Load items in a loader process, returning items or exceptions as :meth:`ItemLoader.load` does.

    An exception that cannot be pickled comes back as a ComponentError with its type and message.
    """
    import pickle

    out: list[Any] = []
    for ref in refs:
        try:
            out.append(_PROCESS_SOURCE.load(ref))
        except Exception as exc:
            # the run records the type and message only; the chained cause and the traceback need not (and
            # with tblib's pickling installed, as Dask does, often cannot) travel
            exc.__cause__ = exc.__context__ = None
            exc.__traceback__ = None
            try:
                pickle.loads(pickle.dumps(exc))
                out.append(exc)
            except Exception:
                out.append(ComponentError(f"{type(exc).__name__}: {exc}"))
    return out


def _enter_thread_gdal_env() -> None:
    """Give a loader thread one GDAL environment for its life (rasterio's environments are per thread).

    Reading an item then does not build and tear one down each time: Python work that holds the GIL.
    """
    env = gdal_env()
    env.__enter__()
    _THREAD_ENV.env = env  # kept referenced until the thread ends
