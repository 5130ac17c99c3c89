"""The satcore CLI with the real examples, offline and without weights: exit 1 fast, no traceback."""

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
SATCORE = str(Path(sys.executable).parent / "satcore")


def clean_env(tmp_path):
    env = dict(os.environ)
    env.update(
        SATCORE_MODELS=str(tmp_path / "models"),
        SATCORE_HOME=str(tmp_path / "home"),
        SATCORE_CACHE=str(tmp_path / "cache"),
        HF_HUB_CACHE=str(tmp_path / "hf"),
        HF_HUB_OFFLINE="1",
    )
    env.pop("SATCORE_REGISTRY", None)
    return env


@pytest.mark.parametrize(
    "example,alias,repo",
    [
        ("levir-clip-zeroshot.yaml", "clip-vit-b32", "timm/vit_base_patch32_clip_224.openai"),
        ("levir-remoteclip-zeroshot.yaml", "remoteclip-vit-b32", "chendelong/RemoteCLIP"),
    ],
)
def test_missing_weights_exit_1_with_instructions(tmp_path, example, alias, repo):
    t = time.perf_counter()
    p = subprocess.run(
        [SATCORE, "run", str(REPO / "examples" / example), "--set", f"output.dir={tmp_path / 'out'}"],
        capture_output=True,
        text=True,
        env=clean_env(tmp_path),
        timeout=120,
    )
    took = time.perf_counter() - t
    err = p.stdout + p.stderr
    assert p.returncode == 1, err
    assert took < 15, took
    assert "Traceback" not in err
    assert f"weights for model {alias!r} were not found" in err
    assert f"$SATCORE_MODELS/{alias}/: {tmp_path / 'models' / alias}" in err
    assert f"Hugging Face cache: {tmp_path / 'hf'}" in err and repo in err
    assert "To fix: copy the weights to" in err and "`weights: /path/to/file`" in err


def test_examples_differ_only_in_model_line():
    a = (REPO / "examples" / "levir-clip-zeroshot.yaml").read_text().splitlines()
    b = (REPO / "examples" / "levir-remoteclip-zeroshot.yaml").read_text().splitlines()
    diff = [(x, y) for x, y in zip(a, b, strict=False) if x != y]
    assert len(a) == len(b) and diff == [("    model: clip-vit-b32", "    model: remoteclip-vit-b32")]


def test_import_and_listing_do_not_import_torch(tmp_path):
    code = (
        "import sys, satcore_clip\n"
        "from satcore.plugins import get_plugin_manager\n"
        "pm = get_plugin_manager()\n"
        "pm.get_component('clip-zeroshot', ('extractor',))\n"
        "pm.get_component('probability-delta', ('detector',))\n"
        "import satcore; satcore.validate(sys.argv[1])\n"
        "bad = [m for m in ('torch', 'open_clip', 'torchvision') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    p = subprocess.run(
        [sys.executable, "-c", code, str(REPO / "examples" / "levir-clip-zeroshot.yaml")],
        capture_output=True,
        text=True,
        env=clean_env(tmp_path),
        timeout=120,
    )
    assert p.returncode == 0, p.stderr
    p = subprocess.run(
        [SATCORE, "plugins"], capture_output=True, text=True, env=clean_env(tmp_path), timeout=120
    )
    assert p.returncode == 0 and "clip-zeroshot" in p.stdout and "probability-delta" in p.stdout, (
        p.stdout + p.stderr
    )


def test_cli_set_switches_alias_without_code_change(tiny_env, tmp_path):
    """`--set steps.probs.model=tiny-b` on the command line loads the other checkpoint (tiny aliases from
    $SATCORE_REGISTRY carry their inline model_cfg, so a fresh process needs no test code)."""
    import hashlib
    import json

    import yaml

    spec = {
        "version": 1,
        "name": "cli-swap",
        "source": {"type": "folder-pairs", "root": str(REPO / "examples" / "data" / "levir-cd")},
        "steps": [
            {"id": "probs", "type": "clip-zeroshot", "model": "tiny-a", "classes": ["forest", "road"]},
            {"id": "change", "type": "probability-delta", "input": "probs", "threshold": 0.5},
        ],
        "output": {"dir": str(tmp_path / "a"), "report": False},
        "execution": {"device": "cpu"},
    }
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(spec))
    env = dict(os.environ)
    shas = {}
    for alias, out in (("tiny-a", "a"), ("tiny-b", "b")):
        args = [SATCORE, "run", str(tmp_path / "spec.yaml"), "--set", f"output.dir={tmp_path / out}"]
        if alias != "tiny-a":
            args += ["--set", f"steps.probs.model={alias}"]
        p = subprocess.run(args, capture_output=True, text=True, env=env, timeout=300)
        assert p.returncode == 0, p.stdout + p.stderr
        (m,) = json.loads((tmp_path / out / "manifest.json").read_text())["models"]
        assert m["alias"] == alias
        shas[alias] = m["sha256"]
    for alias in shas:
        assert (
            shas[alias] == hashlib.sha256((tiny_env["models"] / alias / "model.pt").read_bytes()).hexdigest()
        )
    assert shas["tiny-a"] != shas["tiny-b"]


