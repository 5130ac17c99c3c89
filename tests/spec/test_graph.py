"""The step graph: several inputs per step, run order, cycles, missing inputs and kind mismatches."""

from __future__ import annotations

import textwrap
import types
from typing import Any, ClassVar

import pytest
from pydantic import Field

import satcore
from satcore.components import Detector, Extractor, Params
from satcore.errors import SpecError
from satcore.spec import Pipeline, ResolvedStep, load_pipeline
from satcore.spec.graph import ancestors, dependants, find_cycle, run_order


class FeatParams(Params):
    """Params of the feature steps."""

    model: str | None = Field(None, description="A model alias or a path.")


class PairFeatures(Extractor):
    """Features of a pair."""

    name = "pair-features"
    params_model = FeatParams
    consumes: ClassVar[tuple[str, ...]] = ("pair",)
    produces: ClassVar[tuple[str, ...]] = ("features",)


class Combine(Extractor):
    """Concatenates several steps' features."""

    name = "combine"
    params_model = FeatParams
    consumes: ClassVar[tuple[str, ...]] = ("features",)
    produces: ClassVar[tuple[str, ...]] = ("features",)


class FeatureDetector(Detector):
    """Change from features."""

    name = "feature-detector"
    consumes: ClassVar[tuple[str, ...]] = ("features",)
    produces: ClassVar[tuple[str, ...]] = ("change",)


@pytest.fixture
def gpm(pm):
    mod = types.ModuleType("graph_tests")
    mod.satcore_register_extractors = satcore.hookimpl(specname="satcore_register_extractors")(
        lambda: [PairFeatures, Combine])
    mod.satcore_register_detectors = satcore.hookimpl(specname="satcore_register_detectors")(
        lambda: [FeatureDetector])
    pm.register_plugin(mod, "graph-tests", "satcore-graph-tests", "0.0.1")
    return pm


def _spec(tmp_path, h, steps: str) -> Any:
    h.make_pairs(tmp_path / "data", 2)
    p = tmp_path / "pipe.yaml"
    p.write_text("version: 1\nsource: {type: folder-pairs, root: data}\nsteps:\n"
                 + textwrap.indent(textwrap.dedent(steps).strip(), "  ") + "\noutput: {dir: out}\n")
    return p


def _problems(spec, pm) -> list[str]:
    with pytest.raises(SpecError) as ei:
        load_pipeline(spec, pm=pm)
    assert ei.value.exit_code == 2
    return list(ei.value.problems)


def test_two_inputs_give_inputs_tuple_and_input_is_the_first(tmp_path, h, gpm):
    spec = _spec(tmp_path, h, """
        - {id: a, type: pair-features}
        - {id: b, type: pair-features}
        - {id: both, type: combine, input: [a, b]}
        - {id: change, type: feature-detector, input: both}
    """)
    p = load_pipeline(spec, pm=gpm)
    assert isinstance(p, Pipeline)
    both = p.step("both")
    assert isinstance(both, ResolvedStep)
    assert both.inputs == ("a", "b") and both.input == "a" and both.multi_input
    ch = p.step("change")
    assert ch.inputs == ("both",) and ch.input == "both" and not ch.multi_input
    assert p.step("a").inputs == ("source",)
    assert p.order == ["a", "b", "both", "change"]
    assert p.dependants("a") == ["both", "change"]
    assert p.dependants("change") == []
    assert p.ancestors("change") == ["a", "b", "both"]
    assert p.resolved()["steps"][2]["input"] == ["a", "b"]
    assert p.resolved()["steps"][3]["input"] == "both"


def test_an_input_may_be_a_later_step_and_steps_run_after_their_inputs(tmp_path, h, gpm):
    spec = _spec(tmp_path, h, """
        - {id: change, type: feature-detector, input: both}
        - {id: both, type: combine, input: [a, b]}
        - {id: a, type: pair-features}
        - {id: b, type: pair-features, input: source}
    """)
    p = load_pipeline(spec, pm=gpm)
    assert p.order == ["a", "b", "both", "change"]
    assert [s.index for s in p.steps] == [2, 3, 1, 0]


def test_cycle_is_exit_2_naming_the_path_at_file_line(tmp_path, h, gpm):
    spec = _spec(tmp_path, h, """
        - {id: a, type: combine, input: c}
        - {id: b, type: combine, input: a}
        - {id: c, type: combine, input: [b]}
    """)
    (msg,) = _problems(spec, gpm)
    assert msg.startswith(f"{spec}:")
    assert "the steps form a cycle: " in msg
    path = msg.split("the steps form a cycle: ")[1].split(" (")[0].split(" → ")
    assert path[0] == path[-1] and set(path) == {"a", "b", "c"} and len(path) == 4


