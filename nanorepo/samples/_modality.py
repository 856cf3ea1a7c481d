"""How a synthetic image is acquired: point spread function, sampling, photons, instrument.

A :class:`Modality` bundles what the renderer needs (Gaussian PSF widths, pixel size,
photon budget, background, detector offset) with what an instrument file would say about
the acquisition (OME ``AcquisitionMode``, objective, detector, lasers), so one object
drives both the pixels and the OME-XML written next to them.

The PSF is approximated by a Gaussian. Widths are given as the full width at half
maximum (FWHM), the number microscopists quote; the renderer uses the standard
deviation ``sigma = FWHM / (2 * sqrt(2 * ln 2)) ≈ FWHM / 2.3548``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

from nanorepo.errors import InvalidInput

__all__ = [
    "CONFOCAL",
    "FWHM_PER_SIGMA",
    "MODALITIES",
    "SIM",
    "SMLM",
    "STED",
    "Modality",
    "fwhm_to_sigma",
    "get_modality",
    "sigma_to_fwhm",
]

#: Ratio of the full width at half maximum of a Gaussian to its standard deviation.
FWHM_PER_SIGMA: float = 2.0 * math.sqrt(2.0 * math.log(2.0))


def fwhm_to_sigma(fwhm_nm: float) -> float:
    """Standard deviation of the Gaussian whose full width at half maximum is ``fwhm_nm``.

    ``sigma = FWHM / (2 sqrt(2 ln 2)) ≈ FWHM / 2.3548``; the unit is that of the input.
    """
    return float(fwhm_nm) / FWHM_PER_SIGMA


def sigma_to_fwhm(sigma_nm: float) -> float:
    """Full width at half maximum of a Gaussian of standard deviation ``sigma_nm``."""
    return float(sigma_nm) * FWHM_PER_SIGMA


@dataclass(frozen=True)
class Modality:
    """A light-microscopy acquisition as the sample generator models it.

    Attributes
    ----------
    name:
        Short name, also the key in :data:`MODALITIES` (``"STED"``).
    technique:
        The technique in nanorepo's spelling (``"STED"``, ``"SIM"``, ``"confocal"``,
        ``"SMLM"``), as the deposit metadata's ``image_acquisition.technique``.
    acquisition_mode:
        OME ``Channel/@AcquisitionMode`` (``"STED"``, ``"StructuredIllumination"``,
        ``"LaserScanningConfocalMicroscopy"``, ``"STORM"``).
    fwhm_lateral_nm, fwhm_axial_nm:
        Full width at half maximum of the (Gaussian) PSF in the focal plane and along the
        optical axis. For SMLM this is the diffraction-limited single-molecule PSF the
        localisation fit sees, not the resolution of the rendered image.
    pixel_size_nm, z_step_nm:
        Default sampling of the rendered images (lateral pixel and axial step).
    photons_per_label:
        Photons one in-focus label contributes to an image, summed over all pixels.
    background_photons:
        Mean background (autofluorescence, out-of-focus light) per pixel, in photons.
    offset_adu, gain_adu_per_photon, read_noise_adu:
        Detector model: ``value = offset + gain * Poisson(photons) + Normal(0, read_noise)``.
        Photon counters (APD, HyD) have no offset and no read noise; sCMOS cameras do.
    illumination, microscope, objective_model, objective_na, objective_magnification,
    immersion, detector_type, detector_model, lasers_nm:
        Instrument facts written to OME-XML (``detector_type`` from OME's ``Detector/@Type``
        enumeration, ``immersion`` from ``Objective/@Immersion``).
    depletion_nm:
        STED depletion wavelength, or ``None``.
    """

    name: str
    technique: str
    acquisition_mode: str
    fwhm_lateral_nm: float
    fwhm_axial_nm: float
    pixel_size_nm: float
    z_step_nm: float
    photons_per_label: float
    background_photons: float
    offset_adu: float = 0.0
    gain_adu_per_photon: float = 1.0
    read_noise_adu: float = 0.0
    illumination: str = "Epifluorescence"
    microscope: str = "synthetic microscope"
    objective_model: str = "Plan Apochromat 100x/1.40 Oil"
    objective_na: float = 1.40
    objective_magnification: float = 100.0
    immersion: str = "Oil"
    detector_type: str = "PMT"
    detector_model: str = "photon-counting detector"
    lasers_nm: tuple[float, ...] = (488.0, 561.0, 640.0)
    depletion_nm: float | None = None

    def __post_init__(self) -> None:
        for attr in ("fwhm_lateral_nm", "fwhm_axial_nm", "pixel_size_nm", "z_step_nm"):
            value = getattr(self, attr)
            if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
                raise InvalidInput(f"modality {self.name}: {attr} must be a positive number")
        if self.photons_per_label < 0 or self.background_photons < 0:
            raise InvalidInput(f"modality {self.name}: photon numbers must not be negative")

    @property
    def sigma_lateral_nm(self) -> float:
        """Standard deviation of the lateral Gaussian PSF (``fwhm_lateral_nm / 2.3548``)."""
        return fwhm_to_sigma(self.fwhm_lateral_nm)

    @property
    def sigma_axial_nm(self) -> float:
        """Standard deviation of the axial Gaussian PSF (``fwhm_axial_nm / 2.3548``)."""
        return fwhm_to_sigma(self.fwhm_axial_nm)

    def with_(self, **changes: Any) -> Modality:
        """A copy with some attributes changed (``STED.with_(pixel_size_nm=15)``)."""
        return replace(self, **changes)

    def acquisition(self) -> dict[str, Any]:
        """REMBI-style "image acquisition" facts, JSON-able, as a reader would harvest them."""
        out: dict[str, Any] = {
            "technique": self.technique,
            "acquisition_mode": self.acquisition_mode,
            "instrument": self.microscope,
            "objective": {
                "model": self.objective_model,
                "na": self.objective_na,
                "magnification": self.objective_magnification,
                "immersion": self.immersion,
            },
            "detector": {"type": self.detector_type, "model": self.detector_model},
            "lasers_nm": list(self.lasers_nm),
            "psf_fwhm_nm": {"lateral": self.fwhm_lateral_nm, "axial": self.fwhm_axial_nm},
            "synthetic": True,
        }
        if self.depletion_nm is not None:
            out["depletion_wavelength_nm"] = self.depletion_nm
        return out


CONFOCAL = Modality(
    name="confocal",
    technique="confocal",
    acquisition_mode="LaserScanningConfocalMicroscopy",
    fwhm_lateral_nm=250.0,
    fwhm_axial_nm=600.0,
    pixel_size_nm=50.0,
    z_step_nm=150.0,
    photons_per_label=60.0,
    background_photons=2.0,
    microscope="synthetic point-scanning confocal (nanorepo sample generator)",
    detector_type="PMT",
    detector_model="hybrid photon-counting detector",
)

STED = Modality(
    name="STED",
    technique="STED",
    acquisition_mode="STED",
    fwhm_lateral_nm=40.0,
    fwhm_axial_nm=600.0,
    pixel_size_nm=20.0,
    z_step_nm=150.0,
    photons_per_label=20.0,
    background_photons=0.8,
    illumination="NonLinear",
    microscope="synthetic 2D-STED, 775 nm pulsed depletion (nanorepo sample generator)",
    detector_type="APD",
    detector_model="single-photon avalanche diode",
    lasers_nm=(561.0, 640.0, 775.0),
    depletion_nm=775.0,
)

SIM = Modality(
    name="SIM",
    technique="SIM",
    acquisition_mode="StructuredIllumination",
    fwhm_lateral_nm=120.0,
    fwhm_axial_nm=300.0,
    pixel_size_nm=40.0,
    z_step_nm=125.0,
    photons_per_label=40.0,
    background_photons=8.0,
    offset_adu=100.0,
    gain_adu_per_photon=1.0,
    read_noise_adu=1.5,
    microscope="synthetic 3D-SIM, reconstructed (nanorepo sample generator)",
    objective_model="Plan Apochromat 60x/1.42 Oil",
    objective_na=1.42,
    objective_magnification=60.0,
    detector_type="CMOS",
    detector_model="sCMOS camera",
    lasers_nm=(488.0, 561.0, 640.0),
)

SMLM = Modality(
    name="SMLM",
    technique="SMLM",
    acquisition_mode="STORM",
    fwhm_lateral_nm=300.0,
    fwhm_axial_nm=700.0,
    pixel_size_nm=10.0,
    z_step_nm=50.0,
    photons_per_label=2000.0,
    background_photons=40.0,
    offset_adu=100.0,
    read_noise_adu=1.5,
    illumination="Oblique",
    microscope="synthetic dSTORM, astigmatic 3D (nanorepo sample generator)",
    objective_model="Apochromat TIRF 100x/1.49 Oil",
    objective_na=1.49,
    objective_magnification=100.0,
    detector_type="CMOS",
    detector_model="sCMOS camera, 100 nm pixels in the sample",
    lasers_nm=(405.0, 640.0),
)

#: The presets by name (case-sensitive keys, looked up case-insensitively by :func:`get_modality`).
MODALITIES: dict[str, Modality] = {m.name: m for m in (CONFOCAL, STED, SIM, SMLM)}


def get_modality(modality: Modality | str) -> Modality:
    """The :class:`Modality` itself, or the preset of that name (case-insensitive)."""
    if isinstance(modality, Modality):
        return modality
    for name, preset in MODALITIES.items():
        if isinstance(modality, str) and name.lower() == modality.strip().lower():
            return preset
    raise InvalidInput(
        f"unknown modality {modality!r}",
        hint=f"use one of {', '.join(MODALITIES)} or a nanorepo.samples.Modality",
    )
