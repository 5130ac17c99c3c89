"""Paths in component params: relative to the spec file, ``~`` expanded.

Components declare path params with :data:`SpecPath`; the spec loader validates params with the spec file's
folder as ``base_dir`` in the pydantic validation context. It lives here, beside the params base class,
rather than in :mod:`satcore.spec`, so that components (built-in sources, plugins) need nothing from the
layer that loads specs (see docs/architecture.md).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator, Field, ValidationInfo

__all__ = ["SpecPath", "resolve_spec_path"]


def resolve_spec_path(value: Path, info: ValidationInfo) -> Path:
    """``value`` with ``~`` expanded and, if relative, taken from the spec file's folder (``base_dir``)."""
    base = (info.context or {}).get("base_dir")
    value = Path(os.path.expanduser(str(value)))
    if base is not None and not value.is_absolute():
        value = Path(base) / value
    return value


#: A filesystem path; relative paths are taken relative to the spec file.
SpecPath = Annotated[Path, AfterValidator(resolve_spec_path), Field(json_schema_extra={"format": "path"})]
