"""Checks of a component class against the extension points its base classes declare.

Plain functions returning a list of problems (empty: fine), so the contract-test kit, ``satcore plugins`` or a
plugin's own tests can call them::

    from satcore.components.checks import check_extension_points

    assert check_extension_points(MyDetector) == []
"""

from __future__ import annotations

import inspect
from typing import Any

from satcore.components.base import DATA_KINDS, Component
from satcore.components.detector import Detector

__all__ = ["check_extension_points"]


def _static(cls: type, name: str) -> Any:
    """The attribute as defined (a ``classmethod``/``property`` object, not its bound result)."""
    return inspect.getattr_static(cls, name, None)


def _check_data_kinds(cls: type[Component]) -> list[str]:
    problems = []
    for attr in ("consumes", "produces"):
        value = _static(cls, attr)
        if isinstance(value, str) or not isinstance(value, (tuple, list)):
            problems.append(f"{cls.__name__}.{attr} must be a tuple of data kinds, got {value!r}")
            continue
        unknown = [v for v in value if v not in DATA_KINDS]
        if unknown:
            problems.append(
                f"{cls.__name__}.{attr} names unknown data kinds {unknown}; known: {', '.join(DATA_KINDS)}"
            )
    return problems


def _check_classmethods(cls: type[Component]) -> list[str]:
    problems = []
    for name, params in (("report_sections", 3), ("upgrade_params", 2)):
        raw = _static(cls, name)
        if not isinstance(raw, classmethod):
            problems.append(
                f"{cls.__name__}.{name} must be a @classmethod (it is called on the class, e.g. by "
                f"`satcore report` long after the run), got {type(raw).__name__}"
            )
            continue
        try:
            inspect.signature(getattr(cls, name)).bind(*([None] * params))
        except TypeError:
            sig = inspect.signature(getattr(Component, name))
            problems.append(f"{cls.__name__}.{name} must accept the arguments {sig}")
    return problems


def _check_fitting(cls: type[Component]) -> list[str]:
    raw = _static(cls, "fittable")
    if not issubclass(cls, Detector):
        if raw is not None:
            return [f"{cls.__name__} declares `fittable`, but only detectors are fitted by the engine"]
        return []
    if isinstance(raw, property):
        maybe_fitted = True  # decided per instance (by its params): the methods must be there
    elif isinstance(raw, bool):
        maybe_fitted = raw
    else:
        return [f"{cls.__name__}.fittable must be a bool or a property returning one, got {raw!r}"]
    problems = []
    suffix = _static(cls, "state_suffix")
    if not (isinstance(suffix, str) and suffix.startswith(".")):
        problems.append(f"{cls.__name__}.state_suffix must be a file suffix such as '.json', got {suffix!r}")
    if maybe_fitted:
        missing = [m for m in Detector.FIT_METHODS if getattr(cls, m) is getattr(Detector, m)]
        if missing:
            problems.append(
                f"{cls.__name__} is fittable but does not implement {', '.join(missing)} (a fittable "
                "detector implements fit_records, fit, save_state and load_state; see "
                "satcore.components.Detector)"
            )
    return problems


def check_extension_points(cls: type[Component]) -> list[str]:
    """Problems with how ``cls`` uses the extension points of its base classes (empty list: none).

    Checked: ``consumes``/``produces`` are tuples of known data kinds (:data:`DATA_KINDS`);
    ``report_sections`` and ``upgrade_params`` are class methods taking their documented arguments; a
    detector's ``fittable`` is a bool or a property, its ``state_suffix`` a file suffix, and a fittable
    detector implements the four fitting methods; no other kind declares ``fittable``.
    """
    if not (isinstance(cls, type) and issubclass(cls, Component)):
        return [f"{cls!r} is not a satcore component class (subclass one of satcore.components' bases)"]
    return _check_data_kinds(cls) + _check_classmethods(cls) + _check_fitting(cls)
