import json

import numpy as np
import pandas as pd
import pytest

import satcore
from satcore.components import Batch


def test_whole_path_runs(tiny_env, make_spec, tmp_path):
    res = satcore.run(make_spec(tmp_path), progress=False)
    assert res.items_ok == 11 and res.items_failed == 1
    df = pd.read_parquet(tmp_path / "run" / "results.parquet")
    ok = df[df["error"].isna()]
    for col in (
        "probs.top_classes_before",
        "probs.top_classes_after",
        "probs.probabilities_before",
        "probs.probabilities_after",
        "change.score",
        "change.label",
        "change.threshold",
        "change.rose",
        "change.fell",
        "change.class_delta",
    ):
        assert col in df.columns, col
    assert set(ok["split"]) == {"train", "test"}
    # Δ = Σ|p2 - p1| recomputed from the stored signed per-class deltas
    for _, row in ok.iterrows():
        d = np.asarray(row["change.class_delta"])
        assert len(d) == 32
        assert abs(np.abs(d).sum() - row["change.score"]) < 1e-4
        assert abs(d.sum()) < 1e-4  # both probability vectors sum to 1
        p1, p2 = np.asarray(row["probs.probabilities_before"]), np.asarray(row["probs.probabilities_after"])
        assert p1.shape == p2.shape == (32,) and abs(p1.sum() - 1) < 1e-5 and abs(p2.sum() - 1) < 1e-5
        assert np.allclose(p2 - p1, d, atol=1e-6)  # the table's probabilities are the ones the detector used
        assert row["change.label"] == int(row["change.score"] > row["change.threshold"])
    state = json.loads((tmp_path / "run" / "fitted" / "change.json").read_text())
    assert set(state["best"]) == {"f1", "accuracy", "recall", "precision"}
    assert state["threshold"] == state["best"]["f1"]["threshold"]
    assert len(state["curve"]["threshold"]) == len(state["curve"]["f1"]) <= 400
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert set(metrics["steps"]["change"]) >= {"train", "test"}
    man = json.loads((tmp_path / "run" / "manifest.json").read_text())
    (m,) = man["models"]
    assert m["alias"] == "tiny-a" and m["source"] == "satcore-models" and len(m["sha256"]) == 64
    assert m["licence"] == "test only" and m["preprocess"]["size"] == 64
    report = (tmp_path / "run" / "report.html").read_text()
    assert "Probability delta: change" in report and report.count("data:image/png") >= 3


def test_probabilities_sum_to_one_and_match_reference(make_extractor, levir_items, tiny_env):
    import open_clip
    import torch
    from satcore_clip.preprocess import preprocess_batch, to_rgb_uint8

    ext = make_extractor(classes=["forest", "road", "building", "river"])
    out = ext.process(Batch(levir_items[:3]))
    # independent reference: the checkpoint loaded by hand, one image and one prompt at a time
    model = open_clip.create_model("tiny-clip", pretrained=None).eval()
    model.load_state_dict(torch.load(tiny_env["models"] / "tiny-a" / "model.pt", weights_only=True))
    tok = open_clip.get_tokenizer("tiny-clip")
    with torch.no_grad():
        text = torch.stack(
            [
                torch.nn.functional.normalize(model.encode_text(tok([f"a satellite image of {c}"])), dim=-1)[
                    0
                ]
                for c in ["forest", "road", "building", "river"]
            ]
        )
        for item, rec in zip(levir_items[:3], out, strict=False):
            p = rec["probabilities"]
            assert p.shape == (2, 4) and np.allclose(p.sum(axis=1), 1, atol=1e-6)
            for k, r in enumerate(item.images):
                x = preprocess_batch([to_rgb_uint8(r.array, r.band_names)], ext._loaded.preprocess)
                e = torch.nn.functional.normalize(model.encode_image(x), dim=-1)[0]
                ref = torch.softmax(model.logit_scale.exp() * e @ text.T, dim=-1).numpy()
                np.testing.assert_allclose(p[k], ref, atol=1e-5)
                np.testing.assert_allclose(rec["embedding"][k], e.numpy(), atol=1e-5)


def test_batch_independence(make_extractor, levir_items):
    ext = make_extractor(batch_size=3, cache=False)
    together = ext.process(Batch(levir_items))
    for i in (0, 4, len(levir_items) - 1):
        alone = ext.process(Batch([levir_items[i]]))[0]
        np.testing.assert_allclose(alone["probabilities"], together[i]["probabilities"], atol=1e-5)
        np.testing.assert_allclose(alone["embedding"], together[i]["embedding"], atol=1e-5)
        assert alone["top_classes_before"] == together[i]["top_classes_before"]


