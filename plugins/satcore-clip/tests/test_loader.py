"""Family quirks on tiny checkpoints: strict, nested state_dict + module. prefix, non-strict, folders."""

import json
import logging

import pytest
import torch
from satcore_clip.loader import WeightsMismatchError, load_clip


class ListHandler(logging.Handler):
    def __init__(self):
        super().__init__()
        self.records = []

    def emit(self, record):
        self.records.append(record.getMessage())


@pytest.fixture
def log():
    logger = logging.getLogger("satcore-clip-test")
    logger.propagate = False
    h = ListHandler()
    logger.addHandler(h)
    logger.setLevel(logging.INFO)
    yield logger, h.records
    logger.removeHandler(h)


def same_weights(model, sd):
    own = model.state_dict()
    return all(torch.equal(own[k], v) for k, v in sd.items())


def test_plain_strict(tmp_path, make_entry, make_tiny, log):
    logger, records = log
    sd = make_tiny(7).state_dict()
    torch.save(sd, tmp_path / "plain.pt")
    m = load_clip("plain", make_entry(), tmp_path / "plain.pt", logger)
    assert same_weights(m.model, sd) and m.load_report["missing"] == [] and m.load_report["unexpected"] == []
    assert m.logit_scale == pytest.approx(float(sd["logit_scale"].exp()))
    # a fixed logit scale (RemoteCLIP's 100) comes from the alias, not the checkpoint
    m100 = load_clip("plain", make_entry(logit_scale=100.0), tmp_path / "plain.pt", logger)
    assert m100.logit_scale == 100.0


def test_strict_mismatch_is_a_short_error(tmp_path, make_entry, make_tiny, log):
    sd = make_tiny(7).state_dict()
    sd.pop("text_projection")
    sd["extra.weight"] = torch.zeros(2)
    torch.save(sd, tmp_path / "bad.pt")
    with pytest.raises(WeightsMismatchError) as ei:
        load_clip("bad", make_entry(), tmp_path / "bad.pt", log[0])
    msg = str(ei.value)
    assert "1 missing (e.g. text_projection)" in msg and "1 unexpected (e.g. extra.weight)" in msg
    assert "architecture" in msg and len(msg) < 600


def test_wrong_architecture_shapes_refused_even_non_strict(tmp_path, make_entry, make_tiny, log):
    sd = make_tiny(7).state_dict()
    sd["positional_embedding"] = torch.zeros(5, 64)
    torch.save(sd, tmp_path / "shape.pt")
    with pytest.raises(WeightsMismatchError, match="wrong shape"):
        load_clip("shape", make_entry(load={"strict": False}), tmp_path / "shape.pt", log[0])


def test_nested_state_dict_and_module_prefix(tmp_path, make_entry, make_tiny, log):
    """SkyCLIP-style training checkpoint: {'epoch':…, 'state_dict': {'module.…': …}}."""
    logger, records = log
    sd = make_tiny(8).state_dict()
    ckpt = {"epoch": 20, "name": "run", "state_dict": {f"module.{k}": v for k, v in sd.items()}}
    torch.save(ckpt, tmp_path / "epoch_20.pt")
    entry = make_entry(load={"strict": True, "state_dict_key": "state_dict", "strip_prefix": "module."})
    m = load_clip("sky", entry, tmp_path / "epoch_20.pt", logger)
    assert same_weights(m.model, sd)
    # recognised without the load: hints too (and said so in the log)
    m2 = load_clip("sky", make_entry(), tmp_path / "epoch_20.pt", logger)
    assert same_weights(m2.model, sd)
    assert any("nested 'state_dict'" in r for r in records) and any("module." in r for r in records)
    # a wrong state_dict_key names the keys that exist
    with pytest.raises(WeightsMismatchError, match="no 'model' entry"):
        load_clip("sky", make_entry(load={"state_dict_key": "model"}), tmp_path / "epoch_20.pt", logger)


def test_explicit_strip_prefix_other_than_module(tmp_path, make_entry, make_tiny, log):
    """``load.strip_prefix: "model."`` (a Lightning-style wrapper) is honoured; it is never auto-detected."""
    logger, _ = log
    sd = make_tiny(14).state_dict()
    torch.save({f"model.{k}": v for k, v in sd.items()}, tmp_path / "wrapped.pt")
    entry = make_entry(load={"strict": True, "strip_prefix": "model."})
    m = load_clip("wrapped", entry, tmp_path / "wrapped.pt", logger)
    assert same_weights(m.model, sd) and m.load_report["loaded"] == len(sd)
    # without the setting the keys do not fit: a strict load names them
    with pytest.raises(WeightsMismatchError) as ei:
        load_clip("wrapped", make_entry(), tmp_path / "wrapped.pt", logger)
    msg = str(ei.value)
    assert f"{len(sd)} missing" in msg and f"{len(sd)} unexpected (e.g. model." in msg
    assert "strip_prefix" in msg


