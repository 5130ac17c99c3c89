"""The plugin's examples: every spec validates; offline, a model spec stops in set-up naming the weights;
caption_loo.py's leave-one-out numbers agree with coco-caption's BLEU called directly."""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
SHARED = Path(__file__).resolve().parents[4] / "shared" / "data"
SATCORE = str(Path(sys.executable).parent / "satcore")
SPECS = sorted(EXAMPLES.glob("*.yaml"))


def _env(tmp_path):
    env = dict(os.environ, SATCORE_MODELS=str(tmp_path / "models"), SATCORE_HOME=str(tmp_path / "home"),
               SATCORE_CACHE=str(tmp_path / "cache"), HF_HUB_CACHE=str(tmp_path / "hf"), HF_HUB_OFFLINE="1")
    env.pop("SATCORE_REGISTRY", None)
    return env


def test_there_are_examples():
    assert {p.name for p in SPECS} >= {"levir-cd-caption-change.yaml", "rsscn7-recognition.yaml",
                                       "levir-cc-captions.yaml", "levir-cc-captions-blip.yaml"}


@pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/data is not beside the repository")
@pytest.mark.parametrize("spec", SPECS, ids=lambda p: p.stem)
def test_example_validates(spec, tmp_path):
    p = subprocess.run([SATCORE, "validate", str(spec)], capture_output=True, text=True, env=_env(tmp_path))
    assert p.returncode == 0, p.stdout + p.stderr


@pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/data is not beside the repository")
@pytest.mark.parametrize("name, alias, repo", [
    ("levir-cc-captions", "qwen2-vl-2b-instruct", "Qwen/Qwen2-VL-2B-Instruct"),
    ("levir-cc-captions-blip", "blip-large", "Salesforce/blip-image-captioning-large")])
def test_example_without_weights_stops_in_setup(tmp_path, name, alias, repo):
    spec = EXAMPLES / f"{name}.yaml"
    p = subprocess.run([SATCORE, "run", str(spec), "--output", str(tmp_path / "run")], capture_output=True,
                       text=True, env=_env(tmp_path))
    assert p.returncode == 1, p.stdout + p.stderr
    assert alias in p.stderr and str(tmp_path / "models") in p.stderr and repo in p.stderr
    assert "Traceback" not in p.stderr


def test_levir_cc_examples_caption_each_pair_once():
    """The change-caption specs: joint Qwen2-VL, separate BLIP with a template, over the pairs' manifest."""
    import yaml
    from satcore_vlm.steps import VlmCaptionParams

    joint, blip = (yaml.safe_load((EXAMPLES / f"{n}.yaml").read_text())["steps"][0]
                   for n in ("levir-cc-captions", "levir-cc-captions-blip"))
    pj = VlmCaptionParams.model_validate({k: v for k, v in joint.items() if k not in ("id", "type")})
    pb = VlmCaptionParams.model_validate({k: v for k, v in blip.items() if k not in ("id", "type")})
    assert pj.model == "qwen2-vl-2b-instruct" and pj.pair is not None and pj.pair.mode == "joint"
    assert pb.model == "blip-large" and pb.pair is not None
    assert pb.pair.template == "before: {before} after: {after}"
    header = (EXAMPLES / "levir-cc.csv").read_text().splitlines()[0].split(",")
    assert header == ["item_id", "a", "b", "captions"]  # two images per item: a pair


@pytest.mark.slow  # 5 rotations with METEOR: starts the JVM (~5-20 s)
@pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/data is not beside the repository")
def test_caption_loo_equals_coco_bleu():
    from pycocoevalcap.bleu.bleu import Bleu

    from satcore.evaluate.blocks import tokenize

    sys.path.insert(0, str(EXAMPLES))
    try:
        import caption_loo
    finally:
        sys.path.remove(str(EXAMPLES))
    caps = caption_loo.levir_cc(SHARED / "levir-cc-captions" / "from_Change-Agent" / "Multi_change" / "data"
                                / "LEVIR_MCI" / "tokens")
    assert len(caps) == 3 and all(len(c) == 5 for c in caps.values())
    assert not any("<START>" in c for cs in caps.values() for c in cs)
    got = caption_loo.leave_one_out(caps)
    want = []
    for k in range(5):
        gts = {i: [" ".join(tokenize(t)) for t in c[:k] + c[k + 1:]] for i, c in caps.items()}
        res = {i: [" ".join(tokenize(c[k]))] for i, c in caps.items()}
        with contextlib.redirect_stdout(io.StringIO()):
            want.append(Bleu(4).compute_score(gts, res)[0])
    # a rotation with no 4-gram match: 0 here, (1e-9)^(1/4)·… ≈ 1e-4 from coco-caption's smoothing
    for n in range(4):
        assert got[f"bleu_{n + 1}"] == pytest.approx(sum(w[n] for w in want) / 5, rel=1e-6, abs=2e-4)
    assert got["bleu_1"] > got["bleu_4"] > 0
