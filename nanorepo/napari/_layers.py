"""Image layers for napari: one lazy array per pyramid level, no dask.

napari shows a multiscale image as a list of arrays, full resolution first, and asks the
level it displays for the region on screen only (plus the lowest level for the layer's
thumbnail). :class:`LevelArray` is such an array: it has ``shape``, ``dtype`` and ``ndim``,
and each ``array[...]`` napari makes is **one** :meth:`nanorepo.ome.OmeZarrImage.read_region`
call, a tensorstore read that fetches and decodes just the inner chunks the region
overlaps (from the mounted storage, or over HTTP with range requests) through the image's
shared chunk cache. We chose it over dask arrays (what napari-ome-zarr hands napari): a dask
graph per screen refresh costs milliseconds of task overhead per storage chunk, which
DESIGN.md measured at 3-5x the read itself on these machines.

Channels become one layer each (napari's usual way, with additive blending), named after
the channel, coloured and windowed as the image's omero metadata says; each channel layer
is a :class:`LevelArray` with the channel index fixed, so no channel is read for another.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from nanorepo.ome import OmeZarrImage

__all__ = ["LevelArray", "image_layers"]

#: napari's (pint) unit names of the OME-Zarr axis units nanorepo writes.
_UNITS = {"nanometer": "nm", "micrometer": "µm", "second": "s", "millisecond": "ms"}


class LevelArray:
    """One pyramid level of an OME-Zarr image, optionally one channel of it, read lazily.

    Parameters
    ----------
    image:
        The opened image.
    level:
        Pyramid level, 0 is full resolution.
    channel:
        Index along ``c`` to fix, or ``None`` (the array then has every axis of the image).
    """

    def __init__(self, image: OmeZarrImage, level: int, channel: int | None = None) -> None:
        self.image = image
        self.level = level
        self.channel = channel
        self._c = image.dims.index("c") if channel is not None else None
        full = tuple(int(n) for n in image.levels[level])
        self.shape: tuple[int, ...] = (
            full if self._c is None else full[: self._c] + full[self._c + 1 :]
        )
        self.dtype: np.dtype[Any] = np.dtype(image.dtype)
        self.ndim = len(self.shape)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    def __len__(self) -> int:
        return self.shape[0]

    def __repr__(self) -> str:
        ch = f" channel {self.channel}" if self.channel is not None else ""
        return f"<LevelArray {self.image.name!r} level {self.level}{ch} {self.shape} {self.dtype}>"

    def _full_key(self, key: Any) -> tuple[Any, ...]:
        if not isinstance(key, tuple):
            key = (key,)
        if any(k is Ellipsis for k in key):
            at = next(i for i, k in enumerate(key) if k is Ellipsis)
            key = key[:at] + (slice(None),) * (self.ndim - len(key) + 1) + key[at + 1 :]
        if len(key) > self.ndim:
            raise IndexError(f"too many indices ({len(key)}) for {self.ndim} dims")
        key = key + (slice(None),) * (self.ndim - len(key))
        if self._c is not None:
            key = (*key[: self._c], self.channel, *key[self._c :])
        return key

    def __getitem__(self, key: Any) -> np.ndarray:
        return np.asarray(self.image.read_region(self.level, self._full_key(key)))

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        out = self[...]
        return out.astype(dtype, copy=False) if dtype is not None else out


def _colormap(color: str) -> str:
    """napari colormap for an omero colour (``RRGGBB``): a black-to-colour ramp."""
    c = color.strip().lstrip("#").lower()
    if len(c) != 6 or any(ch not in "0123456789abcdef" for ch in c):
        return "gray"
    return "gray" if c == "ffffff" else f"#{c}"


def image_layers(
    ome: OmeZarrImage, *, name: str, metadata: dict[str, Any]
) -> list[tuple[Any, dict[str, Any], str]]:
    """napari layer data tuples of every channel of an image.

    Parameters
    ----------
    ome:
        The opened image (local or remote).
    name:
        The image's name, prefixed to channel names in layer names.
    metadata:
        JSON-able metadata put on every layer (``layer.metadata``), plus the channel.

    Returns
    -------
    list
        ``(levels, kwargs, "image")`` per channel: ``levels`` one :class:`LevelArray` per
        pyramid level; kwargs with ``multiscale``, ``scale``/``translate`` (level 0, in the
        axis units), ``units``, ``axis_labels``, ``colormap``, ``contrast_limits``,
        ``blending`` and ``name``.
    """
    dims = [d for d in ome.dims if d != "c"]
    scale = [float(ome.scales[0][d]) for d in dims]
    translate = [float(ome.translations[0][d]) for d in dims]
    units = [_UNITS.get(ome.units.get(d, ""), "pixel") for d in dims]
    has_c = "c" in ome.dims
    channels = list(ome.channels) if has_c else [ome.channels[0]] if ome.channels else []
    out: list[tuple[Any, dict[str, Any], str]] = []
    for i, ch in enumerate(channels or [None]):
        levels = [LevelArray(ome, k, i if has_c else None) for k in range(len(ome.levels))]
        label = ch.name if ch is not None else name
        kwargs: dict[str, Any] = {
            "name": f"{name} · {label}" if has_c else name,
            "multiscale": True,
            "scale": scale,
            "translate": translate,
            "units": units,
            "axis_labels": dims,
            "blending": "translucent_no_depth" if i == 0 else "additive",
            "metadata": {**metadata, "channel": label, "channel_index": i if has_c else None},
        }
        if ch is not None:
            kwargs["colormap"] = _colormap(ch.color)
            if ch.window is not None and ch.window[1] > ch.window[0]:
                kwargs["contrast_limits"] = [float(ch.window[0]), float(ch.window[1])]
        out.append((levels, kwargs, "image"))
    return out
