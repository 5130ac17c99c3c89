"""Fuzz ``satcore validate`` with hostile and broken specs; count how each case ends.

    python tools/fuzz_specs.py                      # 2,000 cases, 2 workers, seed 0
    python tools/fuzz_specs.py --cases 20000 --workers 4 --seed 7 --keep findings/

Each case is one spec file (and maybe ``--set`` values) made from the example specs (``examples/*.yaml``,
``tests/conf/*.yaml``) by one of five generators, chosen in turn:

- ``mutate``: structural mutations of a parsed spec: delete, duplicate or retype a key, swap two values,
  add a key, put a random scalar (huge, NaN, odd text, a path with NUL) anywhere;
- ``bytes``: random bytes, or the spec's text with bytes flipped, inserted, cut or truncated;
- ``tags``: YAML tags (``!!binary``, ``!!set``, ``!!timestamp``, ``!!python/object``, unknown ``!x``),
  anchors, aliases (cycles, "billion laughs" of random breadth and depth), merge keys, deep nesting;
- ``set``: a valid spec with random ``--set KEY=VALUE`` (keys along the spec's paths, YAML values);
- ``text``: line-level edits (indentation, a line repeated, lines swapped, a colon or quote removed).

Every case runs ``satcore.cli.main(["validate", ...])`` in a child forked from a warm parent (plugins
loaded once), with ``RLIMIT_AS`` capped (default 1 GiB more than the parent's address space) and a wall
clock limit (default 5 s). Outcomes: ``accepted`` (exit 0), ``clean`` (exit 2, no traceback), ``traceback``
(any traceback, or another exit code), ``hang`` (killed at the time limit), ``memory`` (``MemoryError`` or
killed by a signal). Cases are reproducible from ``--seed`` and their number; ``--keep DIR`` writes every
non-clean case there (the spec, its ``--set`` values, and the output).
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import io
import json
import os
import platform
import random
import resource
import signal
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
SPEC_FILES = sorted([*ROOT.glob("examples/*.yaml"), *ROOT.glob("tests/conf/*.yaml")])
KINDS = ("mutate", "bytes", "tags", "set", "text")


@dataclass
class Case:
    """One fuzz input: the spec file's bytes and ``--set`` values."""

    kind: str
    number: int
    text: bytes
    sets: list[str] = field(default_factory=list)


def base_specs(out_dir: Path | None = None) -> list[dict[str, Any]]:
    """The example specs as data, their data paths made absolute and ``output.dir`` inside ``out_dir``."""
    out: list[dict[str, Any]] = []
    for f in SPEC_FILES:
        data = yaml.safe_load(f.read_text())
        src = data.get("source", {})
        for key in ("root", "path"):
            if isinstance(src.get(key), str):
                src[key] = str((f.parent / src[key]).resolve())
        data["output"]["dir"] = str((out_dir or Path(tempfile.gettempdir())) / f"fuzz-{f.stem}")
        out.append(data)
    return out


# --- values -------------------------------------------------------------------------------------------------

ODD_TEXT = ["", " ", "\t", "a\0b", "../../etc", "/", "~", "${HOME}", "${UNSET_SATCORE_FUZZ}", "${X:-d}",
            "é" * 300, "\ud800", "x" * 5000, "a/" * 3000, "\n", "'", '"', "*a", "&a", "- x", ": ", "{", "[",
            "(", "(?P<tile>", "[a-", "\\", "\u202e", "cva", "source", "steps", "null", "NaN", "1e999",
            "0x" + "f" * 3000, "2024-02-30", "..", ".", "*", "?*"]
ODD_NUMBERS: list[Any] = [0, -1, 1, 2, 10**30, -(10**30), 2**63, 10**4000, 0.5, -0.0, 1e308, 1e-320,
                          float("nan"), float("inf"), float("-inf"), True, False, None]


def random_scalar(rng: random.Random) -> Any:
    """A scalar that is likely to be wrong somewhere: huge, non-finite, empty, odd text."""
    r = rng.random()
    if r < 0.35:
        return rng.choice(ODD_NUMBERS)
    if r < 0.7:
        return rng.choice(ODD_TEXT)
    if r < 0.85:
        return "".join(chr(rng.randrange(1, 0x3000)) for _ in range(rng.randrange(0, 12)))
    return rng.choice([rng.randrange(-10**6, 10**6), rng.uniform(-1e6, 1e6), rng.random()])


