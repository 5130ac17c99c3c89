from __future__ import annotations

import re
from pathlib import Path

import satcore
from satcore import hookspecs
from satcore.components import Component, Detector, RunContext, SpecPath
from satcore.version import __version__

REPO = Path(__file__).resolve().parents[2]


class _Resolver:
    def __init__(self):
        self.calls = []

    def resolve(self, alias, explicit_path=None):
        self.calls.append((alias, explicit_path))
        return f"resolved {alias}"


def test_resolve_model_asks_the_injected_registry():
    reg = _Resolver()
    ctx = RunContext(registry=reg)  # type: ignore[arg-type]
    assert ctx.resolve_model("tiny", "/w.pt") == "resolved tiny"
    assert reg.calls == [("tiny", "/w.pt")]


def test_report_sections_is_declared_with_an_empty_default():
    assert Component.report_sections(Path("."), "s", None) == []
    assert Detector.report_sections(Path("."), "s", None) == []
    assert isinstance(Component.__dict__["report_sections"], classmethod)


def test_the_facade_reexports_what_lives_below_it():
    assert satcore.hookimpl is hookspecs.hookimpl
    version = re.search(r'^version = "(.+)"$', (REPO / "pyproject.toml").read_text(), re.M).group(1)
    assert satcore.__version__ == __version__ == version


def test_spec_path_is_relative_to_the_spec_folder(tmp_path):
    from pydantic import BaseModel

    class P(BaseModel):
        root: SpecPath

    assert P.model_validate({"root": "data"}, context={"base_dir": tmp_path}).root == tmp_path / "data"
    assert P.model_validate({"root": "/abs"}, context={"base_dir": tmp_path}).root == Path("/abs")
