"""An existing OME-Zarr (NGFF 0.4 on Zarr v2, NGFF 0.5 on Zarr v3) as an image source.

The metadata is validated with ome-zarr-models, the community's typed models of the NGFF
specification, so a depositor learns exactly which field breaks the specification rather
than getting a half-converted image. Level 0 is read lazily with zarr-python; the writer
rewrites it into nanorepo's layout (sharding, our chunking) and rebuilds the pyramid, so
lower levels are not read. A ``bioformats2raw`` layout (the output of ``bioformats2raw``)
is opened at its first image, and its ``OME/METADATA.ome.xml`` is harvested like an
OME-TIFF's.
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from nanorepo.errors import InvalidImage
from nanorepo.ome._reader_common import (
    AxisMap,
    channel_color,
    fit_channels,
    normalise_region,
    read_all,
    source_name,
)
from nanorepo.ome._reader_omexml import harvest_ome, parse_ome_xml
from nanorepo.ome._reader_units import length_to_nm, time_to_s
from nanorepo.ome._source import AXES, Channel

__all__ = ["ZarrSource", "looks_like_zarr", "open_ome_zarr", "open_zarr_series"]

_SPEC_HINT = (
    "fix the metadata so it follows the NGFF specification (https://ngff.openmicroscopy.org), "
    "or write the image again with ome-zarr-py or ngff-zarr; "
    "`ome-zarr-models validate <path>` shows the same problems"
)
_TYPE_DIM = {"time": "t", "channel": "c"}


@dataclass(eq=False)
class ZarrSource:
    """Level 0 of an OME-Zarr multiscale image, read lazily in canonical order.

    Attributes beyond :class:`~nanorepo.ome.ImageSource`
    ----------------------------------------------------
    ngff_version:
        ``"0.4"`` or ``"0.5"``.
    ome_xml:
        ``OME/METADATA.ome.xml`` of a bioformats2raw layout, else ``None``.
    missing_pixel_sizes:
        Axes of ``dims`` whose scale has no physical unit in the metadata.
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
    ngff_version: str
    ome_xml: str | None
    _array: Any
    _axis_map: AxisMap

    @property
    def missing_pixel_sizes(self) -> tuple[str, ...]:
        return tuple(a for a in self.dims if a != "c" and a not in self.pixel_sizes)

    def read(self, region: tuple[slice, ...]) -> np.ndarray:
        """Pixels of ``region``; only the chunks (or shards) it touches are read."""
        bounds = normalise_region(region, self.shape, self.path)
        try:
            out = self._axis_map.read(self._array, bounds)
        except MemoryError:
            raise
        except Exception as exc:
            raise InvalidImage(
                self.path,
                f"cannot read the pixel data: {type(exc).__name__}: {exc}",
                hint="a chunk is missing or damaged; copy the OME-Zarr again",
            ) from exc
        return np.ascontiguousarray(out, dtype=self.dtype)

    def check(self) -> None:
        """Read every pixel of level 0 once; :class:`InvalidImage` if a chunk fails."""
        read_all(self)


def looks_like_zarr(path: Path) -> bool:
    """True if ``path`` is a directory holding Zarr metadata (v2 or v3)."""
    return path.is_dir() and any(
        (path / f).is_file() for f in ("zarr.json", ".zattrs", ".zgroup", ".zarray")
    )


def _load_json(path: Path, file: Path) -> dict[str, Any]:
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise InvalidImage(
            path, f"{file.name} is not valid JSON: {exc}", hint="the Zarr metadata is damaged"
        ) from exc
    if not isinstance(data, dict):
        raise InvalidImage(path, f"{file.name} is not a JSON object", hint=_SPEC_HINT)
    return data


