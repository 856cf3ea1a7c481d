"""Write synthetic images as the files instruments and users produce: OME-TIFF, ImageJ, planes.

* :func:`write_ome_tiff` — a TIFF whose first page carries complete OME-XML built with
  ome-types (pixel sizes with units, channels with dye, colour, wavelengths and
  acquisition mode, the instrument with microscope, objective, detector and lasers, the
  acquisition date and key/value annotations), so ``tifffile.TiffFile(p).ome_metadata``
  parses back with ``ome_types.from_xml``.
* :func:`stream_ome_tiff` — the same for an image of any size, written plane by plane from
  an :class:`~nanorepo.ome.ImageSource` (uncompressed, BigTIFF when needed), for benchmark
  inputs of gigabytes; memory holds one slab of planes.
* :func:`write_imagej_tiff` — an ImageJ hyperstack (``TZCYX``, spacing and resolution in
  micrometres), as Fiji saves it.
* :func:`write_plane_directory` — one 2D TIFF per plane named ``cell1_t000_c00_z000.tif``,
  as many acquisition programs export.

Pages are written in OME ``XYZCT`` order: ``z`` fastest, then ``c``, then ``t``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import tifffile
from ome_types import model as om
from ome_types import to_xml

from nanorepo.errors import InvalidInput
from nanorepo.ome._source import AXES, Channel, ImageSource
from nanorepo.samples._modality import Modality, get_modality

__all__ = [
    "build_ome",
    "stream_ome_tiff",
    "write_imagej_tiff",
    "write_ome_tiff",
    "write_plane_directory",
]

_MAP_NAMESPACE = "openmicroscopy.org/omero/client/mapAnnotation"


def _canonical(data: np.ndarray, dims: Sequence[str]) -> np.ndarray:
    """View ``data`` as ``(t, c, z, y, x)``, checking ``dims``."""
    dims = tuple(dims)
    if (
        len(dims) != data.ndim
        or dims[-2:] != ("y", "x")
        or list(dims) != [a for a in AXES if a in dims]
    ):
        raise InvalidInput(
            f"dims {dims} do not fit an array of shape {data.shape}",
            hint="dims are a subset of t, c, z, y, x in that order, ending in y, x",
        )
    return data.reshape(tuple(data.shape[dims.index(a)] if a in dims else 1 for a in AXES))


def _channels(channels: Sequence[Channel] | None, n_c: int) -> list[Channel]:
    if channels is None:
        return [Channel(name=f"channel {i}") for i in range(n_c)]
    if len(channels) != n_c:
        raise InvalidInput(f"{len(channels)} channel descriptions for {n_c} channels")
    return list(channels)


def _instrument(mod: Modality) -> om.Instrument:
    lasers = [
        om.Laser(
            id=f"LightSource:0:{i}",
            wavelength=wl,
            wavelength_unit=om.UnitsLength.NANOMETER,
            type=om.Laser_Type.SOLID_STATE if wl != mod.depletion_nm else om.Laser_Type.OTHER,
            laser_medium=om.Laser_LaserMedium.OTHER,
            pulse=om.Laser_Pulse.MODE_LOCKED if mod.depletion_nm else om.Laser_Pulse.CW,
            model=("depletion laser" if wl == mod.depletion_nm else "excitation laser")
            + f" {wl:g} nm",
        )
        for i, wl in enumerate(mod.lasers_nm)
    ]
    return om.Instrument(
        id="Instrument:0",
        microscope=om.Microscope(
            manufacturer="nanorepo (synthetic)",
            model=mod.microscope,
            type=om.Microscope_Type.INVERTED,
        ),
        objectives=[
            om.Objective(
                id="Objective:0:0",
                model=mod.objective_model,
                lens_na=mod.objective_na,
                nominal_magnification=mod.objective_magnification,
                immersion=om.Objective_Immersion(mod.immersion),
                correction=om.Objective_Correction.PLAN_APO,
            )
        ],
        detectors=[
            om.Detector(
                id="Detector:0:0",
                type=om.Detector_Type(mod.detector_type),
                model=mod.detector_model,
                offset=mod.offset_adu,
                gain=mod.gain_adu_per_photon,
            )
        ],
        lasers=lasers,
    )


def _nearest_laser(mod: Modality, excitation_nm: float | None) -> int | None:
    if not excitation_nm:
        return None
    lines = [
        (abs(wl - excitation_nm), i) for i, wl in enumerate(mod.lasers_nm) if wl != mod.depletion_nm
    ]
    return min(lines)[1] if lines else None


def build_ome(
    *,
    name: str,
    dims: Sequence[str],
    shape: Sequence[int],
    dtype: Any = np.uint16,
    pixel_sizes: Mapping[str, float],
    channels: Sequence[Channel] | None = None,
    modality: Modality | str | None = None,
    acquisition_date: datetime | None = None,
    description: str | None = None,
    key_values: Mapping[str, str] | None = None,
) -> om.OME:
    """OME metadata (ome-types model) for one image stored as ``XYZCT`` TIFF pages.

    Parameters
    ----------
    name, dims, shape, dtype:
        The image; ``dims`` a subset of ``t, c, z, y, x`` in that order.
    pixel_sizes:
        ``z``, ``y``, ``x`` in nanometres and ``t`` in seconds (as
        :attr:`~nanorepo.ome.ImageSource.pixel_sizes`); written with explicit units.
    channels:
        One :class:`~nanorepo.ome.Channel` per channel: name, colour, fluorophore,
        excitation and emission wavelengths.
    modality:
        Sets every channel's ``AcquisitionMode`` and the instrument (microscope, objective,
        detector, lasers); ``None`` writes no instrument.
    acquisition_date:
        When the image was "taken" (timezone-aware; default now, UTC).
    key_values:
        File-level key/value pairs, written as an OMERO map annotation linked to the image.
    """
    dims = tuple(dims)
    shape = tuple(int(s) for s in shape)
    size = {a: (shape[dims.index(a)] if a in dims else 1) for a in AXES}
    mod = get_modality(modality) if modality is not None else None
    chans = _channels(channels, size["c"])
    ome_channels = []
    for i, ch in enumerate(chans):
        kw: dict[str, Any] = {
            "id": f"Channel:0:{i}",
            "name": ch.name,
            "samples_per_pixel": 1,
            "color": om.Color("#" + ch.color.lstrip("#")),
            "contrast_method": om.Channel_ContrastMethod.FLUORESCENCE,
        }
        if ch.fluorophore:
            kw["fluor"] = ch.fluorophore
        if ch.emission_wavelength_nm:
            kw["emission_wavelength"] = ch.emission_wavelength_nm
            kw["emission_wavelength_unit"] = om.UnitsLength.NANOMETER
        if ch.excitation_wavelength_nm:
            kw["excitation_wavelength"] = ch.excitation_wavelength_nm
            kw["excitation_wavelength_unit"] = om.UnitsLength.NANOMETER
        if mod is not None:
            kw["acquisition_mode"] = om.Channel_AcquisitionMode(mod.acquisition_mode)
            kw["illumination_type"] = om.Channel_IlluminationType(mod.illumination)
            kw["detector_settings"] = om.DetectorSettings(id="Detector:0:0")
            laser = _nearest_laser(mod, ch.excitation_wavelength_nm)
            if laser is not None:
                kw["light_source_settings"] = om.LightSourceSettings(
                    id=f"LightSource:0:{laser}",
                    wavelength=mod.lasers_nm[laser],
                    wavelength_unit=om.UnitsLength.NANOMETER,
                )
        ome_channels.append(om.Channel(**kw))
    pix: dict[str, Any] = {
        "id": "Pixels:0",
        "dimension_order": om.Pixels_DimensionOrder.XYZCT,
        "type": om.PixelType(np.dtype(dtype).name),
        "size_x": size["x"],
        "size_y": size["y"],
        "size_z": size["z"],
        "size_c": size["c"],
        "size_t": size["t"],
        "channels": ome_channels,
        "tiff_data_blocks": [om.TiffData(ifd=0, plane_count=size["t"] * size["c"] * size["z"])],
        "big_endian": False,
    }
    for axis in ("x", "y", "z"):
        if axis in pixel_sizes and axis in dims:
            pix[f"physical_size_{axis}"] = float(pixel_sizes[axis])
            pix[f"physical_size_{axis}_unit"] = om.UnitsLength.NANOMETER
    if "t" in pixel_sizes and "t" in dims:
        pix["time_increment"] = float(pixel_sizes["t"])
        pix["time_increment_unit"] = om.UnitsTime.SECOND
    image: dict[str, Any] = {
        "id": "Image:0",
        "name": name,
        "acquisition_date": acquisition_date or datetime.now(UTC).replace(microsecond=0),
        "pixels": om.Pixels(**pix),
    }
    if description:
        image["description"] = description
    ome: dict[str, Any] = {"creator": "nanorepo.samples (synthetic reference data)"}
    if mod is not None:
        ome["instruments"] = [_instrument(mod)]
        image["instrument_ref"] = om.InstrumentRef(id="Instrument:0")
        image["objective_settings"] = om.ObjectiveSettings(id="Objective:0:0")
    if key_values:
        image["annotation_refs"] = [om.AnnotationRef(id="Annotation:0")]
        ome["structured_annotations"] = om.StructuredAnnotations(
            map_annotations=[
                om.MapAnnotation(
                    id="Annotation:0",
                    namespace=_MAP_NAMESPACE,
                    value=om.Map(
                        ms=[om.Map.M(k=str(k), value=str(v)) for k, v in key_values.items()]
                    ),
                )
            ]
        )
    ome["images"] = [om.Image(**image)]
    return om.OME(**ome)


def _resolution(pixel_sizes: Mapping[str, float]) -> dict[str, Any]:
    """TIFF resolution tags (pixels per centimetre) for readers that ignore OME-XML."""
    if "x" not in pixel_sizes or "y" not in pixel_sizes:
        return {}
    return {
        "resolution": (1e7 / float(pixel_sizes["x"]), 1e7 / float(pixel_sizes["y"])),
        "resolutionunit": "CENTIMETER",
    }


def _partial(path: Path) -> Path:
    return path.with_name(f".{path.name}.partial")


def write_ome_tiff(
    path: Path | str,
    data: np.ndarray,
    *,
    dims: Sequence[str],
    pixel_sizes_nm: Mapping[str, float],
    name: str | None = None,
    channels: Sequence[Channel] | None = None,
    modality: Modality | str | None = None,
    acquisition_date: datetime | None = None,
    description: str | None = None,
    key_values: Mapping[str, str] | None = None,
    time_interval_s: float | None = None,
) -> Path:
    """Write an array as an OME-TIFF with rich OME-XML (see :func:`build_ome`).

    ``pixel_sizes_nm`` maps ``z``, ``y``, ``x`` to nanometres. The file appears atomically
    (written under a temporary name, then renamed).
    """
    path = Path(path)
    arr = np.asarray(data)
    canon = _canonical(arr, dims)
    sizes: dict[str, float] = dict(pixel_sizes_nm)
    if time_interval_s:
        sizes["t"] = float(time_interval_s)
    ome = build_ome(
        name=name or path.name.split(".")[0],
        dims=dims,
        shape=arr.shape,
        dtype=arr.dtype,
        pixel_sizes=sizes,
        channels=channels,
        modality=modality,
        acquisition_date=acquisition_date,
        description=description,
        key_values=key_values,
    )
    tmp = _partial(path)
    tifffile.imwrite(
        tmp,
        canon.reshape(-1, canon.shape[-2], canon.shape[-1]),
        description=to_xml(ome).encode("utf-8"),
        metadata=None,
        ome=False,
        photometric="minisblack",
        software="nanorepo.samples",
        **_resolution(sizes),
    )
    os.replace(tmp, path)
    return path


def _planes(source: ImageSource, slab_bytes: int) -> Iterator[np.ndarray]:
    iter_planes = getattr(source, "iter_planes", None)
    if callable(iter_planes):
        yield from iter_planes()
        return
    dims = tuple(source.dims)
    size = {a: (source.shape[dims.index(a)] if a in dims else 1) for a in AXES}
    plane_bytes = size["y"] * size["x"] * np.dtype(source.dtype).itemsize
    step = max(1, min(size["z"], slab_bytes // max(plane_bytes, 1)))
    for t in range(size["t"]):
        for c in range(size["c"]):
            for z0 in range(0, size["z"], step):
                idx = {
                    "t": slice(t, t + 1),
                    "c": slice(c, c + 1),
                    "z": slice(z0, min(z0 + step, size["z"])),
                }
                slab = np.asarray(source.read(tuple(idx.get(a, slice(None)) for a in dims)))
                yield from slab.reshape(-1, size["y"], size["x"])


def stream_ome_tiff(
    path: Path | str,
    source: ImageSource,
    *,
    modality: Modality | str | None = None,
    acquisition_date: datetime | None = None,
    description: str | None = None,
    slab_bytes: int = 256 * 2**20,
) -> Path:
    """Write an image of any size to an uncompressed OME-TIFF, plane by plane.

    Planes come from ``source.iter_planes()`` when it has one (a
    :class:`~nanorepo.samples.SyntheticImage` renders whole block slabs) or from
    ``source.read`` in slabs of at most ``slab_bytes``; memory never holds more than one
    slab. BigTIFF is used beyond 2 GiB. The OME-XML comes from the source's metadata and
    ``modality`` (default: the source's own, if it has one). The file appears atomically.
    """
    path = Path(path)
    mod = modality if modality is not None else getattr(source, "modality", None)
    dims = tuple(source.dims)
    size = {a: (source.shape[dims.index(a)] if a in dims else 1) for a in AXES}
    n_planes = size["t"] * size["c"] * size["z"]
    dtype = np.dtype(source.dtype)
    ome = build_ome(
        name=source.name,
        dims=dims,
        shape=source.shape,
        dtype=dtype,
        pixel_sizes=source.pixel_sizes,
        channels=source.channels,
        modality=mod,
        acquisition_date=acquisition_date,
        description=description,
        key_values=source.key_values,
    )
    nbytes = math.prod(source.shape) * dtype.itemsize
    tmp = _partial(path)
    tifffile.imwrite(
        tmp,
        _planes(source, slab_bytes),
        shape=(n_planes, size["y"], size["x"]),
        dtype=dtype,
        description=to_xml(ome).encode("utf-8"),
        metadata=None,
        ome=False,
        photometric="minisblack",
        software="nanorepo.samples",
        bigtiff=nbytes > 2**31 - 2**25,
        **_resolution(source.pixel_sizes),
    )
    os.replace(tmp, path)
    return path


def _lut(color: str) -> np.ndarray:
    rgb = [int(color.lstrip("#")[i : i + 2], 16) for i in (0, 2, 4)]
    ramp = np.arange(256, dtype=np.float64) / 255.0
    return np.stack([np.round(ramp * v) for v in rgb]).astype(np.uint8)


def write_imagej_tiff(
    path: Path | str,
    data: np.ndarray,
    *,
    dims: Sequence[str],
    pixel_sizes_nm: Mapping[str, float],
    channels: Sequence[Channel] | None = None,
    time_interval_s: float | None = None,
) -> Path:
    """Write an ImageJ hyperstack TIFF (axes ``TZCYX``), as Fiji's "Save As > Tiff" does.

    Pixel size goes to the resolution tags and ``spacing`` (z step) to the ImageJ
    description, both in micrometres (``unit=um``); channel colours become LUTs. No
    OME-XML: readers must take what ImageJ metadata offers.
    """
    path = Path(path)
    canon = _canonical(np.asarray(data), dims)
    c = canon.shape[1]
    stack = np.ascontiguousarray(canon.transpose(0, 2, 1, 3, 4))  # TZCYX
    px_um = float(pixel_sizes_nm["x"]) / 1000.0
    py_um = float(pixel_sizes_nm.get("y", pixel_sizes_nm["x"])) / 1000.0
    meta: dict[str, Any] = {"axes": "TZCYX", "unit": "um"}
    if "z" in pixel_sizes_nm:
        meta["spacing"] = float(pixel_sizes_nm["z"]) / 1000.0
    if time_interval_s:
        meta["finterval"] = float(time_interval_s)
    chans = _channels(channels, c) if channels is not None else None
    if c > 1:
        meta["mode"] = "composite"
    if chans:
        meta["LUTs"] = [_lut(ch.color) for ch in chans]
    tmp = _partial(path)
    tifffile.imwrite(
        tmp,
        stack,
        imagej=True,
        resolution=(1.0 / px_um, 1.0 / py_um),
        metadata=meta,
        photometric="minisblack",
    )
    os.replace(tmp, path)
    return path


def write_plane_directory(
    directory: Path | str,
    data: np.ndarray,
    *,
    dims: Sequence[str],
    prefix: str = "cell1",
    pixel_sizes_nm: Mapping[str, float] | None = None,
) -> list[Path]:
    """Write one 2D TIFF per plane, ``{prefix}_t000_c00_z000.tif``, and return the paths.

    Each file carries the lateral pixel size (ImageJ resolution, micrometres) and, if
    known, the z step as ImageJ ``spacing``.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    canon = _canonical(np.asarray(data), dims)
    kwargs: dict[str, Any] = {"photometric": "minisblack"}
    if pixel_sizes_nm and "x" in pixel_sizes_nm:
        px_um = float(pixel_sizes_nm["x"]) / 1000.0
        py_um = float(pixel_sizes_nm.get("y", pixel_sizes_nm["x"])) / 1000.0
        meta: dict[str, Any] = {"unit": "um"}
        if "z" in pixel_sizes_nm:
            meta["spacing"] = float(pixel_sizes_nm["z"]) / 1000.0
        kwargs.update(imagej=True, resolution=(1.0 / px_um, 1.0 / py_um), metadata=meta)
    paths = []
    for t in range(canon.shape[0]):
        for c in range(canon.shape[1]):
            for z in range(canon.shape[2]):
                p = directory / f"{prefix}_t{t:03d}_c{c:02d}_z{z:03d}.tif"
                tifffile.imwrite(p, canon[t, c, z], **kwargs)
                paths.append(p)
    return paths
