"""TIFF, OME-TIFF and ImageJ hyperstack TIFF as lazily readable image sources.

tifffile is the reader because it understands every TIFF flavour microscopes write (OME,
ImageJ, BigTIFF, tiled, pyramidal, multi-file OME) and exposes both what lazy reading needs:
the byte offset of contiguous uncompressed data (which we memory-map, so a region costs only
the pages it touches) and a Zarr view of the page/tile structure for everything else (each
tile or strip is decoded only when a region needs it). OME-XML is handed to ome-types (see
:mod:`nanorepo.ome._reader_omexml`).

Sources keep no file open between uses: metadata is harvested and the file is checked when
it is opened, then closed; the first :meth:`TiffSource.read` reopens it and keeps it until
:meth:`TiffSource.close` (or garbage collection). A deposit may classify hundreds of files
before converting any.
"""

from __future__ import annotations

import os
import re
import stat
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from nanorepo.errors import InvalidImage, UnsafeInput
from nanorepo.ome._reader_common import (
    AxisMap,
    channel_color,
    fit_channels,
    log_messages,
    normalise_region,
    read_all,
    source_name,
    tifffile_log,
)
from nanorepo.ome._reader_omexml import (
    OmeFacts,
    harvest_ome,
    image_of_series,
    parse_ome_xml,
    schema_problems,
)
from nanorepo.ome._reader_units import length_to_nm, time_to_s
from nanorepo.ome._source import Channel

__all__ = ["TIFF_MAGIC", "TiffSource", "open_tiff", "open_tiff_series"]

#: First four bytes of little/big-endian classic TIFF and BigTIFF.
TIFF_MAGIC = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")

_DAMAGED_HINT = (
    "the file is truncated or corrupt; copy it again from the instrument computer (compare "
    "its size and checksum with the original) or export it again"
)
_AXIS_NAMES = {
    "A": "angle",
    "P": "phase",
    "R": "tile",
    "H": "lifetime histogram",
    "L": "exposure",
    "V": "event",
    "M": "mosaic",
    "E": "spectral (lambda)",
    "Q": "unlabelled",
    "I": "unlabelled page sequence",
}
# ImageJ/TIFF resolution in inches is a print setting unless it is finer than any printer:
# 2540 dpi and up (10 µm pixels and smaller) can only be a microscope calibration.
_MAX_INCH_PIXEL_NM = 10_000.0


