"""Change maps as polygons: ``artifacts/<step_id>/polygons.gpkg`` (one GeoPackage per detector step).

Each connected patch of changed pixels in a map's ``<step_id>.label`` band becomes one polygon
(:func:`rasterio.features.shapes`, 4-connectivity, holes kept) with its item id, area, pixel count and the
mean of the ``<step_id>.score`` band over its pixels. Areas are in the map's CRS units squared (m² for a
projected CRS), geodesic m² on the WGS84 ellipsoid for a geographic CRS (pyproj's ``Geod``), and in pixels
for an ungeoreferenced map (PNG pairs), where the polygons are in pixel coordinates (x = column, y = row).
Patches under ``min_area`` are dropped.

A tiled scene (``tiling:``) is polygonised from its mosaic ``mosaic/<scene>.tif``, not from its tiles, so a
patch that crosses tile edges is one polygon; the mosaic is read window by window
(:func:`polygonize_windows`).

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
#: side of the windows a mosaic is polygonised in (a multiple of the mosaic's 256-px blocks)
WINDOW = 1024
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
        return "m²"  # geodesic, see geodesic_area
    units = (crs.linear_units or "unit").lower()
    return {"metre": "m²", "meter": "m²", "foot": "ft²", "us survey foot": "ftUS²"}.get(units, f"{units}²")


def geodesic_area(geometry: Any, step: float = 0.0) -> float:
    """The area in m² on the WGS84 ellipsoid of a polygon in longitude/latitude degrees.

    Edges are geodesics between vertices; ``step`` (degrees, e.g. the pixel size) first adds vertices so
    no edge is longer, and a pixel's edge along a parallel stays close to that parallel.
    """
    import shapely
    from pyproj import Geod

    geom = shapely.geometry.shape(geometry) if isinstance(geometry, dict) else geometry
    if step > 0:
        geom = shapely.segmentize(geom, step)
    area, _perimeter = Geod(ellps="WGS84").geometry_area_perimeter(geom)
    return abs(float(area))


def patch_area(geometry: Any, pixels: int, transform: Any, crs: Any) -> float:
    """A patch's area in ``area_unit(crs)``: geodesic for a geographic CRS, else pixels × pixel area."""
    if crs is not None and crs.is_geographic:
        return geodesic_area(geometry, min(abs(transform.a), abs(transform.e)) or 0.0)
    return float(pixels) * float(abs(transform.a * transform.e - transform.b * transform.d))


def change_mask(label: np.ndarray) -> np.ndarray:
    """Changed pixels: nonzero and finite (a mosaic's nodata, NaN, is not change)."""
    lab = np.asarray(label)
    out: np.ndarray = (lab != 0) & np.isfinite(lab) if lab.dtype.kind == "f" else lab != 0
    return out


def polygonize(label: np.ndarray, score: np.ndarray | None = None, transform: Any = None,
               min_area: float = 0.0, crs: Any = None) -> list[Patch]:
    """The patches of ``label != 0`` as polygons, with area and mean score, largest first.

    Args:
        label: ``(H, W)`` label band (nonzero = change; NaN is not).
        score: ``(H, W)`` score band, or ``None``.
        transform: the affine pixel → CRS transform (``None``: identity, pixel coordinates).
        min_area: patches with a smaller area (in the area unit, see :func:`area_unit`) are dropped.
        crs: the map's CRS (a rasterio ``CRS``); a geographic one gets geodesic areas in m².
    """
    from affine import Affine
    from rasterio.features import shapes
    from scipy import ndimage

    transform = Affine.identity() if transform is None else transform
    mask = change_mask(label)
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
    out = []
    for geom, value in shapes(ids.astype(np.int32), mask=mask, connectivity=4, transform=transform):
        k = int(value)
        area = patch_area(geom, int(counts[k]), transform, crs)
        if area < min_area:
            continue
        m = None if means is None or not np.isfinite(means[k]) else float(means[k])
        out.append(Patch(geometry=dict(geom), pixels=int(counts[k]), area=area, mean_score=m))
    out.sort(key=lambda p: -p.area)
    return out


