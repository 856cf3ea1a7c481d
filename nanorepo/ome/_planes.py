"""A directory of 2D TIFF planes (one file per t, c, z) as one lazily readable image.

Many acquisition programs (and many scripts) write one TIFF per plane, the plane's position
in the file name: ``cell1_t000_c01_z012.tif``. This reader groups the files by a name
pattern, checks that the planes form a complete grid of identical shape and type (a missing
plane is reported by its indices, not discovered halfway through a conversion), and reads
only the planes a region touches, each memory-mapped when it is uncompressed.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from nanorepo.errors import InvalidImage, InvalidInput
from nanorepo.ome._reader_common import (
    default_channels,
    log_messages,
    normalise_region,
    read_all,
    source_name,
    tifffile_log,
)
from nanorepo.ome._source import AXES, Channel

__all__ = [
    "DEFAULT_PATTERN",
    "PlaneSource",
    "looks_like_planes",
    "open_plane_series",
    "open_planes",
]

#: The default: ``<name>`` followed by any of ``_t<n>``, ``_c<n>``, ``_z<n>`` in any order.
DEFAULT_PATTERN = "{name}_t{t}_c{c}_z{z}.tif"

_TIFF_SUFFIXES = (".tif", ".tiff")
_PLANE_DIMS = ("t", "c", "z")
_DAMAGED_HINT = "copy the plane again, or remove it and supply it again"
_PATTERN_HINT = (
    "give a pattern with the placeholders {name}, {t}, {c}, {z}, e.g. "
    "--pattern '{name}_t{t}_c{c}_z{z}.tif' (any of t, c, z may be left out)"
)


@dataclass(frozen=True)
class _Plane:
    path: Path
    shape: tuple[int, int]
    dtype: np.dtype[Any]  # as stored (byte order included)
    dataoffset: int | None


@dataclass(eq=False)
class PlaneSource:
    """A stack of 2D TIFF planes read lazily in canonical ``t, c, z, y, x`` order.

    Attributes beyond :class:`~nanorepo.ome.ImageSource`
    ----------------------------------------------------
    path:
        The directory.
    planes:
        File of each plane, keyed by its index along the leading (``t, c, z``) dims.
    missing_pixel_sizes:
        Axes of ``dims`` the planes give no physical size for (z and t always: a single
        plane cannot say what its neighbours are).
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
    planes: Mapping[tuple[int, ...], _Plane] = field(default_factory=dict, repr=False)
    ome_xml: str | None = None

    @property
    def missing_pixel_sizes(self) -> tuple[str, ...]:
        return tuple(a for a in self.dims if a != "c" and a not in self.pixel_sizes)

    def _read_plane(self, plane: _Plane, ys: slice, xs: slice) -> np.ndarray:
        try:
            if plane.dataoffset is not None:
                mm = np.memmap(
                    plane.path, dtype=plane.dtype, mode="r", offset=plane.dataoffset,
                    shape=plane.shape,
                )  # fmt: skip
                return np.array(mm[ys, xs], dtype=self.dtype)
            import tifffile
            import zarr

            with tifffile.TiffFile(plane.path) as tif:
                arr = zarr.open_array(tif.series[0].aszarr(), mode="r")
                return np.asarray(arr[ys, xs], dtype=self.dtype).reshape(
                    ys.stop - ys.start, xs.stop - xs.start
                )
        except MemoryError:
            raise
        except Exception as exc:
            raise InvalidImage(
                plane.path,
                f"cannot read the plane's pixel data: {type(exc).__name__}: {exc}",
                hint=_DAMAGED_HINT,
            ) from exc

    def read(self, region: tuple[slice, ...]) -> np.ndarray:
        """Pixels of ``region``; reads only the planes (and rows/columns) it covers."""
        bounds = normalise_region(region, self.shape, self.path)
        *lead, (y0, y1), (x0, x1) = bounds
        out = np.empty([b - a for a, b in bounds], dtype=self.dtype)
        for idx in itertools.product(*(range(a, b) for a, b in lead)):
            pos = tuple(i - a for i, (a, _b) in zip(idx, lead, strict=True))
            out[pos] = self._read_plane(self.planes[idx], slice(y0, y1), slice(x0, x1))
        return out

    def check(self) -> None:
        """Read every plane once; :class:`InvalidImage` names the first plane that fails."""
        read_all(self)


