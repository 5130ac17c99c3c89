"""Worker checks and state shipping of the Dask executor, without a cluster (fake clients, real pipelines)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import satcore
from satcore.errors import RunStopped
from satcore.spec import load_pipeline


def _spec(levir_dir: Path, out: Path, **execution: Any) -> dict[str, Any]:
    return {"version": 1, "source": {"type": "folder-pairs", "root": str(levir_dir)},
            "steps": [{"id": "cva", "type": "cva"}, {"id": "diff", "type": "image-diff"}],
            "output": {"dir": str(out), "report": False}, "execution": execution}


class FakeClient:
    """``client.run`` answering with prepared per-worker reports (or exceptions)."""

    def __init__(self, reports: dict[str, Any]) -> None:
        self.reports = reports

    def run(self, fn: Any, *args: Any, on_error: str = "raise") -> dict[str, Any]:
        assert on_error == "return"
        return {a: (r(*args) if callable(r) else r) for a, r in self.reports.items()}


def test_needed_components_name_each_step_and_its_plugin(levir_dir: Path, tmp_path: Path) -> None:
    from satcore.engine.executors.dask import needed_components

    got = needed_components(load_pipeline(_spec(levir_dir, tmp_path)))
    assert [(n["step"], n["kind"], n["name"]) for n in got] == [
        ("source", "source", "folder-pairs"), ("cva", "detector", "cva"), ("diff", "detector", "image-diff")]
    assert got[1]["distribution"] == "satcore-classic"


def test_workers_with_everything_pass_and_missing_plugins_are_named(levir_dir: Path, tmp_path: Path) -> None:
    from satcore.engine.executors.dask import check_workers, worker_report

    pipeline = load_pipeline(_spec(levir_dir, tmp_path))
    ok = check_workers(FakeClient({"tcp://a:1": worker_report, "tcp://b:2": worker_report}), pipeline)
    assert sorted(ok) == ["tcp://a:1", "tcp://b:2"] and ok["tcp://a:1"]["missing"] == []

    def lacks_classic(needed: list[dict[str, Any]]) -> dict[str, Any]:
        rep = worker_report(needed)
        rep["missing"] = [n for n in needed if n["distribution"] == "satcore-classic"]
        return rep

    client = FakeClient({"tcp://a:1": worker_report, "tcp://b:2": lacks_classic,
                         "tcp://c:3": ModuleNotFoundError("No module named 'satcore'")})
    with pytest.raises(RunStopped) as err:
        check_workers(client, pipeline)
    msg = str(err.value)
    assert "tcp://a:1" not in msg
    assert msg.count("worker tcp://b:2 lacks the plugin") == 2  # one line per step it cannot build
    assert "detector 'cva' (step 'cva')" in msg and "pip install satcore-classic" in msg
    assert "worker tcp://c:3 cannot run satcore (ModuleNotFoundError" in msg


def test_state_files_and_sidecars_are_shipped_and_written_back(tmp_path: Path) -> None:
    """A tabular detector refuses its joblib file without ``<file>.sha256`` beside it: both travel."""
    from satcore.engine.executors.dask import _digest, _write_state

    class Comp:
        state_suffix = ".joblib"

    files = {"rf.joblib": b"model", "rf.joblib.sha256": b"abc  rf.joblib\n"}
    path = _write_state(tmp_path, "rf", Comp(), files)  # type: ignore[arg-type]
    assert path == tmp_path / "rf.joblib"
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == files
    assert _digest({"rf": files}) != _digest({"rf": {**files, "rf.joblib.sha256": b"other"}})
    legacy = tmp_path / "legacy"
    legacy.mkdir()
    assert _write_state(legacy, "rf", Comp(), b"x").read_bytes() == b"x"  # type: ignore[arg-type]


def test_local_manifest_says_what_ran(levir_dir: Path, tmp_path: Path) -> None:
    spec = _spec(levir_dir, tmp_path / "run", loader_workers=0, threads=1, limit=3)
    res = satcore.run(spec, progress=False)
    man = json.loads((res.output_dir / "manifest.json").read_text())
    assert (man["executor"], man["workers"]) == ("local", 1)  # the contract's keys, as before
    assert man["execution"] == {"executor": "local", "workers": 1, "processes": 1, "loader": "serial",
                                "loader_workers": 0, "cpu_threads": 1}


def test_unreachable_scheduler_stops_with_a_hint(levir_dir: Path, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("dask.distributed")
    import socket

    from satcore.engine.executors import dask as dask_executor

    monkeypatch.setattr(dask_executor, "CONNECT_TIMEOUT_S", 1)
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    spec = _spec(levir_dir, tmp_path / "run", executor="dask", address=f"tcp://127.0.0.1:{port}")
    want = r"no Dask scheduler answered at tcp://127\.0\.0\.1:\d+ .*dask scheduler"
    with pytest.raises(RunStopped, match=want):
        satcore.run(spec, progress=False)
    man = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert man["status"] == "stopped" and man["execution"]["cluster"] == "external"
