"""Vendor microscope formats (Zeiss CZI, Leica LIF, Nikon ND2) through the bioio plugins.

nanorepo does not parse these formats itself: bioio-czi (pylibCZIrw / aicspylibczi, ZEISS
and the Allen Institute), bioio-lif (liffile) and bioio-nd2 (nd2) are kept by people who
follow the vendors' changes. They are the optional extra ``nanorepo[formats]``, part of
``[server]`` because the service is what deposits.

Every scene (CZI scene, LIF series, ND2 position) becomes its own source, named like the
series of a TIFF (``<name>_s<index>`` when a file holds several). Axes of length 1 are
dropped (an ND2 without a Z axis reports a placeholder Z pixel size of 1 µm, which is not a
calibration). Pixel sizes come from the plugin (micrometres, bioio's convention) in
nanometres; where the plugin gives OME metadata, channels' wavelengths and fluorophores,
the objective, instrument and acquisition date are harvested from it by the same code as
OME-TIFF's, into the same REMBI fields. Pixels are read lazily, one region at a time,
through the plugin's dask array.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from nanorepo.errors import InvalidImage
from nanorepo.ome._reader_common import channel_color, fit_channels, source_name
from nanorepo.ome._reader_omexml import harvest_ome
from nanorepo.ome._source import AXES, Channel

__all__ = ["VendorSource", "open_vendor_series", "vendor_format"]

#: format -> (plugin module, plugin distribution)
_PLUGINS = {
    "Zeiss CZI": ("bioio_czi", "bioio-czi"),
    "Leica LIF": ("bioio_lif", "bioio-lif"),
    "Nikon ND2": ("bioio_nd2", "bioio-nd2"),
}
_DAMAGED = (
    "the file may be damaged or written by a version of the vendor software the reader "
    "does not know; export it again as OME-TIFF from the acquisition software, or deposit "
    "it as a supporting file (kept, not converted)"
)


def vendor_format(head: bytes) -> str | None:
    """The vendor format of a file from its first 16 bytes, or ``None``."""
    if head.startswith(b"ZISRAWFILE"):
        return "Zeiss CZI"
    if head.startswith(b"\xda\xce\xbe\x0a"):
        return "Nikon ND2"
    if head.startswith(b"\x70\x00\x00\x00") and len(head) > 8 and head[8] == 0x2A:
        return "Leica LIF"  # LIF: 0x70 test value, a length, then 0x2A before the XML
    return None


def _um_to_nm(value: Any) -> float | None:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return round(v * 1000.0, 6) if v > 0 and np.isfinite(v) else None


@dataclass
class VendorSource:
    """One scene of a vendor file as an :class:`~nanorepo.ome.ImageSource`."""

    name: str
    dims: tuple[str, ...]
    shape: tuple[int, ...]
    dtype: np.dtype[Any]
    pixel_sizes: Mapping[str, float]
    channels: tuple[Channel, ...]
    acquisition: Mapping[str, Any]
    key_values: Mapping[str, str]
    origin: tuple[str, ...]
    path: Path
    scene: str
    _data: Any = field(repr=False)

    def read(self, region: tuple[slice, ...]) -> np.ndarray:
        """Pixels of ``region`` (one slice per dim of :attr:`dims`)."""
        by_axis = dict(zip(self.dims, region, strict=True))
        index = tuple(by_axis.get(a, 0) for a in AXES)
        try:
            return np.asarray(self._data[index].compute(scheduler="synchronous"))
        except Exception as exc:
            raise InvalidImage(
                self.path,
                f"scene {self.scene!r}: the {self.acquisition.get('format')} reader cannot "
                f"read its pixels ({type(exc).__name__}: {str(exc)[:200]})",
                hint=_DAMAGED,
            ) from exc


def _cannot_open(path: Path, fmt: str, plugin: str, exc: Exception) -> InvalidImage:
    return InvalidImage(
        path,
        f"is a {fmt} file that {plugin} cannot open ({type(exc).__name__}: {str(exc)[:200]})",
        hint=_DAMAGED,
    )


def _plugin(fmt: str, path: Path) -> tuple[Any, str]:
    module, dist = _PLUGINS[fmt]
    try:
        reader = importlib.import_module(module).Reader
        version = importlib.metadata.version(dist)
    except ImportError:
        raise InvalidImage(
            path,
            f"is a {fmt} file, and reading it needs the {dist} plugin",
            hint="install nanorepo[formats] (the service's [server] install has it)",
        ) from None
    return reader, f"{dist} {version}"


def _ome(img: Any) -> tuple[Any, str | None]:
    """The plugin's OME metadata, or ``None`` and why not."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return img.ome_metadata, None
        except NotImplementedError:
            return None, "the reader gives no OME metadata for this format"
        except Exception as exc:
            first = str(exc).splitlines()[0][:200] if str(exc) else ""
            return None, f"the reader's OME metadata is not valid ({type(exc).__name__}: {first})"


