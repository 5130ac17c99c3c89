"""Fixtures of the VAR half: the plugin manager with satcore-timeseries alone."""

from __future__ import annotations

from typing import Any

import pytest


@pytest.fixture
def pm() -> Any:
    """Built-ins + satcore-timeseries only (no entry points: independent of the sibling plugins)."""
    import satcore_timeseries

    from satcore.plugins import get_plugin_manager

    pm = get_plugin_manager(fresh=True, entrypoints=False)
    pm.register_plugin(satcore_timeseries, "timeseries", "satcore-timeseries", satcore_timeseries.__version__)
    return pm
