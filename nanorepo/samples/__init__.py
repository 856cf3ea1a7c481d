"""Synthetic nanoscopy reference data with known ground truth.

No network is reachable but package registries, so nanorepo makes its own reference data:
label positions of real structures drawn from structural models (nuclear pore complexes,
microtubules, chromatin domains), rendered as confocal, STED, SIM and SMLM data with
Gaussian PSFs, background, shot noise and detector offsets, and written as the files
instruments produce (OME-TIFF with rich OME-XML, ImageJ hyperstacks, plane directories,
ThunderSTORM tables). Every dataset comes with a JSON ground truth a training notebook can
check its answer against.

* Geometry: :func:`nuclear_pores`, :func:`microtubules`, :func:`chromatin_domains` return
  :class:`Structures` (positions in nm plus ground truth).
* Images: :func:`render`, :func:`render_channels` with a :class:`Modality`
  (:data:`CONFOCAL`, :data:`STED`, :data:`SIM`, :data:`SMLM`).
* Any size: :class:`SyntheticImage`, an image source rendering only the regions read;
  :func:`stream_ome_tiff`, :func:`benchmark_volume`, :func:`write_benchmark_tiff`.
* SMLM: :func:`localisations`, :func:`write_thunderstorm_csv`,
  :func:`write_localisation_table`, :func:`render_localisations`.
* Files: :func:`write_ome_tiff`, :func:`build_ome`, :func:`write_imagej_tiff`,
  :func:`write_plane_directory`.
* Demo: :func:`demo_datasets` writes the repository's reference datasets.
"""

from __future__ import annotations

from nanorepo.samples._benchmark import benchmark_volume, write_benchmark_tiff
from nanorepo.samples._demo import DemoDataset, demo_datasets
from nanorepo.samples._geometry import (
    Structures,
    chromatin_domains,
    microtubules,
    nuclear_pores,
)
from nanorepo.samples._modality import (
    CONFOCAL,
    MODALITIES,
    SIM,
    SMLM,
    STED,
    Modality,
    fwhm_to_sigma,
    sigma_to_fwhm,
)
from nanorepo.samples._render import render, render_channels
from nanorepo.samples._smlm import (
    THUNDERSTORM_COLUMNS,
    THUNDERSTORM_COLUMNS_3D,
    localisations,
    render_localisations,
    write_localisation_table,
    write_thunderstorm_csv,
)
from nanorepo.samples._synthetic import SyntheticImage, default_channel
from nanorepo.samples._tiff import (
    build_ome,
    stream_ome_tiff,
    write_imagej_tiff,
    write_ome_tiff,
    write_plane_directory,
)

__all__ = [
    "CONFOCAL",
    "MODALITIES",
    "SIM",
    "SMLM",
    "STED",
    "THUNDERSTORM_COLUMNS",
    "THUNDERSTORM_COLUMNS_3D",
    "DemoDataset",
    "Modality",
    "Structures",
    "SyntheticImage",
    "benchmark_volume",
    "build_ome",
    "chromatin_domains",
    "default_channel",
    "demo_datasets",
    "fwhm_to_sigma",
    "localisations",
    "microtubules",
    "nuclear_pores",
    "render",
    "render_channels",
    "render_localisations",
    "sigma_to_fwhm",
    "stream_ome_tiff",
    "write_benchmark_tiff",
    "write_imagej_tiff",
    "write_localisation_table",
    "write_ome_tiff",
    "write_plane_directory",
    "write_thunderstorm_csv",
]
