"""Contract tests, one class per component kind: subclass, point at your class, and pytest runs the checks.

.. code-block:: python

    from satcore.testing import DetectorContract
    from satcore_demo.detectors import DemoDetector

    class TestDemoDetector(DetectorContract):
        component = DemoDetector
        params = {"threshold": 0.1}      # optional; required params must be given

Every check is a ``test_*`` method, so a failing one names the broken promise. Override the ``make_*``
methods when the defaults do not fit (a detector that consumes upstream features overrides
:meth:`StepContract.make_inputs`; a source overrides :meth:`SourceContract.make_params`). A component whose
``setup()`` raises :class:`~satcore.errors.MissingWeightsError` or
:class:`~satcore.errors.MissingDependencyError` has its behaviour checks skipped with that message.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest

from satcore.components import DATA_KINDS, KINDS, STEP_KINDS, Batch, Component, Detection
from satcore.data import Item, ItemRef, Raster
from satcore.errors import ComponentError, MissingDependencyError, MissingWeightsError
from satcore.testing.data import make_change_items, make_change_pair, make_pairs_dir, make_scene_item
from satcore.testing.helpers import assert_same_outputs, build_component

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


# ------------------------------------------------------------------------------------------ steps

class StepContract(ComponentContract):
    """Checks for components that process batches (every kind but sources)."""

    #: Items per batch in the order and independence checks.
    n_items: ClassVar[int] = 4

    def make_items(self) -> list[Item]:
        """Items to process: seeded pairs with planted changes (scenes for image-only kinds)."""
        if "pair" in self.component_class().consumes or not self.component_class().consumes:
            return make_change_items(self.n_items, seed=0)
        return [make_scene_item(f"scene-{i}", seed=i) for i in range(self.n_items)]

    def make_inputs(self, items: Sequence[Item]) -> list[Any]:
        """What the step's ``input:`` gives each item (default: the items themselves, ``input: source``)."""
        return list(items)

    def make_bad_item(self) -> Item:
        """An item the component cannot process: a pair consumer gets one image, others get no image."""
        good = make_change_pair("bad-item", seed=99)
        if "pair" in self.component_class().consumes:
            return Item("bad-item", [good.images[0]], meta={"kind": "scene"})
        return Item("bad-item", [], meta={"kind": "scene"})

    def check_result(self, result: Any, item: Item) -> None:
        """Kind-specific shape of one result (overridden per kind)."""

    def prepare(self, comp: Any, tmp_path: Path) -> Any:
        """Called on every fresh instance before processing (detectors fit here)."""
        return comp

    def process(self, comp: Any, items: Sequence[Item]) -> list[Any]:
        """Run ``comp`` on one batch of ``items``."""
        res = comp.process(Batch(list(items), self.make_inputs(items), comp.step_id))
        assert isinstance(res, (list, tuple)), (
            f"{type(comp).__qualname__}.process() returned {type(res).__name__}; return a list")
        return list(res)

    def fresh(self, tmp_path: Path, seed: int = 0) -> Any:
        """A built, set-up and prepared instance."""
        return self.prepare(self.build(tmp_path, seed=seed), tmp_path)

    # -------------------------------------------------------------- the checks
    def test_one_result_per_item_in_order(self, tmp_path: Path) -> None:
        """One result per item, in the items' order."""
        comp = self.fresh(tmp_path)
        items = self.make_items()
        ids = [it.item_id for it in items]
        out = self.process(comp, items)
        assert len(out) == len(items), (
            f"process() returned {len(out)} results for a batch of {len(items)} items")
        for res, item in zip(out, items, strict=True):
            self.check_result(res, item)
        # a batch of one cannot be out of order: it is the reference for each position
        alone = [self.process(comp, [it]) for it in items]
        assert all(len(a) == 1 for a in alone), (
            "process() must return exactly one result for a one-item batch")
        assert_same_outputs(out, [a[0] for a in alone], self.rtol, self.atol, ids)
        backwards = self.process(comp, items[::-1])
        assert len(backwards) == len(items), "process() returned a different number of results"
        # results follow the items: reversing the batch reverses the results
        assert_same_outputs(backwards[::-1], out, self.rtol, self.atol, ids)

    def test_batch_independence(self, tmp_path: Path) -> None:
        """An item's result does not depend on which items share its batch."""
        comp = self.fresh(tmp_path)
        items = self.make_items()
        ids = [it.item_id for it in items]
        together = self.process(comp, items)
        alone = [self.process(comp, [it])[0] for it in items]
        assert_same_outputs(alone, together, self.rtol, self.atol, ids)
        odd = self.process(comp, items[1::2])
        assert_same_outputs(odd, together[1::2], self.rtol, self.atol, ids[1::2])

    def test_bad_item_raises_component_error(self, tmp_path: Path) -> None:
        """An item the component cannot handle raises ``ComponentError``."""
        comp = self.fresh(tmp_path)
        bad = self.make_bad_item()
        try:
            res = self.process(comp, [bad])
        except ComponentError:
            return
        except Exception as exc:
            pytest.fail(f"a bad item raised {type(exc).__name__}: {exc}; raise satcore.errors.ComponentError "
                        "with a message that says what is wrong with the item")
        pytest.fail(f"process() returned {res!r} for a bad item ({len(bad.images)} images); raise "
                    "satcore.errors.ComponentError instead")

    def test_same_seed_same_output(self, tmp_path: Path) -> None:
        """Two instances built with the same seed give the same results."""
        items = self.make_items()
        first = self.process(self.fresh(tmp_path / "a", seed=7), items)
        second = self.process(self.fresh(tmp_path / "b", seed=7), items)
        assert_same_outputs(first, second, self.rtol, self.atol, [it.item_id for it in items])


