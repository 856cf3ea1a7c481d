"""Thread anchors: what a thread is about (a dataset, an image, or a region of an image).

A region is given in **physical units** (nanometres from the image's origin, the outer
corner of its first pixel), not in pixels, so the same anchor holds at every pyramid level,
in napari and the Lab extension alike, and in later versions of the dataset that keep the
image. :func:`region_to_pixels` converts it to a pixel box at any level when a viewer
needs one.

Canonical forms (what :func:`normalise_anchor` returns and the catalog stores)::

    {"kind": "dataset"}
    {"kind": "image", "image": "cell1"}
    {"kind": "region", "image": "cell1", "unit": "nanometer",
     "shape": "box", "x": [x0, x1], "y": [y0, y1]}
    {"kind": "region", "image": "cell1", "unit": "nanometer",
     "shape": "polygon", "points": [[x, y], ...]}

Image and region anchors may also carry ``"z": [z0, z1]`` (nanometres, ``z0 <= z1``),
``"c": [channel indices]`` and ``"t": [t0, t1]`` (time point indices, inclusive).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from nanorepo.catalog.models import Image
from nanorepo.errors import InvalidInput

__all__ = ["ANCHOR_KINDS", "MAX_POLYGON_POINTS", "normalise_anchor", "region_to_pixels"]

#: What a thread can be anchored to.
ANCHOR_KINDS = ("dataset", "image", "region")
#: Most vertices a polygon region may have.
MAX_POLYGON_POINTS = 10_000

_UNITS = {"nanometer": "nanometer", "nanometre": "nanometer", "nm": "nanometer"}
_FIELDS = {
    "dataset": {"kind"},
    "image": {"kind", "image", "z", "c", "t"},
    "region": {"kind", "image", "unit", "shape", "x", "y", "points", "z", "c", "t"},
}
_SHAPES = (
    'a box is {"shape": "box", "x": [x0, x1], "y": [y0, y1]}, a polygon '
    '{"shape": "polygon", "points": [[x, y], ...]} (nanometres)'
)
_HINT = (
    "region coordinates are nanometres from the image's origin (the outer corner of its "
    "first pixel): x along columns, y along rows"
)


def _bad(field: str, problem: str, hint: str = _HINT) -> InvalidInput:
    return InvalidInput(f"anchor.{field} {problem}", hint=hint)


def _number(field: str, v: Any) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
        raise _bad(field, f"must hold finite numbers, not {v!r}")
    return float(v)


def _pair(field: str, v: Any) -> list[float]:
    if not isinstance(v, list | tuple) or len(v) != 2:
        raise _bad(field, f"must be a pair [start, end], not {v!r}")
    return [_number(field, v[0]), _number(field, v[1])]


def _index(field: str, v: Any) -> int:
    if isinstance(v, bool) or not isinstance(v, int):
        raise _bad(field, f"must hold whole-number indices, not {v!r}", hint="indices start at 0")
    return int(v)


def _extent_nm(image: Image, axis: str) -> float:
    """Physical size of ``image`` along ``axis`` (nanometres): pixels × pixel size."""
    size = (image.pixel_sizes or {}).get(axis)
    if axis not in image.dims or not size or size <= 0:
        raise _bad(
            axis,
            f"cannot be used: image {image.name!r} has no physical size along {axis}",
            hint=f"its axes are {''.join(image.dims)} with pixel sizes {image.pixel_sizes} nm",
        )
    return float(image.shape[image.dims.index(axis)]) * float(size)


def _within(field: str, lo: float, hi: float, extent: float, image: Image) -> None:
    eps = 1e-9 * max(extent, 1.0)  # touching the border is inside, whatever the rounding
    if lo < -eps or hi > extent + eps:
        raise _bad(
            field,
            f"= [{lo:g}, {hi:g}] lies outside image {image.name!r}, whose extent along "
            f"{field} is 0 to {extent:g} nm",
        )


def _n_channels(image: Image) -> int:
    if "c" in image.dims:
        return int(image.shape[image.dims.index("c")])
    return max(1, len(image.channels or []))


def _zct(anchor: Mapping[str, Any], image: Image, out: dict[str, Any]) -> None:
    """Validate the optional ``z``, ``c`` and ``t`` ranges into ``out``."""
    if "z" in anchor:
        z0, z1 = _pair("z", anchor["z"])
        if z0 > z1:
            raise _bad("z", f"= [{z0:g}, {z1:g}] must run upwards (z0 <= z1)")
        _within("z", z0, z1, _extent_nm(image, "z"), image)
        out["z"] = [z0, z1]
    if "c" in anchor:
        cs = anchor["c"]
        if not isinstance(cs, list | tuple) or not cs:
            raise _bad("c", f"must be a non-empty list of channel indices, not {cs!r}")
        n = _n_channels(image)
        idx = sorted({_index("c", c) for c in cs})
        if idx[0] < 0 or idx[-1] >= n:
            names = [str(c.get("name", i)) for i, c in enumerate(image.channels or [])]
            raise _bad(
                "c",
                f"= {list(cs)} names channels image {image.name!r} does not have",
                hint=f"channel indices run from 0 to {n - 1} ({', '.join(names)})",
            )
        out["c"] = idx
    if "t" in anchor:
        t = anchor["t"]
        if not isinstance(t, list | tuple) or len(t) != 2:
            raise _bad("t", f"must be a pair [first, last] of time indices, not {t!r}")
        t0, t1 = _index("t", t[0]), _index("t", t[1])
        nt = int(image.shape[image.dims.index("t")]) if "t" in image.dims else 1
        if not 0 <= t0 <= t1 < nt:
            raise _bad(
                "t",
                f"= [{t0}, {t1}] is not a range of time points of image {image.name!r}",
                hint=f"time indices run from 0 to {nt - 1}, first <= last",
            )
        out["t"] = [t0, t1]


def normalise_anchor(anchor: Any, image: Image | None = None) -> dict[str, Any]:
    """Validate an anchor and return its canonical, JSON-able form.

    Parameters
    ----------
    anchor:
        The anchor as sent (see the module docstring for the forms accepted).
    image:
        The catalog row of the image an ``image`` or ``region`` anchor names, from the
        dataset version the thread is written against; its shape, pixel sizes (nm) and
        channels bound the region.

    Raises
    ------
    InvalidInput
        Naming the offending field and the valid range.
    """
    if not isinstance(anchor, Mapping):
        raise InvalidInput(
            f"an anchor must be an object, not {type(anchor).__name__}",
            hint='e.g. {"kind": "dataset"} or {"kind": "image", "image": "cell1"}',
        )
    kind = anchor.get("kind")
    if kind not in ANCHOR_KINDS:
        raise _bad(
            "kind",
            f"must be one of {', '.join(ANCHOR_KINDS)}, not {kind!r}",
            hint='e.g. {"kind": "dataset"} or {"kind": "image", "image": "cell1"}',
        )
    unknown = sorted(str(k) for k in anchor if k not in _FIELDS[kind])
    if unknown:
        raise InvalidInput(
            f"a {kind} anchor has no field(s) {', '.join(unknown)}",
            hint=f"a {kind} anchor holds: {', '.join(sorted(_FIELDS[kind]))}",
        )
    if kind == "dataset":
        return {"kind": "dataset"}
    name = anchor.get("image")
    if not isinstance(name, str) or not name:
        raise _bad(
            "image",
            f"must name an image of the dataset, not {name!r}",
            hint="use a name from the version's list of images",
        )
    if image is None or image.name != name:
        raise _bad(
            "image",
            f"= {name!r} is not an image of this dataset version",
            hint="list the version's images and use one of their names",
        )
    out: dict[str, Any] = {"kind": kind, "image": name}
    if kind == "region":
        unit = anchor.get("unit", "nanometer")
        if unit not in _UNITS:
            raise _bad("unit", f"must be 'nanometer', not {unit!r}")
        out["unit"] = "nanometer"
        shape = anchor.get("shape", "box")
        ex, ey = _extent_nm(image, "x"), _extent_nm(image, "y")
        if shape == "box":
            if "points" in anchor:
                raise _bad("points", "belongs to polygons; a box has x and y", hint=_SHAPES)
            for axis, extent in (("x", ex), ("y", ey)):
                if axis not in anchor:
                    raise _bad(axis, f"is missing: a box needs {axis}: [{axis}0, {axis}1]")
                lo, hi = _pair(axis, anchor[axis])
                if not lo < hi:
                    raise _bad(axis, f"= [{lo:g}, {hi:g}] must have {axis}0 < {axis}1")
                _within(axis, lo, hi, extent, image)
                out[axis] = [lo, hi]
            out["shape"] = "box"
        elif shape == "polygon":
            if "x" in anchor or "y" in anchor:
                raise _bad("points", "alone define a polygon; leave out x and y", hint=_SHAPES)
            pts = anchor.get("points")
            if not isinstance(pts, list | tuple) or not (3 <= len(pts) <= MAX_POLYGON_POINTS):
                raise _bad("points", f"must be a list of 3 to {MAX_POLYGON_POINTS:,} [x, y] points")
            points = [_pair("points", p) for p in pts]
            xs, ys = [p[0] for p in points], [p[1] for p in points]
            n = len(points)
            twice_area = sum(xs[i] * ys[(i + 1) % n] - xs[(i + 1) % n] * ys[i] for i in range(n))
            if twice_area == 0:
                raise _bad(
                    "points", "enclose no area (all on one line, or the outline cancels out)"
                )
            _within("x", min(xs), max(xs), ex, image)
            _within("y", min(ys), max(ys), ey, image)
            out["shape"] = "polygon"
            out["points"] = points
        else:
            raise _bad("shape", f"must be 'box' or 'polygon', not {shape!r}", hint=_SHAPES)
    _zct(anchor, image, out)
    return out


def region_to_pixels(
    anchor: Mapping[str, Any], image: Image, level: int = 0
) -> dict[str, tuple[int, int]]:
    """The pixel box covering an anchor at one pyramid level.

    Parameters
    ----------
    anchor:
        A canonical anchor (from :func:`normalise_anchor`) of kind ``image`` or ``region``.
    image:
        The image's catalog row (``levels`` holds each level's shape in ``dims`` order).
    level:
        Pyramid level; 0 is full resolution, each further level halves ``y`` and ``x``.

    Returns
    -------
    dict
        ``{dim: (start, stop)}`` half-open index ranges for every dim of the image, in
        ``image.dims`` order, so ``tuple(slice(*box[d]) for d in image.dims)`` indexes the
        level's array. The box is the smallest one containing the region (a polygon's
        bounding box); ``c`` spans the lowest to the highest channel named.
    """
    if not 0 <= level < len(image.levels):
        raise InvalidInput(
            f"image {image.name!r} has no pyramid level {level}",
            hint=f"levels run from 0 to {len(image.levels) - 1}",
        )
    shape = [int(n) for n in image.levels[level]]
    box = {d: (0, n) for d, n in zip(image.dims, shape, strict=True)}
    if anchor.get("kind") == "region":
        if anchor.get("shape") == "polygon":
            xs = [float(p[0]) for p in anchor["points"]]
            ys = [float(p[1]) for p in anchor["points"]]
            ranges = {"x": (min(xs), max(xs)), "y": (min(ys), max(ys))}
        else:
            ranges = {"x": tuple(anchor["x"]), "y": tuple(anchor["y"])}
        for axis, (lo, hi) in ranges.items():
            i = image.dims.index(axis)
            full, n = int(image.shape[i]), shape[i]
            # The writer halves y and x per level (level pixel = 2**k level-0 pixels); a
            # pyramid made otherwise is mapped by the ratio of the shapes.
            factor = 2.0**level if math.ceil(full / 2**level) == n else full / n
            step = float(image.pixel_sizes[axis]) * factor
            start = min(max(math.floor(lo / step), 0), n - 1)
            box[axis] = (start, min(max(math.ceil(hi / step), start + 1), n))
    if "z" in anchor and "z" in image.dims:
        i = image.dims.index("z")
        step, n = float(image.pixel_sizes["z"]), shape[i]
        z0, z1 = anchor["z"]
        start = min(max(math.floor(z0 / step), 0), n - 1)
        box["z"] = (start, min(max(math.ceil(z1 / step), start + 1), n))
    if "c" in anchor and "c" in image.dims:
        box["c"] = (min(anchor["c"]), max(anchor["c"]) + 1)
    if "t" in anchor and "t" in image.dims:
        box["t"] = (anchor["t"][0], anchor["t"][1] + 1)
    return box
