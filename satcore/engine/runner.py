"""The engine: validate → set up → fit on the train split → stream batches → write outputs.

Results are journaled as atomically written part files (``parts/``), so a run killed at any point loses only
the batch in flight and ``--resume`` continues from there. ``results.parquet``, ``errors.jsonl``,
``metrics.json`` and ``report.html`` are derived from the journal at the end.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sys
import threading
import time
import traceback
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from satcore.components import Batch, Component, Detection, Detector, RunContext, Source
from satcore.data import Item, ItemRef, gdal_env, write_geotiff
from satcore.errors import ComponentError, ResumeError, RunStopped, SatcoreError, UsageError
from satcore.evaluate.metrics import PixelStats, auc_from_hist, confusion_metrics, quantise
from satcore.evaluate.split import assign_split_names, describe_split
from satcore.spec import Pipeline, ResolvedStep, load_pipeline

if TYPE_CHECKING:
    import pandas as pd

    from satcore.plugins import SatcorePluginManager

log = logging.getLogger("satcore")

OUTPUT_NAMES = {"results.parquet", "metrics.json", "errors.jsonl", "manifest.json", "run.log", "report.html",
                "maps", "parts", "fitted", "generated", "report_files"}


@dataclass
class RunResult:
    """What a run produced."""

    output_dir: Path
    exit_code: int
    items_ok: int
    items_failed: int
    items_skipped: int
    metrics: dict[str, Any] | None
    manifest: dict[str, Any] = field(default_factory=dict)
    #: things the user should hear about at the end of the run (also in run.log), e.g. maps not written
    notes: list[str] = field(default_factory=list)

    @property
    def results_path(self) -> Path:
        """``results.parquet``."""
        return self.output_dir / "results.parquet"

    def results(self) -> pd.DataFrame:
        """The per-item table."""
        import pandas as pd

        return pd.read_parquet(self.results_path)

    def errors(self) -> list[dict[str, Any]]:
        """The failed items from ``errors.jsonl``."""
        text = (self.output_dir / "errors.jsonl").read_text()
        return [json.loads(x) for x in text.splitlines() if x.strip()]


# ------------------------------------------------------------------------------------------ output folder

def _is_our_temp(name: str) -> bool:
    """``.<name>.tmp``: an atomic write of ours left by a killed run."""
    return name.startswith(".") and name.endswith(".tmp") and name[1:-4] in OUTPUT_NAMES


def _run_without_items(out: Path, entries: list[Path]) -> str | None:
    """Why ``out`` holds only what a run that processed no item left (``None`` if it holds more).

    A run that stops in set-up or fitting (missing weights, no labelled items) leaves ``manifest.json``
    (status ``stopped``), ``run.log`` and perhaps an empty ``fitted/``: nothing a rerun would lose. Results
    (``parts/``, ``results.parquet``, maps), fitted state (``--resume`` reuses it, a plain run would fit
    again), a run still going (status ``running``) or any file satcore did not write keep the folder refused.
    """
    folders = {"fitted", "parts", "maps", "report_files"}  # harmless while empty
    for p in entries:
        if _is_our_temp(p.name) or p.name in ("manifest.json", "run.log"):
            continue
        if p.name not in folders or not p.is_dir() or any(p.iterdir()):
            return None
    try:
        man = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(man, dict) or man.get("status") not in ("stopped", "failed"):
        return None
    items = man.get("items")
    if isinstance(items, dict) and (items.get("ok") or items.get("failed") or items.get("total")):
        return None
    why = man.get("error")
    first = str(why).splitlines()[0] if why else ""
    return f"status {man['status']!r}" + (f": {first}" if first else "")


def prepare_output(out: Path, resume: bool, overwrite: bool, spec_hash: str) -> str | None:
    """Create the folder; refuse a non-empty one unless resuming (same spec) or overwriting (ours only).

    A folder holding only what a run that processed no item left (it stopped in set-up) is reused without
    either flag: its files are removed and the returned note says so, for the run's log.
    """
    if resume and overwrite:
        raise UsageError("choose one of --resume and --overwrite")
    if out.exists() and not out.is_dir():
        raise UsageError(f"output.dir {out} exists and is not a folder")
    entries = [p for p in out.iterdir()] if out.exists() else []
    if entries and resume:
        man = out / "manifest.json"
        if not man.exists():
            raise ResumeError(f"{out} has no manifest.json, so it is not a satcore run to resume; use "
                              "--overwrite or another output.dir")
        old = json.loads(man.read_text()).get("spec_hash")
        if old != spec_hash:
            raise ResumeError(f"the spec changed since the run in {out} began "
                              f"(spec hash {old} → {spec_hash}); "
                              "resuming would mix results of two specs. Use --overwrite to start again, "
                              "or set another output.dir (--set output.dir=...)")
        return None
    note = None
    if entries and not resume:
        if not overwrite:
            earlier = _run_without_items(out, entries)
            if earlier is None:
                raise UsageError(f"output folder {out} is not empty; add --resume to continue that run or "
                                 "--overwrite to replace it")
            note = (f"reusing output folder {out}: it held only an earlier run that processed no items "
                    f"({earlier})")
        foreign = [p.name for p in entries if p.name not in OUTPUT_NAMES and not _is_our_temp(p.name)]
        if foreign:
            raise UsageError(f"--overwrite refused: {out} holds files satcore did not write "
                             f"({', '.join(sorted(foreign)[:5])}); choose an empty output.dir")
        for p in entries:
            shutil.rmtree(p) if p.is_dir() else p.unlink()
    out.mkdir(parents=True, exist_ok=True)
    return note


def _atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _json_default(o: Any) -> Any:
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, (Path, datetime)):
        return str(o)
    raise TypeError(type(o))


def write_json(path: Path, data: Any) -> None:
    """Pretty JSON, atomically; NaN never written (None instead)."""
    _atomic_write_text(
        path, json.dumps(_clean(data), indent=2, default=_json_default, allow_nan=False) + "\n")


def _clean(x: Any) -> Any:
    if isinstance(x, dict):
        return {k: _clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_clean(v) for v in x]
    if isinstance(x, float) and not np.isfinite(x):
        return None
    return x


# ------------------------------------------------------------------------------------------ the engine

class Engine:
    """Runs one validated pipeline in this process (the local executor)."""

    #: threads are kept for reading unless one thread reads faster than this fraction of their rate: the
    #: probe times reading alone, and threads also overlap reading with the model's compute (256×256 PNGs
    #: probed at 1.15-1.5×, 8×8 to 128×128 at 0.5-0.9×, where two threads fight over the GIL)
    THREADS_WIN = 0.85
    #: items read serially (and at least as many by the pool) when probing how to read
    PROBE_ITEMS = 12

    def __init__(self, pipeline: Pipeline, out: Path, progress: bool = True) -> None:
        self.pipeline = pipeline
        self.spec = pipeline.spec
        self.out = out
        self.progress = progress
        ex = self.spec.execution
        self.context = RunContext(seed=self.spec.seed, device=ex.device, batch_size=ex.batch_size,
                                  loader_workers=ex.loader_workers, threads=ex.threads, run_dir=out,
                                  spec_dir=pipeline.base_dir, logger=log)
        self.source: Source = pipeline.source_cls(pipeline.source_params, self.context, "source")  # type: ignore[assignment]
        self.steps: list[tuple[ResolvedStep, Component]] = [
            (s, s.cls(s.params, self.context, s.id)) for s in pipeline.steps
        ]
        self.timings: dict[str, float] = defaultdict(float)
        #: how items are read (``iter_loaded``): set by the first pass, recorded in manifest.json
        self.loading: dict[str, Any] | None = None
        self._process_pool: Any = None  # execution.loader: processes (started on first use)
        self.bins = self.spec.evaluate.bins
        self.fit_summaries: dict[str, Any] = {}
        #: training items seen by the last fit pass (train split, read, labelled): why nothing could be fitted
        self.fit_counts = {"train": 0, "read": 0, "labelled": 0}

    # -------------------------------------------------------------- setup
    def setup(self) -> None:
        """Set up every component before any item streams; failures stop the run (exit 1).

        With progress on, a status line names the step being set up: loading a model (importing torch,
        reading a checkpoint) takes seconds before the first item, and the terminal should not look stuck.
        """
        comps = [("source", self.source), *[(s.id, c) for s, c in self.steps]]
        bar = self._bar(len(comps), "setting up", unit="step")
        try:
            for sid, comp in comps:
                bar.set_postfix_str(f"{sid} ({comp.name})", refresh=True)
                log.info("setting up %s (%s)", sid, comp.name)
                t = time.perf_counter()
                try:
                    comp.setup()
                except SatcoreError as exc:
                    raise RunStopped(f"step {sid!r} ({comp.name}) could not start: "
                                     f"{_without_step_prefix(str(exc), sid, comp.name)}") from exc
                except Exception as exc:
                    raise RunStopped(
                        f"step {sid!r} ({comp.name}) could not start: {type(exc).__name__}: {exc}") from exc
                self.timings[f"setup:{sid}"] += time.perf_counter() - t
                bar.update(1)
        finally:
            bar.close()

    def teardown(self) -> None:
        """Tear every component down (after the run, failed or not); a failing teardown is only logged."""
        if self._process_pool is not None:
            self._process_pool.shutdown(cancel_futures=True)
            self._process_pool = None
        for sid, comp in [("source", self.source), *[(s.id, c) for s, c in self.steps]]:
            try:
                comp.teardown()
            except Exception as exc:
                log.warning("step %r (%s): teardown failed: %s: %s", sid, comp.name, type(exc).__name__, exc)

    # -------------------------------------------------------------- loading
    def _load(self, ref: ItemRef) -> Item | BaseException:
        try:
            with gdal_env():  # one GDAL environment per item (a no-op inside the run's own)
                return self.source.load(ref)
        except Exception as exc:
            return exc

    def iter_loaded(self, batches: Sequence[list[ItemRef]]) -> Iterator[tuple[list[ItemRef], list[Any]]]:
        """Yield ``(refs, items-or-exceptions)`` per batch, reading ahead with ``loader_workers`` threads.

        Threads pay off only when reading releases the GIL (decoding pixels in GDAL); reading small chips is
        mostly Python in rasterio's wrappers, and two threads doing it were slower than one (8×8 to 128×128
        px: 0.5-0.7× the serial rate, 256×256: 1.4-2×; docs/performance.md). So the first pass probes on its
        first items (:meth:`_probe_loading`: a few read serially, a few by the pool, nothing else running),
        and the rest of the run (and later passes) reads the faster way. Reading serially gives up
        overlapping reading with a model's compute, which matters little when reading is that cheap.
        """
        workers = self.spec.execution.loader_workers
        batches = list(batches)
        if workers <= 0:
            for b in batches:
                yield b, [self._load(r) for r in b]
            return
        if self.spec.execution.loader == "processes":
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
                    loaded = self._probe_loading(refs[:need], n_serial, pool, workers)
                    rest = refs[need:]
                    threaded = self.loading is not None and self.loading["mode"] == "threads"
                    loaded += list(pool.map(self._load, rest)) if threaded else [self._load(r) for r in rest]
                    k = 0
                    for b in batches[:m]:
                        yield b, loaded[k:k + len(b)]
                        k += len(b)
                    batches = batches[m:]
                else:
                    self.loading = {"mode": "threads", "reason": "too few items to compare"}
            if self.loading is not None and self.loading["mode"] == "serial":
                for b in batches:
                    yield b, [self._load(r) for r in b]
                return
            yield from _read_ahead(batches, lambda b: [pool.submit(self._load, r) for r in b],
                                   lambda futs: [f.result() for f in futs])

    def _iter_processes(self, batches: list[list[ItemRef]],
                        workers: int) -> Iterator[tuple[list[ItemRef], list[Any]]]:
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

    def _probe_loading(self, refs: list[ItemRef], n_serial: int, pool: ThreadPoolExecutor,
                       workers: int) -> list[Any]:
        """Read ``refs``: one untimed (warm-up), ``n_serial`` serially, the rest by the pool; sets loading."""
        clock = time.perf_counter
        items = [self._load(refs[0])]  # not timed: the first read warms caches and GDAL
        t = clock()
        items += [self._load(r) for r in refs[1:1 + n_serial]]
        serial = (clock() - t) / n_serial
        pooled = refs[1 + n_serial:]
        list(pool.map(lambda _: None, range(workers)))  # threads started before the clock
        t = clock()
        items += list(pool.map(self._load, pooled))
        threaded = (clock() - t) / len(pooled)
        mode = "threads" if serial >= self.THREADS_WIN * threaded else "serial"
        self.context.reading_s_per_item = serial if mode == "threads" else 0.0
        self.loading = {"mode": mode, "serial_ms_per_item": round(1e3 * serial, 4),
                        "threads_ms_per_item": round(1e3 * threaded, 4), "threads": workers,
                        "probe_items": len(refs)}
        log.info("reading %s: %.3f ms/item serially, %.3f ms/item with %d threads", "in threads"
                 if mode == "threads" else "serially", 1e3 * serial, 1e3 * threaded, workers)
        return items

    # -------------------------------------------------------------- steps
    def run_steps(self, items: list[Item], only: set[str] | None = None
                  ) -> tuple[list[dict[str, Any]], list[tuple[str, BaseException] | None]]:
        """Run the steps over items; a failing batch is retried item by item so one bad item fails alone."""
        outputs: list[dict[str, Any]] = [{} for _ in items]
        errors: list[tuple[str, BaseException] | None] = [None] * len(items)
        for rs, comp in self.steps:
            if only is not None and rs.id not in only:
                continue
            alive = [i for i in range(len(items)) if errors[i] is None]
            if not alive:
                break

            def call(idx: list[int], rs: ResolvedStep = rs, comp: Component = comp) -> list[Any]:
                inputs = [items[i] if rs.input == "source" else outputs[i][rs.input] for i in idx]
                res = comp.process(Batch([items[i] for i in idx], inputs, rs.id))  # type: ignore[attr-defined]
                if len(res) != len(idx):
                    raise ComponentError(f"step {rs.id!r} returned {len(res)} results for {len(idx)} items")
                return list(res)

            t = time.perf_counter()
            try:
                for i, r in zip(alive, call(alive), strict=True):
                    outputs[i][rs.id] = r
            except Exception as batch_exc:
                if len(alive) == 1:
                    errors[alive[0]] = (rs.id, batch_exc)
                else:
                    for i in alive:
                        try:
                            outputs[i][rs.id] = call([i])[0]
                        except Exception as exc:
                            errors[i] = (rs.id, exc)
            self.timings[rs.id] += time.perf_counter() - t
            if self.spec.execution.on_error == "fail":
                for i, e in enumerate(errors):
                    if e is not None:
                        raise RunStopped(f"item {items[i].item_id!r} failed in step {e[0]!r}: "
                                         f"{type(e[1]).__name__}: {e[1]} (on_error: fail)") from e[1]
        return outputs, errors

    def ancestors(self, step_id: str) -> set[str]:
        """The step and every step its input chain goes through."""
        by_id = {s.id: s for s, _ in self.steps}
        out: set[str] = set()
        cur: str | None = step_id
        while cur is not None and cur != "source" and cur not in out:
            out.add(cur)
            cur = by_id[cur].input
        return out

    # -------------------------------------------------------------- fitting
    def fit(self, refs: list[ItemRef], splits: dict[str, str], resume: bool) -> None:
        """Fit each fittable detector once on the train split (or load its saved state).

        Detectors whose inputs do not depend on another detector still to be fitted share one pass over the
        train split, so upstream extractors (CLIP, ...) run once for all of them, not once per detector.
        """
        pending: list[tuple[ResolvedStep, Detector]] = []
        for rs, comp in self.steps:
            if not (isinstance(comp, Detector) and comp.fittable):
                continue
            path = comp.state_path()
            if path.exists() and resume:
                comp.load_state(path)
                log.info("step %s: reusing fitted state %s", rs.id, path)
                continue
            pending.append((rs, comp))
        if not pending:
            return
        train = [r for r in refs if splits[r.item_id] in ("train", "all")]
        if any(splits[r.item_id] == "all" for r in train):
            log.warning("step(s) %s fitted and evaluated on the same items (no evaluate.split)",
                        ", ".join(rs.id for rs, _ in pending))
        while pending:
            waiting = {rs.id for rs, _ in pending}
            ready = [(rs, c) for rs, c in pending if not (self.ancestors(rs.id) - {rs.id}) & waiting]
            ready = ready or pending[:1]  # input chains cannot loop (validated), but never spin
            t = time.perf_counter()
            collected = self._fit_records(ready, train)
            shared = (time.perf_counter() - t) / len(ready)
            for rs, comp in ready:
                t = time.perf_counter()
                records, labels, groups = collected[rs.id]
                if not records:
                    raise RunStopped(self._nothing_to_fit(rs.id))
                summary = comp.fit(records, np.asarray(labels, dtype=int), np.asarray(groups))
                comp.save_state(comp.state_path())
                self.fit_summaries[rs.id] = {"items": len(records), "changed": int(np.sum(labels)),
                                             **(summary or {})}
                self.timings[f"fit:{rs.id}"] += shared + time.perf_counter() - t
            done = {rs.id for rs, _ in ready}
            pending = [(rs, c) for rs, c in pending if rs.id not in done]

    def _fit_records(self, steps: list[tuple[ResolvedStep, Detector]], train: list[ItemRef]
                     ) -> dict[str, tuple[list[Any], list[int], list[str]]]:
        """One pass over the train split (and augmented copies) giving each step in ``steps`` its records."""
        from satcore.evaluate.augment import augment_item, copies_per_class, item_rng

        aug = self.spec.evaluate.augment
        split = self.spec.evaluate.split
        group_by = split.group_by if split is not None else None
        ids = {rs.id for rs, _ in steps}
        only = set().union(*(self.ancestors(rs.id) for rs, _ in steps)) - ids
        collected: dict[str, tuple[list[Any], list[int], list[str]]] = {rs.id: ([], [], [])
                                                                        for rs, _ in steps}
        bs = self.spec.execution.batch_size
        batches = [train[i:i + bs] for i in range(0, len(train), bs)]
        per_class: dict[int, int] | None = None
        if aug is not None:
            known = [int(r.meta["change"]) for r in train if r.meta.get("change") not in (None, "")]
            if aug.balance and len(known) < len(train):
                # folder-pairs labels are only known once the masks are read: a first pass counts the classes
                # (reading only; no step runs), so balancing works for every source
                known = [int(x.image_label) for _refs, loaded in self.iter_loaded(batches) for x in loaded
                         if isinstance(x, Item) and x.image_label is not None]
            if known:
                per_class = copies_per_class(np.asarray(known, dtype=int), aug.copies, aug.balance)

        def group_of(item: Item) -> str:
            # augmented copies stay in their source item's group (the split is over originals only)
            key = item.meta.get(group_by) if group_by is not None else None
            return str(key if key is not None else item.meta.get("augmented_from", item.item_id))

        def consume(items: list[Item]) -> None:
            outs, errs = self.run_steps(items, only)
            ok = [i for i, e in enumerate(errs) if e is None]
            if not ok:
                return
            for rs, comp in steps:
                inputs = [items[i] if rs.input == "source" else outs[i][rs.input] for i in ok]
                recs = comp.fit_records(Batch([items[i] for i in ok], inputs, rs.id))
                records, labels, groups = collected[rs.id]
                for i, rec in zip(ok, recs, strict=True):
                    records.append(rec)
                    labels.append(int(items[i].image_label or 0))
                    groups.append(group_of(items[i]))

        bar = self._bar(len(train), f"fit {', '.join(sorted(ids))}")
        self.fit_counts = {"train": len(train), "read": 0, "labelled": 0}
        for refs, loaded in self.iter_loaded(batches):
            items = [x for x in loaded if isinstance(x, Item) and x.image_label is not None]
            self.fit_counts["read"] += sum(isinstance(x, Item) for x in loaded)
            self.fit_counts["labelled"] += len(items)
            if items:
                consume(items)
            if aug is not None:
                # copies of this batch's (training) items only, run in chunks of batch_size to bound memory
                extra: list[Item] = []
                for it in items:
                    n = per_class.get(int(it.image_label or 0), aug.copies) if per_class else aug.copies
                    for k in range(n):
                        extra.append(augment_item(it, item_rng(self.spec.seed, it.item_id, k), aug.scale,
                                                  aug.rotate, k))
                        if len(extra) >= bs:
                            consume(extra)
                            extra = []
                if extra:
                    consume(extra)
            bar.update(len(refs))
        bar.close()
        return collected

    def _nothing_to_fit(self, step_id: str) -> str:
        """Why a fittable step got no training records, and what to change."""
        c = self.fit_counts
        head = f"step {step_id!r} needs labelled training items to fit, but "
        if c["train"] == 0:
            why = "the train split is empty (evaluate.split left every item on the test side)"
        elif c["read"] == 0:
            why = f"none of the {c['train']} training items could be read (see errors.jsonl and run.log)"
        elif c["labelled"] == 0:
            why = (f"none of the {c['read']} training items read has a label: check that the source finds "
                   "the label files (folder-pairs: `<root>/label/`, and its `labels:` setting)")
        else:
            why = f"every one of the {c['labelled']} labelled training items failed in an upstream step"
        return (head + why + ". A step that needs no fit (e.g. probability-delta with a fixed `threshold:`) "
                "runs without labels.")

    def _bar(self, total: int, desc: str, unit: str = "item") -> Any:
        from tqdm.auto import tqdm

        return tqdm(total=total, desc=desc, unit=unit, disable=not self.progress or None, file=sys.stderr,
                    dynamic_ncols=True, leave=False)

    # -------------------------------------------------------------- rows
    def rows_for(self, refs: list[ItemRef], loaded: list[Any],
                 splits: dict[str, str]) -> list[dict[str, Any]]:
        """Process one batch and turn it into result rows (writing maps on the way)."""
        rows: list[dict[str, Any]] = []
        items: list[Item] = []
        where: list[int] = []
        for ref, x in zip(refs, loaded, strict=True):
            row = {"item_id": ref.item_id, "split": splits.get(ref.item_id), "error": None}
            if isinstance(x, BaseException):
                if self.spec.execution.on_error == "fail":
                    raise RunStopped(f"item {ref.item_id!r} could not be read: {x} (on_error: fail)") from x
                _set_error(row, "source", x)
            else:
                where.append(len(rows))
                items.append(x)
            rows.append(row)
        if not items:
            return rows
        outputs, errors = self.run_steps(items)
        for k, item in enumerate(items):
            row = rows[where[k]]
            if errors[k] is not None:
                _set_error(row, *errors[k])  # type: ignore[misc]
                continue
            try:
                self._fill_row(row, item, outputs[k])
            except Exception as exc:
                _set_error(row, "output", exc)
        return rows

    def _fill_row(self, row: dict[str, Any], item: Item, outs: dict[str, Any]) -> None:
        truth = item.label
        if item.image_label is not None:
            row["truth.change"] = int(item.image_label)
            row["_truth"] = int(item.image_label)
        if truth is not None:
            valid = item.valid
            n_valid = int(truth.size if valid is None else valid.sum())
            n_changed = int((truth if valid is None else truth & valid).sum())
            row["truth.changed_fraction"] = n_changed / n_valid if n_valid else None
            row["_truth_px"] = [n_changed, n_valid]
        bands: list[np.ndarray] = []
        names: list[str] = []
        for rs, comp in self.steps:
            out = outs.get(rs.id)
            for k, v in comp.columns(out).items():
                row[f"{rs.id}.{k}"] = v
            if not isinstance(out, Detection):
                continue
            if out.label is not None:
                row[f"_pred.{rs.id}"] = int(out.label)
            score_q = None
            if out.score_map is not None:
                if out.score_map.shape != item.reference.shape:
                    raise ComponentError(f"step {rs.id!r} returned a {out.score_map.shape} map for a "
                                         f"{item.reference.shape} item")
                _, score_q = quantise(out.score_map, self.bins)
            if out.score_map is not None or out.label_map is not None:
                bands.append(score_q if score_q is not None
                             else np.full(item.reference.shape, np.nan, np.float32))
                bands.append((out.label_map if out.label_map is not None
                              else np.zeros(item.reference.shape, bool)).astype(np.float32))
                names += [f"{rs.id}.score", f"{rs.id}.label"]
            if truth is not None and (out.score_map is not None or out.label_map is not None):
                st = PixelStats.from_maps(truth, out.label_map, out.score_map, item.valid, self.bins)
                if out.label_map is not None:
                    row[f"_px.{rs.id}"] = [st.tp, st.fp, st.fn, st.tn]
                    cm = confusion_metrics(st.tp, st.fp, st.fn, st.tn)
                    row[f"{rs.id}.pixel_f1"] = cm["f1"]
                    row[f"{rs.id}.pixel_iou"] = cm["iou"]
                if st.hist_pos is not None and st.hist_neg is not None:
                    row[f"{rs.id}.pixel_auc"] = auc_from_hist(st.hist_pos, st.hist_neg)[0]
                    row[f"_hp.{rs.id}"] = _sparse(st.hist_pos)
                    row[f"_hn.{rs.id}"] = _sparse(st.hist_neg)
        if bands and self.spec.output.maps:
            write_geotiff(self.out / "maps" / f"{item.item_id}.tif", np.stack(bands).astype(np.float32),
                          like=item.reference, band_descriptions=names)


def _has_maps(out: Path) -> bool:
    maps = out / "maps"
    return maps.is_dir() and any(maps.iterdir())


def _no_maps_note(engine: Engine) -> str:
    """Why ``output.maps: true`` wrote no ``maps/``: which steps gave only image-level results."""
    dets = [f"{rs.id} ({c.name})" for rs, c in engine.steps if isinstance(c, Detector)]
    which = (f"{', '.join(dets)} gave image-level results only" if dets
             else "the pipeline has no detector step")
    return ("output.maps is true, but no step produced a per-pixel change map, so maps/ was not written: "
            f"{which}. Maps come from detectors that return a score map or label map per pixel "
            "(pixel-level methods such as image differencing or CVA); set output.maps: false to silence this")


def _without_step_prefix(msg: str, step_id: str, name: str) -> str:
    """``msg`` without a leading ``step 'id' (name):`` that the setup wrapper is about to add again.

    Components often name their step in their own errors (they are raised outside runs too); inside the
    wrapper that read "step 'forest' (random-forest) could not start: step 'forest' (random-forest) params:
    …". Only the repeated words go; a message naming something else is kept whole.
    """
    head = f"step {step_id!r}"
    if not msg.startswith(head):
        return msg
    rest = msg[len(head):].removeprefix(f" ({name})")
    if rest[:1] not in (":", " "):  # e.g. "step 'a'b": not our prefix
        return msg
    rest = rest.removeprefix(":").lstrip()
    return rest or msg


def _default_loading(ex: Any) -> dict[str, Any]:
    """``manifest.json`` → ``loading`` when no probe ran."""
    if ex.executor == "dask":
        return {"mode": "serial", "where": "in each Dask worker"}
    return {"mode": "serial" if ex.loader_workers <= 0 else "threads"}


_THREAD_ENV = threading.local()


def _read_ahead(batches: list[list[ItemRef]], submit: Any,
                collect: Any) -> Iterator[tuple[list[ItemRef], list[Any]]]:
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
    """Load items in a loader process, returning items or exceptions as ``Engine._load`` does.

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


