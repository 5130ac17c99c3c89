"""Hostile files in a dataset: truncated images, huge headers, twin stems, symlink loops, non-UTF-8 names."""

from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import satcore
from satcore.builtin.common import index_files
from satcore.builtin.sources import FolderPairsParams, FolderPairsSource
from satcore.data import item_id_problem, read_raster
from satcore.errors import ComponentError


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def huge_png_header(width: int = 20_000, height: int = 20_000) -> bytes:
    """A tiny PNG whose header claims ``width × height`` grey pixels (its data is one empty zlib stream)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", zlib.compress(b"")) + _chunk(
        b"IEND", b"")


def test_a_74_byte_png_claiming_20000_squared_pixels_is_refused_from_its_header(tmp_path):
    data = huge_png_header()
    assert len(data) <= 74
    path = tmp_path / "bomb.png"
    path.write_bytes(data)
    with pytest.raises(ComponentError, match=r"20000×20000 px × 1 bands = 400,000,000 values.*max_pixels"):
        read_raster(path)
    with pytest.raises(ComponentError, match="over the limit of 1,000"):
        read_raster(path, max_pixels=1_000)


def test_max_pixels_is_a_source_setting(tmp_path, h):
    h.make_pairs(tmp_path / "d", 1, size=16)
    src = FolderPairsSource(FolderPairsParams(root=tmp_path / "d", max_pixels=16 * 16 * 3 - 1))
    with pytest.raises(ComponentError, match="max_pixels"):
        src.load(next(iter(src.list_items())))
    src = FolderPairsSource(FolderPairsParams(root=tmp_path / "d", max_pixels=16 * 16 * 3))
    assert src.load(next(iter(src.list_items()))).images[0].shape == (16, 16)


def _png(tmp_path: Path, h) -> bytes:
    rng = np.random.default_rng(0)
    path = h.write_raster(tmp_path / "src.png", rng.integers(0, 255, (3, 48, 48), dtype=np.uint8))
    return path.read_bytes()


def test_every_truncation_of_a_png_fails_deterministically(tmp_path, h):
    data = _png(tmp_path, h)
    path = tmp_path / "t.png"
    for cut in sorted({8, 20, 33, 40, len(data) // 2, len(data) - 13, len(data) - 1}):
        path.write_bytes(data[:cut])
        with pytest.raises(ComponentError, match="truncated|cannot read"):
            read_raster(path)
    path.write_bytes(data)
    assert read_raster(path).shape == (48, 48)


def test_truncated_tiff_fails_and_names_the_gdal_cause(tmp_path, h):
    rng = np.random.default_rng(1)
    path = h.write_raster(tmp_path / "t.tif", rng.integers(0, 255, (3, 300, 300), dtype=np.uint8))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ComponentError) as info:
        read_raster(path)
    assert "See previous exception" not in str(info.value)
    assert "TIFF" in str(info.value)  # GDAL's own reason, not rasterio's pointer to it


def test_a_truncated_label_fails_only_its_item(tmp_path, h):
    ids = h.make_pairs(tmp_path / "d", 3, size=16)
    label = tmp_path / "d" / "label" / f"{ids[1]}.png"
    label.write_bytes(label.read_bytes()[:-20])
    res = satcore.run(h.spec_dict(tmp_path / "d", tmp_path / "o", step="cva"), progress=False)
    assert (res.items_ok, res.items_failed) == (2, 1)
    df = pd.read_parquet(tmp_path / "o" / "results.parquet").set_index("item_id")
    assert "truncated" in str(df.loc[ids[1], "error"])


def test_same_stem_with_two_extensions_is_a_failed_item_naming_both(tmp_path, h):
    ids = h.make_pairs(tmp_path / "d", 2, size=8)
    a = tmp_path / "d" / "A"
    h.write_raster(a / f"{ids[0]}.tif", np.zeros((3, 8, 8), np.uint8))
    src = FolderPairsSource(FolderPairsParams(root=tmp_path / "d"))
    assert [r.item_id for r in src.list_items()] == [ids[1]]
    ((iid, kind, msg),) = src.list_problems()
    assert iid == ids[0] and kind == "DuplicateFile"
    assert f"{ids[0]}.png" in msg and f"{ids[0]}.tif" in msg


def test_a_symlink_loop_ends_the_listing_without_bogus_items(tmp_path, h):
    ids = h.make_pairs(tmp_path / "d", 2, size=8)
    for side in ("A", "B"):
        os.symlink(tmp_path / "d" / side, tmp_path / "d" / side / "loop")  # A/loop → A
        (tmp_path / "d" / side / "sub").mkdir()
        os.symlink(tmp_path / "d" / side / "sub", tmp_path / "d" / side / "sub" / "self")
    found = index_files(tmp_path / "d" / "A", [".png"])
    assert sorted(found) == sorted(ids)  # nothing under loop/ or sub/self/…
    src = FolderPairsSource(FolderPairsParams(root=tmp_path / "d"))
    assert [r.item_id for r in src.list_items()] == sorted(ids)


def test_a_linked_folder_outside_is_still_listed_once(tmp_path, h):
    img = np.zeros((3, 4, 4), np.uint8)
    h.write_raster(tmp_path / "out" / "y.png", img)
    (tmp_path / "A").mkdir()
    os.symlink(tmp_path / "out", tmp_path / "A" / "l1")
    os.symlink(tmp_path / "out", tmp_path / "A" / "l2")  # the same folder twice: listed at the first path
    assert list(index_files(tmp_path / "A", [".png"])) == ["l1/y"]


@pytest.mark.skipif(os.name != "posix", reason="POSIX file names are bytes; Windows names are UTF-16")
def test_a_file_name_that_is_not_utf8_fails_that_item_alone(tmp_path, h):
    ids = h.make_pairs(tmp_path / "d", 2, size=8)
    for side in ("A", "B", "label"):
        src_name = os.path.join(os.fsencode(tmp_path / "d" / side), f"{ids[0]}.png".encode())
        try:
            os.rename(src_name, os.path.join(os.fsencode(tmp_path / "d" / side), b"bad\xff.png"))
        except OSError as exc:  # a file system that refuses such names (some macOS volumes)
            pytest.skip(f"file system refuses non-UTF-8 names: {exc}")
    assert item_id_problem("bad\udcff") == "the file name is not valid UTF-8; rename the file"
    res = satcore.run(h.spec_dict(tmp_path / "d", tmp_path / "o", step="cva"), progress=False)
    assert (res.items_ok, res.items_failed) == (1, 1)
    err = (tmp_path / "o" / "errors.jsonl").read_text(encoding="utf-8")
    assert "not valid UTF-8" in err and "BadItemId" in err
    assert res.manifest["status"] == "complete"


@pytest.mark.skipif(os.name != "posix", reason="POSIX file names are bytes; Windows names are UTF-16")
def test_a_non_utf8_name_only_in_b_is_a_failed_item_too(tmp_path, h):
    h.make_pairs(tmp_path / "d", 1, size=8)
    b = os.fsencode(tmp_path / "d" / "B")
    with open(os.path.join(b, b"x\xfe.png"), "wb") as f:
        f.write((tmp_path / "d" / "B" / "img000.png").read_bytes())
    res = satcore.run(h.spec_dict(tmp_path / "d", tmp_path / "o", step="cva"), progress=False)
    assert (res.items_ok, res.items_failed) == (1, 1)
    assert "not valid UTF-8" in (tmp_path / "o" / "errors.jsonl").read_text(encoding="utf-8")
