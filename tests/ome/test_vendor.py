"""Vendor formats (CZI, LIF, ND2) through the bioio plugins: every scene, exact pixels,
dims, pixel sizes (nm), channel names and the harvested acquisition facts."""

from __future__ import annotations

from pathlib import Path

import nd2
import numpy as np
import pytest
from pylibCZIrw import czi as pyczi

from nanorepo.errors import InvalidImage
from nanorepo.ome._harvest import check, is_image, open_source, open_sources

#: Vendor files copied from public repositories, with their licences (see its README).
FORMATS = Path(__file__).resolve().parent.parent / "data" / "formats"
ALL = (slice(None),) * 5


def test_czi_written_here_reads_back_exactly(tmp_path: Path) -> None:
    """A T/C/Z CZI written by ZEISS' own pylibCZIrw: every pixel, the scaling and the
    channel names come back, and regions read only what they name."""
    data = np.random.default_rng(0).integers(0, 60_000, (2, 3, 2, 40, 56), dtype=np.uint16)
    path = tmp_path / "cell.czi"
    with pyczi.create_czi(str(path), exist_ok=True) as czi:
        for t, c, z in np.ndindex(2, 3, 2):
            czi.write(data=data[t, c, z], plane={"T": t, "C": c, "Z": z})
        czi.write_metadata(document_name="cell", channel_names={0: "Nup96", 1: "DNA", 2: "Tub"},
                           scale_x=4e-8, scale_y=4e-8, scale_z=2e-7)  # fmt: skip
    assert is_image(path)
    (src,) = open_sources(path)
    assert (src.name, src.dims, src.shape) == ("cell", ("t", "c", "z", "y", "x"), data.shape)
    assert src.pixel_sizes == {"z": 200.0, "y": 40.0, "x": 40.0}
    assert [c.name for c in src.channels] == ["Nup96", "DNA", "Tub"]
    assert src.acquisition["format"] == "Zeiss CZI" and src.acquisition["reader"].startswith(
        "bioio-czi "
    )
    assert np.array_equal(src.read(ALL), data)
    box = (slice(1, 2), slice(0, 2), slice(1, 2), slice(5, 9), slice(10, 30))
    assert np.array_equal(src.read(box), data[box])
    check(src)


def test_czi_every_scene_is_an_image() -> None:
    scenes = open_sources(FORMATS / "zeiss_3scenes_mosaic_c1.czi")
    assert [(s.name, s.dims, s.shape) for s in scenes] == [
        ("zeiss_3scenes_mosaic_c1_s0", ("y", "x"), (122, 295)),
        ("zeiss_3scenes_mosaic_c1_s1", ("y", "x"), (64, 64)),
        ("zeiss_3scenes_mosaic_c1_s2", ("y", "x"), (237, 352)),
    ]
    assert [s.key_values["scene"] for s in scenes] == ["TR1", "P1", "TR2"]
    for s in scenes:
        assert s.pixel_sizes == {"y": 1600.0, "x": 1600.0}
        assert [(c.name, c.emission_wavelength_nm) for c in s.channels] == [("DAPI", 465.0)]
        assert s.acquisition["objective"]["model"] == "Plan-Apochromat 5x/0.35"
        assert s.acquisition["acquisition_date"].startswith("2021-06-15T06:09:43")
        check(s)
    assert int(scenes[1].read(ALL[:2]).astype(np.int64).sum()) > 0


def test_czi_with_metadata_ome_types_refuses_says_so() -> None:
    """bioio-czi's OME for a Lattice Lightsheet file fails validation ("LatticeLightsheet"
    is no OME acquisition mode): the image still reads, and the metadata says why its
    facts were not harvested."""
    src = open_source(FORMATS / "zeiss_lls7_t2_c2_z3_64x64.czi")
    assert (src.dims, src.shape) == (("t", "c", "z", "y", "x"), (2, 2, 3, 64, 64))
    assert src.pixel_sizes == {"z": 144.992, "y": 144.992, "x": 144.992}
    assert [c.name for c in src.channels] == ["LatticeLightsheet 1-T1", "LatticeLightsheet 2-T2"]
    assert "OME metadata is not valid" in src.acquisition["metadata_not_harvested"]
    assert src.read(ALL).shape == (2, 2, 3, 64, 64)


def test_nd2_channels_wavelengths_and_objective() -> None:
    (src,) = open_sources(FORMATS / "nikon_ti2_4ch_256x256.nd2")
    # no Z axis: nd2's placeholder Z pixel size of 1 µm is not kept
    assert (src.name, src.dims, src.shape) == ("nikon_ti2_4ch_256x256", ("c", "y", "x"),
                                               (4, 256, 256))  # fmt: skip
    assert src.pixel_sizes == pytest.approx({"y": 323.390343, "x": 323.390343})
    assert [(c.name, c.emission_wavelength_nm) for c in src.channels] == [
        ("Mono", None), ("DAPI", 450.0), ("FITC BP", 512.0), ("TRITC BP", 595.0)]  # fmt: skip
    assert src.acquisition["objective"] == {"model": "Plan Apo λ 20x", "numerical_aperture": 0.75,
                                            "nominal_magnification": 20.0,
                                            "refractive_index": 1.0}  # fmt: skip
    whole = src.read(ALL[:3])
    assert whole.dtype == np.uint16 and int(whole[0].astype(np.int64).sum()) == 845_349_334
    assert np.array_equal(whole, nd2.imread(FORMATS / "nikon_ti2_4ch_256x256.nd2"))
    assert np.array_equal(src.read((slice(2, 3), slice(7, 9), slice(100, 140))),
                          whole[2:3, 7:9, 100:140])  # fmt: skip


def test_nd2_z_stack() -> None:
    src = open_source(FORMATS / "nikon_ti2_zstack_z11_128x128.nd2")
    assert (src.dims, src.shape) == (("z", "y", "x"), (11, 128, 128))
    assert src.pixel_sizes == pytest.approx({"z": 6000.0, "y": 323.390343, "x": 323.390343})
    assert [c.name for c in src.channels] == ["FITC BP"]


def test_lif_metadata_reads_and_unreadable_pixels_are_refused_by_name() -> None:
    """bioio-lif 2.0.1 maps the λ axes of this LAS X file wrongly: its scenes open (names,
    sizes) and the pixel check refuses each with nanorepo's message naming the scene."""
    scenes = open_sources(FORMATS / "leica_lasx_lambda_sweep_3series.lif")
    assert [(s.key_values["scene"], s.dims, s.shape) for s in scenes] == [
        ("x_y_lambdaEmi", ("y", "x"), (64, 64)),
        ("x_y_lambdaExc", ("y", "x"), (64, 64)),
        ("x_y_z_t_lambdaEmi", ("t", "z", "y", "x"), (2, 11, 64, 64)),
    ]
    assert scenes[2].pixel_sizes == pytest.approx({"z": 500.2027, "y": 104.814429,
                                                   "x": 104.814429})  # fmt: skip
    with pytest.raises(InvalidImage) as info:
        check(scenes[0])
    assert "scene 'x_y_lambdaEmi': the Leica LIF reader cannot read its pixels" in str(info.value)


def test_damaged_vendor_file_is_refused(tmp_path: Path) -> None:
    cut = tmp_path / "cut.nd2"
    cut.write_bytes((FORMATS / "nikon_ti2_4ch_256x256.nd2").read_bytes()[:4096])
    with pytest.raises(InvalidImage) as info:
        open_sources(cut)
    assert "is a Nikon ND2 file that bioio-nd2" in str(info.value)
    assert "cannot open" in str(info.value)
