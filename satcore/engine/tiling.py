"""Tiled scenes in the run: the halo to read, the scene-statistics passes, cropping tiles, the mosaics.

A tiling source (``tiling:`` on ``folder-pairs``) lists one ref per tile with its scene and window in
``meta`` (:mod:`satcore.builtin.tiling`). Before the tiles stream, :func:`prepare_tiles` sets the halo
every tile is read with (the largest detector ``halo``) and runs the detectors' statistics stages over
each scene, storing the merged result on the refs; after the steps ran on a batch, :func:`crop_to_core`
cuts the items and their maps back to the tiles' cores; at the end :func:`write_mosaics` assembles each
scene's tile maps into ``mosaic/<scene>.tif``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import numpy as np

from satcore.components import Detection, Detector
from satcore.components.detector import CORE_KEY, SCENE_STATISTICS_KEY
from satcore.errors import RunStopped

if TYPE_CHECKING:
    from pathlib import Path

    from satcore.data import Item, ItemRef
    from satcore.engine.steps import Engine

log = logging.getLogger("satcore")

#: the ``ItemRef.meta`` keys a tiling source sets (see :mod:`satcore.builtin.tiling`)
SCENE_KEY, SCENE_SHAPE_KEY, WINDOW_KEY, HALO_KEY = "scene", "scene_shape", "window", "halo"
#: the run-folder subfolder of the mosaics
MOSAIC = "mosaic"


def scenes_of(refs: Iterable[ItemRef]) -> dict[str, list[ItemRef]]:
    """Scene id → its tile refs, in listing order (empty when nothing is tiled)."""
    out: dict[str, list[ItemRef]] = {}
    for r in refs:
        if WINDOW_KEY in r.meta and SCENE_KEY in r.meta:
            out.setdefault(str(r.meta[SCENE_KEY]), []).append(r)
    return out


def prepare_tiles(engine: Engine, refs: list[ItemRef]) -> None:
    """Set every tile's halo and compute its scene's statistics (stored in ``ref.meta``); no-op untiled.

    Each stage reads every tile of a scene once (core plus halo) and keeps only the detectors' partial
    statistics, so memory follows the tile, not the scene.

    Raises:
        RunStopped: a tile could not be read, or a detector's statistics failed, during a pass.
    """
    scenes = scenes_of(refs)
    if not scenes:
        return
    dets = [(rs.id, c) for rs, c in engine.steps if isinstance(c, Detector)]
    halo = max([int(c.halo) for _sid, c in dets] or [0])
    for tiles in scenes.values():
        for r in tiles:
            r.meta[HALO_KEY] = max(halo, int(r.meta.get(HALO_KEY) or 0))
    staged = [(sid, c, c.statistics_stages()) for sid, c in dets if c.statistics_stages()]
    log.info("tiling: %d scene(s), %d tiles, halo %d px%s", len(scenes), sum(map(len, scenes.values())), halo,
             f"; scene statistics for {', '.join(s for s, _c, _st in staged)}" if staged else "")
    if not staged:
        return
    t0 = time.perf_counter()
    n_passes = max(len(st) for _s, _c, st in staged)
    bar = engine.bar(n_passes * sum(map(len, scenes.values())), "scene statistics", unit="tile")
    try:
        for scene, tiles in scenes.items():
            stats: dict[str, dict[str, Any]] = {sid: {} for sid, _c, _st in staged}
            for k in range(n_passes):
                active = [(sid, c, st[k]) for sid, c, st in staged if len(st) > k]
                partials: dict[str, list[Any]] = {sid: [] for sid, _c, _s in active}
                for ref in tiles:
                    item = _load(engine, ref, scene)
                    for sid, c, stage in active:
                        partials[sid].append(_call(c.partial_statistics, sid, scene, stage, item, stage,
                                                   stats[sid]))
                    bar.update(1)
                for sid, c, stage in active:
                    stats[sid] = _call(c.merge_statistics, sid, scene, stage, stage, partials[sid],
                                       stats[sid])
            for ref in tiles:
                ref.meta[SCENE_STATISTICS_KEY] = stats
    finally:
        bar.close()
    engine.timings["scene_statistics"] += time.perf_counter() - t0


def _load(engine: Engine, ref: ItemRef, scene: str) -> Item:
    try:
        return engine.source.load(ref)
    except Exception as exc:
        raise RunStopped(f"scene {scene!r}: tile {ref.item_id!r} could not be read for the scene-statistics "
                         f"pass ({type(exc).__name__}: {exc}); the statistics need every tile") from exc


def _call(fn: Any, sid: str, scene: str, stage: str, *args: Any) -> Any:
    try:
        return fn(*args)
    except Exception as exc:
        raise RunStopped(f"step {sid!r}: scene statistics ({stage}) of scene {scene!r} failed: "
                         f"{type(exc).__name__}: {exc}") from exc


def crop_to_core(items: list[Item], outputs: list[dict[str, Any]]) -> None:
    """Cut tiles read with a halo back to their core: images, truth and every detection's maps (in place).

    The image-level truth is recomputed on the core; items without a core (untiled) are left alone.
    """
    from affine import Affine

    for item, outs in zip(items, outputs, strict=True):
        core = item.meta.get(CORE_KEY)
        if not core:
            continue
        r, c, h, w = (int(v) for v in core)
        full = item.images[0].shape if item.images else None
        if full == (h, w):
            item.meta[CORE_KEY] = None
            continue
        rows, cols = slice(r, r + h), slice(c, c + w)
        for k, im in enumerate(item.images):
            t = im.transform * Affine.translation(c, r) if im.transform is not None else None
            cropped = im.with_array(np.ascontiguousarray(im.array[:, rows, cols]))
            cropped.transform = t
            item.images[k] = cropped
        if item.label is not None:
            item.label = item.label[rows, cols]
        if item.valid is not None:
            item.valid = item.valid[rows, cols]
        if item.label is not None:
            lab = item.label if item.valid is None else item.label & item.valid
            least = int(item.meta.get("min_changed_pixels", 1))
            item.image_label = int(bool(lab.any())) if least <= 1 else int(int(lab.sum()) >= least)
        item.meta[CORE_KEY] = None
        for out in outs.values():
            if isinstance(out, Detection):
                if out.score_map is not None and out.score_map.shape == full:
                    out.score_map = out.score_map[rows, cols]
                if out.label_map is not None and out.label_map.shape == full:
                    out.label_map = out.label_map[rows, cols]


def write_mosaics(out: Path, refs: list[ItemRef]) -> list[str]:
    """``mosaic/<scene>.tif`` for every tiled scene whose tiles wrote maps; returns the paths written.

    A scene is skipped (and logged) when no tile has a map; a tile without one (it failed) stays nodata.
    """
    from satcore.outputs.mosaic import MosaicTile, write_mosaic

    written = []
    for scene, tiles in scenes_of(refs).items():
        parts = [MosaicTile(out / "maps" / f"{r.item_id}.tif", [int(v) for v in r.meta[WINDOW_KEY]])
                 for r in tiles]
        present = [p for p in parts if p.path.exists()]
        if not present:
            log.info("mosaic of scene %s not written: none of its tiles has a map", scene)
            continue
        if len(present) < len(parts):
            log.warning("mosaic of scene %s: %d of %d tiles have no map (failed); they are nodata", scene,
                        len(parts) - len(present), len(parts))
        shape = tuple(int(v) for v in tiles[0].meta[SCENE_SHAPE_KEY])
        dst = out / MOSAIC / f"{scene}.tif"
        write_mosaic(dst, (shape[0], shape[1]), tiles[0].paths["a"], present)
        written.append(dst.relative_to(out).as_posix())
    return written
