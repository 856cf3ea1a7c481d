"""Render label positions as microscope images: Gaussian PSF, background, shot noise, detector.

The image of a set of point emitters under a Gaussian PSF is the label density blurred by
that Gaussian. The renderer computes it the cheap way. Each image plane is a focal plane:
a label contributes to it in proportion to the axial PSF at its distance from the plane
(1 in focus), so out-of-focus labels add haze, as in a real microscope, and the value of
a plane does not depend on the z step. Within the plane every label is spread onto the
pixel grid by linear interpolation ("cloud in cell", 2 neighbours per axis), the grid is
blurred with separable Gaussian filters (scipy.ndimage), and the margins the blur needs
are cut off again. Linear interpolation widens the blur by a triangle kernel of variance
1/6 px² per axis, which is subtracted from the filter's variance, so the rendered PSF has
the requested width.

Pixel ``i`` has its centre at ``i * pixel_size`` from the image origin; positions are
``x, y, z`` in nanometres, images ``(y, x)`` or ``(z, y, x)``.

Detection: ``value = offset + gain * Poisson(signal + background) + Normal(0, read_noise)``,
rounded and clipped to uint16, with the :class:`~nanorepo.samples.Modality`'s numbers.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import ndimage as ndi

from nanorepo.errors import InvalidInput
from nanorepo.samples._geometry import SeedLike, Structures
from nanorepo.samples._modality import Modality, get_modality

__all__ = ["detect", "expected_photons", "poisson", "render", "render_channels"]

#: The PSF is cut off this many standard deviations from its centre.
TRUNCATE = 4.0
_CIC_VARIANCE = 1.0 / 6.0


def _margin(sigma_px: float) -> int:
    return math.ceil(TRUNCATE * sigma_px) + 1


def _gauss_taps(sigma_px: float) -> np.ndarray:
    """Normalised, truncated, sampled Gaussian kernel for a blur of ``sigma_px``."""
    s2 = max(sigma_px * sigma_px - _CIC_VARIANCE, 0.0)
    if s2 <= 1e-12:
        return np.ones(1)
    s = math.sqrt(s2)
    r = int(TRUNCATE * s + 0.5)
    k = np.exp(-0.5 * (np.arange(-r, r + 1) / s) ** 2)
    return k / k.sum()


def _blur_crop(a: np.ndarray, axis: int, sigma_px: float, margin: int) -> np.ndarray:
    """Blur a float32 3D array along ``axis`` and cut ``margin`` from both ends of it.

    ``scipy.ndimage.correlate1d``, not a banded matrix product on BLAS: BLAS worker threads
    spin badly when the machine's cores are busy, which made matrix products erratic.
    """
    n_out = a.shape[axis] - 2 * margin
    taps = _gauss_taps(sigma_px)
    index: list[slice] = [slice(None)] * 3
    if taps.size == 1:
        index[axis] = slice(margin, margin + n_out)
        return np.ascontiguousarray(a[tuple(index)])
    blurred = ndi.correlate1d(a, taps, axis=axis, mode="constant")
    index[axis] = slice(margin, margin + n_out)
    return np.ascontiguousarray(blurred[tuple(index)])


def expected_photons(
    positions_nm: np.ndarray,
    weights: np.ndarray | None,
    *,
    start_px: Sequence[int],
    shape: Sequence[int],
    pixel_size_nm: Sequence[float],
    sigma_nm: Sequence[float],
    photons_per_label: float,
    focal_plane_nm: float | None = None,
) -> np.ndarray:
    """Noise-free photons per pixel from point emitters under a Gaussian PSF.

    Parameters
    ----------
    positions_nm, weights:
        ``(N, 3)`` label positions ``x, y, z`` in nm and fluorophores per position.
    start_px, shape:
        Global index ``(z, y, x)`` of the first pixel and the shape ``(nz, ny, nx)`` to
        render; a window into an image whose pixel ``i`` sits at ``i * pixel_size``.
    pixel_size_nm, sigma_nm:
        ``(z, y, x)`` pixel size and PSF standard deviation in nm.
    photons_per_label:
        Photons one label contributes to the plane it is in focus in, summed over the plane.
    focal_plane_nm:
        For a single-plane (2D) image: the z of the focal plane; ``shape[0]`` must be 1.
        ``None`` renders a 3D stack with planes at ``z_index * pixel_size_nm[0]``. Either
        way a label contributes to a plane in proportion to the axial PSF
        ``exp(-dz² / 2 sigma_z²)`` at its distance ``dz`` from it (1 in focus).

    Returns
    -------
    numpy.ndarray
        float32 ``shape`` array of expected photons (signal only, no background).
    """
    nz, ny, nx = (int(s) for s in shape)
    z0, y0, x0 = (int(s) for s in start_px)
    pz, py, px = (float(p) for p in pixel_size_nm)
    sy, sx = float(sigma_nm[1]) / py, float(sigma_nm[2]) / px
    sig_z = float(sigma_nm[0])
    my, mx = _margin(sy), _margin(sx)
    NY, NX = ny + 2 * my, nx + 2 * mx
    pos = np.asarray(positions_nm, dtype=float).reshape(-1, 3)
    w = np.ones(len(pos)) if weights is None else np.asarray(weights, dtype=float)

    # focal plane of every output plane, and which labels any of them can see
    if focal_plane_nm is not None:
        planes_nm = np.array([float(focal_plane_nm)])
        if nz != 1:
            raise InvalidInput("a single-plane render has shape (1, ny, nx)")
    else:
        planes_nm = (z0 + np.arange(nz)) * pz
    reach = TRUNCATE * sig_z
    u = pos[:, 0] / px - (x0 - mx)
    v = pos[:, 1] / py - (y0 - my)
    z = pos[:, 2]
    keep = (u >= 0) & (u < NX - 1) & (v >= 0) & (v < NY - 1)
    keep &= (z >= planes_nm[0] - reach) & (z <= planes_nm[-1] + reach)
    u, v, z, w = u[keep], v[keep], z[keep], w[keep]
    # bucket the labels by the output plane nearest to them (a radix sort on small ints)
    spacing = float(planes_nm[1] - planes_nm[0]) if nz > 1 else 1.0
    n_reach = math.ceil(reach / spacing) if nz > 1 else 0
    key_type = np.int16 if nz + n_reach < 2**15 - 1 else np.int32
    key = np.rint((z - planes_nm[0]) / spacing).astype(key_type) if nz > 1 else None
    if key is not None:
        order = np.argsort(key, kind="stable")
        u, v, z, w, key = u[order], v[order], z[order], w[order], key[order]
    iu, iv = np.floor(u), np.floor(v)
    fu, fv = u - iu, v - iv
    # the grid is stored x-major, (z, x, y), so that the y blur runs along contiguous memory
    base = iu.astype(np.int64) * NY + iv.astype(np.int64)
    # linear interpolation onto the 4 neighbouring pixels
    index = np.stack([base, base + 1, base + NY, base + NY + 1], axis=1)
    wxy = np.stack([(1 - fu) * (1 - fv), (1 - fu) * fv, fu * (1 - fv), fu * fv], axis=1)
    wxy *= (w * photons_per_label)[:, None]
    out = np.zeros((nz, NX, NY), dtype=np.float32)
    # each plane sees the labels within the axial PSF's reach, weighted by the axial PSF
    # (1 in focus): the value of a confocal plane does not depend on the z step
    if key is not None:
        ks = np.arange(nz)
        lo = np.searchsorted(key, ks - n_reach, side="left")
        hi = np.searchsorted(key, ks + n_reach, side="right")
    else:
        lo, hi = np.zeros(1, dtype=np.int64), np.full(1, len(z))
    for k in range(nz):
        if hi[k] <= lo[k]:
            continue
        sl = slice(lo[k], hi[k])
        dz = z[sl] - planes_nm[k]
        wz = np.where(np.abs(dz) <= reach, np.exp(-0.5 * (dz / sig_z) ** 2), 0.0)
        out[k].reshape(-1)[:] = np.bincount(
            index[sl].ravel(), weights=(wxy[sl] * wz[:, None]).ravel(), minlength=NY * NX
        )
    out = _blur_crop(out, 2, sy, my)  # y, contiguous
    out = np.ascontiguousarray(out.transpose(0, 2, 1))  # (z, y, x)
    return _blur_crop(out, 2, sx, mx)


_POISSON_STEPS = 8  # lambda quantised in steps of 1/8 photon (dithered: the mean is exact)
_POISSON_QBITS = 12  # quantiles resolved to 1/4096
_POISSON_MAX = 32.0  # above this, numpy's exact sampler


@functools.cache
def _poisson_table() -> np.ndarray:
    """Inverse CDFs of Poisson(j / 8) for j = 0 .. 8 * 32 + 1 at 4096 mid-quantiles (uint16)."""
    lam = np.arange(int(_POISSON_MAX * _POISSON_STEPS) + 2) / _POISSON_STEPS
    k = np.arange(128)
    log_pmf = k[None, :] * np.log(np.maximum(lam[:, None], 1e-300)) - lam[:, None]
    log_pmf -= np.cumsum(np.log(np.maximum(k, 1)))[None, :]
    pmf = np.exp(log_pmf)
    pmf[0] = 0.0
    pmf[0, 0] = 1.0
    cdf = np.cumsum(pmf, axis=1)
    q = (np.arange(2**_POISSON_QBITS) + 0.5) / 2**_POISSON_QBITS
    table = np.stack([np.searchsorted(row, q) for row in cdf]).astype(np.uint16)
    return table.reshape(-1)


def poisson(lam: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Poisson counts of mean ``lam`` (float array), fast; uint16 for means below 32.

    Means below 32 photons, where almost all pixels of a fluorescence image lie, use one
    32-bit random number per pixel: 20 bits dither the mean between two neighbours on a
    grid of 1/8 photon (so the expected count is exact and the variance exceeds the mean
    by at most 1/256) and 12 bits pick a quantile of a tabulated inverse CDF. That is
    about four times faster than numpy's sampler, which draws the brighter pixels.
    Returns uint16 counts (saturating at 65535).
    """
    lam32 = np.asarray(lam, dtype=np.float32)
    r = rng.integers(0, 2**32, size=lam32.shape, dtype=np.uint32)
    s = lam32 * np.float32(_POISSON_STEPS)
    np.minimum(s, np.float32(_POISSON_MAX * _POISSON_STEPS), out=s)
    j = s.astype(np.int32)
    s -= j  # the fraction to dither
    s *= np.float32(2 ** (32 - _POISSON_QBITS))
    up = (r >> _POISSON_QBITS) < s.astype(np.uint32)
    j += up
    j <<= _POISSON_QBITS
    r &= np.uint32(2**_POISSON_QBITS - 1)
    j |= r.view(np.int32)
    counts = _poisson_table()[j]
    bright = lam32 >= _POISSON_MAX
    if bright.any():
        exact = rng.poisson(lam32[bright].astype(np.float64))
        counts[bright] = np.minimum(exact, 65535)
    return counts


