"""Train/test splits grouped by a key, so crops of one tile never straddle the split."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from satcore.data import ItemRef


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
