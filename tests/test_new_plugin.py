"""`satcore new-plugin`: names, files, every kind's generated tests, and the install-and-run acceptance."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import tomllib

from satcore.cli import main
from satcore.errors import UsageError
from satcore.scaffold import KINDS, plugin_names, scaffold_plugin

LEVIR = Path(__file__).resolve().parents[1] / "examples" / "data" / "levir-cd"


def _satcore(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "satcore.cli", *args], capture_output=True, text=True,
                          timeout=300, cwd=cwd)


def _cli(capsys, *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exc:
        main(list(args))
    out = capsys.readouterr()
    return int(exc.value.code or 0), out.out, out.err


# ------------------------------------------------------------------------------------------ names and files

@pytest.mark.parametrize(("name", "why"), [
    ("Demo", "not kebab-case"), ("my_plugin", "not kebab-case"), ("my--plugin", "not kebab-case"),
    ("-demo", "not kebab-case"), ("demo-", "not kebab-case"), ("9lives", "not kebab-case"),
    ("satcore-demo", "without the satcore- prefix"),
])
def test_bad_names_are_refused_with_exit_2(tmp_path, capsys, name, why):
    code, _out, err = _cli(capsys, "new-plugin", "--dir", str(tmp_path), "--", name)
    assert code == 2 and why in err and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []


def test_camel_case_name_gets_a_suggestion(tmp_path):
    with pytest.raises(UsageError, match="e.g. 'my-plugin'"):
        scaffold_plugin("MyPlugin", "detector", tmp_path)


def test_existing_folder_is_refused(tmp_path, capsys):
    (tmp_path / "satcore-demo").mkdir()
    (tmp_path / "satcore-demo" / "keep.txt").write_text("mine")
    code, _out, err = _cli(capsys, "new-plugin", "demo", "--dir", str(tmp_path))
    assert code == 2 and "already exists" in err
    assert [p.name for p in (tmp_path / "satcore-demo").iterdir()] == ["keep.txt"]


def test_unknown_kind_is_a_usage_error(tmp_path, capsys):
    code, _out, err = _cli(capsys, "new-plugin", "demo", "--kind", "painter", "--dir", str(tmp_path))
    assert code == 2 and "painter" in err


def test_names_derived_from_kebab_case():
    n = plugin_names("my-thing", "extractor")
    assert (n.dist, n.pkg, n.cls, n.module) == ("satcore-my-thing", "satcore_my_thing", "MyThingExtractor",
                                                "extractors")


def test_scaffold_writes_the_plugin_layout(tmp_path):
    path = scaffold_plugin("my-thing", "detector", tmp_path)
    assert path == tmp_path / "satcore-my-thing"
    files = sorted(str(p.relative_to(path)) for p in path.rglob("*") if p.is_file())
    assert files == [".gitignore", "CHANGELOG.md", "README.md", "pyproject.toml",
                     "satcore_my_thing/__init__.py", "satcore_my_thing/detectors.py",
                     "satcore_my_thing/py.typed", "tests/test_detectors.py"]
    meta = tomllib.loads((path / "pyproject.toml").read_text())
    assert meta["project"]["name"] == "satcore-my-thing"
    assert meta["project"]["entry-points"]["satcore"] == {"my-thing": "satcore_my_thing"}
    assert "satcore>=0.1,<0.2" in meta["project"]["dependencies"]
    assert meta["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"] == ["satcore_my_thing"]
    assert "## Unreleased" in (path / "CHANGELOG.md").read_text()
    readme = (path / "README.md").read_text()
    assert "type: my-thing" in readme and "- `threshold`: Score above which" in readme
    assert not list(tmp_path.glob(".satcore-my-thing-*"))  # the temp folder was renamed away


def test_readme_links_to_no_made_up_repository(tmp_path):
    readme = (scaffold_plugin("my-thing", "detector", tmp_path) / "README.md").read_text()
    assert "github.com" not in readme and "http" not in readme
    assert "the detector `my-thing`" in readme


def test_a_name_an_installed_plugin_uses_is_refused(tmp_path, capsys):
    code, _out, err = _cli(capsys, "new-plugin", "cva", "--dir", str(tmp_path))
    assert code == 2 and "'cva' is already used by an installed plugin: satcore-classic (detector)" in err
    assert list(tmp_path.iterdir()) == []


def test_several_kinds_in_one_package_with_distinct_names(tmp_path):
    path = scaffold_plugin("duo", ["detector", "recognizer"], tmp_path)
    init = (path / "satcore_duo" / "__init__.py").read_text()
    assert "def satcore_register_detectors(" in init and "def satcore_register_recognizers(" in init
    assert 'name = "duo"' in (path / "satcore_duo" / "detectors.py").read_text()
    assert 'name = "duo-recognizer"' in (path / "satcore_duo" / "recognizers.py").read_text()
    assert {p.name for p in (path / "tests").iterdir()} == {"test_detectors.py", "test_recognizers.py"}
    readme = (path / "README.md").read_text()
    assert "type: duo}" in readme and "type: duo-recognizer}" in readme
    with pytest.raises(UsageError, match="--kind detector is given twice"):
        scaffold_plugin("trio", ["detector", "detector"], tmp_path)


def test_into_adds_a_kind_to_an_existing_package_and_refuses_a_second_one(tmp_path, capsys):
    path = scaffold_plugin("solo", "detector", tmp_path)
    code, out, err = _cli(capsys, "new-plugin", "solo", "--kind", "captioner", "--into", str(path))
    assert code == 0, err
    assert 'name = "solo-captioner"' in (path / "satcore_solo" / "captioners.py").read_text()
    assert "def satcore_register_captioners(" in (path / "satcore_solo" / "__init__.py").read_text()
    assert "`solo-captioner`" in (path / "CHANGELOG.md").read_text()
    before = {p: p.read_text() for p in path.rglob("*") if p.is_file()}
    code, _out, err = _cli(capsys, "new-plugin", "solo", "--kind", "captioner", "--into", str(path))
    assert code == 2 and "already has a captioner" in err
    assert {p: p.read_text() for p in path.rglob("*") if p.is_file()} == before
    code, _out, err = _cli(capsys, "new-plugin", "other", "--kind", "captioner", "--into", str(path))
    assert code == 2 and "is not the package of plugin 'other'" in err


@pytest.mark.slow
def test_a_multi_kind_package_passes_its_own_tests(tmp_path):
    path = scaffold_plugin("multi", ["detector", "extractor"], tmp_path)
    from satcore.scaffold import add_to_plugin

    add_to_plugin("multi", "recognizer", path)
    env = {**os.environ, "PYTHONPATH": str(path)}
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs"], cwd=path,
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert "failed" not in proc.stdout


@pytest.mark.slow
@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_passes_its_own_tests(tmp_path, kind):
    """Each kind's generated component passes its generated contract and behaviour tests (not installed)."""
    path = scaffold_plugin(f"gen-{kind}", kind, tmp_path)
    env = {**os.environ, "PYTHONPATH": str(path)}
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs"], cwd=path,
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert " passed" in proc.stdout and "failed" not in proc.stdout
    # the behaviour test ran, and of the contract only the install-dependent check may skip
    skips = [line for line in proc.stdout.splitlines() if line.startswith("SKIPPED")]
    assert all("not part of an installed distribution" in s or "not fittable" in s for s in skips), skips


