"""OME data in and out: image readers, metadata harvesting, OME-Zarr writing and reading.

Readers of instrument files (OME-TIFF, TIFF, ImageJ hyperstacks, TIFF plane folders,
OME-Zarr) produce an :class:`ImageSource`; :func:`write_image` turns any source into an
NGFF 0.5 sharded multiscale image; :class:`OmeZarrImage` reads one back lazily.
"""

from __future__ import annotations

from nanorepo.ome._codecs import CODECS
from nanorepo.ome._harvest import check, is_image, is_localisation_table, open_source, open_sources
from nanorepo.ome._read import OmeZarrImage
from nanorepo.ome._smlm import CANONICAL_COLUMNS, LocalisationTable, read_localisations
from nanorepo.ome._source import AXES, ArraySource, Channel, ImageSource
from nanorepo.ome._thumbnail import png_bytes, render_rgb, thumbnail
from nanorepo.ome._tiff import binary_only_master
from nanorepo.ome._write import WrittenImage, WrittenLevel, write_image

__all__ = [
    "AXES",
    "CANONICAL_COLUMNS",
    "CODECS",
    "ArraySource",
    "Channel",
    "ImageSource",
    "LocalisationTable",
    "OmeZarrImage",
    "WrittenImage",
    "WrittenLevel",
    "binary_only_master",
    "check",
    "is_image",
    "is_localisation_table",
    "open_source",
    "open_sources",
    "png_bytes",
    "read_localisations",
    "render_rgb",
    "thumbnail",
    "write_image",
]
