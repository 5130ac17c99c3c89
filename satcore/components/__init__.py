"""Base classes, one module per component kind, and the toolkit components share.

Toolkit modules (import them directly): :mod:`satcore.components.thresholds` (threshold rules: fixed, Otsu,
optimised), :mod:`satcore.components.filters` (smoothing, per-band normalisation),
:mod:`satcore.components.checks` (checks of a class against the extension points),
:mod:`satcore.components.tuning` (thread tuning).
"""

from satcore.components.base import DATA_KINDS, Batch, Component, Params, RunContext
from satcore.components.captioner import Captioner
from satcore.components.detector import Detection, Detector, DetectorParams
from satcore.components.extractor import Extractor
from satcore.components.generator import Generator
from satcore.components.paths import SpecPath, resolve_spec_path
from satcore.components.recognizer import Recognizer
from satcore.components.source import Source
from satcore.kinds import KIND_HOOKS, KIND_NAMES, KIND_TABLE, STEP_KINDS, Kind

#: kind name → base class, in hook order (from :data:`satcore.kinds.KIND_TABLE`).
KINDS: dict[str, type[Component]] = {k.name: k.base for k in KIND_TABLE}

__all__ = [
    "DATA_KINDS", "KINDS", "KIND_HOOKS", "KIND_NAMES", "KIND_TABLE", "STEP_KINDS", "Batch", "Captioner",
    "Component", "Detection", "Detector", "DetectorParams", "Extractor", "Generator", "Kind", "Params",
    "Recognizer", "RunContext", "Source", "SpecPath", "resolve_spec_path",
]
