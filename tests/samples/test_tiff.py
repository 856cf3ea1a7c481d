"""Files: OME-TIFF metadata round trip, ImageJ hyperstacks, plane directories, streaming."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import ome_types
import pytest
import tifffile

from nanorepo.ome import Channel
from nanorepo.samples import (
    SIM,
    SyntheticImage,
    default_channel,
    stream_ome_tiff,
    write_imagej_tiff,
    write_ome_tiff,
    write_plane_directory,
)

WHEN = datetime(2024, 5, 14, 10, 30, tzinfo=UTC)


@pytest.fixture(scope="module")
def stack() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 4000, (2, 3, 4, 30, 40)).astype(np.uint16)


def test_ome_tiff_round_trip(stack: np.ndarray, tmp_path: Path) -> None:
    chans = [default_channel("chromatin"), default_channel("microtubules"), Channel("dapi")]
    p = write_ome_tiff(
        tmp_path / "cell1.ome.tif",
        stack,
        dims=("t", "c", "z", "y", "x"),
        pixel_sizes_nm={"z": 125.0, "y": 40.0, "x": 40.0},
        time_interval_s=2.5,
        channels=chans,
        modality=SIM,
        acquisition_date=WHEN,
        description="3D-SIM of U2OS — with µ and ü",
        key_values={"condition": "control", "cell_line": "U2OS"},
    )
    with tifffile.TiffFile(p) as tf:
        assert tf.is_ome
        assert tf.series[0].axes == "TCZYX"
        assert np.array_equal(tf.asarray(), stack)
        ome = ome_types.from_xml(tf.ome_metadata)
    im = ome.images[0]
    px = im.pixels
    assert im.name == "cell1"
    assert im.acquisition_date == WHEN
    assert (px.size_t, px.size_c, px.size_z, px.size_y, px.size_x) == stack.shape
    assert px.dimension_order.value == "XYZCT"
    assert (px.physical_size_x, px.physical_size_y, px.physical_size_z) == (40.0, 40.0, 125.0)
    assert px.physical_size_x_unit.value == "nm" and px.physical_size_z_unit.value == "nm"
    assert px.time_increment == 2.5
    assert [c.name for c in px.channels] == ["H2B-SNAP-AF568", "alpha-tubulin-AF488", "dapi"]
    ch = px.channels[1]
    assert ch.acquisition_mode.value == "StructuredIllumination"
    assert ch.fluor == "Alexa Fluor 488"
    assert (ch.excitation_wavelength, ch.emission_wavelength) == (488.0, 520.0)
    assert ch.color.as_rgb_tuple() == (0, 255, 0)
    assert ch.light_source_settings.id == "LightSource:0:0"
    inst = ome.instruments[0]
    assert im.instrument_ref.id == inst.id
    obj = inst.objectives[0]
    assert (obj.lens_na, obj.nominal_magnification, obj.immersion.value) == (1.42, 60.0, "Oil")
    assert inst.detectors[0].type.value == "CMOS"
    assert [las.wavelength for las in inst.lasers] == [488.0, 561.0, 640.0]
    kv = {m.k: m.value for m in ome.structured_annotations.map_annotations[0].value.ms}
    assert kv == {"condition": "control", "cell_line": "U2OS"}
    assert "µ" in im.description


@pytest.mark.parametrize(
    ("modality", "mode"),
    [("STED", "STED"), ("confocal", "LaserScanningConfocalMicroscopy"), ("SMLM", "STORM")],
)
def test_acquisition_modes(modality: str, mode: str, tmp_path: Path) -> None:
    p = write_ome_tiff(
        tmp_path / "a.ome.tif",
        np.zeros((8, 8), np.uint16),
        dims=("y", "x"),
        pixel_sizes_nm={"y": 20, "x": 20},
        modality=modality,
    )
    with tifffile.TiffFile(p) as tf:
        ome = ome_types.from_xml(tf.ome_metadata)
    assert ome.images[0].pixels.channels[0].acquisition_mode.value == mode


def test_imagej_hyperstack(stack: np.ndarray, tmp_path: Path) -> None:
    p = write_imagej_tiff(
        tmp_path / "cell1.tif",
        stack,
        dims=("t", "c", "z", "y", "x"),
        pixel_sizes_nm={"z": 125.0, "y": 40.0, "x": 40.0},
        channels=[default_channel(k) for k in ("chromatin", "microtubules", "nuclear_pores")],
    )
    with tifffile.TiffFile(p) as tf:
        assert tf.is_imagej
        assert tf.series[0].axes == "TZCYX"
        assert np.array_equal(tf.asarray(), stack.transpose(0, 2, 1, 3, 4))
        meta = tf.imagej_metadata
        assert meta["unit"] == "um" and meta["spacing"] == pytest.approx(0.125)
        assert (meta["frames"], meta["slices"], meta["channels"]) == (2, 4, 3)
        num, den = tf.pages[0].tags["XResolution"].value
        assert num / den == pytest.approx(25.0)  # pixels per micrometre


def test_plane_directory(stack: np.ndarray, tmp_path: Path) -> None:
    paths = write_plane_directory(
        tmp_path / "planes",
        stack,
        dims=("t", "c", "z", "y", "x"),
        pixel_sizes_nm={"z": 125.0, "y": 40.0, "x": 40.0},
    )
    assert len(paths) == 24
    assert paths[0].name == "cell1_t000_c00_z000.tif"
    assert paths[-1].name == "cell1_t001_c02_z003.tif"
    assert np.array_equal(
        tifffile.imread(tmp_path / "planes/cell1_t001_c02_z001.tif"), stack[1, 2, 1]
    )


def test_stream_ome_tiff_writes_what_read_returns(tmp_path: Path) -> None:
    im = SyntheticImage(
        (2, 6, 96, 80),
        structures=("nuclear_pores", "microtubules"),
        modality="STED",
        block_shape=(4, 64, 64),
        key_values={"purpose": "test"},
    )
    p = stream_ome_tiff(tmp_path / "big.ome.tif", im, acquisition_date=WHEN)
    assert not list(tmp_path.glob(".*partial"))
    with tifffile.TiffFile(p) as tf:
        assert tf.series[0].axes == "CZYX"
        assert np.array_equal(tf.asarray(), im.read())
        assert tf.pages[0].compression == 1  # uncompressed
        ome = ome_types.from_xml(tf.ome_metadata)
    px = ome.images[0].pixels
    assert px.physical_size_x == 20.0 and px.physical_size_z == 150.0
    assert [c.acquisition_mode.value for c in px.channels] == ["STED", "STED"]
