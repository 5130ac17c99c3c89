"""``satcore train text-to-image`` on the tiny pipeline: full and LoRA, resume, and the folder as a model."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
import yaml
from click.testing import CliRunner
from satcore_generative.diffusion import TextToImageGenerator

from satcore.cli import cli
from satcore.components import Batch, RunContext
from satcore.data import Item, write_geotiff

GEN = {"steps": 2, "guidance": 3.0, "height": 32, "width": 32}


@pytest.fixture
def pairs(tmp_path):
    """Four RGB GeoTIFFs with same-named .txt captions."""
    rng = np.random.default_rng(3)
    d = tmp_path / "pairs"
    d.mkdir()
    for i, cap in enumerate(["farmland", "a river", "forest", "a town"]):
        write_geotiff(d / f"im{i}.tif", rng.integers(0, 256, (3, 40, 48)).astype(np.uint8))
        (d / f"im{i}.txt").write_text(cap)
    return d


def _config(tmp_path, tiny_sd, pairs, **kw):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump({"base": str(tiny_sd), "data": str(pairs), "resolution": 32, "batch": 2,
                                   "steps": 4, "checkpoint_every": 2, **kw}))
    return cfg


def _train(cfg, out, *extra):
    r = CliRunner().invoke(cli, ["train", "text-to-image", str(cfg), "--output", str(out), "--quiet",
                                 "--device", "cpu", *extra])
    assert r.exit_code == 0, r.output + repr(r.exception)
    return out


def _image(model):
    g = TextToImageGenerator(TextToImageGenerator.params_model(model=str(model), **GEN),
                             RunContext(device="cpu", threads=1, seed=1), step_id="t")
    g.setup()
    return g.process(Batch([Item("p", [], text="farmland")]))[0]["images"][0].array


@pytest.mark.slow  # three short trainings and two pipelines
def test_lora_trains_resumes_and_changes_the_output(tmp_path, tiny_sd, pairs):
    cfg = _config(tmp_path, tiny_sd, pairs, mode="lora", lr=0.05)
    full = _train(cfg, tmp_path / "run")
    info = json.loads((full / "train.json").read_text())
    assert info["status"] == "complete" and info["model"]["family"] == "diffusers"
    assert info["model"]["mode"] == "lora" and info["config"]["batch"] == 2
    losses = [json.loads(x) for x in (full / "losses.jsonl").read_text().splitlines()]
    assert [x["step"] for x in losses] == [1, 2, 3, 4] and all(np.isfinite(x["loss"]) for x in losses)
    assert sorted(p.name for p in (full / "checkpoints").iterdir()) == ["step-00000002", "step-00000004"]
    assert (full / "checkpoints" / "step-00000004" / "lora").is_dir() and (full / "report.html").exists()
    # resumed from step 2: the same adapter weights and losses as the uninterrupted run
    cut = tmp_path / "cut"
    shutil.copytree(full, cut)
    shutil.rmtree(cut / "checkpoints" / "step-00000004")
    _train(cfg, cut, "--resume")
    a = torch.load(full / "checkpoints" / "step-00000004" / "state.pt", weights_only=False)["trainable"]
    b = torch.load(cut / "checkpoints" / "step-00000004" / "state.pt", weights_only=False)["trainable"]
    assert a and set(a) == set(b) and all("lora" in k for k in a)
    for k in a:
        torch.testing.assert_close(a[k], b[k])
    lb = [json.loads(x) for x in (cut / "losses.jsonl").read_text().splitlines()]
    assert [x["loss"] for x in lb] == pytest.approx([x["loss"] for x in losses], rel=1e-5)
    # the folder is a model, and its adapter changes the image
    base, tuned = _image(tiny_sd), _image(full)
    assert base.shape == tuned.shape == (3, 32, 32)
    assert np.abs(base - tuned).mean() > 0.5


def test_full_finetune_is_a_model(tmp_path, tiny_sd, pairs):
    out = _train(_config(tmp_path, tiny_sd, pairs, mode="full", lr=1e-3, steps=2), tmp_path / "run")
    assert (out / "checkpoints" / "step-00000002" / "unet" / "config.json").is_file()
    assert np.abs(_image(tiny_sd) - _image(out)).mean() > 0.5


def test_pairs_without_captions_are_a_config_error(tmp_path, tiny_sd):
    d = tmp_path / "empty"
    d.mkdir()
    r = CliRunner().invoke(cli, ["train", "text-to-image", str(_config(tmp_path, tiny_sd, d)), "--output",
                                 str(tmp_path / "x"), "--quiet"])
    assert r.exit_code != 0
    assert "holds no image–caption pair" in r.output + str(r.exception)
