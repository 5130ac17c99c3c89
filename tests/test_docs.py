"""The docs: generated pages are current, every hook is documented and tested, links resolve.

The hook meta-tests follow datasette's tests/test_docs.py.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

from satcore import hookspecs

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"


def _generate():
    spec = importlib.util.spec_from_file_location("satcore_docs_generate", DOCS / "generate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


generate = _generate()
HOOKS = [n for n in vars(hookspecs)
         if n.startswith("satcore_") and hasattr(getattr(hookspecs, n), "satcore_spec")]


def test_hooks_are_found():
    # guards the meta-tests below against passing vacuously
    assert len(HOOKS) >= 9 and "satcore_register_detectors" in HOOKS
    assert generate.hook_names() == sorted(HOOKS, key=lambda n: getattr(hookspecs, n).__code__.co_firstlineno)


@pytest.mark.parametrize("page", sorted(generate.GENERATED))
def test_generated_page_is_current(page):
    path = DOCS / page
    assert path.exists(), f"docs/{page} is missing: run python docs/generate.py"
    assert path.read_text(encoding="utf-8") == generate.GENERATED[page](), (
        f"docs/{page} is stale: run python docs/generate.py and commit the result")


def test_stale_check_detects_a_hand_edit(tmp_path, monkeypatch):
    for page in generate.GENERATED:
        (tmp_path / page).write_text((DOCS / page).read_text(encoding="utf-8"), encoding="utf-8")
    edited = tmp_path / "cli.md"
    edited.write_text(edited.read_text() + "\nhand edit\n")
    monkeypatch.setattr(generate, "DOCS", tmp_path)
    assert generate.stale() == ["cli.md"]
    assert generate.main(["--check"]) == 1


@pytest.mark.parametrize("hook", HOOKS)
def test_hook_is_documented(hook):
    text = (DOCS / "hooks.md").read_text(encoding="utf-8")
    assert re.search(rf"^## {hook}$", text, re.M), f"{hook} has no section in docs/hooks.md"
    doc = getattr(hookspecs, hook).__doc__ or ""
    assert "Returns:" in doc or "Args:" in doc, f"{hook}'s docstring lacks Args:/Returns:"
    assert ".. versionadded::" in doc, f"{hook}'s docstring lacks `.. versionadded::`"


def _test_sources() -> dict[Path, str]:
    files = [*REPO.glob("tests/**/*.py"), *REPO.glob("plugins/*/tests/**/*.py")]
    return {f: f.read_text(encoding="utf-8") for f in files if f.name != "test_docs.py"}


@pytest.mark.parametrize("hook", HOOKS)
def test_hook_is_referenced_in_a_test(hook):
    assert any(hook in text for text in _test_sources().values()), f"no test mentions {hook}"


def test_cli_page_lists_every_core_command():
    from satcore.cli import CORE_COMMANDS

    text = (DOCS / "cli.md").read_text(encoding="utf-8")
    for name in CORE_COMMANDS:
        assert f"## satcore {name}\n" in text


def test_spec_reference_covers_every_top_level_key():
    from satcore.spec import PipelineSpec

    text = (DOCS / "spec-reference.md").read_text(encoding="utf-8")
    for key in PipelineSpec.model_fields:
        assert f"| `{key}` |" in text


@pytest.mark.parametrize("page", sorted(p.name for p in DOCS.glob("*.md")) + ["../CONTRIBUTING.md"])
def test_relative_links_resolve(page):
    path = (DOCS / page).resolve()
    if not path.exists():
        pytest.skip(f"{page} not written yet")
    for target in re.findall(r"\]\((?!https?:|#|mailto:)([^)#\s]+)", path.read_text(encoding="utf-8")):
        assert (path.parent / target).exists(), f"{page} links to {target}, which does not exist"