# -- file names -------------------------------------------------------------------------------


def _compile(pattern: str) -> re.Pattern[str]:
    """A regular expression for a pattern with ``{name}``, ``{t}``, ``{c}``, ``{z}``."""
    parts: list[str] = []
    seen: set[str] = set()
    pos = 0
    for m in re.finditer(r"\{([^{}]*)\}", pattern):
        key = m.group(1)
        parts.append(re.escape(pattern[pos : m.start()]))
        if key not in ("name", *_PLANE_DIMS):
            raise InvalidInput(
                f"plane pattern {pattern!r}: unknown placeholder {{{key}}}", hint=_PATTERN_HINT
            )
        if key in seen:
            raise InvalidInput(
                f"plane pattern {pattern!r}: placeholder {{{key}}} appears twice",
                hint=_PATTERN_HINT,
            )
        seen.add(key)
        parts.append("(?P<name>.+?)" if key == "name" else f"(?P<{key}>\\d+)")
        pos = m.end()
    parts.append(re.escape(pattern[pos:]))
    if "/" in pattern or "\\" in pattern:
        raise InvalidInput(
            f"plane pattern {pattern!r} must match file names, not paths", hint=_PATTERN_HINT
        )
    return re.compile("".join(parts))


def _parse_default(filename: str) -> tuple[str, dict[str, int]] | None:
    """``cell1_t000_c01_z012.tif`` → ``("cell1", {"t": 0, "c": 1, "z": 12})`` (any order)."""
    low = filename.lower()
    for suffix in (".ome.tiff", ".ome.tif", ".tiff", ".tif"):
        if low.endswith(suffix):
            stem = filename[: -len(suffix)]
            break
    else:
        return None
    found: dict[str, int] = {}
    while True:
        m = re.search(r"_([tczTCZ])(\d+)$", stem)
        if m is None or m.group(1).lower() in found:
            break
        found[m.group(1).lower()] = int(m.group(2))
        stem = stem[: m.start()]
    return (stem or "image"), found


def _match(
    directory: Path, pattern: str | None
) -> tuple[dict[str, dict[tuple[tuple[str, int], ...], Path]], list[str]]:
    """Files of ``directory`` grouped by image name, keyed by their (dim, index) pairs."""
    regex = _compile(pattern) if pattern else None
    groups: dict[str, dict[tuple[tuple[str, int], ...], Path]] = {}
    unmatched: list[str] = []
    duplicates: list[str] = []
    for p in sorted(directory.iterdir()):
        if p.name.startswith(".") or not p.is_file():
            continue
        if not p.name.lower().endswith(_TIFF_SUFFIXES):
            continue
        if regex is None:
            parsed = _parse_default(p.name)
        else:
            m = regex.fullmatch(p.name)
            parsed = None
            if m is not None:
                d = m.groupdict()
                parsed = (
                    d.get("name") or "",
                    {k: int(v) for k, v in d.items() if k != "name" and v is not None},
                )
        if parsed is None:
            unmatched.append(p.name)
            continue
        name, idx = parsed
        key = tuple(sorted(idx.items(), key=lambda kv: _PLANE_DIMS.index(kv[0])))
        group = groups.setdefault(name, {})
        if key in group:
            duplicates.append(f"{group[key].name} and {p.name}")
        group[key] = p
    if duplicates:
        raise InvalidImage(
            directory,
            "two files claim the same plane: " + "; ".join(duplicates[:5]),
            hint="remove one of each pair (indices are read as numbers: z1 and z001 are the same)",
        )
    return groups, unmatched


# -- planes -----------------------------------------------------------------------------------


