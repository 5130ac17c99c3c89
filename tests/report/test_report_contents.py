"""What the report says: which items it shows, why a threshold is missing, whether the run was resumed,
legends and colour bars on every map panel, and that `satcore report` rebuilds only what changed."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pandas as pd

import satcore
from satcore.outputs import report_panels
from satcore.outputs.report import build_report
from satcore.outputs.report_blocks import run_header, threshold_reason
from satcore.outputs.report_items import pick_items, report_items
from satcore.plugins import set_plugin_manager


def _run(tmp_path: Path, h, pm, n: int = 5, **output) -> Path:
    h.make_pairs(tmp_path / "d", n, size=24)
    out = tmp_path / "o"
    spec = h.spec_dict(tmp_path / "d", out)
    spec["output"].update(output)
    satcore.run(spec, progress=False, pm=pm)
    set_plugin_manager(pm)
    return out


def test_items_shown_highest_scores_first_with_a_setting(tmp_path, h, pm):
    out = _run(tmp_path, h, pm, n=5, report_items=2)
    page = build_report(out).read_text()
    assert "Showing 2 of 5 items with change maps, highest <code>diff.score</code> first" in page
    results = pd.read_parquet(out / "results.parquet")
    want = results.sort_values("diff.score", ascending=False, kind="stable")["item_id"].tolist()
    shown = pick_items(results, out / "maps", ["diff"], 3)
    assert shown.ids == want[:3] and shown.total == 5
    manifest = json.loads((out / "manifest.json").read_text())
    assert report_items(manifest) == 2 and report_items(manifest, 4) == 4  # the spec, then --items


def test_a_missing_threshold_is_explained(tmp_path, h, pm):
    out = _run(tmp_path, h, pm, n=4)
    page = build_report(out).read_text()
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["steps"]["diff"]["all"]["image"]["threshold"] is None
    for why in ("no threshold: the baseline says change for every item",
                "no threshold: the step labels each item itself"):
        assert re.search(r"<sup>\d</sup> " + re.escape(why), page), why
    results = pd.DataFrame({"s.threshold": [0.2, 0.4, None]})
    assert "differs between items (2 values, 0.2 to 0.4" in threshold_reason("s", results)


def test_the_header_says_resumed_only_when_it_was():
    man = {"name": "n", "spec": {"steps": [{"id": "a", "type": "t"}]}, "executor": "local",
           "items": {"ok": 3, "failed": 1, "skipped": 0}, "wall_time_s": {"total": 1.5}}
    fresh = run_header(man)
    assert "3 ok, 1 failed." in fresh and "resume" not in fresh and "skipped" not in fresh
    man["items"]["skipped"] = 2
    assert "2 skipped (finished by an earlier session: this run was resumed)" in run_header(man)


def test_every_map_panel_has_a_legend_or_colour_bar(tmp_path, h, pm, monkeypatch):
    out = _run(tmp_path, h, pm, n=2)
    figures = []
    monkeypatch.setattr(report_panels, "fig_to_html", lambda fig, alt, **kw: figures.append(fig) or "")
    build_report(out, rebuild=True)
    panels = [f for f in figures if f._suptitle is not None]
    assert len(panels) == 2
    for fig in panels:
        maps = [ax for ax in fig.axes if ax.images and not ax.get_title().startswith(("before", "after"))
                and ax.get_label() != "<colorbar>"]
        titles = [ax.get_title() for ax in maps]
        assert any(t == "truth" for t in titles) and any(t == "diff" for t in titles)
        assert any(t.startswith("gain / loss") for t in titles)
        for ax in maps:
            has_bar = any(im.colorbar is not None for im in ax.images)
            assert has_bar or ax.get_legend() is not None, ax.get_title()


def test_report_rebuilds_only_what_changed(tmp_path, h, pm):
    out = _run(tmp_path, h, pm, n=2)
    build_report(out)
    notes: list[str] = []
    build_report(out, echo=lambda note, _s: notes.append(note))
    assert notes == ["score distributions: unchanged, reused", "pictures: unchanged, reused"]
    first_map = sorted((out / "maps").glob("*.tif"))[0]
    st = first_map.stat()
    os.utime(first_map, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    notes.clear()
    build_report(out, echo=lambda note, _s: notes.append(note))
    assert notes[0] == "score distributions: unchanged, reused"
    assert notes[1].startswith("pictures: rebuilt in ") and f"changed: maps/{first_map.name}" in notes[1]
    notes.clear()
    build_report(out, rebuild=True, echo=lambda note, _s: notes.append(note))
    assert all("(--rebuild" in n for n in notes) and len(notes) == 2


def test_the_cli_prints_only_slow_sections_unless_verbose(tmp_path, h, pm):
    from click.testing import CliRunner

    from satcore.cli import cli

    out = _run(tmp_path, h, pm, n=2)
    quiet = CliRunner().invoke(cli, ["report", str(out)])
    assert quiet.exit_code == 0 and quiet.stdout.strip() == str(out / "report.html")
    assert quiet.stderr == ""  # two tiny items: no section near 10 s
    verbose = CliRunner().invoke(cli, ["report", str(out), "--verbose", "--items", "1"])
    assert verbose.exit_code == 0
    lines = verbose.stderr.splitlines()
    assert len(lines) == 2 and lines[0] == "score distributions: unchanged, reused"
    assert re.match(r"pictures: rebuilt in [\d.]+ s \(settings or satcore version changed; reads 1 item",
                    lines[1])
