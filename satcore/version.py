"""The version of satcore, in a module that imports nothing.

Modules inside satcore read it from here, never from the ``satcore`` package itself: the package's
``__init__`` is the public facade and imports the engine (lazily) for :func:`satcore.run`, so an import of
the facade from inside would close an import cycle (see docs/architecture.md).
"""

from __future__ import annotations

__all__ = ["__version__"]

__version__ = "0.1.0"
