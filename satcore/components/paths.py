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
    if "\0" in str(value):  # the OS would refuse it at run time
        raise ValueError("the path contains a NUL byte (\\0), which no file name can hold: remove it")
    value = Path(os.path.expanduser(str(value)))
    if base is not None and not value.is_absolute():
        value = Path(base) / value
    longest = max((len(os.fsencode(p)) for p in value.parts), default=0)
    if longest > 255 or len(os.fsencode(value)) > 4096:  # Linux's NAME_MAX and PATH_MAX
        raise ValueError(f"the path is too long ({len(str(value)):,} characters; at most 255 bytes per name "
                         "and 4,096 in all): shorten it")
    return value


#: A filesystem path; relative paths are taken relative to the spec file.
SpecPath = Annotated[Path, AfterValidator(resolve_spec_path), Field(json_schema_extra={"format": "path"})]
