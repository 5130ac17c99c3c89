"""The report's interactive map: Leaflet, inlined, with before/after images, change maps and polygons.

The page works offline: Leaflet's JavaScript and CSS (with the CSS's images as data URIs) come from the
``xstatic-leaflet`` package and are inlined; the overlays are downsampled PNG/JPEG data URIs. Nothing is
loaded from the network and there is no basemap.

Georeferenced maps are warped to Web Mercator (EPSG:3857, Leaflet's display CRS) with :mod:`rasterio.warp`
and placed by their latitude/longitude bounds; ungeoreferenced maps (PNG pairs) use ``L.CRS.Simple``, one map
unit per pixel (latitude = −row, longitude = column). One map shows one item at a time, picked from a list;
a series gets a time slider over its images.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from satcore.plots import display_rgb

#: longest side of an overlay in the page, in pixels (the page stays a few MB for a handful of items)
MAX_PX = 512
#: most images of a series the time slider offers (evenly spaced, first and last kept)
MAX_FRAMES = 12
#: most polygons per item and step drawn (largest first; all of them are in the GeoPackage)
MAX_POLYGONS = 2000
#: the change overlay's colour (RGBA) and the polygons' outline colour
CHANGE_RGBA = (230, 25, 25, 170)
POLYGON_COLOUR = "#ffd400"


def leaflet_assets() -> tuple[str, str]:
    """Leaflet's ``(javascript, css)``, the CSS's images inlined as data URIs, from ``xstatic-leaflet``.

    Raises:
        ImportError: xstatic-leaflet is not installed (it is a dependency of satcore: reinstall satcore).
    """
    try:
        from xstatic.pkg import leaflet
    except ImportError as exc:
        raise ImportError("the report's map needs Leaflet from the xstatic-leaflet package, a dependency of "
                          "satcore: pip install xstatic-leaflet") from exc
    base = Path(leaflet.BASE_DIR)
    js = (base / "leaflet.js").read_text(encoding="utf-8")
    js = js.replace("//# sourceMappingURL=leaflet.js.map", "")  # no request for a map file
    css = (base / "leaflet.css").read_text(encoding="utf-8")
    for png in sorted((base / "images").glob("*.png")):
        uri = "data:image/png;base64," + base64.b64encode(png.read_bytes()).decode("ascii")
        css = css.replace(f"url(images/{png.name})", f"url({uri})")
    return js, css


def _uri(array: np.ndarray, fmt: str) -> str:
    """``(H, W, 3|4)`` uint8 as a data URI (JPEG for photos, PNG where transparency matters)."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format=fmt, **({"quality": 85} if fmt == "JPEG" else {}))
    mime = "jpeg" if fmt == "JPEG" else "png"
    return f"data:image/{mime};base64," + base64.b64encode(buf.getvalue()).decode("ascii")


