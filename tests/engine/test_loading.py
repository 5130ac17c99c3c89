"""How items are read: threads when they read faster than one thread, else serially (probed on the run)."""

from __future__ import annotations

import threading
import time

import pandas as pd
import pytest

import satcore
from satcore.engine.runner import Engine


def _busy(seconds: float) -> None:
    """Pure Python, holding the GIL as rasterio's wrappers do for tiny files, and slower off the main thread
    (two threads doing this fight over the GIL: small chips read at 0.5-0.7x the serial rate in threads)."""
    if threading.current_thread() is not threading.main_thread():
        seconds *= 2.5
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def _run(tmp_path, h, pm, monkeypatch, cost, name, workers=2):
    orig = Engine._load

    def load(self, ref):
        cost(0.004)
        return orig(self, ref)

    monkeypatch.setattr(Engine, "_load", load)
    spec = h.spec_dict(tmp_path / "d", tmp_path / name)
    spec["execution"].update(batch_size=6, loader_workers=workers)
    return satcore.run(spec, progress=False, pm=pm)


def _seen_by_components(monkeypatch) -> dict:
    """What the components' RunContext says about reading once the probe has run."""
    seen: dict = {}
    orig = Engine._probe_loading

    def probe(self, *a, **k):
        out = orig(self, *a, **k)
        assert all(c.context is self.context for _, c in self.steps)
        seen["reading_s_per_item"] = self.context.reading_s_per_item
        return out

    monkeypatch.setattr(Engine, "_probe_loading", probe)
    return seen


def test_reading_that_releases_the_gil_goes_to_threads(tmp_path, h, pm, monkeypatch):
    h.make_pairs(tmp_path / "d", 40, size=8)
    seen = _seen_by_components(monkeypatch)
    res = _run(tmp_path, h, pm, monkeypatch, time.sleep, "sleep")  # like GDAL decoding: GIL released
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
    assert lo["serial_ms_per_item"] < Engine.THREADS_WIN * lo["threads_ms_per_item"]
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
