"""The contract every component kind shares: name, params, registration, cheap import.

The kind-specific contracts subclass :class:`ComponentContract`: see :mod:`satcore.testing.contracts`.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
from importlib import metadata
from pathlib import Path
from typing import Any, ClassVar

import pytest

from satcore.components import DATA_KINDS, KINDS, STEP_KINDS, Component
from satcore.errors import MissingDependencyError, MissingWeightsError
from satcore.testing.helpers import build_component

#: A component ``name`` (the YAML ``type:``): lower-case words joined by single hyphens.
KEBAB_CASE = re.compile(r"^[a-z][a-z0-9]*(?:-[a-z0-9]+)*$")
HEAVY_MODULES = ("torch",)


# ------------------------------------------------------------------------------------------ shared checks

def registered_components(entrypoints: bool = True) -> list[tuple[str, str, type[Any], str]]:
    """Every ``(kind, name, class, plugin)`` the installed plugins register, calling each hook separately.

    Unlike the catalogue this does not stop at the first duplicate, so a contract can say which names clash.
    """
    from satcore.kinds import KIND_HOOKS
    from satcore.plugins import get_plugin_manager

    pm = get_plugin_manager(fresh=True, entrypoints=entrypoints)
    out = []
    for kind, hook_name in KIND_HOOKS.items():
        for impl in getattr(pm.hook, hook_name).get_hookimpls():
            try:
                classes = impl.function() or []
            except Exception:  # reported by `satcore plugins`; not this component's problem
                continue
            out += [(kind, getattr(c, "name", ""), c, impl.plugin_name) for c in classes]
    return out


def _same_class(a: type[Any], b: type[Any]) -> bool:
    return a is b or (a.__module__, a.__qualname__) == (b.__module__, b.__qualname__)


def plugin_entry_points(module_name: str) -> list[metadata.EntryPoint]:
    """Entry points of group ``satcore`` whose module is ``module_name``'s top-level package (or a parent)."""
    top = module_name.split(".")[0]
    eps = metadata.entry_points(group="satcore")
    return [ep for ep in eps if ep.value.split(":")[0].split(".")[0] == top]


def installed_distributions(module_name: str) -> list[str]:
    """Distributions that install ``module_name``'s top-level package.

    Regular installs only: editable ones are often not listed, which is why entry points are looked at first.
    """
    top = module_name.split(".")[0]
    if top in ("tests", "test", "conftest") or top.startswith("test_"):
        return []
    return list(metadata.packages_distributions().get(top, []))


def torch_check_script(module: str) -> str:
    """Python source that imports ``module`` in a fresh interpreter and prints which heavy modules loaded."""
    return textwrap.dedent(f"""
        import importlib, json, sys
        try:
            importlib.import_module({module!r})
        except ModuleNotFoundError as exc:
            print(json.dumps({{"missing": exc.name}}))
            raise SystemExit(0)
        heavy = sorted(m for m in sys.modules if m.split(".")[0] in {list(HEAVY_MODULES)!r})
        print(json.dumps({{"heavy": heavy}}))
    """)


# ------------------------------------------------------------------------------------------ the base

