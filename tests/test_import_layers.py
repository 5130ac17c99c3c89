"""The import layers and the no-cycle rule of pyproject.toml's [tool.importlinter], checked by lint-imports.

The same command runs in .ci/run; these tests also show that the checks can fail (a reversed layer pair, a
cycle closed by a function-level import, an import of the facade).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
LINT = "from importlinter.cli import lint_imports_command; lint_imports_command()"


def lint_imports(*args: str, cwd: Path = REPO, path: Path = REPO) -> subprocess.CompletedProcess[str]:
    """``lint-imports ARGS`` in ``cwd``, analysing the package found first on ``path`` (this checkout)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(path), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, "-c", LINT, "--no-cache", "--no-logo", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def test_satcore_keeps_its_import_contracts() -> None:
    proc = lint_imports()
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]
    assert "3 kept, 0 broken" in proc.stdout


def test_a_reversed_layer_pair_fails(tmp_path: Path) -> None:
    """components imports data (components.source); declaring data above components must break."""
    cfg = tmp_path / "reversed.toml"
    cfg.write_text(textwrap.dedent("""
        [tool.importlinter]
        root_package = "satcore"
        exclude_type_checking_imports = true

        [[tool.importlinter.contracts]]
        name = "reversed"
        type = "layers"
        containers = ["satcore"]
        layers = ["data", "components"]
    """))
    proc = lint_imports(str(cfg))
    assert proc.returncode == 1, proc.stdout
    assert "satcore.components is not allowed to import satcore.data" in proc.stdout


def _package(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / "cyc" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    cfg = root / "contracts.toml"
    # the two satcore contracts that are about cycles, on a package of our own
    text = (REPO / "pyproject.toml").read_text()
    start = text.index('[[tool.importlinter.contracts]]\nid = "acyclic"')
    end = text.index("\n[tool.mypy]")
    cfg.write_text('[tool.importlinter]\nroot_package = "cyc"\nexclude_type_checking_imports = true\n\n'
                   + text[start:end].replace('"satcore', '"cyc'))
    return cfg


@pytest.mark.parametrize(("b_body", "broken"), [
    ("def f():\n    from cyc import a\n", "No import cycles"),  # function-level: counted
    ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from cyc import a\n", None),  # never runs
    ("import cyc\n", "imports the satcore facade"),  # cyc/__init__ imports cyc.a (lazily): a cycle
])
def test_cycles_are_caught_function_level_imports_included(
    tmp_path: Path, b_body: str, broken: str | None
) -> None:
    cfg = _package(tmp_path, {
        "__init__.py": "def run():\n    from cyc import a\n",
        "a.py": "from cyc import b\n",
        "b.py": b_body,
    })
    proc = lint_imports(str(cfg), cwd=tmp_path, path=tmp_path)
    if broken is None:
        assert proc.returncode == 0, proc.stdout
    else:
        assert proc.returncode == 1, proc.stdout
        broken_part = proc.stdout.split("Broken contracts")[1]
        assert broken in broken_part.replace("\n", " ")  # (the contract names are kept as in pyproject.toml)
