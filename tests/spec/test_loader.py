"""Spec loading: every problem at once with file:line, key path, expectation and did-you-mean."""

from __future__ import annotations

import json
import textwrap

import pytest

from satcore.errors import SpecError
from satcore.spec import apply_overrides, load_pipeline, parse_overrides, pipeline_schema


def _write(tmp_path, text, name="pipe.yaml"):
    p = tmp_path / name
    p.write_text(textwrap.dedent(text).lstrip())
    return p


@pytest.fixture
def data_root(tmp_path, h):
    h.make_pairs(tmp_path / "data", 2)
    return tmp_path / "data"


def test_every_problem_at_once_with_lines_paths_and_hints(tmp_path, pm, data_root):
    spec = _write(
        tmp_path,
        """
        version: 1
        source: {type: folder-pairs, root: data}
        steps:
          - id: a
            type: test-diff
            treshold: 0.3
          - id: b
            type: test-dif
          - id: c
            type: test-diff
            threshold: high
          - id: d
            type: test-diff
            input: nowhere
        output: {dir: out}
        execution: {batch_sise: 4}
        """,
    )
    with pytest.raises(SpecError) as ei:
        load_pipeline(spec, pm=pm)
    probs = ei.value.problems
    text = str(ei.value)
    assert text.startswith(f"5 problems in {spec}")
    by_path = {p.split(" ")[1].rstrip(":"): p for p in probs}
    assert set(by_path) == {
        "steps[0].treshold",
        "steps[1].type",
        "steps[2].threshold",
        "steps[3].input",
        "execution.batch_sise",
    }
    # misspelt key: line of the key, did-you-mean from the params model
    assert by_path["steps[0].treshold"].startswith(f"{spec}:6 ")
    assert "unknown key — did you mean 'threshold'?" in by_path["steps[0].treshold"]
    # unknown step type: close match among installed components
    assert by_path["steps[1].type"].startswith(f"{spec}:8 ")
    assert "unknown step type 'test-dif' — did you mean 'test-diff'?" in by_path["steps[1].type"]
    # wrong value type: what was expected and what was given
    assert by_path["steps[2].threshold"].startswith(f"{spec}:11 ")
    assert "expected a valid number" in by_path["steps[2].threshold"]
    assert "got 'high'" in by_path["steps[2].threshold"]
    # an input that does not exist
    assert by_path["steps[3].input"].startswith(f"{spec}:14 ")
    assert ("input 'nowhere' of step 'd' does not exist; use `source` or one of: a, b, c"
            in by_path["steps[3].input"])
    # fixed keys are checked too
    assert by_path["execution.batch_sise"].startswith(f"{spec}:16 ")
    assert "did you mean 'batch_size'?" in by_path["execution.batch_sise"]


def test_unknown_type_suggests_uninstalled_plugin_with_install_hint(tmp_path, pm, data_root):
    spec = _write(
        tmp_path,
        """
        version: 1
        source: {type: folder-pairs, root: data}
        steps: [{id: probs, type: clip-zeroshoot}]
        output: {dir: out}
        """,
    )
    with pytest.raises(SpecError) as ei:
        load_pipeline(spec, pm=pm)
    (msg,) = ei.value.problems
    assert msg.startswith(f"{spec}:3 steps[0].type: unknown step type 'clip-zeroshoot'")
    # the catalogue in registry.yaml names the plugin that provides it and how to install it
    assert (
        "did you mean 'clip-zeroshot'? (provided by satcore-clip: pip install -e plugins/satcore-clip)" in msg
    )


def test_unknown_source_type_and_nothing_close(tmp_path, pm, data_root):
    spec = _write(
        tmp_path,
        """
        version: 1
        source: {type: folder-pair, root: data}
        steps: [{type: zzzzqqq}]
        output: {dir: out}
        """,
    )
    with pytest.raises(SpecError) as ei:
        load_pipeline(spec, pm=pm)
    p = ei.value.problems
    assert any(
        "source.type: unknown source type 'folder-pair' — did you mean 'folder-pairs'?" in x for x in p
    )
    assert any("unknown step type 'zzzzqqq'; installed: test-diff" in x for x in p)


