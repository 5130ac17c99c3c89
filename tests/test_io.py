from __future__ import annotations

import json
import math
import os
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pytest

from satcore.io import atomic_path, is_temp_name, json_ready, write_bytes, write_json, write_text


def test_write_json_converts_numpy_paths_dates_and_non_finite(tmp_path):
    t = datetime(2026, 1, 2, tzinfo=timezone.utc)
    p = write_json(tmp_path / "a" / "x.json", {"i": np.int64(3), "f": np.float32(0.5), "arr": np.arange(3),
                                               "nan": math.nan, "inf": np.float64("inf"), "p": Path("q"),
                                               "t": t, "nested": [{"v": np.nan}]})
    data = json.loads(p.read_text())
    assert data == {"i": 3, "f": 0.5, "arr": [0, 1, 2], "nan": None, "inf": None, "p": "q",
                    "t": "2026-01-02T00:00:00+00:00", "nested": [{"v": None}]}


def test_write_json_refuses_what_it_cannot_represent(tmp_path):
    with pytest.raises(TypeError, match="set"):
        write_json(tmp_path / "x.json", {"s": {1, 2}})
    assert not (tmp_path / "x.json").exists()
    assert not [p for p in tmp_path.iterdir()]  # no temporary file left either


def test_atomic_path_keeps_the_old_file_when_the_writer_fails(tmp_path):
    target = write_text(tmp_path / "t.txt", "old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed")
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.txt"]


def test_writes_replace_and_leave_no_temporary(tmp_path):
    write_bytes(tmp_path / "b.bin", b"1")
    write_bytes(tmp_path / "b.bin", b"22")
    assert (tmp_path / "b.bin").read_bytes() == b"22"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.bin"]


def test_temp_names_are_recognised():
    assert is_temp_name(f".metrics.json.{os.getpid()}.tmp")
    assert is_temp_name(".metrics.json.tmp")  # written by older versions
    assert is_temp_name(".metrics.json.12.tmp", lambda n: n == "metrics.json")
    assert not is_temp_name(".other.json.12.tmp", lambda n: n == "metrics.json")
    assert not is_temp_name("metrics.json")


def test_json_ready_leaves_plain_values():
    assert json_ready({"a": [1, "x", True, None, 1.5]}) == {"a": [1, "x", True, None, 1.5]}
