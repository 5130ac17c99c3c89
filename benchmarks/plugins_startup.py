"""Startup time of `satcore plugins` beside `python -c pass` (median of N fresh processes each).

Run:  python benchmarks/plugins_startup.py [-n 20]
Target: `satcore plugins` median < 0.5 s (aim 0.35 s) with every first-party plugin installed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time


def time_cmd(cmd: list[str], n: int) -> list[float]:
    out = []
    subprocess.run(cmd, capture_output=True, check=True)  # warm the file cache once
    for _ in range(n):
        t = time.perf_counter()
        subprocess.run(cmd, capture_output=True, check=True)
        out.append(time.perf_counter() - t)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=20, help="runs per command (>= 10)")
    args = ap.parse_args()
    satcore = shutil.which("satcore", path=os.path.dirname(sys.executable)) or shutil.which("satcore")
    cmds = {
        "python -c pass": [sys.executable, "-c", "pass"],
        "python -c 'import satcore'": [sys.executable, "-c", "import satcore"],
        # the floor for listing: every component class is a pydantic model and the plugins use numpy
        "python -c 'import numpy, pydantic'": [sys.executable, "-c", "import numpy, pydantic"],
        "satcore --help": [satcore, "--help"],
        "satcore plugins": [satcore, "plugins"],
    }
    plugins = subprocess.run([satcore, "plugins"], capture_output=True, text=True, check=True).stdout
    print("installed:\n" + "\n".join("  " + line for line in plugins.splitlines()))
    print(f"\n{'command':36} {'median s':>9} {'min s':>7} {'max s':>7}   (n={args.n})")
    res = {}
    for name, cmd in cmds.items():
        ts = time_cmd(cmd, args.n)
        res[name] = statistics.median(ts)
        print(f"{name:36} {res[name]:9.3f} {min(ts):7.3f} {max(ts):7.3f}")
    over = res["satcore plugins"] - res["python -c pass"]
    print(
        f"\nsatcore plugins over bare python: {over:.3f} s; target median < 0.5 s (aim 0.35 s): "
        + ("PASS" if res["satcore plugins"] < 0.5 else "FAIL")
    )


if __name__ == "__main__":
    main()
