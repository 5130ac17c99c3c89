"""Generators: text/image → image."""

from __future__ import annotations

from typing import Any, ClassVar

from satcore.components.base import Batch, Component, scalar_columns

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
    """

    kind: ClassVar[str] = "generator"
    produces: ClassVar[tuple[str, ...]] = ("images",)

    def process(self, batch: Batch) -> list[dict[str, Any]]:
        """Generated images (and/or texts) for each item of the batch."""
        raise NotImplementedError

    def columns(self, output: Any) -> dict[str, Any]:
        """The output's table cells, without the rasters (the engine writes them to ``generated/``)."""
        if isinstance(output, dict):
            return scalar_columns({k: v for k, v in output.items() if k not in FILE_KEYS})
        return {}