class _Pieces:
    """Patches cut by window edges, joined again: union-find over piece ids, geometries kept till closed."""

    def __init__(self) -> None:
        self.parent: dict[int, int] = {}
        #: piece id → [pixel-space polygons, pixels, score sum, finite-score count]
        self.data: dict[int, list[Any]] = {}

    def find(self, x: int) -> int:
        root = x
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[x] != root:  # path compression
            self.parent[x], x = root, self.parent[x]
        return root

    def join(self, a: np.ndarray, b: np.ndarray) -> None:
        """Join the pieces side by side across an edge: ``a[k]`` and ``b[k]`` are neighbouring pixels."""
        both = (a > 0) & (b > 0)
        for x, y in {(int(x), int(y)) for x, y in zip(a[both], b[both], strict=True)}:
            rx, ry = self.find(x), self.find(y)
            if rx != ry:
                self.parent[max(rx, ry)] = min(rx, ry)

    def close(self, open_ids: np.ndarray) -> list[tuple[list[Any], int, float, float]]:
        """Remove and return every component none of whose pieces is in ``open_ids`` (still growing)."""
        still = {self.find(int(i)) for i in np.unique(open_ids[open_ids > 0])}
        groups: dict[int, list[int]] = {}
        for i in self.data:
            root = self.find(i)
            if root not in still:
                groups.setdefault(root, []).append(i)
        out = []
        for members in groups.values():
            parts = [self.data[i] for i in members]
            out.append(([g for p in parts for g in p[0]], sum(p[1] for p in parts),
                        sum(p[2] for p in parts), sum(p[3] for p in parts)))
            for i in members:  # a closed component's chains hold only its own members
                del self.data[i]
        for members in groups.values():
            for i in members:
                del self.parent[i]
        return out


def polygonize_windows(ds: Any, label_band: int, score_band: int | None = None, min_area: float = 0.0,
                       window: int | None = None) -> list[Patch]:
    """:func:`polygonize` of one band of an open raster (a mosaic), read ``window`` × ``window`` at a time.

    Each window is polygonised on its own (in scene pixel coordinates, so shared edges are exact), the
    pieces that touch across a window edge (4-connected) are joined with union-find, and a patch's pieces
    are merged with ``shapely.unary_union`` once no piece of it touches the next row of windows. Memory:
    one window's arrays, one row of ids along the scene's width, and the pieces of patches still open
    (a patch as large as the scene is held whole: it is one polygon in the output).

    Args:
        ds: an open rasterio dataset.
        label_band: the 1-based label band (nonzero and finite = change).
        score_band: the 1-based score band, or ``None``.
        min_area: patches with a smaller area (see :func:`area_unit`) are dropped.
        window: the window side in pixels (default :data:`WINDOW`).
    """
    import shapely
    from affine import Affine
    from rasterio.features import shapes
    from rasterio.windows import Window
    from scipy import ndimage

    window = window or WINDOW
    crs = ds.crs
    transform = ds.transform if crs is not None else Affine.identity()
    height, width = ds.height, ds.width
    pieces = _Pieces()
    found: list[tuple[list[Any], int, float, float]] = []
    above = np.zeros(width, np.int64)  # piece ids on the bottom row of the window row above
    next_id = 1
    for r0 in range(0, height, window):
        h = min(window, height - r0)
        bottom = np.zeros(width, np.int64)
        left: np.ndarray | None = None
        for c0 in range(0, width, window):
            w = min(window, width - c0)
            win = Window(c0, r0, w, h)
            mask = change_mask(ds.read(label_band, window=win))
            ids, n = ndimage.label(mask)
            gid = np.where(mask, ids.astype(np.int64) + (next_id - 1), 0)
            if n:
                counts = np.bincount(ids.ravel(), minlength=n + 1)
                sums = nfin = np.zeros(n + 1)
                if score_band is not None:
                    s = ds.read(score_band, window=win).astype(np.float64).ravel()
                    finite = np.isfinite(s)
                    sums = np.bincount(ids.ravel(), weights=np.where(finite, s, 0.0), minlength=n + 1)
                    nfin = np.bincount(ids.ravel(), weights=finite.astype(np.float64), minlength=n + 1)
                for k in range(1, n + 1):
                    pieces.parent[next_id - 1 + k] = next_id - 1 + k
                    pieces.data[next_id - 1 + k] = [[], int(counts[k]), float(sums[k]), float(nfin[k])]
                for geom, v in shapes(ids.astype(np.int32), mask=mask, connectivity=4,
                                      transform=Affine.translation(c0, r0)):
                    pieces.data[next_id - 1 + int(v)][0].append(shapely.geometry.shape(geom))
                next_id += n
            if left is not None:
                pieces.join(left, gid[:, 0])
            pieces.join(above[c0:c0 + w], gid[0])
            left = gid[:, -1]
            bottom[c0:c0 + w] = gid[-1]
        found += pieces.close(bottom if r0 + h < height else np.zeros(0, np.int64))
        above = bottom
    matrix = [transform.a, transform.b, transform.d, transform.e, transform.c, transform.f]
    out = []
    for geoms, pixels, total, nfinite in found:
        merged = geoms[0] if len(geoms) == 1 else shapely.unary_union(geoms)
        geom = shapely.geometry.mapping(shapely.affinity.affine_transform(merged, matrix))
        area = patch_area(geom, pixels, transform, crs)
        if area < min_area:
            continue
        out.append(Patch(geometry=dict(geom), pixels=pixels, area=area,
                         mean_score=None if score_band is None or nfinite == 0 else total / nfinite))
    out.sort(key=lambda p: -p.area)
    return out


