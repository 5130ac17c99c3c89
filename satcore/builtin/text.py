"""``text``: text-only items (prompts, captions) from a CSV or JSON Lines file."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any, ClassVar

from pydantic import Field, field_validator

from satcore.builtin.common import EmptySourceError, IdChecker, must_exist, split_list
from satcore.components import Params, Source, SpecPath
from satcore.data import Item, ItemRef
from satcore.errors import SpecError


class TextParams(Params):
    """Parameters of ``text``."""

    path: SpecPath = Field(description="A `.csv` (header row) or `.jsonl` (one object per line) file, one "
                           "row per item.")
    id_column: str = Field("item_id", description="Column of item ids; a missing column numbers the rows "
                           "(`row-000001`, …).")
    text_column: str | None = Field("text", description="Column of the item's text (a prompt); null = none "
                                    "(items carrying only captions or labels).")
    captions_column: str | None = Field("captions", description="Column of reference captions "
                                        "(`|`-separated in CSV, a list or string in JSONL); optional.")
    labels_column: str | None = Field("labels", description="Column of class labels (`;`-separated in CSV, "
                                      "a list or string in JSONL); optional.")
    split_column: str | None = Field("split", description="Column copied to `meta.split` (for "
                                     "`evaluate.split: {by: split}`); optional.")

    @field_validator("path")
    @classmethod
    def _exists(cls, v: Path) -> Path:
        return must_exist(v, "text file")


class TextSource(Source):
    """Text-only items (no images): a prompt and/or reference captions and labels per row."""

    name = "text"
    params_model = TextParams
    produces: ClassVar[tuple[str, ...]] = ("text",)
    params: TextParams

    def _rows(self) -> list[tuple[int, dict[str, Any]]]:
        path = self.params.path
        rows: list[tuple[int, dict[str, Any]]] = []
        if path.suffix.lower() in (".jsonl", ".ndjson"):
            for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise SpecError(f"{path}:{n}: not valid JSON ({exc.msg}); one object per line") from exc
                if not isinstance(row, dict):
                    raise SpecError(f"{path}:{n}: expected an object per line, got {type(row).__name__}")
                rows.append((n, row))
        elif path.suffix.lower() == ".csv":
            with open(path, newline="", encoding="utf-8") as f:
                rows = [(n, dict(r)) for n, r in enumerate(csv.DictReader(f), 2)]
        else:
            raise SpecError(f"text source: {path} is neither .csv nor .jsonl")
        if not rows:
            raise EmptySourceError(f"text source: {path} has no rows")
        return rows

    def list_items(self) -> Iterable[ItemRef]:
        """One ref per row; the texts travel in the ref (no file is read again in :meth:`load`)."""
        p = self.params
        refs: list[ItemRef] = []
        seen: set[str] = set()
        for n, row in self._rows():
            where = f"{p.path}:{n}"
            raw = row.get(p.id_column)
            item_id = IdChecker.require(str(raw) if raw not in (None, "") else f"row-{len(refs) + 1:06d}",
                                        where)
            if item_id in seen:
                raise SpecError(f"{where}: duplicate item id {item_id!r}")
            seen.add(item_id)
            meta: dict[str, Any] = {"tile": item_id, "kind": "text"}
            text = row.get(p.text_column) if p.text_column else None
            if text not in (None, ""):
                meta["text"] = str(text)
            for column, key, sep in ((p.captions_column, "captions", "|"), (p.labels_column, "labels", ";")):
                values = split_list(row.get(column), sep) if column else None
                if values is not None:
                    meta[key] = list(values)
            if p.split_column and row.get(p.split_column) not in (None, ""):
                meta["split"] = str(row[p.split_column])
            if not {"text", "captions", "labels"} & set(meta):
                raise SpecError(f"{where}: row {item_id!r} has no text, captions or labels (columns "
                                f"{p.text_column!r}, {p.captions_column!r}, {p.labels_column!r})")
            refs.append(ItemRef(item_id, {}, meta))
        return refs

    def load(self, ref: ItemRef) -> Item:
        """The text-only item: ``text``, ``texts`` (captions) and ``classes`` (labels) from the row."""
        return Item(ref.item_id, [], meta=dict(ref.meta), classes=ref.meta.get("labels"),
                    texts=ref.meta.get("captions"), text=ref.meta.get("text"))
