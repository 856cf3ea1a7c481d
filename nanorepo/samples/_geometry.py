"""Ground-truth geometry: where the fluorescent labels of synthetic structures sit, in nm.

Each generator draws structures inside a box (``origin_nm`` to ``origin_nm + extent_nm``,
axes ``x, y, z``) from a seeded :class:`numpy.random.Generator`, so the same arguments
always give the same labels, and returns a :class:`Structures`: label positions, a
weight per position (number of fluorophores there) and a JSON-able ground truth that a
training notebook can check its measurements against.

The numbers follow the literature the reference data imitates:

* nuclear pore complexes labelled at Nup96 (Thevathasan et al. 2019, Nat Methods 16:1045):
  eightfold symmetric, ring diameter ~107 nm, cytoplasmic and nuclear ring ~50 nm apart,
  2 copies per corner and ring (32 per pore), SNAP-tag labelling efficiency ~60 %;
* microtubules: hollow tubes of ~25 nm outer diameter following smooth curves;
* chromatin: domains of ~100-300 nm made of nucleosome "clutches" of a few to tens of
  nucleosomes (Ricci et al. 2015, Cell 160:1145), with varying compaction.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy.signal import lfilter

from nanorepo.errors import InvalidInput

__all__ = [
    "SeedLike",
    "Structures",
    "chromatin_domains",
    "dump_json",
    "microtubules",
    "nuclear_pores",
]

#: What a generator accepts as ``seed``: an int, a SeedSequence or a ready Generator.
SeedLike = int | np.random.SeedSequence | np.random.Generator

Vec3 = tuple[float, float, float]


@dataclass(frozen=True, eq=False)
class Structures:
    """Labels of synthetic structures and the ground truth they were drawn from.

    Attributes
    ----------
    kind:
        ``"nuclear_pores"``, ``"microtubules"`` or ``"chromatin"``.
    positions_nm:
        ``(N, 3)`` float64 array of label positions, columns ``x, y, z`` in nanometres.
    weights:
        ``(N,)`` number of fluorophores at each position (1 for single labels; chromatin
        clutches rendered as one emitter carry their label count).
    structure_ids:
        ``(N,)`` index of the structure each label belongs to, into the ground truth's
        per-structure lists (``-1`` for labels that belong to none, e.g. dispersed
        chromatin).
    ground_truth:
        JSON-able description: the parameters the labels were drawn with and one entry per
        structure (NPC centres, microtubule paths, domain centres and sizes), in nm.
    """

    kind: str
    positions_nm: np.ndarray
    weights: np.ndarray
    structure_ids: np.ndarray
    ground_truth: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.positions_nm.shape[0])

    @property
    def label_count(self) -> float:
        """Total number of fluorophores (sum of the weights)."""
        return float(self.weights.sum())

    def select(self, mask: np.ndarray) -> Structures:
        """The labels where ``mask`` is true (the ground truth is kept whole)."""
        return Structures(
            self.kind,
            self.positions_nm[mask],
            self.weights[mask],
            self.structure_ids[mask],
            self.ground_truth,
        )

    def within(self, lower_nm: Sequence[float], upper_nm: Sequence[float]) -> Structures:
        """The labels inside the box ``lower_nm <= (x, y, z) < upper_nm``."""
        lo = np.asarray(lower_nm, dtype=float)
        hi = np.asarray(upper_nm, dtype=float)
        p = self.positions_nm
        return self.select(np.all((p >= lo) & (p < hi), axis=1))

    def save_ground_truth(self, path: Path | str, **extra: Any) -> Path:
        """Write the ground truth (plus ``extra`` entries) as a JSON file and return its path."""
        path = Path(path)
        doc = {**self.ground_truth, **extra, "label_positions": len(self)}
        path.write_text(dump_json(doc), encoding="utf-8")
        return path


def dump_json(doc: Any) -> str:
    """JSON text indented for people, with lists of numbers kept on one line."""

    def enc(value: Any, indent: int) -> str:
        pad = " " * indent
        if isinstance(value, Mapping):
            if not value:
                return "{}"
            items = [f"{pad}  {json.dumps(str(k))}: {enc(v, indent + 2)}" for k, v in value.items()]
            return "{\n" + ",\n".join(items) + f"\n{pad}}}"
        if isinstance(value, list | tuple):
            if all(not isinstance(v, Mapping | list | tuple) for v in value) or all(
                isinstance(v, list | tuple)
                and all(not isinstance(w, Mapping | list | tuple) for w in v)
                for v in value
            ):
                return json.dumps(value, separators=(", ", ": "))
            items = [f"{pad}  {enc(v, indent + 2)}" for v in value]
            return "[\n" + ",\n".join(items) + f"\n{pad}]"
        return json.dumps(value)

    return enc(doc, 0) + "\n"


# -- helpers ----------------------------------------------------------------------------


def _box(extent_nm: Sequence[float], origin_nm: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    try:
        ext = np.asarray(extent_nm, dtype=float).reshape(3)
        org = np.asarray(origin_nm, dtype=float).reshape(3)
    except (TypeError, ValueError):
        raise InvalidInput(
            f"extent_nm {extent_nm!r} and origin_nm {origin_nm!r} must be three numbers each",
            hint="give (x, y, z) in nanometres",
        ) from None
    if not (np.all(np.isfinite(ext)) and np.all(np.isfinite(org)) and np.all(ext >= 0)):
        raise InvalidInput(
            f"extent_nm {tuple(ext)} must be finite and not negative, origin_nm finite",
            hint="give (x, y, z) in nanometres",
        )
    return org, org + ext


def _check(condition: bool, message: str, hint: str | None = None) -> None:
    if not condition:
        raise InvalidInput(message, hint=hint)


def _r(values: Any, decimals: int = 2) -> Any:
    """Round to a JSON-able nested list (or float)."""
    arr = np.round(np.asarray(values, dtype=float), decimals)
    return arr.tolist()


def _empty(kind: str, gt: dict[str, Any]) -> Structures:
    return Structures(kind, np.zeros((0, 3)), np.zeros(0), np.zeros(0, dtype=np.int64), gt)


# -- nuclear pore complexes -------------------------------------------------------------


def _hard_core_points(
    rng: np.random.Generator, n: int, lo: np.ndarray, hi: np.ndarray, min_distance: float
) -> np.ndarray:
    """Up to ``n`` uniform points in the 2D box [lo, hi) no two closer than ``min_distance``.

    Random sequential adsorption with a grid hash: candidates are drawn one at a time and
    kept when no kept point is too close; gives up after ``30 n`` candidates (dense boxes).
    """
    kept: list[tuple[float, float]] = []
    if n <= 0 or np.any(hi <= lo):
        return np.zeros((0, 2))
    cell = max(min_distance, 1e-9)
    grid: dict[tuple[int, int], list[int]] = {}
    batch = rng.uniform(lo, hi, size=(30 * n, 2))
    d2 = min_distance**2
    for x, y in batch:
        gx, gy = int(x // cell), int(y // cell)
        ok = True
        for ix in (gx - 1, gx, gx + 1):
            for iy in (gy - 1, gy, gy + 1):
                for k in grid.get((ix, iy), ()):
                    kx, ky = kept[k]
                    if (kx - x) ** 2 + (ky - y) ** 2 < d2:
                        ok = False
                        break
                if not ok:
                    break
            if not ok:
                break
        if ok:
            grid.setdefault((gx, gy), []).append(len(kept))
            kept.append((float(x), float(y)))
            if len(kept) == n:
                break
    return np.asarray(kept, dtype=float).reshape(-1, 2)


def nuclear_pores(
    extent_nm: Sequence[float],
    *,
    origin_nm: Sequence[float] = (0.0, 0.0, 0.0),
    seed: SeedLike = 0,
    density_per_um2: float = 5.0,
    diameter_nm: float = 107.0,
    ring_separation_nm: float = 50.0,
    symmetry: int = 8,
    copies_per_corner: int = 2,
    copy_spacing_nm: float = 10.0,
    labelling_efficiency: float = 0.6,
    label_jitter_nm: float = 2.5,
    envelope_z_nm: float | None = None,
    envelope_roughness_nm: float = 15.0,
    min_distance_nm: float = 150.0,
    protein: str = "Nup96",
    describe: bool = True,
) -> Structures:
    """Nuclear pore complexes in a flat patch of nuclear envelope, labelled at one nucleoporin.

    Each pore has a cytoplasmic ring at ``z + ring_separation_nm / 2`` and a nuclear ring at
    ``z - ring_separation_nm / 2``; each ring has ``symmetry`` corners on a circle of
    ``diameter_nm`` with ``copies_per_corner`` protein copies ``copy_spacing_nm`` apart along
    the circle (Nup96: 8 corners x 2 rings x 2 copies = 32 per pore). Every copy carries a
    label with probability ``labelling_efficiency``, so some corners go missing, as in real
    data; labels are displaced by the linker (isotropic Gaussian ``label_jitter_nm``).
    Pores have random in-plane rotations and keep ``min_distance_nm`` from each other; their
    centres stay ``min_distance_nm / 2`` inside the box in x and y, so every label lies in it.

    Parameters
    ----------
    extent_nm, origin_nm:
        The box, ``(x, y, z)`` in nm. The envelope lies at ``envelope_z_nm`` (default: the
        middle of the box in z), undulating with ``envelope_roughness_nm`` (standard deviation).
    seed:
        Seed or generator; the same seed gives the same pores.
    density_per_um2:
        Mean number of pores per square micrometre of envelope (U2OS: ~4-6).

    describe:
        ``False`` leaves out the per-pore lists of the ground truth (faster when streaming).

    Returns
    -------
    Structures
        ``kind="nuclear_pores"``; ground truth with ``diameter_nm``, ``ring_separation_nm``,
        ``symmetry``, ``centres_nm`` (one ``[x, y, z]`` per pore), ``rotation_deg`` and
        ``labelled_corners`` (corners with at least one label in either ring, the quantity of
        the "effective labelling efficiency" analysis).
    """
    lo, hi = _box(extent_nm, origin_nm)
    _check(density_per_um2 >= 0, "density_per_um2 must not be negative")
    _check(diameter_nm > 0 and ring_separation_nm >= 0, "NPC dimensions must be positive")
    _check(isinstance(symmetry, int | np.integer) and symmetry >= 1, "symmetry must be an int >= 1")
    _check(
        isinstance(copies_per_corner, int | np.integer) and copies_per_corner >= 1,
        "copies_per_corner must be an int >= 1",
    )
    _check(0 <= labelling_efficiency <= 1, "labelling_efficiency must lie between 0 and 1")
    _check(label_jitter_nm >= 0 and min_distance_nm >= 0, "distances must not be negative")
    rng = np.random.default_rng(seed)
    radius = diameter_nm / 2
    z_env = (lo[2] + hi[2]) / 2 if envelope_z_nm is None else float(envelope_z_nm)
    gt: dict[str, Any] = {
        "kind": "nuclear_pores",
        "structure": "nuclear pore complex",
        "protein": protein,
        "diameter_nm": float(diameter_nm),
        "radius_nm": float(radius),
        "ring_separation_nm": float(ring_separation_nm),
        "symmetry": int(symmetry),
        "rings": ["cytoplasmic (z + separation/2)", "nuclear (z - separation/2)"],
        "copies_per_corner": int(copies_per_corner),
        "copies_per_pore": int(2 * symmetry * copies_per_corner),
        "copy_spacing_nm": float(copy_spacing_nm),
        "labelling_efficiency": float(labelling_efficiency),
        "label_jitter_nm": float(label_jitter_nm),
        "envelope_z_nm": float(z_env),
        "density_per_um2": float(density_per_um2),
        "box_nm": {"origin": _r(lo), "extent": _r(hi - lo)},
        "units": {"length": "nm", "angle": "degree"},
        "count": 0,
        "centres_nm": [],
        "rotation_deg": [],
        "labelled_corners": [],
        "labels_per_pore": [],
    }
    margin = min_distance_nm / 2
    area_um2 = float((hi[0] - lo[0]) * (hi[1] - lo[1])) / 1e6
    n_target = int(rng.poisson(density_per_um2 * area_um2))
    xy = _hard_core_points(rng, n_target, lo[:2] + margin, hi[:2] - margin, min_distance_nm)
    n = xy.shape[0]
    if n == 0:
        return _empty("nuclear_pores", gt)
    z = (
        z_env + rng.normal(0.0, envelope_roughness_nm, n)
        if envelope_roughness_nm
        else np.full(n, z_env)
    )
    z = np.clip(z, lo[2], np.nextafter(hi[2], lo[2])) if hi[2] > lo[2] else z
    centres = np.column_stack([xy, z])
    theta = np.asarray(rng.uniform(0.0, 2 * np.pi / symmetry, size=n))

    # angles of every copy: (pore, ring, corner, copy)
    corner = 2 * np.pi * np.arange(symmetry) / symmetry
    copy: np.ndarray = (np.arange(copies_per_corner) - (copies_per_corner - 1) / 2) * (
        copy_spacing_nm / radius
    )
    phi = theta[:, None, None, None] + corner[None, None, :, None] + copy[None, None, None, :]
    phi = np.broadcast_to(phi, (n, 2, symmetry, copies_per_corner))
    ring_dz = np.array([ring_separation_nm / 2, -ring_separation_nm / 2])[None, :, None, None]
    pos = np.empty((*phi.shape, 3))
    pos[..., 0] = centres[:, 0, None, None, None] + radius * np.cos(phi)
    pos[..., 1] = centres[:, 1, None, None, None] + radius * np.sin(phi)
    pos[..., 2] = centres[:, 2, None, None, None] + ring_dz
    labelled = rng.random(phi.shape) < labelling_efficiency
    ids = np.broadcast_to(np.arange(n)[:, None, None, None], phi.shape)
    positions = pos[labelled]
    if label_jitter_nm:
        positions = positions + rng.normal(0.0, label_jitter_nm, positions.shape)
    gt["count"] = int(n)
    if describe:
        corners_seen = labelled.any(axis=(1, 3)).sum(axis=1)
        gt.update(
            centres_nm=_r(centres),
            rotation_deg=_r(np.degrees(theta), 3),
            labelled_corners=corners_seen.astype(int).tolist(),
            labels_per_pore=labelled.sum(axis=(1, 2, 3)).astype(int).tolist(),
        )
    return Structures(
        "nuclear_pores",
        positions,
        np.ones(positions.shape[0]),
        ids[labelled].astype(np.int64),
        gt,
    )


# -- microtubules -----------------------------------------------------------------------


def _ou(rng: np.random.Generator, n: int, sd: float, correlation_steps: float) -> np.ndarray:
    """A stationary Ornstein-Uhlenbeck sequence: smooth noise of standard deviation ``sd``."""
    if n == 0:
        return np.zeros(0)
    a = math.exp(-1.0 / max(correlation_steps, 1e-9))
    noise = rng.normal(0.0, sd * math.sqrt(1 - a * a), n)
    start = rng.normal(0.0, sd)
    out, _ = lfilter([1.0], [1.0, -a], noise, zi=[a * start])
    return np.asarray(out)


def microtubules(
    extent_nm: Sequence[float],
    *,
    origin_nm: Sequence[float] = (0.0, 0.0, 0.0),
    seed: SeedLike = 0,
    count: int | None = None,
    density_per_um2: float = 0.2,
    length_nm: tuple[float, float] = (4000.0, 15000.0),
    diameter_nm: float = 25.0,
    label_offset_nm: float = 0.0,
    labels_per_um: float = 60.0,
    label_jitter_nm: float = 2.0,
    curvature_per_um: float = 0.35,
    curvature_correlation_nm: float = 1500.0,
    tilt_sd_rad: float = 0.05,
    step_nm: float = 20.0,
    overhang_nm: float = 2000.0,
    describe: bool = True,
) -> Structures:
    """Microtubules: hollow tubes labelled on their surface along smooth random curves.

    Each filament is centred on a uniform random point of the box, has a length drawn
    uniformly from ``length_nm``, and follows a smooth curve whose curvature is a
    correlated random process (root-mean-square ``curvature_per_um``, correlation length
    ``curvature_correlation_nm``) with a small, slowly varying tilt out of the focal plane.
    The curve is cut where it leaves the box enlarged by ``overhang_nm``. Labels sit on the
    tube surface at radius ``diameter_nm / 2 + label_offset_nm`` (add ~10-20 nm for antibody
    labelling) at random angles, ``labels_per_um`` per micrometre on average.

    ``describe=False`` leaves out the per-filament lists of the ground truth.

    Returns
    -------
    Structures
        ``kind="microtubules"``; ground truth with ``diameter_nm``, ``label_radius_nm``,
        ``count``, ``lengths_nm`` and ``paths_nm`` (centre lines, one point per 100 nm).
    """
    lo, hi = _box(extent_nm, origin_nm)
    _check(density_per_um2 >= 0 and labels_per_um >= 0, "densities must not be negative")
    _check(count is None or count >= 0, "count must not be negative")
    _check(0 < length_nm[0] <= length_nm[1], "length_nm must be (shortest, longest), both positive")
    _check(diameter_nm > 0 and step_nm > 0 and overhang_nm >= 0, "lengths must be positive")
    rng = np.random.default_rng(seed)
    label_radius = diameter_nm / 2 + label_offset_nm
    gt: dict[str, Any] = {
        "kind": "microtubules",
        "structure": "microtubule",
        "protein": "alpha-tubulin",
        "diameter_nm": float(diameter_nm),
        "label_radius_nm": float(label_radius),
        "labels_per_um": float(labels_per_um),
        "label_jitter_nm": float(label_jitter_nm),
        "curvature_per_um": float(curvature_per_um),
        "box_nm": {"origin": _r(lo), "extent": _r(hi - lo)},
        "units": {"length": "nm"},
        "count": 0,
        "lengths_nm": [],
        "paths_nm": [],
    }
    if count is None:
        area_um2 = float((hi[0] - lo[0]) * (hi[1] - lo[1])) / 1e6
        count = int(rng.poisson(density_per_um2 * area_um2))
    if count == 0 or np.any(hi[:2] <= lo[:2]):
        return _empty("microtubules", gt)
    out_lo = lo - overhang_nm
    out_hi = hi + overhang_nm
    paths: list[np.ndarray] = []
    all_pos: list[np.ndarray] = []
    all_ids: list[np.ndarray] = []
    corr_steps = curvature_correlation_nm / step_nm
    for k in range(count):
        length = rng.uniform(*length_nm)
        n = max(int(length / step_nm), 2)
        kappa = _ou(rng, n, curvature_per_um / 1000.0, corr_steps)  # per nm
        phi = rng.uniform(0, 2 * np.pi) + np.cumsum(kappa * step_nm)
        psi = _ou(rng, n, tilt_sd_rad, 2 * corr_steps)
        d = np.column_stack([np.cos(psi) * np.cos(phi), np.cos(psi) * np.sin(phi), np.sin(psi)])
        pts = np.vstack([np.zeros(3), np.cumsum(d * step_nm, axis=0)])
        mid = n // 2
        start = rng.uniform(lo, np.where(hi > lo, hi, lo + 1e-9))
        pts += start - pts[mid]
        inside = np.all((pts >= out_lo) & (pts <= out_hi), axis=1)
        # the contiguous run of points inside the enlarged box that holds the midpoint
        first = mid
        while first > 0 and inside[first - 1]:
            first -= 1
        last = mid
        while last < n and inside[last + 1]:
            last += 1
        pts = pts[first : last + 1]
        seg = np.linalg.norm(np.diff(pts, axis=0), axis=1)
        s = np.concatenate([[0.0], np.cumsum(seg)])
        total = float(s[-1])
        paths.append(pts)
        n_lab = int(rng.poisson(labels_per_um * total / 1000.0))
        if n_lab == 0:
            continue
        sl = rng.uniform(0.0, total, n_lab)
        centre = np.column_stack([np.interp(sl, s, pts[:, i]) for i in range(3)])
        idx = np.clip(np.searchsorted(s, sl, side="right") - 1, 0, len(seg) - 1)
        tangent = (pts[idx + 1] - pts[idx]) / seg[idx, None]
        n1 = np.cross(tangent, [0.0, 0.0, 1.0])
        n1 /= np.linalg.norm(n1, axis=1, keepdims=True)
        n2 = np.cross(tangent, n1)
        alpha = rng.uniform(0, 2 * np.pi, n_lab)[:, None]
        pos = centre + label_radius * (np.cos(alpha) * n1 + np.sin(alpha) * n2)
        if label_jitter_nm:
            pos += rng.normal(0.0, label_jitter_nm, pos.shape)
        all_pos.append(pos)
        all_ids.append(np.full(n_lab, k, dtype=np.int64))
    gt["count"] = len(paths)
    if describe:
        gt.update(
            lengths_nm=[
                round(float(np.linalg.norm(np.diff(p, axis=0), axis=1).sum()), 1) for p in paths
            ],
            paths_nm=[_r(p[:: max(1, round(100 / step_nm))], 1) for p in paths],
        )
    if not all_pos:
        return _empty("microtubules", gt)
    positions = np.vstack(all_pos)
    return Structures(
        "microtubules", positions, np.ones(len(positions)), np.concatenate(all_ids), gt
    )


# -- chromatin --------------------------------------------------------------------------


def chromatin_domains(
    extent_nm: Sequence[float],
    *,
    origin_nm: Sequence[float] = (0.0, 0.0, 0.0),
    seed: SeedLike = 0,
    density_per_um3: float = 12.0,
    radius_of_gyration_nm: float = 110.0,
    radius_spread: float = 0.35,
    clutches_per_domain: float = 30.0,
    compaction_spread: float = 0.5,
    nucleosomes_per_clutch: float = 8.0,
    clutch_radius_nm: float = 20.0,
    labelling_efficiency: float = 0.5,
    dispersed_fraction: float = 0.15,
    per_nucleosome: bool = False,
    overhang_nm: float = 600.0,
    describe: bool = True,
) -> Structures:
    """Chromatin domains: clusters of nucleosome clutches of varying size and compaction.

    Domain centres are uniform in the box (``density_per_um3``). A domain's radius of
    gyration is log-normal around ``radius_of_gyration_nm`` (``radius_spread`` in log units,
    clipped to 40-400 nm); its compaction (a log-normal factor, ``compaction_spread``)
    scales how many clutches it holds, ``clutches_per_domain`` for a domain of the median
    size and compaction, more for larger volumes. Clutch centres are Gaussian around the
    domain centre; each clutch holds ``1 + Poisson(nucleosomes_per_clutch - 1)``
    nucleosomes within ``clutch_radius_nm``, each labelled with ``labelling_efficiency``
    (e.g. H2B-SNAP). ``dispersed_fraction`` of all labels sit on open chromatin spread
    uniformly through the box.

    With ``per_nucleosome=False`` (the default, for images) each clutch is one emitter whose
    weight is its label count: clutches are smaller than any far-field resolution, and it
    keeps rendering large volumes fast. ``per_nucleosome=True`` gives one position per
    labelled nucleosome (for localisation tables).

    ``describe=False`` leaves out the per-domain lists of the ground truth.

    Returns
    -------
    Structures
        ``kind="chromatin"``; ground truth with per-domain ``centres_nm``,
        ``radius_of_gyration_nm``, ``clutches``, ``labels`` and ``label_density_per_um3``
        (labels within the radius of gyration divided by its sphere volume).
    """
    lo, hi = _box(extent_nm, origin_nm)
    _check(density_per_um3 >= 0 and clutches_per_domain >= 0, "densities must not be negative")
    _check(radius_of_gyration_nm > 0 and clutch_radius_nm >= 0, "radii must be positive")
    _check(nucleosomes_per_clutch >= 1, "nucleosomes_per_clutch must be at least 1")
    _check(0 <= labelling_efficiency <= 1, "labelling_efficiency must lie between 0 and 1")
    _check(0 <= dispersed_fraction < 1, "dispersed_fraction must lie in [0, 1)")
    rng = np.random.default_rng(seed)
    gt: dict[str, Any] = {
        "kind": "chromatin",
        "structure": "chromatin domain",
        "protein": "histone H2B",
        "median_radius_of_gyration_nm": float(radius_of_gyration_nm),
        "clutch_radius_nm": float(clutch_radius_nm),
        "nucleosomes_per_clutch": float(nucleosomes_per_clutch),
        "labelling_efficiency": float(labelling_efficiency),
        "dispersed_fraction": float(dispersed_fraction),
        "box_nm": {"origin": _r(lo), "extent": _r(hi - lo)},
        "units": {"length": "nm", "density": "labels per cubic micrometre"},
        "count": 0,
        "centres_nm": [],
        "radius_of_gyration_nm": [],
        "compaction": [],
        "clutches": [],
        "labels": [],
        "label_density_per_um3": [],
        "dispersed_labels": 0,
    }
    volume_um3 = float(np.prod(hi - lo)) / 1e9
    n = int(rng.poisson(density_per_um3 * volume_um3))
    rg = np.clip(radius_of_gyration_nm * np.exp(rng.normal(0, radius_spread, n)), 40.0, 400.0)
    compaction = np.exp(rng.normal(0, compaction_spread, n))
    centres = rng.uniform(lo, hi, size=(n, 3))
    mean_clutches = clutches_per_domain * compaction * (rg / radius_of_gyration_nm) ** 3
    n_clutch = rng.poisson(mean_clutches)
    dom = np.repeat(np.arange(n), n_clutch)
    clutch_pos = centres[dom] + rng.normal(0, 1, (dom.size, 3)) * (rg[dom] / math.sqrt(3))[:, None]
    labels = rng.poisson(nucleosomes_per_clutch * labelling_efficiency, dom.size)
    has = labels > 0
    dom, clutch_pos, labels = dom[has], clutch_pos[has], labels[has]

    if per_nucleosome:
        rep = np.repeat(np.arange(dom.size), labels)
        pos = clutch_pos[rep] + rng.normal(0, clutch_radius_nm / math.sqrt(3), (rep.size, 3))
        ids = dom[rep]
        weights = np.ones(rep.size)
    else:
        pos, ids, weights = clutch_pos, dom, labels.astype(float)
    n_domain_labels = float(labels.sum())
    n_dispersed = int(rng.poisson(n_domain_labels * dispersed_fraction / (1 - dispersed_fraction)))
    disp = rng.uniform(lo, hi, size=(n_dispersed, 3))
    positions = np.vstack([pos, disp])
    weights = np.concatenate([weights, np.ones(n_dispersed)])
    ids = np.concatenate([ids, np.full(n_dispersed, -1, dtype=np.int64)]).astype(np.int64)
    keep = np.all((positions >= lo - overhang_nm) & (positions < hi + overhang_nm), axis=1)

    gt.update(count=n, dispersed_labels=n_dispersed)
    if describe:
        per_dom_labels = np.bincount(dom, weights=labels, minlength=n)
        # labels within one radius of gyration of the centre, over that sphere's volume
        dist = np.linalg.norm(clutch_pos - centres[dom], axis=1)
        inner = np.bincount(dom, weights=labels * (dist <= rg[dom]), minlength=n)
        density = inner / (4 / 3 * np.pi * (rg / 1000.0) ** 3)
        gt.update(
            centres_nm=_r(centres),
            radius_of_gyration_nm=_r(rg, 1),
            compaction=_r(compaction, 3),
            clutches=np.bincount(dom, minlength=n).astype(int).tolist(),
            labels=per_dom_labels.astype(int).tolist(),
            label_density_per_um3=_r(density, 0),
        )
    return Structures("chromatin", positions[keep], weights[keep], ids[keep], gt)
