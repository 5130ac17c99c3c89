"""satcore's generator contract for both directions (tiny random checkpoint, offline)."""

from __future__ import annotations

from typing import Any, ClassVar

import pytest
from satcore_generative.generators import MultispectralToRgbGenerator, RgbToMultispectralGenerator

from satcore.data import Item
from satcore.testing import GeneratorContract
from satcore.testing.data import make_target_items


class _TinyModel:
    params: ClassVar[dict[str, Any]] = {}

    @pytest.fixture(autouse=True)
    def _tiny(self, tiny_ckpt, monkeypatch):
        monkeypatch.setattr(type(self), "params", {"model": str(tiny_ckpt), "window": 16, "overlap": 8})
        yield


class TestRgbToMultispectralContract(_TinyModel, GeneratorContract):
    component = RgbToMultispectralGenerator


class TestMultispectralToRgbContract(_TinyModel, GeneratorContract):
    component = MultispectralToRgbGenerator

    def make_items(self) -> list[Item]:
        return make_target_items(self.n_items, bands=13, target_bands=("red", "green", "blue"))
