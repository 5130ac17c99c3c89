"""The one convention every time-series feature extractor of this plugin follows.

A location-series item (from the core ``geotiff-series`` source or ``satcore-stac``) holds one raster window
per date in ``item.images`` (sorted by time; ``item.meta["times"]`` has the ISO dates). A feature extractor
returns, per item, one dict made by :func:`feature_output`:

- ``series``: float64 array ``(T, K)``: one row per date, one column per feature; NaN where a value is
  unknown (nodata, cloud-masked, outside the scene).
- ``series_names``: the K feature names (e.g. ``["B04", "NDVI"]``, ``["cloud_prob"]``,
  ``["seg_water", ..., "seg_confidence"]``, ``["sam_iou_pred", "sam_mask_score"]``). Names are unique within
  one extractor; :func:`stack_inputs` prefixes them with the step id only when two inputs clash.
- ``n_dates``: T (a scalar, so it lands in ``results.parquet``).

Such an extractor declares ``produces = ("features",)`` (and ``consumes = ("series",)``): ``var-forecast`` and
``series-diff`` consume ``features``, so ``satcore validate`` checks the chain.

A consumer with several inputs (``input: [bands, clouds, seg]``) receives ``{step_id: output}`` and calls
:func:`stack_inputs` to get one ``(T, K_total)`` matrix with its names.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np


def feature_output(names: Sequence[str], values: Any, **extra: Any) -> dict[str, Any]:
    """The output dict of a series feature extractor for one item.

    Args:
        names: the K feature names.
        values: ``(T, K)`` values (a ``(T,)`` vector is taken as one feature).
        **extra: further entries (scalars become table columns).

    Returns:
        ``{"series": (T, K) float64, "series_names": [...], "n_dates": T, **extra}``.

    Raises:
        ValueError: the names do not match the columns, or repeat.
    """
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2 or arr.shape[1] != len(names):
        raise ValueError(f"feature_output: {len(names)} names for values of shape {arr.shape}")
    if len(set(names)) != len(names):
        raise ValueError(f"feature_output: repeated feature names {list(names)}")
    return {"series": arr, "series_names": list(names), "n_dates": int(arr.shape[0]), **extra}


def stack_inputs(inputs: Mapping[str, Any] | Any) -> tuple[list[str], np.ndarray]:
    """Join the series of one item's inputs column-wise.

    Args:
        inputs: one extractor output (a dict with ``series``) or ``{step_id: output}`` from several inputs.

    Returns:
        ``(names, values)`` with values ``(T, K_total)``; names clash-free (``step.name`` on a clash).

    Raises:
        ValueError: an input has no ``series``, or the inputs disagree on the number of dates.
    """
    if isinstance(inputs, Mapping) and "series" in inputs:
        inputs = {"": inputs}
    names: list[str] = []
    cols: list[np.ndarray] = []
    seen: dict[str, int] = {}
    for step, out in inputs.items():
        if not isinstance(out, Mapping) or "series" not in out:
            raise ValueError(f"input {step!r} has no 'series' (is it a time-series feature extractor?)")
        arr = np.asarray(out["series"], dtype=np.float64)
        if arr.ndim == 1:
            arr = arr[:, None]
        for name in out["series_names"]:
            seen[name] = seen.get(name, 0) + 1
        names_here = list(out["series_names"])
        cols.append(arr)
        names.extend(f"{step}\x00{n}" for n in names_here)
    lengths = {c.shape[0] for c in cols}
    if len(lengths) > 1:
        raise ValueError(f"inputs have different numbers of dates: {sorted(lengths)}")
    clean = []
    for n in names:
        step, name = n.split("\x00", 1)
        clean.append(name if seen[name] == 1 or not step else f"{step}.{name}")
    return clean, np.concatenate(cols, axis=1) if cols else np.zeros((0, 0))
