"""The first-party plugin catalogue: the ``plugins:`` section of the root ``registry.yaml``.

It says which distribution provides which component, so "not installed" errors can name the package and the
install command. Reading it imports no plugin code.
"""

from __future__ import annotations

from typing import Any

from satcore.registry import builtin_registry_path, read_registry_file


class PluginCatalogue:
    """The ``plugins:`` section: which package provides which component."""

    def __init__(self, entries: list[dict[str, Any]]) -> None:
        self.entries = entries

    def components(self) -> dict[str, dict[str, Any]]:
        """Component name → catalogue entry."""
        out: dict[str, dict[str, Any]] = {}
        for e in self.entries:
            for names in (e.get("components") or {}).values():
                for n in names:
                    out[n] = e
        return out

    def provider(self, component: str) -> dict[str, Any] | None:
        """The catalogue entry of the distribution that provides ``component`` (``None``: not listed)."""
        return self.components().get(component)

    def install_command(self, component: str) -> str | None:
        """``pip install -e plugins/satcore-clip`` for a catalogued component, else ``None``."""
        e = self.provider(component)
        if not e:
            return None
        return f"pip install -e {e.get('path') or e['name']}"

    def install_hint(self, component: str) -> str:
        """``(provided by satcore-clip: pip install -e plugins/satcore-clip)``."""
        e = self.provider(component)
        if not e:
            return ""
        return f"(provided by {e['name']}: {self.install_command(component)})"


def plugin_catalogue() -> PluginCatalogue:
    """The ``plugins:`` section of the root registry (no plugin loading)."""
    return PluginCatalogue(list(read_registry_file(builtin_registry_path()).get("plugins") or []))
