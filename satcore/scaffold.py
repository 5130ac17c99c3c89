"""``satcore new-plugin``: scaffold a plugin package that installs, registers and passes its tests.

The templates live in ``satcore/templates/`` (package data): ``common/`` for the files every plugin has and
one folder per component kind for the component and its tests. Placeholders are ``{{name}}``-style tokens
replaced verbatim, so the templates stay readable Python (no template engine, no escaping).
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

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

    def tokens(self) -> dict[str, str]:
        """Placeholder → value."""
        return {
            "{{name}}": self.name, "{{dist}}": self.dist, "{{pkg}}": self.pkg, "{{prefix}}": self.prefix,
            "{{kind}}": self.kind, "{{Kind}}": self.kind.title(), "{{cls}}": self.cls,
            "{{module}}": self.module,
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


def plugin_names(name: str, kind: str) -> PluginNames:
    """Derive the distribution, package, class and module names."""
    validate_name(name)
    if kind not in KINDS:
        raise UsageError(f"unknown component kind {kind!r}; choose one of: {', '.join(KINDS)}")
    prefix = "".join(part.title() for part in name.split("-"))
    return PluginNames(name=name, dist=f"satcore-{name}", pkg=f"satcore_{name.replace('-', '_')}",
                       prefix=prefix, kind=kind, cls=f"{prefix}{kind.title()}", module=f"{kind}s")


def _render(text: str, tokens: dict[str, str]) -> str:
    for key, value in tokens.items():
        text = text.replace(key, value)
    left = re.findall(r"\{\{\w+\}\}", text)
    if left:  # a template bug, not a user error
        raise RuntimeError(f"unreplaced template placeholders: {sorted(set(left))}")
    return text


def plugin_files(names: PluginNames) -> dict[str, str]:
    """Relative path → rendered content of every file of the new plugin."""
    root = resources.files("satcore") / "templates"
    tokens = names.tokens()
    tokens["{{usage}}"] = _usage(names)

    def render(folder: str, template: str) -> str:
        return _render((root / folder / template).read_text(encoding="utf-8"), tokens)

    component = render(names.kind, "component.py.tmpl")
    tokens["{{params_doc}}"] = _params_from_source(component)
    return {
        "pyproject.toml": render("common", "pyproject.toml.tmpl"),
        "README.md": render("common", "README.md.tmpl"),
        "CHANGELOG.md": render("common", "CHANGELOG.md.tmpl"),
        ".gitignore": render("common", "gitignore.tmpl"),
        f"{names.pkg}/__init__.py": render("common", "__init__.py.tmpl"),
        f"{names.pkg}/{names.module}.py": component,
        f"{names.pkg}/py.typed": "",
        f"tests/test_{names.module}.py": render(names.kind, "test_component.py.tmpl"),
    }


def _usage(names: PluginNames) -> str:
    if names.kind == "source":
        source, step = f"{{type: {names.name}, root: data/pairs}}", "{id: change, type: cva}"
    else:
        source = "{type: folder-pairs, root: data/levir-cd}"
        step = f"{{id: {names.kind}, type: {names.name}}}"
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


def scaffold_plugin(name: str, kind: str = "detector", directory: str | os.PathLike[str] = ".") -> Path:
    """Create ``<directory>/satcore-<name>/`` with a pyproject, a working component of ``kind`` and tests.

    Raises:
        UsageError: the name is not kebab-case, the kind is unknown, or the folder already exists.

    Returns:
        The new plugin folder.
    """
    names = plugin_names(name, kind)
    parent = Path(directory)
    target = parent / names.dist
    if target.exists():
        raise UsageError(f"{target} already exists; choose another NAME or --dir (nothing was changed)")
    files = plugin_files(names)
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
