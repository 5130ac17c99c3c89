"""Sentinel-2 band order (no torch here: imported by the plugin's light modules)."""

from __future__ import annotations

#: The 13 Sentinel-2 L1C bands in ESA order (B8A after B08), the order of every multispectral output.
ESA_BANDS: tuple[str, ...] = (
    "B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B10", "B11", "B12",
)

#: The RGB bands of a Sentinel-2 scene (true colour: red B04, green B03, blue B02).
RGB_FROM_S2: tuple[str, ...] = ("B04", "B03", "B02")

#: Band names of an RGB output.
RGB_BANDS: tuple[str, ...] = ("red", "green", "blue")
