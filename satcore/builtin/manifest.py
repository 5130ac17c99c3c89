"""``manifest``: items listed in a CSV or JSON file (pairs or single scenes, with optional truth)."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field, field_validator

from satcore.builtin.common import (
    MAX_PIXELS_DESCRIPTION,
    EmptySourceError,
    IdChecker,
    align_pair,
    load_truth,
    mark_invalid,
    must_exist,
    parse_time,
    split_list,
)
from satcore.components import Params, Source, SpecPath
from satcore.data import MAX_PIXELS, Item, ItemRef, read_raster
from satcore.errors import SpecError


class ManifestParams(Params):
    """Parameters of ``manifest``."""

    path: SpecPath = Field(description="CSV or JSON file: one row per item with columns `a`, `b` "
                           "(optional for "
                           "single scenes), and optional `item_id`, `label`, `unchanged`, `ignore`, `tile`, "
                           "`change`, `time_a`, `time_b`, `split`, `labels` (class labels, `;`-separated), "
                           "`captions` (reference captions, `|`-separated), `target` (a target raster), "
                           "`text` (the item's prompt); paths relative to the manifest. In JSON, `labels` "
                           "and `captions` may also be lists.")
    bands: tuple[str, ...] | None = Field(None, description="Band names, overriding the files'.")
    max_pixels: int | None = Field(MAX_PIXELS, gt=0, description=MAX_PIXELS_DESCRIPTION)
    align: Literal["error", "reproject"] = Field("error", description="As for `folder-pairs`.")
    ignore_value: int | None = Field(None, description="Label value that marks unknown pixels.")

    @field_validator("path")
    @classmethod
    def _exists(cls, v: Path) -> Path:
        return must_exist(v, "manifest")


class ManifestSource(Source):
    """Items listed in a CSV or JSON manifest (pairs or single scenes, with optional partial truth)."""

    name = "manifest"
    params_model = ManifestParams
    produces: ClassVar[tuple[str, ...]] = ("pair", "scene", "mask")
    params: ManifestParams

    def _rows(self) -> list[dict[str, Any]]:
        path = self.params.path
        if path.suffix.lower() == ".json":
            data = json.loads(path.read_text())
            rows = data.get("items", data) if isinstance(data, dict) else data
        else:
            with open(path, newline="", encoding="utf-8") as f:
                rows = list(csv.DictReader(f))
        if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
            raise SpecError(f"{path}: expected a list of rows (objects) with at least an `a` column")
        if not rows:
            raise EmptySourceError(f"manifest {path} lists no items")
        return rows

    def list_items(self) -> Iterable[ItemRef]:
        """One ref per manifest row."""
        base = self.params.path.parent
        refs: list[ItemRef] = []
        seen: set[str] = set()
        for n, row in enumerate(self._rows(), 2):
            if not row.get("a"):
                raise SpecError(f"{self.params.path}: row {n} has no `a` path")
            item_id = str(row.get("item_id") or Path(str(row["a"])).with_suffix("").as_posix())
            IdChecker.require(item_id, f"{self.params.path}: row {n}")
            if item_id in seen:
                raise SpecError(f"{self.params.path}: row {n}: duplicate item_id {item_id!r}")
            seen.add(item_id)
            paths = {k: str(base / str(row[k]))
                     for k in ("a", "b", "label", "unchanged", "ignore", "target") if row.get(k)}
            meta: dict[str, Any] = {"tile": row.get("tile") or row.get("group") or item_id,
                                    "kind": "pair" if "b" in paths else "scene"}
            for k in ("change", "time_a", "time_b", "split", "text"):
                if row.get(k) not in (None, ""):
                    meta[k] = row[k]
            for k, sep in (("labels", ";"), ("captions", "|")):
                values = split_list(row.get(k), sep)
                if values is not None:
                    meta[k] = list(values)
            refs.append(ItemRef(item_id, paths, meta))
        return refs

    def load(self, ref: ItemRef) -> Item:
        """Read the row's images and truth."""
        p = self.params
        mp = p.max_pixels
        a = read_raster(ref.paths["a"], bands=p.bands, time=parse_time(ref.meta.get("time_a")), max_pixels=mp)
        images = [a]
        if "b" in ref.paths:
            b = read_raster(ref.paths["b"], bands=p.bands, time=parse_time(ref.meta.get("time_b")),
                            max_pixels=mp)
            images.append(align_pair(a, b, p.align, ref.paths["a"], ref.paths["b"]))
        label, valid = load_truth(ref, a.shape, p.ignore_value, mp)
        image_label = int(ref.meta["change"]) if ref.meta.get("change") not in (None, "") else None
        # the target keeps its own band names: it is often another sensor than the input (RGB → Sentinel-2)
        targets = ({"target": read_raster(ref.paths["target"], max_pixels=mp)} if ref.paths.get("target")
                   else None)
        text = ref.meta.get("text")
        return mark_invalid(Item(ref.item_id, images, label=label, valid=valid, image_label=image_label,
                    meta=dict(ref.meta), classes=ref.meta.get("labels"), texts=ref.meta.get("captions"),
                    targets=targets, text=str(text) if text is not None else None), self.context.logger)
