"""examples/thesis/e2-*.yaml (issue 13): each spec runs with the tiny test CLIP on synthetic folders in its
dataset's layout (made from the bundled LEVIR-CD sample), and every cell of the thesis's Tables 3–4 is
written: each metric at its own threshold, train and test, per dataset, plus the average over datasets."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

import satcore
from satcore.outputs.compare import compare_runs

REPO = Path(__file__).resolve().parents[3]
THESIS = REPO / "examples" / "thesis"
LEVIR = REPO / "examples" / "data" / "levir-cd"
OBJECTIVES = ("f1", "accuracy", "recall", "precision")
# the bundled sample's labelled pairs, dealt into split folders (train needs both classes: train_386 has none)
FOLDERS = {
    "train": ["train_36_0512_0512", "train_386_0512_0768", "train_412_0512_0768", "test_102_0512_0000",
              "test_121_0768_0256"],
    "val": ["val_27_0000_0256", "test_2_0000_0000"],
    "test": ["test_2_0000_0512", "test_55_0256_0000", "test_77_0512_0256", "test_7_0256_0512"],
}


def _copy(names, dest: Path, a: str, b: str, label: str) -> None:
    for sub, src in ((a, "A"), (b, "B"), (label, "label")):
        (dest / sub).mkdir(parents=True, exist_ok=True)
        for n in names:
            shutil.copy(LEVIR / src / f"{n}.png", dest / sub / f"{n}.png")


@pytest.fixture
def roots(tmp_path, monkeypatch):
    """LEVIR-CD's release layout (train/ val/ test/ × A B label), DSIFN-CD's A/ B/ label/, S2Looking's
    train/ val/ test/ × Image1 Image2 label — and the environment variables the specs read."""
    levir, dsifn, s2 = tmp_path / "LEVIR-CD", tmp_path / "DSIFN-CD", tmp_path / "S2Looking"
    for split, names in FOLDERS.items():
        _copy(names, levir / split, "A", "B", "label")
        _copy(names, s2 / split, "Image1", "Image2", "label")
    _copy([n for names in FOLDERS.values() for n in names], dsifn, "A", "B", "label")
    monkeypatch.setenv("LEVIR_CD_ROOT", str(levir))
    monkeypatch.setenv("DSIFN_CD_ROOT", str(dsifn))
    monkeypatch.setenv("S2LOOKING_ROOT", str(s2))
    return tmp_path


def _run(name: str, out: Path) -> dict:
    satcore.run(THESIS / f"{name}.yaml", progress=False, overrides={
        "steps.probs.model": "tiny-a", "output.dir": str(out / name), "output.report": False,
        "evaluate.bootstrap": 20, "execution.device": "cpu", "execution.batch_size": 4})
    return json.loads((out / name / "metrics.json").read_text())


def test_specs_state_their_clip_and_data_root():
    for path in sorted(THESIS.glob("e2-*.yaml")):
        text = path.read_text()
        spec = yaml.safe_load(text)
        assert "ASSUMES" in text or "ASSUMED CLIP" in text, path
        assert "--set steps.probs.model=" in text, path
        assert spec["source"]["root"].startswith("${") and "https://" in text, path
        assert spec["steps"][0]["templates"] == "names" and spec["steps"][0]["classes"] == "satellite-32"
        assert spec["steps"][1]["threshold"] == {"optimise": list(OBJECTIVES)}


def test_every_thesis_cell_is_written(tiny_env, roots):
    out = roots / "runs"
    runs = {n: _run(n, out) for n in ("e2-levir-cd", "e2-dsifn-cd", "e2-s2looking", "e2-levir-cd-7030")}
    # all 11 labelled pairs read through the split folders (LEVIR-CD: 637 in the release)
    assert runs["e2-levir-cd"]["class_balance"]["items"] == 11
    assert set(runs["e2-levir-cd"]["class_balance"]["splits"]) == {"train", "val", "test"}
    assert runs["e2-levir-cd-7030"]["class_balance"]["items"] == 11
    for name, m in runs.items():
        for split in ("train", "test"):
            by = m["steps"]["change"][split]["image"]["by_objective"]
            assert list(by) == list(OBJECTIVES), (name, split)
            for obj in OBJECTIVES:  # the thesis's cell: the metric at its own threshold
                assert isinstance(by[obj]["threshold"], float), (name, split, obj)
                # a float, or null with the reason (0/0, e.g. nothing predicted on 4 test pairs)
                cell = by[obj][obj]
                ok = isinstance(cell, float) or (cell is None and by[obj][f"{obj}_reason"])
                assert ok, (name, split, obj)
            assert m["baseline"][split]["image"]["recall"] == 1.0  # always-change beside it
    cmp = compare_runs([out / n for n in ("e2-levir-cd", "e2-dsifn-cd", "e2-s2looking")])
    own = {(r["split"], r["metric"]): r for r in cmp["rows"] if r["kind"] == "own threshold"}
    for split in ("train", "test"):
        for obj in OBJECTIVES:
            r = own[(split, obj)]
            want = [v for v in r["values"].values() if v is not None]
            assert r["average_n"] == len(want) and len(r["values"]) == 3
            assert r["average"] == pytest.approx(sum(want) / len(want))
