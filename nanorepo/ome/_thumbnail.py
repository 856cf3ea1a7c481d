"""Thumbnails: an RGB rendering of an image from a small pyramid level.

What a microscopist expects to see at a glance, whatever the image:

* the **level**: the coarsest one whose longer side (y, x) is at least the requested size
  and at least :data:`MIN_LEVEL_PX` (128) pixels, so a thumbnail is never blown up from a
  32-pixel level nor read from full resolution when a smaller level suffices;
* a **maximum projection over z** for stacks (the middle plane of a nucleus misses most of
  it), the first ``t``;
* **shrinking by maximum**, not by mean: a thumbnail pixel shows the brightest pixel it
  covers. Nanoscopy images are sparse (rings of a few pixels, single molecules), and an
  area mean over 5 x 5 pixels turns them into background; the maximum keeps every
  structure visible, like the maximum projection over z does;
* the **omero rendering hints** the writer stored: channel colour and contrast window
  (start, end), additively blended, the way viewers show multi-channel fluorescence.

Only the chosen level is read, so a thumbnail of a terabyte image costs a few hundred kB
to a few MB of I/O. PNG encoding uses imagecodecs (already a dependency for TIFF codecs).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import imagecodecs
import numpy as np

if TYPE_CHECKING:
    from nanorepo.ome._read import OmeZarrImage

__all__ = ["MIN_LEVEL_PX", "level_for", "png_bytes", "render_rgb", "shrink_max", "thumbnail"]

#: The smallest longer side (pixels) of the level a thumbnail is rendered from.
MIN_LEVEL_PX = 128


def _rgb(color: str) -> np.ndarray:
    c = color if len(color) == 6 else "FFFFFF"
    return np.array([int(c[i : i + 2], 16) for i in (0, 2, 4)], dtype=np.float32) / 255.0


def render_rgb(
    planes: np.ndarray, colors: list[str], windows: list[tuple[float, float] | None]
) -> np.ndarray:
    """Blend ``planes`` (c, y, x) into an RGB uint8 image (y, x, 3) with colours and windows.

    A channel without a stored window (or with an empty one) is scaled between its 0.1 and
    99.9 percentiles.
    """
    out = np.zeros((*planes.shape[1:], 3), dtype=np.float32)
    for plane, color, window in zip(planes, colors, windows, strict=True):
        p = plane.astype(np.float32)
        if window is None or window[1] <= window[0]:
            lo, hi = (float(v) for v in np.percentile(p, (0.1, 99.9)))
        else:
            lo, hi = window
        scaled = np.clip((p - lo) / max(hi - lo, 1e-9), 0.0, 1.0)
        out += scaled[..., None] * _rgb(color)
    return (np.clip(out, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def _resize_axis(a: np.ndarray, n: int, axis: int) -> np.ndarray:
    """``a`` resized to ``n`` along ``axis``: the maximum of the covered pixels when
    shrinking, nearest when growing (no invented detail)."""
    m = a.shape[axis]
    if n == m:
        return a
    if n > m:
        return np.take(a, ((np.arange(n) + 0.5) * m / n).astype(np.intp), axis=axis)
    return np.maximum.reduceat(a, np.arange(n) * m // n, axis=axis)


def shrink_max(planes: np.ndarray, size: int) -> np.ndarray:
    """``planes`` (..., y, x) resized so that the longer of y, x is ``size`` pixels (aspect
    kept): the maximum of the covered pixels when shrinking, nearest when growing."""
    h, w = planes.shape[-2:]
    scale = size / max(h, w)
    out = _resize_axis(planes, max(1, round(h * scale)), planes.ndim - 2)
    return _resize_axis(out, max(1, round(w * scale)), planes.ndim - 1)


def level_for(image: OmeZarrImage, size: int | None = None) -> int:
    """Index of the coarsest pyramid level whose longer side (y, x) is at least ``size``
    and :data:`MIN_LEVEL_PX` pixels (the full resolution if none is)."""
    want = max(MIN_LEVEL_PX, size or 0)
    iy, ix = image.dims.index("y"), image.dims.index("x")
    for index in reversed(range(len(image.levels))):
        shape = image.levels[index]
        if max(shape[iy], shape[ix]) >= want:
            return index
    return 0


def thumbnail(
    image: OmeZarrImage, size: int | None = None, *, z: int | None = None, t: int = 0
) -> np.ndarray:
    """RGB uint8 (y, x, 3) of ``image`` in its channel colours and contrast windows.

    Parameters
    ----------
    size:
        Longer side of the result in pixels; ``None`` keeps the chosen level's size.
    z:
        A plane to show; ``None`` (default) projects the maximum over z.
    t:
        The time point.
    """
    da = image.to_xarray(level_for(image, size))
    if "t" in da.dims:
        da = da.isel(t=t)
    if "z" in da.dims:
        da = da.isel(z=z) if z is not None else da.max("z")
    if "c" in da.dims:
        da = da.transpose("c", "y", "x")
    data = np.asarray(da.values)
    if data.ndim == 2:
        data = data[None]
    if size is not None:
        data = shrink_max(data, size)
    channels = list(image.channels)
    colors = [c.color for c in channels] or ["FFFFFF"] * data.shape[0]
    windows = [c.window for c in channels] or [None] * data.shape[0]
    return render_rgb(data, colors[: data.shape[0]], windows[: data.shape[0]])


def png_bytes(rgb: np.ndarray) -> bytes:
    """Encode an RGB uint8 array as PNG."""
    return bytes(imagecodecs.png_encode(np.ascontiguousarray(rgb)))
