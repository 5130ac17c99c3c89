"""``folder-classes``: one folder per class (RSSCN7, UC Merced, EuroSAT RGB and MS layouts)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import ClassVar

from pydantic import Field, field_validator, model_validator

from satcore.builtin.common import (
    IMAGE_EXTENSIONS,
    MAX_PIXELS_DESCRIPTION,
    EmptySourceError,
    IdChecker,
    duplicate_problem,
    index_files,
    mark_invalid,
    must_exist,
)
from satcore.components import Params, Source, SpecPath
from satcore.data import MAX_PIXELS, SENTINEL2_BANDS, Item, ItemRef, read_raster
from satcore.errors import SpecError

#: Named file band orders for ``band_order:`` (EuroSAT MS stores B8A after B12).
BAND_ORDER_PRESETS: dict[str, tuple[str, ...]] = {
    "eurosat-ms": ("B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B09", "B10", "B11", "B12", "B8A"),
    "sentinel2": SENTINEL2_BANDS,
}


class FolderClassesParams(Params):
    """Parameters of ``folder-classes``."""

    root: SpecPath = Field(description="Folder with one sub-folder per class (`root/<class>/<image>`); "
                           "images deeper inside a class folder belong to that class.")
    rename: dict[str, str] = Field(default_factory=dict, description="Class folder → label, e.g. "
                                   "`{aGrass: grass}`; folders not named keep their folder name as label.")
    extensions: tuple[str, ...] = Field(IMAGE_EXTENSIONS, description="Image file extensions to pick up.")
    band_order: tuple[str, ...] | None = Field(
        None, description="Names of the bands in file order, when the files do not say: a list, or a preset "
        "(`eurosat-ms`: B01 … B08, B09, B10, B11, B12, B8A, as EuroSAT MS stores them; `sentinel2`: ESA "
        "order). The 13 Sentinel-2 bands come out in ESA order (B01 … B08, B8A, B09 … B12) unless `bands` "
        "says otherwise.")
    bands: tuple[str, ...] | None = Field(
        None, description="Band names. Without `band_order`: names of the file's bands (as for other "
        "sources). With `band_order`: the bands to keep, in this order (e.g. ESA order).")
    max_pixels: int | None = Field(MAX_PIXELS, gt=0, description=MAX_PIXELS_DESCRIPTION)

    @field_validator("band_order", mode="before")
    @classmethod
    def _preset(cls, v: object) -> object:
        if isinstance(v, str):
            if v not in BAND_ORDER_PRESETS:
                raise ValueError(f"unknown band_order preset {v!r}; use one of {sorted(BAND_ORDER_PRESETS)} "
                                 "or a list of the file's band names")
            return BAND_ORDER_PRESETS[v]
        return v

    @field_validator("root")
    @classmethod
    def _root_exists(cls, v: Path) -> Path:
        return must_exist(v, "folder")

    @model_validator(mode="after")
    def _bands_known(self) -> FolderClassesParams:
        if self.band_order is not None and len(set(self.band_order)) != len(self.band_order):
            raise ValueError(f"band_order {list(self.band_order)} names a band twice")
        if self.band_order is not None and self.bands is not None:
            unknown = [b for b in self.bands if b not in self.band_order]
            if unknown:
                raise ValueError(f"bands {unknown} are not in band_order {list(self.band_order)}")
        return self


class FolderClassesSource(Source):
    """Single scenes in one folder per class; the folder name (or its `rename:`) is the item's class."""

    name = "folder-classes"
    params_model = FolderClassesParams
    produces: ClassVar[tuple[str, ...]] = ("scene",)
    params: FolderClassesParams

    def class_folders(self) -> list[str]:
        """The class folders under ``root`` (sorted; hidden folders skipped)."""
        root = self.params.root
        return sorted(d.name for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))

    def list_items(self) -> Iterable[ItemRef]:
        """One item per image; id = path relative to ``root`` without extension (``aGrass/a001``)."""
        p = self.params
        folders = self.class_folders()
        unknown = sorted(set(p.rename) - set(folders))
        if unknown:
            raise SpecError(f"folder-classes: `rename` names {unknown}, which are not folders in {p.root} "
                            f"(class folders: {folders})")
        ids = IdChecker()
        refs: list[ItemRef] = []
        for folder in folders:
            label = p.rename.get(folder, folder)
            dupes: dict[str, list[Path]] = {}
            for rel, path in index_files(p.root / folder, p.extensions, dupes).items():
                item_id = f"{folder}/{rel}"
                if rel in dupes:
                    ids.problems.append(duplicate_problem(item_id, dupes[rel]))
                elif ids.ok(item_id, str(path)):
                    refs.append(ItemRef(item_id, {"image": str(path)},
                                        {"tile": item_id, "kind": "scene", "class": label}))
        self._problems = ids.problems
        if not refs and not self._problems:
            raise EmptySourceError(f"folder-classes: no images in class folders under {p.root} (folders: "
                                   f"{folders or 'none'}; extensions: {', '.join(p.extensions)})")
        return refs

    def list_problems(self) -> list[tuple[str, str, str]]:
        """File names that make no safe item id."""
        if not hasattr(self, "_problems"):
            self.list_items()
        return list(self._problems)

    def load(self, ref: ItemRef) -> Item:
        """Read the image; ``classes`` is the class folder's label."""
        p = self.params
        path = ref.paths["image"]
        raster = read_raster(path, bands=p.band_order or p.bands, max_pixels=p.max_pixels)
        if p.band_order is not None:  # read_raster has checked the count against band_order
            keep = p.bands or (SENTINEL2_BANDS if set(p.band_order) == set(SENTINEL2_BANDS) else p.band_order)
            index = [p.band_order.index(b) for b in keep]
            raster = raster.with_array(raster.array[index], tuple(keep))
        item = Item(ref.item_id, [raster], meta=dict(ref.meta), classes=(str(ref.meta["class"]),))
        return mark_invalid(item, self.context.logger)
