"""The files ``var-forecast`` leaves in ``artifacts/<step_id>/`` and its report sections.

- ``locations/<item>.json``: one per location (written while the run streams, by whichever process scored
  it): the series, forecast, interval and the row's columns.
- ``table.csv`` and ``table.parquet``: thesis Table 2 (index, item_id, lat, lon, then per feature RMSE, AIC,
  fall-in-CI and its denominator, and the flag), rows in item-id order.
- ``locations.gpkg``: the locations as EPSG:4326 points with their flag, score and per-feature columns
  (layer ``locations``).

The tables are rebuilt from ``locations/`` by :func:`write_tables` at the end of the run (the step's teardown
in the main process, after every executor finished) and again by the report, so a resumed or distributed run
gets one table with every location.
"""

from __future__ import annotations

import html
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from satcore.io import atomic_path

#: The per-feature columns of Table 2, in order.
FEATURE_COLUMNS = ("rmse", "aic", "fall_in_ci", "fall_in_ci_n")


def read_locations(step_dir: Path) -> list[dict[str, Any]]:
    """Every ``locations/*.json`` of a step, in item-id order."""
    files = sorted((step_dir / "locations").glob("*.json"))
    docs = [json.loads(p.read_text(encoding="utf-8")) for p in files]
    return sorted(docs, key=lambda d: str(d["item_id"]))


def table_frame(docs: list[dict[str, Any]]) -> Any:
    """Table 2 as a pandas DataFrame."""
    import pandas as pd

    rows = []
    for i, d in enumerate(docs):
        cols = d["columns"]
        row: dict[str, Any] = {"index": i, "item_id": d["item_id"], "lat": d["lat"], "lon": d["lon"]}
        for name in d["names"]:
            for c in FEATURE_COLUMNS:
                row[f"{name}_{c}"] = cols.get(f"{name}_{c}")
        row.update({"aic": cols.get("aic"), "lag_order": cols.get("lag_order"), "flag": d["label"],
                    "score": d["score"]})
        rows.append(row)
    return pd.DataFrame(rows)


def write_gpkg(path: Path, frame: Any) -> None:
    """The locations as points (EPSG:4326) with the table's columns, written atomically with pyogrio."""
    import pyogrio.raw
    import shapely

    ok = frame["lat"].notna() & frame["lon"].notna()
    f = frame[ok].reset_index(drop=True)
    geom = shapely.to_wkb(shapely.points(f["lon"].to_numpy(float), f["lat"].to_numpy(float)))
    fields = [c for c in f.columns if c not in ("lat", "lon")]
    data = []
    for c in fields:
        col = f[c]
        if col.dtype == object:
            data.append(np.asarray(["" if v is None else str(v) for v in col], dtype=object))
        else:
            data.append(col.to_numpy(dtype=np.float64) if col.dtype.kind == "f" or col.isna().any()
                        else col.to_numpy())
    # GDAL wants the .gpkg extension (it warns on satcore.io's temporary name): a temporary file of our own,
    # renamed into place, so a reader never sees half a GeoPackage
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.partial.gpkg")
    try:
        pyogrio.raw.write(str(tmp), geometry=np.asarray(geom, dtype=object), field_data=data, fields=fields,
                          crs="EPSG:4326", geometry_type="Point", driver="GPKG", layer="locations")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_tables(step_dir: Path) -> Any:
    """``table.csv``, ``table.parquet`` and ``locations.gpkg`` from ``locations/``; returns the frame."""
    docs = read_locations(step_dir)
    frame = table_frame(docs)
    if frame.empty:
        return frame
    with atomic_path(step_dir / "table.csv") as tmp:
        frame.to_csv(tmp, index=False)
    with atomic_path(step_dir / "table.parquet") as tmp:
        frame.to_parquet(tmp, index=False)
    write_gpkg(step_dir / "locations.gpkg", frame)
    return frame


def _plot_location(doc: dict[str, Any]) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from satcore.plots import fig_to_html

    names = doc["names"][:4]
    t = np.arange(len(doc["times"]))
    n = int(doc["n_train"])
    fig, axes = plt.subplots(len(names), 1, figsize=(7, 2.0 * len(names)), squeeze=False, sharex=True)
    obs = np.asarray(doc["observed"], dtype=float)
    fc, lo, hi = (np.asarray(doc[k], dtype=float) for k in ("forecast", "lower", "upper"))
    for k, name in enumerate(names):
        ax = axes[k, 0]
        ax.plot(t, obs[:, k], "o-", ms=3, color="0.2", label="observed")
        ax.plot(t[n:], fc[:, k], "-", color="tab:blue", label="forecast")
        ax.fill_between(t[n:], lo[:, k], hi[:, k], color="tab:blue", alpha=0.25,
                        label=f"{1 - doc['alpha']:.0%} interval ({doc['interval']})")
        ax.axvline(n - 0.5, color="0.5", ls="--", lw=0.8)
        frac = doc["columns"].get(f"{name}_fall_in_ci")
        ax.set_ylabel(name)
        ax.set_title(f"{name}: fall-in-CI {'n/a' if frac is None else f'{frac:.2f}'}", fontsize=9)
    axes[0, 0].legend(fontsize=7, loc="best")
    step = max(1, len(t) // 8)
    axes[-1, 0].set_xticks(t[::step], [str(s)[:10] for s in doc["times"][::step]], rotation=30, fontsize=7)
    flag = "change" if doc["label"] == 1 else "no change" if doc["label"] == 0 else "undecided"
    fig.suptitle(f"{doc['item_id']} ({flag})", fontsize=10)
    return fig_to_html(fig, f"forecast of {doc['item_id']}")


def report_sections(run_dir: Path, step_id: str, max_plots: int | None = None) -> list[tuple[str, str]]:
    """Table 2 and up to ``max_plots`` forecast plots (flagged locations first)."""
    step_dir = run_dir / "artifacts" / step_id
    if not (step_dir / "locations").is_dir():
        return []
    docs = read_locations(step_dir)
    frame = write_tables(step_dir)
    if frame.empty:
        return []
    sections = [("Locations (thesis Table 2)",
                 "<p>Fall-in-CI denominators: the <code>_fall_in_ci_n</code> columns (observed "
                 "values over the "
                 f"{'held-out forecast dates' if docs[0]['fall_in'] == 'forecast' else 'training dates'}). "
                 f"Files: <code>artifacts/{html.escape(step_id)}/table.csv</code>, "
                 "<code>locations.gpkg</code>."
                 "</p>" + frame.to_html(index=False, float_format=lambda v: f"{v:.4g}", na_rep="null"))]
    limit = max_plots if max_plots is not None else int(docs[0].get("plots", 6))
    order = sorted(docs, key=lambda d: (d["label"] != 1, -(d["score"] or 0.0), str(d["item_id"])))
    figs = [_plot_location(d) for d in order[:limit]]
    if figs:
        sections.append(("Forecasts with intervals (thesis Figure 7)", "".join(figs)))
    return sections
