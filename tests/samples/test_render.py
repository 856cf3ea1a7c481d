"""Rendering: PSF width, photon budget, shot noise statistics, determinism."""

from __future__ import annotations

import numpy as np
import pytest

from nanorepo.errors import InvalidInput
from nanorepo.samples import (
    CONFOCAL,
    SIM,
    STED,
    Modality,
    fwhm_to_sigma,
    nuclear_pores,
    render,
    render_channels,
    sigma_to_fwhm,
)
from nanorepo.samples._render import poisson


def test_fwhm_sigma_conversion() -> None:
    assert fwhm_to_sigma(2.3548200450309493) == pytest.approx(1.0)
    assert sigma_to_fwhm(fwhm_to_sigma(250.0)) == pytest.approx(250.0)
    assert STED.sigma_lateral_nm == pytest.approx(40.0 / 2.35482, rel=1e-4)


@pytest.mark.parametrize("mod", [CONFOCAL, STED, SIM])
def test_rendered_psf_has_the_stated_width_and_photons(mod: Modality) -> None:
    px = mod.pixel_size_nm
    x0, y0 = 40.3 * px, 37.8 * px
    img = render(np.array([[x0, y0, 0.0]]), mod, (80, 80), noise=False)
    signal = (img - mod.offset_adu) / mod.gain_adu_per_photon - mod.background_photons
    assert signal.sum() == pytest.approx(mod.photons_per_label, rel=1e-3)
    yy, xx = np.mgrid[0:80, 0:80] * px
    w = signal / signal.sum()
    cx, cy = (w * xx).sum(), (w * yy).sum()
    assert (cx, cy) == pytest.approx((x0, y0), abs=0.05 * px)
    sigma = np.sqrt((w * (xx - cx) ** 2).sum())
    assert sigma == pytest.approx(mod.sigma_lateral_nm, rel=0.04)


def test_axial_psf_weights_out_of_focus_labels() -> None:
    z = fwhm_to_sigma(CONFOCAL.fwhm_axial_nm)
    inf = render(np.array([[1000.0, 1000.0, 0.0]]), CONFOCAL, (40, 40), noise=False)
    off = render(np.array([[1000.0, 1000.0, z]]), CONFOCAL, (40, 40), noise=False)
    bg = CONFOCAL.background_photons
    assert (off - bg).sum() / (inf - bg).sum() == pytest.approx(np.exp(-0.5), rel=1e-3)


def test_3d_stack_peaks_at_the_label_plane() -> None:
    img = render(np.array([[800.0, 800.0, 5 * 150.0]]), CONFOCAL, (11, 32, 32), noise=False)
    assert img.shape == (11, 32, 32) and img.dtype == np.float32
    assert int(np.argmax(img.sum(axis=(1, 2)))) == 5


def test_background_is_poisson() -> None:
    mod = CONFOCAL.with_(background_photons=4.0)
    img = render(np.zeros((0, 3)), mod, (400, 400), seed=1).astype(float)
    assert img.mean() == pytest.approx(4.0, rel=0.02)
    assert img.var() == pytest.approx(img.mean(), rel=0.03)
    assert np.mean(img == 0) == pytest.approx(np.exp(-4.0), rel=0.1)
    cam = SIM.with_(background_photons=10.0, read_noise_adu=0.0)
    img = render(np.zeros((0, 3)), cam, (400, 400), seed=1).astype(float) - cam.offset_adu
    assert img.var() == pytest.approx(img.mean(), rel=0.03)


@pytest.mark.parametrize("lam", [0.02, 0.7, 3.3, 12.0, 31.99, 32.0, 150.0])
def test_fast_poisson_sampler(lam: float) -> None:
    counts = poisson(np.full(400_000, lam, dtype=np.float32), np.random.default_rng(0))
    c = counts.astype(float)
    assert c.mean() == pytest.approx(lam, rel=0.02, abs=0.002)
    assert c.var() == pytest.approx(lam, rel=0.03, abs=0.005)
    assert np.mean(c == 0) == pytest.approx(np.exp(-lam), rel=0.05, abs=1e-4)


def test_render_is_deterministic_by_seed() -> None:
    npc = nuclear_pores((3000, 3000, 400), origin_nm=(0, 0, -200), seed=1)
    a = render(npc, "STED", (150, 150), seed=5)
    assert a.dtype == np.uint16
    assert np.array_equal(a, render(npc, "sted", (150, 150), seed=5))
    assert not np.array_equal(a, render(npc, "STED", (150, 150), seed=6))


def test_render_channels_stacks() -> None:
    npc = nuclear_pores((2000, 2000, 400), origin_nm=(0, 0, -200), seed=1)
    out = render_channels([npc, npc.positions_nm], SIM, (3, 50, 50))
    assert out.shape == (2, 3, 50, 50) and out.dtype == np.uint16
    with pytest.raises(InvalidInput):
        render_channels([npc], [SIM, STED], (50, 50))


def test_bad_render_arguments() -> None:
    with pytest.raises(InvalidInput):
        render(np.zeros((0, 3)), "STED", (2, 2, 2, 2))
    with pytest.raises(InvalidInput, match="unknown modality"):
        render(np.zeros((0, 3)), "MRI", (8, 8))
    with pytest.raises(InvalidInput):
        render(np.zeros((4, 5)), "STED", (8, 8))
    with pytest.raises(InvalidInput):
        STED.with_(pixel_size_nm=0)
