"""The report never fails a run: math-text ids, tiny pairs, a failing section, hostile manifest fields."""

from __future__ import annotations

import json

import numpy as np

import satcore
from satcore.outputs import report
from satcore.outputs.report import build_report


def _run(tmp_path, h, names=("a$^$b", "c$_$d"), size=16, **spec):
    rng = np.random.default_rng(0)
    for n in names:
        a = rng.integers(0, 100, (3, size, size), dtype=np.uint8)
        b = a.copy()
        b[:, : max(size // 2, 1)] += 100
        h.write_raster(tmp_path / "d" / "A" / f"{n}.png", a)
        h.write_raster(tmp_path / "d" / "B" / f"{n}.png", b)
        lab = np.zeros((size, size), np.uint8)
        lab[: max(size // 2, 1)] = 255
        h.write_raster(tmp_path / "d" / "label" / f"{n}.png", lab)
    d = h.spec_dict(tmp_path / "d", tmp_path / "o", step="cva")
    d["output"] = {"dir": str(tmp_path / "o"), "report": True, "maps": True}
    d.update(spec)
    return satcore.run(d, progress=False)


def test_dollar_signs_in_item_ids_do_not_break_the_report(tmp_path, h):
    res = _run(tmp_path, h)
    assert res.items_ok == 2
    page = (tmp_path / "o" / "report.html").read_text()
    assert "failed:" not in page
    assert page.count("panels for") == 2  # both panels drawn, ids shown literally


def test_pairs_smaller_than_2x2_do_not_break_the_report(tmp_path, h):
    res = _run(tmp_path, h, names=("one", "two"), size=1)
    assert res.items_ok == 2
    page = (tmp_path / "o" / "report.html").read_text()
    assert "failed:" not in page and "panels for one" in page


def test_a_failing_section_is_marked_failed_and_logged_never_failing_the_run(tmp_path, h, monkeypatch):
    def boom(*a, **k):
        raise RuntimeError("kaboom <b>")

    monkeypatch.setattr(report, "_histograms", boom)
    res = _run(tmp_path, h, names=("x",))
    assert res.items_ok == 1 and res.manifest["status"] == "complete"
    page = (tmp_path / "o" / "report.html").read_text()
    assert "failed: RuntimeError: kaboom &lt;b&gt;" in page
    assert "<h2>Results</h2>" in page  # the other sections are there
    log = (tmp_path / "o" / "run.log").read_text()
    assert "report: section 'Score distributions' failed: RuntimeError: kaboom" in log


def test_a_report_that_cannot_be_built_at_all_does_not_fail_the_run(tmp_path, h, monkeypatch):
    def broken(run_dir):
        raise ValueError("no report today")

    monkeypatch.setattr(report, "build_report", broken)
    res = _run(tmp_path, h, names=("x",))
    assert res.items_ok == 1 and res.manifest["status"] == "complete"
    assert "report.html not written: ValueError: no report today" in (tmp_path / "o" / "run.log").read_text()


def test_every_manifest_field_shown_is_escaped(tmp_path, h):
    _run(tmp_path, h, names=("x",))
    man_path = tmp_path / "o" / "manifest.json"
    man = json.loads(man_path.read_text())
    evil = "<script>alert(1)</script>"
    man.update(name=evil, spec_hash=evil, executor=evil, versions={"satcore": evil},
               items={"ok": evil, "failed": evil, "skipped": evil}, wall_time_s={"total": evil})
    man_path.write_text(json.dumps(man))
    page = build_report(tmp_path / "o").read_text()
    assert evil not in page  # (the page has its own scripts: the map's Leaflet)
    assert page.count("&lt;script&gt;") >= 8
