"""SMLM localisation tables: read common exports, normalise them, store them as Parquet.

Single-molecule localisation microscopy (PALM, STORM, DNA-PAINT) produces tables of
localisations rather than images. Analysis programs export them with their own column
names and units (ThunderSTORM ``"x [nm]"``, SMAP ``xnm``, DECODE ``frame_ix``, plain
``x_nm``). This module reads CSV/TSV with pyarrow's multithreaded CSV reader (orders of
magnitude faster than parsing in Python, and it infers numeric types) and Parquet with
pyarrow, then renames and converts the columns to one canonical set in nanometres
(``x_nm, y_nm, z_nm, frame, photons, sigma_nm, uncertainty_nm, background_photons, ...``),
so every table in the repository can be read and compared the same way. Columns it does not
know are kept, with a cleaned name.

Coordinates in pixels are refused unless the pixel size is given: a guessed pixel size
would silently scale every structure in the data.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from nanorepo.errors import InvalidInput

__all__ = [
    "CANONICAL_COLUMNS",
    "LocalisationTable",
    "is_localisation_table",
    "read_localisations",
    "unread_localisation_format",
]

#: Canonical columns (in this order, when present) and their units.
CANONICAL_COLUMNS: dict[str, str | None] = {
    "x_nm": "nm",
    "y_nm": "nm",
    "z_nm": "nm",
    "frame": "frame",
    "photons": "photon",
    "sigma_nm": "nm",
    "sigma_x_nm": "nm",
    "sigma_y_nm": "nm",
    "uncertainty_nm": "nm",
    "uncertainty_z_nm": "nm",
    "background_photons": "photon",
    "background_std_photons": "photon",
    "offset_photons": "photon",
    "id": None,
    "channel": None,
}

_TABLE_SUFFIXES = (".csv", ".tsv", ".txt", ".parquet", ".pq", ".csv.gz", ".tsv.gz")
_PARQUET_MAGIC = b"PAR1"
_SNIFF_BYTES = 64 << 10
_META_KEY = b"nanorepo.localisations"

# Base names (lower case, spaces and dashes as "_") → canonical base.
_ALIASES: dict[str, str] = {
    **{
        f"{p}{a}{s}": a
        for a in "xyz"
        for p, s in (
            ("", ""),
            ("", "_pos"),
            ("", "pos"),
            ("pos_", ""),
            ("position_", ""),
            ("", "_position"),
            ("", "c"),
        )
    },
    **dict.fromkeys(
        (
            "frame",
            "frames",
            "frame_ix",
            "frame_idx",
            "frame_index",
            "frame_number",
            "framenumber",
            "frame_id",
            "frame_no",
        ),
        "frame",
    ),
    **dict.fromkeys(
        ("intensity", "photons", "photon", "phot", "photon_count", "n_photons", "nphotons"),
        "photons",
    ),
    **dict.fromkeys(("sigma", "psf_sigma", "sigma_xy", "psf_width"), "sigma"),
    **dict.fromkeys(("sigma_x", "psfx", "psf_sigma_x"), "sigma_x"),
    **dict.fromkeys(("sigma_y", "psfy", "psf_sigma_y"), "sigma_y"),
    **dict.fromkeys(
        (
            "uncertainty",
            "uncertainty_xy",
            "precision",
            "loc_precision",
            "locprec",
            "localization_precision",
            "localisation_precision",
            "precision_xy",
        ),
        "uncertainty",
    ),
    **dict.fromkeys(("uncertainty_z", "locprecz", "precision_z"), "uncertainty_z"),
    **dict.fromkeys(("bkgstd", "background_std", "bg_std", "bkg_std"), "background_std"),
    **dict.fromkeys(("bg", "bkg", "background"), "background"),
    "offset": "offset",
    "id": "id",
    **dict.fromkeys(("channel", "ch", "chan"), "channel"),
}
_LENGTH_BASES = {"x", "y", "z", "sigma", "sigma_x", "sigma_y", "uncertainty", "uncertainty_z"}
_COORDINATES = ("x", "y", "z")
_PHOTON_BASES = {"photons": "photons", "background": "background_photons",
                 "background_std": "background_std_photons", "offset": "offset_photons"}  # fmt: skip
_UNITS: dict[str, str | None] = {
    "nm": "nm", "nanometer": "nm", "nanometers": "nm", "nanometre": "nm", "nanometres": "nm",
    "um": "um", "µm": "um", "μm": "um", "micron": "um", "microns": "um", "micrometer": "um",
    "px": "px", "pix": "px", "pixel": "px", "pixels": "px",
    "photon": "photon", "photons": "photon", "phot": "photon", "e": "photon", "e-": "photon",
    "adu": "adu", "counts": "adu", "count": "adu",
    "#": None, "": None, "-": None, "frame": None, "frames": None, "a.u.": None, "au": None,
    "s": "s", "ms": "ms",
}  # fmt: skip
_TO_NM = {"nm": 1.0, "um": 1000.0}
_HINT_COLUMNS = (
    "name the coordinate columns x_nm and y_nm (or 'x [nm]', 'y [nm]' as ThunderSTORM does; "
    "z_nm optional), one localisation per row"
)


def _norm(base: str) -> str:
    return re.sub(r"[\s\-.]+", "_", base.strip().lower()).strip("_")


def _split(header: str) -> tuple[str, str | None, bool]:
    """``"x [nm]"`` → ``("x", "nm", True)``; the flag says whether a unit was written."""
    h = header.lstrip("\ufeff").strip().strip('"').strip()
    base, unit, written = h, None, False
    m = re.fullmatch(r"(.+?)\s*[\[(]\s*([^\])]*?)\s*[\])]", h)
    if m:
        base, unit, written = m.group(1), m.group(2), True
    else:
        m = re.fullmatch(r"(.+?)[_ ]?(nm|um|µm|px|pix|pixels?)", h, flags=re.IGNORECASE)
        # "xnm", "x_px", "locprecnm": only split off a unit when what remains is a known
        # column ("sum" is not "s" in micrometres).
        if m and _norm(m.group(1)) in _ALIASES:
            base, unit, written = m.group(1), m.group(2), True
    base = _norm(base)
    norm = _UNITS.get(unit.strip().lower(), unit.strip().lower()) if unit is not None else None
    return base, norm, written


def _clean_name(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_") or "column"


def _detect_software(headers: list[str]) -> str | None:
    raw = {h.strip().strip('"').strip() for h in headers}
    low = {h.lower() for h in raw}
    thunder = {"intensity [photon]", "uncertainty_xy [nm]", "uncertainty [nm]",
               "bkgstd [photon]", "sigma [nm]", "offset [photon]"}  # fmt: skip
    if {"x [nm]", "y [nm]"} <= raw and raw & thunder:
        return "ThunderSTORM"
    if {"xnm", "ynm"} <= low:
        return "SMAP"
    if "frame_ix" in low:
        return "DECODE"
    return None


@dataclass(frozen=True)
class LocalisationTable:
    """A localisation table in canonical columns.

    Attributes
    ----------
    table:
        The localisations as a pyarrow Table, canonical columns first (see
        :data:`CANONICAL_COLUMNS`), lengths in nanometres.
    software:
        The exporting program when recognised (``"ThunderSTORM"``, ``"SMAP"``, ``"DECODE"``),
        else ``"generic"``.
    origin:
        The file read.
    source_columns:
        Canonical column → the header it came from.
    units:
        Column → unit (``"nm"``, ``"photon"``, ``"frame"``, ``None`` for unitless).
    units_assumed:
        Columns whose header gave no unit and which were taken to be in nanometres.
    """

    table: pa.Table
    software: str
    origin: str
    format: str
    source_columns: Mapping[str, str] = field(default_factory=dict)
    units: Mapping[str, str | None] = field(default_factory=dict)
    units_assumed: tuple[str, ...] = ()
    pixel_size_nm: float | None = None

    def __len__(self) -> int:
        return int(self.table.num_rows)

    @property
    def columns(self) -> list[str]:
        return list(self.table.column_names)

    def summary(self) -> dict[str, Any]:
        """Per-column count/min/max/mean/unit and where the table came from (JSON-able)."""
        import pyarrow.compute as pc

        cols: dict[str, Any] = {}
        for name in self.table.column_names:
            col = self.table.column(name)
            entry: dict[str, Any] = {
                "count": int(len(col) - col.null_count),
                "unit": self.units.get(name),
            }
            if pa.types.is_integer(col.type) or pa.types.is_floating(col.type):
                mm = pc.min_max(col)
                mean = pc.mean(col).as_py()
                for key, value in (("min", mm["min"].as_py()), ("max", mm["max"].as_py()),
                                   ("mean", mean)):  # fmt: skip
                    if isinstance(value, float) and not math.isfinite(value):
                        value = None
                    entry[key] = value
            else:
                entry["type"] = str(col.type)
            cols[name] = entry
        out: dict[str, Any] = {
            "software": self.software,
            "format": self.format,
            "rows": len(self),
            "columns": cols,
            "source_columns": dict(self.source_columns),
        }
        if self.units_assumed:
            out["units_assumed_nm"] = list(self.units_assumed)
        if self.pixel_size_nm is not None:
            out["pixel_size_nm"] = self.pixel_size_nm
        return out

    def write_parquet(self, path: str | Path) -> None:
        """Write the table as Parquet (zstd), with :meth:`summary` in the key/value metadata.

        Parquet because it is the open columnar format every analysis stack reads (pandas,
        polars, R arrow, DuckDB, Spark) and it keeps types and metadata.
        """
        import pyarrow.parquet as pq

        meta = dict(self.table.schema.metadata or {})
        meta[_META_KEY] = json.dumps(self.summary(), sort_keys=True).encode()
        pq.write_table(self.table.replace_schema_metadata(meta), str(path), compression="zstd")


# -- reading ------------------------------------------------------------------------------------


def _head(path: Path) -> bytes:
    with open(path, "rb") as fh:
        return fh.read(_SNIFF_BYTES)


def _text_layout(head: bytes) -> tuple[int, str, list[str]] | None:
    """Comment lines to skip, delimiter and header cells of a delimited text table."""
    if b"\x00" in head:
        return None
    try:
        text = head.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        # A multi-byte character may be cut at the end of the sample.
        if exc.start < len(head) - 4:
            try:
                text = head.decode("latin-1")
            except UnicodeDecodeError:
                return None
        else:
            text = head[: exc.start].decode("utf-8")
    lines = text.splitlines()
    skip = 0
    while skip < len(lines) and (not lines[skip].strip() or lines[skip].lstrip().startswith("#")):
        skip += 1
    if skip >= len(lines):
        return None
    header = lines[skip]
    counts = {d: header.count(d) for d in (",", "\t", ";")}
    delim = max(counts, key=lambda d: counts[d])
    if counts[delim] == 0:
        return None
    return skip, delim, [h.strip().strip('"').strip() for h in header.split(delim)]


def _has_xy(headers: list[str]) -> bool:
    bases = {_ALIASES.get(_split(h)[0]) for h in headers}
    return {"x", "y"} <= bases


def is_localisation_table(path: str | Path) -> bool:
    """True if ``path`` looks like a localisation table (Parquet, or CSV/TSV with x and y).

    Reads at most the first 64 KiB; never raises.
    """
    p = Path(path)
    try:
        if not p.is_file() or not p.name.lower().endswith(_TABLE_SUFFIXES):
            return False
        head = _head(p)
        if head.startswith(_PARQUET_MAGIC):
            import pyarrow.parquet as pq

            names = pq.read_schema(str(p)).names
            return _has_xy(names)
        if p.name.lower().endswith(".gz"):
            import gzip

            with gzip.open(p, "rb") as fh:
                head = fh.read(_SNIFF_BYTES)
        layout = _text_layout(head)
        return layout is not None and _has_xy(layout[2])
    except Exception:
        return False


def unread_localisation_format(path: str | Path) -> str | None:
    """What a localisation file nanorepo does not read is, by content, or ``None``.

    For a refusal that names the software and what is missing, instead of calling such a
    file text or an archive. Reads at most 64 KiB; never raises.
    """
    p = Path(path)
    try:
        head = _head(p)
    except OSError:
        return None
    name = p.name.lower()
    if head.startswith(b"MATLAB 7.3 MAT-file") or (
        head.startswith(b"MATLAB 5.0 MAT-file") and name.endswith(".mat")
    ):
        return "a MATLAB .mat file (as SMAP saves localisations, *_sml.mat)"
    if head.startswith(b"\x89HDF\r\n\x1a\n") and name.endswith((".hdf5", ".h5")):
        if p.with_suffix(".yaml").is_file():
            return "Picasso (HDF5 localisations with their .yaml)"
        return "an HDF5 file (as Picasso .hdf5 or DECODE .h5 save localisations)"
    if head.startswith(b"PK\x03\x04") and name.endswith(".smlm"):
        return "the .smlm format (a ZIP of a JSON manifest and binary tables)"
    lines = head.decode("latin-1").lstrip().splitlines()
    first = lines[0] if lines else ""
    if first.startswith("# <localizations"):
        return "rapidSTORM (an XML comment describing the columns, and no header row)"
    if "First Frame" in first and "Position X [nm]" in first:
        return "Zeiss ZEN (Elyra) localisations (tab-separated, with a binary trailer)"
    return None


def _read_raw(path: Path) -> tuple[pa.Table, str]:
    """The file as a pyarrow Table, and its format name."""
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    try:
        size = path.stat().st_size
        head = _head(path)
    except OSError as exc:
        raise InvalidInput(f"{path}: cannot be read: {exc.strerror or exc}") from exc
    if size == 0:
        raise InvalidInput(f"{path}: is empty (0 bytes)", hint="export the table again")
    if head.startswith(_PARQUET_MAGIC):
        try:
            return pq.read_table(str(path)), "parquet"
        except Exception as exc:
            raise InvalidInput(
                f"{path}: is not a readable Parquet file: {exc}",
                hint="the file is damaged; export it again",
            ) from exc
    if head.startswith(b"\x89HDF"):
        raise InvalidInput(
            f"{path}: is an HDF5 file, not a CSV/TSV/Parquet localisation table",
            hint="export the localisations as CSV (Picasso: File > Export, or "
            "`picasso csv2hdf` in reverse with pandas) with x/y columns in nm",
        )
    if path.name.lower().endswith(".gz"):
        import gzip

        with gzip.open(path, "rb") as fh:
            head = fh.read(_SNIFF_BYTES)
    layout = _text_layout(head)
    if layout is None:
        raise InvalidInput(
            f"{path}: is not a table (expected CSV, TSV or Parquet with a header row)",
            hint="export the localisations as CSV with a header row, e.g. as ThunderSTORM does",
        )
    skip, delim, headers = layout
    # Some ThunderSTORM exports quote the whole header row as one field
    # ("id,frame,x [nm],..."): the column names are its parts, the rows are plain.
    line = head.decode("utf-8-sig", errors="replace").splitlines()[skip].strip()
    one_field = len(line) > 1 and line[0] == line[-1] == '"' and line.count('"') == 2
    read_options = (
        pacsv.ReadOptions(skip_rows=skip + 1, column_names=headers)
        if one_field
        else pacsv.ReadOptions(skip_rows=skip)
    )
    try:
        table = pacsv.read_csv(
            str(path),
            read_options=read_options,
            parse_options=pacsv.ParseOptions(delimiter=delim),
        )
    except (pa.ArrowInvalid, pa.ArrowTypeError, OSError) as exc:
        raise InvalidInput(
            f"{path}: cannot be read as a table: {str(exc).splitlines()[0]}",
            hint="every row must have as many fields as the header; check the delimiter",
        ) from exc
    return table, {"\t": "tsv", ",": "csv", ";": "csv"}[delim]


def _integral(col: pa.ChunkedArray) -> pa.ChunkedArray:
    """Whole-number floats (ThunderSTORM writes frame ``1.0``) as int64; others unchanged."""
    if pa.types.is_floating(col.type) and col.null_count == 0:
        arr = col.to_numpy()
        if np.all(np.isfinite(arr)) and np.all(arr == np.round(arr)):
            return col.cast(pa.int64())
    return col


def _first_text(col: pa.ChunkedArray) -> str:
    """Where a column meant to be numeric first holds something else."""
    for i, value in enumerate(col.to_pylist()):
        try:
            float(value)
        except (TypeError, ValueError):
            return f" (data row {i + 1}: {value!r})"
    return f" (type {col.type})"


def _bad_rows(values: np.ndarray) -> np.ndarray:
    return np.flatnonzero(~np.isfinite(values))


def read_localisations(
    path: str | Path, *, pixel_size_nm: float | None = None
) -> LocalisationTable:
    """Read a localisation table and normalise it to canonical columns.

    Parameters
    ----------
    path:
        CSV, TSV (optionally ``.gz``) or Parquet file with one localisation per row and a
        header row. Leading ``#`` comment lines are skipped.
    pixel_size_nm:
        Camera pixel size in the sample plane, needed only when coordinates are in pixels
        (``x [px]``, ``x_px``, ``xpix``). Columns without a unit are taken to be in nm (and
        listed as assumed in :meth:`LocalisationTable.summary`).

    Raises
    ------
    InvalidInput
        Not a table, empty, no x/y columns, non-numeric or non-finite coordinates (the
        rows are named), pixel coordinates without ``pixel_size_nm``.
    """
    path = Path(path)
    raw, fmt = _read_raw(path)
    if raw.num_columns == 0 or raw.num_rows == 0:
        raise InvalidInput(
            f"{path}: the table has no localisations (0 rows)",
            hint="export the table again; it should hold one localisation per row",
        )
    meta = raw.schema.metadata or {}
    previous: dict[str, Any] = {}
    if _META_KEY in meta:
        try:
            previous = json.loads(meta[_META_KEY])
        except ValueError:
            previous = {}
    software = _detect_software(raw.column_names) or previous.get("software") or "generic"

    columns: dict[str, pa.Array | pa.ChunkedArray] = {}
    units: dict[str, str | None] = {}
    source: dict[str, str] = {}
    assumed: list[str] = []
    problems: list[str] = []
    prior_units = previous.get("columns", {}) if isinstance(previous, dict) else {}

    def put(name: str, data: Any, unit: str | None, header: str) -> None:
        final, n = name, 2
        while final in columns:
            final, n = f"{name}_{n}", n + 1
        columns[final] = data
        units[final] = unit
        source[final] = header

    for header in raw.column_names:
        col = raw.column(header)
        base, unit, written = _split(header)
        canon = _ALIASES.get(base)
        numeric = pa.types.is_integer(col.type) or pa.types.is_floating(col.type)
        if canon in _LENGTH_BASES:
            if not numeric:
                if canon in _COORDINATES:
                    problems.append(f"column {header!r} is not numeric{_first_text(col)}")
                    continue
                put(_clean_name(header), col, None, header)
                continue
            if unit is None and header in prior_units:  # our own Parquet: units are known
                unit = (prior_units[header] or {}).get("unit")
            if unit is None or unit == "nm":
                factor: float | None = 1.0
                if not written and header not in prior_units:
                    assumed.append(header)
            elif unit in _TO_NM:
                factor = _TO_NM[unit]
            elif unit == "px":
                factor = pixel_size_nm
                if factor is None:
                    if canon in _COORDINATES:
                        problems.append(
                            f"column {header!r} is in pixels and no pixel size was given"
                        )
                        continue
                    put(f"{canon}_px", col, "px", header)
                    continue
            else:
                put(f"{canon}_{_clean_name(unit)}", col, unit, header)
                continue
            values = col.cast(pa.float64())
            if factor != 1.0:
                import pyarrow.compute as pc

                values = pc.multiply(values, pa.scalar(float(factor)))  # type: ignore[arg-type]
            put(f"{canon}_nm", values, "nm", header)
        elif canon in _PHOTON_BASES:
            if unit in (None, "photon"):
                put(_PHOTON_BASES[canon], col, "photon", header)
            else:
                put(f"{canon}_{_clean_name(unit)}", col, unit, header)
        elif canon == "frame":
            put("frame", _integral(col), "frame", header)
        elif canon in ("id", "channel"):
            put(canon, _integral(col), None, header)
        else:
            name = _clean_name(base) + (f"_{_clean_name(unit)}" if unit else "")
            put(name, col, unit, header)

    missing = [a for a in ("x", "y") if f"{a}_nm" not in columns]
    if missing and not problems:
        raise InvalidInput(
            f"{path}: no {' and no '.join(missing)} coordinate column "
            f"(columns: {', '.join(raw.column_names[:20])})",
            hint=_HINT_COLUMNS,
        )
    if problems:
        hint = _HINT_COLUMNS
        if any("pixels" in p for p in problems):
            hint = (
                "convert the coordinates to nm before depositing, or give the camera pixel "
                "size (read_localisations(..., pixel_size_nm=...))"
            )
        raise InvalidInput(f"{path}: " + "; ".join(problems), hint=hint)
    bad_rows: list[str] = []
    total = 0
    for name in ("x_nm", "y_nm", "z_nm"):
        if name not in columns:
            continue
        bad = _bad_rows(columns[name].to_numpy().astype(np.float64, copy=False))
        if bad.size:
            total += int(bad.size)
            rows = ", ".join(str(int(i) + 1) for i in bad[:10])
            more = f" (and {bad.size - 10} more)" if bad.size > 10 else ""
            bad_rows.append(f"column {source[name]!r} in data row(s) {rows}{more}")
    if bad_rows:
        raise InvalidInput(
            f"{path}: {total} missing, NaN or infinite coordinate(s): " + "; ".join(bad_rows),
            hint="remove those localisations (or fix the export) and deposit again; rows are "
            "counted from 1 after the header",
        )

    order = [c for c in CANONICAL_COLUMNS if c in columns]
    order += [c for c in columns if c not in CANONICAL_COLUMNS]
    table = pa.table({c: columns[c] for c in order})
    return LocalisationTable(
        table=table,
        software=str(software),
        origin=str(path),
        format=fmt,
        source_columns={c: source[c] for c in order},
        units={c: units[c] for c in order},
        units_assumed=tuple(assumed),
        pixel_size_nm=pixel_size_nm
        if any(_split(h)[1] == "px" for h in raw.column_names)
        else None,
    )
