"""Importing satcore and listing plugins never imports torch (nor other heavy libraries)."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib import metadata
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "torchvision", "open_clip", "transformers", "diffusers", "xgboost")


def _modules_after(code):
    probe = code + "\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))\n"
    r = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return set(json.loads(r.stdout.strip().splitlines()[-1]))


def _heavy(mods):
    return sorted(m for m in mods if m.split(".")[0] in HEAVY)


def test_torch_is_importable_here():
    """The check below means something only where torch is installed (it is in the dev environment)."""
    assert metadata.version("torch")
    assert "torch" in _modules_after("import torch")


def test_import_satcore_imports_no_torch():
    mods = _modules_after("import satcore")
    assert _heavy(mods) == []
    assert "satcore" in mods and "rasterio" not in mods and "pandas" not in mods


def test_satcore_plugins_imports_no_torch_with_every_installed_plugin():
    eps = {ep.name for ep in metadata.entry_points(group="satcore")}
    assert "classic" in eps  # at least the first-party classic plugin is installed
    code = (
        "import sys\nfrom satcore.cli import main\nsys.argv=['satcore','plugins','--json']\n"
        "try:\n    main()\nexcept SystemExit as e:\n    assert e.code == 0, e.code\n"
    )
    mods = _modules_after(code)
    assert _heavy(mods) == []
    # every installed plugin was actually imported (so the check covered it), or is reported as failed
    r = subprocess.run(
        [sys.executable, "-m", "satcore.cli", "plugins", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    failed = {f["name"] for f in json.loads(r.stdout)["failed"]}
    for ep in metadata.entry_points(group="satcore"):
        assert ep.value.split(":")[0] in mods or ep.name in failed, ep


def test_satcore_help_loads_no_plugin():
    code = (
        "import sys\nfrom satcore.cli import main\nsys.argv=['satcore','--help']\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
    )
    mods = _modules_after(code)
    assert _heavy(mods) == []
    eps = [ep.value.split(":")[0] for ep in metadata.entry_points(group="satcore")]
    assert not [m for m in eps if m in mods]


def test_validate_examples_loads_no_model():
    """`satcore validate` on each example whose components are installed: no torch, so no model loads."""
    import yaml

    from satcore.plugins import get_plugin_manager

    pm = get_plugin_manager(fresh=True)
    installed = {n for kind in pm.catalogue().values() for n in kind}
    examples = sorted((REPO / "examples").glob("*.yaml"))
    runnable = [
        p for p in examples if {s["type"] for s in yaml.safe_load(p.read_text())["steps"]} <= installed
    ]
    assert REPO / "examples" / "quickstart.yaml" in runnable
    for p in runnable:
        code = (
            "import sys\nfrom satcore.cli import main\n"
            f"sys.argv=['satcore','validate',{str(p)!r}]\n"
            "try:\n    main()\nexcept SystemExit as e:\n    assert e.code == 0, e.code\n"
        )
        mods = _modules_after(code)
        assert _heavy(mods) == [], p
