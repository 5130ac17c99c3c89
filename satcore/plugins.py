"""Plugin discovery and the component catalogue.

Plugins are found through the ``satcore`` entry-point group with :mod:`importlib.metadata` (what pluggy uses
too; the ``entrypoints`` package is maintenance-only). Each entry point is loaded inside ``try``: a plugin
that fails to import is recorded as a :class:`~satcore.errors.PluginLoadError` and shown by
``satcore plugins``, never fatal for the host.
"""

from __future__ import annotations

import difflib
import os
import sys
from dataclasses import dataclass
from importlib import metadata
from types import ModuleType
from typing import TYPE_CHECKING, Any, cast

import pluggy

from satcore import hookspecs, registry
from satcore.errors import PluginConflictError, PluginLoadError, UnknownComponentError
from satcore.kinds import KIND_HOOKS

if TYPE_CHECKING:
    from satcore.components import Component

GROUP = "satcore"


@dataclass
class PluginInfo:
    """One registered plugin."""

    name: str
    distribution: str | None
    version: str | None
    module: str


def _env_list(name: str) -> list[str] | None:
    raw = os.environ.get(name)
    if raw is None:
        return None
    return [p.strip() for p in raw.split(",") if p.strip()]


class SatcorePluginManager(pluggy.PluginManager):
    """pluggy's manager plus load-error bookkeeping and a component catalogue."""

    def __init__(self) -> None:
        super().__init__(GROUP)
        self.add_hookspecs(hookspecs)
        self.load_errors: list[PluginLoadError] = []
        self.info: dict[str, PluginInfo] = {}
        self._catalogue: dict[str, dict[str, type[Component]]] | None = None
        #: kind → name → the classes of several plugins registering that name (see :meth:`catalogue`)
        self.clashes: dict[str, dict[str, list[type[Component]]]] = {k: {} for k in KIND_HOOKS}
        self._qualified: dict[tuple[str, str], type[Component]] = {}

    # ---------------------------------------------------------------- registration
    def register_plugin(self, module: Any, name: str, distribution: str | None = None,
                        version: str | None = None) -> None:
        """Register a module as a plugin and remember where it came from."""
        self.register(module, name=name)
        self.info[name] = PluginInfo(name, distribution, version, getattr(module, "__name__", repr(module)))
        self._catalogue = None

    def unregister_plugin(self, name: str) -> None:
        """Remove a plugin by name."""
        plugin = self.get_plugin(name)
        if plugin is not None:
            self.unregister(plugin)
        self.info.pop(name, None)
        self._catalogue = None

    def load_entrypoints(self) -> None:
        """Load every entry point of the group, honouring the escape-hatch variables."""
        only = _env_list("SATCORE_LOAD_PLUGINS")
        disabled = set(_env_list("SATCORE_DISABLE_PLUGINS") or [])
        seen: set[str] = set()
        for ep in sorted(metadata.entry_points(group=GROUP), key=lambda e: e.name):
            if ep.name in seen or ep.name in disabled or (only is not None and ep.name not in only):
                continue
            seen.add(ep.name)
            dist = getattr(ep, "dist", None)
            dist_name = dist.metadata["Name"] if dist is not None else None
            version = dist.version if dist is not None else None
            try:
                module = ep.load()
                self.register_plugin(module, ep.name, dist_name, version)
            except Exception as exc:  # a broken plugin must not take the host down (llm#1280)
                self.load_errors.append(PluginLoadError(ep.name, dist_name, exc))
                continue
            try:
                self.check_pending()  # a misspelt hook name fails this plugin only, with a hint
            except pluggy.PluginValidationError as exc:
                self.unregister_plugin(ep.name)
                self.load_errors.append(PluginLoadError(ep.name, dist_name, _hook_hint(exc)))
        self.check_pending()
        if os.environ.get("SATCORE_TRACE_PLUGINS"):
            self.trace.root.setwriter(lambda msg: sys.stderr.write(msg))
            self.enable_tracing()

    # ---------------------------------------------------------------- catalogue
    def catalogue(self) -> dict[str, dict[str, type[Component]]]:
        """``kind → name → class`` for every registered component whose name is unambiguous.

        A name that two plugins register for one kind is left out here and kept in :attr:`clashes`: only a
        spec that uses it fails (:meth:`get_component`), saying which distributions clash and how to choose.
        """
        if self._catalogue is not None:
            return self._catalogue
        every: dict[str, dict[str, list[type[Component]]]] = {k: {} for k in KIND_HOOKS}
        for kind, hook_name in KIND_HOOKS.items():
            hook = getattr(self.hook, hook_name)
            for impl in hook.get_hookimpls():  # pluggy lists them in registration order
                info = self.info.get(impl.plugin_name)
                try:
                    classes = impl.function() or []
                except Exception as exc:  # a hook that raises is reported like an import failure
                    self.load_errors.append(
                        PluginLoadError(impl.plugin_name, info.distribution if info else None, exc))
                    continue
                for cls in classes:
                    if not getattr(cls, "name", ""):
                        raise PluginConflictError(f"plugin {impl.plugin_name!r} registers {cls.__qualname__} "
                                                  "without a `name`")
                    found = every[kind].setdefault(cls.name, [])
                    if cls in found:
                        continue
                    cls.plugin_name = impl.plugin_name
                    cls.distribution = info.distribution if info else None
                    found.append(cls)
        cat: dict[str, dict[str, type[Component]]] = {k: {} for k in KIND_HOOKS}
        self.clashes = {k: {} for k in KIND_HOOKS}
        self._qualified = {}
        for kind, names in every.items():
            for name, classes in names.items():
                for cls in classes:
                    for owner in {cls.plugin_name, cls.distribution} - {None}:
                        self._qualified[(kind, f"{owner}:{name}")] = cls
                if len(classes) == 1:
                    cat[kind][name] = classes[0]
                else:
                    self.clashes[kind][name] = classes
        self._catalogue = cat
        return cat

    def clash_messages(self) -> list[str]:
        """One sentence per ambiguous component name (for ``satcore plugins``)."""
        self.catalogue()
        return [self._clash_message(kind, name, classes)
                for kind, names in self.clashes.items() for name, classes in names.items()]

    @staticmethod
    def _clash_message(kind: str, name: str, classes: list[type[Component]]) -> str:
        who = ", ".join(f"{c.plugin_name!r} ({c.distribution or 'unknown distribution'}, "
                        f"{c.__module__}.{c.__qualname__})" for c in classes)
        choices = " or ".join(f"`type: {c.plugin_name}:{name}`" for c in classes)
        count = "two" if len(classes) == 2 else str(len(classes))
        return (f"{count} plugins register a {kind} named {name!r}: {who}; choose one with "
                f"{choices}, or disable the other (SATCORE_DISABLE_PLUGINS=<plugin>) or uninstall it")

    def components(self, kind: str) -> dict[str, type[Component]]:
        """Registered components of one kind (ambiguous names left out: see :attr:`clashes`)."""
        return self.catalogue()[kind]

    def get_component(self, name: str, kinds: tuple[str, ...] | None = None) -> type[Component]:
        """The component class called ``name`` (searching ``kinds``).

        ``name`` may be qualified as ``<plugin>:<name>`` (entry-point or distribution name) to choose between
        plugins that register the same name.

        Raises:
            UnknownComponentError: no such component, with did-you-mean or the package to install.
            PluginConflictError: two plugins register ``name``; the message says how to choose.
        """
        cat = self.catalogue()
        kinds = kinds or tuple(cat)
        for kind in kinds:
            if name in cat[kind]:
                return cat[kind][name]
            if (kind, name) in self._qualified:
                return self._qualified[(kind, name)]
        for kind in kinds:
            if name in self.clashes[kind]:
                raise PluginConflictError(self._clash_message(kind, name, self.clashes[kind][name]))
        raise UnknownComponentError(self.unknown_message(name, kinds))

    def unknown_message(self, name: str, kinds: tuple[str, ...] | None = None) -> str:
        """Why ``name`` is not a component: the plugin providing it is not installed, or a typo's close match.

        ``step type 'clip-zeroshot' is provided by satcore-clip, which is not installed: pip install -e
        plugins/satcore-clip`` or ``unknown step type 'cva2' — did you mean 'cva'?``.
        """
        from satcore.catalogue import plugin_catalogue

        cat = self.catalogue()
        kinds = kinds or tuple(cat)
        known = sorted({n for k in kinds for n in [*cat[k], *self.clashes.get(k, {})]})
        what = "source type" if kinds == ("source",) else "step type"
        catalogue = plugin_catalogue()
        provider = catalogue.provider(name)
        if provider is not None:
            return (f"{what} {name!r} is provided by {provider['name']}, which is not installed: "
                    f"{catalogue.install_command(name)}")
        msg = f"unknown {what} {name!r}"
        close = difflib.get_close_matches(name, known + sorted(catalogue.components()), n=1, cutoff=0.6)
        if close:
            msg += f" — did you mean {close[0]!r}?"
            if close[0] not in known:
                msg += " " + catalogue.install_hint(close[0])
        else:
            msg += f"; installed: {', '.join(known) or 'none'}"
        return msg

    def plugin_of(self, name: str) -> PluginInfo | None:
        """Registration info of a plugin."""
        return self.info.get(name)

    def modules(self) -> list[ModuleType]:
        """Registered plugin objects."""
        return [p for p in self.get_plugins() if isinstance(p, ModuleType)]


