"""``Engine``: one run's components, their set-up and teardown, and running the steps over a batch."""

from __future__ import annotations

import logging
import sys
import time
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from satcore.components import Batch, Component, Detector, RunContext, Source
from satcore.data import Item
from satcore.engine.loading import ItemLoader
from satcore.engine.tiling import crop_to_core
from satcore.errors import ComponentError, RunStopped, SatcoreError
from satcore.spec import Pipeline, ResolvedStep

log = logging.getLogger("satcore")

class Engine:
    """Runs one validated pipeline's steps in this process (the driver, or one Dask worker)."""

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
        self.loader = ItemLoader(self.source, ex.loader_workers, ex.loader, self.context)
        self.timings: dict[str, float] = defaultdict(float)
        self.bins = self.spec.evaluate.bins
        self.fit_summaries: dict[str, Any] = {}
        #: training items seen by the last fit pass (train split, read, labelled): why nothing could be fitted
        self.fit_counts = {"train": 0, "read": 0, "labelled": 0}

    @property
    def loading(self) -> dict[str, Any] | None:
        """How items were read (``manifest.json`` → ``loading``), once a pass has read some."""
        return self.loader.loading

    def detector_ids(self) -> tuple[str, ...]:
        """The ids of the detector steps, in spec order."""
        return tuple(rs.id for rs, c in self.steps if isinstance(c, Detector))

    def bar(self, total: int, desc: str, unit: str = "item") -> Any:
        """A progress bar on stderr (silent without ``progress``)."""
        from tqdm.auto import tqdm

        return tqdm(total=total, desc=desc, unit=unit, disable=not self.progress or None, file=sys.stderr,
                    dynamic_ncols=True, leave=False)

    def setup(self) -> None:
        """Set up every component before any item streams; failures stop the run (exit 1).

        With progress on, a status line names the step being set up: loading a model (importing torch,
        reading a checkpoint) takes seconds before the first item, and the terminal should not look stuck.
        """
        comps = [("source", self.source), *[(s.id, c) for s, c in self.steps]]
        bar = self.bar(len(comps), "setting up", unit="step")
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
        self.loader.close()
        for sid, comp in [("source", self.source), *[(s.id, c) for s, c in self.steps]]:
            try:
                comp.teardown()
            except Exception as exc:
                log.warning("step %r (%s): teardown failed: %s: %s", sid, comp.name, type(exc).__name__, exc)

    def run_steps(self, items: list[Item], only: set[str] | None = None
                  ) -> tuple[list[dict[str, Any]], list[dict[str, BaseException]]]:
        """Run the steps over items; returns each item's outputs and its failed steps (step id → error).

        A step runs on an item when every one of its inputs has an output for it: a step that failed on an
        item (or could not run) takes its dependants with it for that item, and only those; every other
        step still runs. A failing batch is retried item by item, so one bad item fails alone. ``only``:
        run just these steps (the fit pass's upstream steps).
        """
        outputs: list[dict[str, Any]] = [{} for _ in items]
        failed: list[dict[str, BaseException]] = [{} for _ in items]
        for rs, comp in self.steps:
            if only is not None and rs.id not in only:
                continue
            alive = [i for i in range(len(items)) if has_inputs(rs, outputs[i])]
            if not alive:
                continue

            def call(idx: list[int], rs: ResolvedStep = rs, comp: Component = comp) -> list[Any]:
                inputs = [step_input(rs, items[i], outputs[i]) for i in idx]
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
                    failed[alive[0]][rs.id] = batch_exc
                else:
                    for i in alive:
                        try:
                            outputs[i][rs.id] = call([i])[0]
                        except Exception as exc:
                            failed[i][rs.id] = exc
            self.timings[rs.id] += time.perf_counter() - t
            if self.spec.execution.on_error == "fail":
                for i in alive:
                    if rs.id in failed[i]:
                        e = failed[i][rs.id]
                        raise RunStopped(f"item {items[i].item_id!r} failed in step {rs.id!r}: "
                                         f"{type(e).__name__}: {e} (on_error: fail)") from e
        if only is None:  # tiles of a scene were read with a halo: back to their cores (docs/scale.md)
            crop_to_core(items, outputs)
        return outputs, failed

    def ancestors(self, step_id: str) -> set[str]:
        """The step and every step upstream of it (``source`` not included)."""
        return {step_id, *self.pipeline.ancestors(step_id)}

    def failed_with_dependants(self, failed: Iterable[str]) -> list[str]:
        """The steps in ``failed`` and every step downstream of them, in run order."""
        out = set(failed)
        for sid in list(out):
            out.update(self.pipeline.dependants(sid))
        return [s for s in self.pipeline.order if s in out]


def has_inputs(rs: ResolvedStep, outputs: dict[str, Any]) -> bool:
    """Whether every input of ``rs`` has an output for the item (``source``: always)."""
    return all(sid == "source" or sid in outputs for sid in rs.inputs)


def step_input(rs: ResolvedStep, item: Item, outputs: dict[str, Any]) -> Any:
    """What step ``rs`` consumes for one item (see :class:`~satcore.components.Batch`).

    One input: the item (``input: source``) or that step's output. Several (``input: [a, b]``, even a list of
    one): a dict input id → that step's output, ``"source"`` → the item, in the spec's order.
    """
    if rs.multi_input:
        return {sid: item if sid == "source" else outputs[sid] for sid in rs.inputs}
    return item if rs.input == "source" else outputs[rs.input]


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