class ComponentContract:
    """Checks every component kind shares: name, params, registration, cheap import."""

    #: The component class under test (set this in your subclass).
    component: ClassVar[type[Component] | None] = None
    #: Params for building it (as in a spec step, without ``type``/``id``/``input``).
    params: ClassVar[dict[str, Any]] = {}
    #: The kind this contract checks; set by each kind's contract.
    kind: ClassVar[str] = ""
    #: Tolerances for "same output" comparisons (GPU models may need looser ones).
    rtol: ClassVar[float] = 1e-5
    atol: ClassVar[float] = 1e-6

    # -------------------------------------------------------------- hooks for subclasses
    def component_class(self) -> type[Component]:
        """The class under test."""
        cls = type(self).component
        if cls is None:
            pytest.fail(f"{type(self).__name__}: set `component = YourClass` on the contract subclass")
        return cls

    def make_params(self, tmp_path: Path) -> dict[str, Any]:
        """Params to build the component with (default: :attr:`params`)."""
        return dict(type(self).params)

    def build(self, tmp_path: Path, seed: int = 0, setup: bool = True) -> Any:
        """A fresh instance, set up; skips the test when weights or packages are missing."""
        cls = self.component_class()
        try:
            return build_component(cls, self.make_params(tmp_path), seed=seed, run_dir=tmp_path / "run",
                                   base_dir=tmp_path, setup=setup)
        except (MissingWeightsError, MissingDependencyError) as exc:
            pytest.skip(f"{cls.__qualname__}.setup(): {exc}")

    # -------------------------------------------------------------- the checks
    def test_is_a_component_of_its_kind(self) -> None:
        """The class subclasses its kind's base class."""
        cls = self.component_class()
        base = KINDS[self.kind]
        assert isinstance(cls, type) and issubclass(cls, base), (
            f"{cls!r} is not a subclass of satcore.components.{base.__name__}")
        assert cls.kind == self.kind, f"{cls.__qualname__}.kind is {cls.kind!r}, expected {self.kind!r}"

    def test_name_is_kebab_case(self) -> None:
        """``name`` (the YAML ``type:``) is kebab-case."""
        cls = self.component_class()
        assert isinstance(cls.name, str) and KEBAB_CASE.match(cls.name), (
            f"{cls.__qualname__}.name = {cls.name!r}: a component name is the YAML `type:` and must be "
            "kebab-case (lower-case words joined by hyphens, e.g. 'my-detector')")

    def test_name_is_unique(self) -> None:
        """No other installed component of the same namespace uses ``name``."""
        cls = self.component_class()
        kinds = ("source",) if self.kind == "source" else STEP_KINDS
        clashes = [f"{k} {n!r} from plugin {p!r} ({c.__module__}.{c.__qualname__})"
                   for k, n, c, p in registered_components() if n == cls.name and k in kinds
                   and not _same_class(c, cls)]
        assert not clashes, (f"{cls.__qualname__}.name {cls.name!r} is already used by: "
                             f"{'; '.join(clashes)}. "
                             "Step types share one namespace: choose another name")

    def test_class_has_a_summary(self) -> None:
        """The class docstring's first line is its one-line summary."""
        cls = self.component_class()
        assert cls.__doc__ and cls.__doc__.strip() and cls.summary(), (
            f"{cls.__qualname__} has no docstring; its first line is what `satcore plugins` and the schema "
            "show")

    def test_params_forbid_extra_keys(self, tmp_path: Path) -> None:
        """An unknown key in the params is an error."""
        from pydantic import ValidationError

        cls = self.component_class()
        model = cls.params_model
        assert model.model_config.get("extra") == "forbid", (
            f"{model.__qualname__} must forbid unknown keys (subclass satcore.components.Params, or set "
            "model_config = ConfigDict(extra='forbid')) so a typo in a spec is an error")
        with pytest.raises(ValidationError):
            model.model_validate({**self.make_params(tmp_path), "__surely_not_a_param__": 1},
                                 context={"base_dir": tmp_path})

    def test_params_are_documented(self) -> None:
        """Every params field has ``Field(description=...)``."""
        cls = self.component_class()
        undocumented = [n for n, f in cls.params_model.model_fields.items()
                        if not (f.description and f.description.strip())]
        assert not undocumented, (
            f"{cls.params_model.__qualname__}: fields without Field(description=...): {undocumented}; the "
            "descriptions are the spec reference (`satcore schema`)")

    def test_consumes_and_produces_are_known(self) -> None:
        """``consumes``/``produces`` use the data kinds ``satcore validate`` knows."""
        cls = self.component_class()
        unknown = [x for x in (*cls.consumes, *cls.produces) if x not in DATA_KINDS]
        assert not unknown, (f"{cls.__qualname__}: unknown data kinds {unknown}; use names from "
                             f"{sorted(DATA_KINDS)}")
        assert cls.produces, f"{cls.__qualname__}.produces is empty: say what the component yields"

    def test_extension_points(self) -> None:
        """The extension points are used as the base classes declare them.

        ``consumes``/``produces``, ``report_sections``, ``upgrade_params`` and fitting, as checked by
        :func:`satcore.components.checks.check_extension_points`.
        """
        from satcore.components.checks import check_extension_points

        problems = check_extension_points(self.component_class())
        assert not problems, "; ".join(problems)

    def test_builds_with_its_params(self, tmp_path: Path) -> None:
        """The class builds from :attr:`params` validated by its ``params_model``."""
        comp = self.build(tmp_path, setup=False)
        assert isinstance(comp.params, self.component_class().params_model)

    def test_entry_point_resolves(self) -> None:
        """An installed plugin's entry point loads and registers the class."""
        cls = self.component_class()
        module = cls.__module__
        if module.split(".")[0] == "satcore":  # built-ins are registered by the core, not an entry point
            found = [c for k, n, c, _p in registered_components(entrypoints=False) if c is cls]
            assert found, f"built-in {cls.__qualname__} is not registered by satcore.builtin"
            return
        eps = plugin_entry_points(module)
        if not eps:
            dists = installed_distributions(module)
            if not dists:
                pytest.skip(f"{module} is not part of an installed distribution")
            pytest.fail(f"distribution {dists[0]} installs {module.split('.')[0]} but declares no entry "
                        "point in group 'satcore'; add to its pyproject.toml:\n"
                        f"[project.entry-points.satcore]\n<name> = \"{module.split('.')[0]}\"")
        from satcore.plugins import get_plugin_manager

        pm = get_plugin_manager(fresh=True, entrypoints=False)
        for ep in eps:
            try:
                pm.register_plugin(ep.load(), ep.name)
            except Exception as exc:
                pytest.fail(f"entry point {ep.name} = {ep.value!r} fails to load: "
                            f"{type(exc).__name__}: {exc}")
        found = [c for kind, comps in pm.catalogue().items() for c in comps.values()
                 if kind == self.kind and _same_class(c, cls)]
        assert found, (f"the entry points {[f'{ep.name} = {ep.value}' for ep in eps]} load, but no "
                       f"satcore_register_{self.kind}s hook of theirs returns {cls.__qualname__}")

    def test_import_does_not_import_torch(self) -> None:
        """Importing the plugin in a fresh interpreter does not import torch."""
        cls = self.component_class()
        eps = plugin_entry_points(cls.__module__)
        modules = sorted({ep.value.split(":")[0] for ep in eps} | {cls.__module__})
        for module in modules:
            proc = subprocess.run([sys.executable, "-c", torch_check_script(module)], capture_output=True,
                                  text=True, timeout=120, cwd=Path.cwd())
            assert proc.returncode == 0, f"importing {module} failed:\n{proc.stderr[-2000:]}"
            report = json.loads(proc.stdout.strip().splitlines()[-1])
            if "missing" in report:
                if module.startswith(str(report["missing"])):
                    pytest.skip(f"{module} cannot be imported in a fresh interpreter (not installed)")
                pytest.fail(f"importing {module} needs the missing module {report['missing']!r}")
            assert not report["heavy"], (
                f"importing {module} imports {report['heavy'][:3]}; import heavy libraries inside setup() so "
                "`satcore plugins`, `satcore validate` and `satcore --help` stay fast")


__all__ = ["HEAVY_MODULES", "KEBAB_CASE", "ComponentContract", "installed_distributions",
           "plugin_entry_points", "registered_components", "torch_check_script"]
