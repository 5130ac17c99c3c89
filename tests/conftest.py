"""Shared fixtures for the core tests."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
LEVIR = REPO / "examples" / "data" / "levir-cd"


@pytest.fixture
def levir_dir() -> Path:
    """The bundled LEVIR-CD sample (A/, B/, label/, list/)."""
    return LEVIR
