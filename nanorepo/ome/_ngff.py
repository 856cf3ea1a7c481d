"""NGFF 0.5 metadata of a written image: multiscales, axes, transforms, omero windows."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from nanorepo.ome._source import Channel

if TYPE_CHECKING:
    from nanorepo.ome._write import WrittenLevel

__all__ = ["DOWNSAMPLING_TYPE", "ome_attributes"]

#: Downsampling method recorded in the multiscales metadata (``type``).
DOWNSAMPLING_TYPE = "mean"

_AXIS_TYPES = {"t": "time", "c": "channel", "z": "space", "y": "space", "x": "space"}
_AXIS_UNITS = {"t": "second", "z": "nanometer", "y": "nanometer", "x": "nanometer"}
# Window percentiles, and about how many full-resolution pixels per channel they come from.
_WINDOW_PERCENTILES = (0.1, 99.9)
_WINDOW_SAMPLES = 1 << 22


def ome_attributes(
    name: str,
    dims: Sequence[str],
    pixel_sizes: Mapping[str, float],
    levels: Sequence[WrittenLevel],
    channels: Sequence[Channel],
    windows: Sequence[tuple[float, float, float, float]],
    *,
    metadata: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Build the NGFF 0.5 group attributes ``{"ome": {...}}``.

    Parameters
    ----------
    windows:
        Per channel ``(min, max, start, end)`` of the omero rendering window.
    metadata:
        Extra ``multiscales[0].metadata`` (how the pyramid was made).
    """
    axes: list[dict[str, Any]] = []
    for a in dims:
        axis: dict[str, Any] = {"name": a, "type": _AXIS_TYPES[a]}
        if a in _AXIS_UNITS and a in pixel_sizes:
            axis["unit"] = _AXIS_UNITS[a]
        axes.append(axis)
    datasets = []
    for lv in levels:
        transforms: list[dict[str, Any]] = [
            {"type": "scale", "scale": [float(lv.scale[a]) for a in dims]}
        ]
        if any(lv.translation[a] for a in dims):
            transforms.append(
                {"type": "translation", "translation": [float(lv.translation[a]) for a in dims]}
            )
        datasets.append({"path": lv.path, "coordinateTransformations": transforms})
    multiscale = {
        "name": name,
        "axes": axes,
        "datasets": datasets,
        "type": DOWNSAMPLING_TYPE,
        "metadata": dict(metadata or {}),
    }
    omero_channels = [
        {
            "label": ch.name,
            "color": ch.color.upper(),
            "active": True,
            "window": {"min": w[0], "max": w[1], "start": w[2], "end": w[3]},
        }
        for ch, w in zip(channels, windows, strict=True)
    ]
    shape0 = levels[0].shape
    omero = {
        "name": name,
        "channels": omero_channels,
        "rdefs": {
            "defaultT": 0,
            "defaultZ": shape0[dims.index("z")] // 2 if "z" in dims else 0,
            "model": "color" if len(channels) > 1 else "greyscale",
        },
    }
    return {"ome": {"version": "0.5", "multiscales": [multiscale], "omero": omero}}


class _Sampler:
    """A strided sample of the full-resolution pixels, per channel, taken as blocks stream by.

    Windows are computed from it rather than from the lowest pyramid level because a 2×2 mean
    applied 4–6 times averages sparse bright structures (single molecules, small puncta) into
    the background, which would give a full-resolution view a window far too narrow. The stride
    in ``y`` and ``x`` keeps the sample under ``samples`` pixels per channel, so the
    cost is a strided copy of what is read anyway.
    """

    def __init__(
        self, shape: tuple[int, ...], n_channels: int, dims: tuple[str, ...], samples: int
    ):
        self.c_axis = dims.index("c") if "c" in dims else None
        per_channel = math.prod(shape) // n_channels
        self.stride = max(1, math.ceil(math.sqrt(per_channel / samples)))
        self.parts: list[list[np.ndarray]] = [[] for _ in range(n_channels)]

    def add(self, region: tuple[slice, ...], block: np.ndarray) -> None:
        s = self.stride
        phase_y, phase_x = (-region[-2].start) % s, (-region[-1].start) % s
        sub = block[..., phase_y::s, phase_x::s]
        if self.c_axis is None:
            self.parts[0].append(sub.ravel().copy())
            return
        c0 = region[self.c_axis].start
        for i in range(sub.shape[self.c_axis]):
            self.parts[c0 + i].append(np.take(sub, i, axis=self.c_axis).ravel())

    def windows(
        self, dtype: np.dtype[Any], channels: Sequence[Channel]
    ) -> list[tuple[float, float, float, float]]:
        """``(min, max, start, end)`` per channel: given windows, else 0.1/99.9 percentiles.

        ``min, max`` is the pixel type's range for integers and the sampled range for floats.
        """
        result = []
        for parts, ch in zip(self.parts, channels, strict=True):
            values = np.concatenate(parts) if parts else np.zeros(0, dtype)
            if dtype.kind == "f":
                values = values[np.isfinite(values)]
                lo, hi = (float(values.min()), float(values.max())) if values.size else (0.0, 1.0)
            else:
                lo, hi = float(np.iinfo(dtype).min), float(np.iinfo(dtype).max)
            if ch.window is not None:
                start, end = float(ch.window[0]), float(ch.window[1])
            elif values.size:
                start, end = (float(v) for v in np.percentile(values, _WINDOW_PERCENTILES))
            else:
                start, end = lo, hi
            if end <= start:
                end = start + (1.0 if dtype.kind != "f" else max(abs(start) * 1e-6, 1e-6))
            result.append((min(lo, start), max(hi, end), start, end))
        return result
