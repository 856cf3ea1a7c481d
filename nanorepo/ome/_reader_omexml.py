"""Harvest pixel sizes, channels and REMBI acquisition facts from OME-XML.

OME-XML is parsed with ome-types because it turns the schema into typed models (units as
enums, colours as RGBA, references as ids) and validates against the OME schema, so a
malformed or invalid document is rejected with the element and the reason instead of being
half-read. Everything harvested here is converted to nanorepo's conventions: lengths in
nanometres, times in seconds, colours as ``RRGGBB``, plain JSON values with the unit in the
key name (``emission_wavelength_nm``).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

from nanorepo.errors import InvalidImage
from nanorepo.ome._reader_common import channel_color, json_clean
from nanorepo.ome._reader_units import length_to_nm, power_to_mw, time_to_s
from nanorepo.ome._source import Channel

__all__ = [
    "OmeFacts",
    "harvest_ome",
    "image_of_series",
    "parse_ome_xml",
    "schema_problems",
    "technique_of",
]

#: OME ``Channel/@AcquisitionMode`` → nanorepo technique. Values not listed are kept raw.
_TECHNIQUE: dict[str, str] = {
    "STED": "STED",
    "StructuredIllumination": "SIM",
    "SIM": "SIM",
    "PALM": "SMLM",
    "STORM": "SMLM",
    "FPALM": "SMLM",
    "SingleMoleculeImaging": "SMLM",
    "LaserScanningConfocalMicroscopy": "confocal",
    "SpinningDiskConfocal": "confocal",
    "SlitScanConfocal": "confocal",
    "SweptFieldConfocal": "confocal",
    "WideField": "widefield",
}
# When channels of one image disagree (a STED channel and its confocal reference), the image
# is reported under the most resolving technique.
_RANK = ("STED", "SMLM", "SIM", "confocal", "widefield")

_INVALID_HINT = (
    "the OME-XML in the first page's ImageDescription must follow the OME schema; export the "
    "file again from the instrument software or with Bio-Formats (bfconvert), or correct the XML"
)


@dataclass(frozen=True)
class OmeFacts:
    """What one OME ``Image`` says about itself, in nanorepo units.

    Attributes
    ----------
    sizes:
        ``SizeT``, ``SizeC``, ``SizeZ``, ``SizeY``, ``SizeX`` keyed ``t, c, z, y, x``.
    pixel_sizes:
        ``z, y, x`` in nm and ``t`` in s, only those the XML states with a physical unit.
    channels:
        One per channel index (RGB channels expand to three).
    acquisition:
        REMBI image-acquisition facts, JSON-able.
    key_values:
        Key/value pairs of the ``MapAnnotation`` s linked to the image (condition, cell
        line ...), as strings.
    """

    name: str | None
    sizes: dict[str, int]
    pixel_sizes: dict[str, float]
    channels: tuple[Channel, ...]
    acquisition: dict[str, Any] = field(default_factory=dict)
    key_values: dict[str, str] = field(default_factory=dict)


def parse_ome_xml(xml: str | bytes, path: str | Path) -> Any:
    """Parse and validate OME-XML with ome-types; an :class:`InvalidImage` if it is not valid."""
    import ome_types

    if isinstance(xml, bytes):
        xml = xml.decode("utf-8", errors="replace")
    try:  # well-formed at all? Said in our words, with the place (ome-types' vary by parser)
        ElementTree.fromstring(xml)
    except ElementTree.ParseError as exc:
        line, column = exc.position
        raise InvalidImage(
            path,
            f"its OME-XML is not well-formed XML (line {line}, column {column + 1})",
            hint=_INVALID_HINT,
        ) from exc
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            return ome_types.from_xml(xml)
        except Exception as exc:  # ParseError, pydantic.ValidationError, xsdata errors ...
            reasons = [str(w.message).splitlines()[0] for w in caught]
            detail = "; ".join(reasons) or str(exc).splitlines()[0]
            if hasattr(exc, "errors"):  # pydantic: say which field
                try:
                    errs = exc.errors()
                    detail = "; ".join(
                        f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in errs[:5]
                    )
                except Exception:
                    pass
            raise InvalidImage(
                path, f"its OME-XML is not valid: {detail}", hint=_INVALID_HINT
            ) from exc


def schema_problems(xml: str) -> list[str]:
    """What the OME XML schema finds wrong with ``xml``: up to 5 lines, ``[]`` if valid.

    Policy (docs/formats.md): OME-XML that parses and agrees with the pixel data but
    breaks the schema (an attribute the schema does not know, elements out of order, as
    some acquisition software writes) is **deposited with the problems recorded** in the
    image's sealed acquisition metadata as ``ome_xml_schema_problems``, never silently
    and never refused for it alone: the values nanorepo harvests were read and checked
    against the pages. XML that cannot be read at all is refused by
    :func:`parse_ome_xml`. Validation is lxml against the schema ome-types ships
    (about 5 ms a document, once per file).
    """
    from ome_types import validate_xml

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # older schema versions: converted, said here below
        try:
            validate_xml(xml)
        except Exception as exc:
            lines = [ln.strip().removeprefix("- ") for ln in str(exc).splitlines()[1:]]
            found = [ln[:300] for ln in lines if ln]
            return found[:5] or [str(exc).splitlines()[0][:300]]
    return []


def technique_of(modes: Sequence[str]) -> str | None:
    """The technique of an image from its channels' acquisition modes."""
    mapped = [_TECHNIQUE.get(m, m) for m in modes if m]
    if not mapped:
        return None
    for t in _RANK:
        if t in mapped:
            return t
    return mapped[0]