def test_module_prefix_on_some_keys_only_is_not_auto_stripped(tmp_path, make_entry, make_tiny, log):
    """Auto-detection needs ``module.`` on every key: a mixed checkpoint is refused, not guessed."""
    logger, records = log
    sd = make_tiny(15).state_dict()
    keys = sorted(sd)
    prefixed = keys[: len(keys) // 2]
    mixed = {(f"module.{k}" if k in prefixed else k): v for k, v in sd.items()}
    torch.save(mixed, tmp_path / "mixed.pt")
    with pytest.raises(WeightsMismatchError) as ei:
        load_clip("mixed", make_entry(), tmp_path / "mixed.pt", logger)
    msg = str(ei.value)
    assert f"{len(prefixed)} missing (e.g. {', '.join(prefixed[:4])})" in msg
    assert f"{len(prefixed)} unexpected (e.g. {', '.join('module.' + k for k in prefixed[:4])})" in msg
    assert not any("stripping" in r for r in records)
    # an explicit strip_prefix strips it where present, and the rest loads as is
    entry = make_entry(load={"strict": True, "strip_prefix": "module."})
    m = load_clip("mixed", entry, tmp_path / "mixed.pt", logger)
    assert same_weights(m.model, sd)


def test_non_strict_logs_missing_and_unexpected(tmp_path, make_entry, make_tiny, log):
    """GeoRSCLIP-style: a partial checkpoint with extra keys loads non-strictly, and the keys are logged."""
    logger, records = log
    sd = make_tiny(9).state_dict()
    part = {k: v for k, v in sd.items() if not k.startswith("visual.transformer.resblocks.1.")}
    part["aux_head.bias"] = torch.ones(3)
    torch.save(part, tmp_path / "rs5m.pt")
    m = load_clip("geo", make_entry(load={"strict": False}), tmp_path / "rs5m.pt", logger)
    missing = [k for k in sd if k.startswith("visual.transformer.resblocks.1.")]
    assert sorted(m.load_report["missing"]) == sorted(missing) and m.load_report["unexpected"] == [
        "aux_head.bias"
    ]
    assert same_weights(m.model, {k: v for k, v in part.items() if k != "aux_head.bias"})
    warn = [r for r in records if "non-strict load" in r]
    assert warn and f"{len(missing)} missing" in warn[0] and "aux_head.bias" in warn[0]
    assert "visual.transformer.resblocks.1." in warn[0]
    # the missing block is left as initialised, not taken from anywhere in the checkpoint
    k = next(k for k in missing if k.endswith("attn.in_proj_weight"))
    assert not torch.equal(m.model.state_dict()[k], sd[k])


def test_safetensors_and_local_dir_folder(tmp_path, make_entry, make_tiny, log):
    from safetensors.torch import save_file
    from satcore_clip.loader import OPENAI_MEAN

    sd = {k: v.contiguous() for k, v in make_tiny(10).state_dict().items()}
    save_file(sd, str(tmp_path / "w.safetensors"))
    m = load_clip("st", make_entry(), tmp_path / "w.safetensors", log[0])
    assert same_weights(m.model, sd)
    # open_clip local-dir layout: config + weights; the architecture comes from the folder's model_cfg
    folder = tmp_path / "hf-folder"
    folder.mkdir()
    cfg = make_entry()["model_cfg"]
    pre = {"image_size": 64, "mean": list(OPENAI_MEAN), "std": [0.5, 0.5, 0.5], "interpolation": "bicubic"}
    (folder / "open_clip_config.json").write_text(json.dumps({"model_cfg": cfg, "preprocess_cfg": pre}))
    torch.save(sd, folder / "open_clip_pytorch_model.bin")
    entry = {"family": "open_clip", "licence": "x"}  # no architecture: the folder carries it
    m2 = load_clip("folder", entry, folder, log[0])
    assert same_weights(m2.model, sd) and m2.weights_file == folder / "open_clip_pytorch_model.bin"
    assert m2.preprocess["std"] == [0.5, 0.5, 0.5] and m2.preprocess["size"] == 64


def test_jit_or_pickled_checkpoint_refused_with_hint(tmp_path, make_entry, log):
    import pickle

    (tmp_path / "evil.pt").write_bytes(pickle.dumps({"x": object()}))
    with pytest.raises(WeightsMismatchError, match="weights_only"):
        load_clip("evil", make_entry(), tmp_path / "evil.pt", log[0])


def test_base_weights_then_non_strict_overlay(tmp_path, make_entry, make_tiny, log):
    """GeoRSCLIP's recipe: OpenAI weights first (load.base), then the RS5M checkpoint non-strictly on top."""
    from types import SimpleNamespace

    base_sd = make_tiny(11).state_dict()
    over = make_tiny(12).state_dict()
    part = {k: v for k, v in over.items() if k.startswith("visual.")}
    torch.save(base_sd, tmp_path / "base.pt")
    torch.save(part, tmp_path / "rs5m.pt")
    seen = []

    def resolve(alias):
        seen.append(alias)
        return SimpleNamespace(path=tmp_path / "base.pt", entry=make_entry())

    m = load_clip(
        "geo",
        make_entry(load={"strict": False, "base": "clip-tiny"}),
        tmp_path / "rs5m.pt",
        log[0],
        resolve=resolve,
    )
    assert seen == ["clip-tiny"]
    sd = m.model.state_dict()
    assert all(torch.equal(sd[k], v) for k, v in part.items())  # overlay wins
    text_keys = [k for k in base_sd if not k.startswith("visual.")]
    assert all(torch.equal(sd[k], base_sd[k]) for k in text_keys)  # the rest from the base, not random init
    assert not torch.equal(base_sd["token_embedding.weight"], over["token_embedding.weight"])


def test_extract_training_checkpoint_with_optimizer(tmp_path, make_entry, make_tiny, log):
    from satcore_clip.extract import main

    sd = make_tiny(13).state_dict()
    ckpt = {
        "epoch": 20,
        "state_dict": {f"module.{k}": v for k, v in sd.items()},
        "optimizer": {"state": {}, "param_groups": [{"lr": 1e-5, "betas": (0.9, 0.98), "fn": print}]},
    }
    torch.save(ckpt, tmp_path / "epoch_20.pt")
    with pytest.raises(WeightsMismatchError, match="satcore_clip.extract"):
        load_clip("sky", make_entry(), tmp_path / "epoch_20.pt", log[0])
    assert main([str(tmp_path / "epoch_20.pt"), str(tmp_path / "sky.safetensors")]) == 0
    sky = make_entry(load={"strict": True, "state_dict_key": "state_dict", "strip_prefix": "module."})
    m = load_clip("sky", sky, tmp_path / "sky.safetensors", log[0])  # the alias's load: still works
    assert all(torch.equal(m.model.state_dict()[k], v) for k, v in sd.items())


def _count_inits(monkeypatch):
    """Count calls of torch.nn.init.normal_ (open_clip draws most of its initial weights with it)."""
    import torch.nn.init as init

    calls = []
    orig = init.normal_

    def counted(tensor, *a, **k):
        calls.append(tuple(tensor.shape))
        return orig(tensor, *a, **k)

    monkeypatch.setattr(init, "normal_", counted)
    return calls, counted


def test_strict_load_draws_no_random_weights_and_matches(tmp_path, make_entry, make_tiny, log, monkeypatch):
    """A strict load skips the random initialisation it would overwrite; every tensor is the checkpoint's."""
    import torch.nn.init as init

    ref = make_tiny(7)
    torch.save(ref.state_dict(), tmp_path / "plain.pt")
    calls, counted = _count_inits(monkeypatch)
    m = load_clip("plain", make_entry(), tmp_path / "plain.pt", log[0])
    assert calls == []  # nothing drawn
    assert init.normal_ is counted  # and the initialisers are given back
    own, want = dict(m.model.named_buffers()), dict(ref.named_buffers())  # non-persistent ones too
    assert own.keys() == want.keys() and all(torch.equal(own[k], want[k]) for k in want)
    assert all(torch.equal(p, ref.state_dict()[k]) for k, p in m.model.state_dict().items())
    x = torch.rand(2, 3, 64, 64)
    with torch.inference_mode():
        assert torch.equal(m.model.encode_image(x), ref.encode_image(x))
        text = torch.randint(0, 49408, (3, 77))
        assert torch.equal(m.model.encode_text(text), ref.encode_text(text))


def test_non_strict_load_still_initialises(tmp_path, make_entry, make_tiny, log, monkeypatch):
    """Keys a non-strict checkpoint lacks keep open_clip's own (seeded) initial values, not empty memory."""
    sd = make_tiny(9).state_dict()
    part = {k: v for k, v in sd.items() if not k.startswith("visual.transformer.resblocks.1.")}
    torch.save(part, tmp_path / "part.pt")
    calls, _ = _count_inits(monkeypatch)
    torch.manual_seed(123)
    m = load_clip("geo", make_entry(load={"strict": False}), tmp_path / "part.pt", log[0])
    assert calls  # initialised as usual
    ref = make_tiny(123)  # the same seed gives the same initial values
    k = "visual.transformer.resblocks.1.attn.in_proj_weight"
    assert torch.equal(m.model.state_dict()[k], ref.state_dict()[k])


def test_extract_refuses_missing_or_unreadable_files_in_one_line(tmp_path, capsys):
    from satcore_clip.extract import main

    assert main([str(tmp_path / "nope.pt"), str(tmp_path / "out.pt")]) == 2
    assert "nope.pt is not a file" in capsys.readouterr().err
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    assert main([str(tmp_path / "junk.pt"), str(tmp_path / "out.pt")]) == 2
    assert "junk.pt is not a torch checkpoint" in capsys.readouterr().err
    assert not (tmp_path / "out.pt").exists()
