"""Hostile and unlucky specs (issue 9): exit 2 with one located sentence per problem, never a traceback.

Every case here was a traceback, a hang, gigabytes of memory, or a spec that validated and then failed at run
time, before the loader's bounds (``satcore.spec.yaml_lines``) and the checks at validation.
"""

from __future__ import annotations

import resource
import time
from pathlib import Path

import pytest

from satcore.cli import main
from satcore.errors import SpecError
from satcore.spec import load_pipeline
from satcore.spec.yaml_lines import MAX_DEPTH, MAX_INT_DIGITS, MAX_NODES

DATA = Path(__file__).resolve().parents[2] / "examples" / "data" / "levir-cd"
STEPS = "  - {id: cva, type: cva}\n"


def spec_text(source: str = "", steps: str = STEPS, output: str = "out", head: str = "") -> str:
    """The quickstart's shape, with the data by absolute path and pieces replaced."""
    return (f"version: 1\n{head}source: {{type: folder-pairs, root: {DATA}{source}}}\nsteps:\n{steps}"
            f"output: {{dir: {output}}}\n")


def validate(tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str | bytes,
             *sets: str) -> tuple[int, str]:
    """``satcore validate`` in-process: exit code and everything printed."""
    spec = tmp_path / "spec.yaml"
    spec.write_bytes(text if isinstance(text, bytes) else text.encode())
    args = ["validate", str(spec)]
    for s in sets:
        args += ["--set", s]
    with pytest.raises(SystemExit) as ei:
        main(args)
    out = capsys.readouterr()
    return int(ei.value.code or 0), out.out + out.err


def assert_clean(code: int, out: str, *words: str, line: int | None = None) -> None:
    assert code == 2, out
    assert "Traceback" not in out, out
    assert out.startswith("error: "), out
    for w in words:
        assert w in out, out
    if line is not None:
        assert f"spec.yaml:{line}" in out.splitlines()[0], out


def test_the_unchanged_spec_is_valid(tmp_path, capsys):
    code, out = validate(tmp_path, capsys, spec_text())
    assert code == 0 and "valid" in out, out


# 432 bytes: nine levels of nine aliases, 9**9 = 387 million strings once expanded
LAUGHS = "".join(f"{c}: &{c} [" + ",".join([f"*{p}"] * 9) + "]\n"
                 for p, c in zip("abcdefgh", "bcdefghi", strict=True))
LAUGHS = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n' + LAUGHS


def test_billion_laughs_is_refused_fast_and_small(tmp_path, capsys):
    assert len(LAUGHS) < 500
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    t0 = time.perf_counter()
    code, out = validate(tmp_path, capsys, LAUGHS)
    assert time.perf_counter() - t0 < 2
    assert_clean(code, out, f"more than {MAX_NODES:,} values once its aliases", line=6)
    assert (soft, hard) == resource.getrlimit(resource.RLIMIT_AS)


@pytest.mark.parametrize(("text", "words", "line"), [
    ("version: 1\nx: " + "[" * 5000 + "]" * 5000 + "\n", f"nested more than {MAX_DEPTH} levels", 2),
    ("version: 1\nx: " + "{a: " * 3000 + "1" + "}" * 3000 + "\n", f"nested more than {MAX_DEPTH} levels", 2),
    ("version: 1\nx: &a [1, *a]\n", "the alias *a is inside the node &a names (a cycle", 2),
    ("version: 1\nx: &a {k: *a}\n", "the alias *a is inside the node &a names (a cycle", 2),
    # a chain of aliases, each shallow, nests deeper than the limit once expanded
    ("version: 1\na0: &a0 [1]\n" + "".join(f"a{i}: &a{i} [*a{i - 1}]\n" for i in range(1, 70)),
     f"more than {MAX_DEPTH} levels deep", None),
    ("version: 1\nseed: " + "9" * (MAX_INT_DIGITS + 1) + "\n", f"more than {MAX_INT_DIGITS} digits", 2),
    ("version: 1\nseed: 0x" + "f" * 4000 + "\n", f"more than {MAX_INT_DIGITS} digits", 2),
    ("version: 1\nwhen: 2024-13-45\n", "is not a valid timestamp", 2),
    ("version: 1\nname: a\x07b\n", "U+0007 is not allowed", 2),
])
def test_yaml_bounds(tmp_path, capsys, text, words, line):
    code, out = validate(tmp_path, capsys, text)
    assert_clean(code, out, words, line=line)


