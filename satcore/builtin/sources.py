"""The built-in sources, one module each; this module re-exports them (the historical import path)."""

from __future__ import annotations

from satcore.builtin.common import (
    IMAGE_EXTENSIONS,
    SPLIT_FOLDERS,
    EmptySourceError,
    align_pair,
    load_truth,
)
from satcore.builtin.folder_classes import FolderClassesParams, FolderClassesSource
from satcore.builtin.folder_pairs import FolderPairsParams, FolderPairsSource
from satcore.builtin.manifest import ManifestParams, ManifestSource
from satcore.builtin.series import GeoTiffSeriesParams, GeoTiffSeriesSource, Location
from satcore.builtin.text import TextParams, TextSource

#: Every built-in source class, in the order they are registered.
BUILTIN_SOURCES = (FolderPairsSource, FolderClassesSource, ManifestSource, TextSource, GeoTiffSeriesSource)

__all__ = ["BUILTIN_SOURCES", "IMAGE_EXTENSIONS", "SPLIT_FOLDERS", "EmptySourceError", "FolderClassesParams",
           "FolderClassesSource", "FolderPairsParams", "FolderPairsSource", "GeoTiffSeriesParams",
           "GeoTiffSeriesSource", "Location", "ManifestParams", "ManifestSource", "TextParams", "TextSource",
           "align_pair", "load_truth"]
