"""Thumbnails: an RGB rendering of an image from its lowest pyramid level.

Rendering follows the omero hints the writer stored (channel colour and contrast
window), additively blended, the way viewers show multi-channel fluorescence. Only the
lowest level is read, so a thumbnail of a terabyte image costs a few hundred kB of I/O.
PNG encoding uses imagecodecs (already a dependency for TIFF codecs).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import imagecodecs
import numpy as np

if TYPE_CHECKING:
    from nanorepo.ome._read import OmeZarrImage

__all__ = ["png_bytes", "render_rgb", "thumbnail"]


def _rgb(color: str) -> np.ndarray:
    c = color if len(color) == 6 else "FFFFFF"
    return np.array([int(c[i : i + 2], 16) for i in (0, 2, 4)], dtype=np.float32) / 255.0


def render_rgb(
    planes: np.ndarray, colors: list[str], windows: list[tuple[float, float] | None]
) -> np.ndarray:
    """Blend ``planes`` (c, y, x) into an RGB uint8 image (y, x, 3) with colours and windows."""
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


def thumbnail(image: OmeZarrImage, *, z: int | None = None, t: int = 0) -> np.ndarray:
    """RGB uint8 (y, x, 3) of the lowest level at plane ``z`` (default: the middle) and ``t``."""
    level = len(image.levels) - 1
    da = image.to_xarray(level)
    sel: dict[str, int] = {}
    if "t" in da.dims:
        sel["t"] = t
    if "z" in da.dims:
        sel["z"] = da.sizes["z"] // 2 if z is None else z
    plane = da.isel(sel)
    data = np.asarray(plane.values)
    if "c" not in plane.dims:
        data = data[None]
    channels = list(image.channels) or []
    colors = [c.color for c in channels] or ["FFFFFF"] * data.shape[0]
    windows = [c.window for c in channels] or [None] * data.shape[0]
    return render_rgb(data, colors[: data.shape[0]], windows[: data.shape[0]])


def png_bytes(rgb: np.ndarray) -> bytes:
    """Encode an RGB uint8 array as PNG."""
    return bytes(imagecodecs.png_encode(np.ascontiguousarray(rgb)))
