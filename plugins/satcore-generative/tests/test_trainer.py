"""``satcore train cyclegan`` on tiny random data: losses, checkpoints, resume, and the folder as a model."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
import yaml
from click.testing import CliRunner

from satcore.cli import cli

TINY_TRAIN = {"crop": 32, "batch": 2, "steps": 4, "checkpoint_every": 2, "holdout": 1, "eval_crops": 2,
              "base": 4, "n_res": 1, "se_reduction": 2, "disc_base": 4}


@pytest.fixture
def config(tmp_path):
    rng = np.random.default_rng(0)
    ms = tmp_path / "ms.npy"
    np.save(ms, rng.uniform(0.02, 0.4, (3, 40, 36, 13)).astype(np.float32))  # channels last, like Slovenia
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump({"ms": str(ms), **TINY_TRAIN}))
    return cfg


def _train(cfg, out, *extra):
    r = CliRunner().invoke(cli, ["train", "cyclegan", str(cfg), "--output", str(out), "--quiet",
                                 "--device", "cpu", *extra])
    assert r.exit_code == 0, r.output + repr(r.exception)
    return out


def test_trains_logs_checkpoints_and_is_a_model(config, tmp_path):
    out = _train(config, tmp_path / "run")
    info = json.loads((out / "train.json").read_text())
    assert info["status"] == "complete" and info["model"]["family"] == "cyclegan"
    lines = [json.loads(x) for x in (out / "losses.jsonl").read_text().splitlines()]
    assert [x["step"] for x in lines] == [1, 2, 3, 4]
    for x in lines:
        assert all(np.isfinite(x[k]) for k in ("loss_g", "loss_d", "gan_g", "gan_f", "cycle_ms_deg"))
        want = x["gan_g"] + x["gan_f"] + 10 * np.radians(x["cycle_rgb_deg"] + x["cycle_ms_deg"])
        assert x["loss_g"] == pytest.approx(want, rel=1e-4)
    assert [("heldout_cycle_ms_deg" in x) for x in lines] == [False, True, False, True]
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["step-00000002.pt", "step-00000004.pt"]
    assert (out / "report.html").exists()

    # the folder is a model for the generator
    from satcore_generative.generators import RgbToMultispectralGenerator

    from satcore.components import RunContext
    from satcore.testing.data import make_target_items

    gen = RgbToMultispectralGenerator(RgbToMultispectralGenerator.params_model.model_validate(
        {"model": str(out), "window": 16, "overlap": 8}), context=RunContext(device="cpu"))
    gen.setup()
    (res,) = gen.process(make_target_items(1))
    assert res["images"][0].array.shape[0] == 13


def test_resume_continues_to_the_same_weights_and_losses(config, tmp_path):
    full = _train(config, tmp_path / "full")
    cut = tmp_path / "cut"
    shutil.copytree(full, cut)
    (cut / "checkpoints" / "step-00000004.pt").unlink()  # as if stopped after step 3
    _train(config, cut, "--resume")
    a = torch.load(full / "checkpoints" / "step-00000004.pt", weights_only=False)
    b = torch.load(cut / "checkpoints" / "step-00000004.pt", weights_only=False)
    for net in ("G", "F", "D_ms", "D_rgb"):
        for k in a[net]:
            assert torch.equal(a[net][k], b[net][k]), (net, k)
    la = [json.loads(x) for x in (full / "losses.jsonl").read_text().splitlines()]
    lb = [json.loads(x) for x in (cut / "losses.jsonl").read_text().splitlines()]
    drop = ("time",)
    assert [{k: v for k, v in x.items() if k not in drop} for x in la] == \
        [{k: v for k, v in x.items() if k not in drop} for x in lb]


def test_a_crop_larger_than_the_scenes_is_a_config_error(config, tmp_path):
    r = CliRunner().invoke(cli, ["train", "cyclegan", str(config), "--output", str(tmp_path / "x"), "--quiet",
                                 "--set", "crop=48"])
    assert r.exit_code != 0
    assert "crop: 48 is larger than" in r.output + str(r.exception)
