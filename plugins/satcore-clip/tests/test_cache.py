import pandas as pd
from satcore_clip.extractor import ClipZeroShotExtractor

import satcore


def counting(monkeypatch):
    calls = {"images": 0, "calls": 0}
    orig = ClipZeroShotExtractor._encode

    def wrapped(self, rgbs):
        calls["images"] += len(rgbs)
        calls["calls"] += 1
        return orig(self, rgbs)

    monkeypatch.setattr(ClipZeroShotExtractor, "_encode", wrapped)
    return calls


def test_second_run_does_not_reencode(tiny_env, make_spec, tmp_path, monkeypatch):
    calls = counting(monkeypatch)
    r1 = satcore.run(make_spec(tmp_path, out="r1"), progress=False)
    first = calls["images"]
    assert first >= 22  # 11 readable pairs, each image encoded (fit pass and main pass share the cache)
    assert first <= 22
    r2 = satcore.run(make_spec(tmp_path, out="r2"), progress=False)
    assert calls["images"] == first  # nothing re-encoded
    assert r2.manifest["models"][0]["embedding_cache"]["misses"] == 0
    d1, d2 = r1.results().drop(columns=[]), r2.results()
    pd.testing.assert_frame_equal(
        d1.sort_values("item_id").reset_index(drop=True), d2.sort_values("item_id").reset_index(drop=True)
    )
    # another detector setting on the same images: still no encoding
    s3 = make_spec(tmp_path, out="r3")
    s3["steps"][1]["distance"] = "cosine"
    satcore.run(s3, progress=False)
    assert calls["images"] == first


def test_cache_off_and_other_model_reencode(tiny_env, make_spec, tmp_path, monkeypatch):
    calls = counting(monkeypatch)
    satcore.run(make_spec(tmp_path, out="r1"), progress=False)
    n = calls["images"]
    assert n == 22
    r2 = satcore.run(make_spec(tmp_path, out="r2", cache=False), progress=False)
    # without the cache the engine's fit pass encodes the train pairs and the main pass all 22 images again
    n_train = int((r2.results()["split"] == "train").sum())
    assert calls["images"] == n + 22 + 2 * n_train
    before = calls["images"]
    satcore.run(make_spec(tmp_path, out="r3", model="tiny-b"), progress=False)  # other weights: other key
    assert calls["images"] == before + 22
    assert len(list((tiny_env["cache"] / "embeddings").iterdir())) == 2


def test_class_embeddings_cached_by_model_and_prompts(tiny_env, make_spec, tmp_path, monkeypatch):
    """A second run with the same model and prompts builds no tokenizer and runs no text tower."""
    import numpy as np
    import open_clip

    built = []
    orig = open_clip.get_tokenizer

    def counting(*a, **k):
        built.append(a)
        return orig(*a, **k)

    monkeypatch.setattr(open_clip, "get_tokenizer", counting)

    def class_embeddings(run):
        return run.manifest["models"][0]["embedding_cache"]["class_embeddings"]

    r1 = satcore.run(make_spec(tmp_path, out="r1"), progress=False)
    assert class_embeddings(r1) == "computed" and len(built) == 1
    r2 = satcore.run(make_spec(tmp_path, out="r2"), progress=False)
    assert class_embeddings(r2) == "cached" and len(built) == 1
    pd.testing.assert_frame_equal(
        r1.results().sort_values("item_id").reset_index(drop=True),
        r2.results().sort_values("item_id").reset_index(drop=True),
    )
    # other prompts are other class embeddings
    r3 = satcore.run(make_spec(tmp_path, out="r3", templates=["an aerial photo of {}."]), progress=False)
    assert class_embeddings(r3) == "computed" and len(built) == 2
    s1 = r1.results().sort_values("item_id")["change.score"].to_numpy()
    s3 = r3.results().sort_values("item_id")["change.score"].to_numpy()
    assert s1.shape == s3.shape == (12,) and not np.allclose(s1, s3, equal_nan=True)
    # with the cache off they are computed every time
    r4 = satcore.run(make_spec(tmp_path, out="r4", cache=False), progress=False)
    assert "embedding_cache" not in r4.manifest["models"][0] and len(built) == 3


def test_cache_folder_says_which_model_it_holds(tiny_env, make_spec, tmp_path):
    import json

    r = satcore.run(make_spec(tmp_path, out="r1"), progress=False)
    from pathlib import Path

    folder = Path(r.manifest["models"][0]["embedding_cache"]["dir"])
    assert folder.parent == tiny_env["cache"] / "embeddings"
    about = json.loads((folder / "about.json").read_text())
    assert about["alias"] == "tiny-a" and about["architecture"] == "tiny-clip"
    assert about["weights_sha256"] == r.manifest["models"][0]["sha256"]
    assert about["what"].startswith("clip-zeroshot embeddings: tiny-a (tiny-clip, fp32, 64 px, weights ")
