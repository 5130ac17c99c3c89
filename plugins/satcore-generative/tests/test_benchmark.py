"""The Slovenia benchmark: its metrics are the core spectral block's, and a tiny run produces every check."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from satcore.evaluate.blocks import SpectralBlock, spectral_record

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "cyclegan_slovenia.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("cyclegan_slovenia_bench", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_metrics_equal_the_core_spectral_block(bench):
    rng = np.random.default_rng(2)
    t = rng.uniform(0.01, 0.5, (6, 9, 11))
    p = t + rng.normal(0, 0.05, t.shape)
    p[2, 0, 0] = -0.01  # negative: left out of SID in both
    valid = rng.random((9, 11)) > 0.3
    ours = bench.spectral_metrics(t, p, valid)
    block = SpectralBlock()
    block.add("a", spectral_record(t, p, valid=valid))
    core = block.result()
    for k in ("spectral_angle_deg", "sid", "ergas", "mae", "mse"):
        assert ours[k] == pytest.approx(core[k], rel=1e-9), k
    assert ours["pixels"] == core["pixels"]


def test_a_tiny_run_reports_every_check(bench, tmp_path):
    if not bench.SCENES.is_file() or not bench.CLOUDMASK.is_file():
        pytest.skip("../shared/data (Slovenia scenes, cloud mask) not beside the clone")
    out = bench.main(["--steps", "2", "--minutes", "5", "--base", "4", "--n-res", "1", "--batch", "2",
                      "--crop", "32", "--threads", "1", "--json", str(tmp_path / "r.json")])
    assert out["steps"] == 2 and json.loads((tmp_path / "r.json").read_text())["steps"] == 2
    for stage in ("initial", "trained"):
        for check in ("heldout_cycle", "paired_heldout", "paired_cloudmask"):
            rec = out[stage][check]
            assert all(np.isfinite(rec[k]) for k in ("spectral_angle_deg", "sid", "ergas", "mae")), check
    cm = out["trained"]["paired_cloudmask"]
    assert 0 < cm["pixels"] < 512 * 512 and set(cm["band_mae"]) == {"B02", "B03", "B04", "B08", "B11", "B12"}
    assert out["baseline_linear"]["paired_heldout"]["spectral_angle_deg"] < 20