class DetectorContract(StepContract):
    """The detector contract: :class:`~satcore.components.Detection` per item, maps on the item's grid.

    A fittable detector (``fittable = True``) is fitted on :meth:`make_fit_items` before processing, and its
    state must survive :meth:`~satcore.components.Detector.save_state` / ``load_state``.
    """

    kind: ClassVar[str] = "detector"

    def make_fit_items(self) -> list[Item]:
        """Labelled training items for fittable detectors (half changed, half not)."""
        return make_change_items(6, seed=1, unchanged=3)

    def prepare(self, comp: Any, tmp_path: Path) -> Any:
        """Fit a fittable detector on :meth:`make_fit_items`."""
        if comp.fittable:
            items = self.make_fit_items()
            records = comp.fit_records(Batch(items, self.make_inputs(items), comp.step_id))
            labels = np.asarray([int(it.image_label or 0) for it in items])
            comp.fit(list(records), labels, np.asarray([it.item_id for it in items]))
        return comp

    def check_result(self, result: Any, item: Item) -> None:
        """A :class:`Detection` with a 0/1 label, finite score, and maps on the item's grid."""
        assert isinstance(result, Detection), (
            f"a detector returns satcore.components.Detection per item, got {type(result).__name__}")
        assert result.label in (None, 0, 1), f"label must be 0, 1 or None, got {result.label!r}"
        if result.score is not None:
            assert np.isfinite(float(result.score)), f"score must be finite, got {result.score!r}"
        shape = item.reference.shape
        if result.score_map is not None:
            sm = np.asarray(result.score_map)
            assert sm.shape == shape, f"score_map is {sm.shape}, the item is {shape}"
            assert np.nanmin(sm) >= 0 and np.nanmax(sm) <= 1, (
                f"score_map must lie in [0, 1] (pixel AUC compares scores across items), got "
                f"[{np.nanmin(sm):g}, {np.nanmax(sm):g}]")
        if result.label_map is not None:
            lm = np.asarray(result.label_map)
            assert lm.shape == shape, f"label_map is {lm.shape}, the item is {shape}"
            assert lm.dtype == bool or set(np.unique(lm)) <= {0, 1}, "label_map must be boolean (or 0/1)"

    def test_fitted_state_round_trips(self, tmp_path: Path) -> None:
        """Fitted state saved and loaded gives the same results."""
        comp = self.fresh(tmp_path / "a")
        if not comp.fittable:
            pytest.skip("not fittable")
        path = tmp_path / f"state{comp.state_suffix}"
        comp.save_state(path)
        assert path.exists(), f"save_state({path}) wrote nothing"
        other = self.build(tmp_path / "b")
        other.load_state(path)
        items = self.make_items()
        assert_same_outputs(self.process(other, items), self.process(comp, items), self.rtol, self.atol,
                            [it.item_id for it in items])


