"""``satcore train``: trainers of several plugins side by side, conflicts named, lazily loaded."""

from __future__ import annotations

import json
import re

import click
from click.testing import CliRunner

from satcore import hookimpl
from satcore.cli import cli

TRAINER = '''
import click
import satcore
from satcore.training import train_command


@train_command("{name}")
def trainer(run):
    """{doc}"""
    run.log_losses(1, loss=0.5)
    run.save_checkpoint(1, lambda p: p.write_bytes(b"weights"))
    run.set_model(family="{name}-family")


@satcore.hookimpl
def satcore_register_train_commands(train):
    train.add_command(trainer)
'''


def test_two_plugins_each_add_a_trainer_and_train_help_lists_both(fake_site, h, tmp_path):
    h.make_fake_dist(fake_site, "satcore-fakegan", "fakegan", "fake_satcore_fakegan",
                     TRAINER.format(name="fakegan", doc="Train a fake GAN."), "1.2.3")
    h.make_fake_dist(fake_site, "satcore-segment", "segment", "fake_satcore_segment",
                     TRAINER.format(name="fakeseg", doc="Train a segmentation model."))
    r = CliRunner().invoke(cli, ["train", "--help"])
    assert r.exit_code == 0, r.output
    # the column width follows the longest installed trainer name (e.g. satcore-generative's text-to-image)
    assert re.search(r"\n  fakegan +Train a fake GAN\. \[satcore-fakegan\]", r.output), r.output
    assert re.search(r"\n  fakeseg +Train a segmentation model\. \[satcore-segment\]", r.output), r.output
    # the core commands are still there, and a trainer runs with the common options
    cfg = tmp_path / "c.yaml"
    cfg.write_text("epochs: 1\n")
    r = CliRunner().invoke(cli, ["train", "fakegan", str(cfg), "--output", str(tmp_path / "out")])
    assert r.exit_code == 0, r.output
    info = json.loads((tmp_path / "out" / "train.json").read_text())
    assert info["versions"]["satcore-fakegan"] == "1.2.3" and info["status"] == "complete"
    r = CliRunner().invoke(cli, ["train", "fakeseg", "--help"])
    for opt in ("CONFIG", "--output", "--resume", "--overwrite", "--set KEY=VALUE", "--seed", "--quiet"):
        assert opt in r.output


def test_the_same_trainer_name_from_two_plugins_is_a_conflict_naming_both(fake_site, h, tmp_path, capsys):
    from satcore.cli import main

    for dist in ("satcore-gan-a", "satcore-gan-b"):
        mod = "fake_satcore_" + dist.split("-")[-1]
        h.make_fake_dist(fake_site, dist, dist[8:], mod, TRAINER.format(name="gan", doc=f"GAN of {dist}."))
    r = CliRunner().invoke(cli, ["train", "--help"])
    assert r.exit_code == 0
    assert "Conflicts:" in r.output and "added by satcore-gan-a and satcore-gan-b" in r.output
    cfg = tmp_path / "c.yaml"
    cfg.write_text("{}\n")
    try:
        main(["train", "gan", str(cfg), "--output", str(tmp_path / "out")])
    except SystemExit as exc:
        assert exc.code == 2
    err = capsys.readouterr().err
    assert "two plugins add `satcore train gan`" in err
    assert "'gan-a' (satcore-gan-a) and 'gan-b' (satcore-gan-b)" in err and "SATCORE_DISABLE_PLUGINS" in err
    assert not (tmp_path / "out").exists()


class LegacyPlugin:
    """A plugin that adds its own `train` group through satcore_register_commands (before the core group)."""

    @hookimpl
    def satcore_register_commands(self, cli: click.Group) -> None:
        @cli.group("train")
        def train() -> None:
            """Its own train group."""

        @train.command("old-style")
        def old_style() -> None:
            """An old-style trainer."""
            click.echo("old-style trained")

        @cli.command("legacy-hello")
        def hello() -> None:
            """Another plugin command."""
            click.echo("hello")


class BrokenPlugin:
    @hookimpl
    def satcore_register_train_commands(self, train: click.Group) -> None:
        raise RuntimeError("no trainer today")


def test_trainers_added_the_old_way_are_merged_and_a_broken_hook_is_reported(satcore_pm):
    satcore_pm.register_plugin(LegacyPlugin(), "legacy", "satcore-legacy")
    satcore_pm.register_plugin(BrokenPlugin(), "broken", "satcore-broken")
    r = CliRunner().invoke(cli, ["train", "--help"])
    assert "old-style  An old-style trainer. [satcore-legacy]" in r.output
    assert "FAILED plugin 'broken' (satcore-broken) failed to add train commands: RuntimeError: no trainer" \
           in " ".join(r.output.split())
    assert CliRunner().invoke(cli, ["train", "old-style"]).output == "old-style trained\n"
    assert CliRunner().invoke(cli, ["legacy-hello"]).output == "hello\n"  # satcore_register_commands works


def test_train_help_without_trainers_says_how_to_get_one(satcore_pm):
    r = CliRunner().invoke(cli, ["train", "--help"])
    assert r.exit_code == 0 and "No trainer is installed" in r.output and "docs/training.md" in r.output
    assert "train" in CliRunner().invoke(cli, ["--help"]).output


def test_satcore_help_does_not_load_the_train_hook(satcore_pm, monkeypatch):
    calls = []
    monkeypatch.setattr("satcore.training.cli.TrainGroup.collect", lambda self: calls.append(1) or ({}, []))
    assert CliRunner().invoke(cli, ["--help"]).exit_code == 0
    assert calls == []
