from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import pytest

from satcore.components import Captioner, Component, Detector, Extractor
from satcore.components.checks import check_extension_points


class GoodDetector(Detector):
    name = "good"
    consumes: ClassVar[tuple[str, ...]] = ("pair",)
    fittable: ClassVar[bool] = True

    def fit_records(self, batch): return [None] * len(batch)
    def fit(self, records, labels, groups=None): return {}
    def save_state(self, path): pass
    def load_state(self, path): pass

    @classmethod
    def report_sections(cls, run_dir: Path, step_id: str, results: Any) -> list[tuple[str, str]]:
        return [("x", "<p>x</p>")]


class HalfFittedDetector(Detector):
    name = "half"
    fittable: ClassVar[bool] = True

    def fit(self, records, labels, groups=None): return {}


class MaybeFittedDetector(Detector):
    """fittable decided by params (as probability-delta's `{optimise: f1}`): the methods must be there."""

    name = "maybe"

    @property  # type: ignore[override]
    def fittable(self) -> bool:  # type: ignore[override]
        return True


class PlainReportDetector(Detector):
    name = "plain-report"

    def report_sections(self, run_dir, step_id, results):  # type: ignore[override]
        return []


class UnknownKindsExtractor(Extractor):
    name = "unknown-kinds"
    consumes: ClassVar[tuple[str, ...]] = ("pair", "pixels")
    produces: ClassVar[tuple[str, ...]] = "features"  # type: ignore[assignment]


class FittableCaptioner(Captioner):
    name = "fittable-captioner"
    fittable = True


def test_a_well_declared_component_has_no_problems():
    assert check_extension_points(GoodDetector) == []
    for base in (Component, Detector, Extractor, Captioner):
        assert check_extension_points(base) == []


@pytest.mark.parametrize(("cls", "expected"), [
    (HalfFittedDetector, "does not implement fit_records, save_state, load_state"),
    (MaybeFittedDetector, "does not implement fit_records, fit, save_state, load_state"),
    (PlainReportDetector, "report_sections must be a @classmethod"),
    (UnknownKindsExtractor, "consumes names unknown data kinds ['pixels']"),
    (UnknownKindsExtractor, "produces must be a tuple of data kinds"),
    (FittableCaptioner, "only detectors are fitted"),
])
def test_each_problem_is_reported(cls, expected):
    problems = check_extension_points(cls)
    assert any(expected in p for p in problems), problems


def test_a_non_component_is_refused():
    assert "not a satcore component class" in check_extension_points(int)[0]  # type: ignore[arg-type]


def test_the_installed_first_party_components_pass():
    from satcore.kinds import KIND_HOOKS
    from satcore.plugins import get_plugin_manager

    pm = get_plugin_manager(fresh=True)
    classes = [c for hook in KIND_HOOKS.values() for impl in getattr(pm.hook, hook)() for c in impl]
    assert classes
    assert {c.__name__: check_extension_points(c) for c in classes if check_extension_points(c)} == {}