@dataclass(eq=False)
class TiffSource:
    """One image series of a TIFF file, read lazily in canonical ``t, c, z, y, x`` order.

    Attributes beyond :class:`~nanorepo.ome.ImageSource`
    ----------------------------------------------------
    ome_xml:
        The file's OME-XML as stored (``None`` for non-OME TIFF), kept so the deposit can
        store it as a supporting file.
    series_index, series_count:
        Which tifffile series this is, of how many in the file.
    missing_pixel_sizes:
        Axes of ``dims`` (``z``, ``y``, ``x``, ``t``) the file gives no physical size for.
    """

    path: Path
    name: str
    dims: tuple[str, ...]
    shape: tuple[int, ...]
    dtype: np.dtype[Any]
    pixel_sizes: Mapping[str, float]
    channels: tuple[Channel, ...]
    acquisition: Mapping[str, Any]
    key_values: Mapping[str, str]
    origin: tuple[str, ...]
    ome_xml: str | None = None
    series_index: int = 0
    series_count: int = 1
    flavour: str = "tiff"
    _axis_map: AxisMap | None = field(default=None, repr=False)
    _stored_dtype: np.dtype[Any] | None = field(default=None, repr=False)
    _dataoffset: int | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _array: Any = field(default=None, repr=False)
    _tif: Any = field(default=None, repr=False)

    @property
    def missing_pixel_sizes(self) -> tuple[str, ...]:
        return tuple(a for a in self.dims if a != "c" and a not in self.pixel_sizes)

    # -- reading ------------------------------------------------------------------------

    def _stored(self) -> Any:
        """The stored array (memory map or Zarr view of the pages), opened on first use."""
        with self._lock:
            if self._array is not None:
                return self._array
            assert self._axis_map is not None
            if self._dataoffset is not None and self._stored_dtype is not None:
                try:
                    self._array = np.memmap(
                        self.path,
                        dtype=self._stored_dtype,
                        mode="r",
                        offset=self._dataoffset,
                        shape=self._axis_map.stored_shape,
                    )
                except (OSError, ValueError) as exc:
                    raise InvalidImage(
                        self.path, f"cannot map the pixel data: {exc}", hint=_DAMAGED_HINT
                    ) from exc
                return self._array
            import tifffile
            import zarr

            try:
                tif = tifffile.TiffFile(self.path)
            except Exception as exc:
                raise InvalidImage(
                    self.path, f"cannot reopen the file: {exc}", hint=_DAMAGED_HINT
                ) from exc
            try:
                tif.filehandle.set_lock(True)  # the Zarr view may be read from several threads
                series = tif.series[self.series_index]
                array = zarr.open_array(series.aszarr(level=0), mode="r")
            except Exception as exc:
                tif.close()
                raise InvalidImage(
                    self.path, f"cannot reopen the image series: {exc}", hint=_DAMAGED_HINT
                ) from exc
            if tuple(array.shape) != self._axis_map.stored_shape:
                tif.close()
                raise InvalidImage(
                    self.path,
                    f"changed since it was opened (shape {tuple(array.shape)}, "
                    f"was {self._axis_map.stored_shape})",
                    hint="open the file again",
                )
            self._tif, self._array = tif, array
            return array

    def read(self, region: tuple[slice, ...]) -> np.ndarray:
        """Pixels of ``region`` (one slice per dim of :attr:`dims`) as a numpy array.

        Only the pages, strips or tiles that intersect the region are read and decoded.
        """
        assert self._axis_map is not None
        bounds = normalise_region(region, self.shape, self.path)
        array = self._stored()
        try:
            out = self._axis_map.read(array, bounds)
        except MemoryError:
            raise
        except Exception as exc:
            raise InvalidImage(
                self.path,
                f"cannot decode the pixel data of region {_fmt(self.dims, bounds)}: "
                f"{type(exc).__name__}: {exc}",
                hint=_DAMAGED_HINT,
            ) from exc
        return np.ascontiguousarray(out, dtype=self.dtype)

    def check(self) -> None:
        """Read and decode every pixel once (memory bounded); :class:`InvalidImage` if any fails."""
        read_all(self)

    def close(self) -> None:
        """Release the file (it is reopened by the next :meth:`read`)."""
        with self._lock:
            if self._tif is not None:
                self._tif.close()
            self._tif = None
            self._array = None

    def __enter__(self) -> TiffSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        tif = self.__dict__.get("_tif")
        if tif is not None:
            tif.close()


def _fmt(dims: Sequence[str], bounds: Sequence[tuple[int, int]]) -> str:
    return ", ".join(f"{d}={a}:{b}" for d, (a, b) in zip(dims, bounds, strict=True))


# -- axes -----------------------------------------------------------------------------------


def _axis_plan(
    axes: str, shape: Sequence[int], path: Path
) -> tuple[list[str | None], dict[str, str]]:
    """Canonical dim (or ``None`` to drop) for each tifffile axis letter, and assumptions made."""
    present = set(axes)
    plan: list[str | None] = []
    assumed: dict[str, str] = {}
    free = [d for d in ("z", "t") if d.upper() not in present]
    for letter, n in zip(axes, shape, strict=True):
        if letter in "TCZYX":
            plan.append(letter.lower())
        elif letter == "S":
            plan.append("c")  # RGB(A) samples are channels
        elif letter == "E" and "C" not in present:
            plan.append("c")  # spectral channels are channels
        elif n == 1:
            plan.append(None)
        elif letter in "IQ" and free:
            dim = free.pop(0)
            plan.append(dim)
            assumed[dim] = (
                f"the file does not label this axis (tifffile axis {letter!r}, length {n}); "
                f"it is read as {dim}"
            )
        else:
            what = _AXIS_NAMES.get(letter, f"{letter!r}")
            raise InvalidImage(
                path,
                f"has a {what} axis (tifffile axis {letter!r}, length {n}) that cannot be stored: "
                "images hold t, c, z, y and x only",
                hint="split the file along that axis (one file per tile, angle or phase) or "
                "deposit the reconstructed image; raw data can be kept as a supporting file",
            )
    return plan, assumed


# -- pixel sizes from TIFF tags and ImageJ metadata ----------------------------------------------


