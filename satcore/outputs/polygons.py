"""Change maps as polygons: ``artifacts/<step_id>/polygons.gpkg`` (one GeoPackage per detector step).

Each connected patch of changed pixels in a map's ``<step_id>.label`` band becomes one polygon
(:func:`rasterio.features.shapes`, 4-connectivity, holes kept) with its item id, area, pixel count and the
mean of the ``<step_id>.score`` band over its pixels. Areas are in the map's CRS units squared (m² for a
projected CRS, degree² for a geographic one) and in pixels for an ungeoreferenced map (PNG pairs), where the
polygons are in pixel coordinates (x = column, y = row). Patches under ``min_area`` are dropped.

pyogrio and shapely are imported only here, when polygons are written.
"""

from __future__ import annotations

import logging
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger("satcore")

#: the GeoPackage of a step, under ``artifacts/<step_id>/``
POLYGONS_FILE = "polygons.gpkg"
#: the layer name when all of a step's maps share one CRS (else one layer per CRS: ``polygons_<crs>``)
LAYER = "polygons"


@dataclass(frozen=True)
class Patch:
    """One polygonised patch of changed pixels."""

    #: the polygon as a GeoJSON-like mapping (``type``, ``coordinates``) in the map's CRS (pixels if none)
    geometry: dict[str, Any]
    #: pixels in the patch
    pixels: int
    #: area in CRS units² (pixels when ungeoreferenced): pixels × |pixel area|
    area: float
    #: mean score over the patch's pixels (``None`` without a score band, or where all scores are NaN)
    mean_score: float | None


def area_unit(crs: Any) -> str:
    """The unit of :attr:`Patch.area` for maps in ``crs`` (``None``: ungeoreferenced)."""
    if crs is None:
        return "pixel"
    if crs.is_geographic:
        return "degree²"
    units = (crs.linear_units or "unit").lower()
    return {"metre": "m²", "meter": "m²", "foot": "ft²", "us survey foot": "ftUS²"}.get(units, f"{units}²")


def polygonize(label: np.ndarray, score: np.ndarray | None = None, transform: Any = None,
               min_area: float = 0.0) -> list[Patch]:
    """The patches of ``label != 0`` as polygons, with area and mean score, largest first.

    Args:
        label: ``(H, W)`` label band (nonzero = change).
        score: ``(H, W)`` score band, or ``None``.
        transform: the affine pixel → CRS transform (``None``: identity, pixel coordinates).
        min_area: patches with a smaller area (in the area unit, see :func:`area_unit`) are dropped.
    """
    from affine import Affine
    from rasterio.features import shapes
    from scipy import ndimage

    transform = Affine.identity() if transform is None else transform
    mask = np.asarray(label) != 0
    # one id per 4-connected patch; shapes() traces the same 4-connected regions, so id ↔ polygon is 1:1
    ids, n = ndimage.label(mask)
    if n == 0:
        return []
    counts = np.bincount(ids.ravel(), minlength=n + 1)
    means: np.ndarray | None = None
    if score is not None:
        s = np.asarray(score, dtype=np.float64).ravel()
        finite = np.isfinite(s)
        sums = np.bincount(ids.ravel(), weights=np.where(finite, s, 0.0), minlength=n + 1)
        nfin = np.bincount(ids.ravel(), weights=finite.astype(np.float64), minlength=n + 1)
        means = np.divide(sums, nfin, out=np.full(n + 1, np.nan), where=nfin > 0)
    pixel_area = abs(transform.a * transform.e - transform.b * transform.d)
    out = []
    for geom, value in shapes(ids.astype(np.int32), mask=mask, connectivity=4, transform=transform):
        k = int(value)
        area = float(counts[k]) * pixel_area
        if area < min_area:
            continue
        m = None if means is None or not np.isfinite(means[k]) else float(means[k])
        out.append(Patch(geometry=dict(geom), pixels=int(counts[k]), area=area, mean_score=m))
    out.sort(key=lambda p: -p.area)
    return out


def _map_files(run_dir: Path) -> list[tuple[str, Path]]:
    maps = run_dir / "maps"
    if not maps.is_dir():
        return []
    return sorted((p.relative_to(maps).with_suffix("").as_posix(), p) for p in maps.rglob("*.tif")
                  if not p.name.startswith("."))


def _crs_key(crs: Any) -> str:
    if crs is None:
        return "pixels"
    epsg = crs.to_epsg()
    return f"epsg_{epsg}" if epsg else "crs_" + str(abs(hash(crs.to_wkt())) % 10**8)