class ExtractorContract(StepContract):
    """The extractor contract: one ``dict`` of features per item."""

    kind: ClassVar[str] = "extractor"

    def check_result(self, result: Any, item: Item) -> None:
        """A dict with string keys."""
        assert isinstance(result, dict), f"an extractor returns a dict per item, got {type(result).__name__}"
        assert all(isinstance(k, str) for k in result), "feature names must be strings"


class CaptionerContract(StepContract):
    """The captioner contract: ``{"captions": [str, ...]}`` per item, one caption per image."""

    kind: ClassVar[str] = "captioner"

    def check_result(self, result: Any, item: Item) -> None:
        """One caption string per image of the item."""
        assert isinstance(result, dict) and "captions" in result, (
            f"a captioner returns {{'captions': [...]}} per item, got {result!r:.200}")
        caps = result["captions"]
        assert isinstance(caps, (list, tuple)) and all(isinstance(c, str) for c in caps), (
            "captions must be a list of strings")
        assert len(caps) == len(item.images), f"{len(caps)} captions for {len(item.images)} images"


class RecognizerContract(StepContract):
    """The recognizer contract: ``{"labels": [...], "scores": [...]}`` per item, same length."""

    kind: ClassVar[str] = "recognizer"

    def check_result(self, result: Any, item: Item) -> None:
        """Labels (strings) and finite scores of the same length."""
        assert isinstance(result, dict) and "labels" in result and "scores" in result, (
            f"a recognizer returns {{'labels': [...], 'scores': [...]}} per item, got {result!r:.200}")
        assert len(result["labels"]) == len(result["scores"]), "labels and scores differ in length"
        assert all(isinstance(x, str) for x in result["labels"]), "labels must be strings"
        assert np.all(np.isfinite(np.asarray(result["scores"], dtype=float))), "scores must be finite"


class GeneratorContract(StepContract):
    """The generator contract: ``{"images": [Raster, ...]}`` per item."""

    kind: ClassVar[str] = "generator"

    def check_result(self, result: Any, item: Item) -> None:
        """A non-empty list of rasters."""
        assert isinstance(result, dict) and "images" in result, (
            f"a generator returns {{'images': [Raster, ...]}} per item, got {result!r:.200}")
        assert result["images"] and all(isinstance(r, Raster) for r in result["images"]), (
            "images must be a non-empty list of satcore.data.Raster")


# ------------------------------------------------------------------------------------------ sources

