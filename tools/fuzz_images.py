"""Fuzz the image readers: every case is a clean per-item error or an accepted item, never a traceback.

Each case is a small dataset (``A/ B/ label/``) in which one file is generated from a parameter dict
(:data:`CHOICES`: format, dtype, bands, size, nodata, NaN/inf pixels) and then mutated (truncated at a PNG
chunk or TIFF block boundary or at any byte, a flipped byte, a wrong magic, a header claiming 20,000×20,000
pixels, empty, random bytes). The ``folder-pairs`` source lists and loads it twice; the outcome is

* ``accepted``: an item came back, both loads gave the same pixels and the same ``valid`` mask;
* ``error``: a :class:`~satcore.errors.ComponentError` (the engine's failed item) or a listed problem;
* ``BUG``: anything else — another exception, two loads that differ, a child that died, ran over the time
  limit or over the memory limit.

Run ``python -m tools.fuzz_images --cases 500`` (from the repository root): each case runs in a forked child
with a time limit (5 s) and an address-space limit (1 GB); the summary gives the counts, the slowest case and
the peak memory. ``tests/fuzz/test_images.py`` draws the same parameters with hypothesis (bounded for CI).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import signal
import struct
import sys
import tempfile
import time
import traceback
import zlib
from pathlib import Path
from typing import Any

import numpy as np

#: The parameter space; ``k`` picks the boundary or byte a mutation uses.
CHOICES: dict[str, list[Any]] = {
    "fmt": ["png", "tif", "jpg"],
    "dtype": ["uint8", "uint16", "int16", "float32", "float64"],
    "bands": [1, 2, 3, 4, 5],
    "height": [1, 2, 3, 7, 16, 33],
    "width": [1, 2, 5, 16, 40],
    "nodata": ["none", "zero", "nan", "-9999"],
    "special": ["none", "nan_pixel", "inf_pixel", "nan_border", "all_nan"],
    "mutation": ["none", "truncate_chunk", "truncate_byte", "flip_byte", "bad_magic", "huge_header", "empty",
                 "garbage"],
    "role": ["image", "label"],
}
K_MAX = 1 << 20


def random_params(rng: random.Random) -> dict[str, Any]:
    """One case drawn uniformly from :data:`CHOICES`."""
    p = {k: rng.choice(v) for k, v in CHOICES.items()}
    p["k"] = rng.randrange(K_MAX)
    return p


# ------------------------------------------------------------------------------------------- making files

def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_boundaries(data: bytes) -> list[int]:
    """Offsets where a PNG's chunks start and end (and the middle of each chunk's data)."""
    out, pos = [8], 8
    while pos + 8 <= len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        out += [pos + 4, pos + 8, pos + 8 + length // 2, pos + 12 + length]
        pos += 12 + length
    return sorted({o for o in out if 0 < o < len(data)})


def tiff_boundaries(path: Path) -> list[int]:
    """Offsets of a GeoTIFF's header, and the start, middle and end of each of its blocks."""
    from satcore.data import open_quietly

    out = [4, 8]
    with open_quietly(path) as ds:
        for b in range(1, ds.count + 1):
            for j in range(0, max(1, (ds.height + ds.block_shapes[0][0] - 1) // ds.block_shapes[0][0])):
                for i in range(0, max(1, (ds.width + ds.block_shapes[0][1] - 1) // ds.block_shapes[0][1])):
                    off = ds.get_tag_item(f"BLOCK_OFFSET_{i}_{j}", "TIFF", bidx=b)
                    size = ds.get_tag_item(f"BLOCK_SIZE_{i}_{j}", "TIFF", bidx=b)
                    if off and size:
                        out += [int(off), int(off) + int(size) // 2, int(off) + int(size)]
    n = path.stat().st_size
    return sorted({o for o in out if 0 < o < n})


def huge_png() -> bytes:
    """A 60-odd-byte PNG whose header claims 20,000×20,000 grey pixels."""
    ihdr = struct.pack(">IIBBBBB", 20_000, 20_000, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", zlib.compress(b""))
            + _chunk(b"IEND", b""))


def huge_tiff() -> bytes:
    """A ~100-byte uncompressed TIFF whose header claims 20,000×20,000 grey pixels in one strip."""
    tags = [(256, 4, 20_000), (257, 4, 20_000), (258, 3, 8), (259, 3, 1), (262, 3, 1), (273, 4, 8),
            (277, 3, 1), (278, 4, 20_000), (279, 4, 400_000_000)]
    ifd = struct.pack("<H", len(tags)) + b"".join(
        struct.pack("<HHII", t, kind, 1, v) if kind == 4 else struct.pack("<HHIHH", t, kind, 1, v, 0)
        for t, kind, v in tags) + struct.pack("<I", 0)
    return b"II*\x00" + struct.pack("<I", 8) + ifd


def pixels(p: dict[str, Any]) -> tuple[np.ndarray, str, float | None]:
    """The array (bands, H, W), the dtype actually written and the nodata value for ``p``."""
    fmt, dtype, bands = p["fmt"], p["dtype"], p["bands"]
    if fmt == "png":
        dtype = dtype if dtype in ("uint8", "uint16") else "uint8"
        bands = min(bands, 4)
    if fmt == "jpg":
        dtype, bands = "uint8", (1 if bands < 3 else 3)
    rng = np.random.default_rng(p["k"])
    h, w = p["height"], p["width"]
    info = np.iinfo(dtype) if np.issubdtype(np.dtype(dtype), np.integer) else None
    hi = min(info.max, 1000) if info else 1000.0
    lo = max(info.min, -1000) if info else -1000.0
    arr = rng.uniform(lo, hi, (bands, h, w)).astype(dtype)
    if p["role"] == "label":
        arr = (rng.random((1, h, w)) > 0.5).astype("uint8") * 255
        dtype = "uint8"
    floating = np.issubdtype(arr.dtype, np.floating)
    if floating and p["special"] == "nan_pixel":
        arr[0, h // 2, w // 2] = np.nan
    elif floating and p["special"] == "inf_pixel":
        arr[-1, 0, 0] = -np.inf
    elif floating and p["special"] == "nan_border":
        arr[:, :, : max(1, w // 4)] = np.nan
    elif floating and p["special"] == "all_nan":
        arr[:] = np.nan
    nodata = None
    if fmt == "tif" and p["nodata"] != "none" and p["role"] == "image":
        nodata = {"zero": 0.0, "nan": float("nan"), "-9999": -9999.0}[p["nodata"]]
        if info is not None and not (np.isfinite(nodata) and info.min <= nodata <= info.max):
            nodata = None
        elif nodata is not None and np.isfinite(nodata):
            arr[:, 0, :] = arr.dtype.type(nodata)  # a nodata first row
    return arr, str(arr.dtype), nodata


def write_image(path: Path, p: dict[str, Any]) -> None:
    """Write the unmutated image of case ``p`` at ``path``."""
    import warnings

    import rasterio
    from rasterio.errors import NotGeoreferencedWarning

    arr, dtype, nodata = pixels(p)
    driver = {"png": "PNG", "tif": "GTiff", "jpg": "JPEG"}[p["fmt"]]
    prof: dict[str, Any] = {"driver": driver, "height": arr.shape[1], "width": arr.shape[2],
                            "count": arr.shape[0], "dtype": dtype}
    if driver == "GTiff":
        prof.update(compress="deflate" if p["k"] % 2 else "none")
        if nodata is not None:
            prof["nodata"] = nodata
    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with rasterio.open(path, "w", **prof) as ds:  # PNG/JPEG: rasterio copies from a MEM dataset
            ds.write(arr)


def mutate(path: Path, p: dict[str, Any]) -> None:
    """Apply the case's mutation to the file at ``path``."""
    m, k = p["mutation"], p["k"]
    data = path.read_bytes()
    if m == "none":
        return
    if m == "truncate_chunk":
        if p["fmt"] == "png":
            cuts = png_boundaries(data)
        elif p["fmt"] == "tif":
            cuts = tiff_boundaries(path)
        else:  # JPEG segments start at 0xFF markers
            cuts = [i for i in range(2, len(data) - 1) if data[i] == 0xFF]
        cut = cuts[k % len(cuts)] if cuts else len(data) // 2
        data = data[:cut]
    elif m == "truncate_byte":
        data = data[: k % max(len(data), 1)]
    elif m == "flip_byte":
        i = k % len(data)
        data = data[:i] + bytes([data[i] ^ (1 << (k % 8))]) + data[i + 1:]
    elif m == "bad_magic":
        other = [b"\x89PNG\r\n\x1a\n", b"II*\x00\x08\x00\x00\x00", b"\xff\xd8\xff\xe0", b"GIF89a\x00\x00"]
        data = other[k % len(other)] + data[8:]
    elif m == "huge_header":
        data = huge_png() if p["fmt"] == "png" else huge_tiff()
    elif m == "empty":
        data = b""
    elif m == "garbage":
        data = random.Random(k).randbytes(k % 4096)
    path.write_bytes(data)


# ------------------------------------------------------------------------------------------- running one

def run_case(p: dict[str, Any], root: Path) -> str:
    """Build the dataset of case ``p`` under ``root``, list and load it twice; return the outcome.

    Returns ``accepted``, ``accepted:invalid-pixels``, ``error:<Type>`` or ``problem:<kind>``; raises on a
    bug (any other exception, or two loads that differ).
    """
    from satcore.builtin.sources import FolderPairsParams, FolderPairsSource
    from satcore.errors import ComponentError

    ext = p["fmt"]
    ok = {**p, "mutation": "none"}
    if p["role"] == "image":
        write_image(root / "A" / f"x.{ext}", p)
        mutate(root / "A" / f"x.{ext}", p)
        write_image(root / "B" / f"x.{ext}", ok)
        write_image(root / "label" / "x.png", {**ok, "fmt": "png", "role": "label"})
    else:
        a = {**ok, "role": "image"}
        write_image(root / "A" / f"x.{ext}", a)
        write_image(root / "B" / f"x.{ext}", a)
        lab = {**p, "fmt": "png" if ext == "jpg" else ext}  # a JPEG label is lossy: not a case
        write_image(root / "label" / f"x.{lab['fmt']}", lab)
        mutate(root / "label" / f"x.{lab['fmt']}", lab)
    src = FolderPairsSource(FolderPairsParams(root=root, max_pixels=10_000_000))
    refs = list(src.list_items())
    problems = src.list_problems()
    if not refs:
        if not problems:
            raise AssertionError("nothing listed and no problem reported")
        return f"problem:{problems[0][1]}"
    try:
        first = src.load(refs[0])
    except ComponentError:
        try:
            src.load(refs[0])
        except ComponentError as exc:
            return f"error:{type(exc).__name__}"
        raise AssertionError("the first load failed, the second succeeded") from None
    second = src.load(refs[0])
    for x, y in zip([*first.images, first.label, first.valid], [*second.images, second.label, second.valid],
                    strict=True):
        xa = x.array if hasattr(x, "array") else x
        ya = y.array if hasattr(y, "array") else y
        if (xa is None) != (ya is None) or (xa is not None and not np.array_equal(xa, ya, equal_nan=True)):
            raise AssertionError("two loads of the same files gave different pixels (undefined data)")
    return "accepted:invalid-pixels" if first.invalid_pixels() is not None else "accepted"


def _child(p: dict[str, Any], mem_bytes: int, wfd: int) -> None:
    resource.setrlimit(resource.RLIMIT_AS, (mem_bytes, mem_bytes))
    try:
        with tempfile.TemporaryDirectory() as tmp:
            outcome = run_case(p, Path(tmp))
    except BaseException:  # noqa: BLE001 - the child reports everything it hit
        outcome = "BUG:" + traceback.format_exc(limit=6)
    os.write(wfd, outcome.encode("utf-8", "backslashreplace")[:60_000])
    os.close(wfd)
    os._exit(0)


def run_in_child(p: dict[str, Any], timeout_s: float = 5.0,
                 mem_bytes: int = 1 << 30) -> tuple[str, float, int]:
    """Run one case in a forked child under the limits; ``(outcome, seconds, peak RSS in KiB)``."""
    rfd, wfd = os.pipe()
    t0 = time.perf_counter()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os.close(rfd)
        _child(p, mem_bytes, wfd)
    os.close(wfd)
    deadline = t0 + timeout_s
    status, usage = 0, None
    while True:
        done, status, usage = os.wait4(pid, os.WNOHANG)
        if done:
            break
        if time.perf_counter() > deadline:
            os.kill(pid, signal.SIGKILL)
            _, status, usage = os.wait4(pid, 0)
            os.close(rfd)
            return f"BUG:timeout over {timeout_s} s", time.perf_counter() - t0, usage.ru_maxrss
        time.sleep(0.005)
    chunks = []
    while chunk := os.read(rfd, 65536):
        chunks.append(chunk)
    os.close(rfd)
    secs = time.perf_counter() - t0
    text = b"".join(chunks).decode("utf-8", "replace")
    if not text:
        sig = os.WTERMSIG(status) if os.WIFSIGNALED(status) else 0
        text = f"BUG:child died (status {status}, signal {sig})"
    return text, secs, usage.ru_maxrss if usage else 0


def main(argv: list[str] | None = None) -> int:
    """Run ``--cases`` random cases (seeded); print a summary; exit 1 when any case is a bug."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=500)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--timeout", type=float, default=5.0)
    ap.add_argument("--memory-mb", type=int, default=1024)
    ap.add_argument("--json", type=Path, help="write the summary here as JSON")
    args = ap.parse_args(argv)
    import rasterio  # noqa: F401 - imported once in the parent, shared by every forked child

    import satcore.builtin.sources  # noqa: F401

    rng = random.Random(args.seed)
    counts: dict[str, int] = {}
    bugs: list[tuple[dict[str, Any], str]] = []
    slowest, peak = (0.0, {}), 0
    t0 = time.perf_counter()
    for _ in range(args.cases):
        p = random_params(rng)
        outcome, secs, rss = run_in_child(p, args.timeout, args.memory_mb << 20)
        key = "BUG" if outcome.startswith("BUG") else outcome
        counts[key] = counts.get(key, 0) + 1
        if key == "BUG":
            bugs.append((p, outcome))
        if secs > slowest[0]:
            slowest = (secs, p)
        peak = max(peak, rss)
    total = time.perf_counter() - t0
    summary = {"cases": args.cases, "seed": args.seed, "outcomes": dict(sorted(counts.items())),
               "bugs": len(bugs), "wall_s": round(total, 1), "slowest_case_s": round(slowest[0], 3),
               "peak_rss_mb": round(peak / 1024, 1), "timeout_s": args.timeout,
               "memory_limit_mb": args.memory_mb,
               "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.system()} "
                          f"{platform.release()}, Python {platform.python_version()}"}
    print(json.dumps(summary, indent=2))
    for p, outcome in bugs[:10]:
        print(f"\nBUG in {json.dumps(p)}:\n{outcome}", file=sys.stderr)
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2) + "\n")
    return 1 if bugs else 0


if __name__ == "__main__":
    sys.exit(main())