def _sparse(hist: np.ndarray) -> list[int]:
    """A histogram as ``[bin, count, bin, count, ...]`` (most bins of one item are empty)."""
    nz = np.flatnonzero(hist)
    return np.stack([nz, hist[nz]], axis=1).ravel().astype(np.int64).tolist()


def dense_hist(pairs: Sequence[int] | None, bins: int) -> np.ndarray:
    """Inverse of :func:`_sparse`."""
    out = np.zeros(bins, np.int64)
    if pairs is not None and len(pairs):
        a = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
        out[a[:, 0]] = a[:, 1]
    return out


def _set_error(row: dict[str, Any], step: str, exc: BaseException) -> None:
    row["error"] = str(exc) or type(exc).__name__
    row["_error_step"] = step
    row["_error_type"] = type(exc).__name__
    if not isinstance(exc, SatcoreError):
        row["_traceback"] = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))[-4000:]
    log.warning("item %s failed in %s: %s: %s", row["item_id"], step, type(exc).__name__, exc)


# ------------------------------------------------------------------------------------------ journal

class Journal:
    """Part files written atomically, about once a second: the source of truth for resume and the outputs."""

    def __init__(self, out: Path, flush_rows: int = 4096, flush_seconds: float = 1.0,
                 flush_bytes: int = 256 << 10) -> None:
        self.dir = out / "parts"
        self.dir.mkdir(parents=True, exist_ok=True)
        existing = sorted(self.dir.glob("part-*.parquet"))
        self.session = 1 + max((int(p.name.split("-")[1]) for p in existing), default=0)
        self.counter = 0
        self.flush_rows = flush_rows
        self.flush_seconds = flush_seconds
        self.flush_bytes = flush_bytes
        self._buffer: list[Any] = []  # pyarrow Tables
        self._rows = 0
        self._bytes = 0
        self._since = 0.0

    def parts(self) -> list[Path]:
        """Part files in write order."""
        return sorted(self.dir.glob("part-*.parquet"))

    def add(self, rows: list[dict[str, Any]]) -> None:
        """Buffer finished rows; written as one part after `flush_seconds`, `flush_rows` or `flush_bytes`.

        The clock starts at the oldest buffered row; rows are held as Arrow tables (a row's sparse histograms
        take ~16 KB there against ~150 KB as Python lists). Parts stay small (256 KB): bigger ones raised
        the peak memory of the final pass (+18 MB at 1 MB parts, benchmarks/memory_scaling.py). A part per
        batch cost a Parquet write then and a read at the end (≈ 2 ms together): with small batches of cheap
        items, 5-10 % of a run. A killed run loses at most ``flush_seconds`` of work, which ``--resume``
        redoes; an error stopping the run flushes first.
        """
        if not rows:
            return
        if not self._buffer:
            self._since = time.monotonic()
        t = _rows_table(rows)
        self._buffer.append(t)
        self._rows += t.num_rows
        self._bytes += t.nbytes
        if (self._rows >= self.flush_rows or self._bytes >= self.flush_bytes
                or time.monotonic() - self._since >= self.flush_seconds):
            self.flush()

    def flush(self) -> None:
        """Write the buffered rows (if any) as one part."""
        import pyarrow as pa

        tables, self._buffer, self._rows, self._bytes = self._buffer, [], 0, 0
        if not tables:
            return
        try:
            merged = [pa.concat_tables(tables, promote_options="permissive")] if len(tables) > 1 else tables
        except (pa.ArrowInvalid, pa.ArrowTypeError):  # a column of different types in two batches
            merged = tables
        for t in merged:
            self._write_table(t)

    def write(self, rows: list[dict[str, Any]]) -> None:
        """Write one batch of rows atomically, now."""
        if rows:
            self._write_table(_rows_table(rows))

    def _write_table(self, table: Any) -> None:
        import pyarrow.parquet as pq

        self.counter += 1
        path = self.dir / f"part-{self.session:04d}-{self.counter:06d}.parquet"
        tmp = path.with_name(f".{path.name}.tmp")
        pq.write_table(table, tmp)
        os.replace(tmp, path)

    def done(self) -> tuple[set[str], set[str]]:
        """Item ids finished without error, and those whose latest row is an error."""
        import pyarrow.parquet as pq

        latest: dict[str, bool] = {}
        for p in self.parts():
            t = pq.read_table(p, columns=["item_id", "error"])
            for iid, err in zip(t.column("item_id").to_pylist(), t.column("error").to_pylist(), strict=True):
                latest[iid] = err is None
        return {k for k, ok in latest.items() if ok}, {k for k, ok in latest.items() if not ok}

    def iter_final(self, columns_filter: Any = None, max_rows: int = 4096,
                   max_bytes: int = 4 << 20) -> Iterator[pd.DataFrame]:
        """The latest row of every item (across all parts), as DataFrames of bounded size.

        A DataFrame holds about ``max_rows`` rows or ``max_bytes`` of Arrow data, whichever comes first.
        Parts are read with pyarrow and converted to pandas a group at a time: one conversion per part costs
        more than the reading on small runs, and one for the whole journal would hold it all in memory. The
        byte bound matters for rows with pixel histograms: ~16 KB each in Arrow, ~75 KB as the Python lists
        pandas makes of them, so 4,096 such rows were ~300 MB at once.
        """
        import pyarrow as pa
        import pyarrow.parquet as pq

        parts = self.parts()
        last_part: dict[str, int] = {}
        for n, p in enumerate(parts):
            for iid in pq.read_table(p, columns=["item_id"]).column("item_id").to_pylist():
                last_part[iid] = n
        group: list[pa.Table] = []
        rows = nbytes = 0

        def flush() -> pd.DataFrame:
            df = pa.concat_tables(group, promote_options="permissive").to_pandas()
            return df.drop_duplicates("item_id", keep="last")

        for n, p in enumerate(parts):
            schema = pq.read_schema(p)
            cols = [c for c in schema.names if columns_filter is None or columns_filter(c)]
            t = pq.read_table(p, columns=cols)
            keep = [last_part.get(i) == n for i in t.column("item_id").to_pylist()]
            if not all(keep):
                t = t.filter(pa.array(keep))
            if t.num_rows:
                group.append(t)
                rows += t.num_rows
                nbytes += t.nbytes
            if rows >= max_rows or nbytes >= max_bytes:
                yield flush()
                group, rows, nbytes = [], 0, 0
        if group:
            yield flush()


