"""Finding STAC items: a STAC API search (pystac-client) or a static catalog filtered locally (pystac).

Both give the same :class:`Scene` records, one per acquisition, so the source does not care where they
came from. pystac and pystac-client are imported inside the functions.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from satcore.errors import SpecError


@dataclass
class Scene:
    """One STAC item reduced to what a location series needs."""

    item_id: str
    time: datetime
    bbox: tuple[float, float, float, float]
    cloud_cover: float | None
    hrefs: dict[str, str] = field(default_factory=dict)

    def covers(self, lon: float, lat: float) -> bool:
        """Whether the item's bbox (WGS84) holds the point."""
        x0, y0, x1, y1 = self.bbox
        return x0 <= lon <= x1 and y0 <= lat <= y1


def time_range(value: str | None) -> tuple[datetime | None, datetime | None]:
    """``"2022-01-01/2023-12-31"`` (either end may be ``..`` or empty), or one date → ``(start, end)``."""
    if not value:
        return None, None
    parts = value.split("/") if "/" in value else [value, value]
    if len(parts) != 2:
        raise ValueError(f"datetime {value!r}: give `start/end` (ISO dates; `..` for open)")
    out: list[datetime | None] = []
    for i, p in enumerate(parts):
        p = p.strip()
        if p in ("", ".."):
            out.append(None)
            continue
        t = datetime.fromisoformat(p.replace("Z", "+00:00"))
        if len(p) == 10 and i == 1:  # a bare end date includes that whole day
            t = t.replace(hour=23, minute=59, second=59, microsecond=999999)
        out.append(t if t.tzinfo else t.replace(tzinfo=timezone.utc))
    return out[0], out[1]


def to_scene(item: Any, assets: Sequence[str]) -> Scene | None:
    """A :class:`Scene` from a ``pystac.Item``, or ``None`` when it lacks one of ``assets``."""
    if any(a not in item.assets for a in assets):
        return None
    t = _time(item)
    cc = item.properties.get("eo:cloud_cover")
    return Scene(item.id, t, tuple(item.bbox), None if cc is None else float(cc),
                 {a: item.assets[a].get_absolute_href() or item.assets[a].href for a in assets})


def _time(item: Any) -> datetime:
    t = item.datetime or item.common_metadata.start_datetime
    if t is None:
        raise SpecError(f"stac: item {item.id} has no datetime (nor start_datetime)")
    return t if t.tzinfo else t.replace(tzinfo=timezone.utc)  # type: ignore[no-any-return]


def search_api(url: str, *, collections: Sequence[str], intersects: dict[str, Any] | None,
               bbox: Sequence[float] | None, datetime_range: str | None, max_cloud_cover: float | None,
               max_items: int, assets: Sequence[str]) -> list[Scene]:
    """Search a STAC API (``POST /search``) and return the scenes found."""
    from pystac_client import Client

    try:
        client = Client.open(url)
    except Exception as exc:  # connection refused, not a STAC API, bad JSON
        raise SpecError(f"stac: cannot open the STAC API at {url}: {str(exc)[:200]}") from exc
    kwargs: dict[str, Any] = {"collections": list(collections), "max_items": max_items}
    if intersects is not None:
        kwargs["intersects"] = intersects
    if bbox is not None:
        kwargs["bbox"] = list(bbox)
    if datetime_range:
        kwargs["datetime"] = datetime_range
    if max_cloud_cover is not None:
        kwargs["query"] = {"eo:cloud_cover": {"lte": max_cloud_cover}}
    try:
        items = list(client.search(**kwargs).items())
    except Exception as exc:
        raise SpecError(f"stac: the search at {url} failed: {str(exc)[:200]}") from exc
    return with_assets(items, assets, url)


def with_assets(items: Sequence[Any], assets: Sequence[str], where: str) -> list[Scene]:
    """The items that have every asset, as scenes; found items none of which has them are a SpecError.

    An item without one of the assets (another processing baseline, a partial upload) is left out; when
    every item lacks them, the asset keys are wrong for this catalog, which the message says.
    """
    scenes = [s for s in (to_scene(it, assets) for it in items) if s is not None]
    if items and not scenes:
        have = sorted(items[0].assets)
        raise SpecError(f"stac: no item found at {where} has all the assets {list(assets)} (e.g. "
                        f"{items[0].id} has {have}); set `assets:` on the source to this catalog's band "
                        "asset keys")
    return scenes


def search_catalog(path: str, *, collections: Sequence[str], bbox: Sequence[float] | None,
                   datetime_range: str | None, max_cloud_cover: float | None, max_items: int,
                   assets: Sequence[str]) -> list[Scene]:
    """The items of a static catalog that match, filtered locally like the API would.

    An item matches when its collection is one of ``collections`` (an item without a collection matches),
    its datetime is in the range, its ``eo:cloud_cover`` is at most ``max_cloud_cover`` (an item without one
    matches only when no limit is set) and its bbox intersects ``bbox``.
    """
    import pystac

    try:
        cat = pystac.Catalog.from_file(path)
    except Exception as exc:
        raise SpecError(f"stac: cannot read the catalog {path}: {str(exc)[:200]}") from exc
    start, end = time_range(datetime_range)
    picked: list[Any] = []
    for item in _items(cat):
        if item.collection_id is not None and item.collection_id not in collections:
            continue
        t = _time(item)
        cc = item.properties.get("eo:cloud_cover")
        if (start and t < start) or (end and t > end):
            continue
        if max_cloud_cover is not None and (cc is None or float(cc) > max_cloud_cover):
            continue
        if bbox is not None and not _overlap(item.bbox, bbox):
            continue
        picked.append(item)
        if len(picked) >= max_items:
            break
    return with_assets(picked, assets, path)


def _items(cat: Any) -> Iterable[Any]:
    items: Iterable[Any] = cat.get_items(recursive=True)
    return items


def _overlap(a: Sequence[float], b: Sequence[float]) -> bool:
    return a[0] <= b[2] and b[0] <= a[2] and a[1] <= b[3] and b[1] <= a[3]


def one_per_time(scenes: Iterable[Scene]) -> list[Scene]:
    """Sorted by time, one scene per acquisition time: the lowest cloud cover wins, then the smaller id.

    Adjacent Sentinel-2 tiles of one datatake share a datetime, so a point on their overlap is found twice.
    """
    best: dict[datetime, Scene] = {}
    for s in scenes:
        key = (s.cloud_cover if s.cloud_cover is not None else 101.0, s.item_id)
        cur = best.get(s.time)
        if cur is None or key < (cur.cloud_cover if cur.cloud_cover is not None else 101.0, cur.item_id):
            best[s.time] = s
    return [best[t] for t in sorted(best)]
