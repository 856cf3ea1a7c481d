"""What the image readers share: axis mapping, region arithmetic, names, channel colours.

Files store axes in their own order and with their own letters (tifffile's ``TZCYXS``,
NGFF axis names); sources present the canonical ``t, c, z, y, x``. :class:`AxisMap`
translates a canonical region into an index of the stored array, reads only that, and
transposes (and, for RGB samples next to channels, merges) the result. Reading goes
through any array that supports numpy basic slicing — a ``numpy.memmap`` or a
``zarr.Array`` — so the same code serves TIFF, plane directories and OME-Zarr.
"""

from __future__ import annotations

import logging
import math
import re
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from nanorepo.ome._source import AXES, Channel

__all__ = [
    "AxisMap",
    "channel_color",
    "default_channels",
    "fit_channels",
    "iter_blocks",
    "json_clean",
    "log_messages",
    "normalise_region",
    "read_all",
    "source_name",
    "tifffile_log",
]

_NAME_SUFFIXES = (
    ".ome.tiff",
    ".ome.tif",
    ".ome.zarr",
    ".ome.btf",
    ".tiff",
    ".tif",
    ".zarr",
    ".btf",
    ".czi",
    ".lif",
    ".nd2",
)

#: Colours for channels without one, magenta and green first (readable by most colour-blind
#: viewers, and what two-colour nanoscopy figures use).
_PALETTE = ("FF00FF", "00FF00", "00FFFF", "FF0000", "0000FF", "FFFF00")


def source_name(path: str | Path) -> str:
    """Image name derived from a file or directory name, restricted to ``[A-Za-z0-9._-]``."""
    base = Path(path).name
    for suffix in _NAME_SUFFIXES:
        if base.lower().endswith(suffix):
            base = base[: -len(suffix)]
            break
    else:
        if Path(path).is_file():
            base = Path(base).stem
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", base).strip("._-") or "image"
    if not name[0].isalnum():
        name = "i" + name
    return name[:128]


def channel_color(emission_nm: float | None, index: int, count: int) -> str:
    """A display colour for a channel: from its emission wavelength, else from a palette.

    A single channel without a wavelength is white (grey-scale display).
    """
    if emission_nm is not None and math.isfinite(emission_nm):
        for limit, color in (
            (450, "0000FF"),
            (500, "00FFFF"),
            (560, "00FF00"),
            (590, "FFFF00"),
            (640, "FF0000"),
        ):
            if emission_nm < limit:
                return color
        return "FF00FF"
    if count == 1:
        return "FFFFFF"
    return _PALETTE[index % len(_PALETTE)]


def default_channels(count: int, names: Sequence[str | None] = ()) -> tuple[Channel, ...]:
    """``count`` channels named ``channel 0`` ... (or ``names``) with palette colours."""
    out = []
    for i in range(count):
        name = names[i] if i < len(names) and names[i] else f"channel {i}"
        out.append(Channel(name=str(name), color=channel_color(None, i, count)))
    return tuple(out)


def fit_channels(channels: Sequence[Channel], count: int) -> tuple[Channel, ...]:
    """Exactly ``count`` channels: those described, then defaults for the rest."""
    out = list(channels[:count])
    out += [
        Channel(name=f"channel {i}", color=channel_color(None, i, count))
        for i in range(len(out), count)
    ]
    return tuple(out)


def normalise_region(
    region: Sequence[slice], shape: Sequence[int], origin: object
) -> list[tuple[int, int]]:
    """Resolve ``region`` (one slice per dim, step 1) to ``(start, stop)`` pairs.

    Missing trailing slices mean "everything"; out-of-range bounds are clipped as numpy does.
    """
    if len(region) > len(shape):
        raise ValueError(f"{origin}: region {region!r} has more dims than the image {shape}")
    out = []
    for i, n in enumerate(shape):
        s = region[i] if i < len(region) else slice(None)
        if not isinstance(s, slice):
            raise TypeError(f"{origin}: region must be slices, got {s!r}")
        start, stop, step = s.indices(int(n))
        if step != 1:
            raise ValueError(f"{origin}: region slices must have step 1, got {s!r}")
        out.append((start, max(start, stop)))
    return out


@dataclass(frozen=True)
class _Group:
    """One canonical dim and the stored axes (major first) it is made of."""

    dim: str
    members: tuple[int, ...]  # positions in the stored array
    sizes: tuple[int, ...]


