"""Seeded tiny data for plugin tests: changed pairs, labelled scenes, captions, prompts, target rasters.

Everything here is deterministic for a given ``seed``, small (32×32 by default) and needs no download.
The planted change is the independent reference a behaviour test compares against: its mask is known exactly.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from satcore.data import Item, Raster

#: A projected CRS for GeoTIFFs written by :func:`make_pairs_dir` (UTM 31N), so maps keep a georeference.
TEST_CRS = "EPSG:32631"


def _background(rng: np.random.Generator, bands: int, size: int) -> np.ndarray:
    """A smooth random field in ``[60, 180]`` per band (a stand-in for terrain)."""
    coarse = rng.uniform(60, 180, size=(bands, 4, 4))
    reps = -(-size // 4)
    field = np.kron(coarse, np.ones((1, reps, reps)))[:, :size, :size]
    return field.astype(np.float32)


def planted_change(size: int, seed: int, change: bool = True, fraction: float | None = None) -> np.ndarray:
    """The boolean ``(size, size)`` truth mask :func:`make_change_pair` plants: one square (or nothing)."""
    mask = np.zeros((size, size), bool)
    if not change:
        return mask
    rng = np.random.default_rng([seed, 1])
    frac = fraction if fraction is not None else float(rng.uniform(0.08, 0.25))
    side = max(2, min(size - 2, int(round(size * np.sqrt(frac)))))
    r0 = int(rng.integers(0, size - side + 1))
    c0 = int(rng.integers(0, size - side + 1))
    mask[r0:r0 + side, c0:c0 + side] = True
    return mask


def make_change_pair(
    item_id: str = "pair-0",
    *,
    seed: int = 0,
    size: int = 32,
    bands: int = 3,
    change: bool = True,
    fraction: float | None = None,
    noise: float = 2.0,
    shift: float = 80.0,
    dtype: Any = np.uint8,
    band_names: tuple[str, ...] | None = None,
) -> Item:
    """A before/after :class:`~satcore.data.Item` whose only real change is a planted square.

    Both dates share a smooth background plus independent Gaussian noise (``noise``, in digital numbers);
    inside the square every band of the after image moves by ``±shift``. ``item.label`` is the exact mask
    (all ``False`` with ``change=False``), so ``image_label`` is 1 exactly when something was planted.

    Args:
        item_id: the item id.
        seed: seeds the background, the noise and the square's size and place.
        size: height and width in pixels.
        bands: number of bands (3 → ``red green blue``).
        change: plant a change (``False`` gives a pair that differs by noise only).
        fraction: area of the square as a fraction of the image (default: random in ``[0.08, 0.25]``).
        noise: standard deviation of the per-date noise.
        shift: how far changed pixels move.
        dtype: pixel type of the rasters.
        band_names: band names (default from the band count).
    """
    rng = np.random.default_rng([seed, 0])
    base = _background(rng, bands, size)
    mask = planted_change(size, seed, change, fraction)
    before = base + rng.normal(0, noise, base.shape)
    after = base + rng.normal(0, noise, base.shape)
    direction = np.where(base.mean(axis=(1, 2), keepdims=True) > 120, -1.0, 1.0)
    after = np.where(mask[None], after + direction * shift, after)
    info = np.iinfo(dtype) if np.issubdtype(dtype, np.integer) else None
    if info is not None:
        before = np.clip(np.rint(before), info.min, info.max)
        after = np.clip(np.rint(after), info.min, info.max)
    names = band_names or ()
    images = [Raster(before.astype(dtype), band_names=names), Raster(after.astype(dtype), band_names=names)]
    return Item(item_id, images, label=mask, meta={"tile": item_id, "kind": "pair"})


def make_change_items(n: int = 4, *, seed: int = 0, size: int = 32, bands: int = 3,
                      unchanged: int = 1, **kwargs: Any) -> list[Item]:
    """``n`` pairs ``pair-0``…: the first ``unchanged`` differ by noise only, the rest have planted changes.

    Each item has its own seed (``seed * 1000 + i``), so items differ from one another; this matters for
    order and batch-independence checks.
    """
    return [
        make_change_pair(f"pair-{i}", seed=seed * 1000 + i, size=size, bands=bands, change=i >= unchanged,
                         **kwargs)
        for i in range(n)
    ]


def make_scene_item(item_id: str = "scene-0", *, seed: int = 0, size: int = 32, bands: int = 3) -> Item:
    """A single-image item (for captioners, recognizers and image-to-image generators)."""
    pair = make_change_pair(item_id, seed=seed, size=size, bands=bands)
    return Item(item_id, [pair.images[1]], meta={"tile": item_id, "kind": "scene"})


#: Class labels :func:`make_class_items` cycles through.
TEST_CLASSES = ("forest", "water", "urban")
#: Reference captions :func:`make_caption_items` gives, per class of :data:`TEST_CLASSES`.
TEST_CAPTIONS = {
    "forest": ("a dense green forest", "many trees cover the area"),
    "water": ("a calm lake", "the water is dark and still"),
    "urban": ("buildings along a road", "a dense residential area"),
}
#: Prompts :func:`make_text_items` cycles through.
TEST_PROMPTS = ("a satellite image of a forest", "a satellite image of a lake",
                "a satellite image of a town", "a satellite image of farmland")


def _class_scene(item_id: str, label: str, seed: int, size: int, bands: int) -> Raster:
    """A scene whose class shows in the pixels: forest green-dominant, water dark, urban bright and grey."""
    base = make_scene_item(item_id, seed=seed, size=size, bands=bands).images[0]
    arr = base.array.astype(np.float32)
    k = TEST_CLASSES.index(label) if label in TEST_CLASSES else 0
    scale = np.ones((bands, 1, 1), np.float32)
    if bands >= 3:
        scale[:3, 0, 0] = ((0.6, 1.2, 0.6), (0.3, 0.35, 0.5), (1.3, 1.3, 1.3))[k]
    out = np.clip(arr * scale, 0, 255).astype(base.array.dtype)
    return base.with_array(out)


def make_class_items(n: int = 4, *, seed: int = 0, size: int = 32, bands: int = 3,
                     classes: tuple[str, ...] = TEST_CLASSES, kind: str = "scene") -> list[Item]:
    """``n`` class-labelled items (for recognizers): item ``i`` has ``classes=(classes[i % len]),``.

    ``kind="scene"`` gives one image per item (a scene classification dataset); ``"pair"`` two images of the
    same class, ``"series"`` three, for recognizers that label each image of a pair or series.
    """
    images_per = {"scene": 1, "pair": 2, "series": 3}[kind]
    items = []
    for i in range(n):
        label = classes[i % len(classes)]
        item_id = f"{kind}-{i}"
        images = [_class_scene(item_id, label, seed * 1000 + i * 10 + j, size, bands)
                  for j in range(images_per)]
        items.append(Item(item_id, images, meta={"tile": item_id, "kind": kind, "class": label},
                          classes=(label,)))
    return items


def make_caption_items(n: int = 4, *, seed: int = 0, size: int = 32, bands: int = 3,
                       kind: str = "scene") -> list[Item]:
    """``n`` items with reference captions in ``texts`` (for captioners) and their class in ``classes``.

    ``kind`` as for :func:`make_class_items` (``scene``, ``pair``, ``series``).
    """
    out = []
    for it in make_class_items(n, seed=seed, size=size, bands=bands, kind=kind):
        label = (it.classes or ("forest",))[0]
        out.append(Item(it.item_id, it.images, meta=it.meta, classes=it.classes,
                        texts=TEST_CAPTIONS.get(label, (f"a {label}",))))
    return out


def make_text_items(n: int = 4, *, prompts: tuple[str, ...] = TEST_PROMPTS) -> list[Item]:
    """``n`` text-only items ``text-0``…: no images, ``text`` is a prompt (for text-to-image generators)."""
    return [Item(f"text-{i}", [], meta={"tile": f"text-{i}", "kind": "text"}, text=prompts[i % len(prompts)])
            for i in range(n)]


def make_target_items(n: int = 4, *, seed: int = 0, size: int = 32, bands: int = 3,
                      target_bands: tuple[str, ...] = ("red", "green", "blue", "nir"),
                      georeferenced: bool = True) -> list[Item]:
    """``n`` scenes with a target raster in ``targets["target"]`` (for image-to-image generators).

    With ``georeferenced`` (the default) each scene has :data:`TEST_CRS` and its own 10 m transform
    (:func:`georef_transform`), so the generator contract can check that outputs keep them.

    The target is on the scene's grid with ``target_bands``: the scene's bands, and any further ones (``nir``
    by default) derived from them, so a generator's output can be compared against it.
    """
    out = []
    for i in range(n):
        item = make_scene_item(f"scene-{i}", seed=seed * 1000 + i, size=size, bands=bands)
        scene = item.images[0]
        if georeferenced:
            scene = Raster(scene.array, crs=georef_crs(), transform=georef_transform(i),
                           band_names=scene.band_names)
        src = scene.array.astype(np.float32)
        extra = [src.mean(axis=0) * 0.8 + 20 for _ in range(max(0, len(target_bands) - bands))]
        arr = np.concatenate([src[: len(target_bands)], *(e[None] for e in extra)], axis=0)
        target = scene.with_array(arr.astype(np.float32), tuple(target_bands))
        out.append(Item(item.item_id, [scene], meta=item.meta, targets={"target": target}))
    return out


def georef_crs() -> Any:
    """:data:`TEST_CRS` as a :class:`rasterio.crs.CRS`."""
    from rasterio.crs import CRS

    return CRS.from_string(TEST_CRS)


def georef_transform(i: int = 0) -> Any:
    """The 10 m pixel transform of test item ``i`` (each item lies 1 km east of the one before)."""
    from affine import Affine

    return Affine(10.0, 0.0, 500000.0 + 1000.0 * i, 0.0, -10.0, 5000000.0)


def make_pairs_dir(root: str | Path, n: int = 4, *, seed: int = 0, size: int = 32, bands: int = 3,
                   unchanged: int = 1, label_values: int = 255) -> Path:
    """Write :func:`make_change_items` as a ``folder-pairs`` dataset: ``A/``, ``B/``, ``label/`` GeoTIFFs.

    Files are ``<item_id>.tif`` with a UTM CRS and 10 m pixels; labels are uint8 ``0``/``label_values``
    (LEVIR-CD style 0/255 by default). Returns ``root``, ready for
    ``source: {type: folder-pairs, root: ...}``.
    """
    from rasterio.crs import CRS

    from satcore.data import write_geotiff

    root = Path(root)
    crs = CRS.from_string(TEST_CRS)
    for i, item in enumerate(make_change_items(n, seed=seed, size=size, bands=bands, unchanged=unchanged)):
        transform = georef_transform(i)
        for folder, raster in (("A", item.images[0]), ("B", item.images[1])):
            geo = Raster(raster.array, crs=crs, transform=transform, band_names=raster.band_names)
            write_geotiff(root / folder / f"{item.item_id}.tif", geo.array, like=geo)
        mask = item.label if item.label is not None else np.zeros((size, size), bool)
        lab = Raster((mask * label_values).astype(np.uint8)[None], crs=crs, transform=transform)
        write_geotiff(root / "label" / f"{item.item_id}.tif", lab.array, like=lab)
    return root


__all__ = ["TEST_CAPTIONS", "TEST_CLASSES", "TEST_CRS", "TEST_PROMPTS", "georef_crs", "georef_transform",
           "make_caption_items", "make_change_items", "make_change_pair", "make_class_items",
           "make_pairs_dir", "make_scene_item", "make_target_items", "make_text_items", "planted_change"]