def _map_files(run_dir: Path) -> list[tuple[str, Path, bool]]:
    """``(item or scene id, file, is a mosaic)``: the maps, a tiled scene's mosaic in place of its tiles."""
    import re

    files: list[tuple[str, Path, bool]] = []
    mosaics = run_dir / "mosaic"
    scenes: set[str] = set()
    if mosaics.is_dir():
        for p in sorted(mosaics.rglob("*.tif")):
            if not p.name.startswith("."):
                scenes.add(p.relative_to(mosaics).with_suffix("").as_posix())
                files.append((p.relative_to(mosaics).with_suffix("").as_posix(), p, True))
    maps = run_dir / "maps"
    if maps.is_dir():
        for p in sorted(maps.rglob("*.tif")):
            iid = p.relative_to(maps).with_suffix("").as_posix()
            scene, _, tile = iid.rpartition("/")
            if p.name.startswith(".") or (scene in scenes and re.fullmatch(r"r\d+_c\d+", tile)):
                continue
            files.append((iid, p, False))
    return sorted(files)


def _crs_key(crs: Any) -> str:
    if crs is None:
        return "pixels"
    epsg = crs.to_epsg()
    return f"epsg_{epsg}" if epsg else "crs_" + str(abs(hash(crs.to_wkt())) % 10**8)


def write_polygons(run_dir: str | Path, min_area: float = 0.0) -> dict[str, Path]:
    """Polygonise every map in ``run_dir/maps`` into ``artifacts/<step_id>/polygons.gpkg``.

    A tiled scene's tile maps are replaced by its mosaic ``mosaic/<scene>.tif`` (item id = the scene id),
    polygonised window by window (:func:`polygonize_windows`), so a patch across tile edges is one polygon.

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
    for item_id, path, mosaic in _map_files(run_dir):
        with open_quietly(path) as ds:
            names = list(ds.descriptions)
            crs = ds.crs
            transform = ds.transform if crs is not None else None
            for i, name in enumerate(names):
                if not name or not name.endswith(".label"):
                    continue
                sid = name[: -len(".label")]
                score_band = names.index(f"{sid}.score") + 1 if f"{sid}.score" in names else None
                if mosaic:  # a whole scene: window by window
                    patches = polygonize_windows(ds, i + 1, score_band, min_area)
                else:
                    patches = polygonize(ds.read(i + 1), None if score_band is None else ds.read(score_band),
                                         transform, min_area, crs)
                key = _crs_key(crs)
                rows = per_step.setdefault(sid, {}).setdefault(key, (crs, []))[1]
                for p in patches:
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