def _inspect(path: Path) -> _Plane:
    """Shape, type and layout of one plane file; an error if it is damaged or not 2D."""
    import tifffile

    from nanorepo.ome._tiff import _check_layout, _sniff

    _sniff(path)
    with tifffile_log() as records:
        try:
            with tifffile.TiffFile(path) as tif:
                series = tif.series[0]
                errors = log_messages(records, lambda r: r.levelno >= 40)
                if errors:
                    raise InvalidImage(path, "is damaged: " + "; ".join(errors[:3]),
                                       hint=_DAMAGED_HINT)  # fmt: skip
                _check_layout(series, path, "the plane")
                shape = tuple(int(n) for n in series.shape)
                if len(shape) != 2:
                    raise InvalidImage(
                        path,
                        f"is not a 2D plane (axes {series.axes}, shape {shape})",
                        hint="a plane directory holds one 2D grey-scale image per file; "
                        "deposit multi-dimensional or RGB files directly",
                    )
                dtype = np.dtype(series.dtype)
                offset = series.dataoffset
                if offset is not None:
                    dtype = dtype.newbyteorder(tif.byteorder)
                return _Plane(path, (shape[0], shape[1]), dtype, offset)
        except InvalidImage:
            raise
        except Exception as exc:
            raise InvalidImage(
                path, f"is not a readable TIFF: {type(exc).__name__}: {exc}", hint=_DAMAGED_HINT
            ) from exc


def _grid(
    directory: Path, name: str, files: Mapping[tuple[tuple[str, int], ...], Path]
) -> tuple[tuple[str, ...], dict[str, list[int]]]:
    """The leading dims and their index values; an error listing any missing plane."""
    dims_sets = {tuple(d for d, _ in key) for key in files}
    if len(dims_sets) > 1:
        raise InvalidImage(
            directory,
            f"planes of {name!r} do not all name the same axes: "
            + ", ".join("".join(s) or "(none)" for s in sorted(dims_sets)),
            hint=_PATTERN_HINT,
        )
    dims = next(iter(dims_sets))
    values = {d: sorted({dict(key)[d] for key in files}) for d in dims}
    ranges = {d: list(range(v[0], v[-1] + 1)) for d, v in values.items()}
    missing = []
    for combo in itertools.product(*(ranges[d] for d in dims)):
        key = tuple(zip(dims, combo, strict=True))
        if key not in files:
            missing.append(" ".join(f"{d}={i}" for d, i in key))
    if missing:
        expected = np.prod([len(r) for r in ranges.values()])
        raise InvalidImage(
            directory,
            f"{len(missing)} of {expected} planes of {name!r} are missing: "
            + ", ".join(missing[:10])
            + (" ..." if len(missing) > 10 else ""),
            hint="supply the missing plane files (indices must run without gaps), or remove "
            "the planes that do not belong to the image",
        )
    return dims, ranges


def _build(directory: Path, group: str, files: Mapping[Any, Path], name: str) -> PlaneSource:
    from nanorepo.ome._tiff import open_tiff

    lead_all, ranges = _grid(directory, group, files)
    planes: dict[tuple[int, ...], _Plane] = {}
    inspected = {key: _inspect(p) for key, p in files.items()}
    first_key = min(inspected)
    first = inspected[first_key]
    odd = [
        f"{pl.path.name} ({pl.shape[0]}x{pl.shape[1]} {pl.dtype.newbyteorder('=')})"
        for pl in inspected.values()
        if pl.shape != first.shape or pl.dtype.newbyteorder("=") != first.dtype.newbyteorder("=")
    ]
    if odd:
        raise InvalidImage(
            directory,
            f"planes of {group!r} differ in shape or pixel type: {first.path.name} is "
            f"{first.shape[0]}x{first.shape[1]} {first.dtype.newbyteorder('=')}, but "
            + ", ".join(odd[:5])
            + (" ..." if len(odd) > 5 else ""),
            hint="every plane of one image must have the same size and pixel type",
        )
    # Keep leading dims with more than one index, in canonical order.
    lead = tuple(d for d in AXES if d in lead_all and len(ranges[d]) > 1)
    for key, plane in inspected.items():
        d = dict(key)
        planes[tuple(d[k] - ranges[k][0] for k in lead)] = plane
    dims = (*lead, "y", "x")
    shape = (*(len(ranges[d]) for d in lead), *first.shape)

    # Metadata from the first plane (and the first plane of every channel for its name).
    head = open_tiff(first.path)
    pixel_sizes = {a: v for a, v in head.pixel_sizes.items() if a in ("y", "x")}
    n_c = len(ranges["c"]) if "c" in lead else 1
    channels: list[Channel] = list(default_channels(n_c))
    if head.flavour == "ome-tiff":
        for ci in range(n_c):
            key = next(k for k in planes if ("c" not in lead or k[lead.index("c")] == ci))
            described = open_tiff(planes[key].path).channels[0]
            if not described.name.startswith("channel "):
                channels[ci] = described
    return PlaneSource(
        path=directory,
        name=name,
        dims=dims,
        shape=shape,
        dtype=first.dtype.newbyteorder("="),
        pixel_sizes=pixel_sizes,
        channels=tuple(channels),
        acquisition=dict(head.acquisition),
        key_values=dict(head.key_values),
        origin=(str(directory),),
        planes=planes,
        ome_xml=head.ome_xml,
    )