class Grid:
    """Where an item's rasters go on the map: the source grid, and the display grid and bounds.

    Ungeoreferenced: the display grid is the source downsampled to :data:`MAX_PX`; bounds in pixels.
    Georeferenced: a Web Mercator grid covering the source, :data:`MAX_PX` on its longest side; bounds in
    latitude/longitude.
    """

    def __init__(self, height: int, width: int, crs: Any = None, transform: Any = None,
                 max_px: int = MAX_PX) -> None:
        self.height, self.width, self.crs, self.transform = height, width, crs, transform
        scale = max(1.0, max(height, width) / max_px)
        self.simple = crs is None
        if self.simple:
            self.out_h, self.out_w = max(1, round(height / scale)), max(1, round(width / scale))
            self.bounds = [[-float(height), 0.0], [0.0, float(width)]]
            return
        from affine import Affine
        from rasterio.transform import array_bounds
        from rasterio.warp import calculate_default_transform, transform_bounds

        left, bottom, right, top = array_bounds(height, width, transform)
        t, w, h = calculate_default_transform(crs, "EPSG:3857", width, height, left, bottom, right, top)
        s = max(1.0, max(w, h) / max_px)
        self.out_w, self.out_h = max(1, math.ceil(w / s)), max(1, math.ceil(h / s))
        self.dst_transform = t * Affine.scale(w / self.out_w, h / self.out_h)
        x0, y0 = self.dst_transform * (0, 0)
        x1, y1 = self.dst_transform * (self.out_w, self.out_h)
        west, south, east, north = transform_bounds("EPSG:3857", "EPSG:4326", min(x0, x1), min(y0, y1),
                                                    max(x0, x1), max(y0, y1))
        self.bounds = [[south, west], [north, east]]

    def warp(self, array: np.ndarray, nearest: bool) -> np.ndarray:
        """``(bands, H, W)`` on the display grid (float64; NaN outside the source when georeferenced)."""
        a = np.asarray(array, dtype=np.float64)
        if self.simple:
            if (self.out_h, self.out_w) == a.shape[1:]:
                return a
            from PIL import Image

            mode = Image.Resampling.NEAREST if nearest else Image.Resampling.BILINEAR
            return np.stack([np.asarray(Image.fromarray(b.astype(np.float32), mode="F").resize(
                (self.out_w, self.out_h), mode)) for b in a]).astype(np.float64)
        from rasterio.warp import Resampling, reproject

        out = np.full((a.shape[0], self.out_h, self.out_w), np.nan)
        reproject(a, out, src_transform=self.transform, src_crs=self.crs, dst_transform=self.dst_transform,
                  dst_crs="EPSG:3857", src_nodata=np.nan, dst_nodata=np.nan,
                  resampling=Resampling.nearest if nearest else Resampling.bilinear)
        return out

    def geometry(self, geom: dict[str, Any]) -> dict[str, Any]:
        """A polygon in the map's CRS (pixels when ungeoreferenced) as GeoJSON for this map.

        Coordinates are written short: whole pixels as integers, degrees to 7 decimals (≈ 1 cm).
        """
        if self.simple:  # pixel (x = column, y = row) → Leaflet Simple (lng = x, lat = −y)
            return {"type": geom["type"], "coordinates": [[[_short(x, 3), _short(-y, 3)] for x, y in ring]
                                                          for ring in geom["coordinates"]]}
        from rasterio.warp import transform_geom

        out = dict(transform_geom(self.crs, "EPSG:4326", geom))
        out["coordinates"] = [[[_short(x, 7), _short(y, 7)] for x, y in ring] for ring in out["coordinates"]]
        return out


def _short(v: float, digits: int) -> float | int:
    """``v`` rounded to ``digits`` decimals, as an int when whole (the page's JSON stays short)."""
    r = round(float(v), digits)
    return int(r) if r.is_integer() else r


def image_layer(grid: Grid, raster: Any) -> str:
    """A before/after/series image as a JPEG data URI on the display grid (a display RGB, stretched)."""
    a = grid.warp(np.asarray(raster.array), nearest=False)
    valid = np.isfinite(a).all(axis=0)
    rgb = display_rgb(np.where(np.isfinite(a), a, 0.0), getattr(raster, "band_names", None) or None)
    rgb[~valid] = 0
    return _uri(rgb, "JPEG")


def change_layer(grid: Grid, label: np.ndarray) -> str:
    """A label band as a transparent PNG: changed pixels in :data:`CHANGE_RGBA`, the rest clear."""
    lab = grid.warp(np.asarray(label)[None], nearest=True)[0]
    rgba = np.zeros((*lab.shape, 4), np.uint8)
    rgba[np.nan_to_num(lab) > 0] = CHANGE_RGBA
    return _uri(rgba, "PNG")


def _frames(n: int) -> list[int]:
    if n <= MAX_FRAMES:
        return list(range(n))
    return sorted({round(i * (n - 1) / (MAX_FRAMES - 1)) for i in range(MAX_FRAMES)})


