"""What every metric block shares: the protocol, exact order-free sums, and reading records back.

Records travel through the run journal (Parquet), so what comes back is not what went in: a list comes
back as a numpy array, a missing value as ``None`` or NaN, an absent key as NaN. The readers here
(:func:`seq`, :func:`num`, :func:`present`) accept both forms, so an accumulator gives the same result on
a fresh record and on one read back from the journal.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np

Record = dict[str, Any]
"""One item's record: a flat dict of numbers, strings, booleans, ``None`` and 1-D lists of those."""


@runtime_checkable
class MetricBlock(Protocol):
    """One block of ``metrics.json`` under ``steps.<step_id>.<split>``.

    ``item_record`` runs once per item while the run streams; the engine stores its dict in the journal
    (keys prefixed by the caller). At the end the writer builds one accumulator per (step, split) with the
    block's settings, feeds it every stored record through ``add`` (any order, once per item) and writes
    ``result()`` under ``name``.
    """

    name: ClassVar[str]

    @staticmethod
    def item_record(truth: Any, prediction: Any, **settings: Any) -> Record | None:
        """One item's reduced, Parquet-friendly record, or ``None`` when the item is not scored."""
        ...

    def add(self, item_id: str, record: Mapping[str, Any]) -> None:
        """Fold in one item's record (as stored, or as read back from the journal)."""
        ...

    def result(self) -> dict[str, Any]:
        """The block in the DESIGN.md layout, with ``items`` and ``<key>_reason`` beside each ``null``."""
        ...


class ExactSum:
    """A float sum whose result is the correctly rounded exact total, whatever the order of the terms.

    Shewchuk's partials (the algorithm behind :func:`math.fsum`), kept between calls so a sum over a
    streamed split uses a few floats of memory and gives the same bits for any item order (a plain float
    sum differs in the last bits when items arrive in another order: executors, batches, ``--resume``).
    """

    __slots__ = ("_partials", "_special")

    def __init__(self) -> None:
        self._partials: list[float] = []
        self._special = 0.0  # inf/NaN terms: kept apart, so they show in the value instead of corrupting it

    def add(self, x: float) -> None:
        """Add one term."""
        x = float(x)
        if not math.isfinite(x):
            self._special += x
            return
        partials = self._partials
        i = 0
        for y in partials:
            if abs(x) < abs(y):
                x, y = y, x
            hi = x + y
            lo = y - (hi - x)
            if lo:
                partials[i] = lo
                i += 1
            x = hi
        partials[i:] = [x]

    @property
    def value(self) -> float:
        """The correctly rounded sum (inf or NaN when such a term was added)."""
        return self._special if self._special else math.fsum(self._partials)


class DuplicateItemError(ValueError):
    """The same item id was added twice to one accumulator (a bug in the caller, not in user input)."""


class _Seen:
    """Item ids already added, so a duplicate is refused instead of silently counted twice."""

    def __init__(self) -> None:
        self.ids: set[str] = set()

    def check(self, block: str, item_id: str) -> None:
        if item_id in self.ids:
            raise DuplicateItemError(f"{block}: item {item_id!r} was added twice; each item's record is "
                                     "added once (the journal's final rows)")
        self.ids.add(item_id)

    def __len__(self) -> int:
        return len(self.ids)


def missing(x: Any) -> bool:
    """``None``, NaN (a float or a 0-d array) or pandas' NA: the forms an absent value comes back in."""
    if x is None:
        return True
    if isinstance(x, (float, np.floating)):
        return bool(x != x)
    return type(x).__name__ in ("NAType", "NaTType")


def present(record: Mapping[str, Any], key: str) -> bool:
    """Whether ``record`` holds a non-missing ``key``."""
    return key in record and not missing(record[key])


def listlike(x: Any) -> bool:
    """A list, tuple or numpy array (not a string): the forms a stored list takes."""
    return isinstance(x, np.ndarray) or (isinstance(x, Sequence) and not isinstance(x, (str, bytes)))


def seq(x: Any) -> list[Any]:
    """A stored list (list, tuple or numpy array from Parquet) as a Python list; missing → ``[]``."""
    if missing(x):
        return []
    if isinstance(x, np.ndarray):
        return [v.item() if isinstance(v, np.generic) else v for v in x.ravel().tolist()]
    if isinstance(x, (str, bytes)):
        return [x]
    if isinstance(x, Sequence):
        return [v.item() if isinstance(v, np.generic) else v for v in x]
    return list(x)


def num(x: Any) -> float | None:
    """A stored number as a float; missing → ``None``."""
    return None if missing(x) else float(x)


def put(out: dict[str, Any], key: str, value: float | None, reason: str | None = None) -> None:
    """Set ``out[key]``; a ``None`` (or non-finite) value gets ``<key>_reason`` beside it."""
    if value is not None and not math.isfinite(value):
        reason = reason or f"not finite ({value})"
        value = None
    out[key] = None if value is None else float(value)
    if value is None:
        out[f"{key}_reason"] = reason or "undefined"
