"""A training folder through the toy trainer: losses, checkpoints, resume after a kill, progress, report."""

from __future__ import annotations

import base64
import io
import json

import numpy as np
import pytest

from satcore.errors import ResumeError, UsageError
from satcore.training import TrainingRun, load_config
from satcore.training.run import read_losses


def _losses(folder):
    """losses.jsonl without the wall-clock times."""
    return [{k: v for k, v in r.items() if k != "time"} for r in read_losses(folder)]


def _final_w(folder):
    info = json.loads((folder / "train.json").read_text())
    return np.load(folder / info["last_checkpoint"])["w"]


def test_toy_training_writes_the_folder_and_fits_least_squares(toy_plugin, toy_config, tmp_path, t, capsys):
    out = tmp_path / "run"
    assert t.run_cli("train", "toy", str(toy_config), "--output", str(out)) == 0
    info = json.loads((out / "train.json").read_text())
    assert info["status"] == "complete" and info["name"] == "toy" and info["seed"] == 3
    assert info["config"] == {"lr": 0.05, "steps": 120, "checkpoint_every": 25, "seed": 3}
    assert info["last_step"] == 120 and info["last_checkpoint"] == "checkpoints/step-00000120.npz"
    assert info["data"] == {"items": 64, "features": 3, "source": "toy_data"}
    assert info["model"]["family"] == "linear" and info["versions"]["satcore"]
    assert info["started"] and info["ended"] and info["error"] is None
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == [
        f"step-{s:08d}.npz" for s in (25, 50, 75, 100, 120)]
    losses = _losses(out)
    assert [r["step"] for r in losses] == list(range(1, 121)) and losses[0]["epoch"] == 0
    # independent reference: gradient descent converges to numpy's least-squares solution
    x, y = t.toy_data(3)
    w_ref = np.linalg.lstsq(x, y, rcond=None)[0]
    np.testing.assert_allclose(_final_w(out), w_ref, atol=1e-3)
    assert losses[-1]["mse"] == pytest.approx(float(np.mean((x @ w_ref - y) ** 2)), rel=1e-3)
    assert "training 'toy' complete after step 120" in capsys.readouterr().out


def test_killed_run_resumes_from_last_checkpoint_and_equals_an_uninterrupted_run(toy_plugin, toy_config,
                                                                                 tmp_path, t, capsys):
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    assert t.run_cli("train", "toy", str(toy_config), "-o", str(whole), "--quiet") == 0
    assert t.run_cli("train", "toy", str(toy_config), "-o", str(killed), "--fail-at", "60") == 1
    err = capsys.readouterr().err
    assert "killed after step 60" in err and "keeps the checkpoint of step 50" in err and "--resume" in err
    info = json.loads((killed / "train.json").read_text())
    assert info["status"] == "stopped" and "RuntimeError: killed after step 60" in info["error"]
    assert [r["step"] for r in read_losses(killed)][-1] == 60
    with open(killed / "losses.jsonl", "a") as f:  # the kill also cut a line short
        f.write('{"step": 61, "ms')
    assert (killed / "report.html").exists()  # a stopped run has its report too
    # without --resume the folder is refused
    assert t.run_cli("train", "toy", str(toy_config), "-o", str(killed)) == 2
    assert "not empty; add --resume" in capsys.readouterr().err
    assert t.run_cli("train", "toy", str(toy_config), "-o", str(killed), "--resume", "--quiet") == 0
    assert "resuming toy in" in capsys.readouterr().err
    info = json.loads((killed / "train.json").read_text())
    assert info["status"] == "complete" and info["resumes"][0]["from_step"] == 50
    np.testing.assert_array_equal(_final_w(killed), _final_w(whole))
    assert _losses(killed) == _losses(whole)  # steps 51..60 were trained again, once in the file
    lines = (killed / "losses.jsonl").read_text().splitlines()
    assert len(lines) == 120 and all(json.loads(ln) for ln in lines)


def test_changed_config_resume_is_refused_with_exit_2(toy_plugin, toy_config, tmp_path, t, capsys):
    out = tmp_path / "run"
    assert t.run_cli("train", "toy", str(toy_config), "-o", str(out), "--fail-at", "30", "--quiet") == 1
    capsys.readouterr()
    assert t.run_cli("train", "toy", str(toy_config), "-o", str(out), "--resume", "--set", "lr=0.1") == 2
    err = capsys.readouterr().err
    assert "the config changed since the training" in err and "changed: lr" in err
    assert t.run_cli("train", "toy", str(toy_config), "-o", str(out), "--resume", "--seed", "4") == 2
    assert "changed: seed" in capsys.readouterr().err
    assert json.loads((out / "train.json").read_text())["status"] == "stopped"  # untouched
    # --overwrite starts again; --set reaches the config
    assert t.run_cli("train", "toy", str(toy_config), "-o", str(out), "--overwrite", "--set", "steps=10",
                     "--quiet") == 0
    assert json.loads((out / "train.json").read_text())["config"]["steps"] == 10
    assert t.run_cli("train", "toy", str(toy_config), "-o", str(out), "--overwrite", "--resume") == 2


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_bar_with_eta_on_a_terminal_only(tmp_path):
    run = TrainingRun.open(tmp_path / "r", {"steps": 4}, name="bar")
    tty, pipe = _Tty(), io.StringIO()
    for stream in (tty, pipe):
        bar = run.progress(4, initial=1, file=stream)
        for _ in range(3):
            bar.update(1)
        bar.close()
    assert "4/4" in tty.getvalue() and "<" in tty.getvalue() and "step/s" in tty.getvalue()  # rate and ETA
    assert pipe.getvalue() == ""
    quiet = TrainingRun.open(tmp_path / "q", {}, name="bar", quiet=True)
    tty2 = _Tty()
    bar = quiet.progress(2, file=tty2)
    bar.update(2)
    bar.close()
    assert tty2.getvalue() == ""