@pytest.mark.parametrize(
    "key,value,message",
    [
        ("model", "clip-vit-b23", "unknown model alias 'clip-vit-b23' — did you mean 'clip-vit-b32'?"),
        ("model", "/no/such/ckpt.pt", "is a checkpoint path, not an alias: add `architecture:`"),
        ("classes", "my-classes.txt", "is neither a bundled set (satellite-32) nor an existing file"),
        ("classes", "[building]", "gives one class ('building'); a softmax over one class is always 1"),
        ("classes", "[road, building, road]", "lists 'road' more than once; keep one of each"),
        ("classes", "[]", "gives an empty list; give at least two classes"),
        ("templates", "[a photo of]", "each template needs '{}' for the class name"),
    ],
)
def test_clip_params_are_checked_by_validate_without_a_model(tmp_path, key, value, message):
    """Mistakes in the step's own settings are spec errors (exit 2, file and line), found before any load."""
    spec = tmp_path / "spec.yaml"
    spec.write_text((REPO / "examples" / "levir-clip-zeroshot.yaml").read_text()
                    .replace("root: data/levir-cd", f"root: {REPO / 'examples' / 'data' / 'levir-cd'}"))
    for cmd in ("validate", "run"):
        p = subprocess.run([SATCORE, cmd, str(spec), "--set", f"steps.probs.{key}={value}",
                            "--set", f"output.dir={tmp_path / 'out'}"],
                           capture_output=True, text=True, env=clean_env(tmp_path), timeout=120)
        err = p.stdout + p.stderr
        assert p.returncode == 2, (cmd, err)
        assert message in err and "Traceback" not in err, err
        assert "steps[0]" in err, err
        assert not (tmp_path / "out").exists()  # nothing ran


def test_relative_checkpoint_paths_are_relative_to_the_spec(tmp_path, monkeypatch):
    from satcore.spec import load_pipeline

    (tmp_path / "specs").mkdir()
    spec = tmp_path / "specs" / "s.yaml"
    spec.write_text((REPO / "examples" / "levir-clip-zeroshot.yaml").read_text()
                    .replace("root: data/levir-cd", f"root: {REPO / 'examples' / 'data' / 'levir-cd'}"))
    monkeypatch.chdir(REPO)  # a working directory other than the spec's
    monkeypatch.setenv("SATCORE_TEST_W", str(tmp_path / "w"))
    pipe = load_pipeline(spec, overrides={"steps.probs.model": "ckpt/w.pt",
                                          "steps.probs.architecture": "ViT-B-32",
                                          "steps.probs.weights": "$SATCORE_TEST_W/x.pt"})
    params = pipe.steps[0].params
    assert params.model == str(tmp_path / "specs" / "ckpt" / "w.pt")
    assert params.weights == str(tmp_path / "w" / "x.pt")  # variables expanded, absolute kept
    alias = load_pipeline(spec, overrides={"steps.probs.weights": "w.pt"}).steps[0].params
    assert alias.model == "clip-vit-b32" and alias.weights == str(tmp_path / "specs" / "w.pt")


def test_missing_base_weights_say_which_and_how(tmp_path):
    """GeoRSCLIP's checkpoint present, the OpenAI weights it loads over missing: exit 1, the base named."""
    (tmp_path / "models" / "georsclip-vit-b32").mkdir(parents=True)
    (tmp_path / "models" / "georsclip-vit-b32" / "RS5M_ViT-B-32.pt").write_bytes(b"not read")
    p = subprocess.run(
        [SATCORE, "run", str(REPO / "examples" / "levir-clip-zeroshot.yaml"),
         "--set", "steps.probs.model=georsclip-vit-b32", "--set", f"output.dir={tmp_path / 'out'}"],
        capture_output=True, text=True, env=clean_env(tmp_path), timeout=120)
    err = p.stdout + p.stderr
    assert p.returncode == 1 and "Traceback" not in err, err
    assert "weights for model 'clip-vit-b32' were not found" in err
    assert ("'georsclip-vit-b32' loads its checkpoint over the weights of 'clip-vit-b32' "
            "(its `load.base`)") in err
    target = tmp_path / "models" / "clip-vit-b32" / "open_clip_model.safetensors"
    assert f"copy the weights to {target}" in err
    assert "set `path: /path/to/file` on the 'clip-vit-b32' alias" in err and "`weights:`" not in err


def test_both_examples_in_a_row_exit_1_without_weights(tmp_path):
    """The two examples share an output folder: the second must still stop on missing weights (exit 1), not
    on the folder the first one's stopped run left behind (exit 2)."""
    ex = tmp_path / "examples"
    shutil.copytree(REPO / "examples", ex, ignore=shutil.ignore_patterns("runs"))
    for name, alias in (("levir-clip-zeroshot.yaml", "clip-vit-b32"),
                        ("levir-remoteclip-zeroshot.yaml", "remoteclip-vit-b32")):
        p = subprocess.run([SATCORE, "run", str(ex / name)], capture_output=True, text=True,
                           env=clean_env(tmp_path), timeout=120)
        err = p.stdout + p.stderr
        assert p.returncode == 1, err
        assert f"weights for model {alias!r} were not found" in err and "Traceback" not in err
    assert (ex / "runs" / "levir-clip-zeroshot" / "manifest.json").exists()  # the stopped run's record
