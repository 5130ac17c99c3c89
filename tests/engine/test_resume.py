"""A run killed with SIGKILL half way resumes: finished items are skipped, every item ends up exactly once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pyarrow.parquet as pq
import pytest
import yaml

N = 40


def _spec(tmp_path, h, out, sleep):
    d = h.spec_dict("data", out, step="slow-diff")
    d["steps"][0]["sleep"] = sleep
    d["execution"]["batch_size"] = 2
    d["evaluate"]["bootstrap"] = 100  # intervals too must not depend on the order items were processed in
    p = tmp_path / f"{out}.yaml"
    p.write_text(yaml.safe_dump(d))
    return p


def _cli(*args):
    return [sys.executable, "-m", "satcore.cli", *args]


def _ids_in(parts):
    return [i for p in parts for i in pq.read_table(p, columns=["item_id"]).column("item_id").to_pylist()]


def test_sigkill_then_resume(tmp_path, h, fake_site):
    h.make_fake_dist(fake_site, "satcore-slow", "slow", "fake_satcore_slow", h.DIFF_PLUGIN_SOURCE)
    ids = h.make_pairs(tmp_path / "data", N, size=8)
    spec = _spec(tmp_path, h, "out", sleep=0.1)
    out = tmp_path / "out"
    proc = subprocess.Popen(
        _cli("run", str(spec), "--quiet"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        if len(list((out / "parts").glob("part-*.parquet"))) >= 2:  # a part per second of work
            break
        time.sleep(0.02)
    assert proc.poll() is None, f"the run ended before it could be killed: {proc.communicate()}"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    proc.stdout.close(), proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    first = sorted((out / "parts").glob("part-*.parquet"))
    done_before = _ids_in(first)
    assert 8 <= len(done_before) < N and len(set(done_before)) == len(done_before)
    assert not (out / "results.parquet").exists()
    assert json.loads((out / "manifest.json").read_text())["status"] == "running"

    # without a flag the folder is refused
    r = subprocess.run(_cli("run", str(spec), "--quiet"), capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "is not empty; add --resume" in r.stderr and "Traceback" not in r.stderr

    r = subprocess.run(
        _cli("run", str(spec), "--quiet", "--resume"), capture_output=True, text=True, timeout=300
    )
    assert r.returncode == 0, r.stderr
    skipped = len(done_before)
    # each item counted once: the ones this session processed as ok, the ones finished before as skipped
    assert r.stdout.startswith(f"items: {N - skipped} ok, 0 failed, {skipped} skipped (already done)")
    man = json.loads((out / "manifest.json").read_text())
    assert man["status"] == "complete"
    assert man["items"] == {"ok": N - skipped, "failed": 0, "skipped": skipped, "total": N}
    # the second session processed exactly the items the first did not finish
    second = [p for p in sorted((out / "parts").glob("part-*.parquet")) if p not in first]
    assert all(p.name.startswith("part-0002-") for p in second)
    assert sorted(_ids_in(second)) == sorted(set(ids) - set(done_before))
    df = pd.read_parquet(out / "results.parquet")
    assert sorted(df["item_id"]) == sorted(ids) and df["item_id"].is_unique
    assert df["error"].isna().all()
    # and the resumed table equals an uninterrupted run's
    ref_spec = _spec(tmp_path, h, "ref", sleep=0.0)
    r = subprocess.run(_cli("run", str(ref_spec), "--quiet"), capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    ref = pd.read_parquet(tmp_path / "ref" / "results.parquet")
    pd.testing.assert_frame_equal(df, ref)
    assert (
        json.loads((out / "metrics.json").read_text())["steps"]
        == json.loads((tmp_path / "ref" / "metrics.json").read_text())["steps"]
    )


def test_resume_retries_failed_items(tmp_path, h, pm):
    import satcore

    ids = h.make_pairs(tmp_path / "d", 6)
    good = (tmp_path / "d" / "A" / "img003.png").read_bytes()
    (tmp_path / "d" / "A" / "img003.png").write_bytes(b"broken")
    spec = h.spec_dict(tmp_path / "d", tmp_path / "o")
    res = satcore.run(spec, progress=False, pm=pm)
    assert (res.items_ok, res.items_failed) == (5, 1)
    (tmp_path / "d" / "A" / "img003.png").write_bytes(good)  # fixed: --resume retries it
    res = satcore.run(spec, progress=False, pm=pm, resume=True)
    # the retried item is this session's one ok item; the five finished before are skipped, not ok again
    assert (res.items_ok, res.items_failed, res.items_skipped) == (1, 0, 5)
    df = pd.read_parquet(tmp_path / "o" / "results.parquet")
    assert sorted(df["item_id"]) == ids and df["error"].isna().all()
    assert res.items_ok + res.items_failed + res.items_skipped == len(df)
    assert res.manifest["items"] == {"ok": 1, "failed": 0, "skipped": 5, "total": 6}
    assert (tmp_path / "o" / "errors.jsonl").read_text() == ""


def test_resume_counts_add_up_when_items_still_fail(tmp_path, h, pm):
    """A resumed run with an item failing again: ok + failed + skipped is the table's length."""
    import satcore

    h.make_pairs(tmp_path / "d", 6)
    (tmp_path / "d" / "A" / "img002.png").write_bytes(b"broken")
    spec = h.spec_dict(tmp_path / "d", tmp_path / "o")
    satcore.run(spec, progress=False, pm=pm)
    res = satcore.run(spec, progress=False, pm=pm, resume=True)
    assert (res.items_ok, res.items_failed, res.items_skipped) == (0, 1, 5)
    assert res.items_ok + res.items_failed + res.items_skipped == len(res.results())


