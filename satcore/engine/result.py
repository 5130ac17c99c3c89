"""``RunResult``: what a finished run hands back to its caller (``satcore.run``, the CLI, tests)."""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd


@dataclass
class RunResult:
    """What a run produced.

    The three counts add up to the items in ``results.parquet``: ``items_ok`` and ``items_failed`` are the
    items this run processed, ``items_skipped`` those an earlier run had finished (``--resume``), which are
    kept as they were.
    """

    output_dir: Path
    items_ok: int
    items_failed: int
    items_skipped: int
    metrics: dict[str, Any] | None
    manifest: dict[str, Any] = field(default_factory=dict)
    #: things the user should hear about at the end of the run (also in run.log), e.g. maps not written
    notes: list[str] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        """Always 0: a run that returns completed; one that stops raises ``RunStopped`` (exit 1).

        .. deprecated:: 0.1.1
           A returned result always completed; test ``items_failed`` instead, or catch ``SatcoreError``.
        """
        warnings.warn("RunResult.exit_code is always 0 and will be removed: a run that stops raises "
                      "satcore.errors.RunStopped instead of returning", DeprecationWarning, stacklevel=2)
        return 0

    @property
    def results_path(self) -> Path:
        """``results.parquet``."""
        return self.output_dir / "results.parquet"

    def results(self) -> pd.DataFrame:
        """The per-item table."""
        import pandas as pd

        return pd.read_parquet(self.results_path)

    def errors(self) -> list[dict[str, Any]]:
        """The failed items from ``errors.jsonl``."""
        text = (self.output_dir / "errors.jsonl").read_text()
        return [json.loads(x) for x in text.splitlines() if x.strip()]
