"""satcore's contract tests for both steps, with the tiny random BLIP from conftest (offline)."""

from __future__ import annotations

from typing import Any, ClassVar

import pytest
from satcore_vlm.steps import VlmCaptioner, VlmPromptRecognizer

from satcore.testing import CaptionerContract, RecognizerContract


class TestVlmCaptionContract(CaptionerContract):
    component = VlmCaptioner
    params: ClassVar[dict[str, Any]] = {"max_new_tokens": 6}

    @pytest.fixture(autouse=True)
    def _tiny(self, tiny_blip):
        self.model_dir = str(tiny_blip)

    def make_params(self, tmp_path):
        return {**type(self).params, "model": self.model_dir}


class TestVlmPromptContract(RecognizerContract):
    component = VlmPromptRecognizer
    params: ClassVar[dict[str, Any]] = {
        "preset": None, "prompt": "Which of {labels}?", "multi_label": True, "max_new_tokens": 6,
        "vocabulary": ["parking", "forest", "water", "urban"]}

    @pytest.fixture(autouse=True)
    def _tiny(self, tiny_blip):
        self.model_dir = str(tiny_blip)

    def make_params(self, tmp_path):
        return {**type(self).params, "model": self.model_dir}