def test_a_complete_run_keeps_its_journal_and_resumes_as_a_no_op(tmp_path, h, pm):
    """parts/ stays beside results.parquet (docs/decisions.md): the report's score histograms, a later
    --resume that retries failed items and recomputes metrics.json all read it. Resuming a complete run
    processes nothing and leaves every output as it was."""
    import satcore

    h.make_pairs(tmp_path / "d", 6)
    spec = h.spec_dict(tmp_path / "d", tmp_path / "o")
    first = satcore.run(spec, progress=False, pm=pm)
    out = tmp_path / "o"
    assert sorted(out.glob("parts/part-*.parquet")) and (out / "results.parquet").exists()
    before = {n: (out / n).read_bytes() for n in ("metrics.json", "errors.jsonl")}
    table = pd.read_parquet(out / "results.parquet")
    res = satcore.run(spec, progress=False, pm=pm, resume=True)
    assert (res.items_ok, res.items_failed, res.items_skipped) == (0, 0, first.items_ok)
    pd.testing.assert_frame_equal(pd.read_parquet(out / "results.parquet"), table)
    assert {n: (out / n).read_bytes() for n in before} == before
    assert not [p for p in out.glob("parts/part-0002-*")]  # nothing was processed again


def test_resume_refuses_changed_spec_and_foreign_folder(tmp_path, h, pm):
    import satcore
    from satcore.errors import ResumeError

    h.make_pairs(tmp_path / "d", 2)
    spec = h.spec_dict(tmp_path / "d", tmp_path / "o")
    satcore.run(spec, progress=False, pm=pm)
    with pytest.raises(
        ResumeError,
        match=r"the spec changed since the run in .* began \(spec hash \w+ → \w+\); "
        r"resuming would mix results of two specs\. Use --overwrite",
    ):
        satcore.run(spec, {"steps.diff.threshold": 0.9}, progress=False, pm=pm, resume=True)
    # execution settings are not part of the hash
    res = satcore.run(spec, {"execution.batch_size": 1}, progress=False, pm=pm, resume=True)
    assert res.items_skipped == 2
    other = tmp_path / "other"
    other.mkdir()
    (other / "x.txt").write_text("x")
    with pytest.raises(ResumeError, match="has no manifest.json, so it is not a satcore run to resume"):
        satcore.run(spec, progress=False, pm=pm, resume=True, output_dir=other)


def test_journal_buffers_rows_into_few_parts(tmp_path, monkeypatch):
    from satcore.engine import journal

    clock = [100.0]
    monkeypatch.setattr(journal.time, "monotonic", lambda: clock[0])
    j = journal.Journal(tmp_path, flush_rows=5, flush_seconds=1.0)
    j.add([{"item_id": "a", "error": None}, {"item_id": "b", "error": None}])
    clock[0] += 0.5
    j.add([{"item_id": "c", "error": None}])
    assert j.parts() == []  # under both limits: still buffered
    clock[0] += 0.6  # 1.1 s since the oldest buffered row
    j.add([{"item_id": "d", "error": "boom", "x": 1.5}])
    assert len(j.parts()) == 1 and _ids_in(j.parts()) == ["a", "b", "c", "d"]
    j.add([{"item_id": str(i), "error": None} for i in range(5)])  # the row limit
    assert len(j.parts()) == 2
    j.add([{"item_id": "z", "error": None}])
    j.flush()
    j.flush()  # nothing buffered: no empty part
    assert len(j.parts()) == 3
    assert j.done() == ({"a", "b", "c", "z", *map(str, range(5))}, {"d"})