def _ome_attrs(path: Path) -> tuple[dict[str, Any], int]:
    """The OME attributes of the group at ``path`` and its Zarr format."""
    if (path / "zarr.json").is_file():
        meta = _load_json(path, path / "zarr.json")
        if meta.get("node_type") == "array":
            raise InvalidImage(
                path,
                "is a bare Zarr array, not an OME-Zarr image (no multiscales metadata)",
                hint="open the OME-Zarr group that contains it, or convert the data to OME-TIFF",
            )
        attrs = meta.get("attributes") or {}
        ome = attrs.get("ome")
        if not isinstance(ome, dict):
            if "multiscales" in attrs:
                raise InvalidImage(
                    path,
                    "has NGFF multiscales metadata outside the 'ome' key in a Zarr v3 group",
                    hint="NGFF 0.5 keeps it under attributes.ome; " + _SPEC_HINT,
                )
            raise InvalidImage(
                path, "is a Zarr group without OME-Zarr (NGFF) metadata", hint=_SPEC_HINT
            )
        return ome, 3
    if (path / ".zarray").is_file():
        raise InvalidImage(
            path,
            "is a bare Zarr array, not an OME-Zarr image (no multiscales metadata)",
            hint="open the OME-Zarr group that contains it, or convert the data to OME-TIFF",
        )
    attrs = _load_json(path, path / ".zattrs") if (path / ".zattrs").is_file() else {}
    if not attrs:
        raise InvalidImage(
            path, "is a Zarr group without OME-Zarr (NGFF) metadata", hint=_SPEC_HINT
        )
    return attrs, 2


def _validation_detail(exc: Exception) -> str:
    errors = getattr(exc, "errors", None)
    if callable(errors):
        try:
            items = errors()
            return "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or '(top level)'}: {e['msg']}"
                for e in items[:5]
            ) + (f" (and {len(items) - 5} more)" if len(items) > 5 else "")
        except Exception:
            pass
    return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"


def _validate(path: Path, version: str, zarr_format: int) -> Any:
    """The zarr group, after validating its NGFF metadata with ome-zarr-models."""
    import zarr

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            group = zarr.open_group(path, mode="r", zarr_format=zarr_format)  # type: ignore[arg-type]
    except Exception as exc:
        raise InvalidImage(
            path, f"cannot be opened as a Zarr group: {exc}", hint="the Zarr metadata is damaged"
        ) from exc
    if version == "0.5":
        from ome_zarr_models.v05.image import Image
    else:
        from ome_zarr_models.v04.image import Image  # type: ignore[assignment]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            Image.from_zarr(group)
    except Exception as exc:
        raise InvalidImage(
            path,
            f"its OME-Zarr (NGFF {version}) metadata is not valid: {_validation_detail(exc)}",
            hint=_SPEC_HINT,
        ) from exc
    return group


def _scales(ms: Mapping[str, Any], ds: Mapping[str, Any], ndim: int) -> list[float]:
    scale = [1.0] * ndim
    for transforms in (ds.get("coordinateTransformations") or [],
                       ms.get("coordinateTransformations") or []):  # fmt: skip
        for t in transforms:
            if t.get("type") == "scale" and isinstance(t.get("scale"), list):
                scale = [a * float(b) for a, b in zip(scale, t["scale"], strict=True)]
    return scale


def _origin(ms: Mapping[str, Any], ds: Mapping[str, Any], ndim: int) -> list[float]:
    """Physical position of the first pixel of the full-resolution level: the dataset's
    then the multiscale's transformations applied in order (scale, then translation)."""
    origin = [0.0] * ndim
    for transforms in (ds.get("coordinateTransformations") or [],
                       ms.get("coordinateTransformations") or []):  # fmt: skip
        for t in transforms:
            if t.get("type") == "scale" and isinstance(t.get("scale"), list):
                origin = [a * float(b) for a, b in zip(origin, t["scale"], strict=True)]
            elif t.get("type") == "translation" and isinstance(t.get("translation"), list):
                origin = [a + float(b) for a, b in zip(origin, t["translation"], strict=True)]
    return origin


def _plan(path: Path, axes: list[Mapping[str, Any]], shape: tuple[int, ...]) -> list[str | None]:
    plan: list[str | None] = []
    names = [str(a.get("name", "")).lower() for a in axes]
    for a, low, n in zip(axes, names, shape, strict=True):
        dim = low if low in AXES else _TYPE_DIM.get(str(a.get("type")))
        if dim is not None and dim not in plan and (dim == low or dim not in names):
            plan.append(dim)
        elif n == 1:
            plan.append(None)
        else:
            raise InvalidImage(
                path,
                f"has an axis {a.get('name')!r} (type {a.get('type')!r}, length {n}) that "
                "cannot be stored: images hold t, c, z, y and x only",
                hint="name the axes t, c, z, y, x (NGFF convention), or split the image "
                "along the extra axis",
            )
    if "y" not in plan or "x" not in plan:
        raise InvalidImage(
            path, f"has no axes named y and x (axes {names})", hint="name the axes t, c, z, y, x"
        )
    return plan