def test_step_input_defined_later_is_allowed_and_duplicate_ids_are_not(tmp_path, pm, data_root):
    spec = _write(
        tmp_path,
        """
        version: 1
        source: {type: folder-pairs, root: data}
        steps:
          - {id: x, type: test-diff, input: y}
          - {id: y, type: test-diff}
          - {id: y, type: test-diff}
        output: {dir: out}
        """,
    )
    with pytest.raises(SpecError) as ei:
        load_pipeline(spec, pm=pm)
    p = ei.value.problems
    assert not any("does not exist" in x for x in p)  # a later step may be an input (steps run after it)
    assert any(x.startswith(f"{spec}:6 steps[2].id: duplicate step id 'y'") for x in p)


def test_missing_required_keys_and_bad_yaml(tmp_path, pm):
    spec = _write(tmp_path, "version: 1\nsteps: []\n")
    with pytest.raises(SpecError) as ei:
        load_pipeline(spec, pm=pm)
    p = ei.value.problems
    assert any("source: required key is missing" in x for x in p)
    assert any("output: required key is missing" in x for x in p)
    assert any("steps: list should have at least 1 item" in x for x in p)
    bad = _write(tmp_path, "version: 1\nsource: [\n", "bad.yaml")
    with pytest.raises(SpecError, match=r"bad\.yaml:2: not valid YAML: the \[ opened here is never closed"):
        load_pipeline(bad, pm=pm)