def test_a_stopped_run_keeps_its_finished_rows(tmp_path, h, pm):
    """on_error: fail stops the run at a bad item; the items finished before it are journaled for --resume."""
    import satcore
    from satcore.errors import RunStopped

    ids = h.make_pairs(tmp_path / "data", 12, size=8)
    (tmp_path / "data" / "B" / f"{ids[9]}.png").write_bytes(b"not a png")
    d = h.spec_dict(tmp_path / "data", tmp_path / "out")
    d["execution"].update(batch_size=2, on_error="fail", loader_workers=0)
    with pytest.raises(RunStopped, match="could not be read"):
        satcore.run(d, progress=False, pm=pm)
    assert sorted(_ids_in(sorted((tmp_path / "out" / "parts").glob("part-*.parquet")))) == sorted(ids[:8])


def test_only_a_folder_of_a_run_that_processed_no_items_is_reused(tmp_path):
    """A stopped run's manifest and run.log (and empty fitted/, parts/) are reused by a plain run.

    Results, fitted state, a run still going, or files satcore did not write keep the folder refused.
    """
    from satcore.engine.run_folder import prepare_output
    from satcore.errors import UsageError

    def folder(name, status="stopped", **files):
        out = tmp_path / name
        out.mkdir()
        (out / "manifest.json").write_text(json.dumps({"status": status, "error": "weights missing\nmore"}))
        (out / "run.log").write_text("old log\n")
        for rel, text in files.items():
            p = out / rel.replace("__", "/")
            p.parent.mkdir(parents=True, exist_ok=True)
            if text is not None:
                p.write_text(text)
        return out

    out = folder("setup")
    (out / "fitted").mkdir()
    (out / "parts").mkdir()
    (out / ".manifest.json.tmp").write_text("{")
    note = prepare_output(out, False, False, "h")
    assert note == f"reusing output folder {out}: it held only an earlier run that processed no items " \
                   "(status 'stopped': weights missing)"
    assert list(out.iterdir()) == []
    assert prepare_output(tmp_path / "new", False, False, "h") is None
    refused = [
        folder("results", **{"parts__part-0001-000001.parquet": "x"}),
        folder("table", **{"results.parquet": "x"}),
        folder("maps", **{"maps__a.tif": "x"}),
        folder("fitted", **{"fitted__change.json": "{}"}),  # a fit that finished: --resume reuses it
        folder("running", status="running"),
        folder("complete", status="complete"),
        folder("foreign", **{"notes.txt": "mine"}),
    ]
    (tmp_path / "counted").mkdir()
    (tmp_path / "counted" / "manifest.json").write_text(json.dumps({"status": "stopped",
                                                                    "items": {"ok": 3, "total": 3}}))
    refused.append(tmp_path / "counted")
    for out in refused:
        before = sorted(p.name for p in out.rglob("*"))
        with pytest.raises(UsageError, match="is not empty; add --resume"):
            prepare_output(out, False, False, "h")
        assert sorted(p.name for p in out.rglob("*")) == before


def test_overwrite_accepts_our_temp_files_of_either_naming(tmp_path):
    """A killed run leaves ``.<name>.<pid>.tmp`` (satcore.io) or the older ``.<name>.tmp``: ours to remove."""
    from satcore.engine.run_folder import is_our_temp, prepare_output
    from satcore.errors import UsageError

    assert is_our_temp(".results.parquet.4242.tmp") and is_our_temp(".metrics.json.tmp")
    assert not is_our_temp(".notes.txt.4242.tmp") and not is_our_temp("results.parquet.tmp")
    out = tmp_path / "o"
    out.mkdir()
    (out / "manifest.json").write_text("{}")
    (out / ".results.parquet.4242.tmp").write_bytes(b"half")
    (out / ".errors.jsonl.tmp").write_text("half")
    prepare_output(out, resume=False, overwrite=True, spec_hash="h")
    assert list(out.iterdir()) == []
    (out / ".notes.txt.4242.tmp").write_text("someone else's")
    with pytest.raises(UsageError, match=r"holds files satcore did not write \(\.notes\.txt\.4242\.tmp\)"):
        prepare_output(out, resume=False, overwrite=True, spec_hash="h")
