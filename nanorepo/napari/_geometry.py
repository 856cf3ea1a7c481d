"""Where an image and its regions sit in napari's world, in nanometres.

napari places a layer's pixels with a per-axis ``scale`` and ``translate``; nanorepo gives
it the OME-Zarr coordinate transformations of level 0, so a world coordinate is the
OME-Zarr physical coordinate: pixel ``i``'s *centre* lies at ``i * scale + translation``
(nanometres for ``z``, ``y``, ``x``; seconds for ``t``), exactly what
:meth:`nanorepo.ome.OmeZarrImage.coords` and ``to_xarray()`` say, and what napari-ome-zarr
shows for the same image. napari derives the lower pyramid levels from the shapes, so the
same world coordinate holds at every level.

Region anchors (:mod:`nanorepo.annotations`) count nanometres from the image's *origin*,
the outer corner of its first pixel. The two differ by the origin's world position,
``translation - scale / 2`` per axis, and by nothing else: both are physical units of the
same image, so no unit is re-derived here. Anchors are validated with
:func:`nanorepo.annotations.normalise_anchor` against the image's catalog description
before they are sent, so a bad shape gets the service's own clear error without a round
trip.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from nanorepo.annotations import normalise_anchor
from nanorepo.errors import InvalidInput

if TYPE_CHECKING:
    from nanorepo.catalog.models import Image as ImageRow
    from nanorepo.ome import OmeZarrImage

__all__ = ["AREA_SHAPES", "ImageGeometry"]

#: napari shape types that enclose an area, so they can become a region anchor.
AREA_SHAPES = ("rectangle", "polygon", "ellipse")
#: Vertices of the polygon an ellipse is posted as.
_ELLIPSE_VERTICES = 64


@dataclass(frozen=True)
class ImageGeometry:
    """The physical layout of one image, as the reader, the regions layer and the widget
    need it (JSON-able through :meth:`to_json`, so it travels in layer metadata).

    Attributes
    ----------
    name:
        The image's name in its dataset version.
    dims:
        Axis names of the stored array, e.g. ``("c", "z", "y", "x")``.
    shape:
        Level-0 shape in ``dims`` order.
    levels:
        Every level's shape, full resolution first.
    scale, translation:
        Level-0 OME-Zarr transformations per axis (nm for space, s for time).
    pixel_sizes:
        Pixel sizes as the catalog stores them (nm; what anchors are checked against).
    channels:
        Channel descriptions as the catalog stores them (``name``, ``color``, ``window``).
    """

    name: str
    dims: tuple[str, ...]
    shape: tuple[int, ...]
    levels: tuple[tuple[int, ...], ...]
    scale: dict[str, float]
    translation: dict[str, float]
    pixel_sizes: dict[str, float]
    channels: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def of(cls, name: str, ome: OmeZarrImage) -> ImageGeometry:
        """The geometry of an opened image, from its OME-Zarr metadata (which nanorepo
        writes from the same harvested pixel sizes and channels as its catalog holds)."""
        scale = {a: float(v) for a, v in ome.scales[0].items()}
        return cls(
            name=name,
            dims=tuple(ome.dims),
            shape=tuple(int(n) for n in ome.levels[0]),
            levels=tuple(tuple(int(n) for n in lv) for lv in ome.levels),
            scale=scale,
            translation={a: float(v) for a, v in ome.translations[0].items()},
            pixel_sizes={a: scale[a] for a in ("t", "z", "y", "x") if a in scale},
            channels=[
                {"name": c.name, "color": c.color, "window": list(c.window) if c.window else None}
                for c in ome.channels
            ],
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "dims": list(self.dims),
            "shape": list(self.shape),
            "levels": [list(lv) for lv in self.levels],
            "scale": dict(self.scale),
            "translation": dict(self.translation),
            "pixel_sizes": dict(self.pixel_sizes),
            "channels": [dict(c) for c in self.channels],
        }

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> ImageGeometry:
        return cls(
            name=str(doc["name"]),
            dims=tuple(doc["dims"]),
            shape=tuple(int(n) for n in doc["shape"]),
            levels=tuple(tuple(int(n) for n in lv) for lv in doc["levels"]),
            scale={str(a): float(v) for a, v in doc["scale"].items()},
            translation={str(a): float(v) for a, v in doc["translation"].items()},
            pixel_sizes={str(a): float(v) for a, v in doc["pixel_sizes"].items()},
            channels=[dict(c) for c in doc.get("channels", [])],
        )

    # -- the world ---------------------------------------------------------------------

    @property
    def spatial_dims(self) -> tuple[str, ...]:
        """The displayed axes of a layer, in order: every axis except ``c``."""
        return tuple(d for d in self.dims if d != "c")

    def origin(self, axis: str) -> float:
        """World coordinate of the image's origin (outer corner of its first pixel)."""
        return self.translation.get(axis, 0.0) - self.scale.get(axis, 1.0) / 2

    def extent_nm(self, axis: str) -> float:
        """Physical size along ``axis``: pixels x pixel size (what anchors are bound by)."""
        return self.shape[self.dims.index(axis)] * float(self.pixel_sizes.get(axis, 0.0))

    def plane_index(self, axis: str, world: float) -> int:
        """The level-0 index along ``axis`` (``z`` or ``t``) of a world coordinate."""
        n = self.shape[self.dims.index(axis)]
        i = round((world - self.translation.get(axis, 0.0)) / self.scale.get(axis, 1.0))
        return min(max(int(i), 0), n - 1)

    def plane_world(self, axis: str, index: int) -> float:
        """World coordinate of the centre of level-0 plane ``index`` along ``axis``."""
        return index * self.scale.get(axis, 1.0) + self.translation.get(axis, 0.0)

    # -- anchors <-> shapes ----------------------------------------------------------------

    def catalog_row(self) -> ImageRow:
        """The image as the catalog describes it, for :func:`normalise_anchor`."""
        from nanorepo.catalog.models import Image as ImageRow

        return ImageRow(  # a description only: never added to a session
            version_id=0,
            path="",
            dtype="",
            key_values={},
            manifest_digest="",
            name=self.name,
            dims=list(self.dims),
            shape=list(self.shape),
            pixel_sizes=dict(self.pixel_sizes),
            channels=[dict(c) for c in self.channels],
            levels=[list(lv) for lv in self.levels],
        )

    def anchor_shape(self, anchor: Mapping[str, Any]) -> tuple[str, np.ndarray] | None:
        """A region anchor as a napari shape: ``(shape_type, vertices)``.

        Vertices are ``(y, x)`` rows in world nanometres. ``None`` for anchors that are not
        regions of this image (dataset and image threads have no outline).
        """
        if anchor.get("kind") != "region" or anchor.get("image") != self.name:
            return None
        oy, ox = self.origin("y"), self.origin("x")
        if anchor.get("shape") == "polygon":
            pts = np.asarray(anchor["points"], dtype=np.float64)
            return "polygon", np.column_stack([pts[:, 1] + oy, pts[:, 0] + ox])
        (x0, x1), (y0, y1) = anchor["x"], anchor["y"]
        corners = [[y0, x0], [y0, x1], [y1, x1], [y1, x0]]
        return "rectangle", np.asarray(corners, dtype=np.float64) + np.array([oy, ox])

    def shape_anchor(
        self,
        shape_type: str,
        vertices: Sequence[Sequence[float]] | np.ndarray,
        *,
        planes: Mapping[str, int] | None = None,
    ) -> dict[str, Any]:
        """The region anchor of a shape drawn in napari, validated and canonical.

        Parameters
        ----------
        shape_type:
            napari's shape type: ``rectangle`` (an axis-aligned one becomes a box, a
            rotated one a polygon), ``polygon``, or ``ellipse`` (posted as a
            64-vertex polygon). Lines and paths enclose no area and are refused.
        vertices:
            The shape's vertices as napari holds them, world coordinates with ``(y, x)``
            last (a shapes layer with more dimensions has leading columns, ignored).
        planes:
            Level-0 indices of the ``z`` plane and ``t`` point the shape was drawn on;
            a ``z`` plane becomes a ``z`` range of that plane's thickness (nm), a ``t``
            point a ``t`` range of one index. Ignored for axes the image lacks.

        Returns
        -------
        dict
            What :func:`nanorepo.annotations.normalise_anchor` returns: the anchor the
            service stores. Parts of the shape beyond the image's edge are clipped to it.

        Raises
        ------
        InvalidInput
            A shape that encloses no area, lies outside the image, or that the anchor
            rules refuse, with the reason.
        """
        if shape_type not in AREA_SHAPES:
            raise InvalidInput(
                f"a {shape_type} encloses no area, so it cannot anchor a region",
                hint="draw a rectangle, an ellipse or a polygon",
            )
        v = np.asarray(vertices, dtype=np.float64)
        if v.ndim != 2 or v.shape[1] < 2 or len(v) < 2:
            raise InvalidInput(f"a {shape_type} needs (y, x) vertices, got shape {v.shape}")
        # world (y, x) -> nanometres from the origin, clipped to the image
        ey, ex = self.extent_nm("y"), self.extent_nm("x")
        ys = np.clip(v[:, -2] - self.origin("y"), 0.0, ey)
        xs = np.clip(v[:, -1] - self.origin("x"), 0.0, ex)
        anchor: dict[str, Any] = {"kind": "region", "image": self.name, "unit": "nanometer"}
        if shape_type == "ellipse":
            (cy, cx), (ry, rx) = (v[:, -2:].min(0) + v[:, -2:].max(0)) / 2, np.ptp(v[:, -2:], 0) / 2
            angle = np.linspace(0.0, 2 * math.pi, _ELLIPSE_VERTICES, endpoint=False)
            ys = np.clip(cy + ry * np.sin(angle) - self.origin("y"), 0.0, ey)
            xs = np.clip(cx + rx * np.cos(angle) - self.origin("x"), 0.0, ex)
            shape_type = "polygon"
        axis_aligned = len(set(np.round(ys, 6))) <= 2 and len(set(np.round(xs, 6))) <= 2
        if shape_type == "rectangle" and axis_aligned:
            if not (xs.max() > xs.min() and ys.max() > ys.min()):
                raise InvalidInput(
                    "the rectangle lies outside the image (or has no area inside it)",
                    hint=f"the image spans x 0-{ex:g} nm and y 0-{ey:g} nm from its origin",
                )
            anchor.update(
                shape="box",
                x=[float(xs.min()), float(xs.max())],
                y=[float(ys.min()), float(ys.max())],
            )
        else:
            anchor.update(
                shape="polygon",
                points=[[float(x), float(y)] for x, y in zip(xs, ys, strict=True)],
            )
        for axis, index in (planes or {}).items():
            if axis not in self.dims or axis not in ("z", "t"):
                continue
            if self.shape[self.dims.index(axis)] <= 1:
                continue
            if axis == "z":
                step = float(self.pixel_sizes.get("z", 0.0))
                anchor["z"] = [index * step, (index + 1) * step]
            else:
                anchor["t"] = [int(index), int(index)]
        return normalise_anchor(anchor, self.catalog_row())