def test_report_holds_one_loss_curve_image_per_loss_key(toy_plugin, toy_config, tmp_path, t):
    out = tmp_path / "run"
    assert t.run_cli("train", "toy", str(toy_config), "-o", str(out), "--quiet") == 0
    page = (out / "report.html").read_text()
    imgs = page.split('src="data:image/png;base64,')[1:]
    assert len(imgs) == 2 and 'alt="mse against step"' in page and 'alt="grad_norm against step"' in page
    assert base64.b64decode(imgs[0].split('"')[0])[:8] == b"\x89PNG\r\n\x1a\n"
    assert "complete" in page and "least-squares" in page and "<script" not in page and "http" not in page


def test_losses_are_appended_whole_and_a_cut_line_is_dropped_on_resume(tmp_path):
    run = TrainingRun.open(tmp_path / "r", {"a": 1}, name="n", checkpoint_suffix=".bin")
    run.log_losses(1, loss=np.float32(0.5))
    run.save_checkpoint(1, lambda p: p.write_bytes(b"one"))
    run.log_losses(2, loss=float("nan"), other=2)
    with open(run.dir / "losses.jsonl", "a") as f:
        f.write('{"step": 3, "lo')
    assert [r["step"] for r in read_losses(run.dir)] == [1, 2]
    assert read_losses(run.dir)[1]["loss"] is None  # NaN as null, never a NaN token
    with pytest.raises(ValueError, match="'time' is reserved"):
        run.log_losses(4, time=1.0)
    again = TrainingRun.open(run.dir, {"a": 1}, name="n", resume=True, checkpoint_suffix=".bin")
    assert again.start_step == 1 and again.latest_checkpoint().path.read_bytes() == b"one"
    assert (run.dir / "losses.jsonl").read_text().count("\n") == 1  # step 2 is trained again
    with pytest.raises(ResumeError, match="holds a `satcore train n` run, not `m`"):
        TrainingRun.open(run.dir, {"a": 1}, name="m", resume=True)


def _half_written(p):
    p.write_bytes(b"half")
    raise RuntimeError("disk full")


def test_checkpoints_are_atomic_and_pruned(tmp_path):
    run = TrainingRun.open(tmp_path / "r", {}, name="n", keep_checkpoints=2)
    with pytest.raises(RuntimeError, match="disk full"):
        run.save_checkpoint(5, _half_written)
    assert run.latest_checkpoint() is None and list((run.dir / "checkpoints").iterdir()) == []
    for s in (1, 2, 3):
        run.save_checkpoint(s, lambda p, s=s: p.write_bytes(str(s).encode()))
    assert [c.step for c in run.checkpoints()] == [2, 3] and run.checkpoint_path(3).read_bytes() == b"3"
    with pytest.raises(Exception, match="wrote nothing"):
        run.save_checkpoint(4, lambda p: None)


def test_context_manager_marks_stopped_or_complete(tmp_path):
    with pytest.raises(KeyError), TrainingRun.open(tmp_path / "a", {}, name="n") as run:
        raise KeyError("x")
    assert run.status == "stopped"
    assert json.loads((run.dir / "train.json").read_text())["error"] == "KeyError: 'x'"
    with TrainingRun.open(tmp_path / "b", {}, name="n") as run:
        run.log_losses(1, loss=1.0)
    assert run.status == "complete" and (run.dir / "report.html").exists()


def test_overwrite_refuses_foreign_files_and_resume_needs_a_training_folder(tmp_path):
    out = tmp_path / "r"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(UsageError, match="not empty"):
        TrainingRun.open(out, {}, name="n")
    with pytest.raises(UsageError, match=r"files satcore did not write \(notes.txt\)"):
        TrainingRun.open(out, {}, name="n", overwrite=True)
    with pytest.raises(ResumeError, match="no train.json"):
        TrainingRun.open(out, {}, name="n", resume=True)
    assert (out / "notes.txt").read_text() == "mine"


def test_load_config_overrides_and_yaml_errors(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("optimizer:\n  lr: 0.1\nsteps: 5\n")
    assert load_config(p, ["optimizer.lr=0.01", "model.depth=3"]) == {
        "optimizer": {"lr": 0.01}, "steps": 5, "model": {"depth": 3}}
    p.write_text("a: 1\nb: [1, 2\nc: 3\n")
    with pytest.raises(Exception, match=r"c.yaml:\d+: not valid YAML") as ei:
        load_config(p)
    assert ei.value.exit_code == 2
    p.write_text("- a\n- b\n")
    with pytest.raises(Exception, match="a mapping of settings"):
        load_config(p)
    with pytest.raises(UsageError, match="no such config file"):
        load_config(tmp_path / "missing.yaml")