def detect(
    expected: np.ndarray,
    modality: Modality,
    rng: np.random.Generator,
    *,
    background_photons: float | None = None,
) -> np.ndarray:
    """Turn expected signal photons into detector values: background, shot noise, offset.

    ``offset + gain * Poisson(expected + background) + Normal(0, read_noise)``, rounded and
    clipped to the uint16 range. The Poisson draw (see :func:`poisson`) is what makes the
    variance of a background region equal its mean (in photons), as in real
    photon-limited images.
    """
    bg = modality.background_photons if background_photons is None else background_photons
    lam = np.asarray(expected, dtype=np.float32) + np.float32(bg)
    counts = poisson(lam, rng)
    gain, offset, read = (
        modality.gain_adu_per_photon,
        modality.offset_adu,
        modality.read_noise_adu,
    )
    if gain == 1.0 and not read and float(offset).is_integer() and 0 <= offset < 65535:
        if offset:  # add the offset in place, saturating at the top of the range
            np.minimum(counts, np.uint16(65535 - int(offset)), out=counts)
            counts += np.uint16(offset)
        return counts
    values = counts.astype(np.float32)
    if gain != 1.0:
        values *= np.float32(gain)
    if offset:
        values += np.float32(offset)
    if read:
        values += rng.standard_normal(values.shape, dtype=np.float32) * np.float32(read)
    np.rint(values, out=values)
    np.clip(values, 0, 65535, out=values)
    return values.astype(np.uint16)


