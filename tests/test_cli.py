"""The command line: exit codes 0/1/2, messages without tracebacks, validate/schema/plugins."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import yaml

from satcore.cli import main
from satcore.plugins import set_plugin_manager


def run_cli(args, capsys):
    with pytest.raises(SystemExit) as ei:
        main(list(args))
    cap = capsys.readouterr()
    return ei.value.code, cap.out, cap.err


@pytest.fixture
def setup_marker(tmp_path, pm):
    """Make test-diff's setup() leave a marker, so we can tell whether a model would have loaded."""
    cls = pm.get_component("test-diff")
    marker = tmp_path / "setup-called"

    def setup(self):
        marker.write_text("x")

    cls.setup = setup
    set_plugin_manager(pm)
    return marker


def _spec(tmp_path, h, **kw):
    h.make_pairs(tmp_path / "data", 4)
    d = h.spec_dict("data", "out", **kw)
    p = tmp_path / "pipe.yaml"
    p.write_text(yaml.safe_dump(d, sort_keys=False))
    return p


def test_validate_loads_no_model(tmp_path, h, capsys, setup_marker):
    spec = _spec(tmp_path, h)
    code, out, err = run_cli(["validate", str(spec)], capsys)
    assert code == 0, err
    assert out.strip() == f"{spec}: valid. source (folder-pairs) → diff (test-diff ← source)"
    assert not setup_marker.exists()
    assert not (tmp_path / "out").exists()


def test_spec_errors_exit_2_without_traceback(tmp_path, h, capsys, setup_marker):
    spec = _spec(tmp_path, h)
    for cmd in ("validate", "run"):
        code, out, err = run_cli(
            [cmd, str(spec), "--set", "steps.diff.treshold=1", "--set", "execution.on_eror=fail"], capsys
        )
        assert code == 2
        assert "Traceback" not in err and "Traceback" not in out
        assert err.startswith(f"error: 2 problems in {spec}:")
        assert "steps[0].treshold: unknown key — did you mean 'threshold'?" in err
        assert "execution.on_eror: unknown key — did you mean 'on_error'?" in err
    assert not setup_marker.exists() and not (tmp_path / "out").exists()
    code, _, err = run_cli(["run", str(tmp_path / "missing.yaml")], capsys)
    assert code == 2 and "missing.yaml: spec file does not exist" in err and "Traceback" not in err
    # --debug shows the traceback
    code, _, err = run_cli(["--debug", "validate", str(spec), "--set", "steps.diff.treshold=1"], capsys)
    assert code == 2 and "Traceback" in err


def test_run_output_folder_rules(tmp_path, h, capsys, setup_marker):
    spec = _spec(tmp_path, h)
    code, out, err = run_cli(["run", str(spec), "--quiet"], capsys)
    assert code == 0, err
    assert out.startswith("items: 4 ok, 0 failed\n")
    assert setup_marker.exists()
    # a non-empty output folder needs --resume or --overwrite
    code, out, err = run_cli(["run", str(spec), "--quiet"], capsys)
    assert code == 2 and "is not empty; add --resume to continue that run or --overwrite" in err
    code, out, err = run_cli(["run", str(spec), "--quiet", "--overwrite"], capsys)
    assert code == 0 and out.startswith("items: 4 ok, 0 failed")
    code, out, err = run_cli(["run", str(spec), "--quiet", "--resume"], capsys)
    assert code == 0 and out.startswith("items: 0 ok, 0 failed, 4 skipped (already done)")
    # a changed spec is refused on --resume, with a hint
    code, out, err = run_cli(
        ["run", str(spec), "--quiet", "--resume", "--set", "steps.diff.threshold=0.5"], capsys
    )
    assert code == 2 and "Traceback" not in err
    assert "the spec changed since the run in" in err and "Use --overwrite to start again" in err
    code, _, err = run_cli(["run", str(spec), "--quiet", "--resume", "--overwrite"], capsys)
    assert code == 2 and "choose one of --resume and --overwrite" in err
    # --overwrite never deletes files satcore did not write
    (tmp_path / "out" / "precious.txt").write_text("keep")
    code, _, err = run_cli(["run", str(spec), "--quiet", "--overwrite"], capsys)
    assert code == 2 and "holds files satcore did not write (precious.txt)" in err
    assert (tmp_path / "out" / "precious.txt").exists()