def _resolution_nm(page: Any, unit: str | None) -> dict[str, float]:
    """y/x pixel sizes from XResolution/YResolution (pixels per unit)."""
    import tifffile

    out: dict[str, float] = {}
    resunit = page.tags.valueof("ResolutionUnit", 2)
    for axis, tag in (("x", "XResolution"), ("y", "YResolution")):
        value = page.tags.valueof(tag)
        if not value:
            continue
        try:
            num, den = value if isinstance(value, tuple) else (float(value), 1)
            per_unit = float(num) / float(den)
        except (TypeError, ValueError, ZeroDivisionError):
            continue
        if per_unit <= 0:
            continue
        step = 1.0 / per_unit
        nm: float | None
        if unit is not None:  # ImageJ states the unit in its description
            nm = length_to_nm(step, unit)
        elif resunit == tifffile.RESUNIT.CENTIMETER:
            nm = length_to_nm(step, "cm")
        elif resunit == tifffile.RESUNIT.MILLIMETER:
            nm = length_to_nm(step, "mm")
        elif resunit == tifffile.RESUNIT.MICROMETER:
            nm = length_to_nm(step, "µm")
        elif resunit == tifffile.RESUNIT.INCH:
            nm = length_to_nm(step, "in")
            if nm is not None and nm > _MAX_INCH_PIXEL_NM:
                nm = None  # a print resolution (72 dpi ...), not a calibration
        else:
            nm = None
        if nm is not None and nm > 0:
            out[axis] = nm
    return out


def _imagej_facts(
    meta: Mapping[str, Any], page: Any, n_channels: int
) -> tuple[dict[str, float], list[Channel]]:
    unit = meta.get("unit")
    if unit in (None, "", "pixel", "pixels"):
        unit = None
    sizes = _resolution_nm(page, unit) if unit else {}
    if unit and meta.get("yunit") not in (None, unit) and "y" in sizes:
        y = length_to_nm(1.0, meta["yunit"])
        base = length_to_nm(1.0, unit)
        if y and base:
            sizes["y"] = sizes["y"] * y / base
    if meta.get("spacing") and (unit or meta.get("zunit")):
        z = length_to_nm(meta["spacing"], meta.get("zunit") or unit)
        if z is not None and z > 0:
            sizes["z"] = z
    if meta.get("finterval"):
        t = time_to_s(meta["finterval"], meta.get("tunit") or "s")
        if t is not None and t > 0:
            sizes["t"] = t
    channels: list[Channel] = []
    luts = meta.get("LUTs") or []
    ranges = meta.get("Ranges") or ()
    for i in range(n_channels):
        color = channel_color(None, i, n_channels)
        if i < len(luts):
            lut = np.asarray(luts[i])
            if lut.ndim == 2 and lut.shape[0] == 3 and lut.shape[1] > 0:
                r, g, b = (int(v) for v in lut[:, -1])
                color = f"{r:02X}{g:02X}{b:02X}"
        window = None
        if len(ranges) >= 2 * (i + 1):
            lo, hi = float(ranges[2 * i]), float(ranges[2 * i + 1])
            if hi > lo:
                window = (lo, hi)
        channels.append(Channel(name=f"channel {i}", color=color, window=window))
    return sizes, channels


# -- validation -------------------------------------------------------------------------------


def _check_layout(series: Any, path: Path, what: str) -> None:
    """Every page of ``series`` is present and its bytes lie inside its file."""
    if series.dataoffset is not None:
        size = series.keyframe.parent.filehandle.size
        end = int(series.dataoffset) + int(series.nbytes)
        if end > size:
            raise InvalidImage(
                path,
                f"is truncated: {what} needs bytes up to {end:,} but the file has {size:,}",
                hint=_DAMAGED_HINT,
            )
        return
    missing = [i for i, p in enumerate(series.pages) if p is None]
    if missing:
        raise InvalidImage(
            path,
            f"{what}: the metadata describes {len(series.pages)} planes but {len(missing)} "
            f"are not in the file (plane{'s' if len(missing) > 1 else ''} "
            f"{', '.join(map(str, missing[:10]))}{' ...' if len(missing) > 10 else ''})",
            hint="the OME-XML or ImageJ metadata contradicts the pixel data; export the file "
            "again, or for a multi-file OME-TIFF put all its files in the same directory",
        )
    for i, page in enumerate(series.pages):
        size = page.parent.filehandle.size
        for off, n in zip(page.dataoffsets, page.databytecounts, strict=False):
            if n and off + n > size:
                raise InvalidImage(
                    page.parent.filehandle.path or path,
                    f"is truncated: plane {i} of {what} needs bytes up to {off + n:,} but the "
                    f"file has {size:,}",
                    hint=_DAMAGED_HINT,
                )