def _positions(
    structures: Structures | np.ndarray | Any,
) -> tuple[np.ndarray, np.ndarray | None]:
    if isinstance(structures, Structures):
        return structures.positions_nm, structures.weights
    pos = np.asarray(structures, dtype=float)
    if pos.ndim != 2 or pos.shape[1] not in (2, 3):
        raise InvalidInput(
            f"label positions must be an (N, 3) array of x, y, z in nm, not shape {pos.shape}"
        )
    if pos.shape[1] == 2:
        pos = np.column_stack([pos, np.zeros(len(pos))])
    return pos, None


def render(
    structures: Structures | np.ndarray,
    modality: Modality | str,
    shape: Sequence[int],
    *,
    pixel_size_nm: float | None = None,
    z_step_nm: float | None = None,
    origin_nm: Sequence[float] = (0.0, 0.0, 0.0),
    seed: SeedLike = 0,
    noise: bool = True,
) -> np.ndarray:
    """Render labels as a 2D ``(y, x)`` or 3D ``(z, y, x)`` microscope image.

    Parameters
    ----------
    structures:
        A :class:`Structures` or an ``(N, 3)`` array of positions ``x, y, z`` in nm.
    modality:
        A :class:`Modality` or a preset name (``"confocal"``, ``"STED"``, ``"SIM"``).
    shape:
        ``(ny, nx)`` for one focal plane or ``(nz, ny, nx)`` for a stack.
    pixel_size_nm, z_step_nm:
        Sampling; default the modality's.
    origin_nm:
        ``(x, y, z)`` of the centre of pixel ``(0, 0, 0)``; for 2D, ``z`` is the focal plane.
    seed:
        Seed of the shot and read noise.
    noise:
        ``False`` returns the noise-free expectation as float32 (same detector offset and
        gain), e.g. as the reference of a resolution or denoising exercise.

    Returns
    -------
    numpy.ndarray
        uint16 image (float32 without noise).
    """
    mod = get_modality(modality)
    shape = tuple(int(s) for s in shape)
    if len(shape) not in (2, 3) or any(s <= 0 for s in shape):
        raise InvalidInput(
            f"shape {shape} must be (ny, nx) or (nz, ny, nx) with positive sizes",
            hint="stack channels with render_channels",
        )
    px = float(pixel_size_nm or mod.pixel_size_nm)
    pz = float(z_step_nm or mod.z_step_nm)
    if px <= 0 or pz <= 0:
        raise InvalidInput("pixel_size_nm and z_step_nm must be positive")
    pos, weights = _positions(structures)
    org = np.asarray(origin_nm, dtype=float).reshape(3)
    planar = len(shape) == 2
    exp = expected_photons(
        pos - org,
        weights,
        start_px=(0, 0, 0),
        shape=(1, *shape) if planar else shape,
        pixel_size_nm=(pz, px, px),
        sigma_nm=(mod.sigma_axial_nm, mod.sigma_lateral_nm, mod.sigma_lateral_nm),
        photons_per_label=mod.photons_per_label,
        focal_plane_nm=0.0 if planar else None,
    )
    if planar:
        exp = exp[0]
    if not noise:
        return (
            (exp + np.float32(mod.background_photons)) * np.float32(mod.gain_adu_per_photon)
            + np.float32(mod.offset_adu)
        ).astype(np.float32)
    return detect(exp, mod, np.random.default_rng(seed))


def render_channels(
    channels: Sequence[Structures | np.ndarray],
    modality: Modality | str | Sequence[Modality | str],
    shape: Sequence[int],
    *,
    pixel_size_nm: float | None = None,
    z_step_nm: float | None = None,
    origin_nm: Sequence[float] = (0.0, 0.0, 0.0),
    seed: int = 0,
    noise: bool = True,
) -> np.ndarray:
    """Render one set of labels per channel: ``(c, y, x)`` or ``(c, z, y, x)``.

    ``modality`` is one for all channels or one per channel (e.g. different photon
    budgets); each channel's noise gets its own seed derived from ``seed``.
    """
    mods = [modality] * len(channels) if isinstance(modality, Modality | str) else list(modality)
    if len(mods) != len(channels):
        raise InvalidInput(f"{len(channels)} channels but {len(mods)} modalities")
    seeds = np.random.SeedSequence(seed).spawn(len(channels))
    return np.stack(
        [
            render(
                s,
                m,
                shape,
                pixel_size_nm=pixel_size_nm,
                z_step_nm=z_step_nm,
                origin_nm=origin_nm,
                seed=ss,
                noise=noise,
            )
            for s, m, ss in zip(channels, mods, seeds, strict=True)
        ]
    )