def _rows_table(rows: list[dict[str, Any]]) -> Any:
    """Result rows as a pyarrow Table."""
    import pyarrow as pa

    # from_pylist takes the columns from the first row only: give every row every key (a failed first row
    # would otherwise drop the other rows' outputs)
    keys = list(dict.fromkeys(k for r in rows for k in r))
    return pa.Table.from_pylist([_plain({k: r.get(k) for k in keys}) for r in rows])


def _plain(row: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for k, v in row.items():
        if isinstance(v, np.generic):
            v = v.item()
        elif isinstance(v, float) and not np.isfinite(v):
            v = None
        out[k] = v
    return out


# ------------------------------------------------------------------------------------------ entry point

def _setup_logging(out: Path) -> logging.Handler:
    handler = logging.FileHandler(out / "run.log", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False
    return handler


def _versions(pm: SatcorePluginManager | None) -> dict[str, Any]:
    from satcore import __version__
    from satcore.plugins import get_plugin_manager

    pm = pm or get_plugin_manager()
    return {
        "satcore": __version__,
        "python": sys.version.split()[0],
        "plugins": {n: {"distribution": i.distribution, "version": i.version} for n, i in pm.info.items()},
    }


def run_pipeline(
    spec: str | os.PathLike[str] | Mapping[str, Any] | Pipeline,
    overrides: Mapping[str, Any] | None = None,
    resume: bool = False,
    overwrite: bool = False,
    progress: bool = True,
    output_dir: str | os.PathLike[str] | None = None,
    pm: SatcorePluginManager | None = None,
) -> RunResult:
    """Run a pipeline and write the output contract; see DESIGN.md ("Output contract")."""
    import warnings

    from rasterio.errors import NotGeoreferencedWarning

    # PNG/JPEG pairs have no georeference by design. The filter is set here, for the whole run, because
    # warnings.catch_warnings() inside the read-ahead threads is not thread-safe on its own: one thread's exit
    # can restore a filter list without the other's "ignore", letting the warning through at random.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=NotGeoreferencedWarning)
        return _run_pipeline(spec, overrides, resume, overwrite, progress, output_dir, pm)


def _run_pipeline(
    spec: str | os.PathLike[str] | Mapping[str, Any] | Pipeline,
    overrides: Mapping[str, Any] | None,
    resume: bool,
    overwrite: bool,
    progress: bool,
    output_dir: str | os.PathLike[str] | None,
    pm: SatcorePluginManager | None,
) -> RunResult:
    pipeline = spec if isinstance(spec, Pipeline) else load_pipeline(spec, overrides, pm)
    out = Path(output_dir) if output_dir else Path(pipeline.spec.output.dir)
    reused = prepare_output(out, resume, overwrite, pipeline.spec_hash())
    handler = _setup_logging(out)
    if reused:
        log.info(reused)
    started = datetime.now(timezone.utc)
    t0 = time.perf_counter()
    manifest: dict[str, Any] = {
        "spec_version": pipeline.spec.version,
        "spec_hash": pipeline.spec_hash(),
        "spec_path": str(pipeline.path) if pipeline.path else None,
        "name": pipeline.name,
        "spec": pipeline.resolved(),
        "versions": _versions(pm),
        "params_versions": {s.id: s.cls.params_version for s in pipeline.steps},
        "executor": pipeline.spec.execution.executor,
        "workers": pipeline.spec.execution.workers,
        "status": "running",
        "started": started.isoformat(),
    }
    engine: Engine | None = None
    try:
        engine = Engine(pipeline, out, progress)
        log.info("run %s → %s (spec hash %s)", pipeline.name, out, manifest["spec_hash"])
        refs = list(engine.source.list_items())
        problems = engine.source.list_problems()
        if pipeline.spec.execution.limit:
            refs = refs[: pipeline.spec.execution.limit]
        split = pipeline.spec.evaluate.split
        try:
            split_names = assign_split_names(refs, split, pipeline.spec.seed)
        except ValueError as exc:
            raise UsageError(f"{pipeline.path or '<spec>'}: evaluate.split: {exc}") from exc
        splits = {r.item_id: s for r, s in zip(refs, split_names, strict=True)}
        line, warning = describe_split(refs, split_names, split)
        log.info(line)
        if warning:
            log.warning(warning)
        write_json(out / "manifest.json", manifest)  # early: --resume checks the spec hash
        engine.setup()
        engine.fit(refs, splits, resume)

        journal = Journal(out)
        done, _failed = journal.done() if resume else (set(), set())
        todo = [r for r in refs if r.item_id not in done]
        skipped = len(refs) - len(todo)
        bs = pipeline.spec.execution.batch_size
        if pipeline.spec.execution.executor == "dask":
            from satcore.engine.dask_executor import run_dask

            run_dask(engine, todo, splits, journal, bs)
        else:
            bar = engine._bar(len(todo), pipeline.name)
            batches = [todo[i:i + bs] for i in range(0, len(todo), bs)]
            try:
                for refs_b, loaded in engine.iter_loaded(batches):
                    journal.add(engine.rows_for(refs_b, loaded, splits))
                    bar.update(len(refs_b))
            finally:
                journal.flush()  # an error stopping the run keeps what was finished
            bar.close()
        # problems found while listing (missing partner/label) are failed items too
        prob_rows = []
        for iid, etype, msg in problems:
            if iid in done:
                continue
            if pipeline.spec.execution.on_error == "fail":
                raise RunStopped(f"item {iid!r}: {msg} (on_error: fail)")
            prob_rows.append({"item_id": iid, "split": None, "error": msg, "_error_step": "source",
                              "_error_type": etype})
            log.warning("item %s failed in source: %s", iid, msg)
        journal.write(prob_rows)

        from satcore.outputs.writer import finalize

        summary = finalize(out, pipeline, journal, engine)
        notes: list[str] = []
        if pipeline.spec.output.maps and summary["ok"] and not _has_maps(out):
            note = _no_maps_note(engine)
            if "maps" in pipeline.spec.output.model_fields_set:  # asked for: say it on the console too
                log.warning(note)
                notes.append(note)
            else:  # the default: image-level pipelines are common, so only run.log hears of it
                log.info(note)
        manifest.update({
            "status": "complete",
            "items": {"ok": summary["ok"], "failed": summary["failed"], "skipped": skipped,
                      "total": summary["ok"] + summary["failed"]},
            "models": [m for _s, c in engine.steps for m in c.models_used()],
            "fitted": engine.fit_summaries,
            "loading": engine.loading or _default_loading(pipeline.spec.execution),
            "wall_time_s": {"total": round(time.perf_counter() - t0, 3),
                            **{k: round(v, 3) for k, v in engine.timings.items()}},
            "ended": datetime.now(timezone.utc).isoformat(),
        })
        write_json(out / "manifest.json", manifest)
        if pipeline.spec.output.report:
            from satcore.outputs.report import build_report

            build_report(out)
        log.info("done: %d ok, %d failed, %d skipped", summary["ok"], summary["failed"], skipped)
        return RunResult(out, 0, summary["ok"], summary["failed"], skipped, summary["metrics"], manifest,
                         notes)
    except SatcoreError as exc:
        log.error("%s", exc)
        manifest.update({"status": "stopped", "error": str(exc)})
        # always: the folder is this run's now, and a stopped manifest lets a plain rerun reuse it
        write_json(out / "manifest.json", manifest)
        raise
    finally:
        if engine is not None:
            engine.teardown()
        log.removeHandler(handler)
        handler.close()