def _groups(path: Path, pattern: str | None) -> dict[str, dict[Any, Path]]:
    if not path.is_dir():
        raise InvalidImage(path, "is not a directory of TIFF planes")
    groups, unmatched = _match(path, pattern)
    if pattern and "{name}" not in pattern:
        # A pattern that spells out one image's name leaves the other images' files alone;
        # files that start like it but do not match are mistakes worth reporting.
        prefix = pattern.split("{", 1)[0]
        unmatched = [u for u in unmatched if u.startswith(prefix)]
    if unmatched and pattern:
        raise InvalidImage(
            path,
            f"{len(unmatched)} TIFF file(s) do not match the pattern {pattern!r}: "
            + ", ".join(unmatched[:5])
            + (" ..." if len(unmatched) > 5 else ""),
            hint="fix the pattern or move the other files out of the directory",
        )
    if not groups:
        raise InvalidImage(path, "holds no TIFF planes (*.tif, *.tiff)", hint="check the directory")
    return groups


def open_planes(
    path: str | Path, *, pattern: str | None = None, name: str | None = None
) -> PlaneSource:
    """Open a directory of 2D TIFF planes as one image.

    Parameters
    ----------
    path:
        The directory.
    pattern:
        File-name pattern with placeholders ``{name}``, ``{t}``, ``{c}``, ``{z}`` (each
        optional), e.g. ``"{name}_t{t}_c{c}_z{z}.tif"``; indices are integers, of any
        padding, and need not start at 0. By default names ending in any combination of
        ``_t<n>``, ``_c<n>``, ``_z<n>`` (in any order) are recognised.
    name:
        Image name; defaults to the ``{name}`` part of the file names, else the directory name.

    Raises
    ------
    InvalidImage
        No planes, planes of several images (give a pattern naming one), missing planes,
        planes of different shape or type, or a damaged plane.
    """
    path = Path(path)
    groups = _groups(path, pattern)
    if len(groups) > 1:
        names = sorted(groups)
        raise InvalidImage(
            path,
            f"holds planes of {len(names)} images: {', '.join(names[:8])}"
            + (" ..." if len(names) > 8 else ""),
            hint="give a pattern that names one of them, e.g. "
            f"--pattern '{names[0]}_t{{t}}_c{{c}}_z{{z}}.tif', or put each image's planes in "
            "its own directory",
        )
    group, files = next(iter(groups.items()))
    return _build(path, group, files, name or source_name(group or path.name))


def open_plane_series(path: str | Path, *, pattern: str | None = None) -> list[PlaneSource]:
    """Every image of a plane directory (one per distinct ``{name}``), sorted by name."""
    path = Path(path)
    groups = _groups(path, pattern)
    return [
        _build(path, group, files, source_name(group or path.name))
        for group, files in sorted(groups.items())
    ]


def looks_like_planes(path: Path, sample: int = 1000) -> bool:
    """True if ``path`` is a directory holding TIFF files (checked among its first entries)."""
    if not path.is_dir():
        return False
    for i, p in enumerate(path.iterdir()):
        if i >= sample:
            break
        if p.is_file() and not p.name.startswith(".") and p.name.lower().endswith(_TIFF_SUFFIXES):
            return True
    return False