def test_self_input_and_missing_input_with_did_you_mean(tmp_path, h, gpm):
    spec = _spec(tmp_path, h, """
        - {id: feats, type: pair-features}
        - {id: both, type: combine, input: [feats, fetas]}
        - {id: me, type: combine, input: me}
    """)
    probs = _problems(spec, gpm)
    (missing,) = [p for p in probs if "fetas" in p]
    assert missing.startswith(f"{spec}:5 steps[1].input[1]: input 'fetas' of step 'both' does not exist "
                              "— did you mean 'feats'?")
    assert any("steps[2].input: step 'me' names itself" in p for p in probs)


def test_kind_mismatch_is_checked_for_every_input(tmp_path, h, gpm):
    spec = _spec(tmp_path, h, """
        - {id: feats, type: pair-features}
        - {id: both, type: combine, input: [feats, source]}
    """)
    (msg,) = _problems(spec, gpm)
    assert msg.startswith(f"{spec}:5 steps[1].input[1]: 'combine' consumes ['features'] but 'source' "
                          "produces")


def test_empty_and_repeated_input_lists(tmp_path, h, gpm):
    spec = _spec(tmp_path, h, """
        - {id: feats, type: pair-features}
        - {id: both, type: combine, input: [feats, feats]}
        - {id: none, type: combine, input: []}
    """)
    probs = _problems(spec, gpm)
    assert any("steps[1].input[1]: input 'feats' is listed twice" in p for p in probs)
    assert any("steps[2].input: `input: []` names no step" in p for p in probs)


def test_graph_functions_against_hand_worked_graph():
    edges = {"a": ["source"], "b": ["a"], "c": ["a", "b"], "d": ["source"], "e": ["c"]}
    assert run_order(list(edges), edges) == ["a", "b", "c", "d", "e"]
    assert run_order(["e", "c", "b", "a", "d"], edges) == ["a", "b", "c", "e", "d"]
    assert dependants(edges, "a") == {"b", "c", "e"}
    assert dependants(edges, "d") == set()
    assert ancestors(edges, "e") == {"a", "b", "c"}
    assert find_cycle(list(edges), edges) is None
    assert find_cycle(["x", "y"], {"x": ["y"], "y": ["x"]}) in (["x", "y", "x"], ["y", "x", "y"])


# ------------------------------------------------------------------------------------------ model aliases

@pytest.fixture
def aliases(tmp_path, monkeypatch):
    reg = tmp_path / "user-registry.yaml"
    reg.write_text("models:\n  remote-vlm:\n    family: transformers\n    hf_repo: someone/remote-vlm\n"
                   "    needs: [trust_remote_code]\n")
    monkeypatch.setenv("SATCORE_REGISTRY", str(reg))
    monkeypatch.setenv("SATCORE_HOME", str(tmp_path / "home"))
    from satcore.registry import get_registry

    get_registry(refresh=True)
    yield
    monkeypatch.delenv("SATCORE_REGISTRY")
    get_registry(refresh=True)


def test_unknown_model_alias_is_checked_by_the_core_for_any_step(tmp_path, h, gpm, aliases):
    spec = _spec(tmp_path, h, """
        - {id: feats, type: pair-features, model: clip-vit-b23}
        - {id: ok, type: pair-features, model: clip-vit-b32}
        - {id: path, type: pair-features, model: weights/mine.pt}
    """)
    (msg,) = _problems(spec, gpm)
    assert msg.startswith(f"{spec}:4 steps[0].model: unknown model alias 'clip-vit-b23' — did you mean "
                          "'clip-vit-b32'?")


def test_remote_code_alias_needs_the_step_permission(tmp_path, h, gpm, aliases):
    spec = _spec(tmp_path, h, """
        - {id: feats, type: pair-features, model: remote-vlm}
    """)
    (msg,) = _problems(spec, gpm)
    assert msg.startswith(f"{spec}:4 steps[0].model: model alias 'remote-vlm' needs trust_remote_code")
    assert "Python code from the model's own repository" in msg
    assert "add this line to the step: `allow_remote_code: true`" in msg
    spec.write_text(spec.read_text().replace("remote-vlm}", "remote-vlm, allow_remote_code: true}"))
    p = load_pipeline(spec, pm=gpm)
    assert p.step("feats").allow_remote_code is True
    assert p.resolved()["steps"][0]["allow_remote_code"] is True
