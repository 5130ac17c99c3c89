"""YAML mistakes in plain words on the line where the fix goes; duplicate keys; NaN in the core's numbers."""

from __future__ import annotations

import pytest

from satcore.errors import SpecError
from satcore.spec import load_pipeline
from satcore.spec.yaml_lines import load_yaml

GOOD = ("version: 1\nsource: {type: folder-pairs, root: data}\nsteps: [{type: test-diff}]\n"
        "output: {dir: out}\n")


@pytest.mark.parametrize(("text", "line", "words", "caret_col"), [
    ("version: 1\nsource:\n\ttype: x\n", 3, "a tab character; YAML indents with spaces only", 0),
    ("version: 1\nsource:\n    type: x\n  root: y\n", 4, "indentation does not fit the block", 2),
    ("version: 1\nsource:\n  type: x\n    root: y\n", 4, "indented more than line 3", 8),
    ("version: 1\nsteps: [a, b\noutput: {dir: x}\n", 2, "the [ opened here is not closed: add ]", 7),
    ("version: 1\noutput: {dir: x\nsteps: []\n", 2, "the { opened here is not closed: add }", 8),
    ('version: 1\nname: "abc\nsteps: []\n', 2, 'the quote " opened here is never closed', 6),
    ("version: 1\nsource\n  type: x\nsteps: []\n", 2, "this line has no colon: write `key: value`", 0),
    ("version: 1\nsource:\n  type x\n  root: y\n", 3, "this line has no colon", 2),
    ("version: 1\nsource: [\n", 2, "the [ opened here is never closed", 8),
])
def test_syntax_errors_in_plain_words_with_line_and_caret(text, line, words, caret_col):
    with pytest.raises(SpecError) as ei:
        load_yaml(text, "s.yaml")
    msg = str(ei.value)
    head, shown, caret = msg.split("\n")
    assert head.startswith(f"s.yaml:{line}: not valid YAML: ") and words in head, msg
    assert "expected <block end>" not in msg and "could not find expected" not in msg
    assert shown == "    " + text.splitlines()[line - 1]
    assert caret == "    " + " " * caret_col + "^"


def test_duplicate_keys_are_errors_with_both_lines(tmp_path, pm):
    spec = tmp_path / "dup.yaml"
    spec.write_text(GOOD + "output: {dir: other}\n")
    with pytest.raises(SpecError) as ei:
        load_pipeline(spec, pm=pm)
    assert ei.value.exit_code == 2
    (p,) = ei.value.problems
    assert p.startswith(f"{spec}:5 output: duplicate key 'output' (first on line 4)")
    nested = "version: 1\nsource: {type: a, root: b, type: c}\n"
    with pytest.raises(SpecError, match=r"s.yaml:2 source.type: duplicate key 'type' \(first on line 2\)"):
        load_yaml(nested, "s.yaml")


def test_a_valid_file_still_loads_with_lines():
    data, lines = load_yaml(GOOD, "s.yaml")
    assert data["steps"] == [{"type": "test-diff"}]
    assert lines[("output",)] == 4 and lines[("steps", 0)] == 3


@pytest.mark.parametrize("value", [".nan", ".inf", "-.inf"])
def test_nan_and_infinity_are_refused_in_the_core_spec(tmp_path, h, pm, value):
    h.make_pairs(tmp_path / "data", 2)
    spec = tmp_path / "s.yaml"
    spec.write_text(GOOD.replace("data}", "data}\nevaluate: {augment: {scale: [0.5, " + value + "]}}"))
    with pytest.raises(SpecError) as ei:
        load_pipeline(spec, pm=pm)
    (p,) = ei.value.problems
    assert p.startswith(f"{spec}:3 evaluate.augment.scale[1]: ") and "finite number" in p
