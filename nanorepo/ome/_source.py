"""What every image reader hands to the OME-Zarr writer.

A source is a lazily readable nD image in canonical axis order (a subset of
``t, c, z, y, x``, in that order) with its physical metadata. Readers of TIFF,
OME-TIFF, plane directories, OME-Zarr and the synthetic sample generator all
produce one, so the writer has a single input shape and never loads a whole
image: it asks for regions.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

__all__ = ["AXES", "Channel", "ImageSource"]

#: Canonical axis order; every source and every stored image uses a subset of it in this order.
AXES: tuple[str, ...] = ("t", "c", "z", "y", "x")


@dataclass(frozen=True)
class Channel:
    """One channel as it is rendered and described.

    Attributes
    ----------
    name: shown in viewers (e.g. ``"Nup96-AF647"``).
    color: ``"RRGGBB"`` hex, used for omero rendering hints and thumbnails.
    window: contrast limits ``(start, end)`` in pixel values, or ``None`` to compute.
    """

    name: str
    color: str = "FFFFFF"
    emission_wavelength_nm: float | None = None
    excitation_wavelength_nm: float | None = None
    fluorophore: str | None = None
    window: tuple[float, float] | None = None


@runtime_checkable
class ImageSource(Protocol):
    """A lazily readable image with physical metadata.

    Attributes
    ----------
    name:
        Image name inside the dataset: ``[A-Za-z0-9._-]``, unique per dataset.
    dims:
        Axis names, a subset of :data:`AXES` in canonical order, always ending in ``y, x``.
    shape, dtype:
        As in numpy, in ``dims`` order.
    pixel_sizes:
        Physical size of one step along ``z``, ``y``, ``x`` in nanometres and along ``t`` in
        seconds; only axes that have one are present.
    channels:
        One :class:`Channel` per index of ``c`` (one entry when there is no ``c`` axis).
    acquisition:
        JSON-able REMBI "image acquisition" facts harvested from the file (technique,
        instrument, objective, detector, date, ...).
    key_values:
        File-level key/value metadata (condition, cell line, well, ...), strings only.
    origin:
        The file(s) this image came from, for messages and provenance.
    """

    name: str
    dims: tuple[str, ...]
    shape: tuple[int, ...]
    dtype: np.dtype[Any]
    pixel_sizes: Mapping[str, float]
    channels: tuple[Channel, ...]
    acquisition: Mapping[str, Any]
    key_values: Mapping[str, str]
    origin: tuple[str, ...]

    def read(self, region: tuple[slice, ...]) -> np.ndarray:
        """Return the pixels of ``region`` (one slice per dim, steps of 1) as a numpy array."""
        ...


@dataclass
class ArraySource:
    """An :class:`ImageSource` over an in-memory (or memory-mapped) array.

    Handy for tests, for the sample generator and for readers that can memory-map.
    """

    name: str
    data: Any
    dims: tuple[str, ...]
    pixel_sizes: Mapping[str, float] = field(default_factory=dict)
    channels: tuple[Channel, ...] = ()
    acquisition: Mapping[str, Any] = field(default_factory=dict)
    key_values: Mapping[str, str] = field(default_factory=dict)
    origin: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if len(self.dims) != self.data.ndim:
            raise ValueError(f"dims {self.dims} do not match an array of {self.data.ndim} dims")
        if not self.channels:
            n = self.data.shape[self.dims.index("c")] if "c" in self.dims else 1
            self.channels = tuple(Channel(name=f"channel {i}") for i in range(n))

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(int(s) for s in self.data.shape)

    @property
    def dtype(self) -> np.dtype[Any]:
        return np.dtype(self.data.dtype)

    def read(self, region: tuple[slice, ...]) -> np.ndarray:
        return np.asarray(self.data[region])
