"""Fuzzing ``satcore validate`` (issue 9): every spec is accepted or a clean exit 2, never a traceback.

A bounded, derandomised run of ``tools/fuzz_specs.py``'s generators (structural mutations of the
example specs, bytes, YAML tags and aliases, ``--set`` values, line edits), in-process, plus hypothesis's own
strategies for bytes, YAML data and ``--set`` values. The script runs any number of cases, each in a child
with time and memory limits; docs/reliability.md has its figures.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

SCRIPT = Path(__file__).resolve().parents[2] / "tools" / "fuzz_specs.py"
_spec = importlib.util.spec_from_file_location("satcore_fuzz_specs", SCRIPT)
assert _spec is not None and _spec.loader is not None
fuzz = importlib.util.module_from_spec(_spec)
sys.modules["satcore_fuzz_specs"] = fuzz  # dataclasses look their module up
_spec.loader.exec_module(fuzz)

FUZZ = settings(deadline=None, derandomize=True, database=None, print_blob=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


@pytest.fixture(scope="module")
def bases(workdir: Path) -> list[dict[str, Any]]:
    found = fuzz.base_specs(workdir / "runs")
    # the example specs validate unchanged (else every case would be an error for the wrong reason)
    for i, base in enumerate(found):
        spec = workdir / f"base-{i}.yaml"
        spec.write_text(yaml.safe_dump(base))
        code, out = fuzz.validate_in_process(spec, [])
        assert code == 0, out
    return found


def check(workdir: Path, text: bytes, sets: list[str] | None = None) -> str:
    spec = workdir / "case.yaml"
    spec.write_bytes(text)
    code, out = fuzz.validate_in_process(spec, sets or [])
    outcome = fuzz.classify(code, out)
    assert outcome in ("accepted", "clean"), f"{outcome}\n--- spec:\n{text[:2000]!r}\n--- sets: {sets}\n{out}"
    if outcome == "clean":
        assert out.startswith("error: "), out
    return outcome


def test_classify_can_fail():
    assert fuzz.classify(1, "Traceback (most recent call last):\n  ...\nValueError: x") == "traceback"
    assert fuzz.classify(2, "error: spec.yaml:3 x: y") == "clean"
    assert fuzz.classify(0, "spec.yaml: valid.") == "accepted"
    assert fuzz.classify(137, "") == "memory"


@settings(FUZZ, max_examples=300)
@given(number=st.integers(0, 10**9), seed=st.integers(0, 2**16))
def test_generated_cases(workdir, bases, number, seed):
    case = fuzz.make_case(number, seed, bases)
    check(workdir, case.text, case.sets)


@settings(FUZZ, max_examples=100)
@given(data=st.binary(max_size=600))
def test_random_bytes(workdir, data):
    check(workdir, data)


_scalars = (st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
            | st.sampled_from(["source", "cva", "folder-pairs", "steps", "1", "&a", "*a", "${X}", "\0"]))
_yaml_data = st.recursive(_scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
    st.text(max_size=10) | st.sampled_from(["version", "source", "steps", "type", "input", "output", "dir",
                                            "evaluate", "split", "params_version", "threshold"]),
    inner, max_size=4), max_leaves=20)


@settings(FUZZ, max_examples=80)
@given(key=st.sampled_from(["version", "name", "seed", "source", "steps", "evaluate", "output", "execution"]),
       value=_yaml_data, index=st.integers(0, 5))
def test_any_yaml_value_under_any_top_key(workdir, bases, key, value, index):
    data = dict(bases[index % len(bases)])
    data[key] = value
    check(workdir, yaml.safe_dump(data, allow_unicode=True).encode("utf-8", "surrogatepass"))


@settings(FUZZ, max_examples=100)
@given(key=st.text(max_size=30) | st.sampled_from(["steps.cva.threshold", "steps.0.input", "output.dir",
                                                  "source.root", "evaluate.split", "steps.-1.type"]),
       value=st.text(max_size=40) | st.sampled_from(["&a [*a]", "*a", "!!python/object:os.system {}",
                                                      "9" * 5000, "[" * 200, ".nan", "{a: 1"]))
def test_set_values(workdir, bases, key, value):
    base = next(b for b in bases if any(s.get("id") == "cva" for s in b["steps"]))
    check(workdir, yaml.safe_dump(base).encode(), [f"{key}={value}"])