def _check_ome_sizes(facts: OmeFacts, series: Any, path: Path) -> None:
    """The OME-XML sizes agree with what tifffile found in the pages."""
    full = dict(zip(series.get_axes(False), series.get_shape(False), strict=True))
    found = {
        "t": full.get("T", 1),
        "c": full.get("C", 1) * full.get("S", 1),
        "z": full.get("Z", 1),
        "y": full.get("Y", 1),
        "x": full.get("X", 1),
    }
    wrong = [f"Size{a.upper()}={facts.sizes[a]} but the pixel data has {found[a]}"
             for a in "tczyx" if facts.sizes[a] != found[a]]  # fmt: skip
    if wrong:
        raise InvalidImage(
            path,
            "its OME-XML contradicts the pixel data: " + "; ".join(wrong),
            hint="export the file again from the instrument software or with Bio-Formats",
        )


# -- opening ----------------------------------------------------------------------------------


def _sniff(path: Path) -> None:
    try:
        with open(path, "rb") as fh:
            head = fh.read(4)
    except OSError as exc:
        raise InvalidImage(path, f"cannot be read: {exc.strerror or exc}") from exc
    if not head:
        raise InvalidImage(path, "is empty (0 bytes)", hint="copy the file again")
    if head not in TIFF_MAGIC:
        raise InvalidImage(
            path,
            "is not a TIFF file (it does not start with a TIFF header)",
            hint="check the file; convert other formats to OME-TIFF with Bio-Formats bfconvert",
        )


_UUID_RE = re.compile(r"<(?:[\w.-]+:)?UUID\b([^>]*)>([^<]*)<")
_ATTR_RE = re.compile(r"""\b(FileName|UUID)\s*=\s*("[^"]*"|'[^']*')""")
_ROOT_RE = re.compile(r"<(?:[\w.-]+:)?OME\b([^>]*)>")


def _attrs(text: str) -> dict[str, str]:
    import html

    return {k: html.unescape(v[1:-1]) for k, v in _ATTR_RE.findall(text)}


def check_companions(path: Path, ome_xml: str) -> list[Path]:
    """The companion files a multi-file OME-TIFF names (``<TiffData><UUID FileName=...>``),
    refusing every reference that is not a plain file name beside ``path``.

    tifffile resolves such names relative to the file, so ``../../storage/...`` or an
    absolute path would make a deposit read any TIFF the process can. Accepted: a name
    without ``/`` or ``\\`` naming a regular file (not a link) in the same folder.

    Raises
    ------
    UnsafeInput
        A reference is absolute, climbs out (``..``), names a subfolder, is missing, or is
        a link or special file; the message names it.
    """
    import html

    folder = path.parent
    out: list[Path] = []
    root = _ROOT_RE.search(ome_xml)
    root_uuid = _attrs(root.group(1)).get("UUID") if root else None
    for attrs, text in _UUID_RE.findall(ome_xml):
        name = _attrs(attrs).get("FileName", "")
        if html.unescape(text).strip() == root_uuid or name.lower() in {"", path.name.lower()}:
            continue  # this file itself (tifffile matches by UUID, then by name)
        problem = None
        if "/" in name or "\\" in name or name in {".", ".."} or "\x00" in name:
            problem = "is not a file name beside it (absolute, ../ or in another folder)"
        else:
            try:
                st = os.lstat(folder / name)
            except OSError:
                problem = "is missing: it must be deposited together, in the same folder"
            else:
                if not stat.S_ISREG(st.st_mode):
                    problem = "is a link or special file"
        if problem:
            raise UnsafeInput(
                f"{path.name}: its OME-XML names the companion file {name[:200]!r}, which "
                + problem,
                hint="deposit the files of a multi-file OME-TIFF together, side by side in "
                "one folder, with plain file names in <UUID FileName=...>; nothing was "
                "deposited",
            )
        out.append(folder / name)
    return out


