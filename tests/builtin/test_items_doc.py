"""docs/items.md: its example runs, and the sources and params it names exist."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[2] / "docs" / "items.md"


def test_items_doc_example_runs():
    text = DOC.read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    assert blocks, "docs/items.md lost its python example"
    for block in blocks:
        exec(compile(block, "docs/items.md", "exec"), {})


@pytest.mark.parametrize("name, params", [
    ("folder-pairs", {"splits"}), ("folder-classes", {"rename", "band_order", "bands"}),
    ("text", {"text_column", "captions_column", "labels_column", "split_column"}),
])
def test_items_doc_names_real_sources_and_params(name, params):
    from satcore.builtin.sources import BUILTIN_SOURCES

    cls = next(c for c in BUILTIN_SOURCES if c.name == name)
    assert params <= set(cls.params_model.model_fields)
    text = DOC.read_text(encoding="utf-8")
    assert f"`{name}`" in text and all(f"`{p}" in text for p in params)