class AxisMap:
    """Maps stored axes to canonical ``t, c, z, y, x`` dims.

    Parameters
    ----------
    stored:
        One canonical dim (``"t"`` ... ``"x"``) or ``None`` (a length-1 axis to drop) per
        axis of the stored array. Several stored axes may map to one dim (channels and RGB
        samples both become ``c``); their index is combined major-first in stored order.
    shape:
        Shape of the stored array.
    """

    def __init__(self, stored: Sequence[str | None], shape: Sequence[int]) -> None:
        if len(stored) != len(shape):
            raise ValueError(f"axis map {stored} does not match shape {shape}")
        for a, n in zip(stored, shape, strict=True):
            if a is None and n != 1:
                raise ValueError("only length-1 axes can be dropped")
            if a is not None and a not in AXES:
                raise ValueError(f"unknown canonical dim {a!r}")
        self.stored = tuple(stored)
        self.stored_shape = tuple(int(n) for n in shape)
        groups = []
        for dim in AXES:
            members = tuple(i for i, a in enumerate(stored) if a == dim)
            if members:
                groups.append(_Group(dim, members, tuple(self.stored_shape[i] for i in members)))
        self._groups = tuple(groups)
        self.dims: tuple[str, ...] = tuple(g.dim for g in groups)
        self.shape: tuple[int, ...] = tuple(math.prod(g.sizes) for g in groups)

    @property
    def is_identity(self) -> bool:
        """True when the stored array already is in canonical order with no merging."""
        return all(a is not None for a in self.stored) and list(self.stored) == list(self.dims)

    def read(self, array: Any, bounds: Sequence[tuple[int, int]]) -> np.ndarray:
        """Read canonical ``bounds`` from ``array`` (stored order), reading no more than needed."""
        index: list[slice | int] = [0] * len(self.stored)
        trims: list[tuple[int, int] | None] = []
        for g, (a, b) in zip(self._groups, bounds, strict=True):
            if len(g.members) == 1:
                index[g.members[0]] = slice(a, b)
                trims.append(None)
                continue
            inner = math.prod(g.sizes[1:])
            lo = a // inner
            hi = max(lo, (b - 1) // inner + 1) if b > a else lo
            index[g.members[0]] = slice(lo, hi)
            for m in g.members[1:]:
                index[m] = slice(None)
            trims.append((a - lo * inner, b - lo * inner))
        kept = [i for i, a in enumerate(self.stored) if a is not None]
        raw = np.asarray(array[tuple(index)])
        order = [kept.index(m) for g in self._groups for m in g.members]
        if order != sorted(order):
            raw = raw.transpose(order)
        merged_shape = []
        pos = 0
        for g in self._groups:
            k = len(g.members)
            merged_shape.append(math.prod(raw.shape[pos : pos + k]))
            pos += k
        out = raw.reshape(merged_shape)
        if any(t is not None for t in trims):
            out = out[tuple(slice(*t) if t else slice(None) for t in trims)]
        return out


def iter_blocks(
    shape: Sequence[int], dtype: np.dtype[Any], max_bytes: int = 64 << 20
) -> Iterator[tuple[slice, ...]]:
    """Regions that cover an array one plane (or a stripe of rows of a plane) at a time.

    Used to read every pixel once with memory bounded by ``max_bytes``.
    """
    *lead, ny, nx = (int(n) for n in shape)
    row_bytes = max(1, nx * np.dtype(dtype).itemsize)
    rows = max(1, min(ny, max_bytes // row_bytes))
    for idx in np.ndindex(*lead) if lead else [()]:
        for y in range(0, max(ny, 1), rows):
            yield (*(slice(i, i + 1) for i in idx), slice(y, min(ny, y + rows)), slice(0, nx))


def read_all(source: Any, max_block_bytes: int = 64 << 20) -> None:
    """Read every pixel of ``source`` once, block by block; raise if a block is wrong.

    The readers raise :class:`~nanorepo.errors.InvalidImage` for data they cannot decode.
    """
    from nanorepo.errors import InvalidImage

    for region in iter_blocks(source.shape, source.dtype, max_block_bytes):
        block = source.read(region)
        expected = tuple(s.stop - s.start for s in region)
        if tuple(block.shape) != expected:
            raise InvalidImage(
                ", ".join(source.origin) or source.name,
                f"returned a block of shape {tuple(block.shape)} for a region of {expected}",
            )


class _Collect(logging.Handler):
    def __init__(self, thread: int, sink: list[logging.LogRecord]) -> None:
        super().__init__(level=logging.WARNING)
        self._thread = thread
        self._sink = sink

    def emit(self, record: logging.LogRecord) -> None:
        if record.thread == self._thread:
            self._sink.append(record)


@contextmanager
def tifffile_log() -> Iterator[list[logging.LogRecord]]:
    """Collect what tifffile logs (warnings and errors) in this thread.

    tifffile reports damaged structures (page offsets past the end of the file, tag values
    it cannot read, OME-XML that does not fit the pages) through its logger and carries on
    with what it could read. Collecting those records lets a reader refuse such a file
    instead of silently converting part of it.
    """
    records: list[logging.LogRecord] = []
    handler = _Collect(threading.get_ident(), records)
    log = logging.getLogger("tifffile")
    log.addHandler(handler)
    try:
        yield records
    finally:
        log.removeHandler(handler)


def log_messages(
    records: Sequence[logging.LogRecord], keep: Callable[[logging.LogRecord], bool]
) -> list[str]:
    """Messages of the records ``keep`` selects, without tifffile's object prefixes."""
    out = []
    for r in records:
        if keep(r):
            msg = r.getMessage()
            msg = re.sub(r"^<[^>]*>\s*", "", msg)
            # "raised TiffFileError('<tifffile.TiffTag 270 @70> invalid value offset 1')"
            msg = re.sub(r"raised \w+\('(.*)'\)$", r"\1", msg)
            msg = re.sub(r"<tifffile\.(\w+) ([^>]*)>", r"\1 \2", msg)
            out.append(msg)
    return out


def json_clean(value: Any) -> Any:
    """Drop ``None`` and empty values from nested dicts/lists (acquisition facts stay compact)."""
    if isinstance(value, Mapping):
        out = {str(k): json_clean(v) for k, v in value.items()}
        return {k: v for k, v in out.items() if v not in (None, "", [], {})}
    if isinstance(value, list | tuple):
        return [json_clean(v) for v in value if v not in (None, "", [], {})]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