_BINARY_ONLY_RE = re.compile(r"<(?:[\w.-]+:)?BinaryOnly\b([^>]*)>")
_METADATA_FILE_RE = re.compile(r"""\bMetadataFile\s*=\s*("[^"]*"|'[^']*')""")


def binary_only_master(path: Path) -> str | None:
    """The ``MetadataFile`` a multi-file OME-TIFF companion points to, or ``None``.

    Bio-Formats writes multi-file OME-TIFFs as one file holding the OME-XML and companions
    whose OME-XML is only ``<BinaryOnly MetadataFile="..."/>``: such a companion is no image
    of its own. Only the first page's description is read (no other file is opened).
    """
    import html

    import tifffile

    try:
        with tifffile.TiffFile(path) as tif:
            xml = tif.pages.first.description if tif.pages else ""
    except Exception:
        return None  # not a readable TIFF: the image readers say what is wrong with it
    found = _BINARY_ONLY_RE.search(xml or "")
    if not found:
        return None
    attr = _METADATA_FILE_RE.search(found.group(1))
    return html.unescape(attr.group(1)[1:-1]) if attr else ""


def _open_all(path: str | Path, name: str | None, only: int | None) -> tuple[list[TiffSource], int]:
    import tifffile

    path = Path(path)
    _sniff(path)
    base = name or source_name(path)
    with tifffile_log() as records:
        try:
            tif = tifffile.TiffFile(path)
        except Exception as exc:
            raise InvalidImage(
                path, f"is not a readable TIFF: {type(exc).__name__}: {exc}", hint=_DAMAGED_HINT
            ) from exc
        try:
            if tif.is_ome:
                # Before tifffile follows <UUID FileName=...> to other files: only
                # companions side by side with this one are opened, never other paths.
                check_companions(path, tif.ome_metadata or "")
            try:
                all_series = list(tif.series)
                n_pages = len(tif.pages)
            except Exception as exc:
                raise InvalidImage(
                    path,
                    f"has a damaged structure: {type(exc).__name__}: {exc}",
                    hint=_DAMAGED_HINT,
                ) from exc
            ome = None
            ome_xml = None
            schema: list[str] = []
            if tif.is_ome:
                # Parse the OME-XML first: if it is malformed, say so rather than "damaged".
                ome_xml = tif.ome_metadata
                ome = parse_ome_xml(ome_xml or "", path)
                schema = schema_problems(ome_xml or "")
            # Errors tifffile logs are structural (offsets past the end of the file, broken
            # tag lists); those about the OME series are contradictions, reported below.
            errors = log_messages(
                records, lambda r: r.levelno >= 40 and "OME series" not in r.getMessage()
            )
            if errors:
                raise InvalidImage(
                    path,
                    f"is damaged or truncated ({path.stat().st_size:,} bytes): "
                    + "; ".join(errors[:3]),
                    hint=_DAMAGED_HINT,
                )
            if not all_series:
                raise InvalidImage(path, "holds no image", hint=_DAMAGED_HINT)
            if ome is not None:
                contradictions = log_messages(records, lambda r: "OME" in r.getMessage())
                if contradictions or any(s.kind != "ome" for s in all_series):
                    raise InvalidImage(
                        path,
                        "its OME-XML contradicts the pixel data: "
                        + ("; ".join(contradictions) or "tifffile cannot match it to the pages"),
                        hint="export the file again from the instrument software or with "
                        "Bio-Formats",
                    )
                in_series = sum(len(s.pages) for s in all_series)
                if n_pages > in_series and all(
                    p is None or p.parent is tif for s in all_series for p in s.pages
                ):
                    raise InvalidImage(
                        path,
                        f"its OME-XML contradicts the pixel data: it describes {in_series} "
                        f"planes but the file holds {n_pages}",
                        hint="export the file again from the instrument software or with "
                        "Bio-Formats",
                    )
            indices = range(len(all_series)) if only is None else [only]
            if only is not None and not 0 <= only < len(all_series):
                raise InvalidImage(
                    path, f"has no series {only} (it has {len(all_series)})", hint=None
                )
            sources = [
                _build(tif, all_series[i], i, len(all_series), path, base, ome, ome_xml, schema)
                for i in indices
            ]
            if only is not None:
                sources[0].name = base
        finally:
            tif.close()
    return sources, len(all_series)


