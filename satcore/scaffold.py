"""``satcore new-plugin``: scaffold a plugin package that installs, registers and passes its tests.

The templates live in ``satcore/templates/`` (package data): ``common/`` for the files every plugin has and
one folder per component kind for the component and its tests. Placeholders are ``{{name}}``-style tokens
replaced verbatim, so the templates stay readable Python (no template engine, no escaping).

One package may hold several kinds (``--kind detector --kind recognizer``), and ``--into`` adds kinds to a
package scaffolded before. Component names (the YAML ``type:``): the first kind's is the plugin NAME, every
further kind's ``NAME-<kind>`` (``demo``, ``demo-recognizer``), so no two share a name. A name an installed
plugin already uses is refused.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from satcore.errors import UsageError
from satcore.kinds import KIND_NAMES, KIND_TABLE

#: detector first: the most common kind to write
KINDS = ("detector", *(k for k in KIND_NAMES if k != "detector"))
#: A plugin name: lower-case words joined by single hyphens; it becomes the component's ``type:`` too.
NAME_PATTERN = re.compile(r"^[a-z][a-z0-9]*(?:-[a-z0-9]+)*$")

_SUMMARIES = {k.name: k.description for k in KIND_TABLE} | {"detector": "a per-pixel change detector"}


@dataclass(frozen=True)
class PluginNames:
    """Every name derived from the plugin NAME (``my-thing``)."""

    name: str          # my-thing: plugin, entry point and component ``type:``
    dist: str          # satcore-my-thing: distribution and folder
    pkg: str           # satcore_my_thing: import package
    prefix: str        # MyThing
    kind: str          # detector
    cls: str           # MyThingDetector
    module: str        # detectors
    component: str = ""  # the component's ``type:``: my-thing, or my-thing-recognizer for a further kind

    def __post_init__(self) -> None:
        if not self.component:
            object.__setattr__(self, "component", self.name)

    def tokens(self) -> dict[str, str]:
        """Placeholder → value."""
        return {
            "{{name}}": self.name, "{{dist}}": self.dist, "{{pkg}}": self.pkg, "{{prefix}}": self.prefix,
            "{{kind}}": self.kind, "{{Kind}}": self.kind.title(), "{{cls}}": self.cls,
            "{{module}}": self.module, "{{component}}": self.component,
            "{{summary}}": f"{_SUMMARIES[self.kind][0].upper()}{_SUMMARIES[self.kind][1:]} for satcore.",
        }


def validate_name(name: str) -> str:
    """Return ``name`` if it is a valid plugin name, else raise :class:`UsageError` saying why."""
    if name.startswith(("satcore-", "satcore_")):
        short = name[len("satcore-"):].replace("_", "-")
        raise UsageError(f"plugin name {name!r}: give the short name without the satcore- prefix "
                         f"(satcore new-plugin {short} creates satcore-{short}/)")
    if not NAME_PATTERN.match(name):
        split_camel = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "-", name).lower()
        suggestion = re.sub(r"[^a-z0-9]+", "-", split_camel).strip("-")
        hint = f" — e.g. {suggestion!r}" if suggestion and NAME_PATTERN.match(suggestion) else ""
        raise UsageError(f"plugin name {name!r} is not kebab-case: use lower-case letters and digits joined "
                         f"by single hyphens, starting with a letter{hint}")
    return name


def plugin_names(name: str, kind: str, first: bool = True) -> PluginNames:
    """Derive the distribution, package, class, module and component names.

    ``first``: the package's first kind, whose component is called NAME; a further kind's is ``NAME-<kind>``.
    """
    validate_name(name)
    if kind not in KINDS:
        raise UsageError(f"unknown component kind {kind!r}; choose one of: {', '.join(KINDS)}")
    prefix = "".join(part.title() for part in name.split("-"))
    return PluginNames(name=name, dist=f"satcore-{name}", pkg=f"satcore_{name.replace('-', '_')}",
                       prefix=prefix, kind=kind, cls=f"{prefix}{kind.title()}", module=f"{kind}s",
                       component=name if first else f"{name}-{kind}")


def _render(text: str, tokens: dict[str, str]) -> str:
    for key, value in tokens.items():
        text = text.replace(key, value)
    left = re.findall(r"\{\{\w+\}\}", text)
    if left:  # a template bug, not a user error
        raise RuntimeError(f"unreplaced template placeholders: {sorted(set(left))}")
    return text


def _templates() -> Any:
    return resources.files("satcore") / "templates"


def _render_file(folder: str, template: str, tokens: dict[str, str]) -> str:
    return _render((_templates() / folder / template).read_text(encoding="utf-8"), tokens)


def component_files(names: PluginNames) -> tuple[dict[str, str], str, str]:
    """A component's files (relative path → content), its hook block for ``__init__.py``, its README part."""
    tokens = names.tokens()
    tokens["{{usage}}"] = _usage(names)
    component = _render_file(names.kind, "component.py.tmpl", tokens)
    tokens["{{params_doc}}"] = _params_from_source(component)
    files = {f"{names.pkg}/{names.module}.py": component,
             f"tests/test_{names.module}.py": _render_file(names.kind, "test_component.py.tmpl", tokens)}
    return (files, _render_file("common", "hook.py.tmpl", tokens),
            _render_file("common", "component-section.md.tmpl", tokens))


