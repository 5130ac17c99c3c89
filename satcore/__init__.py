"""satcore: change detection, recognition, captioning and generation on satellite imagery.

The public API is small: :func:`run`, :func:`validate`, :data:`hookimpl` for plugins, and the component base
classes in :mod:`satcore.components`. Importing satcore loads no plugin and never imports torch.

This module is the facade for users and plugins: nothing inside satcore imports it (an import-linter
contract checks that), so its lazy imports of the engine and the spec loader cannot close a cycle.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from satcore.hookspecs import hookimpl
from satcore.version import __version__

if TYPE_CHECKING:
    from satcore.engine import RunResult
    from satcore.spec import Pipeline


def run(spec: Any, overrides: dict[str, Any] | None = None, **kwargs: Any) -> RunResult:
    """Run a pipeline spec (path or dict) and return a :class:`~satcore.engine.RunResult`.

    Keyword arguments are those of :func:`satcore.engine.run_pipeline` (``resume``, ``overwrite``,
    ``progress``, ``output_dir``).
    """
    from satcore.engine import run_pipeline

    return run_pipeline(spec, overrides=overrides, **kwargs)


def validate(spec: Any, overrides: dict[str, Any] | None = None) -> Pipeline:
    """Validate a spec (types, keys and the input chain) without loading any model."""
    from satcore.spec import load_pipeline

    return load_pipeline(spec, overrides)


__all__ = ["__version__", "hookimpl", "run", "validate"]