def random_value(rng: random.Random, depth: int = 0) -> Any:
    """A random scalar, list or mapping (nested a little)."""
    r = rng.random()
    if depth > 2 or r < 0.6:
        return random_scalar(rng)
    if r < 0.8:
        return [random_value(rng, depth + 1) for _ in range(rng.randrange(0, 4))]
    return {str(random_scalar(rng))[:20]: random_value(rng, depth + 1) for _ in range(rng.randrange(0, 4))}


def _paths(data: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every key path in ``data`` (mapping keys and list indexes)."""
    out = [prefix]
    if isinstance(data, dict):
        for k, v in data.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(data, list):
        for i, v in enumerate(data):
            out += _paths(v, (*prefix, i))
    return out


def _get(data: Any, path: tuple[Any, ...]) -> Any:
    for p in path:
        data = data[p]
    return data


def mutate(rng: random.Random, base: dict[str, Any], n: int | None = None) -> dict[str, Any]:
    """``base`` with 1–4 structural mutations."""
    data = copy.deepcopy(base)
    for _ in range(n or rng.randint(1, 4)):
        paths = [p for p in _paths(data) if p]
        if not paths:
            break
        path = rng.choice(paths)
        parent, key = _get(data, path[:-1]), path[-1]
        op = rng.choice(("delete", "retype", "swap", "add", "scalar", "duplicate"))
        if op == "delete":
            del parent[key]
        elif op in ("retype", "scalar"):
            parent[key] = random_value(rng) if op == "retype" else random_scalar(rng)
        elif op == "swap":
            other = rng.choice(paths)
            if other[:len(path)] != path and path[:len(other)] != other:
                oparent, okey = _get(data, other[:-1]), other[-1]
                parent[key], oparent[okey] = oparent[okey], parent[key]
        elif op == "add" and isinstance(parent, dict):
            new_key = rng.choice([*map(str, parent), "params_version", "input", "id", "type", "x",
                                  "tile_pattern", "list", "threshold", "split", "by", "bands"])
            parent[new_key] = random_value(rng)
        elif op == "duplicate" and isinstance(parent, list):
            parent.insert(rng.randrange(len(parent) + 1), copy.deepcopy(parent[key]))
        elif isinstance(parent, dict):  # duplicate a key under another name (a copy of a step, etc.)
            parent[f"{key}2"] = copy.deepcopy(parent[key])
    return data


def dump(data: Any, rng: random.Random) -> bytes:
    """YAML text of ``data``, in block or flow style."""
    try:
        text = yaml.safe_dump(data, default_flow_style=rng.choice([None, True, False]), allow_unicode=True,
                              sort_keys=False, width=rng.choice([80, 10**6]))
    except yaml.YAMLError:  # a value safe_dump cannot write (it can write everything random_value makes)
        text = json.dumps(data, default=str)
    return text.encode("utf-8", "surrogatepass")


def bytes_case(rng: random.Random, base_text: bytes) -> bytes:
    """Random bytes, or the spec's bytes flipped, inserted, cut or truncated."""
    if rng.random() < 0.25:
        return bytes(rng.randrange(256) for _ in range(rng.randrange(0, 600)))
    b = bytearray(base_text)
    for _ in range(rng.randint(1, 8)):
        op = rng.random()
        i = rng.randrange(len(b) + 1)
        if op < 0.3 and b:
            b[min(i, len(b) - 1)] = rng.randrange(256)
        elif op < 0.6:
            b[i:i] = bytes(rng.choice([[0], [0xff, 0xfe], [0xc3], [0x09], [0x0a], [0x3a], [0x26, 0x61],
                                       [0x2a, 0x61], [0x21], [0x7b], [0x5b], [0x22], [0xef, 0xbb, 0xbf]]))
        elif op < 0.8:
            del b[i:i + rng.randrange(1, 20)]
        else:
            del b[i:]
    return bytes(b)


def laughs(rng: random.Random) -> str:
    """A "billion laughs" document of random breadth and depth, maybe inside a spec key."""
    width, depth = rng.randint(2, 12), rng.randint(3, 12)
    lines = ["l0: &l0 [" + ",".join(['"lol"'] * width) + "]"]
    for i in range(1, depth):
        lines.append(f"l{i}: &l{i} [" + ",".join([f"*l{i - 1}"] * width) + "]")
    return "\n".join(lines) + "\n"


def tags_case(rng: random.Random, base_text: str) -> bytes:
    """YAML tags, anchors and aliases, merge keys and deep nesting, put into a spec."""
    choices: list[Callable[[], str]] = [
        lambda: base_text + laughs(rng),
        lambda: laughs(rng) + base_text,
        lambda: base_text.replace("seed: ", "seed: &s [*s] #", 1),
        lambda: base_text + "x: &a [1, *a]\n",
        lambda: base_text + "x: &a {k: *a}\n",
        lambda: base_text + "y: *undefined\n",
        lambda: base_text + "steps2: &s [{type: cva}]\nz: {<<: *s}\n",
        lambda: "base: &b {version: 1}\n" + base_text + "other: {<<: *b, <<: *b}\n",
        lambda: base_text.replace("version: 1", "version: !!binary aGVsbG8=", 1),
        lambda: base_text.replace("version: 1", "version: !!python/object:os.system {}", 1),
        lambda: base_text.replace("version: 1", "version: !!python/name:os.system", 1),
        lambda: base_text.replace("version: 1", "version: !foo 1", 1),
        lambda: base_text.replace("version: 1", "version: !!set {1, 2}", 1),
        lambda: base_text.replace("version: 1", "version: !!timestamp 2024-13-45", 1),
        lambda: base_text.replace("version: 1", "version: !!int " + rng.choice(["1_0", "0b1", "1:00"]), 1),
        lambda: base_text.replace("version: 1", "version: !!float .nan", 1),
        lambda: base_text.replace("version: 1", "version: !!omap [{a: 1}, {a: 2}]", 1),
        lambda: base_text.replace("version: 1", "version: !!pairs [{a: 1}]", 1),
        lambda: base_text + "? [a, b]\n: 1\n",
        lambda: base_text + "? {a: 1}\n: 1\n",
        lambda: base_text + "x: " + "[" * rng.randint(30, 3000) + "]" * rng.randint(0, 3000) + "\n",
        lambda: base_text + "x: " + "{a: " * rng.randint(30, 2000) + "1" + "}" * rng.randint(0, 2000) + "\n",
        lambda: base_text + "x:\n" + "".join("  " * i + "- \n" for i in range(rng.randint(10, 300))),
        lambda: base_text + "%YAML 1.1\n---\nx: 1\n",
        lambda: "%TAG ! tag:yaml.org,2002:python/\n---\n" + base_text,
        lambda: base_text + "---\nversion: 2\n",
        lambda: base_text.replace("version: 1", f"version: {rng.choice(['1' * 5000, '0x' + 'f' * 5000])}", 1),
        lambda: base_text.replace("seed: 0", f"seed: {rng.choice(['1' * 5000, '0b' + '1' * 20000])}", 1),
    ]
    return rng.choice(choices)().encode("utf-8", "surrogatepass")


def text_case(rng: random.Random, base_text: str) -> bytes:
    """Line-level edits: indentation, repeated, swapped or cut lines, a colon or quote removed."""
    lines = base_text.splitlines()
    for _ in range(rng.randint(1, 4)):
        if not lines:
            break
        i = rng.randrange(len(lines))
        op = rng.randrange(7)
        if op == 0:
            lines[i] = " " * rng.randrange(1, 5) + lines[i]
        elif op == 1:
            lines.insert(i, lines[i])
        elif op == 2:
            j = rng.randrange(len(lines))
            lines[i], lines[j] = lines[j], lines[i]
        elif op == 3:
            lines[i] = lines[i].replace(":", "", 1)
        elif op == 4:
            lines[i] = lines[i] + rng.choice(["'", '"', "{", "[", "]", "}", ",", " #", ": x", "\t"])
        elif op == 5:
            del lines[i]
        else:
            lines[i] = lines[i].lstrip()
    return ("\n".join(lines) + "\n").encode("utf-8", "surrogatepass")


def set_values(rng: random.Random, base: dict[str, Any]) -> list[str]:
    """1–3 ``--set KEY=VALUE`` strings: keys along the spec (steps by id or index), odd YAML values."""
    out = []
    for _ in range(rng.randint(1, 3)):
        path = rng.choice([p for p in _paths(base) if p] or [("x",)])
        parts = []
        for k, p in enumerate(path):
            if k == 1 and path[0] == "steps" and isinstance(p, int) and rng.random() < 0.6:
                step = base["steps"][p]
                parts.append(str(step.get("id") or step.get("type")) if isinstance(step, dict) else str(p))
            else:
                parts.append(str(p))
        if rng.random() < 0.3:
            parts.append(rng.choice(["x", "threshold", "0", "-1", "99", "٣", "", "params_version"]))
        value = rng.choice([
            lambda: json.dumps(random_value(rng), default=str),
            lambda: str(random_scalar(rng)),
            lambda: rng.choice(["&a [*a]", "&a {k: *a}", "*a", "!!python/object:os.system {}", "[" * 200,
                                "[" * 100 + "]" * 100, "9" * 5000, "0x" + "f" * 5000, ".nan", "-.inf", "a: b",
                                "{a: 1", "!!binary x", "2024-13-45", "\0", "'", "~", "", "!!set {a}"]),
        ])()
        out.append(f"{'.'.join(parts)}={value}")
    return out


def make_case(number: int, seed: int, bases: list[dict[str, Any]]) -> Case:
    """Case ``number`` of the run with ``seed`` (the same pair always gives the same case)."""
    rng = random.Random(f"{seed}:{number}")
    kind = KINDS[number % len(KINDS)]
    base = rng.choice(bases)
    base_text = yaml.safe_dump(base, sort_keys=False, default_flow_style=rng.choice([None, False]))
    if kind == "mutate":
        return Case(kind, number, dump(mutate(rng, base), rng))
    if kind == "bytes":
        return Case(kind, number, bytes_case(rng, base_text.encode()))
    if kind == "tags":
        return Case(kind, number, tags_case(rng, base_text))
    if kind == "set":
        return Case(kind, number, base_text.encode(), set_values(rng, base))
    return Case(kind, number, text_case(rng, base_text))


# --- running ------------------------------------------------------------------------------------------------

def validate_in_process(spec: Path, sets: list[str]) -> tuple[int, str]:
    """``satcore validate`` as the CLI runs it: exit code and everything printed (a traceback included)."""
    import traceback

    from satcore.cli import main

    out = io.StringIO()
    args = ["validate", str(spec)]
    for s in sets:
        args += ["--set", s]
    code = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        try:
            main(args)
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        except MemoryError:
            code = 137
            out.write("MemoryError\n")
        except BaseException:  # what the interpreter would print for an escaped exception
            traceback.print_exc(file=out)
            code = 1
    return code, out.getvalue()


def classify(code: int, output: str) -> str:
    """``accepted``, ``clean``, ``traceback`` or ``memory`` from an exit code and the output."""
    if "MemoryError" in output or code == 137:
        return "memory"
    if "Traceback" in output:
        return "traceback"
    return {0: "accepted", 2: "clean"}.get(code, "traceback")


def _vm_bytes() -> int:
    """This process's address space now (Linux ``/proc``; 0 elsewhere)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


@dataclass
class Result:
    """How one case ended."""

    case: Case
    outcome: str
    seconds: float
    maxrss_kib: int
    output: str


def run_cases(cases: list[Case], workers: int, timeout: float, mem_bytes: int, tmp: Path,
              on_result: Callable[[Result], None]) -> None:
    """Run each case in a forked child, ``workers`` at a time, with the limits."""
    pending = list(reversed(cases))
    running: dict[int, tuple[Case, float, Path]] = {}
    while pending or running:
        while pending and len(running) < workers:
            case = pending.pop()
            folder = tmp / f"case-{case.number}"
            folder.mkdir()
            spec = folder / "spec.yaml"
            spec.write_bytes(case.text)
            pid = os.fork()
            if pid == 0:  # the child: limits, validate, output to a file, exit with its code
                code = 70
                try:
                    resource.setrlimit(resource.RLIMIT_AS, (mem_bytes, mem_bytes))
                    code, output = validate_in_process(spec, case.sets)
                    (folder / "output.txt").write_text(output, errors="backslashreplace")
                finally:
                    os._exit(code)
            running[pid] = (case, time.perf_counter(), folder)
        time.sleep(0.002)
        for pid, (case, t0, folder) in list(running.items()):
            done, status, usage = os.wait4(pid, os.WNOHANG)
            elapsed = time.perf_counter() - t0
            if done == 0:
                if elapsed > timeout:
                    os.kill(pid, signal.SIGKILL)
                    _, status, usage = os.wait4(pid, 0)
                    del running[pid]
                    on_result(Result(case, "hang", elapsed, usage.ru_maxrss, ""))
                continue
            del running[pid]
            out_file = folder / "output.txt"
            output = out_file.read_text() if out_file.exists() else ""
            if os.WIFSIGNALED(status):
                outcome = "memory"
                output += f"\nkilled by signal {os.WTERMSIG(status)}"
            else:
                outcome = classify(os.WEXITSTATUS(status), output)
            on_result(Result(case, outcome, elapsed, usage.ru_maxrss, output))


def warm_up(bases: list[dict[str, Any]], tmp: Path) -> None:
    """Load plugins and what every example's steps import (scikit-learn for the tabular ones) once, in the
    parent, so each forked child starts warm and the time limit measures satcore, not imports."""
    for i, base in enumerate(bases):
        spec = tmp / f"warm-{i}.yaml"
        spec.write_text(yaml.safe_dump(base))
        code, output = validate_in_process(spec, [])
        if code != 0:
            raise SystemExit(f"the unchanged example spec {SPEC_FILES[i]} does not validate:\n{output}")


def main(argv: list[str] | None = None) -> int:
    """Generate, run and count; exit 1 when any case ended in a traceback, hang or memory blow-up."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cases", type=int, default=2000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--timeout", type=float, default=5.0, help="seconds per case")
    ap.add_argument("--memory-mib", type=int, default=1024,
                    help="address space each child may add to the warm parent's (MiB)")
    ap.add_argument("--keep", type=Path, help="write every case that was not accepted or clean here")
    ap.add_argument("--json", type=Path, help="write the figures here as JSON")
    args = ap.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="satcore-fuzz-") as tmp_name:
        tmp = Path(tmp_name)
        bases = base_specs(tmp / "runs")
        warm_up(bases, tmp)
        base_vm = _vm_bytes()
        mem = base_vm + args.memory_mib * 1024 * 1024
        cases = [make_case(n, args.seed, bases) for n in range(args.cases)]
        counts: Counter[str] = Counter()
        by_kind: dict[str, Counter[str]] = {k: Counter() for k in KINDS}
        bad: list[Result] = []
        slowest = 0.0
        peak = 0
        load_before = os.getloadavg()
        t0 = time.perf_counter()

        def record(r: Result) -> None:
            nonlocal slowest, peak
            counts[r.outcome] += 1
            by_kind[r.case.kind][r.outcome] += 1
            slowest, peak = max(slowest, r.seconds), max(peak, r.maxrss_kib)
            if r.outcome not in ("accepted", "clean"):
                bad.append(r)
                last = [x for x in r.output.strip().splitlines() if x.strip()][-1:] or [r.outcome]
                print(f"case {r.case.number} ({r.case.kind}): {r.outcome}: {last[0][:160]}", file=sys.stderr)
            done = sum(counts.values())
            if done % 250 == 0:
                print(f"{done}/{len(cases)} {dict(counts)}", file=sys.stderr)

        run_cases(cases, args.workers, args.timeout, mem, tmp, record)
        wall = time.perf_counter() - t0
        figures = {
            "cases": len(cases), "seed": args.seed, "workers": args.workers, "outcomes": dict(counts),
            "by_kind": {k: dict(v) for k, v in by_kind.items()}, "wall_s": round(wall, 1),
            "cases_per_s": round(len(cases) / wall, 1), "slowest_case_s": round(slowest, 2),
            "peak_child_rss_mib": round(peak / 1024, 1), "address_space_limit_mib": round(mem / 2**20),
            "timeout_s": args.timeout, "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, "
            f"{platform.system()} {platform.release()}, Python {platform.python_version()}",
            "load_average_before": [round(x, 2) for x in load_before],
            "load_average_after": [round(x, 2) for x in os.getloadavg()],
        }
        print(json.dumps(figures, indent=2))
        if args.json:
            args.json.write_text(json.dumps(figures, indent=2) + "\n")
        if args.keep and bad:
            args.keep.mkdir(parents=True, exist_ok=True)
            for r in bad:
                stem = args.keep / f"{r.case.number:06d}-{r.case.kind}-{r.outcome}"
                stem.with_suffix(".yaml").write_bytes(r.case.text)
                sets = "".join(f"--set {s}\n" for s in r.case.sets)
                stem.with_suffix(".txt").write_text(sets + "\n" + r.output)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
