"""Open whatever a depositor brings as image sources: sniff the content, pick the reader.

The kind of an input is decided by its content, not its name: TIFF magic bytes for TIFF,
OME-TIFF and ImageJ TIFF (whatever the extension), ``zarr.json``/``.zattrs`` for OME-Zarr,
a directory of TIFF files for plane stacks, a header row with x/y columns (or Parquet
magic) for localisation tables. Anything else is refused with a message that says what the
file looks like and how to convert it.

Readers check structure when they open a file (cheap: headers, byte ranges, metadata
against pixel data), so a deposit refuses damaged input before converting anything.
Damage inside compressed pixel data can only be found by decoding it; :func:`check` does
that, reading every pixel once with bounded memory.
"""

from __future__ import annotations

from pathlib import Path

from nanorepo.errors import InvalidImage
from nanorepo.ome._planes import looks_like_planes, open_plane_series, open_planes
from nanorepo.ome._reader_common import read_all
from nanorepo.ome._smlm import is_localisation_table, unread_localisation_format
from nanorepo.ome._source import ImageSource
from nanorepo.ome._tiff import TIFF_MAGIC, open_tiff, open_tiff_series
from nanorepo.ome._vendor import open_vendor_series, vendor_format
from nanorepo.ome._zarr_input import looks_like_zarr, open_ome_zarr, open_zarr_series

__all__ = ["check", "is_image", "is_localisation_table", "open_source", "open_sources"]

_NOT_AN_IMAGE = (
    "is not a TIFF, OME-TIFF, CZI, LIF, ND2, OME-Zarr, TIFF plane directory or localisation table"
)
_CONVERT_HINT = (
    "convert it to OME-TIFF with Bio-Formats (`bfconvert in.ext out.ome.tif`) or to "
    "OME-Zarr with bioformats2raw; localisation tables must be CSV/TSV/Parquet with x/y columns"
)
# Leading bytes of formats people try to deposit, to say what a refused file is.
_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"ZISRAWFILE", "a Zeiss CZI file"),
    (b"\x89HDF", "an HDF5 file (Imaris .ims, Picasso .hdf5 ...)"),
    (b"\xda\xce\xbe\x0a", "a Nikon ND2 file"),
    (b"\x89PNG", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"PK\x03\x04", "a ZIP archive (unpack it first)"),
    (b"\x1f\x8b", "a gzip archive (unpack it first)"),
    (b"PAR1", "a Parquet file without x/y columns"),
    (b"\x93NUMPY", "a NumPy .npy file"),
    (b"%PDF", "a PDF document"),
)


def _head(path: Path, n: int = 16) -> bytes:
    try:
        with open(path, "rb") as fh:
            return fh.read(n)
    except OSError as exc:
        raise InvalidImage(path, f"cannot be read: {exc.strerror or exc}") from exc


def _describe(head: bytes) -> str:
    for magic, what in _MAGIC:
        if head.startswith(magic):
            return what
    try:
        head.decode("utf-8")
    except UnicodeDecodeError:
        return "binary data of an unknown format"
    return "text"


def is_image(path: str | Path) -> bool:
    """True if ``path`` is something :func:`open_source` can open (by content; never raises)."""
    p = Path(path)
    try:
        if p.is_dir():
            return looks_like_zarr(p) or looks_like_planes(p)
        if p.is_file():
            head = _head(p)
            return head[:4] in TIFF_MAGIC or vendor_format(head) is not None
    except (OSError, InvalidImage):
        return False
    return False