_OMERO_HINT = (
    "fix the omero metadata (https://ngff.openmicroscopy.org/0.5/#omero-md): colours are "
    '"RRGGBB" hex strings, window start/end numbers, labels strings; or remove the omero '
    "block (nanorepo then chooses colours and contrast); nothing was deposited"
)


def _omero_problem(path: Path, field: str, value: Any, want: str) -> InvalidImage:
    return InvalidImage(
        path,
        f"its omero metadata is not valid: {field} is {str(value)[:80]!r} "
        f"({type(value).__name__}), not {want}",
        hint=_OMERO_HINT,
    )


def _channels(path: Path, omero: Any, count: int) -> tuple[Channel, ...]:
    """Channels from NGFF ``omero`` rendering metadata.

    Policy (docs/formats.md): invalid values are refused naming the field, never
    silently replaced: a colour that is not ``RRGGBB`` hex text, a window bound that is
    not a number, a label that is not text. Absent values get nanorepo's defaults.
    """
    if omero is None:
        return fit_channels([], count)
    if not isinstance(omero, dict):
        raise _omero_problem(path, "omero", omero, "an object")
    items = omero.get("channels", [])
    if not isinstance(items, list):
        raise _omero_problem(path, "omero.channels", items, "a list")
    out: list[Channel] = []
    for i, ch in enumerate(items):
        where = f"omero.channels[{i}]"
        if not isinstance(ch, dict):
            raise _omero_problem(path, where, ch, "an object")
        raw = ch.get("color")
        if raw is not None and not (
            isinstance(raw, str)
            and len(raw.lstrip("#")) == 6
            and all(c in "0123456789ABCDEFabcdef" for c in raw.lstrip("#"))
        ):
            raise _omero_problem(path, f"{where}.color", raw, 'a "RRGGBB" hex string')
        color = raw.lstrip("#").upper() if raw else channel_color(None, i, count)
        label = ch.get("label")
        if label is not None and not isinstance(label, str):
            raise _omero_problem(path, f"{where}.label", label, "text")
        window = ch.get("window")
        if window is not None and not isinstance(window, dict):
            raise _omero_problem(path, f"{where}.window", window, "an object")
        win = None
        if window:
            for key in ("start", "end", "min", "max"):
                v = window.get(key)
                if v is not None and (isinstance(v, bool) or not isinstance(v, int | float)):
                    raise _omero_problem(path, f"{where}.window.{key}", v, "a number")
            start, end = window.get("start"), window.get("end")
            if start is not None and end is not None and end > start:
                win = (float(start), float(end))
        out.append(Channel(name=label or f"channel {i}", color=color, window=win))
    return fit_channels(out, count)


