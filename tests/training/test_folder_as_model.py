"""``model: <folder>``: the registry resolves a training folder to its checkpoint, without training code."""

from __future__ import annotations

import subprocess
import sys

import pytest

from satcore.errors import SpecError
from satcore.registry import Registry
from satcore.training import TrainingRun, add_model_alias


@pytest.fixture
def user_home(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("SATCORE_HOME", str(tmp_path / "home" / ".config" / "satcore"))
    monkeypatch.delenv("SATCORE_REGISTRY", raising=False)
    return tmp_path / "home" / ".config" / "satcore"


def toy_training(path, *, complete=True):
    with TrainingRun.open(path, {"epochs": 1, "lr": 0.1}, name="toy", quiet=True) as run:
        run.log_losses(1, loss=0.5)
        run.save_checkpoint(1, lambda p: p.write_bytes(b"first"))
        run.save_checkpoint(3, lambda p: p.write_bytes(b"newest"))
        run.set_model(family="toy-family", architecture="tiny", bands=3)
        if not complete:
            run.finish("stopped", error="interrupted")
    return path


def test_a_training_folder_resolves_to_its_newest_checkpoint_and_family(tmp_path, user_home):
    folder = toy_training(tmp_path / "runs" / "toy")
    resolved = Registry.load(plugin_aliases=False).resolve(str(folder))
    # independent reference: the newest file in checkpoints/, read from disk here
    newest = max((folder / "checkpoints").iterdir(), key=lambda p: int(p.name.split("-")[1].split(".")[0]))
    assert resolved.path == newest.resolve() and resolved.path.read_bytes() == b"newest"
    assert resolved.source == "training-folder"
    assert resolved.entry["family"] == "toy-family" and resolved.entry["architecture"] == "tiny"
    assert resolved.entry["bands"] == 3 and resolved.entry["config"] == {"epochs": 1, "lr": 0.1}
    assert resolved.manifest()["licence"].startswith("trained locally")


def test_models_add_alias_resolves_the_same_file(tmp_path, user_home):
    folder = toy_training(tmp_path / "runs" / "toy")
    add_model_alias("my-toy", folder)
    reg = Registry.load(plugin_aliases=False)
    by_alias, by_folder = reg.resolve("my-toy"), reg.resolve(str(folder))
    assert by_alias.path == by_folder.path
    assert by_alias.entry["family"] == by_folder.entry["family"] == "toy-family"


def test_an_unfinished_training_folder_is_a_clear_spec_error(tmp_path, user_home):
    folder = toy_training(tmp_path / "runs" / "toy", complete=False)
    with pytest.raises(SpecError, match=r"not complete \(status 'stopped'\).*--resume") as ei:
        Registry.load(plugin_aliases=False).resolve(str(folder))
    assert str(folder) in str(ei.value) and ei.value.exit_code == 2


def test_a_plain_checkpoint_path_still_resolves_as_before(tmp_path, user_home):
    ckpt = tmp_path / "w.pt"
    ckpt.write_bytes(b"x")
    resolved = Registry.load(plugin_aliases=False).resolve(str(ckpt))
    assert resolved.path == ckpt and resolved.source == "explicit"


def test_the_registry_imports_no_training_code():
    code = "import sys, satcore.registry; print(any(m.startswith('satcore.training') for m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
