"""Train/test splits: random by group, or predefined by each item's metadata.

A random split (``evaluate.split: {test: 0.3, group_by: tile}``) keeps crops of one tile on one side. A
predefined one (``evaluate.split: {by: split}``) uses a dataset's published splits as they are.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np

from satcore.data import ItemRef

#: Split names in the order metrics.json and the report list them. ``all``: no split; ``val``: a
#: predefined validation split, scored on its own and never fitted on.
SPLIT_ORDER = ("all", "train", "val", "test")
#: The values an item's metadata may name under ``evaluate.split: {by: <key>}``.
PREDEFINED_SPLITS = ("train", "val", "test")


def assign_splits(refs: Sequence[ItemRef], test: float | None, group_by: str | None, seed: int) -> list[str]:
    """``train``/``test`` per ref with scikit-learn's ``GroupShuffleSplit``.

    Every ref gets ``all`` when ``test`` is None.
    """
    if test is None:
        return ["all"] * len(refs)
    if len(refs) < 2:
        return ["test"] * len(refs)
    from sklearn.model_selection import GroupShuffleSplit

    groups = np.array([r.group(group_by) for r in refs])
    if len(set(groups)) < 2:
        raise ValueError(f"cannot split: every item has the same `{group_by}` ({str(groups[0])!r}); "
                         "use another `evaluate.split.group_by` or none")
    gss = GroupShuffleSplit(n_splits=1, test_size=test, random_state=seed)
    _train, test_idx = next(gss.split(np.zeros(len(refs)), groups=groups))
    out = ["train"] * len(refs)
    for i in test_idx:
        out[i] = "test"
    return out


def splits_by_meta(refs: Sequence[ItemRef], key: str) -> list[str]:
    """Each ref's split as named by ``ref.meta[key]`` (``train``, ``val`` or ``test``).

    Raises:
        ValueError: an item has no value under ``key``, or one outside :data:`PREDEFINED_SPLITS`; the
            message names the first few items, their values and what is allowed.
    """
    out: list[str] = []
    bad: list[tuple[str, Any]] = []
    for r in refs:
        value = r.meta.get(key)
        name = value.strip() if isinstance(value, str) else value
        if name in PREDEFINED_SPLITS:
            out.append(str(name))
        else:
            bad.append((r.item_id, value))
    if bad:
        shown = "; ".join(f"item {i!r} has {'no `' + key + '`' if v in (None, '') else repr(v)}"
                          for i, v in bad[:5])
        more = f" (and {len(bad) - 5} more)" if len(bad) > 5 else ""
        allowed = ", ".join(PREDEFINED_SPLITS)
        raise ValueError(f"`by: {key}` needs each item's `{key}` to be one of {allowed}: {shown}{more}. "
                         "Fix the source's split values, or use a random split "
                         "(`evaluate.split: {test: 0.3}`)")
    return out


def assign_split_names(refs: Sequence[ItemRef], split: Any, seed: int) -> list[str]:
    """The split name of each ref under ``evaluate.split``.

    ``split`` is a :class:`~satcore.spec.model.SplitSpec`, a :class:`~satcore.spec.model.SplitBySpec` or
    ``None``; ``seed`` is the spec's, used unless the split names its own.

    Raises:
        ValueError: the split cannot be made (message for the user, without the ``evaluate.split`` prefix).
    """
    if split is None:
        return ["all"] * len(refs)
    if getattr(split, "by", None) is not None:
        return splits_by_meta(refs, split.by)
    return assign_splits(refs, split.test, split.group_by,
                         split.seed if split.seed is not None else seed)


def describe_split(refs: Sequence[ItemRef], names: Sequence[str], split: Any) -> tuple[str, str | None]:
    """:func:`split_summary` for any ``evaluate.split`` shape: a log line and an optional warning."""
    if split is not None and getattr(split, "by", None) is not None:
        counts = Counter(names)
        parts = ", ".join(f"{counts[s]} {s}" for s in PREDEFINED_SPLITS if counts[s])
        return f"split: by `{split.by}`: {parts or 'no'} items", None
    return split_summary(refs, names, split.test if split else None, split.group_by if split else None)


def split_summary(refs: Sequence[ItemRef], names: Sequence[str], test: float | None,
                  group_by: str | None) -> tuple[str, str | None]:
    """A line for the run log, and a warning when grouping left the split far from the fraction asked for.

    ``GroupShuffleSplit`` draws a fraction of the *groups*; a few large groups (a ``tile_pattern`` that lumps
    whole folders together, say) can leave the item split far from it.
    """
    n = len(names)
    n_test = sum(1 for s in names if s == "test")
    if test is None or n == 0:
        return f"split: none ({n} items)", None
    line = f"split: {n - n_test} train, {n_test} test items"
    if not group_by or n < 2:
        return line, None
    groups = [r.group(group_by) for r in refs]
    counts = np.unique(np.array(groups, dtype=object), return_counts=True)[1]
    line += f" ({len(counts)} `{group_by}` groups)"
    got = n_test / n
    if abs(got - test) <= 0.15:
        return line, None
    largest = int(counts.max())
    return line, (
        f"evaluate.split asked for {test:.0%} test items but grouping by `{group_by}` gave {got:.0%}: "
        f"{n} items fall into {len(counts)} groups and the largest holds {largest} ({largest / n:.0%}). "
        f"Check how the source derives `{group_by}` (folder-pairs: `tile_pattern`), or split without "
        "grouping (`group_by: null`).")
