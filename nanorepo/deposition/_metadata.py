"""Deposit metadata: the depositor's file merged with what the instrument files say.

The immutable record is shaped after REMBI (Sarkans et al. 2021, "REMBI: Recommended
Metadata for Biological Images"): study, biosample, specimen, image acquisition, image
correlation, analysed data, plus one entry per image with the facts harvested from its
OME-XML. Administrative fields (title, description, keywords, licence, links) are
mutable and go to the catalog's revisioned metadata instead.

Every problem is collected before anything is written, and reported at once.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from nanorepo.errors import InvalidMetadata

__all__ = [
    "SCHEMA",
    "TECHNIQUES",
    "ImageFacts",
    "build_record",
    "load_metadata_file",
    "mutable_from_file",
    "normalise_technique",
    "parse_metadata",
]

SCHEMA = "nanorepo-rembi/1"

#: Imaging techniques nanorepo knows, keyed by lower-case spelling.
TECHNIQUES: dict[str, str] = {
    t.lower(): t
    for t in (
        "STED",
        "RESOLFT",
        "SIM",
        "SMLM",
        "PALM",
        "STORM",
        "DNA-PAINT",
        "MINFLUX",
        "ExM",
        "confocal",
        "widefield",
        "Airyscan",
        "light-sheet",
    )
}
_SECTIONS = {
    "study",
    "biosample",
    "specimen",
    "image_acquisition",
    "image_correlation",
    "analysed_data",
    "images",
}
_MUTABLE_STUDY_KEYS = ("description", "keywords", "license", "links")
_PIXEL_TOLERANCE = 0.01  # relative difference at which a stated pixel size contradicts the file


def normalise_technique(value: object) -> str | None:
    """Canonical spelling of a technique name, or ``None`` if unknown."""
    if not isinstance(value, str):
        return None
    return TECHNIQUES.get(value.strip().lower())


#: Default limits of a deposit metadata file (``Settings.metadata_*`` override them).
MAX_METADATA_BYTES = 1 << 20
MAX_FIELD_CHARS = 65_536
MAX_DEPTH = 32

#: Keys nanorepo reads, per section: a key one typo away from one of these is refused with
#: a "did you mean" (it would otherwise be sealed, unread, forever). Sections are otherwise
#: open (REMBI has many more fields), so other keys are kept as given.
_KNOWN_KEYS: dict[str, tuple[str, ...]] = {
    "study": ("title", "description", "authors", "keywords", "license", "links",
              "publication", "funding", "doi"),
    "biosample": ("organism", "ncbi_taxon", "cell_line", "tissue", "strain", "genotype",
                  "description"),
    "specimen": ("preparation", "labels", "fixation", "mounting", "description"),
    "image_acquisition": ("technique", "instrument", "pixel_size_nm", "objective",
                          "detector", "wavelength_nm", "description"),
}  # fmt: skip
#: Mappings whose keys are a closed set: any other key is refused.
_IMAGE_KEYS = ("technique", "pixel_sizes_nm", "channels", "key_values")
_AXES = ("t", "z", "y", "x")
_CHANNEL_KEYS = ("name", "color", "window", "excitation_nm", "emission_nm", "fluorophore",
                 "label", "description")  # fmt: skip


def _did_you_mean(key: str, known: tuple[str, ...]) -> str:
    import difflib

    close = difflib.get_close_matches(key, known, n=1, cutoff=0.75)
    return f"; did you mean {close[0]!r}?" if close else f" (known: {', '.join(known)})"


def _check_keys(data: Mapping[str, Any], problems: list[str]) -> None:
    """Misspelt keys: closed mappings refuse any unknown key; open sections refuse keys
    one typo away from a known one."""
    import difflib

    def closed(where: str, m: object, known: tuple[str, ...]) -> None:
        if isinstance(m, Mapping):
            for k in m:
                if k not in known:
                    problems.append(f"{where}.{k}: unknown key{_did_you_mean(str(k), known)}")

    for section, known in _KNOWN_KEYS.items():
        sec = data.get(section)
        if not isinstance(sec, Mapping):
            continue
        for k in sec:
            if k not in known and isinstance(k, str):
                close = difflib.get_close_matches(k, known, n=1, cutoff=0.8)
                if close:
                    problems.append(f"{section}.{k}: unknown key; did you mean {close[0]!r}?")
    acq = data.get("image_acquisition")
    if isinstance(acq, Mapping):
        closed("image_acquisition.pixel_size_nm", acq.get("pixel_size_nm"), _AXES)
    images = data.get("images")
    if isinstance(images, Mapping):
        for name, over in images.items():
            closed(f"images.{name}", over, _IMAGE_KEYS)
            if isinstance(over, Mapping):
                closed(f"images.{name}.pixel_sizes_nm", over.get("pixel_sizes_nm"), _AXES)
                for i, ch in enumerate(over.get("channels") or []):
                    closed(f"images.{name}.channels[{i}]", ch, _CHANNEL_KEYS)


def _check_values(
    data: Any,
    problems: list[str],
    *,
    max_chars: int,
    max_depth: int,
    where: str = "",
    depth: int = 0,
) -> None:
    """NUL characters, over-long strings (keys and values) and nesting deeper than
    ``max_depth``, each named by where it is."""
    if depth > max_depth:
        problems.append(f"{where or 'the file'}: nested deeper than {max_depth} levels")
        return
    items: Any = ()
    if isinstance(data, Mapping):
        items = data.items()
    elif isinstance(data, list):
        items = ((f"[{i}]", v) for i, v in enumerate(data))
    elif isinstance(data, str):
        if "\x00" in data:
            problems.append(f"{where}: contains a NUL character; remove it")
        if len(data) > max_chars:
            problems.append(
                f"{where}: {len(data):,} characters, more than the {max_chars:,} a metadata "
                "field may hold; put long texts in a supporting file"
            )
        return
    for k, v in items:
        key = str(k)
        sub = f"{where}{key}" if key.startswith("[") else f"{where}.{key}" if where else key
        if "\x00" in key or len(key) > 256:
            problems.append(f"{sub[:300]!r}: a key must be at most 256 characters without NUL")
            continue
        _check_values(v, problems, max_chars=max_chars, max_depth=max_depth, where=sub,
                      depth=depth + 1)  # fmt: skip
        if len(problems) > 50:
            return


def parse_metadata(
    data: bytes,
    *,
    source: str,
    json_format: bool = False,
    max_chars: int = MAX_FIELD_CHARS,
    max_depth: int = MAX_DEPTH,
    max_bytes: int = MAX_METADATA_BYTES,
) -> dict[str, Any]:
    """Parse and check the bytes of a deposit metadata file (YAML, or JSON).

    Refuses, all problems at once: files over ``max_bytes``, nesting deeper than
    ``max_depth``, strings over ``max_chars`` characters, NUL characters, unknown sections
    and misspelt keys ("did you mean"). Sealed metadata can never be fixed in place, so
    what cannot be right is refused before it is sealed.
    """
    fmt = "JSON" if json_format else "YAML"
    if len(data) > max_bytes:
        raise InvalidMetadata(
            [f"the file is larger than {max_bytes:,} bytes"],
            source=source,
            hint="keep long texts and tables in supporting files",
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidMetadata([f"cannot read the file: {exc}"], source=source) from exc
    if "\x00" in text:
        raise InvalidMetadata(["the file contains a NUL character; remove it"], source=source)
    try:
        parsed = json.loads(text) if json_format else yaml.safe_load(text)
    except RecursionError:
        raise InvalidMetadata([f"nested deeper than {max_depth} levels"], source=source) from None
    except (ValueError, yaml.YAMLError) as exc:
        raise InvalidMetadata([f"not valid {fmt}: {exc}"], source=source) from exc
    if not isinstance(parsed, dict):
        raise InvalidMetadata(
            ["the top level must be a mapping with sections " + ", ".join(sorted(_SECTIONS))],
            source=source,
        )
    problems: list[str] = []
    _check_values(parsed, problems, max_chars=max_chars, max_depth=max_depth)
    if problems:
        raise InvalidMetadata(problems, source=source)
    unknown = sorted(set(parsed) - _SECTIONS, key=str)
    for k in unknown:
        problems.append(f"unknown section {k!r}{_did_you_mean(str(k), tuple(sorted(_SECTIONS)))}")
    for key in _SECTIONS - {"analysed_data"}:
        if key in parsed and parsed[key] is not None and not isinstance(parsed[key], dict):
            problems.append(f"section {key!r} must be a mapping")
    _check_keys(parsed, problems)
    if problems:
        raise InvalidMetadata(problems, source=source)
    return parsed


def load_metadata_file(path: Path, **limits: int) -> dict[str, Any]:
    """Read a deposit metadata file (YAML or JSON); a clear error if it is not one.

    ``limits`` are :func:`parse_metadata`'s ``max_chars``, ``max_depth``, ``max_bytes``.
    """
    max_bytes = limits.get("max_bytes", MAX_METADATA_BYTES)
    try:
        with open(path, "rb") as f:
            data = f.read(max_bytes + 1)
    except OSError as exc:
        raise InvalidMetadata([f"cannot read the file: {exc}"], source=str(path)) from exc
    return parse_metadata(
        data, source=str(path), json_format=path.suffix.lower() == ".json", **limits
    )


def mutable_from_file(meta: Mapping[str, Any]) -> dict[str, Any]:
    """The administrative fields of the study section (they become mutable metadata)."""
    study = meta.get("study") or {}
    out: dict[str, Any] = {}
    for k in _MUTABLE_STUDY_KEYS:
        if study.get(k) not in (None, "", []):
            out[k] = study[k]
    return out


class ImageFacts(dict[str, Any]):
    """Harvested facts of one image: name, dims, shape, pixel_sizes, channels, acquisition."""


def _close(a: float, b: float) -> bool:
    return abs(a - b) <= _PIXEL_TOLERANCE * max(abs(a), abs(b))


def build_record(
    meta: Mapping[str, Any],
    images: list[ImageFacts],
    *,
    tables: list[dict[str, Any]] | None = None,
    source: str | None = None,
    require_license: bool = True,
) -> tuple[dict[str, Any], dict[str, ImageFacts]]:
    """Merge the depositor's metadata with harvested image facts into the sealed record.

    Returns the immutable record and the per-image facts after overrides (pixel sizes,
    technique and key/values stated in the file fill what the instrument file lacks).
    Raises :class:`InvalidMetadata` listing every missing field and every contradiction.
    """
    problems: list[str] = []
    study = dict(meta.get("study") or {})
    for k in (*_MUTABLE_STUDY_KEYS, "title"):
        study.pop(k, None)
    biosample = dict(meta.get("biosample") or {})
    specimen = dict(meta.get("specimen") or {})
    acq_file = dict(meta.get("image_acquisition") or {})
    per_image: Mapping[str, Any] = meta.get("images") or {}

    if require_license and not (meta.get("study") or {}).get("license"):
        problems.append("study.license is required (e.g. CC-BY-4.0 or CC0-1.0)")
    if not biosample.get("organism"):
        problems.append("biosample.organism is required (e.g. 'Homo sapiens')")
    file_technique = None
    if acq_file.get("technique") is not None:
        file_technique = normalise_technique(acq_file["technique"])
        if file_technique is None:
            problems.append(
                f"image_acquisition.technique {acq_file['technique']!r} is not known "
                f"(known: {', '.join(sorted(TECHNIQUES.values()))})"
            )
        else:
            acq_file["technique"] = file_technique

    names = {im["name"] for im in images}
    table_names = {t["name"] for t in tables or []}
    for key in per_image:
        if key not in names and key not in table_names:
            origin_match = [im["name"] for im in images if key in im.get("origin_names", ())]
            if not origin_match:
                problems.append(
                    f"images.{key}: no deposited image or table of that name "
                    f"(images: {', '.join(sorted(names | table_names)) or 'none'})"
                )

    merged: dict[str, ImageFacts] = {}
    for im in images:
        name = im["name"]
        over = dict(per_image.get(name) or {})
        for alias in im.get("origin_names", ()):
            over = {**dict(per_image.get(alias) or {}), **over}
        facts = ImageFacts(im)
        acq = dict(im.get("acquisition") or {})
        harvested_t = normalise_technique(acq.get("technique")) if acq.get("technique") else None
        stated_t = normalise_technique(over.get("technique")) or file_technique
        if harvested_t and stated_t and harvested_t != stated_t:
            problems.append(
                f"image {name}: the file says technique {harvested_t}, the metadata says {stated_t}"
            )
        technique = harvested_t or stated_t
        if technique is None:
            problems.append(
                f"image {name}: imaging technique unknown; set image_acquisition.technique "
                "(or images.<name>.technique)"
            )
        acq = {**{k: v for k, v in acq_file.items() if v is not None}, **acq}
        if technique:
            acq["technique"] = technique
        facts["acquisition"] = acq

        sizes = dict(im.get("pixel_sizes") or {})
        stated = dict(over.get("pixel_sizes_nm") or {})
        if not stated and acq_file.get("pixel_size_nm"):
            stated = dict(acq_file["pixel_size_nm"])
        for axis, value in stated.items():
            if axis not in im["dims"] or axis == "c":
                problems.append(
                    f"image {name}: pixel size given for axis {axis!r} it does not have"
                )
                continue
            try:
                value = float(value)
            except (TypeError, ValueError):
                problems.append(f"image {name}: pixel size {axis}={value!r} is not a number")
                continue
            if value <= 0:
                problems.append(f"image {name}: pixel size {axis}={value} must be positive")
            elif axis in sizes and not _close(sizes[axis], value):
                problems.append(
                    f"image {name}: metadata says {axis} pixel size {value} nm, "
                    f"the image file says {sizes[axis]:g} nm"
                )
            else:
                sizes[axis] = value
        for axis in ("y", "x"):
            if axis not in sizes:
                problems.append(
                    f"image {name}: {axis} pixel size unknown; add images.{name}.pixel_sizes_nm "
                    "to the metadata file"
                )
        if "z" in im["dims"] and "z" not in sizes and im["shape"][im["dims"].index("z")] > 1:
            problems.append(f"image {name}: z step unknown; add images.{name}.pixel_sizes_nm.z")
        facts["pixel_sizes"] = sizes

        n_c = im["shape"][im["dims"].index("c")] if "c" in im["dims"] else 1
        channels = [dict(c) for c in im.get("channels") or []]
        if over.get("channels") is not None:
            given = over["channels"]
            if not isinstance(given, list) or len(given) != n_c:
                problems.append(
                    f"image {name}: metadata lists {len(given) if isinstance(given, list) else '?'} "
                    f"channels, the image has {n_c}"
                )
            else:
                for ch, g in zip(channels, given, strict=False):
                    ch.update(g if isinstance(g, dict) else {"name": str(g)})
        facts["channels"] = channels
        kv = over.get("key_values") or {}
        if not isinstance(kv, dict):
            problems.append(f"images.{name}.key_values must be a mapping of text to text")
            kv = {}
        facts["key_values"] = {
            **dict(im.get("key_values") or {}),
            **{str(k): str(v) for k, v in kv.items()},
        }
        for k, v in facts["key_values"].items():
            # A NUL cannot be stored as text (PostgreSQL refuses it) nor filtered on; it is
            # usually C-string padding that instrument software left in a TIFF tag.
            if "\x00" in k:
                problems.append(
                    f"image {name}: a key/value key {k[:60]!r} contains a NUL character; "
                    "fix the file's metadata (a NUL usually is padding left by the software)"
                )
            elif "\x00" in v:
                problems.append(
                    f"image {name}: key/value {k[:60]!r} = {v[:60]!r} contains a NUL character; "
                    f"give its value in images.{name}.key_values of the metadata file"
                )
        merged[name] = facts

    if problems:
        raise InvalidMetadata(problems, source=source)

    record: dict[str, Any] = {
        "schema": SCHEMA,
        "study": study,
        "biosample": biosample,
        "specimen": specimen,
        "image_acquisition": acq_file,
        "image_correlation": meta.get("image_correlation"),
        "analysed_data": meta.get("analysed_data") or [],
        "images": {
            n: {
                "dims": list(f["dims"]),
                "shape": list(f["shape"]),
                "dtype": f["dtype"],
                "pixel_sizes": f["pixel_sizes"],
                "channels": f["channels"],
                "acquisition": f["acquisition"],
                "key_values": f["key_values"],
                "origin": [Path(o).name for o in f.get("origin", ())],
            }
            for n, f in sorted(merged.items())
        },
        "localisation_tables": {t["name"]: t["summary"] for t in tables or []},
    }
    return record, merged
