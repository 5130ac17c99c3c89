"""satcore-stac: a data source over STAC APIs and static catalogs (imports pystac only when used)."""

from __future__ import annotations

from typing import Any

from satcore import hookimpl

__version__ = "0.1.0"


@hookimpl
def satcore_register_sources() -> list[type[Any]]:
    """The STAC source."""
    from satcore_stac.source import StacSource

    return [StacSource]
