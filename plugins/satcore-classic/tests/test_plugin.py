"""The plugin as satcore sees it: entry point, registration, cheap import."""

from __future__ import annotations

import re
import subprocess
import sys

from satcore.plugins import get_plugin_manager


def test_entry_point_registers_the_four_detectors():
    pm = get_plugin_manager(fresh=True)
    detectors = pm.components("detector")
    for name in ("image-diff", "cva", "pca-kmeans", "index-diff"):
        cls = detectors[name]
        assert cls.name == name and re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", name)
        assert cls.__name__.endswith("Detector")
        assert cls.distribution == "satcore-classic"


def test_importing_the_plugin_loads_no_heavy_library():
    code = (
        "import sys, satcore_classic\n"
        "heavy = [m for m in ('torch', 'sklearn', 'skimage', 'scipy') if m in sys.modules]\n"
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_readme_documents_every_parameter_with_its_default():
    from pathlib import Path

    from satcore_classic.detectors import CVADetector, ImageDiffDetector, IndexDiffDetector, PCAKMeansDetector

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    for cls in (ImageDiffDetector, CVADetector, PCAKMeansDetector, IndexDiffDetector):
        section = readme.split(f"#### `{cls.name}`", 1)[1].split("####", 1)[0]
        for name, field in cls.params_model.model_fields.items():
            default = "null" if field.default is None else field.default
            assert f"| `{name}` | `{default}` |" in section, f"{cls.name}.{name} (default {default})"
