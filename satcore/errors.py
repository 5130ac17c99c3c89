"""User-facing errors.

Every problem a user can fix derives from :class:`SatcoreError`; the CLI prints those without a traceback
and maps them to exit codes (2 for spec/usage problems, 1 for a run that had to stop).
"""

from __future__ import annotations

from collections.abc import Sequence


class SatcoreError(Exception):
    """Base class for problems the user can act on."""

    exit_code = 1


class SpecError(SatcoreError, ValueError):
    """The pipeline spec (or a CLI usage) is wrong; nothing ran.

    Holds every problem found at once, each already formatted as ``file:line key.path: message``.
    """

    exit_code = 2

    def __init__(self, problems: Sequence[str] | str, source: str | None = None) -> None:
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        self.source = source
        head = f"{source}: " if source else ""
        if len(self.problems) == 1:
            msg = (head + self.problems[0] if not self.problems[0].startswith(source or "\0")
                   else self.problems[0])
        else:
            msg = f"{len(self.problems)} problems in {source or 'the spec'}:\n" + "\n".join(
                f"  - {p}" for p in self.problems
            )
        super().__init__(msg)


class UsageError(SpecError):
    """The command line is wrong (existing output folder, bad option)."""


class UnknownComponentError(SatcoreError, KeyError):
    """A ``type:`` names no installed component."""

    exit_code = 2

    def __str__(self) -> str:  # KeyError quotes its message otherwise
        return str(self.args[0]) if self.args else ""


class PluginLoadError(SatcoreError):
    """A plugin's entry point failed to import; recorded and reported, never fatal for the host."""

    def __init__(self, name: str, distribution: str | None, exception: BaseException) -> None:
        self.name = name
        self.distribution = distribution
        self.exception = exception
        dist = f" (distribution {distribution})" if distribution else ""
        super().__init__(f"plugin {name!r}{dist} failed to load: {type(exception).__name__}: {exception}")


class PluginConflictError(SatcoreError):
    """Two plugins register a component of the same kind under the same name."""

    exit_code = 2


class MissingWeightsError(SatcoreError, FileNotFoundError):
    """Model weights are not present locally; the message lists the places searched and how to supply them."""

    def __init__(self, alias: str, searched: Sequence[str], how_to: str) -> None:
        self.alias = alias
        self.searched = list(searched)
        self.how_to = how_to
        places = "\n".join(f"    {i}. {p}" for i, p in enumerate(self.searched, 1))
        super().__init__(
            f"weights for model {alias!r} were not found. Searched, in order:\n{places}\n  To fix: {how_to}"
        )

    def __str__(self) -> str:
        return str(self.args[0])


class MissingDependencyError(SatcoreError, ImportError):
    """A component needs a package that is not installed; the message gives the exact ``pip install``."""

    def __init__(self, package: str, needed_by: str, install: str | None = None) -> None:
        self.package = package
        self.needed_by = needed_by
        self.install = install or f"pip install {package}"
        super().__init__(f"{needed_by} needs the package {package!r}, which is not installed: {self.install}")


class ComponentError(SatcoreError):
    """One item could not be processed; recorded in ``errors.jsonl`` and the run goes on."""

    def __init__(self, message: str, item_id: str | None = None, step: str | None = None) -> None:
        self.item_id = item_id
        self.step = step
        super().__init__(message)


class RunStopped(SatcoreError):
    """The run had to stop (``on_error: fail``, or setup failed)."""

    exit_code = 1


class ResumeError(SatcoreError):
    """``--resume`` was asked for a run whose spec changed, or the output folder is in the way."""

    exit_code = 2