def _value(x: Any) -> Any:
    """Enum → its value, everything else unchanged."""
    return getattr(x, "value", x)


def _hex(color: Any) -> str | None:
    if color is None:
        return None
    r, g, b = color.as_rgb_tuple(alpha=False)
    return f"{r:02X}{g:02X}{b:02X}"


def _find(items: Sequence[Any], ref: Any) -> Any:
    rid = getattr(ref, "id", None)
    for it in items:
        if rid is not None and it.id == rid:
            return it
    return None


def _time_step(pixels: Any) -> float | None:
    if pixels.time_increment is not None:
        return time_to_s(pixels.time_increment, pixels.time_increment_unit)
    # Fall back to the DeltaT of the first plane at t=0 and t=1 (same c and z).
    times: dict[int, float] = {}
    for plane in pixels.planes:
        if plane.the_c == 0 and plane.the_z == 0 and plane.delta_t is not None:
            s = time_to_s(plane.delta_t, plane.delta_t_unit)
            if s is not None:
                times[plane.the_t] = s
    if 0 in times and 1 in times and times[1] > times[0]:
        return times[1] - times[0]
    return None


def _instrument(ome: Any, image: Any) -> Any:
    if image.instrument_ref is not None:
        found = _find(ome.instruments, image.instrument_ref)
        if found is not None:
            return found
    return ome.instruments[0] if len(ome.instruments) == 1 else None


def _objective(instrument: Any, image: Any) -> dict[str, Any] | None:
    if instrument is None:
        return None
    settings = image.objective_settings
    obj = _find(instrument.objectives, settings) if settings is not None else None
    if obj is None and len(instrument.objectives) == 1:
        obj = instrument.objectives[0]
    if obj is None:
        return None
    out = {
        "manufacturer": obj.manufacturer,
        "model": obj.model,
        "numerical_aperture": obj.lens_na,
        "nominal_magnification": obj.nominal_magnification,
        "calibrated_magnification": obj.calibrated_magnification,
        "immersion": _value(obj.immersion),
        "correction": _value(obj.correction),
        "working_distance_nm": length_to_nm(obj.working_distance, obj.working_distance_unit),
    }
    if settings is not None:
        out["refractive_index"] = settings.refractive_index
        out["medium"] = _value(settings.medium)
    return out


