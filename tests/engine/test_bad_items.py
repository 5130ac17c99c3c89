"""Bad items fail alone: the run exits 0, finishes the good ones and lists the bad ones in errors.jsonl."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from affine import Affine

import satcore
from satcore.builtin.sources import EmptySourceError


def _errors(out):
    return {e["item_id"]: e for e in map(json.loads, (out / "errors.jsonl").read_text().splitlines())}


def test_bad_items_are_listed_and_the_rest_finish(tmp_path, h, pm):
    root = tmp_path / "data"
    good = h.make_pairs(root, 4)
    # corrupt PNG: a valid header followed by garbage
    png = (root / "A" / "img000.png").read_bytes()
    h.make_pairs(root, 1, prefix="corrupt")
    (root / "A" / "corrupt000.png").write_bytes(png[:40] + b"\x00garbage" * 20)
    # truncated GeoTIFF
    h.write_raster(root / "A" / "trunc.tif", np.full((3, 64, 64), 7, np.uint8), driver="GTiff")
    h.write_raster(root / "B" / "trunc.tif", np.full((3, 64, 64), 9, np.uint8))
    h.write_raster(root / "label" / "trunc.tif", np.zeros((64, 64), np.uint8))
    data = (root / "A" / "trunc.tif").read_bytes()
    (root / "A" / "trunc.tif").write_bytes(data[: len(data) // 3])
    # A/B size mismatch
    h.write_raster(root / "A" / "size.png", np.zeros((3, 16, 16), np.uint8))
    h.write_raster(root / "B" / "size.png", np.zeros((3, 20, 16), np.uint8))
    h.write_raster(root / "label" / "size.png", np.zeros((16, 16), np.uint8))
    # CRS mismatch in a georeferenced pair
    tr = Affine(10, 0, 500000, 0, -10, 4000000)
    h.write_raster(root / "A" / "crs.tif", np.zeros((3, 16, 16), np.uint8), "EPSG:32633", tr)
    h.write_raster(root / "B" / "crs.tif", np.zeros((3, 16, 16), np.uint8), "EPSG:32634", tr)
    h.write_raster(root / "label" / "crs.tif", np.zeros((16, 16), np.uint8))
    # missing partner, missing label, empty file, label of another size
    h.write_raster(root / "A" / "lonely.png", np.zeros((3, 16, 16), np.uint8))
    h.write_raster(root / "B" / "orphan.png", np.zeros((3, 16, 16), np.uint8))
    h.write_raster(root / "A" / "nolabel.png", np.zeros((3, 16, 16), np.uint8))
    h.write_raster(root / "B" / "nolabel.png", np.zeros((3, 16, 16), np.uint8))
    (root / "A" / "empty.png").write_bytes(b"")
    h.write_raster(root / "B" / "empty.png", np.zeros((3, 16, 16), np.uint8))
    h.write_raster(root / "label" / "empty.png", np.zeros((16, 16), np.uint8))
    h.write_raster(root / "A" / "badlabel.png", np.zeros((3, 16, 16), np.uint8))
    h.write_raster(root / "B" / "badlabel.png", np.zeros((3, 16, 16), np.uint8))
    h.write_raster(root / "label" / "badlabel.png", np.zeros((8, 8), np.uint8))

    out = tmp_path / "out"
    res = satcore.run(h.spec_dict(root, out), progress=False, pm=pm)
    with pytest.warns(DeprecationWarning, match="always 0"):  # kept, deprecated: a stopped run raises
        assert res.exit_code == 0
    bad = {"corrupt000", "trunc", "size", "crs", "lonely", "orphan", "nolabel", "empty", "badlabel"}
    assert (res.items_ok, res.items_failed) == (len(good), len(bad))
    errs = _errors(out)
    assert set(errs) == bad
    assert all(set(e) == {"item_id", "step", "error_type", "message"} for e in errs.values())
    assert errs["corrupt000"]["step"] == "source" and errs["corrupt000"]["error_type"] == "ComponentError"
    assert errs["corrupt000"]["message"].startswith(f"{root}/A/corrupt000.png: cannot read image (")
    assert "the file may be corrupt or truncated" in errs["corrupt000"]["message"]
    assert errs["trunc"]["message"].startswith(f"{root}/A/trunc.tif: cannot read image (")
    assert errs["size"]["message"] == (
        f"{root}/A/size.png is 16×16 px but {root}/B/size.png is 16×20 px; pairs "
        "must share one grid (crop/resample them, or set `align: reproject` for "
        "georeferenced pairs)"
    )
    assert errs["crs"]["message"].startswith(
        f"{root}/A/crs.tif has CRS EPSG:32633 but {root}/B/crs.tif has "
        "CRS EPSG:32634; reproject one of them or set `align: reproject`"
    )
    assert errs["lonely"]["error_type"] == "MissingPartner"
    assert errs["lonely"]["message"].startswith(f"{root}/A/lonely.png has no partner in {root}/B")
    assert errs["orphan"]["message"] == f"{root}/B/orphan.png has no partner in {root}/A"
    assert errs["nolabel"]["error_type"] == "MissingLabel"
    assert "set `labels: optional` on the source" in errs["nolabel"]["message"]
    assert errs["empty"]["message"] == f"{root}/A/empty.png: file is empty (0 bytes)"
    assert errs["badlabel"]["message"] == f"{root}/label/badlabel.png is 8×8 px but the image is 16×16 px"
    df = pd.read_parquet(out / "results.parquet")
    assert sorted(df["item_id"]) == sorted(set(good) | bad)
    assert df.set_index("item_id").loc[sorted(bad), "error"].notna().all()
    assert df.set_index("item_id").loc[good, "error"].isna().all()
    assert df.set_index("item_id").loc[good, "diff.score"].notna().all()
    man = json.loads((out / "manifest.json").read_text())
    assert man["items"] == {"ok": 4, "failed": len(bad), "skipped": 0, "total": 4 + len(bad)}
    assert man["status"] == "complete"
    # only good items count in the metrics
    m = json.loads((out / "metrics.json").read_text())
    assert m["class_balance"]["items"] == 4


def test_errors_jsonl_is_written_empty_when_nothing_fails(tmp_path, h, pm):
    h.make_pairs(tmp_path / "d", 2)
    res = satcore.run(h.spec_dict(tmp_path / "d", tmp_path / "o"), progress=False, pm=pm)
    assert res.items_failed == 0 and (tmp_path / "o" / "errors.jsonl").read_text() == ""


def test_on_error_fail_stops_with_exit_1(tmp_path, h, pm):
    from satcore.errors import RunStopped

    h.make_pairs(tmp_path / "d", 2)
    (tmp_path / "d" / "A" / "img001.png").write_bytes(b"not a png")
    spec = h.spec_dict(tmp_path / "d", tmp_path / "o")
    spec["execution"]["on_error"] = "fail"
    with pytest.raises(
        RunStopped, match=r"item 'img001' could not be read: .*img001\.png: cannot read image"
    ) as ei:
        satcore.run(spec, progress=False, pm=pm)
    assert ei.value.exit_code == 1


def test_empty_folder_is_a_usage_error(tmp_path, h, pm):
    (tmp_path / "d" / "A").mkdir(parents=True)
    (tmp_path / "d" / "B").mkdir()
    with pytest.raises(
        EmptySourceError, match=r"folder-pairs: no images found in .*/d/A \(extensions: \.png"
    ) as ei:
        satcore.run(h.spec_dict(tmp_path / "d", tmp_path / "o"), progress=False, pm=pm)
    assert ei.value.exit_code == 2
    (tmp_path / "e").mkdir()
    with pytest.raises(EmptySourceError, match=r"/e/A is not a folder \(expected .*/e/A and .*/e/B; rename"):
        satcore.run(h.spec_dict(tmp_path / "e", tmp_path / "o2"), progress=False, pm=pm)


def test_failing_step_fails_only_its_item(tmp_path, h, pm, diff_detector):
    """A batch that raises is retried item by item, so one bad item does not take its batch mates down."""
    from satcore.errors import ComponentError

    orig = diff_detector.process

    def process(self, batch):
        if any(it.item_id == "img000" for it in batch):
            raise ComponentError("img000 is cursed")
        return orig(self, batch)

    cls = pm.get_component("test-diff")
    cls.process = process
    h.make_pairs(tmp_path / "d", 6)
    res = satcore.run(h.spec_dict(tmp_path / "d", tmp_path / "o"), progress=False, pm=pm)
    assert (res.items_ok, res.items_failed) == (5, 1)
    # the failed item is the first row of its batch: the other rows keep their outputs (regression: the
    # journal took its columns from the first row only)
    df = pd.read_parquet(tmp_path / "o" / "results.parquet").set_index("item_id")
    assert df.loc[["img001", "img002", "img003"], "diff.score"].notna().all()
    assert df.loc["img002", "diff.label"] == 1 and df.loc["img001", "diff.label"] == 0
    # and they count in the metrics (regression: pandas reads a missing error next to a failed row as NaN, and
    # the metrics took NaN for an error)
    m = json.loads((tmp_path / "o" / "metrics.json").read_text())
    # the class balance counts every item read with truth (a step failing on it does not hide its truth);
    # the step's own metrics count the 5 items it scored
    assert m["class_balance"]["items"] == 6 and m["steps"]["diff"]["all"]["n_items"] == 5
    assert _errors(tmp_path / "o") == {
        "img000": {
            "item_id": "img000",
            "step": "diff",
            "error_type": "ComponentError",
            "message": "img000 is cursed",
        }
    }
