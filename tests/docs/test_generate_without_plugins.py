"""docs/cli.md is generated with the core alone: installed plugins' trainers and commands never appear."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from click.testing import CliRunner

DOCS = Path(__file__).resolve().parents[2] / "docs"

TRAINER = '''
import satcore
from satcore.training import train_command


@train_command("cyclegan")
def trainer(run):
    """Train a CycleGAN."""


@satcore.hookimpl
def satcore_register_train_commands(train):
    train.add_command(trainer)
'''


def _generate():
    spec = importlib.util.spec_from_file_location("satcore_docs_generate_np", DOCS / "generate.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_cli_page_does_not_list_installed_trainers(fake_site, h):
    from satcore.cli import cli

    h.make_fake_dist(fake_site, "satcore-cyclegan", "cyclegan", "fake_satcore_cyclegan_doc", TRAINER)
    # the plugin is installed: the live help lists its trainer ...
    assert "cyclegan" in CliRunner().invoke(cli, ["train", "--help"]).output
    # ... the generated page does not, and equals the committed one
    page = _generate().render_cli()
    assert "cyclegan" not in page and "No trainer is installed" in page
    assert page == (DOCS / "cli.md").read_text(encoding="utf-8")
    # and the process's plugins are back afterwards
    assert "cyclegan" in CliRunner().invoke(cli, ["train", "--help"]).output
