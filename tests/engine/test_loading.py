"""How items are read: threads when they read faster than one thread, else serially (probed on the run)."""

from __future__ import annotations

import threading
import time

import pandas as pd
import pytest

import satcore
from satcore.engine.loading import ItemLoader


def _busy(seconds: float) -> None:
    """Pure Python, holding the GIL as rasterio's wrappers do for tiny files, and slower off the main thread
    (two threads doing this fight over the GIL: small chips read at 0.5-0.7x the serial rate in threads)."""
    if threading.current_thread() is not threading.main_thread():
        seconds *= 4  # two threads: half the serial rate, well clear of THREADS_WIN under load
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def _run(tmp_path, h, pm, monkeypatch, cost, name, workers=2):
    orig = ItemLoader.load

    def load(self, ref):
        cost(0.004)
        return orig(self, ref)

    monkeypatch.setattr(ItemLoader, "load", load)
    spec = h.spec_dict(tmp_path / "d", tmp_path / name)
    spec["execution"].update(batch_size=6, loader_workers=workers)
    return satcore.run(spec, progress=False, pm=pm)


def _seen_by_components(monkeypatch) -> dict:
    """What the components' RunContext says about reading once the probe has run."""
    seen: dict = {}
    orig = ItemLoader._probe

    def probe(self, *a, **k):
        out = orig(self, *a, **k)
        assert self.source.context is self.context  # the context every component sees
        seen["reading_s_per_item"] = self.context.reading_s_per_item
        return out

    monkeypatch.setattr(ItemLoader, "_probe", probe)
    return seen


def test_reading_that_releases_the_gil_goes_to_threads(tmp_path, h, pm, monkeypatch):
    h.make_pairs(tmp_path / "d", 40, size=8)
    seen = _seen_by_components(monkeypatch)
    # like GDAL decoding: GIL released; 4 threads overlap 4 sleeps, far past the 1.5x asked below
    res = _run(tmp_path, h, pm, monkeypatch, time.sleep, "sleep", workers=4)
    lo = res.manifest["loading"]
    assert lo["mode"] == "threads", lo
    assert lo["serial_ms_per_item"] > 1.5 * lo["threads_ms_per_item"]
    # model steps learn how much reading runs beside them (ThreadTuner's side work)
    assert seen["reading_s_per_item"] * 1e3 == pytest.approx(lo["serial_ms_per_item"], abs=1e-4)
    assert seen["reading_s_per_item"] >= 0.004


def test_reading_that_holds_the_gil_stays_serial_with_the_same_results(tmp_path, h, pm, monkeypatch):
    h.make_pairs(tmp_path / "d", 40, size=8)
    seen = _seen_by_components(monkeypatch)
    res = _run(tmp_path, h, pm, monkeypatch, _busy, "busy")
    lo = res.manifest["loading"]
    assert lo["mode"] == "serial", lo
    assert seen["reading_s_per_item"] == 0.0  # read on the model's thread: nothing runs beside it
    assert lo["serial_ms_per_item"] < ItemLoader.THREADS_WIN * lo["threads_ms_per_item"]
    monkeypatch.undo()
    ref = _run(tmp_path, h, pm, monkeypatch, lambda s: None, "plain", workers=0)
    assert ref.manifest["loading"] == {"mode": "serial"}
    pd.testing.assert_frame_equal(res.results(), ref.results())
    assert res.items_ok == 40


def test_too_few_items_are_not_probed(tmp_path, h, pm, monkeypatch):
    h.make_pairs(tmp_path / "d", 10, size=8)
    res = _run(tmp_path, h, pm, monkeypatch, lambda s: None, "few")  # 10 items: fewer than the probe needs
    assert res.manifest["loading"] == {"mode": "threads", "reason": "too few items to compare"}
    assert res.items_ok == 10


def test_processes_read_the_same_items_and_failures(tmp_path, h, pm):
    """execution.loader: processes gives the results of serial reading, failed items included."""
    h.make_pairs(tmp_path / "d", 30, size=8)
    (tmp_path / "d" / "B" / "img003.png").write_bytes(b"not a png")  # one corrupt image

    def run(name, **ex):
        spec = h.spec_dict(tmp_path / "d", tmp_path / name)
        spec["execution"].update(batch_size=7, **ex)
        return satcore.run(spec, progress=False, pm=pm)

    procs = run("procs", loader_workers=2, loader="processes")
    ref = run("serial", loader_workers=0)
    lo = procs.manifest["loading"]
    assert lo["mode"] == "processes" and lo["workers"] == 2 and lo["start_method"] in ("fork", "spawn")
    a = procs.results().sort_values("item_id").reset_index(drop=True)
    b = ref.results().sort_values("item_id").reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b)
    assert procs.items_failed == ref.items_failed == 1
    err = a.loc[a["error"].notna(), "error"].tolist()
    assert len(err) == 1 and "img003.png" in err[0]


def test_unpicklable_failures_come_back_as_component_errors():
    from satcore.engine import loading as runner
    from satcore.errors import ComponentError

    class Odd(Exception):
        def __init__(self, a, b):  # pickling keeps args, unpickling calls Odd(msg): fails
            super().__init__(f"{a}/{b}")

    class Src:
        def load(self, ref):
            if ref == "bad":
                raise Odd("x", "y")
            if ref == "err":
                raise ComponentError("plain failure")
            return ref

    old = runner._PROCESS_SOURCE
    runner._PROCESS_SOURCE = Src()
    try:
        out = runner._load_in_process(["ok", "bad", "err"])
    finally:
        runner._PROCESS_SOURCE = old
    assert out[0] == "ok"
    assert isinstance(out[1], ComponentError) and str(out[1]) == "Odd: x/y"
    assert isinstance(out[2], ComponentError) and str(out[2]) == "plain failure"


def test_a_source_that_cannot_be_pickled_is_a_clear_error(tmp_path, h, pm, monkeypatch):
    from satcore.builtin.sources import FolderPairsSource
    from satcore.errors import UsageError

    h.make_pairs(tmp_path / "d", 6, size=8)
    monkeypatch.setattr(FolderPairsSource, "__reduce__", lambda self: (_ for _ in ()).throw(TypeError("no")),
                        raising=False)
    spec = h.spec_dict(tmp_path / "d", tmp_path / "run")
    spec["execution"].update(loader_workers=2, loader="processes")
    with pytest.raises(UsageError, match="processes needs a source that can be pickled.*loader: threads"):
        satcore.run(spec, progress=False, pm=pm)


def test_a_loader_process_that_dies_stops_the_run_with_a_clear_error(tmp_path, h, pm, monkeypatch):
    import os

    from satcore.builtin.sources import FolderPairsSource
    from satcore.errors import RunStopped

    def die(self, ref):
        os._exit(3)  # as if killed by the OOM killer

    monkeypatch.setattr(FolderPairsSource, "load", die)  # forked workers inherit the patched class
    h.make_pairs(tmp_path / "d", 6, size=8)
    spec = h.spec_dict(tmp_path / "d", tmp_path / "run")
    spec["execution"].update(loader_workers=2, loader="processes")
    with pytest.raises(RunStopped, match="loader process ended abruptly.*--resume.*loader: threads"):
        satcore.run(spec, progress=False, pm=pm)
