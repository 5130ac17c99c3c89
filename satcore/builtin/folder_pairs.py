"""``folder-pairs``: image pairs in ``A/`` and ``B/``, change masks in ``label/`` (the LEVIR-CD layout)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import ClassVar, Literal

from pydantic import Field, field_validator

from satcore.builtin.common import (
    IMAGE_EXTENSIONS,
    MAX_PIXELS_DESCRIPTION,
    SPLIT_FOLDERS,
    EmptySourceError,
    IdChecker,
    align_pair,
    duplicate_problem,
    index_files,
    load_truth,
    mark_invalid,
    must_exist,
    tile_of,
    valid_regex,
)
from satcore.builtin.tiling import TILING_DESCRIPTION, WINDOW_KEY, TilingParams, load_tile_pair, tile_refs
from satcore.components import Params, Source, SpecPath
from satcore.data import MAX_PIXELS, Item, ItemRef, read_raster
from satcore.errors import ComponentError, SpecError


class FolderPairsParams(Params):
    """Parameters of ``folder-pairs``."""

    root: SpecPath = Field(description="Folder holding `A/`, `B/` and optional `label/` (LEVIR-CD layout), "
                           "or the release layout `train/ val/ test/`, each holding them (see `splits`).")
    a: str = Field("A", description="Sub-folder of the 'before' images.")
    b: str = Field("B", description="Sub-folder of the 'after' images.")
    label: str | None = Field(
        "label", description="Sub-folder of change masks (nonzero = change); null = none.")
    ignore: str | None = Field(
        None, description="Sub-folder of ignore masks (nonzero = excluded from metrics).")
    ignore_value: int | None = Field(None, description="Label value that marks unknown pixels.")
    labels: Literal["required", "optional"] = Field(
        "required", description="`required`: an item without its label file fails (when the label folder "
        "exists); `optional`: it runs without truth.")
    list: SpecPath | None = Field(None, description="Optional text file of names (one per line) to keep; "
                                  "with split folders the names include the folder (`train/0001`).")
    extensions: tuple[str, ...] = Field(IMAGE_EXTENSIONS, description="Image file extensions to pick up.")
    bands: tuple[str, ...] | None = Field(None, description="Band names, overriding the files'.")
    max_pixels: int | None = Field(MAX_PIXELS, gt=0, description=MAX_PIXELS_DESCRIPTION)
    align: Literal["error", "reproject"] = Field(
        "error",
        description="Pairs on different grids: `error` fails the item, `reproject` resamples B onto A.")
    tile_pattern: str | None = Field(
        r"^(?P<tile>.+?)(?:_\d+){2}$",
        description="Regex on the file stem whose `tile` group is the item's `tile` "
        "(crops of one tile share it); "
        "the default strips a trailing `_<row>_<col>`.")
    min_changed_pixels: int = Field(
        1, ge=1, description="An item's image label is 'change' when its mask has at least this many "
        "changed (valid) pixels; 1: any changed pixel. Raise it to ignore a few stray mask pixels.")
    splits: Literal["auto", "folders", "none"] = Field(
        "auto", description="The dataset's own split folders. `folders`: read `root/train/`, `root/val/` "
        "and `root/test/` (those present), each in the `A/ B/ label/` layout; item ids are "
        "`<folder>/<id>` and `meta.split` is the folder name (use `evaluate.split: {by: split}`). "
        "`none`: read `root/A` etc. only. `auto` (default): `folders` when `root/<a>` is absent and "
        "`root/train/<a>` (or `val/`, `test/`) exists, else `none`.")
    tiling: TilingParams | None = Field(None, description=TILING_DESCRIPTION)

    @field_validator("root")
    @classmethod
    def _root_exists(cls, v: Path) -> Path:
        return must_exist(v, "folder")

    @field_validator("list")
    @classmethod
    def _list_is_file(cls, v: Path | None) -> Path | None:
        return None if v is None else must_exist(v, "list file")

    _tile_pattern_ok = field_validator("tile_pattern")(valid_regex)


class FolderPairsSource(Source):
    """Image pairs in `A/` and `B/` with optional change masks in `label/` (the LEVIR-CD layout)."""

    name = "folder-pairs"
    params_model = FolderPairsParams
    produces: ClassVar[tuple[str, ...]] = ("pair", "mask")
    params: FolderPairsParams

    def split_folders(self) -> list[str]:
        """The split folders read (``[]`` for the plain ``A/ B/`` layout), after ``splits: auto``."""
        p = self.params
        present = [s for s in SPLIT_FOLDERS if (p.root / s / p.a).is_dir()]
        if p.splits == "none":
            return []
        if p.splits == "folders":
            if not present:
                looked = ", ".join(f"{p.root}/{s}/{p.a}" for s in SPLIT_FOLDERS)
                raise EmptySourceError(f"folder-pairs: `splits: folders` but none of {looked} is a folder; "
                                       f"use `splits: none` for the plain `{p.a}/ {p.b}/` layout")
            return present
        return present if not (p.root / p.a).is_dir() else []

    def _keep(self) -> set[str] | None:
        p = self.params
        if p.list is None:
            return None
        if not p.list.exists():
            raise SpecError(f"folder-pairs: list file {p.list} does not exist")
        lines = p.list.read_text().splitlines()
        return {Path(x.strip()).with_suffix("").as_posix() for x in lines if x.strip()}

    def _scan_one(self, root: Path, prefix: str, split: str | None, keep: set[str] | None,
                  ids: IdChecker) -> tuple[list[ItemRef], list[tuple[str, str, str]]]:
        p = self.params
        a_dir, b_dir = root / p.a, root / p.b
        for d in (a_dir, b_dir):
            if not d.is_dir():
                raise EmptySourceError(f"folder-pairs: {d} is not a folder (expected {root}/{p.a} and "
                                       f"{root}/{p.b}; rename them with `a:` / `b:`)")
        dupes: dict[str, list[Path]] = {}
        a_files, b_files = index_files(a_dir, p.extensions, dupes), index_files(b_dir, p.extensions, dupes)
        label_dir = root / p.label if p.label else None
        labels = index_files(label_dir, p.extensions, dupes) if label_dir and label_dir.is_dir() else {}
        ignores = index_files(root / p.ignore, p.extensions, dupes) if p.ignore else {}
        refs: list[ItemRef] = []
        problems: list[tuple[str, str, str]] = []
        for rel, a_path in a_files.items():
            item_id = prefix + rel
            if (keep is not None and item_id not in keep) or not ids.ok(item_id, str(a_path)):
                continue
            if rel in dupes:
                problems.append(duplicate_problem(item_id, dupes[rel]))
                continue
            b_path = b_files.get(rel)
            if b_path is None:
                problems.append((item_id, "MissingPartner", f"{a_path} has no partner in {b_dir} (looked for "
                                 f"{rel}{{{','.join(p.extensions)}}})"))
                continue
            paths = {"a": str(a_path), "b": str(b_path)}
            if labels or (label_dir is not None and label_dir.is_dir()):
                if rel in labels:
                    paths["label"] = str(labels[rel])
                elif p.labels == "required":
                    problems.append((item_id, "MissingLabel", f"{a_path} has no label file in {label_dir}; "
                                     "add it, or set `labels: optional` on the source to run it "
                                     "without truth"))
                    continue
            if rel in ignores:
                paths["ignore"] = str(ignores[rel])
            meta = {"tile": prefix + tile_of(Path(rel).name, p.tile_pattern), "kind": "pair"}
            if split is not None:
                meta["split"] = split
            refs.append(ItemRef(item_id, paths, meta))
        for rel, b_path in b_files.items():
            if rel not in a_files and (keep is None or prefix + rel in keep) and ids.ok(prefix + rel,
                                                                                           str(b_path)):
                problems.append((prefix + rel, "MissingPartner", f"{b_path} has no partner in {a_dir}"))
        return refs, problems

    def _scan(self) -> tuple[list[ItemRef], list[tuple[str, str, str]]]:
        p = self.params
        keep = self._keep()
        ids = IdChecker()
        refs: list[ItemRef] = []
        problems: list[tuple[str, str, str]] = []
        folders = self.split_folders()
        plan: list[str | None] = [*folders] if folders else [None]
        for split in plan:
            root, prefix = (p.root / split, f"{split}/") if split else (p.root, "")
            r, pr = self._scan_one(root, prefix, split, keep, ids)
            refs += r
            problems += pr
        problems += ids.problems
        if not refs and not problems:
            where = ", ".join(f"{p.root}/{s}/{p.a}" for s in folders) if folders else f"{p.root}/{p.a}"
            raise EmptySourceError(f"folder-pairs: no images found in {where} (extensions: "
                                   f"{', '.join(p.extensions)})")
        return refs, problems

    def list_items(self) -> Iterable[ItemRef]:
        """Items are the files in `A/` whose stem also exists in `B/` (per split folder, if any).

        With ``tiling:`` each pair becomes its tiles, ``<id>/r<row>_c<col>`` (only A's header is read).
        """
        refs, self._problems = self._scan()
        tiling = self.params.tiling
        if tiling is None:
            return refs
        if self.params.align != "error":
            raise SpecError("folder-pairs: `tiling:` reads A and B window by window, so they must share one "
                            "grid; `align: reproject` is not available with it (reproject the files first)")
        tiles: list[ItemRef] = []
        for ref in refs:
            try:
                tiles += tile_refs(ref, tiling)
            except ComponentError as exc:
                self._problems.append((ref.item_id, type(exc).__name__, str(exc)))
        return tiles

    def list_problems(self) -> list[tuple[str, str, str]]:
        """Files without a partner or label, and file names that make no safe item id."""
        if not hasattr(self, "_problems"):
            self.list_items()
        return list(self._problems)

    def load(self, ref: ItemRef) -> Item:
        """Read A, B, the label and the ignore mask; check they share one grid."""
        p = self.params
        if WINDOW_KEY in ref.meta:  # a tile of a scene (`tiling:`): read by window
            item = load_tile_pair(ref, p.bands, p.ignore_value, p.max_pixels)
            if p.min_changed_pixels > 1:
                item.meta["min_changed_pixels"] = p.min_changed_pixels
            return mark_invalid(item, self.context.logger)
        a = read_raster(ref.paths["a"], bands=p.bands, max_pixels=p.max_pixels)
        b = read_raster(ref.paths["b"], bands=p.bands, max_pixels=p.max_pixels)
        b = align_pair(a, b, p.align, ref.paths["a"], ref.paths["b"])
        if a.count != b.count:
            raise ComponentError(f"{ref.paths['a']} has {a.count} bands but {ref.paths['b']} has {b.count}")
        label, valid = load_truth(ref, a.shape, p.ignore_value, p.max_pixels)
        meta = dict(ref.meta)
        if p.min_changed_pixels > 1:
            meta["min_changed_pixels"] = p.min_changed_pixels
        item = Item(ref.item_id, [a, b], label=label, valid=valid, meta=meta)
        return mark_invalid(item, self.context.logger)
