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

Modules: :mod:`~satcore.testing.contracts.base` (what every kind shares), :mod:`.steps` (the step checks,
detectors, extractors), :mod:`.kinds` (captioners, recognizers, generators: items with truth beyond change
masks), :mod:`.sources`. Every name is importable from here and from :mod:`satcore.testing`.
"""

from __future__ import annotations

from satcore.testing.contracts.base import (
    HEAVY_MODULES,
    KEBAB_CASE,
    ComponentContract,
    installed_distributions,
    plugin_entry_points,
    registered_components,
    torch_check_script,
)
from satcore.testing.contracts.kinds import (
    CaptionerContract,
    GeneratorContract,
    RecognizerContract,
    TruthBlindContract,
    check_generated,
    check_ranking,
    generated_images,
    strip_truth,
)
from satcore.testing.contracts.sources import FolderPairsData, SourceContract
from satcore.testing.contracts.steps import DetectorContract, ExtractorContract, StepContract

__all__ = ["HEAVY_MODULES", "KEBAB_CASE", "CaptionerContract", "ComponentContract", "DetectorContract",
           "ExtractorContract", "FolderPairsData", "GeneratorContract", "RecognizerContract",
           "SourceContract", "StepContract", "TruthBlindContract", "check_generated", "check_ranking",
           "generated_images", "installed_distributions",
           "plugin_entry_points", "registered_components", "strip_truth", "torch_check_script"]
