"""``satcore compare``: runs as columns, the average, baselines and class balance beside them (issue 13)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import satcore
from satcore.cli import cli
from satcore.errors import UsageError
from satcore.outputs.compare import BASELINE, compare_runs

LEVIR = Path(__file__).resolve().parents[2] / "examples" / "data" / "levir-cd"


def _run(tmp_path: Path, name: str, seed: int, steps: list[dict]) -> Path:
    spec = {
        "version": 1, "name": name, "seed": seed,
        "source": {"type": "folder-pairs", "root": str(LEVIR), "labels": "optional"},
        "steps": steps,
        "evaluate": {"split": {"test": 0.4}, "bootstrap": 30},
        "output": {"dir": str(tmp_path / name), "maps": False, "report": False},
        "execution": {"batch_size": 4},
    }
    satcore.run(spec, progress=False)
    return tmp_path / name


@pytest.fixture(scope="module")
def three_runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cmp")
    both = [{"id": "image-diff", "type": "image-diff"}, {"id": "cva", "type": "cva"}]
    return [_run(tmp, "a", 0, both), _run(tmp, "b", 1, both), _run(tmp, "c", 2, both[:1])]


def test_numbers_equal_metrics_json_and_mean_equals_numpy(three_runs):
    cmp = compare_runs(three_runs)
    data = [json.loads((p / "metrics.json").read_text()) for p in three_runs]
    assert cmp["runs"] == ["a", "b", "c"]
    checked = 0
    for row in cmp["rows"]:
        want = []
        for name, m in zip(cmp["runs"], data, strict=True):
            if row["step"] == BASELINE:
                block = m["baseline"].get(row["split"])
                v = None if block is None else block["image"][row["metric"]]
                ci = None
            else:
                e = m["steps"].get(row["step"], {}).get(row["split"])
                v = None if e is None else e["image"][row["metric"]]
                ci = None if e is None else e["ci95"].get("image", {}).get(row["metric"])
            assert row["values"][name] == v, row
            assert row["ci95"][name] == ci, row
            if v is not None:
                want.append(v)
            checked += 1
        assert row["average"] == pytest.approx(float(np.mean(want))) if want else row["average"] is None
        assert row["average_n"] == len(want)
        if row["average_ci95"] is not None:  # only where every run has an interval
            assert all(row["ci95"][n] is not None for n in cmp["runs"])
            assert row["average_ci95"][0] <= row["average"] <= row["average_ci95"][1]
    assert checked > 30
    # cva is missing from run c: marked as a gap in every split, and its average covers two runs
    assert {(g["run"], g["step"]) for g in cmp["gaps"]} == {("c", "cva")}
    cva = [r for r in cmp["rows"] if r["step"] == "cva"]
    assert cva and all(r["values"]["c"] is None and r["average_n"] == 2 and r["average_ci95"] is None
                       for r in cva)
    full = [r for r in cmp["rows"] if r["step"] == "image-diff" and r["average_ci95"] is not None]
    assert full  # intervals for the mean where all three runs have them
    # class balance beside each run, as metrics.json has it
    assert cmp["class_balance"]["b"] == data[1]["class_balance"]


def test_cli_text_json_and_html(three_runs, tmp_path):
    runner = CliRunner()
    out = tmp_path / "cmp.html"
    res = runner.invoke(cli, ["compare", *map(str, three_runs), "--metric", "f1", "--html", str(out)])
    assert res.exit_code == 0, res.output
    assert "average" in res.output and "gap: run c has no cva" in res.output
    assert "always change (baseline)" in res.output and "class balance" in res.output
    page = out.read_text()
    assert "<th>average</th>" in page and 'class="gap"' in page
    res = runner.invoke(cli, ["compare", *map(str, three_runs), "--json"])
    assert res.exit_code == 0
    assert json.loads(res.output)["metrics"] == ["accuracy", "precision", "recall", "f1"]


def test_refuses_a_folder_without_metrics(three_runs, tmp_path):
    with pytest.raises(UsageError, match="no metrics.json"):
        compare_runs([three_runs[0], tmp_path])
    with pytest.raises(UsageError, match="two or more"):
        compare_runs([three_runs[0]])