def _light_source(src: Any, kind: str) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": src.id,
        "kind": kind,
        "manufacturer": src.manufacturer,
        "model": src.model,
        "power_mw": power_to_mw(src.power, src.power_unit),
    }
    if kind == "laser":
        out.update(
            type=_value(src.type),
            laser_medium=_value(src.laser_medium),
            wavelength_nm=length_to_nm(src.wavelength, src.wavelength_unit),
            pulse=_value(src.pulse),
        )
    return out


def _light_sources(instrument: Any) -> list[dict[str, Any]]:
    if instrument is None:
        return []
    out = [_light_source(x, "laser") for x in instrument.lasers]
    out += [_light_source(x, "LED") for x in instrument.light_emitting_diodes]
    out += [_light_source(x, "arc") for x in instrument.arcs]
    out += [_light_source(x, "filament") for x in instrument.filaments]
    out += [_light_source(x, "generic") for x in instrument.generic_excitation_sources]
    return out


def _detectors(instrument: Any) -> list[dict[str, Any]]:
    if instrument is None:
        return []
    return [
        {
            "id": d.id,
            "manufacturer": d.manufacturer,
            "model": d.model,
            "type": _value(d.type),
            "gain": d.gain,
            "zoom": d.zoom,
        }
        for d in instrument.detectors
    ]


def _channels(pixels: Any, lasers: dict[str, float]) -> tuple[list[Channel], list[dict[str, Any]]]:
    """Channels for display and per-channel acquisition settings."""
    n = max(int(pixels.size_c), len(pixels.channels), 1)
    described = list(pixels.channels)
    spp = [max(int(c.samples_per_pixel or 1), 1) for c in described]
    out: list[Channel] = []
    settings: list[dict[str, Any]] = []
    for i, ch in enumerate(described):
        em = length_to_nm(ch.emission_wavelength, ch.emission_wavelength_unit)
        ex = length_to_nm(ch.excitation_wavelength, ch.excitation_wavelength_unit)
        ls = ch.light_source_settings
        if ex is None and ls is not None:
            ex = length_to_nm(ls.wavelength, ls.wavelength_unit) or lasers.get(ls.id)
        explicit = "color" in ch.model_fields_set
        name = ch.name or (ch.fluor or f"channel {len(out)}")
        if spp[i] == 3 and len(described) == 1:
            # One RGB channel: three display channels.
            out += [Channel(name=f"{name} {c}", color=col) for c, col in
                    (("R", "FF0000"), ("G", "00FF00"), ("B", "0000FF"))]  # fmt: skip
        else:
            for k in range(spp[i]):
                out.append(
                    Channel(
                        name=name if spp[i] == 1 else f"{name} {k}",
                        color=(_hex(ch.color) if explicit else None)
                        or channel_color(em, len(out), n),
                        emission_wavelength_nm=em,
                        excitation_wavelength_nm=ex,
                        fluorophore=ch.fluor,
                    )
                )
        ds = ch.detector_settings
        settings.append(
            {
                "name": name,
                "acquisition_mode": _value(ch.acquisition_mode),
                "illumination_type": _value(ch.illumination_type),
                "contrast_method": _value(ch.contrast_method),
                "fluorophore": ch.fluor,
                "emission_wavelength_nm": em,
                "excitation_wavelength_nm": ex,
                "pinhole_size_nm": length_to_nm(ch.pinhole_size, ch.pinhole_size_unit),
                "nd_filter": ch.nd_filter,
                "light_source_id": ls.id if ls is not None else None,
                "light_source_attenuation": ls.attenuation if ls is not None else None,
                "detector_id": ds.id if ds is not None else None,
                "detector_gain": ds.gain if ds is not None else None,
                "detector_binning": _value(ds.binning) if ds is not None else None,
            }
        )
    return out, settings


