"""``spectral``: spectral angle, SID, ERGAS, MAE and MSE of generated rasters, pooled over valid pixels.

A pixel is valid where the mask (if any) is true and every band of both rasters is finite. Every value is
pooled over all valid pixels of the split (per-item sums in the record), so a split's numbers equal the same
formulas on all its pixels concatenated:

- ``spectral_angle_deg``: mean over pixels of ``degrees(arccos(<x, y> / (|x| |y|)))`` over the band vectors;
  pixels where either vector is zero are left out (the angle is undefined there).
- ``sid``: spectral information divergence (Chang 2000), mean over pixels. Its inputs must be non-negative
  spectra: pixels with a negative value on either side, or a band sum of 0, are left out (counted in
  ``sid_pixels``); each vector is divided by its band sum, ``EPS = 1e-10`` is added to every band (not
  renormalised), and ``SID = Σ_b (p_b - q_b)(log p_b - log q_b)`` (= KL(p‖q) + KL(q‖p)).
- ``ergas``: ``100 · ratio · sqrt(mean_b(RMSE_b² / μ_b²))`` (Wald 2002), with ``μ_b`` the mean of the
  target's band ``b`` and ``ratio`` = h/l, the pixel size of the generated raster over that of the target
  (1 when both share a grid, as in image translation). The setting ``ratio`` (a block setting or a record
  setting; ``resolution_ratio`` is its older name).
- ``mae``, ``mse``: over all valid pixels and bands (scikit-learn's ``mean_absolute_error`` /
  ``mean_squared_error`` on the flattened values).
- ``units``: what the values are (``"reflectance"``, ``"reflectance ×10000"``, ``"8-bit"``): the record
  setting ``units`` (a generator's :meth:`metric_settings` says what it writes) when every record agrees,
  else the block setting ``units`` (default ``"data units"``); MAE and MSE are in these units, the angle,
  SID and ERGAS are unit-free. Records that disagree make ``units`` ``"mixed"``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from satcore.evaluate.blocks.base import ExactSum, Record, _Seen, num, put, seq

EPS = 1e-10
SUM_KEYS = ("angle_sum", "sid_sum", "abs_sum", "sq_sum")
COUNT_KEYS = ("pixels", "angle_pixels", "sid_pixels")


def spectral_record(truth: Any, prediction: Any, *, valid: Any = None, units: str | None = None,
                    ratio: float | None = None) -> Record | None:
    """One item's spectral record.

    Args:
        truth: the target raster, an array ``(bands, H, W)`` (a 2-D array is one band).
        prediction: the generated raster of the same shape.
        valid: optional boolean mask ``(H, W)``; pixels where it is false are left out.
        units: what the values are (e.g. ``"reflectance ×10000"``, ``"8-bit"``), kept for the block.
        ratio: ERGAS's h/l for this item (default: the block's setting).

    Returns:
        ``None`` when either raster is missing; else per-item sums: ``pixels``, ``angle_sum``/
        ``angle_pixels``, ``sid_sum``/``sid_pixels``, ``abs_sum``, ``sq_sum`` and per band ``band_sq``,
        ``band_sum`` (for ERGAS).

    Raises:
        ValueError: the two rasters (or the mask) differ in shape.
    """
    if truth is None or prediction is None:
        return None
    t = np.asarray(truth, dtype=np.float64)
    p = np.asarray(prediction, dtype=np.float64)
    if t.ndim == 2:
        t, p = t[None], p[None] if p.ndim == 2 else p
    if t.shape != p.shape or t.ndim != 3:
        raise ValueError(f"spectral: the generated raster has shape {p.shape}, the target {t.shape}; they "
                         "must both be (bands, H, W) with the same shape")
    m = np.all(np.isfinite(t) & np.isfinite(p), axis=0)
    if valid is not None:
        v = np.asarray(valid, dtype=bool)
        if v.shape != m.shape:
            raise ValueError(f"spectral: the valid mask has shape {v.shape}, the rasters {m.shape}")
        m &= v
    x, y = t[:, m], p[:, m]  # (bands, n)
    nb = x.shape[0]
    with np.errstate(divide="ignore", invalid="ignore"):
        nx, ny = np.linalg.norm(x, axis=0), np.linalg.norm(y, axis=0)
        ok_a = (nx > 0) & (ny > 0)
        cos = np.clip(np.sum(x[:, ok_a] * y[:, ok_a], axis=0) / (nx[ok_a] * ny[ok_a]), -1.0, 1.0)
        sx, sy = x.sum(axis=0), y.sum(axis=0)
        ok_s = np.all(x >= 0, axis=0) & np.all(y >= 0, axis=0) & (sx > 0) & (sy > 0)
        pp = x[:, ok_s] / sx[ok_s] + EPS
        qq = y[:, ok_s] / sy[ok_s] + EPS
        sid = np.sum((pp - qq) * (np.log(pp) - np.log(qq)), axis=0)
    d = y - x
    extra: dict[str, Any] = {}
    if units is not None:
        extra["units"] = str(units)
    if ratio is not None:
        extra["ratio"] = float(ratio)
    return {**extra,
        "pixels": int(m.sum()), "bands": nb,
        "angle_sum": float(np.degrees(np.arccos(cos)).sum()), "angle_pixels": int(ok_a.sum()),
        "sid_sum": float(sid.sum()), "sid_pixels": int(ok_s.sum()),
        "abs_sum": float(np.abs(d).sum()), "sq_sum": float((d * d).sum()),
        "band_sq": [float(v) for v in (d * d).sum(axis=1)], "band_sum": [float(v) for v in x.sum(axis=1)],
    }


class SpectralBlock:
    """Accumulates spectral records into the ``spectral`` block (definitions in the module docstring).

    Settings:
        units: what the raster values are when the records do not say (default ``"data units"``).
        ratio: ERGAS's ``h/l`` when the records do not say (default 1); ``resolution_ratio`` is its older
            name, still accepted.
    """

    name: ClassVar[str] = "spectral"
    item_record = staticmethod(spectral_record)

    def __init__(self, *, units: str = "data units", ratio: float | None = None,
                 resolution_ratio: float | None = None, **settings: Any) -> None:
        self._seen = _Seen()
        self.units = units
        self.ratio = float(ratio if ratio is not None else resolution_ratio if resolution_ratio is not None
                           else 1.0)
        self.record_units: set[str] = set()
        self.record_ratios: set[float] = set()
        self.sums = {k: ExactSum() for k in SUM_KEYS}
        self.counts = dict.fromkeys(COUNT_KEYS, 0)
        self.bands: set[int] = set()
        self.values = 0
        self.band_sq: list[ExactSum] = []
        self.band_sum: list[ExactSum] = []

    def add(self, item_id: str, record: Mapping[str, Any]) -> None:
        """Fold in one item's record."""
        self._seen.check(self.name, item_id)
        if isinstance(record.get("units"), str):
            self.record_units.add(str(record["units"]))
        if (ratio := num(record.get("ratio"))) is not None:
            self.record_ratios.add(float(ratio))
        for k in SUM_KEYS:
            self.sums[k].add(num(record.get(k)) or 0.0)
        for k in COUNT_KEYS:
            self.counts[k] += int(num(record.get(k)) or 0)
        self.values += int(num(record.get("pixels")) or 0) * int(num(record.get("bands")) or 0)
        sq, sm = seq(record.get("band_sq")), seq(record.get("band_sum"))
        self.bands.add(len(sq))
        while len(self.band_sq) < len(sq):
            self.band_sq.append(ExactSum())
            self.band_sum.append(ExactSum())
        for i, (a, b) in enumerate(zip(sq, sm, strict=True)):
            self.band_sq[i].add(float(a))
            self.band_sum[i].add(float(b))

    def result(self) -> dict[str, Any]:
        """The ``spectral`` block."""
        n_px = self.counts["pixels"]
        out: dict[str, Any] = {"items": len(self._seen), "pixels": n_px,
                               "sid_pixels": self.counts["sid_pixels"]}
        n_a = self.counts["angle_pixels"]
        put(out, "spectral_angle_deg", self.sums["angle_sum"].value / n_a if n_a else None,
            "no valid pixel with non-zero spectra on both sides")
        put(out, "sid", self.sums["sid_sum"].value / self.counts["sid_pixels"] if self.counts["sid_pixels"]
            else None, "no valid pixel with non-negative values and a positive band sum on both sides")
        out["ergas"], why = self._ergas()
        if why:
            out["ergas_reason"] = why
        n_vals = self.values
        put(out, "mae", self.sums["abs_sum"].value / n_vals if n_vals else None, "no valid pixels")
        put(out, "mse", self.sums["sq_sum"].value / n_vals if n_vals else None, "no valid pixels")
        units = sorted(self.record_units)
        out["units"] = units[0] if len(units) == 1 else "mixed" if units else self.units
        return out

    def _ergas(self) -> tuple[float | None, str | None]:
        n_px = self.counts["pixels"]
        if not n_px:
            return None, "no valid pixels"
        if len(self.bands) != 1:
            return None, f"items differ in band count ({sorted(self.bands)})"
        if len(self.record_ratios) > 1:
            return None, f"items give different ERGAS ratios ({sorted(self.record_ratios)})"
        ratio = next(iter(self.record_ratios)) if self.record_ratios else self.ratio
        terms = []
        for sq, sm in zip(self.band_sq, self.band_sum, strict=True):
            mu = sm.value / n_px
            if mu == 0:
                return None, "a target band has mean 0 (ERGAS divides by each band's mean)"
            terms.append((sq.value / n_px) / (mu * mu))
        return float(100.0 * ratio * np.sqrt(np.mean(terms))), None
