"""A finished training folder as a model: ``training_folder_model`` and ``satcore models add``."""

from __future__ import annotations

import pytest
import yaml

from satcore.errors import SpecError
from satcore.registry import Registry
from satcore.training import TrainingRun, add_model_alias, is_training_folder, training_folder_model


@pytest.fixture
def user_home(tmp_path, monkeypatch):
    """HOME and SATCORE_HOME in tmp_path, no SATCORE_REGISTRY."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("SATCORE_HOME", str(tmp_path / "home" / ".config" / "satcore"))
    monkeypatch.delenv("SATCORE_REGISTRY", raising=False)
    return tmp_path / "home" / ".config" / "satcore"


def make_folder(path, status="complete", family="cyclegan", checkpoint=True):
    run = TrainingRun.open(path, {"epochs": 2}, name="cyclegan")
    run.log_losses(1, loss=1.0)
    if checkpoint:
        run.save_checkpoint(1, lambda p: p.write_bytes(b"w1"))
        run.save_checkpoint(2, lambda p: p.write_bytes(b"w2"))
    if family:
        run.set_model(family=family, architecture="resnet9", bands=13)
    if status == "complete":
        run.finish("complete")
    elif status == "stopped":
        run.finish("stopped", error="x")
    return path


def test_training_folder_model_describes_the_newest_checkpoint(tmp_path):
    folder = make_folder(tmp_path / "run")
    assert is_training_folder(folder) and not is_training_folder(tmp_path)
    m = training_folder_model(folder)
    assert m["family"] == "cyclegan" and m["architecture"] == "resnet9" and m["bands"] == 13
    assert m["path"] == str((folder / "checkpoints" / "step-00000002.pt").resolve())
    assert m["config"] == {"epochs": 2} and m["trainer"] == "cyclegan" and m["step"] == 2
    assert m["training_folder"] == str(folder.resolve()) and m["licence"].startswith("trained locally")


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"status": "stopped"}, r"not complete \(status 'stopped'\); finish it with `satcore train cyclegan"),
    ({"status": "running"}, "not complete"),
    ({"family": None}, r"`model.family` is missing.*run.set_model"),
    ({"checkpoint": False}, r"holds no checkpoint.*run.save_checkpoint"),
])
def test_unfinished_or_undescribed_folders_are_refused(tmp_path, kwargs, message):
    folder = make_folder(tmp_path / "run", **kwargs)
    with pytest.raises(SpecError, match=message) as ei:
        training_folder_model(folder)
    assert ei.value.exit_code == 2
    with pytest.raises(SpecError, match="is not a training folder"):
        training_folder_model(tmp_path)


REGISTRY = """\
# my models (this comment must survive)
models:
  # the segmentation model from last week
  my-seg:
    family: checkpoint
    path: /data/seg.pt   # absolute path

# trailing notes
"""


def test_models_add_writes_the_user_registry_keeping_comments(tmp_path, user_home, satcore_pm, h, capsys):
    from satcore.cli import main

    folder = make_folder(tmp_path / "run")
    user_home.mkdir(parents=True)
    reg_file = user_home / "registry.yaml"
    reg_file.write_text(REGISTRY)
    with pytest.raises(SystemExit) as exc:
        main(["models", "add", "my-gan", str(folder)])
    assert exc.value.code == 0 and "added model alias 'my-gan'" in capsys.readouterr().out
    text = reg_file.read_text()
    assert "# my models (this comment must survive)" in text and "# the segmentation model" in text
    assert "# absolute path" in text and "# trailing notes" in text
    assert (user_home / "registry.yaml.bak").read_text() == REGISTRY
    data = yaml.safe_load(text)
    assert list(data["models"]) == ["my-seg", "my-gan"]
    assert data["models"]["my-gan"]["training_folder"] == str(folder.resolve())
    # the registry resolves the alias to the newest checkpoint through its explicit-path rule
    found = Registry.load(plugin_aliases=False).resolve("my-gan")
    assert found.path == folder.resolve() / "checkpoints" / "step-00000002.pt" and found.source == "explicit"
    # a second add of the alias is refused (exit 2); --force replaces it, once
    with pytest.raises(SystemExit) as exc:
        main(["models", "add", "my-gan", str(folder)])
    assert exc.value.code == 2 and "alias 'my-gan' already exists" in capsys.readouterr().err
    other = make_folder(tmp_path / "run2")
    with pytest.raises(SystemExit) as exc:
        main(["models", "add", "my-gan", str(other), "--force"])
    assert exc.value.code == 0
    data = yaml.safe_load(reg_file.read_text())
    assert list(data["models"]) == ["my-seg", "my-gan"]
    assert data["models"]["my-gan"]["training_folder"] == str(other.resolve())
    assert "# trailing notes" in reg_file.read_text()
    # `satcore models` still lists
    with pytest.raises(SystemExit) as exc:
        main(["models", "--json"])
    assert exc.value.code == 0 and '"alias": "my-gan"' in capsys.readouterr().out


def test_models_add_refuses_root_aliases_bad_names_and_unfinished_folders(tmp_path, user_home, satcore_pm):
    from satcore.errors import UsageError

    folder = make_folder(tmp_path / "run")
    with pytest.raises(UsageError, match=r"'clip-vit-b32' is already defined \(satcore\)"):
        add_model_alias("clip-vit-b32", folder)
    with pytest.raises(UsageError, match="use letters, digits"):
        add_model_alias("my gan", folder)
    with pytest.raises(SpecError, match="not complete"):
        add_model_alias("half", make_folder(tmp_path / "half", status="stopped"))
    assert not (user_home / "registry.yaml").exists()
    # a new file is created, under SATCORE_HOME
    path = add_model_alias("first", folder)
    assert path == user_home / "registry.yaml"
    assert list(yaml.safe_load(path.read_text())["models"]) == ["first"]


def test_models_add_writes_satcore_registry_when_set_and_redumps_flow_style(tmp_path, user_home, monkeypatch,
                                                                           satcore_pm):
    folder = make_folder(tmp_path / "run")
    target = tmp_path / "team" / "registry.yaml"
    target.parent.mkdir()
    target.write_text("models: {a: {family: checkpoint, path: /x.pt}}\n")
    monkeypatch.setenv("SATCORE_REGISTRY", str(target))
    assert add_model_alias("b", folder) == target
    data = yaml.safe_load(target.read_text())
    assert data["models"]["a"] == {"family": "checkpoint", "path": "/x.pt"} and data["models"]["b"]["family"]