def _scene(path: Path, reader: Any, plugin: str, fmt: str, index: int, name: str) -> VendorSource:
    import bioio

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            img = bioio.BioImage(path, reader=reader)
            img.set_scene(index)
            scene = str(img.current_scene)
            shape5 = tuple(int(s) for s in img.shape)
            sizes = img.physical_pixel_sizes
            names = [str(n) for n in (img.channel_names or [])]
            data = img.get_image_dask_data("TCZYX")
            dtype = np.dtype(img.dtype)
        except Exception as exc:
            raise _cannot_open(path, fmt, plugin, exc) from exc
    dims = tuple(a for a, n in zip(AXES, shape5, strict=True) if n > 1 or a in ("y", "x"))
    shape = tuple(n for a, n in zip(AXES, shape5, strict=True) if a in dims)
    pixel_sizes = {
        a: v
        for a, v in (
            ("z", _um_to_nm(sizes.Z)),
            ("y", _um_to_nm(sizes.Y)),
            ("x", _um_to_nm(sizes.X)),
        )
        if v is not None and a in dims
    }
    channels = [
        Channel(name=n, color=channel_color(None, i, len(names))) for i, n in enumerate(names)
    ]
    acquisition: dict[str, Any] = {"format": fmt, "reader": plugin, "scene": scene}
    ome, why = _ome(img)
    if ome is not None and index < len(ome.images):
        try:
            facts = harvest_ome(ome, index, path)
        except InvalidImage as exc:
            acquisition["metadata_not_harvested"] = exc.message
        else:
            acquisition = {**{k: v for k, v in facts.acquisition.items() if v}, **acquisition}
            if len(facts.channels) == len(names):  # wavelengths, fluorophores; names as read
                channels = [
                    Channel(
                        name=n,
                        color=c.color,
                        emission_wavelength_nm=c.emission_wavelength_nm,
                        excitation_wavelength_nm=c.excitation_wavelength_nm,
                        fluorophore=c.fluorophore,
                    )
                    for n, c in zip(names, facts.channels, strict=True)
                ]
            if "t" in dims and facts.pixel_sizes.get("t"):
                pixel_sizes["t"] = float(facts.pixel_sizes["t"])
    elif why:
        acquisition["metadata_not_harvested"] = why
    c = shape5[1]
    return VendorSource(
        name=name,
        dims=dims,
        shape=shape,
        dtype=dtype,
        pixel_sizes={a: pixel_sizes[a] for a in AXES if a in pixel_sizes},
        channels=tuple(fit_channels(channels, c)),
        acquisition=acquisition,
        key_values={"scene": scene},
        origin=(str(path),),
        path=path,
        scene=scene,
        _data=data,
    )


def open_vendor_series(
    path: str | Path, fmt: str, *, name: str | None = None
) -> list[VendorSource]:
    """Every scene of a CZI, LIF or ND2 file as its own source.

    Raises
    ------
    InvalidImage
        The plugin is not installed (the message names it and the extra to install), or
        it cannot open the file.
    """
    import bioio

    path = Path(path)
    reader, plugin = _plugin(fmt, path)
    base = name or source_name(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            scenes = list(bioio.BioImage(path, reader=reader).scenes)
        except Exception as exc:
            raise _cannot_open(path, fmt, plugin, exc) from exc
    if not scenes:
        raise InvalidImage(path, f"is a {fmt} file without images", hint=_DAMAGED)
    return [
        _scene(path, reader, plugin, fmt, i, base if len(scenes) == 1 else f"{base}_s{i}")
        for i in range(len(scenes))
    ]
