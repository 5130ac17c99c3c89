"""The run folder under contention and in a hostile environment: a lock, full disks, corrupt files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pandas as pd
import pytest
import yaml

import satcore
from satcore.builtin.folder_pairs import FolderPairsSource
from satcore.engine.run_folder import LOCK_NAME, RunFolderBusy, hold_run_folder
from satcore.errors import RunStopped


def _cli(*args: str, env: dict[str, str] | None = None, **kw) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "satcore.cli", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=120, **kw)


def _spec(tmp_path: Path, h, n: int = 6, maps: bool = True) -> Path:
    h.make_pairs(tmp_path / "d", n, size=32)
    d = h.spec_dict(tmp_path / "d", tmp_path / "o", step="cva")
    d["output"]["maps"] = maps
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(d))
    return path


def _table(out: Path) -> pd.DataFrame:
    df = pd.read_parquet(out / "results.parquet").sort_values("item_id").reset_index(drop=True)
    return df[[c for c in df.columns if "time" not in c and "seconds" not in c]]


def _metrics(out: Path) -> dict:
    return json.loads((out / "metrics.json").read_text())


def test_the_lock_names_its_holder_and_is_gone_after(tmp_path):
    out = tmp_path / "o"
    with hold_run_folder(out):
        info = json.loads((out / LOCK_NAME).read_text())
        assert info["pid"] == os.getpid() and info["host"] and info["started"]
        busy = pytest.raises(RunFolderBusy, match=rf"in use by process {os.getpid()} on .*, started ")
        with busy, hold_run_folder(out):
            pass
    assert not (out / LOCK_NAME).exists()
    with hold_run_folder(out):  # free again
        pass


def test_a_stale_lock_file_of_a_killed_run_blocks_nothing(tmp_path, h):
    spec = _spec(tmp_path, h, n=2, maps=False)
    (tmp_path / "o").mkdir()
    (tmp_path / "o" / LOCK_NAME).write_text('{"pid": 1, "host": "gone", "started": "then"}')
    res = satcore.run(spec, progress=False)  # flock died with its holder: the folder counts as empty
    assert res.items_ok == 2


def test_a_second_run_on_a_folder_in_use_exits_2_and_the_first_loses_nothing(tmp_path, h, monkeypatch):
    spec = _spec(tmp_path, h, n=6)
    clean = satcore.run(spec, output_dir=tmp_path / "clean", progress=False)
    started, release = threading.Event(), threading.Event()
    load = FolderPairsSource.load

    def slow_load(self, ref):  # the first run waits mid-way until the second ones have tried
        started.set()
        release.wait(120)
        return load(self, ref)

    monkeypatch.setattr(FolderPairsSource, "load", slow_load)
    box: dict = {}
    first = threading.Thread(target=lambda: box.update(res=satcore.run(spec, progress=False)))
    first.start()
    try:
        assert started.wait(60)
        for extra in ([], ["--resume"], ["--overwrite"]):
            r = _cli("run", str(spec), *extra)
            assert r.returncode == 2, (extra, r.stderr)
            assert "is in use by process" in r.stderr and str(os.getpid()) in r.stderr
            assert "Traceback" not in r.stderr
    finally:
        release.set()
        first.join(120)
    assert box["res"].items_ok == 6 and box["res"].items_failed == 0
    assert json.loads((tmp_path / "o" / "manifest.json").read_text())["status"] == "complete"
    pd.testing.assert_frame_equal(_table(tmp_path / "o"), _table(clean.output_dir))
    assert _metrics(tmp_path / "o") == _metrics(clean.output_dir)
    assert not (tmp_path / "o" / LOCK_NAME).exists()


def _no_temp_files(out: Path) -> list[str]:
    return [str(p.relative_to(out)) for p in out.rglob("*") if p.name.endswith(".tmp")]


@pytest.mark.skipif(sys.platform == "win32", reason="RLIMIT_FSIZE is POSIX")
def test_disk_full_stops_with_one_line_and_resume_gives_the_clean_results(tmp_path, h):
    import resource
    import signal

    spec = _spec(tmp_path, h, n=8)
    clean = satcore.run(spec, output_dir=tmp_path / "clean", progress=False)
    # the largest file the run must write, minus a bit: some write of the run must hit the limit (the polygons
    # GeoPackage in artifacts/ is optional output: a failure to write it is logged, the run still completes)
    must = [p for p in clean.output_dir.rglob("*")
            if p.is_file() and "artifacts" not in p.relative_to(clean.output_dir).parts]
    limit = max(p.stat().st_size for p in must) - 1

    def cap() -> None:  # in the child: a file over `limit` bytes fails with EFBIG, as on a full disk
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    r = _cli("run", str(spec), preexec_fn=cap)
    assert r.returncode == 1, r.stderr
    lines = [x for x in r.stderr.splitlines() if x.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), r.stderr
    assert "File too large" in lines[0] or "No space" in lines[0], lines[0]
    assert "See previous exception" not in lines[0]
    out = tmp_path / "o"
    assert _no_temp_files(out) == []
    assert json.loads((out / "manifest.json").read_text())["status"] == "stopped"
    r = _cli("run", str(spec), "--resume")  # space freed
    assert r.returncode == 0, r.stderr
    pd.testing.assert_frame_equal(_table(out), _table(clean.output_dir))
    assert _metrics(out) == _metrics(clean.output_dir)


def test_an_output_dir_that_cannot_be_made_is_one_line_exit_1(tmp_path, h):
    spec = _spec(tmp_path, h, n=1, maps=False)
    (tmp_path / "file").write_text("x")
    r = _cli("run", str(spec), "--set", f"output.dir={tmp_path / 'file' / 'o'}")
    assert r.returncode in (1, 2), r.stderr
    assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr, r.stderr


@pytest.mark.skipif(sys.platform == "win32" or os.geteuid() == 0, reason="root writes anywhere")
def test_an_unwritable_output_folder_is_one_line_exit_1(tmp_path, h):
    spec = _spec(tmp_path, h, n=1, maps=False)
    parent = tmp_path / "ro"
    parent.mkdir()
    parent.chmod(0o500)
    try:
        r = _cli("run", str(spec), "--set", f"output.dir={parent / 'o'}")
    finally:
        parent.chmod(0o700)
    assert r.returncode == 1, r.stderr
    assert r.stderr.count("\n") == 1 and "Permission denied" in r.stderr and "Traceback" not in r.stderr


def test_a_corrupt_manifest_on_resume_is_one_line_exit_1(tmp_path, h):
    spec = _spec(tmp_path, h, n=2, maps=False)
    satcore.run(spec, progress=False)
    (tmp_path / "o" / "manifest.json").write_text('{"spec_hash": ')
    with pytest.raises(RunStopped, match="manifest.json is unreadable or corrupt"):
        satcore.run(spec, resume=True, progress=False)
    r = _cli("run", str(spec), "--resume")
    assert r.returncode == 1 and r.stderr.count("\n") == 1 and "corrupt" in r.stderr, r.stderr


def test_a_corrupt_part_file_on_resume_is_one_line_exit_1(tmp_path, h):
    spec = _spec(tmp_path, h, n=2, maps=False)
    satcore.run(spec, progress=False)
    part = sorted((tmp_path / "o" / "parts").iterdir())[0]
    part.write_bytes(b"not parquet at all")
    r = _cli("run", str(spec), "--resume")
    assert r.returncode == 1, r.stderr
    assert r.stderr.count("\n") == 1 and "part file" in r.stderr and "Traceback" not in r.stderr
    assert _no_temp_files(tmp_path / "o") == []