def image_of_series(ome: Any, file_name: str, ifd: int, position: int) -> int:
    """Which ``Image`` of a parsed OME document a TIFF series is: the one whose
    ``TiffData`` references the series' first plane (``ifd`` of the file ``file_name``).

    Matching by reference rather than by position matters when the OME-XML lists Images
    without pixel data (``MetadataOnly``, e.g. a slide's label or macro picture) before
    those with: tifffile makes no series of those, so the n-th series is not the n-th
    Image. A ``TiffData`` without ``UUID`` names this file; with one, its ``FileName``
    (or the document's own UUID) says which file. When no Image references the plane
    (OME-XML without ``TiffData``), the series is the ``position``-th Image that has
    pixel data.
    """
    own = str(getattr(ome, "uuid", "") or "")
    for i, image in enumerate(ome.images):
        for block in image.pixels.tiff_data_blocks:
            uuid = block.uuid
            in_file = (
                uuid is None
                or (uuid.file_name or "").lower() == file_name.lower()
                or (own and str(uuid.value) == own and not uuid.file_name)
            )
            count = block.plane_count or 1
            if in_file and block.ifd <= ifd < block.ifd + count:
                return i
    with_pixels = [i for i, im in enumerate(ome.images) if not im.pixels.metadata_only]
    return with_pixels[position] if position < len(with_pixels) else position


def harvest_ome(ome: Any, index: int, path: str | Path) -> OmeFacts:
    """Facts of image ``index`` of a parsed OME document (see :class:`OmeFacts`)."""
    if index >= len(ome.images):
        raise InvalidImage(
            path,
            f"its OME-XML describes {len(ome.images)} image(s), the file holds more series",
            hint="the OME-XML must describe every image (series) in the file; export it again "
            "with the instrument software or Bio-Formats",
        )
    image = ome.images[index]
    px = image.pixels
    sizes = {"t": px.size_t, "c": px.size_c, "z": px.size_z, "y": px.size_y, "x": px.size_x}
    pixel_sizes: dict[str, float] = {}
    for axis, value, unit in (
        ("z", px.physical_size_z, px.physical_size_z_unit),
        ("y", px.physical_size_y, px.physical_size_y_unit),
        ("x", px.physical_size_x, px.physical_size_x_unit),
    ):
        nm = length_to_nm(value, unit)
        if nm is not None and nm > 0:
            pixel_sizes[axis] = nm
    dt = _time_step(px)
    if dt is not None and dt > 0:
        pixel_sizes["t"] = dt

    instrument = _instrument(ome, image)
    lasers = {
        la.id: nm
        for la in (instrument.lasers if instrument is not None else [])
        if (nm := length_to_nm(la.wavelength, la.wavelength_unit)) is not None
    }
    channels, channel_settings = _channels(px, lasers)
    modes = [s["acquisition_mode"] for s in channel_settings if s.get("acquisition_mode")]
    microscope = instrument.microscope if instrument is not None else None
    acquisition = {
        "technique": technique_of(modes),
        "acquisition_mode": sorted(set(modes)) if len(set(modes)) > 1 else (modes or [None])[0],
        "acquisition_date": image.acquisition_date.isoformat() if image.acquisition_date else None,
        "image_name": image.name,
        "description": image.description,
        "microscope": {
            "manufacturer": microscope.manufacturer,
            "model": microscope.model,
            "serial_number": microscope.serial_number,
            "type": _value(microscope.type),
        }
        if microscope is not None
        else None,
        "objective": _objective(instrument, image),
        "detectors": _detectors(instrument),
        "light_sources": _light_sources(instrument),
        "channels": channel_settings
        if any(len(json_clean(c)) > 1 for c in channel_settings)
        else None,
        "software": ome.creator,
    }
    key_values: dict[str, str] = {}
    maps = {a.id: a for a in getattr(ome.structured_annotations, "map_annotations", [])}
    for ref in image.annotation_refs:
        ann = maps.get(ref.id)
        if ann is not None and ann.value is not None:
            for pair in ann.value.ms:
                if pair.k:
                    key_values[str(pair.k)] = str(pair.value or "")
    return OmeFacts(
        name=image.name,
        key_values=key_values,
        sizes=sizes,
        pixel_sizes=pixel_sizes,
        channels=tuple(channels),
        acquisition=json_clean(acquisition),
    )
