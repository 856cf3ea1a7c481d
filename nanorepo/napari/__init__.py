"""nanorepo in napari: open repository images lazily, see and post annotation regions.

An npe2 plugin (``napari.yaml`` beside this file, registered through the
``napari.manifest`` entry point):

* a reader for ``nanorepo://ACCESSION[@vN][/IMAGE]`` URIs and the service's Zarr URLs
  (:func:`get_reader`, :func:`read_layers`); it returns ``None`` for anything else. Images
  open as multiscale layers (one lazy :class:`LevelArray` per pyramid level and channel),
  with channel names, colours and contrast windows from the omero metadata and scale in
  nanometres, from the mounted storage or over HTTP with the user's token;
* the region threads of each image as a Shapes layer (:func:`region_layer`), in world
  nanometres (:class:`ImageGeometry` converts to and from the anchors the service stores);
* a dock widget (:class:`ThreadsWidget`) that lists an image's threads, jumps to a region,
  and posts a drawn shape as a new thread, or a reply;
* :func:`open_viewer`, what ``nanorepo view ACCESSION[@vN] [--image NAME]`` runs.

The widget needs Qt and is imported on first use, so the reader works without a Qt binding.
See ``docs/napari.md``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from nanorepo.napari._geometry import ImageGeometry
from nanorepo.napari._layers import LevelArray, image_layers
from nanorepo.napari._reader import get_reader, read_layers
from nanorepo.napari._regions import RegionSource, region_layer
from nanorepo.napari._uri import Target, parse_target
from nanorepo.napari._viewer import open_viewer

if TYPE_CHECKING:
    from nanorepo.napari._widget import ThreadsWidget

__all__ = [
    "ImageGeometry",
    "LevelArray",
    "RegionSource",
    "Target",
    "ThreadsWidget",
    "get_reader",
    "image_layers",
    "open_viewer",
    "parse_target",
    "read_layers",
    "region_layer",
]


def __getattr__(name: str) -> Any:
    if name == "ThreadsWidget":  # Qt is loaded only when the widget is wanted
        from nanorepo.napari._widget import ThreadsWidget

        return ThreadsWidget
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