def _changelog_line(names: PluginNames) -> str:
    return (f"- The {names.kind} `{names.component}` ({names.cls}), scaffolded with `satcore new-plugin "
            f"{names.name} --kind {names.kind}`.\n")


def plugin_files(names: PluginNames | Sequence[PluginNames]) -> dict[str, str]:
    """Relative path → rendered content of every file of a new plugin with one or several components."""
    comps = [names] if isinstance(names, PluginNames) else list(names)
    first = comps[0]
    tokens = first.tokens()
    if len(comps) > 1:
        tokens["{{summary}}"] = f"Components for satcore: {', '.join(c.kind + 's' for c in comps)}."
    tokens["{{provides}}"] = ", ".join(f"the {c.kind} `{c.component}`" for c in comps)
    files: dict[str, str] = {}
    hooks = readme = changes = ""
    for c in comps:
        own, hook, section = component_files(c)
        files.update(own)
        hooks += hook
        readme += section
        changes += _changelog_line(c)
    return {
        "pyproject.toml": _render_file("common", "pyproject.toml.tmpl", tokens),
        "README.md": _render_file("common", "README.md.tmpl", tokens) + readme,
        "CHANGELOG.md": _render_file("common", "CHANGELOG.md.tmpl", tokens) + changes,
        ".gitignore": _render_file("common", "gitignore.tmpl", tokens),
        f"{first.pkg}/__init__.py": _render_file("common", "__init__.py.tmpl", tokens) + hooks,
        f"{first.pkg}/py.typed": "",
        **files,
    }


def installed_owner(component: str) -> str | None:
    """The distribution (or plugin) of an installed component called ``component``, if any."""
    from satcore.plugins import get_plugin_manager

    pm = get_plugin_manager()
    for kind, comps in pm.catalogue().items():
        if component in comps:
            cls = comps[component]
            return f"{cls.distribution or cls.plugin_name} ({kind})"
        if component in pm.clashes.get(kind, {}):
            clash = pm.clashes[kind][component]
            return ", ".join(f"{c.distribution or c.plugin_name} ({kind})" for c in clash)
    return None


def _refuse_taken(comps: Sequence[PluginNames]) -> None:
    for c in comps:
        owner = installed_owner(c.component)
        if owner:
            raise UsageError(f"the name {c.component!r} is already used by an installed plugin: {owner}; two "
                             "components of one name make every spec that uses it ambiguous: choose another "
                             "NAME (nothing was changed)")


def _usage(names: PluginNames) -> str:
    if names.kind == "source":
        source, step = f"{{type: {names.component}, root: data/pairs}}", "{id: change, type: cva}"
    else:
        source = "{type: folder-pairs, root: data/levir-cd}"
        step = f"{{id: {names.kind}, type: {names.component}}}"
    return f"version: 1\nsource: {source}\nsteps:\n  - {step}\noutput: {{dir: runs/{names.name}}}"