def test_paths_are_relative_to_the_spec_file(tmp_path, pm, data_root, monkeypatch):
    spec = _write(
        tmp_path,
        """
        version: 1
        source: {type: folder-pairs, root: data}
        steps: [{type: test-diff}]
        output: {dir: runs/x}
        """,
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    p = load_pipeline(spec, pm=pm)
    assert p.source_params.root == data_root
    assert p.spec.output.dir == tmp_path / "runs" / "x"
    # a root that does not exist names the resolved path
    spec2 = _write(
        tmp_path,
        """
        version: 1
        source: {type: folder-pairs, root: nodata}
        steps: [{type: test-diff}]
        output: {dir: out}
        """,
        "p2.yaml",
    )
    with pytest.raises(
        SpecError, match=rf"p2\.yaml:2 source\.root: folder {tmp_path}/nodata does not"
    ):
        load_pipeline(spec2, pm=pm)


def test_env_expansion(tmp_path, pm, data_root, monkeypatch):
    monkeypatch.setenv("SATCORE_TEST_DATA", str(data_root))
    monkeypatch.delenv("SATCORE_TEST_UNSET", raising=False)
    spec = _write(
        tmp_path,
        """
        version: 1
        source: {type: folder-pairs, root: "${SATCORE_TEST_DATA}"}
        steps: [{type: test-diff}]
        output: {dir: "${SATCORE_TEST_UNSET:-runs}/out"}
        """,
    )
    p = load_pipeline(spec, pm=pm)
    assert p.source_params.root == data_root
    assert p.spec.output.dir == tmp_path / "runs" / "out"
    spec2 = _write(
        tmp_path,
        """
        version: 1
        source: {type: folder-pairs, root: data}
        steps: [{type: test-diff}]
        output: {dir: "${SATCORE_TEST_UNSET}"}
        """,
        "p2.yaml",
    )
    with pytest.raises(SpecError) as ei:
        load_pipeline(spec2, pm=pm)
    assert any(
        x.startswith(f"{spec2}:4 output.dir: environment variable ${{SATCORE_TEST_UNSET}} is not set")
        for x in ei.value.problems
    )


def test_set_overrides_by_dotted_path_and_step_id(tmp_path, pm, data_root):
    spec = _write(
        tmp_path,
        """
        version: 1
        source: {type: folder-pairs, root: data}
        steps:
          - {id: first, type: test-diff}
          - {id: change, type: test-diff, threshold: 0.2}
        output: {dir: out}
        """,
    )
    ov = parse_overrides(
        ["steps.change.threshold=0.4", "execution.batch_size=3", "name=renamed", "steps.0.threshold=0.7"]
    )
    assert ov == {
        "steps.change.threshold": 0.4,
        "execution.batch_size": 3,
        "name": "renamed",
        "steps.0.threshold": 0.7,
    }
    p = load_pipeline(spec, ov, pm=pm)
    assert p.step("change").params.threshold == 0.4
    assert p.step("first").params.threshold == 0.7
    assert p.spec.execution.batch_size == 3 and p.name == "renamed"
    with pytest.raises(
        SpecError,
        match=r"--set steps\.chnage\.threshold: no step with id 'chnage' — did you "
        r"mean 'change'\?",
    ):
        load_pipeline(spec, {"steps.chnage.threshold": 1}, pm=pm)
    with pytest.raises(SpecError, match="expected KEY=VALUE"):
        parse_overrides(["novalue"])
    # an override that breaks the spec is reported like a spec problem
    with pytest.raises(
        SpecError,
        match=r"steps\[1\]\.threshold: input should be greater than 0|"
        r"steps\[1\]\.threshold: .*greater than 0",
    ):
        load_pipeline(spec, {"steps.change.threshold": -1}, pm=pm)
    # apply_overrides does not touch its input
    raw = {"steps": [{"id": "a", "type": "x"}]}
    assert apply_overrides(raw, {"steps.a.k": 1})["steps"][0]["k"] == 1 and "k" not in raw["steps"][0]


def test_spec_hash_ignores_output_and_execution(tmp_path, pm, data_root):
    spec = _write(
        tmp_path,
        """
        version: 1
        source: {type: folder-pairs, root: data}
        steps: [{id: d, type: test-diff}]
        output: {dir: out}
        """,
    )
    base = load_pipeline(spec, pm=pm).spec_hash()
    assert load_pipeline(spec, {"execution.batch_size": 2, "output.dir": "o2"}, pm=pm).spec_hash() == base
    assert load_pipeline(spec, {"steps.d.threshold": 0.5}, pm=pm).spec_hash() != base


def test_schema_is_valid_json_schema_with_component_params(pm):
    schema = pipeline_schema(pm)
    text = json.dumps(schema)
    assert schema["title"] == "satcore pipeline spec"
    defs = schema["$defs"]
    step = next(v for k, v in defs.items() if k.startswith("TestDiff"))
    assert step["properties"]["type"]["const"] == "test-diff"
    assert step["properties"]["threshold"]["description"] == "Score counted as change."
    assert step["properties"]["threshold"]["exclusiveMinimum"] == 0
    assert step.get("additionalProperties") is False
    fp = next(v for k, v in defs.items() if k.startswith("FolderPairs"))
    assert "root" in fp["required"] and "align" in fp["properties"]
    assert '"discriminator"' in text  # sources are a discriminated union on `type`
    # a valid JSON Schema (draft 2020-12, what pydantic emits) that accepts a good spec and rejects a bad one
    import jsonschema

    jsonschema.Draft202012Validator.check_schema(schema)
    v = jsonschema.Draft202012Validator(schema)
    good = {
        "version": 1,
        "source": {"type": "folder-pairs", "root": "data"},
        "steps": [{"id": "d", "type": "test-diff", "threshold": 0.3}],
        "output": {"dir": "out"},
    }
    assert list(v.iter_errors(good)) == []
    bad = {**good, "steps": [{"id": "d", "type": "test-diff", "treshold": 0.3}]}
    assert list(v.iter_errors(bad))


def test_step_whose_input_lacks_what_it_consumes(tmp_path, pm, data_root, h):
    from typing import ClassVar

    from satcore.components import Detector, Extractor

    class ProbsDetector(Detector):
        """Needs class probabilities."""

        name = "needs-probs"
        consumes: ClassVar[tuple[str, ...]] = ("probabilities",)

    class ProbsExtractor(Extractor):
        """Makes class probabilities."""

        name = "makes-probs"
        consumes: ClassVar[tuple[str, ...]] = ("pair",)
        produces: ClassVar[tuple[str, ...]] = ("probabilities",)

    pm.register_plugin(
        h.plugin_module(
            "fake_probs",
            satcore_register_detectors=[ProbsDetector],
            satcore_register_extractors=[ProbsExtractor],
        ),
        "probs",
    )
    spec = _write(
        tmp_path,
        """
        version: 1
        source: {type: folder-pairs, root: data}
        steps:
          - {id: change, type: needs-probs}
        output: {dir: out}
        """,
    )
    with pytest.raises(SpecError) as ei:
        load_pipeline(spec, pm=pm)
    (msg,) = ei.value.problems
    assert msg == (
        f"{spec}:4 steps[0].type: 'needs-probs' consumes ['probabilities'] but 'source' produces "
        "['mask', 'pair']"
    )
    # with the producer upstream the input defaults to it
    spec = _write(
        tmp_path,
        """
        version: 1
        source: {type: folder-pairs, root: data}
        steps:
          - {id: probs, type: makes-probs}
          - {id: change, type: needs-probs}
          - {id: again, type: needs-probs, input: source}
        output: {dir: out}
        """,
        "p2.yaml",
    )
    with pytest.raises(SpecError) as ei:
        load_pipeline(spec, pm=pm)
    (msg,) = ei.value.problems
    assert msg == (
        f"{spec}:6 steps[2].input: 'needs-probs' consumes ['probabilities'] but 'source' produces "
        "['mask', 'pair']; steps that do: probs"
    )
    p = load_pipeline(spec, {"steps.again.input": "probs"}, pm=pm)
    assert [(s.id, s.input) for s in p.steps] == [
        ("probs", "source"),
        ("change", "probs"),
        ("again", "probs"),
    ]


def test_union_value_error_is_one_problem(tmp_path, levir_dir):
    """A value checked against `'otsu' | float` is one problem listing both expectations, not one per
    member."""
    from satcore.errors import SpecError
    from satcore.spec import load_pipeline

    spec = tmp_path / "p.yaml"
    spec.write_text(f"version: 1\nsource: {{type: folder-pairs, root: {levir_dir}}}\n"
                    "steps:\n  - {id: c, type: cva, threshold: high}\noutput: {dir: out}\n")
    with pytest.raises(SpecError) as exc:
        load_pipeline(spec)
    assert exc.value.problems == [f"{spec}:4 steps[0].threshold: expected 'otsu' or a number, got 'high'"]


@pytest.fixture
def union_pm(pm, h):
    """``test-diff`` plus ``union-detector``, whose params hold unions of a number and a model."""
    from typing import Annotated, Literal

    from pydantic import BaseModel, ConfigDict, Field

    from satcore.components import Detector, DetectorParams

    class Optimise(BaseModel):
        """Pick the threshold on the train split."""

        model_config = ConfigDict(extra="forbid")
        optimise: Literal["f1", "accuracy"] = Field("f1", description="Metric.")

    class UnionParams(DetectorParams):
        """Params with unions."""

        threshold: float | Optimise = Field(0.5, description="A number or {optimise: metric}.")
        cutoff: Annotated[float, Field(gt=0)] | Optimise = Field(0.5, description="Positive, or optimised.")
        rules: list[Optimise] | Optimise | None = Field(None, description="One rule or several.")
        weights: dict[str, float] = Field(default_factory=dict, description="Per band.")

    class UnionDetector(Detector):
        """Detector whose params are unions."""

        name = "union-detector"
        params_model = UnionParams

    pm.register_plugin(h.plugin_module("fake_union", satcore_register_detectors=[UnionDetector]), "union")
    return pm


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        # a mapping: the model member's problem only, no "expected a number, got a dict", no class name
        ("threshold: {optimise: f2}", "steps[0].threshold.optimise: expected 'f1' or 'accuracy', got 'f2'"),
        ("threshold: {optimse: f1}", "steps[0].threshold.optimse: unknown key — did you mean 'optimise'?"),
        # a number out of range: the number member's problem only
        ("cutoff: -1", "steps[0].cutoff: expected greater than 0, got -1"),
        # a value of a type no member takes: every member, once
        ("threshold: high", "steps[0].threshold: expected a number or a mapping, got 'high'"),
        ("threshold: [1]", "steps[0].threshold: expected a number or a mapping, got a list"),
        # a list: the list member, its items located by index
        ("rules: [{optimise: f2}]", "steps[0].rules[0].optimise: expected 'f1' or 'accuracy', got 'f2'"),
        ("rules: {optimise: f2}", "steps[0].rules.optimise: expected 'f1' or 'accuracy', got 'f2'"),
        # a key that looks like a class name is still a key
        ("weights: {B04: x}", "steps[0].weights.B04: expected a valid number, unable to parse string as a "
                              "number, got 'x'"),
    ],
)
def test_union_errors_keep_the_member_the_value_fits(tmp_path, union_pm, data_root, value, expected):
    spec = _write(tmp_path, f"""
        version: 1
        source: {{type: folder-pairs, root: data}}
        steps:
          - type: union-detector
            {value}
        output: {{dir: out}}
        """)
    with pytest.raises(SpecError) as ei:
        load_pipeline(spec, pm=union_pm)
    assert ei.value.problems == [f"{spec}:5 {expected}"]


