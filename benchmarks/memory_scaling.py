"""Peak RSS of `satcore run` on the LEVIR sample vs the sample repeated 10× (distinct item ids).

Run:  python benchmarks/memory_scaling.py [--repeat 10]
Each run is a fresh subprocess; its peak RSS comes from os.wait4 (the kernel's ru_maxrss of that process).
Requirement: the 10× run's peak stays within 1.2× of the 1× run's (streaming, bounded memory).
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LEVIR = REPO / "examples" / "data" / "levir-cd"


def manifest(path: Path, repeat: int) -> int:
    """A CSV listing each labelled LEVIR pair `repeat` times under distinct ids."""
    stems = sorted(p.stem for p in (LEVIR / "label").glob("*.png"))
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["item_id", "a", "b", "label", "tile"])
        for k in range(repeat):
            for s in stems:
                w.writerow(
                    [
                        f"r{k:03d}/{s}",
                        LEVIR / "A" / f"{s}.png",
                        LEVIR / "B" / f"{s}.png",
                        LEVIR / "label" / f"{s}.png",
                        f"r{k:03d}/{s}",
                    ]
                )
    return repeat * len(stems)


def run(work: Path, repeat: int, steps: str, report: bool) -> tuple[float, float, int]:
    m = work / f"items-{repeat}.csv"
    n = manifest(m, repeat)
    spec = work / f"spec-{repeat}.yaml"
    spec.write_text(
        f"version: 1\nsource: {{type: manifest, path: {m}}}\nsteps: [{steps}]\n"
        f"output: {{dir: {work / f'out-{repeat}'}, maps: true, report: {str(report).lower()}}}\n"
        "evaluate: {bootstrap: 200, split: {test: 0.3, group_by: tile}}\nexecution: {batch_size: 4}\n"
    )
    t = time.perf_counter()
    p = subprocess.Popen(
        [sys.executable, "-m", "satcore.cli", "run", str(spec), "--quiet"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    _pid, status, usage = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t
    if status != 0:
        raise SystemExit(f"run failed ({status}): {p.stderr.read().decode()[-2000:]}")
    p.stderr.close()
    return usage.ru_maxrss / 1024, wall, n  # ru_maxrss is in KiB on Linux


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=10)
    ap.add_argument("--steps", default="{id: cva, type: cva}")
    ap.add_argument("--no-report", action="store_true", help="skip report.html")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="satcore-mem-"))
    try:
        rows = [run(work, r, args.steps, not args.no_report) for r in (1, args.repeat)]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"steps: [{args.steps}]  report: {not args.no_report}")
    print(f"{'run':14} {'items':>6} {'peak RSS MiB':>13} {'wall s':>7}")
    for (rss, wall, n), name in zip(rows, ("sample ×1", f"sample ×{args.repeat}"), strict=True):
        print(f"{name:14} {n:6d} {rss:13.1f} {wall:7.1f}")
    ratio = rows[1][0] / rows[0][0]
    print(f"ratio ×{args.repeat}/×1: {ratio:.3f} (must be ≤ 1.2): {'PASS' if ratio <= 1.2 else 'FAIL'}")


if __name__ == "__main__":
    main()