def test_preprocessing_matches_open_clip_transform(levir_items):
    """Torch preprocessing ≈ open_clip's own PIL transform for the same config (bicubic, centre crop)."""
    import torch
    from open_clip.transform import image_transform
    from PIL import Image
    from satcore_clip.preprocess import preprocess_batch, to_rgb_uint8

    cfg = {
        "size": 64,
        "mean": [0.48145466, 0.4578275, 0.40821073],
        "std": [0.26862954, 0.26130258, 0.27577711],
    }
    ref_tf = image_transform(64, is_train=False, mean=cfg["mean"], std=cfg["std"])
    for item in levir_items[:4]:
        rgb = to_rgb_uint8(item.images[0].array, item.images[0].band_names)
        ours = preprocess_batch([rgb], cfg)[0]
        ref = ref_tf(Image.fromarray(np.moveaxis(rgb, 0, -1)))
        assert ours.shape == ref.shape == (3, 64, 64)
        diff = (ours - ref).abs()
        assert float(diff.mean()) < 0.02 and float(diff.max()) < 0.3, (float(diff.mean()), float(diff.max()))
        # and an unrelated crop is far away (the check can fail)
        assert float((ours - torch.flip(ref, dims=[-1])).abs().mean()) > 0.05


def test_switching_alias_switches_weights(tiny_env, make_spec, tmp_path):
    import hashlib

    ra = satcore.run(make_spec(tmp_path, out="a"), progress=False)
    rb = satcore.run(make_spec(tmp_path, out="a2"), overrides={"steps.probs.model": "tiny-b"}, progress=False)
    ma, mb = ra.manifest["models"][0], rb.manifest["models"][0]
    assert (ma["alias"], mb["alias"]) == ("tiny-a", "tiny-b")
    for m, alias in ((ma, "tiny-a"), (mb, "tiny-b")):
        want = hashlib.sha256((tiny_env["models"] / alias / "model.pt").read_bytes()).hexdigest()
        assert m["sha256"] == want
    da, db = ra.results(), rb.results()
    assert not np.allclose(da["change.score"].dropna().to_numpy(), db["change.score"].dropna().to_numpy())


def test_alias_switch_changes_embeddings(make_extractor, levir_items):
    a = make_extractor(model="tiny-a").process(Batch(levir_items[:2]))
    b = make_extractor(model="tiny-b").process(Batch(levir_items[:2]))
    assert not np.allclose(a[0]["embedding"], b[0]["embedding"], atol=1e-3)
    assert a[0]["embedding"].shape == b[0]["embedding"].shape == (2, 64)


def test_class_and_template_files(make_extractor, tmp_path, levir_items):
    (tmp_path / "cls.txt").write_text("# comment\nforest\n\nwater\n")
    ext = make_extractor(classes=str(tmp_path / "cls.txt"), templates="ensemble")
    assert ext.classes == ["forest", "water"] and len(ext.templates) > 1
    assert ext.text_features.shape == (2, 64)
    assert np.allclose(np.linalg.norm(ext.text_features, axis=1), 1, atol=1e-5)
    out = ext.process(Batch(levir_items[:1]))[0]
    assert out["probabilities"].shape == (2, 2)
    assert make_extractor(classes=["forest", "water"], templates="names").templates == ["{}"]


def test_bundled_class_set_is_the_thesis_32():
    from satcore_clip.extractor import resolve_classes, resolve_templates

    c = resolve_classes("satellite-32")
    assert len(c) == 32 == len(set(c)) and c[0] == "landscape" and c[-1] == "residential area"
    assert "industrial site" in c and "parking lot" in c
    assert resolve_templates("default") == ["a satellite image of {}"]
    from satcore.errors import SpecError

    with pytest.raises(SpecError):
        resolve_templates(["no placeholder"])


def test_missing_base_weights_stop_setup_naming_both(tiny_env, make_entry):
    import yaml
    from satcore_clip.extractor import ClipZeroShotExtractor, ClipZeroShotParams

    from satcore.components import RunContext
    from satcore.errors import MissingWeightsError
    from satcore.registry import get_registry

    reg = yaml.safe_load(tiny_env["registry"].read_text())
    reg["models"]["tiny-geo"] = make_entry(load={"strict": False, "base": "tiny-openai"})
    reg["models"]["tiny-openai"] = make_entry()
    tiny_env["registry"].write_text(yaml.safe_dump(reg))
    (tiny_env["models"] / "tiny-geo").mkdir()
    (tiny_env["models"] / "tiny-geo" / "rs5m.pt").write_bytes(
        (tiny_env["models"] / "tiny-a" / "model.pt").read_bytes()
    )
    get_registry(refresh=True)
    ext = ClipZeroShotExtractor(ClipZeroShotParams(model="tiny-geo"), RunContext(device="cpu"), "probs")
    with pytest.raises(MissingWeightsError) as ei:
        ext.setup()
    msg = str(ei.value)
    assert "'tiny-openai' were not found" in msg and "'tiny-geo' loads its checkpoint over" in msg
    assert str(tiny_env["models"] / "tiny-openai") in msg


