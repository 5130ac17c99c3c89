"""The run, start to end: validate → run folder → set up → fit on the train split → stream → write outputs.

Results are journaled as atomically written part files (``parts/``), so a run killed at any point loses only
the rows not yet flushed and ``--resume`` continues from there. ``results.parquet``, ``errors.jsonl``,
``metrics.json`` and ``report.html`` are derived from the journal at the end.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from satcore.components import Detector
from satcore.data import ItemRef, describe_exception
from satcore.engine.executors import get_executor
from satcore.engine.fitting import fit
from satcore.engine.journal import Journal
from satcore.engine.manifest import default_loading, start_manifest, write_manifest
from satcore.engine.result import RunResult
from satcore.engine.rows import problem_rows
from satcore.engine.run_folder import has_maps, hold_run_folder, prepare_output
from satcore.engine.steps import Engine
from satcore.engine.tiling import prepare_tiles, write_mosaics
from satcore.errors import RunStopped, SatcoreError, UsageError
from satcore.evaluate.split import assign_split_names, describe_split
from satcore.outputs.writer import OutputSettings, finalize
from satcore.spec import Pipeline, load_pipeline

if TYPE_CHECKING:
    from satcore.plugins import SatcorePluginManager

log = logging.getLogger("satcore")


def run_pipeline(
    spec: str | os.PathLike[str] | Mapping[str, Any] | Pipeline,
    overrides: Mapping[str, Any] | None = None,
    resume: bool = False,
    overwrite: bool = False,
    progress: bool = True,
    output_dir: str | os.PathLike[str] | None = None,
    pm: SatcorePluginManager | None = None,
) -> RunResult:
    """Run a pipeline and write the output contract; see DESIGN.md ("Output contract").

    Args:
        spec: a spec file, a spec mapping, or a loaded :class:`~satcore.spec.Pipeline`.
        overrides: ``--set`` style dotted keys applied to the spec.
        resume: continue the run in the output folder (same spec), skipping the items it finished.
        overwrite: replace the run in the output folder (only files satcore wrote).
        progress: show progress bars on stderr.
        output_dir: overrides ``output.dir``.
        pm: the plugin manager (default: the installed plugins).

    Raises:
        SatcoreError: the spec is invalid (exit 2) or the run stopped (``RunStopped``, exit 1).
    """
    import warnings

    from rasterio.errors import NotGeoreferencedWarning

    # PNG/JPEG pairs have no georeference by design. The filter is set here, for the whole run, because
    # warnings.catch_warnings() inside the read-ahead threads is not thread-safe on its own: one thread's exit
    # can restore a filter list without the other's "ignore", letting the warning through at random.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=NotGeoreferencedWarning)
        pipeline = spec if isinstance(spec, Pipeline) else load_pipeline(spec, overrides, pm)
        out = Path(output_dir) if output_dir else Path(pipeline.spec.output.dir)
        return _run(pipeline, out, resume, overwrite, progress, pm)


class _RunLogHandler(logging.FileHandler):
    def handleError(self, record: logging.LogRecord) -> None:  # noqa: N802 - logging's name
        """Drop the line: a full disk must not print a traceback per log line (the run stops on its own)."""


def _setup_logging(out: Path) -> logging.Handler:
    handler = _RunLogHandler(out / "run.log", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False
    return handler


def _splits(pipeline: Pipeline, refs: list[ItemRef]) -> dict[str, str]:
    """Item id → split name (``evaluate.split``), with the split's one-line summary in the log."""
    split = pipeline.spec.evaluate.split
    try:
        names = assign_split_names(refs, split, pipeline.spec.seed)
    except ValueError as exc:
        raise UsageError(f"{pipeline.path or '<spec>'}: evaluate.split: {exc}") from exc
    line, warning = describe_split(refs, names, split)
    log.info(line)
    if warning:
        log.warning(warning)
    return {r.item_id: s for r, s in zip(refs, names, strict=True)}


def _run(pipeline: Pipeline, out: Path, resume: bool, overwrite: bool, progress: bool,
         pm: SatcorePluginManager | None) -> RunResult:
    try:
        with hold_run_folder(out):  # one run per folder, from before --overwrite clears it to the end
            return _run_locked(pipeline, out, resume, overwrite, progress, pm)
    except OSError as exc:  # disk full, an unwritable folder: one line, exit 1
        raise RunStopped(f"the run in {out} stopped: {describe_exception(exc)}") from None