@pytest.mark.slow
def test_templates_ship_in_the_wheel(tmp_path):
    import zipfile

    root = Path(__file__).resolve().parents[1]
    cmd = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", str(root), "-w",
           str(tmp_path)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    [wheel] = tmp_path.glob("satcore-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for kind in KINDS:
        assert f"satcore/templates/{kind}/component.py.tmpl" in names
        assert f"satcore/templates/{kind}/test_component.py.tmpl" in names
    assert "satcore/templates/common/pyproject.toml.tmpl" in names
    assert "satcore/testing/plugin.py" in names


# ------------------------------------------------------------------------------------------ acceptance

def _reference_fractions(threshold: float = 0.1) -> dict[str, float]:
    """The generated detector's changed fraction per item, recomputed independently from the LEVIR files."""
    from satcore.data import read_raster

    out = {}
    for a in sorted((LEVIR / "A").glob("*.png")):
        b = LEVIR / "B" / a.name
        if not b.exists():
            continue
        x, y = read_raster(a).array.astype(float), read_raster(b).array.astype(float)
        if x.shape != y.shape:
            continue
        score = np.clip(np.abs(y - x).mean(axis=0) / 255.0, 0, 1)
        out[a.stem] = float((score > threshold).mean())
    return out


@pytest.mark.slow
def test_new_plugin_installs_runs_and_uninstalls(tmp_path):
    code = _satcore("new-plugin", "demo", "--kind", "detector", "--dir", str(tmp_path))
    assert code.returncode == 0, code.stderr
    path = tmp_path / "satcore-demo"
    spec = tmp_path / "demo.yaml"
    spec.write_text(json.dumps({
        "version": 1, "name": "demo", "source": {"type": "folder-pairs", "root": str(LEVIR)},
        "steps": [{"id": "demo", "type": "demo"}], "evaluate": {"bootstrap": 0},
        "output": {"dir": str(tmp_path / "run"), "report": False}, "execution": {"batch_size": 4},
    }))
    pip = [sys.executable, "-m", "pip"]
    install = subprocess.run([*pip, "install", "--no-deps", "--no-build-isolation", "-q", "-e", str(path)],
                             capture_output=True, text=True, timeout=300)
    try:
        assert install.returncode == 0, install.stderr[-3000:]
        # listed by `satcore plugins`, attributed to its distribution
        listed = json.loads(_satcore("plugins", "--json").stdout)
        demo = [p for p in listed["plugins"] if p["name"] == "demo"]
        assert demo and demo[0]["distribution"] == "satcore-demo" and demo[0]["components"] == {
            "detector": ["demo"]}
        # its own tests pass, including the entry-point check that needs the install
        tests = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs"],
                               cwd=path, capture_output=True, text=True, timeout=300)
        assert tests.returncode == 0, tests.stdout[-4000:]
        assert "test_entry_point_resolves PASSED" in subprocess.run(
            [sys.executable, "-m", "pytest", "-v", "-p", "no:cacheprovider", "-k", "entry_point"], cwd=path,
            capture_output=True, text=True, timeout=300).stdout
        # a pipeline that uses it, on the bundled LEVIR sample
        run = _satcore("run", str(spec), "--quiet")
        assert run.returncode == 0, run.stderr[-3000:]
        df = pd.read_parquet(tmp_path / "run" / "results.parquet")
        ok = df[df["error"].isna()]
        assert len(ok) == 11 and {"demo.score", "demo.label", "demo.pixel_auc"} <= set(df.columns)
        want = _reference_fractions()
        assert sorted(ok["item_id"]) == sorted(want)
        got = dict(zip(ok["item_id"], ok["demo.score"], strict=True))
        assert np.allclose([got[k] for k in want], list(want.values()), atol=1e-6)
        assert len(set(want.values())) > 5  # the items differ, so the comparison means something
        metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
        assert metrics["steps"]["demo"]["all"]["pixel"]["auc"] is not None
        assert (tmp_path / "run" / "maps").is_dir()
    finally:
        subprocess.run([*pip, "uninstall", "-y", "-q", "satcore-demo"], capture_output=True, timeout=300)
    # gone: the same spec now fails as a spec error naming the unknown step type
    assert "demo" not in [p["name"] for p in json.loads(_satcore("plugins", "--json").stdout)["plugins"]]
    again = _satcore("run", str(spec), "--overwrite", "--quiet")
    assert again.returncode == 2, again.stderr
    assert "unknown step type 'demo'" in again.stderr and "Traceback" not in again.stderr
