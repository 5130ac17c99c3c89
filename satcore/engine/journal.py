"""The run journal: finished rows as small Parquet part files (``parts/``), written atomically.

The journal is the run's source of truth: ``--resume`` reads which items finished from it, and
``results.parquet``, ``errors.jsonl``, ``metrics.json`` and the report's score histograms are derived from it
(why it stays after a run completes: docs/decisions.md).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from satcore.io import atomic_path

if TYPE_CHECKING:
    import pandas as pd


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
        with atomic_path(path) as tmp:
            pq.write_table(table, tmp)

    def done(self) -> tuple[set[str], set[str]]:
        """Item ids finished without error, and those whose latest row is an error."""
        import pyarrow.parquet as pq

        latest: dict[str, bool] = {}
        for p in self.parts():
            t = pq.read_table(p, columns=["item_id", "error"])
            for iid, err in zip(t.column("item_id").to_pylist(), t.column("error").to_pylist(), strict=True):
                latest[iid] = err is None
        return {k for k, ok in latest.items() if ok}, {k for k, ok in latest.items() if not ok}

    def iter_final(self, columns_filter: Callable[[str], bool] | None = None, max_rows: int = 4096,
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
