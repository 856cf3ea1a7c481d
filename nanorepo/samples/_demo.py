"""The demo reference datasets: small, realistic, with ground truth a notebook can check.

:func:`demo_datasets` writes four datasets as a depositor would bring them (instrument
files with OME-XML, a ThunderSTORM table, a metadata file in nanorepo's deposit format)
plus a JSON ground truth per dataset, kept as a supporting file:

a. nuclear pores (Nup96), the same field by confocal and STED microscopy;
b. nuclear pores by 3D dSTORM: a ThunderSTORM localisation table and its rendering;
c. microtubules and chromatin, two-colour 3D-SIM, control and nocodazole-treated cells;
d. chromatin nanodomains by STED, control and TSA-treated nuclei, under embargo.

Everything is deterministic: the same call writes the same bytes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from nanorepo.errors import InvalidInput
from nanorepo.ome._source import Channel
from nanorepo.samples._geometry import (
    Structures,
    chromatin_domains,
    dump_json,
    microtubules,
    nuclear_pores,
)
from nanorepo.samples._modality import CONFOCAL, SIM, SMLM, STED, Modality
from nanorepo.samples._render import render, render_channels
from nanorepo.samples._smlm import localisations, render_localisations, write_thunderstorm_csv
from nanorepo.samples._synthetic import default_channel
from nanorepo.samples._tiff import write_ome_tiff

__all__ = ["EMBARGO_UNTIL", "DemoDataset", "demo_datasets"]

#: Release date of the embargoed demo dataset.
EMBARGO_UNTIL = date(2030, 1, 1)

_AUTHORS = [
    {
        "name": "nanorepo sample generator",
        "affiliation": "nanorepo project; synthetic reference data with known ground truth",
    }
]
_SYNTHETIC_NOTE = (
    " The images are synthetic: label positions were drawn from a published structural "
    "model and rendered with a Gaussian PSF, background, shot noise and detector offset "
    "(nanorepo.samples), so the ground truth in the supporting JSON file is exact."
)
_COORDINATES = (
    "x, y, z in nm; the centre of pixel (row 0, column 0) of every image is at x = y = 0, "
    "so column = x / pixel size and row = y / pixel size; in 3D stacks plane k is at "
    "z = k * z step"
)


@dataclass(frozen=True)
class DemoDataset:
    """One demo dataset, written to disk and ready to deposit.

    Attributes
    ----------
    slug:
        Short name, also its subdirectory.
    title:
        Title as the repository shows it.
    inputs:
        Files to deposit (OME-TIFFs, a ThunderSTORM CSV).
    metadata:
        The deposit metadata (nanorepo's REMBI-shaped format), JSON/YAML-able.
    ground_truth:
        JSON ground-truth files, to keep as supporting files.
    embargo_until:
        Release date for an embargoed dataset, else ``None``.
    metadata_file:
        ``metadata`` written as YAML next to the inputs.
    """

    slug: str
    title: str
    inputs: tuple[Path, ...]
    metadata: dict[str, Any]
    ground_truth: tuple[Path, ...]
    embargo_until: date | None
    metadata_file: Path


def _acq(mod: Modality, pixel_nm: float, z_nm: float | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "pixel_size_nm": pixel_nm,
        "psf_fwhm_lateral_nm": mod.fwhm_lateral_nm,
        "psf_fwhm_axial_nm": mod.fwhm_axial_nm,
        "photons_per_label": mod.photons_per_label,
        "background_photons": mod.background_photons,
        "offset_adu": mod.offset_adu,
    }
    if z_nm is not None:
        out["z_step_nm"] = z_nm
    return out


def _date(day: int, hour: int) -> datetime:
    return datetime(2024, 5, day, hour, 0, tzinfo=UTC)


def _study(title: str, description: str, keywords: list[str]) -> dict[str, Any]:
    return {
        "title": title,
        "description": description + _SYNTHETIC_NOTE,
        "authors": _AUTHORS,
        "keywords": keywords,
        "license": "CC-BY-4.0",
    }


_BIOSAMPLE = {
    "organism": "Homo sapiens",
    "ncbi_taxon": 9606,
    "cell_line": "U2OS",
    "description": "U2OS osteosarcoma cells grown on #1.5H coverslips",
}


def _write_meta(directory: Path, meta: dict[str, Any]) -> Path:
    p = directory / "metadata.yaml"
    p.write_text(yaml.safe_dump(meta, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return p


# -- (a) NPC confocal + STED ------------------------------------------------------------


def _npc_confocal_sted(directory: Path) -> DemoDataset:
    slug = "npc-confocal-sted"
    d = directory / slug
    d.mkdir(parents=True, exist_ok=True)
    field_nm = 12800.0
    npc = nuclear_pores((field_nm, field_nm, 400.0), origin_nm=(-25.0, -25.0, -200.0), seed=101)
    channel = default_channel("nuclear_pores")
    kv = {"cell_line": "U2OS", "condition": "control", "field": "1", "target": "Nup96"}
    images = [
        ("npc_confocal.ome.tif", CONFOCAL, 50.0, 11),
        ("npc_sted.ome.tif", STED, 20.0, 12),
    ]
    inputs = []
    per_image: dict[str, Any] = {}
    for fname, mod, px, hour in images:
        n = int(field_nm // px)
        img = render(npc, mod, (n, n), pixel_size_nm=px, seed=hour)
        inputs.append(
            write_ome_tiff(
                d / fname,
                img,
                dims=("y", "x"),
                pixel_sizes_nm={"y": px, "x": px},
                channels=[channel],
                modality=mod,
                acquisition_date=_date(14, hour),
                description=f"Nup96-SNAP-AF647, lower nuclear envelope, {mod.name}",
                key_values={**kv, "technique": mod.technique},
            )
        )
        per_image[fname] = {
            "technique": mod.technique,
            "key_values": {**kv, "technique": mod.technique},
        }
    title = "Nuclear pore complexes imaged by confocal and STED microscopy (Nup96, U2OS)"
    gt = d / "npc_confocal_sted.ground_truth.json"
    npc.save_ground_truth(
        gt,
        dataset=slug,
        coordinates=_COORDINATES,
        images={
            "npc_confocal.ome.tif": _acq(CONFOCAL, 50.0),
            "npc_sted.ome.tif": _acq(STED, 20.0),
        },
        answers={"diameter_nm": 107.0, "symmetry": 8, "ring_separation_nm": 50.0},
    )
    meta = {
        "study": _study(
            title,
            "The lower nuclear envelope of a U2OS cell expressing Nup96-SNAP labelled with "
            "BG-AF647, imaged in the same field by confocal microscopy (250 nm resolution) "
            "and 2D-STED (40 nm). Confocal shows diffraction-limited spots; STED resolves "
            "the eightfold ring of each pore (107 nm diameter). A reference for comparing "
            "resolution, counting pores and measuring ring diameter and labelling "
            "efficiency.",
            ["nuclear pore complex", "Nup96", "STED", "confocal", "resolution", "reference data"],
        ),
        "biosample": _BIOSAMPLE,
        "specimen": {
            "preparation": "fixed 2.4% PFA; SNAP-tag labelled with BG-AF647; mounted in PBS",
            "labels": [{"target": "Nup96", "fluorophore": "AF647", "method": "SNAP-tag"}],
        },
        "image_acquisition": {
            "instrument": "synthetic confocal/STED (nanorepo sample generator)",
            "objective": "100x/1.40 oil",
            "depletion_wavelength_nm": 775,
        },
        "images": per_image,
    }
    return DemoDataset(slug, title, tuple(inputs), meta, (gt,), None, _write_meta(d, meta))


# -- (b) NPC dSTORM ---------------------------------------------------------------------


def _npc_smlm(directory: Path) -> DemoDataset:
    slug = "npc-dstorm-3d"
    d = directory / slug
    d.mkdir(parents=True, exist_ok=True)
    field_nm = 8000.0
    npc = nuclear_pores((field_nm, field_nm, 400.0), origin_nm=(0.0, 0.0, -200.0), seed=202)
    table = localisations(npc, seed=203, frames=20000, three_d=True, spurious_per_frame=0.05)
    csv = write_thunderstorm_csv(table, d / "npc_dstorm_localisations.csv")
    px = 10.0
    n = int(field_nm // px)
    img = render_localisations(table, pixel_size_nm=px, shape=(n, n))
    channel = default_channel("nuclear_pores")
    kv = {"cell_line": "U2OS", "condition": "control", "target": "Nup96"}
    tif = write_ome_tiff(
        d / "npc_dstorm_rendered.ome.tif",
        img,
        dims=("y", "x"),
        pixel_sizes_nm={"y": px, "x": px},
        channels=[channel],
        modality=SMLM,
        acquisition_date=_date(15, 9),
        description="Gaussian rendering of npc_dstorm_localisations.csv "
        f"(sigma = median localisation uncertainty, {px:g} nm pixels)",
        key_values={**kv, "rendering": "Gaussian, median uncertainty"},
    )
    title = "Nuclear pore complexes by 3D dSTORM: localisations and rendering (Nup96, U2OS)"
    gt = d / "npc_dstorm.ground_truth.json"
    npc.save_ground_truth(
        gt,
        dataset=slug,
        coordinates=_COORDINATES,
        localisations={
            "file": csv.name,
            "count": len(table),
            "frames": 20000,
            "three_d": True,
            "median_uncertainty_nm": round(float(np.median(table["uncertainty_nm"])), 2),
            "spurious": int((table["label"] < 0).sum()),
            "format": "ThunderSTORM CSV, 3D astigmatism; frame and id 1-based",
        },
        images={tif.name: {"pixel_size_nm": px, "rendering": "Gaussian"}},
        answers={"diameter_nm": 107.0, "symmetry": 8, "ring_separation_nm": 50.0},
    )
    meta = {
        "study": _study(
            title,
            "3D dSTORM of Nup96-SNAP-AF647 in the lower nuclear envelope of a U2OS cell: "
            "20,000 frames, astigmatic 3D, fitted with ThunderSTORM-style output. The table "
            "resolves both the eightfold symmetry and the cytoplasmic and nuclear rings "
            "(50 nm apart in z). A reference for SMLM analysis: clustering, ring fitting, "
            "effective labelling efficiency, FRC resolution.",
            ["nuclear pore complex", "Nup96", "dSTORM", "SMLM", "3D", "ThunderSTORM"],
        ),
        "biosample": _BIOSAMPLE,
        "specimen": {
            "preparation": "fixed 2.4% PFA; SNAP-tag labelled with BG-AF647; "
            "imaged in blinking buffer (MEA, glucose oxidase)",
            "labels": [{"target": "Nup96", "fluorophore": "AF647", "method": "SNAP-tag"}],
        },
        "image_acquisition": {
            "technique": "SMLM",
            "instrument": SMLM.microscope,
            "frames": 20000,
            "exposure_ms": 15,
            "camera_pixel_nm": 100,
            "localisation_software": "ThunderSTORM-compatible export (synthetic)",
        },
        "images": {tif.name: {"key_values": kv}},
    }
    return DemoDataset(slug, title, (csv, tif), meta, (gt,), None, _write_meta(d, meta))


# -- (c) microtubules + chromatin, 3D-SIM -------------------------------------------------


def _in_nucleus(
    s: Structures, centre: tuple[float, float], semi_axes: tuple[float, float]
) -> Structures:
    """Keep chromatin inside an elliptical nucleus; prune the per-domain ground truth."""
    (cx, cy), (ax, ay) = centre, semi_axes

    def inside(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return ((x - cx) / ax) ** 2 + ((y - cy) / ay) ** 2 <= 1.0

    gt = dict(s.ground_truth)
    centres = np.asarray(gt.get("centres_nm", []), dtype=float).reshape(-1, 3)
    keep_dom = inside(centres[:, 0], centres[:, 1])
    new_index = np.append(np.cumsum(keep_dom) - 1, -1)
    for key in (
        "centres_nm",
        "radius_of_gyration_nm",
        "compaction",
        "clutches",
        "labels",
        "label_density_per_um3",
    ):
        gt[key] = [v for v, k in zip(gt[key], keep_dom, strict=True) if k]
    gt["count"] = int(keep_dom.sum())
    gt["nucleus"] = {"centre_nm": [cx, cy], "semi_axes_nm": [ax, ay], "shape": "ellipse in x, y"}
    ids = s.structure_ids
    pos = s.positions_nm
    row = np.where(ids >= 0, ids, keep_dom.size)  # -1 (dispersed) -> the padding entry
    keep = np.where(ids >= 0, np.append(keep_dom, False)[row], inside(pos[:, 0], pos[:, 1]))
    gt["dispersed_labels"] = int(((ids < 0) & keep).sum())
    new_ids = new_index[row]
    return Structures(s.kind, pos[keep], s.weights[keep], new_ids[keep], gt)


def _sim_cells(directory: Path) -> DemoDataset:
    slug = "microtubules-chromatin-3dsim"
    d = directory / slug
    d.mkdir(parents=True, exist_ok=True)
    px, dz, nz, n = 40.0, 125.0, 16, 256
    field = n * px
    depth = nz * dz
    channels = [default_channel("chromatin"), default_channel("microtubules")]
    sim = SIM
    inputs: list[Path] = []
    gts: list[Path] = []
    per_image: dict[str, Any] = {}
    cells = [
        ("cell1_control.ome.tif", "control", 301, {}),
        (
            "cell2_nocodazole.ome.tif",
            "nocodazole 10 uM, 1 h",
            302,
            {"density_per_um2": 0.35, "length_nm": (300.0, 1500.0)},
        ),
    ]
    for fname, condition, seed, mt_opts in cells:
        box = (field, field, depth)
        chrom = _in_nucleus(
            chromatin_domains(box, seed=seed, density_per_um3=10.0),
            centre=(field * 0.45, field * 0.55),
            semi_axes=(field * 0.32, field * 0.26),
        )
        mt_kw: dict[str, Any] = {"density_per_um2": 0.25, **mt_opts}
        mts = microtubules(box, seed=seed + 1000, tilt_sd_rad=0.03, **mt_kw)
        data = render_channels(
            [chrom, mts],
            [sim, sim.with_(photons_per_label=100.0)],  # the tubulin stain is the brighter
            (nz, n, n),
            pixel_size_nm=px,
            z_step_nm=dz,
            seed=seed,
        )
        kv = {"cell_line": "U2OS", "condition": condition}
        inputs.append(
            write_ome_tiff(
                d / fname,
                data,
                dims=("c", "z", "y", "x"),
                pixel_sizes_nm={"z": dz, "y": px, "x": px},
                channels=channels,
                modality=sim,
                acquisition_date=_date(16, 10 + len(inputs)),
                description=f"3D-SIM, reconstructed; H2B and alpha-tubulin; {condition}",
                key_values=kv,
            )
        )
        per_image[fname] = {"key_values": kv}
        gt = d / f"{fname.split('.')[0]}.ground_truth.json"
        gt.write_text(
            dump_json(
                {
                    "dataset": slug,
                    "image": fname,
                    "coordinates": _COORDINATES,
                    "acquisition": _acq(sim, px, dz),
                    "channels": {
                        "0": {**chrom.ground_truth, "label_positions": len(chrom)},
                        "1": {**mts.ground_truth, "label_positions": len(mts)},
                    },
                    "answers": {
                        "microtubule_diameter_nm": 25.0,
                        "microtubules": mts.ground_truth["count"],
                        "chromatin_domains": chrom.ground_truth["count"],
                    },
                }
            ),
            encoding="utf-8",
        )
        gts.append(gt)
    title = "Microtubules and chromatin in control and nocodazole-treated U2OS cells (3D-SIM)"
    meta = {
        "study": _study(
            title,
            "Two-colour 3D structured illumination microscopy of U2OS cells: chromatin "
            "(H2B-SNAP, AF568) and microtubules (anti-alpha-tubulin, AF488), 16 planes of "
            "125 nm. In the control cell long microtubules cross the field; after "
            "nocodazole only short fragments remain. A reference for filament tracing, "
            "3D segmentation and the comparison of conditions.",
            ["microtubules", "chromatin", "3D-SIM", "nocodazole", "two-colour"],
        ),
        "biosample": _BIOSAMPLE,
        "specimen": {
            "preparation": "fixed 4% PFA, permeabilised 0.1% Triton X-100; "
            "nocodazole 10 uM for 1 h before fixation (cell 2)",
            "labels": [
                {"target": "histone H2B", "fluorophore": "AF568", "method": "SNAP-tag"},
                {"target": "alpha-tubulin", "fluorophore": "AF488", "method": "immunofluorescence"},
            ],
        },
        "image_acquisition": {
            "technique": "SIM",
            "instrument": sim.microscope,
            "reconstruction": "synthetic (rendered at 120 nm lateral resolution)",
        },
        "images": per_image,
    }
    return DemoDataset(slug, title, tuple(inputs), meta, tuple(gts), None, _write_meta(d, meta))


# -- (d) chromatin STED, embargoed ------------------------------------------------------


def _chromatin_sted(directory: Path) -> DemoDataset:
    slug = "chromatin-sted-tsa"
    d = directory / slug
    d.mkdir(parents=True, exist_ok=True)
    px, n = 20.0, 500
    field = n * px
    channel = Channel(
        name="H2B-SNAP-STAR-RED",
        color="FF00FF",
        emission_wavelength_nm=660.0,
        excitation_wavelength_nm=640.0,
        fluorophore="abberior STAR RED",
    )
    sted = STED.with_(photons_per_label=6.0)
    inputs: list[Path] = []
    gts: list[Path] = []
    per_image: dict[str, Any] = {}
    conditions: list[tuple[str, str, int, dict[str, Any]]] = [
        ("nucleus1_control.ome.tif", "control", 401, {}),
        (
            "nucleus2_tsa.ome.tif",
            "trichostatin A 300 nM, 24 h",
            402,
            {
                "radius_of_gyration_nm": 160.0,
                "compaction_spread": 0.3,
                "clutches_per_domain": 22.0,
                "dispersed_fraction": 0.3,
            },
        ),
    ]
    for fname, condition, seed, opts in conditions:
        chrom = _in_nucleus(
            chromatin_domains(
                (field, field, 800.0), origin_nm=(0.0, 0.0, -400.0), seed=seed, **opts
            ),
            centre=(field * 0.5, field * 0.5),
            semi_axes=(field * 0.42, field * 0.36),
        )
        img = render(chrom, sted, (n, n), pixel_size_nm=px, seed=seed)
        kv = {"cell_line": "U2OS", "condition": condition}
        inputs.append(
            write_ome_tiff(
                d / fname,
                img,
                dims=("y", "x"),
                pixel_sizes_nm={"y": px, "x": px},
                channels=[channel],
                modality=sted,
                acquisition_date=_date(20, 14 + len(inputs)),
                description=f"2D-STED of H2B-SNAP in the nuclear mid-plane; {condition}",
                key_values=kv,
            )
        )
        per_image[fname] = {"key_values": kv}
        gt = d / f"{fname.split('.')[0]}.ground_truth.json"
        chrom.save_ground_truth(
            gt,
            dataset=slug,
            image=fname,
            coordinates=_COORDINATES,
            acquisition=_acq(sted, px),
            answers={
                "domains": chrom.ground_truth["count"],
                "median_radius_of_gyration_nm": round(
                    float(np.median(chrom.ground_truth["radius_of_gyration_nm"] or [0.0])), 1
                ),
            },
        )
        gts.append(gt)
    title = "Chromatin nanodomains in control and TSA-treated nuclei by STED (H2B, U2OS)"
    meta = {
        "study": _study(
            title,
            "2D-STED of H2B-SNAP labelled with STAR RED in the mid-plane of U2OS nuclei, "
            "untreated and after histone deacetylase inhibition with trichostatin A, which "
            "decompacts chromatin: domains grow larger and less dense and more signal is "
            "dispersed. Under embargo until publication.",
            ["chromatin", "nanodomains", "STED", "TSA", "histone H2B"],
        ),
        "biosample": _BIOSAMPLE,
        "specimen": {
            "preparation": "fixed 4% PFA; SNAP-tag labelled with BG-STAR RED; TSA 300 nM "
            "for 24 h (nucleus 2)",
            "labels": [{"target": "histone H2B", "fluorophore": "STAR RED", "method": "SNAP-tag"}],
        },
        "image_acquisition": {
            "technique": "STED",
            "instrument": sted.microscope,
            "depletion_wavelength_nm": 775,
        },
        "images": per_image,
    }
    return DemoDataset(
        slug, title, tuple(inputs), meta, tuple(gts), EMBARGO_UNTIL, _write_meta(d, meta)
    )


def demo_datasets(directory: Path | str) -> list[DemoDataset]:
    """Write the demo reference datasets under ``directory`` and describe them.

    Four datasets (about 15 MB, a few seconds): nuclear pores by confocal and STED; by 3D
    dSTORM as a ThunderSTORM table plus rendering; microtubules and chromatin by two-colour
    3D-SIM; chromatin by STED, embargoed until :data:`EMBARGO_UNTIL`. Each comes with its
    deposit metadata (also written as ``metadata.yaml``) and JSON ground truth with the
    answers a training notebook checks (NPC diameter 107 nm, eightfold symmetry, ring
    separation 50 nm, centres, filament paths, domain sizes). Deterministic.
    """
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise InvalidInput(f"{directory}: is not a directory")
    directory.mkdir(parents=True, exist_ok=True)
    return [
        _npc_confocal_sted(directory),
        _npc_smlm(directory),
        _sim_cells(directory),
        _chromatin_sted(directory),
    ]
