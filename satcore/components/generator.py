"""Generators: text/image → image."""

from __future__ import annotations

from typing import Any, ClassVar

from satcore.components.base import Batch, Component, scalar_columns
from satcore.data import Raster

#: the keys of a generator's output that the engine writes as files rather than table cells
FILE_KEYS = ("images", "image")


class Generator(Component):
    """Generates images (or text) from text or other images.

    :meth:`process` returns one ``dict`` per item with:

    - ``images``: a list of :class:`~satcore.data.Raster` (or ``image``: one ``Raster``). The engine writes
      each to ``generated/<item_id>/<step_id>.tif`` (several: ``<step_id>.0.tif``, ``<step_id>.1.tif``, …) as
      a GeoTIFF with the raster's CRS, transform and band names (as band descriptions). A raster without a
      CRS that has the input item's height and width gets the input's georeference (the usual image→image
      case: the generator need not copy it); otherwise it is written without one.
    - ``texts`` (optional): a list of strings (or ``text``: one string), written to
      ``generated/<item_id>/<step_id>.txt`` (several: ``<step_id>.<k>.txt``) and kept as a table cell too.
    - anything else: table cells as for every component (:meth:`Component.columns`).

    The files' paths, relative to the run folder, go in ``results.parquet`` as ``<step_id>.path`` (a string,
    or a list when there are several). Steps reading this one get the in-memory dict, not the files. A
    resumed run processes an item again and rewrites its files.

    Scored in the ``spectral`` block of ``metrics.json``: the first image's array against the item's target
    raster (``targets["target"]``, else the only target).
    """

    kind: ClassVar[str] = "generator"
    produces: ClassVar[tuple[str, ...]] = ("images",)
    metric_blocks: ClassVar[tuple[str, ...]] = ("spectral",)

    def process(self, batch: Batch) -> list[dict[str, Any]]:
        """Generated images (and/or texts) for each item of the batch."""
        raise NotImplementedError

    def columns(self, output: Any) -> dict[str, Any]:
        """The output's table cells, without the rasters (the engine writes them to ``generated/``)."""
        if isinstance(output, dict):
            return scalar_columns({k: v for k, v in output.items() if k not in FILE_KEYS})
        return {}

    def metric_prediction(self, block: str, output: Any) -> Any | None:
        """The first generated image's array (``images[0]``, or ``image``)."""
        if block != "spectral" or not isinstance(output, dict):
            return None
        images = output.get("images")
        first = images[0] if images else output.get("image")
        return first.array if isinstance(first, Raster) else first
