"""Polygons of a tiled run come from the mosaic: a patch across tile edges is one polygon, as untiled."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import shapely
import yaml

from satcore.outputs.polygons import read_polygons

H, W = 150, 190


def _pair(root: Path) -> None:
    """A small UTM RGB pair whose changed blobs cross the 64-px tile grid (and one has a hole)."""
    import rasterio
    from rasterio.transform import from_origin

    rng = np.random.default_rng(3)
    for d in ("A", "B"):
        (root / d).mkdir(parents=True, exist_ok=True)
    a = rng.normal(100, 10, (3, H, W)).clip(0, 255)
    change = np.zeros((H, W), bool)
    change[40:110, 50:150] = True      # crosses tile rows and columns
    change[60:80, 90:110] = False      # a hole on a tile corner (64, 64 + 64 = 128 is nearby)
    change[10:30, 120:140] = True      # across the column edge at 128
    change[120:140, 5:70] = True       # across the column edge at 64
    b = a + np.where(change, 80.0, 0.0)[None]
    prof = {"driver": "GTiff", "height": H, "width": W, "dtype": "uint8", "count": 3, "crs": "EPSG:32633",
            "transform": from_origin(500000, 5000000, 10, 10)}
    for name, arr in (("A", a), ("B", b)):
        with rasterio.open(root / name / "scene.tif", "w", **prof) as ds:
            ds.write(arr.clip(0, 255).astype(np.uint8))


def _spec(tmp: Path, name: str, tiling: dict[str, int] | None) -> Path:
    source: dict[str, Any] = {"type": "folder-pairs", "root": "data"}
    if tiling:
        source["tiling"] = tiling
    step = {"id": "diff", "type": "image-diff", "smooth": 1.0, "normalise": "none", "threshold": 40.0}
    doc = {"version": 1, "name": name, "seed": 0, "source": source, "steps": [step],
           "output": {"dir": f"runs/{name}", "maps": True, "report": False}}
    path = tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import satcore

    tmp = tmp_path_factory.mktemp("polygons-tiled")
    _pair(tmp / "data")
    satcore.run(_spec(tmp, "tiled", {"size": 64, "overlap": 4}), progress=False)
    satcore.run(_spec(tmp, "whole", None), progress=False)
    return tmp


def _rows(gpkg: Path) -> list[tuple[int, float, float, Any]]:
    geoms, fields, _crs = read_polygons(gpkg)
    rows = [(int(p), float(a), float(m), shapely.from_wkb(g))
            for p, a, m, g in zip(fields["pixels"], fields["area"], fields["mean_score"], geoms, strict=True)]
    return sorted(rows, key=lambda r: (-r[0], r[3].bounds))


@pytest.mark.parametrize("window", [None, 48])  # the run's own file (one window), then 4 × 4 windows of 48
def test_tiled_polygons_equal_the_untiled_ones(runs: Path, window: int | None,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    from satcore.outputs import polygons

    assert (runs / "runs/tiled/mosaic/scene.tif").exists()
    assert len(list((runs / "runs/tiled/maps/scene").glob("r*_c*.tif"))) == 9   # 3 × 3 tiles
    if window:
        monkeypatch.setattr(polygons, "WINDOW", window)
        polygons.write_polygons(runs / "runs/tiled")
    tiled = _rows(runs / "runs/tiled/artifacts/diff/polygons.gpkg")
    whole = _rows(runs / "runs/whole/artifacts/diff/polygons.gpkg")
    _g, fields, _c = read_polygons(runs / "runs/tiled/artifacts/diff/polygons.gpkg")
    assert set(fields["item_id"]) == {"scene"}      # the scene, not its tiles
    assert len(tiled) == len(whole) >= 3
    # the big blob spans 4 tiles: one polygon, with its hole
    assert tiled[0][0] == 70 * 100 - 20 * 20 and len(tiled[0][3].interiors) == 1
    for t, w in zip(tiled, whole, strict=True):
        assert t[0] == w[0]
        assert t[1] == pytest.approx(w[1], rel=1e-12)
        assert t[2] == pytest.approx(w[2], rel=1e-9)
        assert t[3].geom_type == "Polygon" and t[3].equals(w[3])


def test_the_map_gives_each_tile_the_scene_polygons_it_touches(runs: Path) -> None:
    from satcore.outputs.webmap import item_polygons

    polys = item_polygons(runs / "runs/tiled", ["scene/r0_c0", "scene/r1_c1", "scene/r2_c2"])
    big = [r for r in polys["scene/r1_c1"]["diff"] if r["area"] == (70 * 100 - 20 * 20) * 100.0]
    assert len(big) == 1                               # the whole polygon, not the tile's piece
    assert [r["area"] for r in polys["scene/r0_c0"]["diff"]] == [big[0]["area"]]   # its corner only
    # the bottom-left blob (rows 120..140, cols 5..70) touches tiles r1_c0, r2_c0 and r2_c1, not r2_c2
    assert "diff" not in polys["scene/r2_c2"]


def test_tiling_on_a_source_that_cannot_tile_exits_2_naming_the_field(tmp_path: Path, capsys) -> None:
    """docs/scale.md: only folder-pairs tiles; `tiling:` on geotiff-series is an unknown key, exit 2."""
    from satcore.cli import main

    (tmp_path / "series").mkdir()
    doc = {"version": 1, "name": "s", "source": {"type": "geotiff-series", "root": "series",
                                                 "tiling": {"size": 256, "overlap": 8}},
           "steps": [{"id": "d", "type": "image-diff"}], "output": {"dir": "runs/s", "maps": True}}
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(doc))
    with pytest.raises(SystemExit) as exit_info:
        main(["run", str(tmp_path / "s.yaml")])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "source.tiling: unknown key" in err
