"""A toy trainer (numpy gradient descent on least squares, no torch) as a test plugin, and a CLI runner."""

from __future__ import annotations

import types
from pathlib import Path

import click
import numpy as np
import pytest

from satcore import hookimpl
from satcore.cli import main
from satcore.training import TrainingRun, train_command


def toy_data(seed: int, n: int = 64) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3))
    y = x @ np.array([1.5, -2.0, 0.5]) + 0.1 * rng.normal(size=n)
    return x, y


@train_command("toy", checkpoint_suffix=".npz")
@click.option("--fail-at", type=int, default=None, help="Raise after this step (a killed run).")
def toy(run: TrainingRun, fail_at: int | None) -> None:
    """Fit least squares by gradient descent (a toy trainer)."""
    cfg = run.config
    x, y = toy_data(run.seed)
    run.describe_data(items=len(y), features=x.shape[1], source="toy_data")
    ckpt = run.latest_checkpoint()
    w = np.load(ckpt.path)["w"] if ckpt else np.zeros(x.shape[1])
    bar = run.progress(cfg["steps"], initial=run.start_step)
    for step in range(run.start_step + 1, cfg["steps"] + 1):
        resid = x @ w - y
        w = w - cfg["lr"] * 2 / len(y) * (x.T @ resid)
        run.log_losses(step, epoch=step // 10, mse=float(np.mean(resid**2)), grad_norm=np.linalg.norm(resid))
        if step % cfg["checkpoint_every"] == 0 or step == cfg["steps"]:
            state = w.copy()

            def write(p: Path, state: np.ndarray = state) -> None:
                with open(p, "wb") as f:
                    np.savez(f, w=state)

            run.save_checkpoint(step, write)
        bar.update(1)
        if step == fail_at:
            raise RuntimeError(f"killed after step {step}")
    bar.close()
    run.set_model(family="linear", architecture="least-squares", features=int(x.shape[1]))


class ToyPlugin:
    @hookimpl
    def satcore_register_train_commands(self, train: click.Group) -> None:
        train.add_command(toy)


@pytest.fixture
def toy_plugin(satcore_pm):
    satcore_pm.register_plugin(ToyPlugin(), "toy", "satcore-toy")
    yield satcore_pm
    satcore_pm.unregister_plugin("toy")


def run_cli(*args: str) -> int:
    """``satcore ARGS`` through the real entry point; returns the exit code."""
    with pytest.raises(SystemExit) as exc:
        main(list(args))
    return int(exc.value.code or 0)


@pytest.fixture
def toy_config(tmp_path: Path) -> Path:
    p = tmp_path / "toy.yaml"
    p.write_text("# a toy training config\nlr: 0.05\nsteps: 120\ncheckpoint_every: 25\nseed: 3\n")
    return p


@pytest.fixture
def t() -> types.SimpleNamespace:
    """Helpers (conftest modules are not importable under --import-mode=importlib)."""
    return types.SimpleNamespace(run_cli=run_cli, toy_data=toy_data)