def test_schema_command(tmp_path, capsys, setup_marker):
    code, out, err = run_cli(["schema"], capsys)
    assert code == 0
    schema = json.loads(out)
    step = next(v for k, v in schema["$defs"].items() if k.startswith("TestDiff"))
    assert set(step["properties"]) >= {"type", "id", "input", "threshold", "sleep"}
    code, _, _ = run_cli(["schema", "-o", str(tmp_path / "s.json")], capsys)
    assert code == 0 and json.loads((tmp_path / "s.json").read_text()) == schema
    assert not setup_marker.exists()


def _satcore(*args, env=None, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "satcore.cli", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        cwd=cwd,
        timeout=120,
    )


BROKEN = "raise ImportError(\"No module named 'nonexistent_dep' (on purpose)\")\n"


def test_plugins_reports_broken_plugin_and_runs_continue(tmp_path, fake_site, h):
    h.make_fake_dist(fake_site, "satcore-broken", "broken", "fake_satcore_broken", BROKEN)
    h.make_fake_dist(fake_site, "satcore-slow", "slow", "fake_satcore_slow", h.DIFF_PLUGIN_SOURCE, "2.0")
    r = _satcore("plugins")
    assert r.returncode == 0, r.stderr
    assert "slow (satcore-slow 2.0)\n  detectors    slow-diff" in r.stdout
    assert (
        "FAILED broken (satcore-broken): ImportError: No module named 'nonexistent_dep' (on purpose)"
        in r.stdout
    )
    r = _satcore("plugins", "--json")
    data = json.loads(r.stdout)
    assert [f["name"] for f in data["failed"]] == ["broken"]
    assert {
        "name": "slow",
        "distribution": "satcore-slow",
        "version": "2.0",
        "components": {"detector": ["slow-diff"]},
    } in data["plugins"]
    # a run with the broken plugin installed still works
    h.make_pairs(tmp_path / "data", 3)
    spec = tmp_path / "p.yaml"
    spec.write_text(yaml.safe_dump(h.spec_dict("data", "out", step="slow-diff")))
    r = _satcore("run", str(spec), "--quiet")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("items: 3 ok, 0 failed")
    man = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert man["versions"]["plugins"]["slow"] == {"distribution": "satcore-slow", "version": "2.0"}


def test_plugins_reports_conflict(fake_site, h):
    src = (
        "import satcore\nfrom satcore.components import Detector\n\nclass D(Detector):\n"
        '    """x"""\n    name = "slow-diff"\n\n'
        "@satcore.hookimpl\ndef satcore_register_detectors():\n    return [D]\n"
    )
    h.make_fake_dist(fake_site, "satcore-slow", "slow", "fake_satcore_slow", h.DIFF_PLUGIN_SOURCE)
    h.make_fake_dist(fake_site, "satcore-twin", "twin", "fake_satcore_twin", src)
    r = _satcore("plugins")
    assert r.returncode == 0
    assert "CONFLICT: two plugins register a detector named 'slow-diff': 'slow' (satcore-slow" in r.stdout
    assert "'twin' (satcore-twin" in r.stdout and "slow-diff (clash)" in r.stdout
    r = _satcore("validate", "nonexistent.yaml")
    assert r.returncode == 2 and "Traceback" not in r.stderr