def write_polygons(run_dir: str | Path, min_area: float = 0.0) -> dict[str, Path]:
    """Polygonise every map in ``run_dir/maps`` into ``artifacts/<step_id>/polygons.gpkg``.

    One GeoPackage per detector step (each ``<step_id>.label`` band); columns ``item_id``, ``pixels``,
    ``area``, ``area_unit`` and ``mean_score``. Maps in one CRS share the layer ``polygons``; maps in
    several CRSs get one layer per CRS (``polygons_epsg_<code>``, ``polygons_pixels`` for ungeoreferenced
    maps). A step whose maps have no changed pixel gets an empty layer. Returns step id → file written.
    """
    import shapely
    from pyogrio.raw import write

    from satcore.raster_files import open_quietly

    run_dir = Path(run_dir)
    # step id → crs key → (crs, rows)
    per_step: dict[str, dict[str, tuple[Any, list[dict[str, Any]]]]] = {}
    for item_id, path in _map_files(run_dir):
        with open_quietly(path) as ds:
            names = list(ds.descriptions)
            crs = ds.crs
            transform = ds.transform if crs is not None else None
            for i, name in enumerate(names):
                if not name or not name.endswith(".label"):
                    continue
                sid = name[: -len(".label")]
                label = ds.read(i + 1)
                score = ds.read(names.index(f"{sid}.score") + 1) if f"{sid}.score" in names else None
                key = _crs_key(crs)
                rows = per_step.setdefault(sid, {}).setdefault(key, (crs, []))[1]
                for p in polygonize(label, score, transform, min_area):
                    rows.append({"item_id": item_id, "geometry": p.geometry, "pixels": p.pixels,
                                 "area": p.area, "area_unit": area_unit(crs),
                                 "mean_score": np.nan if p.mean_score is None else p.mean_score})
    written: dict[str, Path] = {}
    for sid, groups in per_step.items():
        target = run_dir / "artifacts" / sid / POLYGONS_FILE
        target.parent.mkdir(parents=True, exist_ok=True)
        # GDAL wants the .gpkg extension, so not satcore.io.atomic_path's name; same rename-into-place idea
        tmp = target.with_name(f".{target.stem}.{os.getpid()}.tmp{target.suffix}")
        tmp.unlink(missing_ok=True)
        try:
            for key, (crs, rows) in groups.items():
                layer = LAYER if len(groups) == 1 else f"{LAYER}_{key}"
                geoms = shapely.to_wkb(np.array([shapely.geometry.shape(r["geometry"]) for r in rows],
                                                dtype=object))
                fields = {c: np.array([r[c] for r in rows], dtype=object if c in ("item_id", "area_unit")
                                      else (np.int64 if c == "pixels" else np.float64))
                          for c in ("item_id", "pixels", "area", "area_unit", "mean_score")}
                with warnings.catch_warnings():  # pixel coordinates have no CRS, and that is the point
                    warnings.filterwarnings("ignore", ".*.crs. was not provided", UserWarning)
                    write(tmp, geometry=geoms, field_data=list(fields.values()), fields=list(fields),
                          layer=layer, driver="GPKG", geometry_type="Polygon",
                          crs=None if crs is None else crs.to_wkt(), append=tmp.exists())
            os.replace(tmp, target)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        written[sid] = target
        log.info("polygons: %s (%d patches)", target, sum(len(r) for _c, r in groups.values()))
    return written


def read_polygons(path: str | Path, layer: str | None = None) -> Any:
    """A step's GeoPackage layer as ``(wkb geometries, fields dict, crs wkt or None)`` via pyogrio."""
    from pyogrio.raw import read

    meta, _idx, geoms, values = read(str(path), layer=layer)
    return geoms, dict(zip(meta["fields"], values, strict=True)), meta.get("crs")


def polygons_after_run(run_dir: Path, setting: Any) -> None:
    """The run's hook: write the polygons as ``output.polygons`` asks (``True``, ``False`` or ``{min_area}``).

    A failure is logged (``run.log``) and never fails the run: the results are already written.
    """
    if setting is False or not (run_dir / "maps").is_dir():
        return
    min_area = float(getattr(setting, "min_area", 0.0))
    try:
        write_polygons(run_dir, min_area)
    except Exception as exc:
        log.error("polygons not written: %s: %s", type(exc).__name__, exc)
