"""The one table of component kinds: name, base class, registration hook, whether it is a pipeline step.

Every list of kinds in satcore (the plugin manager's hooks, the spec's step kinds, the contract kit, the
scaffold, the CLI's choices) is derived from :data:`KIND_TABLE`: a new kind is one row here. The module
imports nothing, so the CLI can offer the kinds without loading numpy or pydantic; the base classes are
imported when first asked for (:attr:`Kind.base`, :data:`satcore.components.KINDS`).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from satcore.components.base import Component


@dataclass(frozen=True)
class Kind:
    """One component kind."""

    name: str
    #: ``module:Class`` of the base class (imported on demand by :attr:`base`)
    base_path: str
    #: the hook in :mod:`satcore.hookspecs` that registers classes of this kind
    hook: str
    #: whether components of this kind are pipeline steps (``steps:``) rather than the ``source:``
    is_step: bool
    #: how the kind is described to people (scaffold, docs)
    description: str

    @property
    def base(self) -> type[Component]:
        """The base class every component of this kind subclasses."""
        module, _, cls = self.base_path.partition(":")
        return getattr(importlib.import_module(module), cls)  # type: ignore[no-any-return]


#: In hook order.
KIND_TABLE: tuple[Kind, ...] = (
    Kind("source", "satcore.components.source:Source", "satcore_register_sources", False,
         "an item source"),
    Kind("extractor", "satcore.components.extractor:Extractor", "satcore_register_extractors", True,
         "a feature extractor"),
    Kind("detector", "satcore.components.detector:Detector", "satcore_register_detectors", True,
         "a change detector"),
    Kind("captioner", "satcore.components.captioner:Captioner", "satcore_register_captioners", True,
         "a captioner"),
    Kind("recognizer", "satcore.components.recognizer:Recognizer", "satcore_register_recognizers", True,
         "a scene recognizer"),
    Kind("generator", "satcore.components.generator:Generator", "satcore_register_generators", True,
         "an image generator"),
)

#: kind name → registration hook name.
KIND_HOOKS: dict[str, str] = {k.name: k.hook for k in KIND_TABLE}
#: the kinds that are pipeline steps.
STEP_KINDS: tuple[str, ...] = tuple(k.name for k in KIND_TABLE if k.is_step)
#: every kind name, in hook order.
KIND_NAMES: tuple[str, ...] = tuple(k.name for k in KIND_TABLE)
