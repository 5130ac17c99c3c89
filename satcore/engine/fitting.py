"""Fitting: one pass over the train split (and augmented copies) fits the fittable detectors."""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np

from satcore.components import Batch, Detector
from satcore.data import Item, ItemRef
from satcore.engine.steps import Engine, has_inputs, step_input
from satcore.errors import RunStopped
from satcore.spec import ResolvedStep

log = logging.getLogger("satcore")

Records = tuple[list[Any], list[int], list[str]]  # a step's fit records, image labels and groups


def fit(engine: Engine, refs: list[ItemRef], splits: dict[str, str], resume: bool) -> None:
    """Fit each fittable detector once on the train split (or load its saved state).

    Detectors whose inputs do not depend on another detector still to be fitted share one pass over the
    train split, so upstream extractors (CLIP, ...) run once for all of them, not once per detector.
    """
    pending: list[tuple[ResolvedStep, Detector]] = []
    for rs, comp in engine.steps:
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
        ready = [(rs, c) for rs, c in pending if not (engine.ancestors(rs.id) - {rs.id}) & waiting]
        ready = ready or pending[:1]  # input chains cannot loop (validated), but never spin
        t = time.perf_counter()
        collected = fit_records(engine, ready, train)
        shared = (time.perf_counter() - t) / len(ready)
        for rs, comp in ready:
            t = time.perf_counter()
            records, labels, groups = collected[rs.id]
            if not records:
                raise RunStopped(nothing_to_fit(rs.id, engine.fit_counts))
            summary = comp.fit(records, np.asarray(labels, dtype=int), np.asarray(groups))
            comp.save_state(comp.state_path())
            engine.fit_summaries[rs.id] = {"items": len(records), "changed": int(np.sum(labels)),
                                           **(summary or {})}
            engine.timings[f"fit:{rs.id}"] += shared + time.perf_counter() - t
        done = {rs.id for rs, _ in ready}
        pending = [(rs, c) for rs, c in pending if rs.id not in done]


def fit_records(engine: Engine, steps: list[tuple[ResolvedStep, Detector]],
                train: list[ItemRef]) -> dict[str, Records]:
    """One pass over the train split (and augmented copies) giving each step in ``steps`` its records."""
    from satcore.evaluate.augment import augment_item, copies_per_class, item_rng

    spec = engine.spec
    aug = spec.evaluate.augment
    split = spec.evaluate.split
    group_by = split.group_by if split is not None else None
    ids = {rs.id for rs, _ in steps}
    only = set().union(*(engine.ancestors(rs.id) for rs, _ in steps)) - ids
    collected: dict[str, Records] = {rs.id: ([], [], []) for rs, _ in steps}
    bs = spec.execution.batch_size
    batches = [train[i:i + bs] for i in range(0, len(train), bs)]
    per_class: dict[int, int] | None = None
    if aug is not None:
        known = [int(r.meta["change"]) for r in train if r.meta.get("change") not in (None, "")]
        if aug.balance and isinstance(aug.copies, int) and len(known) < len(train):
            # folder-pairs labels are only known once the masks are read: a first pass counts the classes
            # (reading only; no step runs), so balancing works for every source
            known = [int(x.image_label) for _refs, loaded in engine.loader.iter_loaded(batches)
                     for x in loaded if isinstance(x, Item) and x.image_label is not None]
        if known or not isinstance(aug.copies, int):  # copies per class need no counts
            per_class = copies_per_class(np.asarray(known, dtype=int), aug.copies, aug.balance)

    def group_of(item: Item) -> str:
        # augmented copies stay in their source item's group (the split is over originals only)
        key = item.meta.get(group_by) if group_by is not None else None
        return str(key if key is not None else item.meta.get("augmented_from", item.item_id))

    def consume(items: list[Item]) -> None:
        outs, _failed = engine.run_steps(items, only)
        for rs, comp in steps:
            # the items whose every input this step reads ran (a failure elsewhere upstream costs it nothing)
            ok = [i for i in range(len(items)) if has_inputs(rs, outs[i])]
            if not ok:
                continue
            inputs = [step_input(rs, items[i], outs[i]) for i in ok]
            recs = comp.fit_records(Batch([items[i] for i in ok], inputs, rs.id))
            records, labels, groups = collected[rs.id]
            for i, rec in zip(ok, recs, strict=True):
                records.append(rec)
                labels.append(int(items[i].image_label or 0))
                groups.append(group_of(items[i]))

    bar = engine.bar(len(train), f"fit {', '.join(sorted(ids))}")
    counts = engine.fit_counts = {"train": len(train), "read": 0, "labelled": 0}
    for refs, loaded in engine.loader.iter_loaded(batches):
        items = [x for x in loaded if isinstance(x, Item) and x.image_label is not None]
        counts["read"] += sum(isinstance(x, Item) for x in loaded)
        counts["labelled"] += len(items)
        if items:
            consume(items)
        if aug is not None:
            # copies of this batch's (training) items only, run in chunks of batch_size to bound memory
            extra: list[Item] = []
            for it in items:
                n = (per_class.get(int(it.image_label or 0), 0) if per_class is not None
                     else aug.copies if isinstance(aug.copies, int) else 0)
                for k in range(n):
                    rng = item_rng(spec.seed, it.item_id, k)
                    extra.append(augment_item(it, rng, aug.scale, aug.rotate, k))
                    if len(extra) >= bs:
                        consume(extra)
                        extra = []
            if extra:
                consume(extra)
        bar.update(len(refs))
    bar.close()
    return collected


def nothing_to_fit(step_id: str, counts: dict[str, int]) -> str:
    """Why a fittable step got no training records, and what to change (``counts``: ``Engine.fit_counts``)."""
    head = f"step {step_id!r} needs labelled training items to fit, but "
    if counts["train"] == 0:
        why = "the train split is empty (evaluate.split left every item on the test side)"
    elif counts["read"] == 0:
        why = f"none of the {counts['train']} training items could be read (see errors.jsonl and run.log)"
    elif counts["labelled"] == 0:
        why = (f"none of the {counts['read']} training items read has a label: check that the source finds "
               "the label files (folder-pairs: `<root>/label/`, and its `labels:` setting)")
    else:
        why = f"every one of the {counts['labelled']} labelled training items failed in an upstream step"
    return (head + why + ". A step that needs no fit (e.g. probability-delta with a fixed `threshold:`) "
            "runs without labels.")