def test_not_utf8_names_the_line_and_byte(tmp_path, capsys):
    code, out = validate(tmp_path, capsys, spec_text(head="name: caf\xe9\n").encode("latin-1"))
    assert_clean(code, out, "spec.yaml:2: not UTF-8: byte 0xe9 at column 10", "save the file as UTF-8")


def test_spec_path_that_is_a_folder_or_too_long(tmp_path, capsys):
    with pytest.raises(SystemExit) as ei:
        main(["validate", str(tmp_path)])
    out = capsys.readouterr().err
    assert ei.value.code == 2 and "is a directory" in out and "Traceback" not in out, out  # click's check
    for arg, words in ((tmp_path, "is a folder, not a spec file"),  # the API, without click in front
                       (tmp_path / ("x" * 300), "cannot read the spec file: File name too long"),
                       (tmp_path / "none.yaml", "spec file does not exist")):
        with pytest.raises(SpecError, match=words):
            load_pipeline(arg)


@pytest.mark.parametrize(("value", "words"), [
    ("abc", "steps[0].params_version: expected 1 (the params versions 'cva' knows), got 'abc'"),
    ("1.5", "got 1.5"),
    ("true", "got True"),
    ("7", "got 7; a newer satcore or plugin wrote it"),
])
def test_params_version_must_be_a_known_integer(tmp_path, capsys, value, words):
    code, out = validate(tmp_path, capsys, spec_text(steps=f"  - {{type: cva, params_version: {value}}}\n"))
    assert_clean(code, out, words, line=4)


def test_nan_and_inf_in_plugin_params(tmp_path, capsys):
    code, out = validate(tmp_path, capsys, spec_text(steps="  - {type: cva, threshold: .nan}\n"))
    assert_clean(code, out, "steps[0].threshold: expected 'otsu' or a finite number, got nan", line=4)
    code, out = validate(tmp_path, capsys, spec_text(steps="  - {type: cva, threshold: -.inf}\n"))
    assert_clean(code, out, "a finite number, got -inf", line=4)


def test_over_long_paths_and_nul_bytes_are_spec_errors(tmp_path, capsys):
    code, out = validate(tmp_path, capsys, spec_text(output="x" * 300))
    assert_clean(code, out, "output.dir: the path is too long", line=5)
    code, out = validate(tmp_path, capsys, spec_text(source=", list: " + "d/" * 2100 + "f"))
    assert_clean(code, out, "source.list: the path is too long", line=2)
    code, out = validate(tmp_path, capsys, spec_text(output='"runs/a\\0b"'))
    assert_clean(code, out, "output.dir: the path contains a NUL byte", line=5)


def test_invalid_tile_pattern_fails_validation(tmp_path, capsys):
    code, out = validate(tmp_path, capsys, spec_text(source=", tile_pattern: '(['"))
    assert_clean(code, out, "source.tile_pattern: not a valid regular expression", line=2)
    text = spec_text().replace(f"folder-pairs, root: {DATA}", f"geotiff-series, root: {tmp_path}, "
                               "date_pattern: '(?P<date>'")
    code, out = validate(tmp_path, capsys, text)  # (cva reads no series: a second problem)
    assert_clean(code, out, "spec.yaml:2 source.date_pattern: not a valid regular expression")


def test_list_or_manifest_that_is_a_folder(tmp_path, capsys):
    (tmp_path / "d").mkdir()
    code, out = validate(tmp_path, capsys, spec_text(source=f", list: {tmp_path / 'd'}"))
    assert_clean(code, out, "source.list: list file", "is a folder: give the file itself", line=2)
    text = spec_text().replace(f"folder-pairs, root: {DATA}", f"manifest, path: {tmp_path / 'd'}")
    code, out = validate(tmp_path, capsys, text)
    assert_clean(code, out, "source.path: manifest", "is a folder", line=2)