def _open_image(
    path: Path, name: str, *, ome_xml: str | None = None, ome_index: int = 0, root: Path
) -> ZarrSource:
    attrs, zarr_format = _ome_attrs(path)
    if "plate" in attrs or "well" in attrs:
        raise InvalidImage(
            path,
            "is an OME-Zarr plate/well (HCS) collection, not a single image",
            hint="deposit the images of the wells (e.g. plate.zarr/A/1/0) one by one",
        )
    multiscales = attrs.get("multiscales")
    if not isinstance(multiscales, list) or not multiscales:
        raise InvalidImage(
            path, "has no OME-Zarr multiscales metadata (not an NGFF image)", hint=_SPEC_HINT
        )
    ms = multiscales[0] if isinstance(multiscales[0], dict) else {}
    version = str(attrs.get("version") or ms.get("version") or "")
    if zarr_format == 3 and version != "0.5":
        raise InvalidImage(
            path,
            f"declares NGFF version {version or '(none)'} on Zarr v3; only 0.5 is defined there",
            hint=_SPEC_HINT,
        )
    if zarr_format == 2 and version != "0.4":
        raise InvalidImage(
            path,
            f"is NGFF {version or '(unknown version)'}; nanorepo reads NGFF 0.4 and 0.5",
            hint="convert it to NGFF 0.4 or 0.5 with ome-zarr-py or ngff-zarr, or to OME-TIFF",
        )
    group = _validate(path, version, zarr_format)
    axes = ms["axes"]
    ds = ms["datasets"][0]
    array = group[ds["path"]]
    shape = tuple(int(n) for n in array.shape)
    plan = _plan(path, axes, shape)
    amap = AxisMap(plan, shape)
    scale = _scales(ms, ds, len(shape))
    sizes: dict[str, float] = {}
    for dim, axis, step in zip(plan, axes, scale, strict=True):
        if dim in (None, "c"):
            continue
        unit = axis.get("unit")
        value = time_to_s(step, unit) if dim == "t" else length_to_nm(step, unit)
        if value is not None and value > 0 and math.isfinite(value):
            sizes[dim] = value
    n_c = amap.shape[amap.dims.index("c")] if "c" in amap.dims else 1
    channels = _channels(path, attrs.get("omero"), n_c)
    acquisition: dict[str, Any] = {}
    # The stage position (NGFF translation), in nm (t in s), kept in the sealed metadata.
    translation: dict[str, float] = {}
    for dim, axis, offset in zip(plan, axes, _origin(ms, ds, len(shape)), strict=True):
        if dim in (None, "c") or offset == 0:
            continue
        unit = axis.get("unit")
        value = time_to_s(offset, unit) if dim == "t" else length_to_nm(offset, unit)
        if value is not None and math.isfinite(value):
            translation[dim] = value
    key_values: dict[str, str] = {}
    if ome_xml is not None:
        facts = harvest_ome(parse_ome_xml(ome_xml, root), ome_index, root)
        acquisition, key_values = dict(facts.acquisition), dict(facts.key_values)
        if all(c.name.startswith("channel ") for c in channels) and len(facts.channels) == n_c:
            channels = facts.channels
        for axis, value in facts.pixel_sizes.items():
            if axis in amap.dims:
                sizes.setdefault(axis, value)
    if translation:
        acquisition["translation"] = translation
    return ZarrSource(
        path=path,
        name=name,
        dims=amap.dims,
        shape=amap.shape,
        dtype=np.dtype(array.dtype).newbyteorder("="),
        pixel_sizes=sizes,
        channels=channels,
        acquisition=acquisition,
        key_values=key_values,
        origin=(str(root),),
        ngff_version=version,
        ome_xml=ome_xml,
        _array=array,
        _axis_map=amap,
    )


def _bioformats2raw(path: Path) -> tuple[list[Path], str | None] | None:
    """Image groups and OME-XML of a bioformats2raw layout, or ``None`` if it is not one."""
    attrs, _fmt = _ome_attrs(path)
    if "bioformats2raw.layout" not in attrs:
        return None
    xml_file = path / "OME" / "METADATA.ome.xml"
    xml = xml_file.read_text(encoding="utf-8") if xml_file.is_file() else None
    images = []
    i = 0
    while (path / str(i)).is_dir():
        images.append(path / str(i))
        i += 1
    if not images:
        raise InvalidImage(
            path, "is a bioformats2raw layout without images (no group '0')", hint=_SPEC_HINT
        )
    return images, xml


def open_ome_zarr(path: str | Path, *, name: str | None = None) -> ZarrSource:
    """Open an OME-Zarr image (NGFF 0.4 or 0.5), validating its metadata first.

    Parameters
    ----------
    path:
        The image group (the directory holding ``zarr.json`` or ``.zattrs``), or the root of
        a bioformats2raw layout (its first image is opened).
    name:
        Image name; defaults to the directory name without ``.ome.zarr``.

    Raises
    ------
    InvalidImage
        Not an OME-Zarr image, metadata that violates the NGFF specification (as reported
        by ome-zarr-models), axes nanorepo cannot store.
    """
    path = Path(path)
    name = name or source_name(path)
    layout = _bioformats2raw(path) if looks_like_zarr(path) else None
    if layout is not None:
        images, xml = layout
        return _open_image(images[0], name, ome_xml=xml, root=path)
    if not looks_like_zarr(path):
        raise InvalidImage(path, "is not a Zarr group (no zarr.json or .zattrs)", hint=_SPEC_HINT)
    return _open_image(path, name, root=path)


def open_zarr_series(path: str | Path, *, name: str | None = None) -> list[ZarrSource]:
    """Every image of an OME-Zarr: one for an image group, one per series of bioformats2raw."""
    path = Path(path)
    base = name or source_name(path)
    layout = _bioformats2raw(path) if looks_like_zarr(path) else None
    if layout is None:
        return [open_ome_zarr(path, name=name)]
    images, xml = layout
    if len(images) == 1:
        return [_open_image(images[0], base, ome_xml=xml, root=path)]
    return [
        _open_image(p, f"{base}_s{i}", ome_xml=xml, ome_index=i, root=path)
        for i, p in enumerate(images)
    ]
