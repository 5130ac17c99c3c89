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