def test_a_set_override_is_blamed_for_its_value_not_the_file_line(tmp_path, union_pm, data_root):
    spec = _write(tmp_path, """
        version: 1
        source: {type: folder-pairs, root: data}
        steps:
          - {id: change, type: union-detector, threshold: {optimise: f1}}
          - {id: other, type: test-diff, threshold: -1}
        output: {dir: out}
        """)
    ov = parse_overrides(["steps.change.threshold.optimise=f2", "steps.change.cutoff=0.3"])
    with pytest.raises(SpecError) as ei:
        load_pipeline(spec, ov, pm=union_pm)
    assert ei.value.problems == [
        "--set steps.change.threshold.optimise=f2: steps[0].threshold.optimise: expected 'f1' or 'accuracy', "
        "got 'f2'",
        f"{spec}:5 steps[1].threshold: expected greater than 0, got -1",  # from the file: its line
    ]
    # a mapping given by --set: problems inside it are the override's; a later --set of the same key wins
    ov = parse_overrides(["steps.other.threshold=0.1", "steps.change.threshold=0.2",
                          "steps.change.threshold={optimse: f1}"])
    with pytest.raises(SpecError) as ei:
        load_pipeline(spec, ov, pm=union_pm)
    assert ei.value.problems == [
        '--set steps.change.threshold={"optimse": "f1"}: steps[0].threshold.optimse: unknown key — did you '
        "mean 'optimise'?"
    ]
    assert str(ei.value).startswith(f"{spec}: --set steps.change.threshold=")


def test_a_step_of_unknown_type_brings_no_follow_on_chain_errors(tmp_path, pm, data_root, h):
    from typing import ClassVar

    from satcore.components import Detector

    class ProbsDetector(Detector):
        """Needs class probabilities."""

        name = "needs-probs"
        consumes: ClassVar[tuple[str, ...]] = ("probabilities",)

    pm.register_plugin(h.plugin_module("fake_needs", satcore_register_detectors=[ProbsDetector]), "needs")
    spec = _write(tmp_path, """
        version: 1
        source: {type: folder-pairs, root: data}
        steps:
          - {id: probs, type: makes-prob}
          - {id: again, type: needs-probs}
          - {id: change, type: needs-probs, input: probs}
          - {id: last, type: needs-probs, input: source}
        output: {dir: out}
        """)
    with pytest.raises(SpecError) as ei:
        load_pipeline(spec, pm=pm)
    # the typo, and the one step fed by a known step (the source) that lacks probabilities; before, `again`
    # (input by default the previous step) and `change` (input: probs) each had a bogus 'produces nothing'
    assert [p.split(" ", 2)[1] for p in ei.value.problems] == ["steps[0].type:", "steps[3].input:"]
    assert "unknown step type 'makes-prob'" in ei.value.problems[0]
