"""Checkpoint hashes for the manifest: correct, computed once per file version, memo failures harmless."""

from __future__ import annotations

import hashlib
import os

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