def test_a_clash_fails_only_specs_that_use_the_name(fake_site, h, tmp_path):
    src = (
        "import satcore\nfrom satcore.components import Detector\n\nclass D(Detector):\n"
        '    """x"""\n    name = "slow-diff"\n\n'
        "@satcore.hookimpl\ndef satcore_register_detectors():\n    return [D]\n"
    )
    h.make_fake_dist(fake_site, "satcore-slow", "slow", "fake_satcore_slow", h.DIFF_PLUGIN_SOURCE)
    h.make_fake_dist(fake_site, "satcore-twin", "twin", "fake_satcore_twin", src)
    h.make_pairs(tmp_path / "data", 2)
    spec = tmp_path / "s.yaml"
    spec.write_text(json.dumps(h.spec_dict(tmp_path / "data", tmp_path / "out", step="image-diff")))
    ok = _satcore("validate", str(spec))
    assert ok.returncode == 0, ok.stderr
    spec.write_text(json.dumps(h.spec_dict(tmp_path / "data", tmp_path / "out", step="slow-diff")))
    bad = _satcore("validate", str(spec))
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert "steps[0].type: two plugins register a detector named 'slow-diff'" in bad.stderr
    assert "`type: slow:slow-diff` or `type: twin:slow-diff`" in bad.stderr
    chosen_spec = h.spec_dict(tmp_path / "data", tmp_path / "out", step="satcore-slow:slow-diff")
    spec.write_text(json.dumps(chosen_spec))
    chosen = _satcore("validate", str(spec))
    assert chosen.returncode == 0, chosen.stderr