@pytest.mark.slow
def test_compile_path_matches_eager(make_extractor, levir_items):
    """`compile: true` (torch.compile of the image encoder; ~20 s to compile on 2 CPU cores) gives the same
    probabilities as the eager model."""
    eager = make_extractor(cache=False).process(Batch(levir_items[:4]))
    ext = make_extractor(cache=False, compile=True)
    assert hasattr(ext._encode_image, "_torchdynamo_orig_callable")  # really the compiled wrapper
    assert not hasattr(make_extractor(cache=False)._encode_image, "_torchdynamo_orig_callable")
    compiled = ext.process(Batch(levir_items[:4]))
    for x, y in zip(eager, compiled, strict=True):
        np.testing.assert_allclose(x["probabilities"], y["probabilities"], atol=1e-4)
        assert np.abs(x["embedding"] - y["embedding"]).max() < 1e-3


def test_cpu_threads_leave_room_for_loaders_and_are_restored(tiny_env, make_spec, tmp_path, monkeypatch):
    """On the CPU the model computes with execution.threads when set, else with the faster (measured on the
    first batches) of torch's default and the cores left by the loader threads; torch's thread count is given
    back after the run — also when the run stops with an error."""
    import torch

    from satcore.components import RunContext

    before = torch.get_num_threads()
    seen: list[int] = []
    from satcore_clip.extractor import ClipZeroShotExtractor

    orig = ClipZeroShotExtractor.process

    def spy(self, batch):
        seen.append(torch.get_num_threads())
        return orig(self, batch)

    monkeypatch.setattr(ClipZeroShotExtractor, "process", spy)
    spec = make_spec(tmp_path)
    spec["execution"].update(threads=1, loader_workers=2)
    res = satcore.run(spec, progress=False)
    assert seen and set(seen) == {1}
    assert res.manifest["models"][0]["cpu_threads"] == {"chosen": 1}
    assert torch.get_num_threads() == before

    # a step failing in setup after the extractor's: the run stops, torch's thread count still comes back
    from satcore_clip.delta import ProbabilityDeltaDetector

    from satcore.errors import ComponentError, RunStopped

    def broken(self):
        raise ComponentError("broken on purpose")

    delta_setup = ProbabilityDeltaDetector.setup
    monkeypatch.setattr(ProbabilityDeltaDetector, "setup", broken)
    spec = make_spec(tmp_path, out="run2")
    spec["execution"].update(threads=1)
    with pytest.raises(RunStopped, match="broken on purpose"):
        satcore.run(spec, progress=False)
    assert torch.get_num_threads() == before

    # threads not set: the tuner tries torch's default and the cores left by the loaders, keeps the faster
    monkeypatch.setattr(ProbabilityDeltaDetector, "setup", delta_setup)
    other = 1 if before > 1 else 2  # two candidates whatever the machine's core count
    monkeypatch.setattr(RunContext, "cpu_threads", lambda self: other)
    spec = make_spec(tmp_path, out="run3")
    spec["execution"].update(batch_size=1, loader_workers=2)
    res = satcore.run(spec, progress=False)
    (m,) = res.manifest["models"]
    cands = {before, other}
    assert m["cpu_threads"]["chosen"] in cands
    assert set(m["cpu_threads"]["seconds_per_item"]) == {str(c) for c in cands}
    assert all(v > 0 for v in m["cpu_threads"]["seconds_per_item"].values())
    assert torch.get_num_threads() == before
    assert "computing with" in (tmp_path / "run3" / "run.log").read_text()

    monkeypatch.undo()
    assert RunContext(threads=3).cpu_threads() == 3
    monkeypatch.setattr("os.sched_getaffinity", lambda _pid: {0, 1, 2, 3}, raising=False)
    assert RunContext(loader_workers=2).cpu_threads() == 2
    assert RunContext(loader_workers=6).cpu_threads() == 1


def test_probability_columns_follow_the_image_count(make_extractor, levir_items):
    ext = make_extractor(classes=["forest", "road", "building"])
    (out,) = ext.process(Batch(levir_items[:1]))
    cols = ext.columns(out)
    assert set(cols) == {"top_classes_before", "top_classes_after",
                         "probabilities_before", "probabilities_after"}
    assert np.allclose(cols["probabilities_before"], out["probabilities"][0], atol=1e-7)
    assert np.allclose(cols["probabilities_after"], out["probabilities"][1], atol=1e-7)
    one = {**out, "probabilities": out["probabilities"][:1]}
    assert np.allclose(ext.columns(one)["probabilities"], out["probabilities"][0], atol=1e-7)
    three = {**out, "probabilities": np.vstack([out["probabilities"], out["probabilities"][:1]])}
    assert np.asarray(ext.columns(three)["probabilities"]).shape == (3, 3)
    quiet = make_extractor(classes=["forest", "road", "building"], save_probabilities=False)
    assert set(quiet.columns(out)) == {"top_classes_before", "top_classes_after"}
