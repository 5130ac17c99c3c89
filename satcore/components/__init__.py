"""Base classes, one module per component kind."""

from satcore.components.base import DATA_KINDS, Batch, Component, Params, RunContext
from satcore.components.captioner import Captioner
from satcore.components.detector import Detection, Detector, DetectorParams
from satcore.components.extractor import Extractor
from satcore.components.generator import Generator
from satcore.components.recognizer import Recognizer
from satcore.components.source import Source

#: kind name → base class, in hook order.
KINDS: dict[str, type[Component]] = {
    "source": Source,
    "extractor": Extractor,
    "detector": Detector,
    "captioner": Captioner,
    "recognizer": Recognizer,
    "generator": Generator,
}

__all__ = [
    "DATA_KINDS", "KINDS", "Batch", "Captioner", "Component", "Detection", "Detector", "DetectorParams",
    "Extractor", "Generator", "Params", "Recognizer", "RunContext", "Source",
]
