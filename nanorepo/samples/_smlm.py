"""Single-molecule localisation microscopy (SMLM) tables from ground-truth labels.

:func:`localisations` simulates what a dSTORM / PALM / DNA-PAINT experiment and its
fitting software report: every label blinks a random number of times, each blink lasts
a few camera frames, each frame yields a localisation with a log-normal photon count,
displaced from the label by the localisation error. The error follows Mortensen et al.
(2010, Nat Methods 7:377) for a Gaussian PSF of standard deviation ``s`` on camera pixels
of size ``a`` with ``b²`` background photons per pixel::

    sa² = s² + a²/12
    var = sa²/N * (16/9 + 8 pi sa² b² / (N a²))

i.e. ≈ ``s / sqrt(N)`` when the background is low. 3D data use astigmatism: the two PSF
widths grow on either side of focus and the axial error is a multiple of the lateral.

Writers produce ThunderSTORM's CSV (its exact header, 2D and 3D astigmatism variants)
and a plain table ``x_nm, y_nm, z_nm, frame, photons`` as CSV, TSV or Parquet.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from nanorepo.errors import InvalidInput
from nanorepo.samples._geometry import SeedLike, Structures
from nanorepo.samples._render import expected_photons

__all__ = [
    "PLAIN_COLUMNS",
    "THUNDERSTORM_COLUMNS",
    "THUNDERSTORM_COLUMNS_3D",
    "localisations",
    "render_localisations",
    "write_localisation_table",
    "write_thunderstorm_csv",
]

#: ThunderSTORM's CSV header for 2D fits (integrated Gaussian), in its order.
THUNDERSTORM_COLUMNS: tuple[str, ...] = (
    "id",
    "frame",
    "x [nm]",
    "y [nm]",
    "sigma [nm]",
    "intensity [photon]",
    "offset [photon]",
    "bkgstd [photon]",
    "uncertainty [nm]",
)

#: ThunderSTORM's CSV header for 3D astigmatism fits (elliptic Gaussian), in its order.
THUNDERSTORM_COLUMNS_3D: tuple[str, ...] = (
    "id",
    "frame",
    "x [nm]",
    "y [nm]",
    "z [nm]",
    "sigma1 [nm]",
    "sigma2 [nm]",
    "intensity [photon]",
    "offset [photon]",
    "bkgstd [photon]",
    "uncertainty_xy [nm]",
    "uncertainty_z [nm]",
)

#: Columns of the plain localisation table (``z_nm`` only for 3D tables).
PLAIN_COLUMNS: tuple[str, ...] = ("x_nm", "y_nm", "z_nm", "frame", "photons")


def _mortensen_nm(
    sigma_nm: np.ndarray, photons: np.ndarray, background: float, pixel_nm: float
) -> np.ndarray:
    sa2 = sigma_nm**2 + pixel_nm**2 / 12.0
    var = sa2 / photons * (16.0 / 9.0 + 8.0 * np.pi * sa2 * background / (photons * pixel_nm**2))
    return np.sqrt(var)


def localisations(
    structures: Structures | np.ndarray,
    *,
    seed: SeedLike = 0,
    frames: int = 20000,
    three_d: bool = True,
    blinks_per_label: float = 5.0,
    frames_per_blink: float = 1.5,
    photons_median: float = 2500.0,
    photons_spread: float = 0.6,
    detection_threshold_photons: float = 300.0,
    background_photons: float = 40.0,
    psf_sigma_nm: float = 130.0,
    camera_pixel_nm: float = 100.0,
    astigmatism_focus_offset_nm: float = 250.0,
    astigmatism_depth_nm: float = 400.0,
    axial_precision_factor: float = 2.5,
    spurious_per_frame: float = 0.0,
) -> pd.DataFrame:
    """Simulate an SMLM localisation table from label positions.

    Parameters
    ----------
    structures:
        A :class:`Structures` (weights are rounded to the number of fluorophores at a
        position) or an ``(N, 3)`` array ``x, y, z`` in nm.
    frames:
        Length of the acquisition in camera frames; blinks start uniformly within it.
    three_d:
        Astigmatic 3D: report ``z_nm``, two PSF widths and an axial error.
    blinks_per_label:
        Mean number of blinks per fluorophore (geometric, so some never blink).
    frames_per_blink:
        Mean number of frames a blink lasts (geometric, at least 1).
    photons_median, photons_spread:
        Log-normal photons per frame of a blink (median and sigma of the log).
    detection_threshold_photons:
        Dimmer frames are not detected.
    background_photons, psf_sigma_nm, camera_pixel_nm:
        Background per camera pixel per frame, PSF standard deviation in focus and pixel
        size in the sample, which set the localisation error (Mortensen).
    spurious_per_frame:
        Mean number of false localisations per frame, uniform over the labels' extent.

    Returns
    -------
    pandas.DataFrame
        One row per localisation, sorted by frame: ``frame`` (0-based), ``x_nm``,
        ``y_nm``, (``z_nm``), ``photons``, ``background_photons``, ``sigma_nm`` (2D) or
        ``sigma1_nm``/``sigma2_nm`` (3D), ``uncertainty_nm``, (``uncertainty_z_nm``), and
        the ground truth: ``label`` (row of the label in ``structures``, -1 if spurious)
        and ``structure`` (its structure id).
    """
    if isinstance(structures, Structures):
        pos, weights, sid = structures.positions_nm, structures.weights, structures.structure_ids
    else:
        pos = np.asarray(structures, dtype=float)
        if pos.ndim != 2 or pos.shape[1] != 3:
            raise InvalidInput(f"positions must be (N, 3) x, y, z in nm, not {pos.shape}")
        weights, sid = np.ones(len(pos)), np.full(len(pos), -1, dtype=np.int64)
    if frames < 1:
        raise InvalidInput("frames must be at least 1")
    if blinks_per_label < 0 or frames_per_blink < 1 or photons_median <= 0:
        raise InvalidInput(
            "blinks_per_label must be >= 0, frames_per_blink >= 1, photons_median > 0"
        )
    if psf_sigma_nm <= 0 or camera_pixel_nm <= 0 or background_photons < 0:
        raise InvalidInput("psf_sigma_nm and camera_pixel_nm must be positive")
    rng = np.random.default_rng(seed)

    copies = np.maximum(np.rint(weights), 0).astype(np.int64)
    label = np.repeat(np.arange(len(pos)), copies)
    blinks = rng.geometric(1.0 / (1.0 + blinks_per_label), label.size) - 1
    ev_label = np.repeat(label, blinks)
    start = rng.integers(0, frames, ev_label.size)
    duration = rng.geometric(1.0 / frames_per_blink, ev_label.size)
    loc_label = np.repeat(ev_label, duration)
    offset = np.arange(loc_label.size) - np.repeat(np.cumsum(duration) - duration, duration)
    frame = np.repeat(start, duration) + offset
    photons = rng.lognormal(math.log(photons_median), photons_spread, loc_label.size)
    keep = (frame < frames) & (photons >= detection_threshold_photons)
    loc_label, frame, photons = loc_label[keep], frame[keep], photons[keep]
    true = pos[loc_label]

    n_spur = int(rng.poisson(spurious_per_frame * frames)) if len(pos) else 0
    if n_spur:
        lo, hi = pos.min(axis=0), pos.max(axis=0)
        true = np.vstack([true, rng.uniform(lo, hi, (n_spur, 3))])
        frame = np.concatenate([frame, rng.integers(0, frames, n_spur)])
        photons = np.concatenate(
            [
                photons,
                np.maximum(
                    rng.lognormal(math.log(photons_median / 3), 0.5, n_spur),
                    detection_threshold_photons,
                ),
            ]
        )
        loc_label = np.concatenate([loc_label, np.full(n_spur, -1)])

    n = len(frame)
    cols: dict[str, np.ndarray] = {"frame": frame.astype(np.int64)}
    if three_d:
        z = true[:, 2]
        s1 = psf_sigma_nm * np.sqrt(
            1 + ((z - astigmatism_focus_offset_nm) / astigmatism_depth_nm) ** 2
        )
        s2 = psf_sigma_nm * np.sqrt(
            1 + ((z + astigmatism_focus_offset_nm) / astigmatism_depth_nm) ** 2
        )
        sigma = np.sqrt(s1 * s2)
    else:
        sigma = np.full(n, psf_sigma_nm)
    unc = _mortensen_nm(sigma, photons, background_photons, camera_pixel_nm)
    measured = true[:, :2] + rng.normal(0.0, 1.0, (n, 2)) * unc[:, None]
    cols["x_nm"] = measured[:, 0]
    cols["y_nm"] = measured[:, 1]
    if three_d:
        unc_z = axial_precision_factor * unc
        cols["z_nm"] = true[:, 2] + rng.normal(0.0, 1.0, n) * unc_z
    cols["photons"] = photons
    cols["background_photons"] = np.full(n, float(background_photons))
    fit_noise = 1.0 + 0.03 * rng.standard_normal((n, 2))
    if three_d:
        cols["sigma1_nm"] = s1 * fit_noise[:, 0]
        cols["sigma2_nm"] = s2 * fit_noise[:, 1]
    else:
        cols["sigma_nm"] = sigma * fit_noise[:, 0]
    cols["uncertainty_nm"] = unc
    if three_d:
        cols["uncertainty_z_nm"] = unc_z
    cols["label"] = loc_label.astype(np.int64)
    cols["structure"] = (
        np.where(loc_label >= 0, sid[np.maximum(loc_label, 0)], -1).astype(np.int64)
        if len(sid)
        else np.full(n, -1, dtype=np.int64)
    )
    table = pd.DataFrame(cols)
    return table.sort_values(["frame", "x_nm"], kind="stable").reset_index(drop=True)


def _atomic_text(path: Path, write: object) -> None:
    tmp = path.with_name(f".{path.name}.partial")
    with open(tmp, "w", encoding="utf-8", newline="\n") as fh:
        write(fh)  # type: ignore[operator]
    os.replace(tmp, path)


def write_thunderstorm_csv(
    table: pd.DataFrame, path: Path | str, *, three_d: bool | None = None
) -> Path:
    """Write a localisation table as ThunderSTORM exports it (CSV, quoted header).

    The header is exactly ThunderSTORM's (:data:`THUNDERSTORM_COLUMNS`, or
    :data:`THUNDERSTORM_COLUMNS_3D` for 3D astigmatism tables, the default when the table
    has ``z_nm``); ``id`` counts from 1 and ``frame`` is 1-based, as in ThunderSTORM.
    """
    path = Path(path)
    if three_d is None:
        three_d = "z_nm" in table.columns
    need = ["frame", "x_nm", "y_nm", "photons", "background_photons", "uncertainty_nm"]
    need += ["z_nm", "sigma1_nm", "sigma2_nm", "uncertainty_z_nm"] if three_d else ["sigma_nm"]
    missing = [c for c in need if c not in table.columns]
    if missing:
        raise InvalidInput(
            f"localisation table lacks {', '.join(missing)}",
            hint="make it with nanorepo.samples.localisations",
        )
    n = len(table)
    bg = table["background_photons"].to_numpy(dtype=float)
    out = {
        "id": np.arange(1, n + 1),
        "frame": table["frame"].to_numpy(dtype=np.int64) + 1,
        "x [nm]": table["x_nm"].round(2),
        "y [nm]": table["y_nm"].round(2),
    }
    if three_d:
        out["z [nm]"] = table["z_nm"].round(2)
        out["sigma1 [nm]"] = table["sigma1_nm"].round(2)
        out["sigma2 [nm]"] = table["sigma2_nm"].round(2)
    else:
        out["sigma [nm]"] = table["sigma_nm"].round(2)
    out["intensity [photon]"] = table["photons"].round(1)
    out["offset [photon]"] = np.round(bg, 2)
    out["bkgstd [photon]"] = np.round(np.sqrt(bg), 3)
    if three_d:
        out["uncertainty_xy [nm]"] = table["uncertainty_nm"].round(3)
        out["uncertainty_z [nm]"] = table["uncertainty_z_nm"].round(3)
    else:
        out["uncertainty [nm]"] = table["uncertainty_nm"].round(3)
    columns = THUNDERSTORM_COLUMNS_3D if three_d else THUNDERSTORM_COLUMNS
    frame = pd.DataFrame(out)[list(columns)]

    def write(fh: object) -> None:
        fh.write(",".join(f'"{c}"' for c in columns) + "\n")  # type: ignore[attr-defined]
        frame.to_csv(fh, header=False, index=False, lineterminator="\n")

    _atomic_text(path, write)
    return path


def write_localisation_table(table: pd.DataFrame, path: Path | str) -> Path:
    """Write ``x_nm, y_nm, (z_nm,) frame, photons`` as CSV, TSV (``.tsv``/``.txt``) or Parquet."""
    path = Path(path)
    cols = [c for c in PLAIN_COLUMNS if c in table.columns]
    if not {"x_nm", "y_nm", "frame", "photons"} <= set(cols):
        raise InvalidInput("localisation table needs x_nm, y_nm, frame and photons columns")
    plain = table[cols]
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        tmp = path.with_name(f".{path.name}.partial")
        plain.to_parquet(tmp, index=False)
        os.replace(tmp, path)
    elif suffix in (".csv", ".tsv", ".txt", ".tab"):
        sep = "," if suffix == ".csv" else "\t"

        def write(fh: object) -> None:
            plain.to_csv(fh, sep=sep, index=False, lineterminator="\n", float_format="%.2f")

        _atomic_text(path, write)
    else:
        raise InvalidInput(
            f"{path.name}: unknown table format {suffix!r}",
            hint="use .csv, .tsv or .parquet",
        )
    return path


def render_localisations(
    table: pd.DataFrame,
    *,
    pixel_size_nm: float = 10.0,
    shape: Sequence[int] | None = None,
    origin_nm: Sequence[float] = (0.0, 0.0),
    sigma_nm: float | None = None,
    counts_per_localisation: float = 100.0,
) -> np.ndarray:
    """Render a localisation table as a 2D super-resolution image ``(y, x)``, uint16.

    Every localisation is drawn as a normalised Gaussian ("Gaussian rendering") of width
    ``sigma_nm`` (default: the median localisation uncertainty) holding
    ``counts_per_localisation`` counts. ``shape`` defaults to cover all localisations
    from ``origin_nm`` (``x, y``; the centre of pixel ``(0, 0)``).
    """
    if pixel_size_nm <= 0:
        raise InvalidInput("pixel_size_nm must be positive")
    x = table["x_nm"].to_numpy(dtype=float) - float(origin_nm[0])
    y = table["y_nm"].to_numpy(dtype=float) - float(origin_nm[1])
    if sigma_nm is None:
        sigma_nm = float(np.median(table["uncertainty_nm"])) if len(table) else pixel_size_nm
    if shape is None:
        shape = (
            math.ceil((y.max() if len(y) else 0) / pixel_size_nm) + 1,
            math.ceil((x.max() if len(x) else 0) / pixel_size_nm) + 1,
        )
    ny, nx = (int(s) for s in shape)
    pos = np.column_stack([x, y, np.zeros_like(x)])
    img = expected_photons(
        pos,
        None,
        start_px=(0, 0, 0),
        shape=(1, ny, nx),
        pixel_size_nm=(1.0, pixel_size_nm, pixel_size_nm),
        sigma_nm=(1.0, sigma_nm, sigma_nm),
        photons_per_label=counts_per_localisation,
        focal_plane_nm=0.0,
    )[0]
    return np.clip(np.rint(img), 0, 65535).astype(np.uint16)
