"""Built-in components, registered through the same hooks as any plugin."""

from __future__ import annotations

from typing import Any

from satcore.hookspecs import hookimpl


@hookimpl
def satcore_register_sources() -> list[type[Any]]:
    """The built-in sources."""
    from satcore.builtin.sources import BUILTIN_SOURCES

    return list(BUILTIN_SOURCES)
