"""Which items the report pictures (panels, map), and their inputs loaded back from the run's source."""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

#: items pictured when the spec does not say (``output.report_items``)
DEFAULT_ITEMS = 6


@dataclass
class Shown:
    """The pictured items: ids in order, how many could have been, and the sentence that says so."""

    ids: list[str]
    total: int
    note: str
    #: item id → loaded Item (``None`` where the source could not give it back)
    items: dict[str, Any] = field(default_factory=dict)
    #: why images are missing, if they are
    source_problem: str = ""


def report_items(manifest: dict[str, Any], override: int | None = None) -> int:
    """How many items to picture: ``override``, else the spec's ``output.report_items``, else 6."""
    if override is not None:
        return max(0, int(override))
    n = ((manifest.get("spec") or {}).get("output") or {}).get("report_items")
    return DEFAULT_ITEMS if n is None else max(0, int(n))


def pick_items(results: Any, maps: Path, det_ids: list[str], n: int) -> Shown:
    """The ``n`` items with maps to picture, highest image score of the first detector step first.

    Items without a score (or without that column) come after, in table order. The note says how many of
    how many, in which order, and how to show more.
    """
    ok = results[results["error"].isna()] if "error" in results.columns else results
    ids = [str(i) for i in ok["item_id"] if (maps / f"{i}.tif").exists()]
    order = "in table order"
    col = next((f"{s}.score" for s in det_ids if f"{s}.score" in ok.columns), None)
    if col is not None:
        score = dict(zip(ok["item_id"].astype(str), ok[col], strict=True))

        def key(i: str) -> tuple[bool, float]:
            v = score.get(i)
            bad = v is None or not np.isfinite(float(v))
            return bad, 0.0 if bad else -float(v)  # type: ignore[arg-type]

        ids.sort(key=key)  # stable: ties keep table order
        order = f"highest <code>{html.escape(col)}</code> first"
    chosen = ids[:n]
    note = (f"Showing {len(chosen)} of {len(ids)} items with change maps, {order}; set "
            "<code>output.report_items</code> (or <code>satcore report --items N</code>) to show more.")
    if not ids:
        note = "No item has a change map (maps/), so there is nothing to picture."
    return Shown(chosen, len(ids), note)


def load_items(manifest: dict[str, Any], shown: Shown) -> None:
    """Load the shown items back from the run's source (for their images and truth), into ``shown.items``.

    The data may have moved since the run: then ``source_problem`` says why and pictures show maps only.
    """
    try:
        from satcore.plugins import get_plugin_manager

        src_spec = dict(manifest["spec"]["source"])
        cls = get_plugin_manager().get_component(src_spec.pop("type"), ("source",))
        source: Any = cls(cls.params_model.model_validate(src_spec))
        refs = {r.item_id: r for r in source.list_items()}
    except Exception as exc:
        shown.source_problem = f"the run's source could not be read again ({type(exc).__name__}: {exc})"
        return
    for iid in shown.ids:
        try:
            shown.items[iid] = source.load(refs[iid]) if iid in refs else None
        except Exception:
            shown.items[iid] = None
    missing = [i for i in shown.ids if shown.items.get(i) is None]
    if missing:
        shown.source_problem = (f"{len(missing)} item(s) could not be loaded from the source again "
                                f"(e.g. {missing[0]}): moved or deleted since the run")