def test_bad_items_exit_0_and_leftover_temp_files_do_not_block_overwrite(tmp_path, h, capsys, setup_marker):
    spec = _spec(tmp_path, h)
    (tmp_path / "data" / "A" / "img002.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    code, out, err = run_cli(["run", str(spec), "--quiet"], capsys)
    assert code == 0
    assert out.startswith("items: 3 ok, 1 failed\n")
    assert f"1 item(s) failed: see {tmp_path / 'out' / 'errors.jsonl'}" in err
    # a run killed while writing leaves `.<name>.tmp` files: still ours, --overwrite may remove them
    (tmp_path / "out" / ".metrics.json.tmp").write_text("{")
    code, out, err = run_cli(["run", str(spec), "--quiet", "--overwrite"], capsys)
    assert code == 0, err
    assert not (tmp_path / "out" / ".metrics.json.tmp").exists()


def test_schema_of_installed_plugins():
    import jsonschema

    r = _satcore("schema")
    assert r.returncode == 0, r.stderr
    schema = json.loads(r.stdout)
    jsonschema.Draft202012Validator.check_schema(schema)
    consts = {
        v["properties"]["type"].get("const")
        for v in schema["$defs"].values()
        if "type" in v.get("properties", {})
    }
    assert {"folder-pairs", "manifest", "geotiff-series", "cva"} <= consts  # built-ins and satcore-classic
    cva = next(
        v for v in schema["$defs"].values() if v.get("properties", {}).get("type", {}).get("const") == "cva"
    )
    assert "threshold" in cva["properties"] and cva["properties"]["threshold"]["description"]


def test_cache_lists_and_clears_only_the_cache(tmp_path, monkeypatch, capsys):
    cache, models = tmp_path / "cache", tmp_path / "models"
    monkeypatch.setenv("SATCORE_CACHE", str(cache))
    monkeypatch.setenv("SATCORE_MODELS", str(models))
    (models / "m").mkdir(parents=True)
    (models / "m" / "w.safetensors").write_bytes(b"w" * 10)
    emb = cache / "embeddings" / "abc123"
    (emb / "ab").mkdir(parents=True)
    (emb / "ab" / "x.npy").write_bytes(b"0" * 2048)
    (emb / "about.json").write_text(json.dumps({"what": "clip-zeroshot embeddings: tiny-a (tiny-clip)"}))
    (cache / "embeddings" / "nodesc").mkdir()
    (cache / "embeddings" / "nodesc" / "y.npy").write_bytes(b"1" * 100)
    (cache / "sha256.json").write_text(json.dumps({"a|1|2": "f" * 64, "b|1|2": "e" * 64}))

    code, out, _ = run_cli(["cache"], capsys)
    assert code == 0
    assert "clip-zeroshot embeddings: tiny-a (tiny-clip)" in out and "embeddings/nodesc" in out
    assert "checkpoint sha256 memo (2 files)" in out and "--clear" in out
    code, out, _ = run_cli(["cache", "--json"], capsys)
    info = json.loads(out)
    sizes = {e["what"]: (e["files"], e["bytes"]) for e in info["entries"]}
    assert sizes["clip-zeroshot embeddings: tiny-a (tiny-clip)"][0] == 2  # the embedding and about.json
    assert sizes["embeddings/nodesc"] == (1, 100)
    assert info["bytes"] == sum(f.stat().st_size for f in cache.rglob("*") if f.is_file())

    code, out, _ = run_cli(["cache", "--clear"], capsys)
    assert code == 0 and "cleared" in out
    assert [f for f in cache.rglob("*") if f.is_file()] == []
    assert (models / "m" / "w.safetensors").read_bytes() == b"w" * 10  # weights are not the cache
    code, out, _ = run_cli(["cache", "--json"], capsys)
    assert code == 0 and json.loads(out)["bytes"] == 0


def test_a_run_stopped_in_setup_leaves_a_folder_a_plain_rerun_reuses(tmp_path, h, capsys, pm):
    """Setup fails (exit 1): the folder then holds a stopped manifest and run.log only. `satcore report` says
    why there is nothing to report (exit 2, no traceback); a plain rerun reuses the folder and logs it."""
    from satcore.errors import MissingDependencyError, SatcoreError

    spec = _spec(tmp_path, h)
    set_plugin_manager(pm)
    cls = pm.get_component("test-diff")
    out = tmp_path / "out"

    def prefixed(self):  # components often name their step in their own errors
        raise SatcoreError("step 'diff' (test-diff) params: no parameter 'n_estimator'")

    cls.setup = prefixed
    code, _, err = run_cli(["run", str(spec), "--quiet"], capsys)
    assert code == 1
    assert err == "error: step 'diff' (test-diff) could not start: params: no parameter 'n_estimator'\n"
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json", "run.log"]
    assert json.loads((out / "manifest.json").read_text())["status"] == "stopped"
    code, _, err = run_cli(["report", str(out)], capsys)
    assert code == 2 and "Traceback" not in err
    assert err.startswith(
        f"error: {out}: no results.parquet to build a report from: the run stopped before writing results "
        "(manifest.json status 'stopped': step 'diff' (test-diff) could not start: params: no parameter "
        "'n_estimator')\nFix that and run it again (satcore run ")

    def unprefixed(self):
        raise MissingDependencyError("nonexistent_dep", "test-diff")

    cls.setup = unprefixed
    code, _, err = run_cli(["run", str(spec), "--quiet"], capsys)
    assert code == 1, err  # not 2 ("output folder is not empty"): the folder was reused
    assert err == ("error: step 'diff' (test-diff) could not start: test-diff needs the package "
                   "'nonexistent_dep', which is not installed: pip install nonexistent_dep\n")
    cls.setup = lambda self: None
    code, out_text, err = run_cli(["run", str(spec), "--quiet"], capsys)
    assert code == 0 and out_text.startswith("items: 4 ok, 0 failed"), err
    log = (out / "run.log").read_text()
    assert (f"INFO satcore: reusing output folder {out}: it held only an earlier run that processed no "
            "items (status 'stopped': step 'diff' (test-diff) could not start: test-diff needs the package"
            in log)
    assert "reusing output folder" in log.splitlines()[0] and "ERROR" not in log  # run.log is this run's
    # a folder with results is still refused
    code, _, err = run_cli(["run", str(spec), "--quiet"], capsys)
    assert code == 2 and "is not empty; add --resume to continue that run or --overwrite" in err
    code, _, err = run_cli(["report", str(out)], capsys)
    assert code == 0 and err == ""


def test_run_summary_lists_only_files_written_and_notes_missing_maps(tmp_path, h, capsys, pm):
    from satcore.components import Detection, Detector

    class ImageLevelDetector(Detector):
        """One decision per item, no map."""

        name = "image-level"

        def process(self, batch):
            return [Detection(score=0.5, label=1) for _ in batch]

    pm.register_plugin(h.plugin_module("fake_img", satcore_register_detectors=[ImageLevelDetector]), "img")
    set_plugin_manager(pm)
    spec = _spec(tmp_path, h)
    code, out, err = run_cli(["run", str(spec), "--quiet"], capsys)
    assert code == 0, err
    assert out.endswith(f"outputs in {tmp_path / 'out'}/: results.parquet, metrics.json, errors.jsonl, "
                        "manifest.json, run.log, maps/, artifacts/\n")  # artifacts/: the change polygons
    # no labels: no metrics.json, and the summary does not list it
    import shutil

    shutil.rmtree(tmp_path / "data" / "label")
    code, out, err = run_cli(["run", str(spec), "--quiet", "--output", str(tmp_path / "o2")], capsys)
    assert code == 0, err
    assert "no ground truth: metrics.json not written\n" in out
    assert out.endswith(f"outputs in {tmp_path / 'o2'}/: results.parquet, errors.jsonl, manifest.json, "
                        "run.log, maps/, artifacts/\n")
    assert err == ""
    # output.maps: true with an image-level step: one line on the console and in run.log
    args = ["run", str(spec), "--quiet", "--set", "steps.diff.type=image-level"]
    code, out, err = run_cli([*args, "--set", "output.maps=true", "--output", str(tmp_path / "o3")], capsys)
    assert code == 0, err
    assert out.endswith("errors.jsonl, manifest.json, run.log\n") and not (tmp_path / "o3" / "maps").exists()
    note = ("output.maps is true, but no step produced a per-pixel change map, so maps/ was not written: "
            "diff (image-level) gave image-level results only. Maps come from detectors that return a score "
            "map or label map per pixel")
    assert err.startswith(f"note: {note}") and err.count("\n") == 1
    assert f"WARNING satcore: {note}" in (tmp_path / "o3" / "run.log").read_text()
    # maps left at their default: run.log only
    code, out, err = run_cli([*args, "--output", str(tmp_path / "o4")], capsys)
    assert code == 0 and err == ""
    assert f"INFO satcore: {note}" in (tmp_path / "o4" / "run.log").read_text()


def test_models_marks_an_alias_whose_base_weights_are_missing(tmp_path, monkeypatch, capsys):
    from satcore.registry import get_registry

    reg = tmp_path / "registry.yaml"
    reg.write_text(yaml.safe_dump({"models": {
        "base-m": {"family": "open_clip", "filename": "w.pt"},
        "over-m": {"family": "open_clip", "filename": "o.pt", "load": {"strict": False, "base": "base-m"}}}}))
    monkeypatch.setenv("SATCORE_REGISTRY", str(reg))
    monkeypatch.setenv("SATCORE_MODELS", str(tmp_path / "models"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    (tmp_path / "models" / "over-m").mkdir(parents=True)
    (tmp_path / "models" / "over-m" / "o.pt").write_bytes(b"w")
    get_registry(refresh=True)
    try:
        code, out, _ = run_cli(["models", "--json"], capsys)
        rows = {r["alias"]: r for r in json.loads(out)}
        assert code == 0
        over = rows["over-m"]
        assert over["present"] and over["base_present"] is False and not over["ready"]
        assert rows["base-m"]["base"] is None and not rows["base-m"]["ready"]
        code, out, _ = run_cli(["models"], capsys)
        assert "present, but its base base-m is missing" in out
        (tmp_path / "models" / "base-m").mkdir()
        (tmp_path / "models" / "base-m" / "w.pt").write_bytes(b"w")
        rows = {r["alias"]: r for r in json.loads(run_cli(["models", "--json"], capsys)[1])}
        assert rows["over-m"]["ready"] and rows["base-m"]["ready"]
    finally:
        monkeypatch.undo()
        get_registry(refresh=True)