def _run_locked(pipeline: Pipeline, out: Path, resume: bool, overwrite: bool, progress: bool,
                pm: SatcorePluginManager | None) -> RunResult:
    reused = prepare_output(out, resume, overwrite, pipeline.spec_hash())
    handler = _setup_logging(out)
    if reused:
        log.info(reused)
    t0 = time.perf_counter()
    manifest = start_manifest(pipeline, pm, datetime.now(timezone.utc))
    ex = pipeline.spec.execution
    engine: Engine | None = None
    try:
        engine = Engine(pipeline, out, progress)
        log.info("run %s → %s (spec hash %s)", pipeline.name, out, manifest["spec_hash"])
        refs = list(engine.source.list_items())
        problems = engine.source.list_problems()
        if ex.limit:
            refs = refs[: ex.limit]
        splits = _splits(pipeline, refs)
        write_manifest(out, manifest)  # early: --resume checks the spec hash
        engine.setup()
        prepare_tiles(engine, refs)  # tiled scenes: halo and scene statistics (no-op otherwise)
        fit(engine, refs, splits, resume)

        journal = Journal(out)
        try:
            done, _failed = journal.done() if resume else (set(), set())
        except (OSError, ValueError) as exc:  # pyarrow's ArrowInvalid is a ValueError
            raise RunStopped(f"--resume: a part file in {out / 'parts'} is unreadable or corrupt "
                             f"({describe_exception(exc)}); delete it (its items run again) or use "
                             "--overwrite") from None
        todo = [r for r in refs if r.item_id not in done]
        # every item an earlier session finished stays in the table as it was (also one outside a smaller
        # execution.limit now): counted once, as skipped, so ok + failed + skipped is the table's length
        skipped = len(done)
        executor = get_executor(ex.executor)
        try:
            executor.run(engine, todo, splits, journal)
        finally:
            manifest["execution"] = executor.describe()
        journal.write(problem_rows(problems, done, ex.on_error == "fail", pipeline.order))

        settings = OutputSettings(detector_ids=engine.detector_ids(), bins=pipeline.spec.evaluate.bins,
                                  bootstrap=pipeline.spec.evaluate.bootstrap, seed=pipeline.spec.seed)
        summary = finalize(out, journal.iter_final(), settings)
        if pipeline.spec.output.maps:
            write_mosaics(out, refs)
        ok = summary.ok - skipped
        notes: list[str] = []
        if pipeline.spec.output.maps and summary.ok and not has_maps(out):
            note = _no_maps_note(engine)
            if "maps" in pipeline.spec.output.model_fields_set:  # asked for: say it on the console too
                log.warning(note)
                notes.append(note)
            else:  # the default: image-level pipelines are common, so only run.log hears of it
                log.info(note)
        manifest.update({
            "status": "complete",
            "items": {"ok": ok, "failed": summary.failed, "skipped": skipped,
                      "total": ok + summary.failed + skipped},
            "models": [m for _s, c in engine.steps for m in c.models_used()],
            "fitted": engine.fit_summaries,
            "loading": engine.loading or default_loading(ex),
            "wall_time_s": {"total": round(time.perf_counter() - t0, 3),
                            **{k: round(v, 3) for k, v in engine.timings.items()}},
            "ended": datetime.now(timezone.utc).isoformat(),
        })
        write_manifest(out, manifest)
        if pipeline.spec.output.maps:
            from satcore.outputs.polygons import polygons_after_run

            polygons_after_run(out, pipeline.spec.output.polygons)
        if pipeline.spec.output.report:
            from satcore.outputs.report import build_report

            try:
                build_report(out)
            except Exception as exc:  # the results are written: a report problem never fails the run
                log.error("report.html not written: %s", describe_exception(exc))
        log.info("done: %d ok, %d failed, %d skipped (finished earlier)", ok, summary.failed, skipped)
        return RunResult(out, ok, summary.failed, skipped, summary.metrics, manifest, notes)
    except (SatcoreError, OSError) as exc:
        stop = exc if isinstance(exc, SatcoreError) else RunStopped(f"the run in {out} stopped: "
                                                                     f"{describe_exception(exc)}")
        log.error("%s", stop)
        manifest.update({"status": "stopped", "error": str(stop)})
        # always: the folder is this run's now, and a stopped manifest lets a plain rerun reuse it
        with contextlib.suppress(OSError):  # the disk may still be full
            write_manifest(out, manifest)
        if stop is exc:
            raise
        raise stop from None
    finally:
        if engine is not None:
            engine.teardown()
        log.removeHandler(handler)
        handler.close()


def _no_maps_note(engine: Engine) -> str:
    """Why ``output.maps: true`` wrote no ``maps/``: which steps gave only image-level results."""
    dets = [f"{rs.id} ({c.name})" for rs, c in engine.steps if isinstance(c, Detector)]
    which = (f"{', '.join(dets)} gave image-level results only" if dets
             else "the pipeline has no detector step")
    return ("output.maps is true, but no step produced a per-pixel change map, so maps/ was not written: "
            f"{which}. Maps come from detectors that return a score map or label map per pixel "
            "(pixel-level methods such as image differencing or CVA); set output.maps: false to silence this")