def _hook_hint(exc: pluggy.PluginValidationError) -> pluggy.PluginValidationError:
    """Add "did you mean" to pluggy's "unknown hook" message."""
    import re

    m = re.search(r"unknown hook '([^']+)'", str(exc))
    hooks = [n for n in dir(hookspecs) if n.startswith("satcore_")]
    close = difflib.get_close_matches(m.group(1), hooks, n=1) if m else []
    if not close:
        return exc
    return pluggy.PluginValidationError(exc.plugin, f"{exc} — did you mean {close[0]!r}?")


_DEFAULT: SatcorePluginManager | None = None


def get_plugin_manager(fresh: bool = False, entrypoints: bool = True) -> SatcorePluginManager:
    """The process-wide plugin manager (built on first use), or a new one with ``fresh=True``.

    Order: hook specs → built-ins → entry points (each inside try/except) → ``check_pending``.
    """
    global _DEFAULT
    if _DEFAULT is not None and not fresh:
        return _DEFAULT
    from satcore import builtin

    pm = SatcorePluginManager()
    pm.register_plugin(builtin, "satcore", "satcore", _core_version())
    if entrypoints:
        pm.load_entrypoints()
    if not fresh:
        _DEFAULT = pm
    return pm


def set_plugin_manager(pm: SatcorePluginManager | None) -> SatcorePluginManager | None:
    """Replace the process-wide manager (tests, notebooks); returns the replaced one (``None``: none).

    The model registry follows it.
    """
    global _DEFAULT
    previous, _DEFAULT = _DEFAULT, pm
    registry.set_plugin_source(_PLUGIN_SOURCE)
    return previous


def plugin_model_aliases(pm: SatcorePluginManager | None = None) -> list[tuple[str, dict[str, Any]]]:
    """``(plugin, {alias: entry})`` from every ``satcore_register_model_aliases``, first registered first."""
    pm = pm or get_plugin_manager()
    return [(impl.plugin_name, dict(cast("dict[str, Any]", impl.function() or {})))
            for impl in reversed(pm.hook.satcore_register_model_aliases.get_hookimpls())]


def locate_weights(alias: str, entry: dict[str, Any]) -> str | None:
    """The first plugin's ``satcore_locate_weights`` answer for ``alias`` (``None``: no plugin knows it)."""
    found: str | None = get_plugin_manager().hook.satcore_locate_weights(alias=alias, entry=entry)
    return found


#: the process-wide manager's aliases and locators, handed to the registry (which imports no plugin code)
_PLUGIN_SOURCE = registry.PluginSource(aliases=lambda: plugin_model_aliases(), locate=locate_weights)
registry.set_plugin_source(_PLUGIN_SOURCE)


def _core_version() -> str:
    from satcore.version import __version__

    return __version__
