"""The pytest plugin: fixtures for satcore plugin tests.

pytest loads this module in every session of anyone with satcore installed, so it imports nothing heavy at
module level: fixtures import what they need when a test asks for them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from satcore.components import Component
    from satcore.data import Item
    from satcore.plugins import SatcorePluginManager
    from satcore.testing.helpers import PipelineOutputs


@pytest.fixture
def satcore_pm() -> Iterator[SatcorePluginManager]:
    """A fresh plugin manager with the built-ins and no entry points, installed as the process-wide one.

    The previous manager is restored afterwards. Register test plugins with ``satcore_pm.register_plugin``
    or the ``register_components`` fixture. The cached model registry is dropped before and after, so model
    aliases registered by test plugins are seen during the test and do not leak out of it.
    """
    from satcore import plugins, registry

    pm = plugins.get_plugin_manager(fresh=True, entrypoints=False)
    previous = plugins.set_plugin_manager(pm)
    registry.clear_registry_cache()
    try:
        yield pm
    finally:
        plugins.set_plugin_manager(previous)
        registry.clear_registry_cache()


@pytest.fixture
def register_components(satcore_pm: SatcorePluginManager) -> Iterator[Callable[..., str]]:
    """``register_components(*classes, name="test-plugin") -> name``: register component classes as a plugin.

    Returns the plugin name; ``satcore_pm.unregister_plugin(name)`` removes it early, and every plugin
    registered this way is removed at teardown.
    """
    from satcore.testing.helpers import components_plugin

    names: list[str] = []

    def register(*classes: type[Component], name: str = "test-plugin") -> str:
        satcore_pm.register_plugin(components_plugin(*classes, name=name), name)
        names.append(name)
        return name

    yield register
    for name in names:
        satcore_pm.unregister_plugin(name)


@pytest.fixture
def build_component(tmp_path: Path) -> Iterator[Callable[..., Any]]:
    """``build_component(cls, **params)``: a validated, set-up instance whose run folder is in ``tmp_path``.

    Keyword arguments ``seed=`` and ``setup=`` are passed on; everything else is a param. Components are torn
    down after the test.
    """
    from satcore.testing.helpers import build_component as build

    built: list[Any] = []

    def make(cls: type[Component], *, seed: int = 0, setup: bool = True, **params: Any) -> Any:
        comp = build(cls, params, seed=seed, setup=setup, run_dir=tmp_path / "run", base_dir=tmp_path)
        built.append(comp)
        return comp

    yield make
    for comp in built:
        comp.teardown()


@pytest.fixture
def change_items() -> list[Item]:
    """Four seeded 32×32 RGB pairs: ``pair-0`` unchanged, ``pair-1..3`` with a planted square change."""
    from satcore.testing.data import make_change_items

    return make_change_items(4, seed=0)


@pytest.fixture
def pairs_dir(tmp_path: Path) -> Path:
    """The ``change_items`` pairs as a ``folder-pairs`` dataset (GeoTIFFs in ``A/``, ``B/``, ``label/``)."""
    from satcore.testing.data import make_pairs_dir

    return make_pairs_dir(tmp_path / "pairs", 4, seed=0)


@pytest.fixture
def run_pipeline(tmp_path: Path) -> Callable[..., PipelineOutputs]:
    """``run_pipeline(spec_dict, **kwargs) -> PipelineOutputs`` (result, table, metrics, errors, manifest).

    Outputs go to ``tmp_path/run`` unless the spec sets ``output.dir``; see
    :func:`satcore.testing.helpers.run_pipeline` for the defaults it fills in.
    """
    from satcore.testing.helpers import run_pipeline as run

    def go(spec: dict[str, Any], **kwargs: Any) -> PipelineOutputs:
        return run(spec, tmp_path, **kwargs)

    return go
