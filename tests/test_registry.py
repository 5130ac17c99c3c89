"""Checkpoint hashes for the manifest: correct, computed once per file version, memo failures harmless."""

from __future__ import annotations

import hashlib
import os

import pytest

from satcore import registry
from satcore.registry import ResolvedModel, sha256_file


def test_sha256_is_memoised_per_file_version(tmp_path, monkeypatch):
    f = tmp_path / "w.safetensors"
    f.write_bytes(b"x" * 3_000_000)
    memo = tmp_path / "cache"
    assert sha256_file(f, memo) == hashlib.sha256(f.read_bytes()).hexdigest()
    reads = []
    real_open = open

    def counting_open(path, *a, **k):
        reads.append(str(path))
        return real_open(path, *a, **k)

    monkeypatch.setattr("builtins.open", counting_open)
    assert sha256_file(f, memo) == hashlib.sha256(b"x" * 3_000_000).hexdigest()
    assert str(f) not in reads  # answered from the memo
    # a new version of the file (other content and mtime) is hashed again
    f.write_bytes(b"y" * 10)
    st = f.stat()
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    assert sha256_file(f, memo) == hashlib.sha256(b"y" * 10).hexdigest()
    assert str(f) in reads


def test_unwritable_or_corrupt_memo_only_costs_time(tmp_path):
    f = tmp_path / "w.pt"
    f.write_bytes(b"abc")
    want = hashlib.sha256(b"abc").hexdigest()
    bad = tmp_path / "memo"
    bad.mkdir()
    (bad / "sha256.json").write_text("{not json")
    assert sha256_file(f, bad) == want
    blocker = tmp_path / "file-not-dir"
    blocker.write_text("")
    assert sha256_file(f, blocker) == want  # memo cannot be created under a file


def test_manifest_record_uses_the_memo(tmp_path, monkeypatch):
    monkeypatch.setenv("SATCORE_CACHE", str(tmp_path / "cache"))
    f = tmp_path / "w.pt"
    f.write_bytes(b"weights")
    r = ResolvedModel("a", {"licence": "test"}, f, "explicit path")
    rec = r.manifest()
    assert rec["sha256"] == hashlib.sha256(b"weights").hexdigest() and rec["licence"] == "test"
    assert (tmp_path / "cache" / "sha256.json").exists()
    assert registry.cache_dir() == tmp_path / "cache"
    assert ResolvedModel("d", {}, tmp_path, "folder").sha256() is None


def _hf_snapshot(cache, repo, commit, files, ref="main"):
    base = cache / ("models--" + repo.replace("/", "--"))
    (base / "refs").mkdir(parents=True, exist_ok=True)
    (base / "refs" / ref).write_text(commit + "\n")
    snap = base / "snapshots" / commit
    snap.mkdir(parents=True)
    for name in files:
        (snap / name).parent.mkdir(parents=True, exist_ok=True)
        (snap / name).write_bytes(name.encode())
    return snap


def test_hf_cache_lookup_follows_refs_and_alternates(tmp_path, monkeypatch):
    from satcore.errors import MissingWeightsError

    cache = tmp_path / "hub"
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("SATCORE_MODELS", str(tmp_path / "models"))
    entry = {"family": "open_clip", "hf_repo": "org/clip", "filename": "open_clip_model.safetensors",
             "alternates": ["open_clip_pytorch_model.bin"]}
    reg = registry.Registry({"a": entry}, [], {"a": "test"})
    with pytest.raises(MissingWeightsError,
                       match="file open_clip_model.safetensors or open_clip_pytorch_model.bin"):
        reg.resolve("a")
    # only the alternate file is cached (the .bin form of the same weights)
    old = _hf_snapshot(cache, "org/clip", "aaa", ["open_clip_pytorch_model.bin"])
    r = reg.resolve("a")
    assert (r.path, r.source) == (old / "open_clip_pytorch_model.bin", "hf-cache")
    # a newer snapshot that refs/main points to wins over the older one
    new = _hf_snapshot(cache, "org/clip", "bbb", ["open_clip_model.safetensors"])
    assert reg.resolve("a").path == new / "open_clip_model.safetensors"
    # a pinned revision reads refs/<revision>
    _hf_snapshot(cache, "org/clip", "ccc", ["open_clip_pytorch_model.bin"], ref="v1")
    pinned = registry.Registry({"a": {**entry, "revision": "v1"}}, [], {"a": "test"})
    snaps = cache / "models--org--clip" / "snapshots"
    assert pinned.resolve("a").path == snaps / "ccc" / "open_clip_pytorch_model.bin"


def test_missing_bare_checkpoint_names_only_that_path(tmp_path, monkeypatch):
    from satcore.errors import MissingWeightsError

    monkeypatch.setenv("SATCORE_MODELS", str(tmp_path / "models"))
    reg = registry.Registry({"a": {"family": "open_clip", "path": str(tmp_path / "gone.pt")}}, [],
                            {"a": "/home/u/registry.yaml"})
    with pytest.raises(MissingWeightsError) as ei:
        reg.resolve(str(tmp_path / "nope.pt"))
    msg = str(ei.value)
    assert ei.value.searched == [f"the path {tmp_path / 'nope.pt'}"] and "$SATCORE_MODELS" not in msg
    assert "given as `model:` does not exist" in msg
    with pytest.raises(MissingWeightsError, match=r"fix the alias's `path:` \(/home/u/registry.yaml\)"):
        reg.resolve("a")
    with pytest.raises(MissingWeightsError, match=r"fix the step's `weights:`$"):
        reg.resolve("a", explicit_path=str(tmp_path / "w.pt"))
    (tmp_path / "nope.pt").write_bytes(b"w")
    assert reg.resolve(str(tmp_path / "nope.pt")).source == "explicit"


def test_registry_imports_no_plugin_code():
    import grimp

    graph = grimp.build_graph("satcore")
    assert graph.find_shortest_chain("satcore.registry", "satcore.plugins") is None
    assert graph.find_shortest_chain("satcore.registry", "satcore.catalogue") is None


def test_plugin_aliases_and_locators_are_passed_in(tmp_path, monkeypatch):
    monkeypatch.setenv("SATCORE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("SATCORE_MODELS", str(tmp_path / "models"))
    monkeypatch.delenv("SATCORE_REGISTRY", raising=False)
    weights = tmp_path / "w.pt"
    weights.write_bytes(b"x")
    calls = []

    def locate(alias, entry):
        calls.append(alias)
        return str(weights) if alias == "p-model" else None

    reg = registry.Registry.load(
        plugin_aliases=[("first", {"p-model": {"family": "checkpoint", "licence": "A"}}),
                        ("second", {"p-model": {"family": "checkpoint", "licence": "B"},
                                    "clip-vit-b32": {"family": "checkpoint"}})],
        locate=locate)
    assert reg.models["p-model"]["licence"] == "A" and reg.origins["p-model"] == "plugin first"
    assert reg.origins["clip-vit-b32"] == "satcore"  # plugins never override the root registry
    found = reg.resolve("p-model")
    assert (found.path, found.source, calls) == (weights, "library-cache", ["p-model"])
    bare = registry.Registry.load(plugin_aliases=False)
    assert "p-model" not in bare.models and bare.locate is None