def _refuse(p: Path) -> InvalidImage:
    if p.is_dir():
        return InvalidImage(
            p,
            f"{_NOT_AN_IMAGE} (a directory without Zarr metadata or TIFF files)",
            hint=_CONVERT_HINT,
        )
    head = _head(p)
    if not head:
        return InvalidImage(p, "is empty (0 bytes)", hint="copy the file again")
    if is_localisation_table(p):
        return InvalidImage(
            p,
            "is a localisation table, not an image",
            hint="deposit it as a localisation table (read_localisations reads it)",
        )
    smlm = unread_localisation_format(p)
    if smlm is not None:
        return InvalidImage(
            p,
            f"is a localisation file of {smlm}, which nanorepo does not read",
            hint="export the localisations as CSV or TSV with a header row that names x and "
            'y with their unit (e.g. ThunderSTORM\'s "x [nm]"), or as Parquet; nothing was '
            "deposited",
        )
    return InvalidImage(p, f"{_NOT_AN_IMAGE}: it is {_describe(head)}", hint=_CONVERT_HINT)


def _resolve(path: str | Path) -> Path:
    p = Path(path)
    if not p.exists():
        raise InvalidImage(p, "does not exist", hint="check the path")
    # Pointing at the metadata file of a Zarr group means the group.
    if p.is_file() and p.name in ("zarr.json", ".zattrs", ".zgroup"):
        p = p.parent
    return p


def open_source(
    path: str | Path, *, pattern: str | None = None, name: str | None = None
) -> ImageSource:
    """Open an image file or directory as a lazily readable :class:`ImageSource`.

    Dispatches on content: TIFF magic → TIFF/OME-TIFF/ImageJ reader (first series of a
    multi-series file; see :func:`open_sources` for all); CZI, LIF or ND2 magic → the
    bioio plugin of the format (first scene); a Zarr group → OME-Zarr reader
    (NGFF 0.4/0.5, validated); a directory of TIFF files → plane reader (``pattern``).

    Parameters
    ----------
    path:
        File or directory.
    pattern:
        File-name pattern for plane directories (``"{name}_t{t}_c{c}_z{z}.tif"``); ignored
        for other inputs.
    name:
        Image name; defaults to the file or directory name without its extension.

    Raises
    ------
    InvalidImage
        The input does not exist, is not an image nanorepo reads, or is damaged or
        self-contradictory (the message names the file and the problem).
    """
    p = _resolve(path)
    if p.is_dir():
        if looks_like_zarr(p):
            return open_ome_zarr(p, name=name)
        if looks_like_planes(p):
            return open_planes(p, pattern=pattern, name=name)
        raise _refuse(p)
    if _head(p, 4) in TIFF_MAGIC:
        return open_tiff(p, name=name)
    fmt = vendor_format(_head(p))
    if fmt is not None:
        return open_vendor_series(p, fmt, name=name)[0]
    raise _refuse(p)


def open_sources(
    path: str | Path, *, pattern: str | None = None, name: str | None = None
) -> list[ImageSource]:
    """Every image in ``path``: each series of a TIFF, each scene of a CZI, LIF or ND2,
    each image of a plane directory or of
    a bioformats2raw OME-Zarr. Names get ``_s<index>`` when a file holds several series.
    """
    p = _resolve(path)
    if p.is_dir():
        if looks_like_zarr(p):
            return list(open_zarr_series(p, name=name))
        if looks_like_planes(p):
            if name is not None:
                return [open_planes(p, pattern=pattern, name=name)]
            return list(open_plane_series(p, pattern=pattern))
        raise _refuse(p)
    if _head(p, 4) in TIFF_MAGIC:
        return list(open_tiff_series(p, name=name))
    fmt = vendor_format(_head(p))
    if fmt is not None:
        return list(open_vendor_series(p, fmt, name=name))
    raise _refuse(p)


def check(source: ImageSource, *, max_block_bytes: int = 64 << 20) -> None:
    """Read and decode every pixel of ``source`` once, to find damage before converting.

    Opening a source already checks structure (headers, byte ranges, metadata against the
    pixel data); damage inside compressed pixel data is only found by decoding it. This
    costs one full read of the input, in blocks of at most ``max_block_bytes``.

    Raises
    ------
    InvalidImage
        A block cannot be read or decoded (the message names the file and the region),
        or the reader returned a block of the wrong shape.
    """
    read_all(source, max_block_bytes)
