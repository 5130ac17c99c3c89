"""Test helpers for plugin authors: fixtures and contract tests.

``satcore.testing.plugin`` is a pytest plugin (entry point ``pytest11``), so its fixtures are available in
every test session once satcore is installed: ``satcore_pm``, ``register_components``, ``build_component``,
``change_items``, ``pairs_dir`` and ``run_pipeline``. The names below are imported lazily so that loading the
pytest plugin stays cheap for everyone with satcore installed.

.. code-block:: python

    from satcore.testing import DetectorContract, make_change_pair

    class TestMyDetector(DetectorContract):
        component = MyDetector
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "ComponentContract": "contracts", "StepContract": "contracts", "DetectorContract": "contracts",
    "ExtractorContract": "contracts", "SourceContract": "contracts", "CaptionerContract": "contracts",
    "RecognizerContract": "contracts", "GeneratorContract": "contracts", "FolderPairsData": "contracts",
    "TruthBlindContract": "contracts",
    "make_change_pair": "data", "make_change_items": "data", "make_scene_item": "data",
    "make_pairs_dir": "data", "planted_change": "data", "TEST_CRS": "data",
    "make_class_items": "data", "make_caption_items": "data", "make_text_items": "data",
    "make_target_items": "data",
    "georef_crs": "data", "georef_transform": "data", "TEST_CLASSES": "data",
    "TEST_CAPTIONS": "data", "TEST_PROMPTS": "data",
    "build_component": "helpers", "run_pipeline": "helpers", "PipelineOutputs": "helpers",
    "components_plugin": "helpers", "fresh_plugin_manager": "helpers", "assert_same_output": "helpers",
    "assert_same_outputs": "helpers",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'satcore.testing' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"satcore.testing.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])


__all__ = sorted(_EXPORTS)