def _build(
    tif: Any,
    series: Any,
    index: int,
    count: int,
    path: Path,
    base: str,
    ome: Any,
    ome_xml: str | None,
    schema: Sequence[str] = (),
) -> TiffSource:
    what = f"series {index}" if count > 1 else "the image"
    _check_layout(series, path, what)
    plan, assumed = _axis_plan(series.axes, series.shape, path)
    amap = AxisMap(plan, series.shape)
    if "y" not in amap.dims or "x" not in amap.dims:
        raise InvalidImage(path, f"{what} has no y and x axes (axes {series.axes})")
    c = amap.shape[amap.dims.index("c")] if "c" in amap.dims else 1
    sizes: dict[str, float] = {}
    channels: list[Channel] = []
    acquisition: dict[str, Any] = {}
    key_values: dict[str, str] = {}
    flavour = "tiff"
    page = series.keyframe
    if ome is not None:
        flavour = "ome-tiff"
        first = next((p for p in series.pages if p is not None), None)
        fname = Path(first.parent.filehandle.name).name if first is not None else path.name
        ifd = first.index if first is not None else 0
        facts = harvest_ome(ome, image_of_series(ome, fname, ifd, index), path)
        _check_ome_sizes(facts, series, path)
        sizes, channels = dict(facts.pixel_sizes), list(facts.channels)
        acquisition = dict(facts.acquisition)
        key_values = dict(facts.key_values)
    elif tif.is_imagej and tif.imagej_metadata is not None:
        flavour = "imagej-tiff"
        sizes, channels = _imagej_facts(tif.imagej_metadata, page, c)
    else:
        sizes = _resolution_nm(page, None)
    rgb = "S" in series.axes and c == series.shape[series.axes.index("S")] and c in (3, 4)
    if rgb and (not channels or all(ch.name.startswith("channel ") for ch in channels)):
        names = ("red", "green", "blue", "alpha")
        colors = ("FF0000", "00FF00", "0000FF", "FFFFFF")
        channels = [Channel(name=names[i], color=colors[i]) for i in range(c)]
    if assumed:
        acquisition["axes_assumed"] = assumed
    if schema:  # recorded, not refused: see schema_problems
        acquisition["ome_xml_schema_problems"] = list(schema)
    origin = sorted({str(Path(p.parent.filehandle.path or path)) for p in series.pages if p})
    stored_dtype = np.dtype(series.dtype)
    dataoffset = series.dataoffset
    if dataoffset is not None:
        stored_dtype = stored_dtype.newbyteorder(tif.byteorder)
        if series.keyframe.parent is not tif or stored_dtype.kind not in "biufc":
            dataoffset = None
    return TiffSource(
        path=path,
        name=base if count == 1 else f"{base}_s{index}",
        dims=amap.dims,
        shape=amap.shape,
        dtype=np.dtype(series.dtype).newbyteorder("="),
        pixel_sizes={a: v for a, v in sizes.items() if a in amap.dims},
        channels=fit_channels(channels, c),
        acquisition=acquisition,
        key_values=key_values,
        origin=tuple(origin) or (str(path),),
        ome_xml=ome_xml,
        series_index=index,
        series_count=count,
        flavour=flavour,
        _axis_map=amap,
        _stored_dtype=stored_dtype,
        _dataoffset=dataoffset,
    )


def open_tiff(path: str | Path, *, name: str | None = None, series: int = 0) -> TiffSource:
    """Open one series (the first by default) of a TIFF, OME-TIFF or ImageJ TIFF.

    The file is checked when it is opened: its structure must parse without damage, every
    page's bytes must lie inside the file, and OME-XML must be valid and agree with the
    pages. Pixel data is only decoded by :meth:`TiffSource.read` (and
    :meth:`TiffSource.check`, which decodes everything once).

    Parameters
    ----------
    path:
        The TIFF file.
    name:
        Image name; defaults to the file name without ``.ome.tif``/``.tif``.
    series:
        Which series of a multi-series file (see :func:`open_tiff_series` for all).

    Raises
    ------
    InvalidImage
        The file is not a TIFF, is damaged, truncated or contradicts its own metadata,
        or has axes nanorepo cannot store.
    """
    return _open_all(path, name, series)[0][0]


def open_tiff_series(path: str | Path, *, name: str | None = None) -> list[TiffSource]:
    """Every series of a TIFF file as its own source, named ``<name>_s<index>`` when several."""
    return _open_all(path, name, None)[0]
