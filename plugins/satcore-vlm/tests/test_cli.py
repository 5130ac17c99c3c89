"""The satcore CLI offline: remote code refused at validation (exit 2), missing or unusable models exit 1."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
SATCORE = str(Path(sys.executable).parent / "satcore")


def _env(tmp_path):
    env = dict(os.environ)
    env.update(SATCORE_MODELS=str(tmp_path / "models"), SATCORE_HOME=str(tmp_path / "home"),
               SATCORE_CACHE=str(tmp_path / "cache"), HF_HUB_CACHE=str(tmp_path / "hf"), HF_HUB_OFFLINE="1")
    env.pop("SATCORE_REGISTRY", None)
    return env


def _spec(tmp_path, step: str) -> Path:
    img = tmp_path / "data" / "forest"
    img.mkdir(parents=True)
    from PIL import Image

    Image.new("RGB", (16, 16), (0, 128, 0)).save(img / "f1.png")
    p = tmp_path / "spec.yaml"
    p.write_text(f"version: 1\nsource: {{type: folder-classes, root: data}}\nsteps:\n{step}\n"
                 f"output: {{dir: {tmp_path / 'out'}}}\n")
    return p


def test_remote_code_alias_without_permission_is_exit_2(tmp_path):
    spec = _spec(tmp_path, "  - {id: r, type: vlm-prompt, model: minicpm-llama3-v-2.5}")
    p = subprocess.run([SATCORE, "validate", str(spec)], capture_output=True, text=True, env=_env(tmp_path))
    assert p.returncode == 2, p.stderr
    assert "allow_remote_code: true" in p.stderr and "minicpm-llama3-v-2.5" in p.stderr


def test_missing_weights_exit_1(tmp_path):
    spec = _spec(tmp_path, "  - {id: c, type: vlm-caption, model: qwen2-vl-2b-instruct}")
    p = subprocess.run([SATCORE, "run", str(spec)], capture_output=True, text=True, env=_env(tmp_path))
    assert p.returncode == 1, p.stderr
    assert "qwen2-vl-2b-instruct" in p.stderr and str(tmp_path / "models") in p.stderr
    assert "Qwen/Qwen2-VL-2B-Instruct" in p.stderr and "Traceback" not in p.stderr


def test_minicpm_on_transformers_5_says_what_to_do(tmp_path):
    step = "  - {id: r, type: vlm-prompt, model: minicpm-llama3-v-2.5, allow_remote_code: true}"
    spec = _spec(tmp_path, step)
    p = subprocess.run([SATCORE, "run", str(spec)], capture_output=True, text=True, env=_env(tmp_path))
    assert p.returncode == 1, p.stderr
    assert "transformers<4.42" in p.stderr and "Traceback" not in p.stderr