class SourceContract(ComponentContract):
    """The source contract: stable unique ids, loads what it lists, a bad file is a ComponentError.

    Override :meth:`make_params` to point the source at data (``tmp_path`` is the test's folder;
    :func:`~satcore.testing.make_pairs_dir` writes a small ``folder-pairs`` dataset).
    """

    kind: ClassVar[str] = "source"

    def make_params(self, tmp_path: Path) -> dict[str, Any]:
        """Params of the source (default :attr:`params`)."""
        return dict(type(self).params)

    def make_bad_ref(self, tmp_path: Path, refs: Sequence[ItemRef]) -> ItemRef:
        """A ref whose files do not exist (the first listed ref with every path pointed elsewhere)."""
        first = refs[0]
        missing = {k: str(tmp_path / "does-not-exist" / Path(v).name) for k, v in first.paths.items()}
        return ItemRef("bad-item", missing, dict(first.meta))

    def check_item(self, item: Item, ref: ItemRef) -> None:
        """Shape of one loaded item."""
        assert isinstance(item, Item), f"load() returns satcore.data.Item, got {type(item).__name__}"
        assert item.item_id == ref.item_id, f"load() gave id {item.item_id!r} for ref {ref.item_id!r}"
        assert item.images and all(isinstance(r, Raster) for r in item.images), "an item needs rasters"
        if item.label is not None:
            assert item.label.shape == item.reference.shape, "label mask must be on the first image's grid"

    def refs(self, comp: Any) -> list[ItemRef]:
        """List the refs, checking their type."""
        refs = list(comp.list_items())
        assert refs, "list_items() returned nothing for the test data; make_params() must point at data"
        assert all(isinstance(r, ItemRef) for r in refs), "list_items() yields satcore.data.ItemRef"
        return refs

    def test_lists_unique_ids_in_stable_order(self, tmp_path: Path) -> None:
        """Item ids are unique and listed in the same order every time."""
        comp = self.build(tmp_path)
        first = [r.item_id for r in self.refs(comp)]
        dupes = sorted({i for i in first if first.count(i) > 1})
        assert not dupes, f"duplicate item ids: {dupes}"
        again = [r.item_id for r in self.refs(self.build(tmp_path))]
        assert again == first, "two listings of the same data differ in order or content"

    def test_one_item_per_ref_in_order(self, tmp_path: Path) -> None:
        """Each listed ref loads into its item, whatever was loaded before."""
        comp = self.build(tmp_path)
        refs = self.refs(comp)
        items = [comp.load(r) for r in refs]
        for item, ref in zip(items, refs, strict=True):
            self.check_item(item, ref)
        # loading is independent of what was loaded before
        backwards = [comp.load(r) for r in refs[::-1]][::-1]
        assert_same_outputs(backwards, items, self.rtol, self.atol, [r.item_id for r in refs])

    def test_bad_item_raises_component_error(self, tmp_path: Path) -> None:
        """An item the component cannot handle raises ``ComponentError``."""
        comp = self.build(tmp_path)
        bad = self.make_bad_ref(tmp_path, self.refs(comp))
        try:
            comp.load(bad)
        except ComponentError:
            return
        except Exception as exc:
            pytest.fail(f"loading a ref with missing files raised {type(exc).__name__}: {exc}; raise "
                        "satcore.errors.ComponentError naming the file")
        pytest.fail("loading a ref with missing files returned an item; raise satcore.errors.ComponentError")

    def test_same_seed_same_output(self, tmp_path: Path) -> None:
        """Two instances built with the same seed give the same results."""
        a, b = self.build(tmp_path, seed=3), self.build(tmp_path, seed=3)
        ra, rb = self.refs(a), self.refs(b)
        assert [r.item_id for r in ra] == [r.item_id for r in rb]
        assert_same_outputs([a.load(r) for r in ra], [b.load(r) for r in rb], self.rtol, self.atol,
                            [r.item_id for r in ra])


class FolderPairsData:
    """Mixin for source contracts that read the ``folder-pairs`` layout: writes one into ``tmp_path``."""

    def make_params(self, tmp_path: Path) -> dict[str, Any]:
        """``root:`` a fresh :func:`~satcore.testing.make_pairs_dir` dataset."""
        root = tmp_path / "pairs"
        if not root.exists():
            make_pairs_dir(root)
        return {**dict(type(self).params), "root": str(root)}  # type: ignore[attr-defined]


__all__ = ["CaptionerContract", "ComponentContract", "DetectorContract", "ExtractorContract",
           "FolderPairsData", "GeneratorContract", "RecognizerContract", "SourceContract", "StepContract"]