@pytest.mark.parametrize(("value", "words"), [
    ("&a [*a]", "the alias *a is inside the node &a names"),
    ("[" * 100 + "]" * 100, f"nested more than {MAX_DEPTH} levels"),
    ("9" * 5000, f"more than {MAX_INT_DIGITS} digits"),
])
def test_set_values_within_the_same_bounds(tmp_path, capsys, value, words):
    code, out = validate(tmp_path, capsys, spec_text(), f"steps.cva.threshold={value}")
    assert_clean(code, out, "--set steps.cva.threshold=", words)


@pytest.mark.parametrize("key", ["steps.٣.threshold", "steps." + "9" * 5000 + ".threshold"])
def test_set_odd_indexes(tmp_path, capsys, key):
    code, out = validate(tmp_path, capsys, spec_text(), f"{key}=0.5")
    assert_clean(code, out, "no step with id")


def test_duplicate_keys_still_errors_and_input_lists_valid(tmp_path, capsys):
    code, out = validate(tmp_path, capsys, spec_text() + "seed: 1\nseed: 2\n")
    assert_clean(code, out, "duplicate key 'seed' (first on line 6)", line=7)
    code, out = validate(tmp_path, capsys, spec_text(steps="  - {type: cva, input: [source]}\n"))
    assert code == 0, out


def test_long_values_and_odd_keys_stay_one_short_line(tmp_path, capsys):
    code, out = validate(tmp_path, capsys, spec_text(head="name: [1]\nseed: " + "x" * 10000 + "\n"))
    assert_clean(code, out)
    assert all(len(line) < 300 for line in out.splitlines()), out
    code, out = validate(tmp_path, capsys, spec_text(head='"a\\nb": 1\n'))
    assert_clean(code, out, "'a\\nb': unknown key")
    assert len(out.strip().splitlines()) == 1, out


@pytest.mark.parametrize(("args", "words"), [
    (["validate", "a\0b.yaml"], "Invalid value for 'SPEC': the path contains a NUL byte"),
    (["validate", "x" * 300], "Invalid value for 'SPEC': the path is too long"),
    (["run", "s.yaml", "--output", "o\0ut"], "Invalid value for '--output': the path contains a NUL byte"),
    (["run", "s.yaml", "--output", "d/" * 2100], "Invalid value for '--output': the path is too long"),
])
def test_cli_paths_with_nul_or_too_long(capsys, args, words):
    with pytest.raises(SystemExit) as ei:
        main(args)
    out = capsys.readouterr().err
    assert ei.value.code == 2 and words in out and "Traceback" not in out, out


def test_environment_oserror_is_one_line_exit_1(tmp_path, capsys, monkeypatch):
    """A full disk or a refused write: `error: <why>: <file>`, exit 1 (a traceback with --debug)."""
    import satcore.spec

    def full(*a, **k):
        raise OSError(28, "No space left on device", str(tmp_path / "out" / "results.parquet"))

    monkeypatch.setattr(satcore.spec, "load_pipeline", full)
    spec = tmp_path / "spec.yaml"
    spec.write_text(spec_text())
    with pytest.raises(SystemExit) as ei:
        main(["validate", str(spec)])
    out = capsys.readouterr().err
    assert ei.value.code == 1, out
    assert out == f"error: No space left on device: {tmp_path / 'out' / 'results.parquet'}\n"


def test_model_value_too_long_for_a_file_name(tmp_path, capsys):
    """Found by the fuzzer (seed 3): `model:` is looked up next to the spec, and a long name made OSError."""
    steps = "  - {type: cva, model: " + "x" * 300 + "}\n"
    code, out = validate(tmp_path, capsys, spec_text(steps=steps))
    assert_clean(code, out, "spec.yaml:4 steps[0].model: unknown model alias 'xxxxxxxx")  # (cva has no model)
    assert all(len(line) < 400 for line in out.splitlines()), out
    code, out = validate(tmp_path, capsys, spec_text(), "steps.cva.threshold=" + "y" * 300)
    assert_clean(code, out, "--set steps.cva.threshold=yyyy")
    assert all(len(line) < 400 for line in out.splitlines()), out
