"""The public face of nanorepo.samples does not drift."""

from __future__ import annotations

import nanorepo.samples as samples

EXPECTED = {
    "CONFOCAL", "MODALITIES", "SIM", "SMLM", "STED", "THUNDERSTORM_COLUMNS",
    "THUNDERSTORM_COLUMNS_3D", "DemoDataset", "Modality", "Structures", "SyntheticImage",
    "benchmark_volume", "build_ome", "chromatin_domains", "default_channel", "demo_datasets",
    "fwhm_to_sigma", "localisations", "microtubules", "nuclear_pores", "render",
    "render_channels", "render_localisations", "sigma_to_fwhm", "stream_ome_tiff",
    "write_benchmark_tiff", "write_imagej_tiff", "write_localisation_table", "write_ome_tiff",
    "write_plane_directory", "write_thunderstorm_csv",
}  # fmt: skip


def _isort_key(name: str) -> tuple[int, str]:
    """Constants, then classes, then functions (ruff RUF022's order)."""
    kind = 0 if name.isupper() else 1 if name[0].isupper() else 2
    return kind, name


def test_public_names() -> None:
    assert set(samples.__all__) == EXPECTED
    assert samples.__all__ == sorted(samples.__all__, key=_isort_key)
    for name in samples.__all__:
        assert getattr(samples, name) is not None