def item_entry(item_id: str, map_path: Path, item: Any,
               polygons: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """The map's data for one item: bounds, images, change overlays and polygons (per detector step).

    Args:
        item_id: the item.
        map_path: its ``maps/<item_id>.tif``.
        item: the loaded :class:`~satcore.data.Item` (its images), or ``None`` when the source is gone.
        polygons: step id → this item's polygon records (``geometry``, ``area``, ``area_unit``,
            ``mean_score``) in the map's CRS.
    """
    from satcore.raster_files import open_quietly

    with open_quietly(map_path) as ds:
        names = list(ds.descriptions)
        grid = Grid(ds.height, ds.width, ds.crs, ds.transform)
        labels = {n[: -len(".label")]: ds.read(i + 1) for i, n in enumerate(names)
                  if n and n.endswith(".label")}
    images = []
    if item is not None and item.images:
        idx = _frames(len(item.images))
        for k in idx:
            r = item.images[k]
            when = str(r.time.isoformat())[:10] if getattr(r, "time", None) is not None else None
            role = "before" if k == 0 else "after" if k == len(item.images) - 1 else f"image {k + 1}"
            images.append({"name": role + (f" ({when})" if when else ""), "url": image_layer(grid, r)})
    layers = [{"name": f"change: {sid}", "url": change_layer(grid, lab)} for sid, lab in labels.items()]
    polys = []
    # the change maps' step order, so the polygons shown at the start are the first change map's step
    order = {sid: k for k, sid in enumerate(labels)}
    for sid, recs in sorted(polygons.items(), key=lambda kv: order.get(kv[0], len(order))):
        feats = [{"type": "Feature", "geometry": grid.geometry(r["geometry"]),
                  "properties": {"area": r["area"], "area_unit": r["area_unit"],
                                 "mean_score": r["mean_score"]}} for r in recs[:MAX_POLYGONS]]
        polys.append({"name": f"polygons: {sid}",
                      "geojson": {"type": "FeatureCollection", "features": feats}})
    return {"id": item_id, "simple": grid.simple, "bounds": grid.bounds, "images": images, "layers": layers,
            "polygons": polys}


def _tile_boxes(run_dir: Path, item_ids: list[str]) -> dict[str, list[tuple[str, Any]]]:
    """Scene id → its shown tiles' ``(item id, bounds box)``, for scenes polygonised from their mosaic."""
    import re

    import shapely

    from satcore.raster_files import open_quietly

    out: dict[str, list[tuple[str, Any]]] = {}
    for iid in item_ids:
        scene, _, tile = iid.rpartition("/")
        path = run_dir / "maps" / f"{iid}.tif"
        if scene and re.fullmatch(r"r\d+_c\d+", tile) and (run_dir / "mosaic" / f"{scene}.tif").exists() \
                and path.exists():
            with open_quietly(path) as ds:
                out.setdefault(scene, []).append((iid, shapely.box(*ds.bounds)))
    return out


def item_polygons(run_dir: Path, item_ids: list[str]) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """Item id → step id → polygon records, from ``artifacts/<step_id>/polygons.gpkg`` (all layers).

    A tile of a scene polygonised from its mosaic gets the scene's polygons that touch it (whole, so a
    polygon across tile edges shows its full area).
    """
    import shapely
    from pyogrio import list_layers

    from satcore.outputs.polygons import POLYGONS_FILE, read_polygons

    wanted = set(item_ids)
    tiles = _tile_boxes(run_dir, item_ids)
    out: dict[str, dict[str, list[dict[str, Any]]]] = {i: {} for i in item_ids}
    for gpkg in sorted((run_dir / "artifacts").glob(f"*/{POLYGONS_FILE}")):
        sid = gpkg.parent.name
        for layer in list_layers(gpkg)[:, 0]:
            geoms, fields, _crs = read_polygons(gpkg, layer=str(layer))
            if geoms is None:
                continue
            for k, iid in enumerate(fields["item_id"]):
                if iid not in wanted and iid not in tiles:
                    continue
                geom = shapely.from_wkb(geoms[k])
                score = float(fields["mean_score"][k])
                rec = {"geometry": shapely.geometry.mapping(geom),
                       "area": float(fields["area"][k]), "area_unit": str(fields["area_unit"][k]),
                       "mean_score": None if math.isnan(score) else round(score, 4)}
                targets = [iid] if iid in wanted else [t for t, box in tiles[iid]
                                                           if box.intersects(geom) and not box.touches(geom)]
                for t in targets:
                    out[t].setdefault(sid, []).append(rec)
    return out


_JS = """
(function () {
  var data = JSON.parse(document.getElementById('satcore-map-data').textContent);
  var pick = document.getElementById('satcore-map-item');
  var slider = document.getElementById('satcore-map-time');
  var when = document.getElementById('satcore-map-when');
  var map = null;
  function popup(f) {
    var p = f.properties, s = p.mean_score === null ? '—' : p.mean_score.toFixed(3);
    return 'area ' + p.area.toPrecision(4) + ' ' + p.area_unit + '<br>mean score ' + s;
  }
  function show(k) {
    var it = data.items[k];
    if (map) { map.remove(); }
    map = L.map('satcore-map', {crs: it.simple ? L.CRS.Simple : L.CRS.EPSG3857, minZoom: -6, maxZoom: 22,
                                zoomSnap: 0.25, attributionControl: false});
    map.createPane('images').style.zIndex = 350;  // images below the overlays whichever is picked last
    var base = {}, over = {}, frames = [];
    it.images.forEach(function (im) {
      var layer = L.imageOverlay(data.uris[im.url], it.bounds, {pane: 'images'});
      frames.push(layer);
      base[im.name] = layer;
    });
    it.layers.forEach(function (l) { over[l.name] = L.imageOverlay(data.uris[l.url], it.bounds); });
    it.polygons.forEach(function (p) {
      over[p.name] = L.geoJSON(p.geojson, {style: {color: data.polygon_colour, weight: 2, fill: false},
        onEachFeature: function (f, layer) { layer.bindPopup(popup(f)); }});
    });
    if (frames.length) { frames[frames.length - 1].addTo(map); }
    // the first step's change map and polygons are on at the start; the others are a click away
    [it.layers[0], it.polygons[0]].forEach(function (l) { if (l) { over[l.name].addTo(map); } });
    L.control.layers(base, over, {collapsed: false}).addTo(map);
    var legend = L.control({position: 'bottomright'});
    legend.onAdd = function () {
      var d = L.DomUtil.create('div', 'satcore-legend');
      d.innerHTML = data.legend;
      return d;
    };
    legend.addTo(map);
    map.fitBounds(it.bounds);
    slider.max = Math.max(frames.length - 1, 0);
    slider.value = slider.max;
    slider.parentNode.style.display = frames.length > 2 ? '' : 'none';
    when.textContent = it.images.length ? it.images[it.images.length - 1].name : '';
    slider.oninput = function () {
      var t = Number(slider.value);
      frames.forEach(function (f) { if (map.hasLayer(f)) { map.removeLayer(f); } });
      frames[t].addTo(map);
      when.textContent = it.images[t].name;
    };
  }
  pick.onchange = function () { show(Number(pick.value)); };
  show(0);
})();
"""

_STYLE = """#satcore-map{height:520px;max-width:900px;background:#222}
.satcore-legend{background:#fff;padding:4px 8px;font:12px system-ui,sans-serif;line-height:18px}
.satcore-legend i{display:inline-block;width:14px;height:12px;margin-right:5px;vertical-align:middle}"""


def webmap_html(entries: list[dict[str, Any]], note: str = "") -> str:
    """The map section's HTML: Leaflet inlined, the items' data as JSON, the controls and the script."""
    js, css = leaflet_assets()
    r, g, b, a = CHANGE_RGBA
    legend = (f"<i style='background:rgba({r},{g},{b},{a / 255:.2f})'></i>changed pixels (label band)<br>"
              f"<i style='border:2px solid {POLYGON_COLOUR};box-sizing:border-box'></i>polygons "
              "(click: area, mean score)")
    # each distinct image once: items and layers refer to it by index (a series' repeated frame, equal maps)
    uris: dict[str, int] = {}

    def ref(layer: dict[str, Any]) -> dict[str, Any]:
        return {**layer, "url": uris.setdefault(layer["url"], len(uris))}

    shared = [{**e, "images": [ref(i) for i in e["images"]], "layers": [ref(la) for la in e["layers"]]}
              for e in entries]
    data = json.dumps({"items": shared, "uris": list(uris), "legend": legend,
                       "polygon_colour": POLYGON_COLOUR}, separators=(",", ":")).replace("</", "<\\/")
    options = "".join(f"<option value='{k}'>{html.escape(e['id'])}</option>" for k, e in enumerate(entries))
    return (f"<style>{css}\n{_STYLE}</style>"
            f"<p>{note}</p>"
            f"<p><label>Item: <select id='satcore-map-item'>{options}</select></label> "
            "<span><label>Time: <input id='satcore-map-time' type='range' min='0' max='0' step='1' "
            "value='0'></label> <span id='satcore-map-when'></span></span></p>"
            "<div id='satcore-map'></div>"
            f"<script type='application/json' id='satcore-map-data'>{data}</script>"
            f"<script>{js}</script><script>{_JS}</script>")