def _params_from_source(component: str) -> str:
    """A bullet list of the params fields, read from the rendered component source (no import needed)."""
    import ast

    lines = []
    for node in ast.walk(ast.parse(component)):
        if not (isinstance(node, ast.ClassDef) and node.name.endswith("Params")):
            continue
        for stmt in node.body:
            if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name) and isinstance(
                    stmt.value, ast.Call):
                desc = next((str(k.value.value) for k in stmt.value.keywords
                             if k.arg == "description" and isinstance(k.value, ast.Constant)), "")
                lines.append(f"- `{stmt.target.id}`: {desc}")
    return "\n".join(lines) or "- (none)"


def _kinds(kind: str | Sequence[str]) -> list[str]:
    kinds = [kind] if isinstance(kind, str) else list(kind)
    if not kinds:
        raise UsageError("give at least one --kind")
    dup = sorted({k for k in kinds if kinds.count(k) > 1})
    if dup:
        raise UsageError(f"--kind {dup[0]} is given twice; one component per kind and package")
    return kinds


def scaffold_plugin(name: str, kind: str | Sequence[str] = "detector",
                    directory: str | os.PathLike[str] = ".", check_installed: bool = True) -> Path:
    """Create ``<directory>/satcore-<name>/`` with a pyproject, a working component per kind and tests.

    Args:
        name: the plugin name (kebab-case); the first kind's component is called so.
        kind: one kind or several (a component of each in one package).
        directory: where the package folder goes.
        check_installed: refuse component names that an installed plugin already uses.

    Raises:
        UsageError: the name is not kebab-case or taken, a kind is unknown, or the folder already exists.

    Returns:
        The new plugin folder.
    """
    kinds = _kinds(kind)
    comps = [plugin_names(name, k, first=i == 0) for i, k in enumerate(kinds)]
    names = comps[0]
    parent = Path(directory)
    target = parent / names.dist
    if target.exists():
        raise UsageError(f"{target} already exists; choose another NAME or --dir, or add a kind to it with "
                         f"--into {target} (nothing was changed)")
    if check_installed:
        _refuse_taken(comps)
    files = plugin_files(comps)
    parent.mkdir(parents=True, exist_ok=True)
    # write into a sibling temp folder and rename, so a failure never leaves a half-made plugin behind
    tmp = Path(tempfile.mkdtemp(prefix=f".{names.dist}-", dir=parent))
    try:
        for rel, content in files.items():
            path = tmp / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(content, encoding="utf-8")
        tmp.rename(target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def add_to_plugin(name: str, kind: str | Sequence[str], into: str | os.PathLike[str],
                  check_installed: bool = True) -> list[Path]:
    """Add a component of each ``kind`` to the plugin package ``into`` that ``new-plugin NAME`` made.

    The components are called ``NAME-<kind>``; their modules, tests, hooks (appended to the package's
    ``__init__.py``), README sections and CHANGELOG lines are added. Nothing is changed if anything is
    wrong.

    Raises:
        UsageError: ``into`` is not NAME's scaffolded package, it already has that kind, or the name is taken.

    Returns:
        The files written or changed.
    """
    kinds = _kinds(kind)
    comps = [plugin_names(name, k, first=False) for k in kinds]
    root = Path(into)
    init = root / comps[0].pkg / "__init__.py"
    if not init.is_file():
        raise UsageError(f"{root} is not the package of plugin {name!r} (no {comps[0].pkg}/__init__.py); "
                         f"give the folder that `satcore new-plugin {name}` created (nothing was changed)")
    init_text = init.read_text(encoding="utf-8")
    for c in comps:
        if f"def satcore_register_{c.kind}s(" in init_text or (root / c.pkg / f"{c.module}.py").exists():
            raise UsageError(f"{root} already has a {c.kind} ({c.pkg}/{c.module}.py or its hook in "
                             f"{init.name}); add components of that kind to it by hand (nothing was changed)")
    if check_installed:
        _refuse_taken(comps)
    changes: dict[Path, str] = {}
    readme, changelog = root / "README.md", root / "CHANGELOG.md"
    texts = {p: p.read_text(encoding="utf-8") if p.exists() else "" for p in (init, readme, changelog)}
    for c in comps:
        own, hook, section = component_files(c)
        changes.update({root / rel: text for rel, text in own.items()})
        texts[init] += hook
        texts[readme] += section
        texts[changelog] += _changelog_line(c)
    changes.update(texts)
    from satcore.io import write_text

    for path, text in changes.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        write_text(path, text)
    return sorted(changes)
