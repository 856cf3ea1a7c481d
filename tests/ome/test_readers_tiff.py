"""TIFF, OME-TIFF and ImageJ TIFF readers: axes, pixel sizes, channels, acquisition, laziness."""

from __future__ import annotations

import threading
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
import tifffile
from ome_types import model as m
from ome_types import to_xml

from nanorepo.errors import InvalidImage
from nanorepo.ome._harvest import open_source, open_sources
from nanorepo.ome._reader_omexml import technique_of
from nanorepo.ome._reader_units import length_to_nm, time_to_s
from nanorepo.ome._source import ImageSource
from nanorepo.ome._tiff import open_tiff

MB = {"photometric": "minisblack"}


def rich_ome(shape_tczyx: tuple[int, int, int, int, int]) -> m.OME:
    """An OME document as a STED microscope would write it (sizes from ``shape_tczyx``)."""
    t, c, z, y, x = shape_tczyx
    modes = ["STED", "LaserScanningConfocalMicroscopy", "WideField"]
    channels = [
        m.Channel(
            id="Channel:0:0",
            name="Nup96-AF647",
            color=m.Color((255, 0, 255)),
            emission_wavelength=0.67,
            emission_wavelength_unit="µm",
            excitation_wavelength=640,
            fluor="AF647",
            acquisition_mode="STED",
            light_source_settings=m.LightSourceSettings(id="LightSource:0"),
            detector_settings=m.DetectorSettings(id="Detector:0"),
        )
    ] + [
        m.Channel(id=f"Channel:0:{i}", name=f"ch{i}", acquisition_mode=modes[i % 3])
        for i in range(1, c)
    ]
    return m.OME(
        instruments=[
            m.Instrument(
                id="Instrument:0",
                microscope=m.Microscope(manufacturer="Abberior", model="STEDYCON"),
                objectives=[
                    m.Objective(
                        id="Objective:0",
                        lens_na=1.4,
                        nominal_magnification=100,
                        immersion="Oil",
                        manufacturer="Olympus",
                    )
                ],
                lasers=[
                    m.Laser(id="LightSource:0", wavelength=640, type="Semiconductor"),
                    m.Laser(id="LightSource:1", wavelength=0.775, wavelength_unit="µm"),
                ],
                detectors=[m.Detector(id="Detector:0", type="APD", model="SPCM")],
            )
        ],
        images=[
            m.Image(
                id="Image:0",
                name="cell1",
                acquisition_date=datetime(2024, 5, 6, 7, 8, 9),
                instrument_ref=m.InstrumentRef(id="Instrument:0"),
                objective_settings=m.ObjectiveSettings(id="Objective:0", refractive_index=1.518),
                pixels=m.Pixels(
                    id="Pixels:0",
                    dimension_order="XYZCT",
                    type="uint16",
                    size_x=x,
                    size_y=y,
                    size_z=z,
                    size_c=c,
                    size_t=t,
                    physical_size_x=0.0155,
                    physical_size_x_unit="µm",
                    physical_size_y=155,
                    physical_size_y_unit="Å",
                    physical_size_z=120,
                    physical_size_z_unit="nm",
                    time_increment=250,
                    time_increment_unit="ms",
                    channels=channels,
                    tiff_data_blocks=[m.TiffData(plane_count=t * c * z)],
                ),
                annotation_refs=[m.AnnotationRef(id="Annotation:0")],
            )
        ],
        structured_annotations=m.StructuredAnnotations(
            map_annotations=[
                m.MapAnnotation(
                    id="Annotation:0",
                    value=m.Map(ms=[m.Map.M(k="cell line", value="U2OS")]),
                )
            ]
        ),
    )


def write_rich_ome_tiff(
    path: Path,
    shape: tuple[int, int, int, int, int] = (2, 2, 3, 32, 40),
    *,
    compression: str | None = None,
    xml: str | None = None,
    seed: int = 0,
) -> np.ndarray:
    """Write a TCZYX OME-TIFF whose OME-XML is ``rich_ome`` (or ``xml``); return the data."""
    data = np.random.default_rng(seed).integers(0, 4000, shape, dtype=np.uint16)
    xml = xml if xml is not None else to_xml(rich_ome(shape))
    tile = (16, 16) if compression else None
    tifffile.imwrite(
        path,
        data.reshape(-1, shape[-2], shape[-1]),
        description=xml.encode(),
        metadata=None,
        compression=compression,
        tile=tile,
        **MB,
    )
    return data


def random_regions(shape: tuple[int, ...], n: int, seed: int = 1) -> list[tuple[slice, ...]]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        region = []
        for size in shape:
            a = int(rng.integers(0, size))
            b = int(rng.integers(a + 1, size + 1))
            region.append(slice(a, b))
        out.append(tuple(region))
    return out


# -- units and techniques ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "unit", "nm"),
    [
        (1.5, "µm", 1500.0),
        (1.5, "um", 1500.0),
        (1.5, "micron", 1500.0),
        (1.5, "\\u00B5m", 1500.0),
        (1.5, "micrometer", 1500.0),
        (12, "Å", 1.2),
        (12, "angstrom", 1.2),
        (2, "mm", 2e6),
        (3, "m", 3e9),
        (7, "nm", 7.0),
        (7, "nanometre", 7.0),
        (1, "pixel", None),
        (1, "reference frame", None),
        (1, None, None),
        (None, "nm", None),
    ],
)
def test_length_units(value: float | None, unit: str | None, nm: float | None) -> None:
    got = length_to_nm(value, unit)
    assert got == pytest.approx(nm) if nm is not None else got is None


@pytest.mark.parametrize(
    ("value", "unit", "s"),
    [(250, "ms", 0.25), (2, "min", 120.0), (5, "µs", 5e-6), (1, "second", 1.0), (1, "?", None)],
)
def test_time_units(value: float, unit: str, s: float | None) -> None:
    got = time_to_s(value, unit)
    assert got == pytest.approx(s) if s is not None else got is None


@pytest.mark.parametrize(
    ("modes", "technique"),
    [
        (["STED"], "STED"),
        (["StructuredIllumination"], "SIM"),
        (["PALM"], "SMLM"),
        (["STORM"], "SMLM"),
        (["SingleMoleculeImaging"], "SMLM"),
        (["LaserScanningConfocalMicroscopy"], "confocal"),
        (["SpinningDiskConfocal"], "confocal"),
        (["WideField"], "widefield"),
        (["TIRF"], "TIRF"),
        (["LaserScanningConfocalMicroscopy", "STED"], "STED"),
        ([], None),
    ],
)
def test_technique_from_acquisition_mode(modes: list[str], technique: str | None) -> None:
    assert technique_of(modes) == technique


# -- OME-TIFF -------------------------------------------------------------------------------------


def test_ome_tiff_metadata_is_harvested(tmp_path: Path) -> None:
    path = tmp_path / "cell1.ome.tif"
    write_rich_ome_tiff(path)
    src = open_source(path)
    assert isinstance(src, ImageSource)
    assert src.name == "cell1"
    assert src.dims == ("t", "c", "z", "y", "x")
    assert src.shape == (2, 2, 3, 32, 40)
    assert src.dtype == np.uint16
    assert src.pixel_sizes == pytest.approx({"x": 15.5, "y": 15.5, "z": 120.0, "t": 0.25})
    sted, second = src.channels
    assert (sted.name, sted.color, sted.fluorophore) == ("Nup96-AF647", "FF00FF", "AF647")
    assert sted.emission_wavelength_nm == pytest.approx(670.0)
    assert sted.excitation_wavelength_nm == pytest.approx(640.0)
    assert second.name == "ch1"
    acq = src.acquisition
    assert acq["technique"] == "STED"
    assert acq["acquisition_date"] == "2024-05-06T07:08:09"
    assert acq["microscope"] == {"manufacturer": "Abberior", "model": "STEDYCON"}
    assert acq["objective"]["numerical_aperture"] == 1.4
    assert acq["objective"]["nominal_magnification"] == 100
    assert acq["objective"]["immersion"] == "Oil"
    assert acq["objective"]["refractive_index"] == 1.518
    waves = sorted(ls["wavelength_nm"] for ls in acq["light_sources"])
    assert waves == pytest.approx([640.0, 775.0])
    assert acq["detectors"][0]["type"] == "APD"
    assert acq["channels"][0]["light_source_id"] == "LightSource:0"
    assert src.key_values == {"cell line": "U2OS"}
    assert src.ome_xml is not None and "<OME" in src.ome_xml
    assert src.origin == (str(path),)


@pytest.mark.parametrize("compression", [None, "zlib"])
def test_ome_tiff_regions_match_the_pixels(tmp_path: Path, compression: str | None) -> None:
    path = tmp_path / "img.ome.tif"
    data = write_rich_ome_tiff(path, compression=compression)
    src = open_tiff(path)
    assert np.array_equal(src.read((slice(None),) * 5), data)
    for region in random_regions(src.shape, 12):
        assert np.array_equal(src.read(region), data[region]), region
    src.close()


def test_uncompressed_tiff_is_memory_mapped(tmp_path: Path) -> None:
    path = tmp_path / "img.ome.tif"
    write_rich_ome_tiff(path)
    src = open_tiff(path)
    src.read((slice(0, 1),) * 3 + (slice(0, 4), slice(0, 4)))
    assert isinstance(src._array, np.memmap)


def test_compressed_tiff_decodes_only_the_pages_a_region_touches(tmp_path: Path) -> None:
    """Damage in plane 9 must not matter when reading plane 0: reads are per page/tile."""
    path = tmp_path / "img.ome.tif"
    data = write_rich_ome_tiff(path, compression="zlib")
    with tifffile.TiffFile(path) as tif:
        page = tif.pages[9]
        offset, count = page.dataoffsets[0], page.databytecounts[0]
    raw = bytearray(path.read_bytes())
    raw[offset + 2 : offset + count] = b"\xff" * (count - 2)
    path.write_bytes(bytes(raw))
    src = open_tiff(path)
    first = (slice(0, 1), slice(0, 1), slice(0, 1), slice(None), slice(None))
    assert np.array_equal(src.read(first), data[first])
    with pytest.raises(InvalidImage, match="cannot decode"):
        src.read((slice(None),) * 5)
    src.close()


def test_reads_from_several_threads(tmp_path: Path) -> None:
    path = tmp_path / "img.ome.tif"
    data = write_rich_ome_tiff(path, compression="zlib")
    src = open_tiff(path)
    regions = random_regions(src.shape, 24, seed=5)
    failures: list[tuple[slice, ...]] = []

    def work(part: list[tuple[slice, ...]]) -> None:
        for r in part:
            if not np.array_equal(src.read(r), data[r]):
                failures.append(r)

    threads = [threading.Thread(target=work, args=(regions[i::3],)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []
    src.close()


def test_multi_series_ome_tiff(tmp_path: Path) -> None:
    path = tmp_path / "two.ome.tif"
    a = np.arange(4 * 16 * 16, dtype=np.uint16).reshape(4, 16, 16)
    b = np.arange(3 * 8 * 8, dtype=np.uint8).reshape(3, 8, 8)
    with tifffile.TiffWriter(path, ome=True) as w:
        w.write(a, metadata={"axes": "ZYX"}, **MB)
        w.write(b, metadata={"axes": "CYX"}, **MB)
    first = open_source(path)
    assert (first.name, first.dims, first.shape) == ("two", ("z", "y", "x"), (4, 16, 16))
    both = open_sources(path)
    assert [s.name for s in both] == ["two_s0", "two_s1"]
    assert both[1].dims == ("c", "y", "x")
    assert np.array_equal(both[1].read((slice(1, 3), slice(None), slice(2, 5))), b[1:3, :, 2:5])


def test_images_without_pixels_do_not_shift_the_metadata(tmp_path: Path) -> None:
    """A slide's label picture (an OME Image with MetadataOnly, the same size) listed before
    the image: the series takes the metadata of the Image its TiffData names, not of the
    first Image (which gave a pixel size of 10,000,000 nm and its channel names)."""
    path = tmp_path / "slide.ome.tif"
    a = np.arange(2 * 16 * 16, dtype=np.uint16).reshape(2, 16, 16)
    tifffile.imwrite(path, a, ome=True, **MB, metadata={
        "axes": "CYX", "PhysicalSizeX": 0.05, "PhysicalSizeY": 0.05,
        "Channel": {"Name": ["Nup96", "DNA"]}})  # fmt: skip
    with tifffile.TiffFile(path) as tif:
        xml = tif.ome_metadata or ""
    label = ('<Image ID="Image:9" Name="label"><Pixels ID="Pixels:9" DimensionOrder="XYCZT" '
             'Type="uint16" SizeX="16" SizeY="16" SizeC="2" SizeZ="1" SizeT="1" '
             'PhysicalSizeX="10000" PhysicalSizeY="10000"><Channel ID="Channel:9:0" '
             'Name="label"/><Channel ID="Channel:9:1" Name="macro"/><MetadataOnly/>'
             "</Pixels></Image>")  # fmt: skip
    tifffile.tiffcomment(path, xml.replace('<Image ID="Image:0"', label + '<Image ID="Image:0"'))
    src = open_tiff(path)
    assert src.pixel_sizes == {"y": 50.0, "x": 50.0}
    assert [c.name for c in src.channels] == ["Nup96", "DNA"]
    assert np.array_equal(src.read((slice(None), slice(None), slice(None))), a)


def test_schema_problems_are_recorded_not_silent(tmp_path: Path) -> None:
    """OME-XML that breaks the OME schema but agrees with the pixels is read, and what the
    schema says is recorded in the image's acquisition metadata (docs/formats.md)."""
    path = tmp_path / "vendor.ome.tif"
    tifffile.imwrite(path, np.zeros((2, 8, 8), np.uint16), ome=True, **MB,
                     metadata={"axes": "CYX", "PhysicalSizeX": 0.05, "PhysicalSizeY": 0.05})  # fmt: skip
    assert "ome_xml_schema_problems" not in open_tiff(path).acquisition
    with tifffile.TiffFile(path) as tif:
        xml = tif.ome_metadata or ""
    tifffile.tiffcomment(
        path, xml.replace('<Pixels ID="Pixels:0"', '<Pixels Gain="9" ID="Pixels:0"')
    )
    src = open_tiff(path)
    assert src.pixel_sizes == {"y": 50.0, "x": 50.0}
    (problem,) = src.acquisition["ome_xml_schema_problems"]
    assert "Pixels" in problem and "Gain" in problem


def test_ome_without_physical_sizes_reports_them_missing(tmp_path: Path) -> None:
    path = tmp_path / "bare.ome.tif"
    tifffile.imwrite(path, np.zeros((3, 8, 8), np.uint16), ome=True, metadata={"axes": "ZYX"})
    src = open_tiff(path)
    assert src.pixel_sizes == {}
    assert src.missing_pixel_sizes == ("z", "y", "x")
    assert "technique" not in src.acquisition


# -- ImageJ and plain TIFF -------------------------------------------------------------------


def test_imagej_hyperstack_is_transposed_to_canonical_order(tmp_path: Path) -> None:
    path = tmp_path / "hyper.tif"
    rng = np.random.default_rng(3)
    data = rng.integers(0, 1000, (2, 4, 3, 16, 20), dtype=np.uint16)  # TZCYX as ImageJ stores
    lut = np.zeros((3, 256), np.uint8)
    lut[1] = np.arange(256)  # green
    tifffile.imwrite(
        path,
        data,
        imagej=True,
        resolution=(1 / 0.025, 1 / 0.025),
        metadata={
            "axes": "TZCYX",
            "spacing": 0.2,
            "unit": "um",
            "finterval": 1.5,
            "LUTs": [lut, lut, lut],
            "Ranges": (0.0, 100.0, 0.0, 200.0, 10.0, 50.0),
        },
        **MB,
    )
    src = open_source(path)
    assert src.dims == ("t", "c", "z", "y", "x")
    assert src.shape == (2, 3, 4, 16, 20)
    assert src.pixel_sizes == pytest.approx({"x": 25.0, "y": 25.0, "z": 200.0, "t": 1.5})
    assert [c.color for c in src.channels] == ["00FF00"] * 3
    assert [c.window for c in src.channels] == [(0.0, 100.0), (0.0, 200.0), (10.0, 50.0)]
    canonical = data.transpose(0, 2, 1, 3, 4)
    for region in random_regions(src.shape, 10):
        assert np.array_equal(src.read(region), canonical[region])


def test_plain_tiff_resolution_in_centimetres(tmp_path: Path) -> None:
    path = tmp_path / "plain.tif"
    # 40 nm pixels: 250,000 pixels per centimetre.
    tifffile.imwrite(
        path,
        np.zeros((8, 8), np.uint8),
        resolution=(250_000, 250_000),
        resolutionunit="CENTIMETER",
        **MB,
    )
    src = open_source(path)
    assert src.dims == ("y", "x")
    assert src.pixel_sizes == pytest.approx({"x": 40.0, "y": 40.0})


@pytest.mark.parametrize("resolution", [None, (72, 72)])
def test_plain_tiff_without_calibration_reports_missing_sizes(
    tmp_path: Path, resolution: tuple[int, int] | None
) -> None:
    """No resolution, or a 72 dpi print setting, is not a pixel size: report it as missing."""
    path = tmp_path / "plain.tif"
    kwargs = {"resolution": resolution, "resolutionunit": "INCH"} if resolution else {}
    tifffile.imwrite(path, np.zeros((8, 8), np.uint8), **kwargs, **MB)  # type: ignore[arg-type]
    src = open_tiff(path)
    assert src.pixel_sizes == {}
    assert src.missing_pixel_sizes == ("y", "x")


def test_rgb_samples_become_channels(tmp_path: Path) -> None:
    path = tmp_path / "rgb.tif"
    data = np.random.default_rng(0).integers(0, 255, (16, 20, 3), dtype=np.uint8)
    tifffile.imwrite(path, data, photometric="rgb")
    src = open_source(path)
    assert (src.dims, src.shape) == (("c", "y", "x"), (3, 16, 20))
    assert [(c.name, c.color) for c in src.channels] == [
        ("red", "FF0000"),
        ("green", "00FF00"),
        ("blue", "0000FF"),
    ]
    assert np.array_equal(
        src.read((slice(1, 3), slice(2, 9), slice(None))), data.transpose(2, 0, 1)[1:3, 2:9]
    )


def test_channels_and_samples_merge_into_one_channel_axis(tmp_path: Path) -> None:
    path = tmp_path / "cyxs.tif"
    data = np.arange(2 * 8 * 10 * 3, dtype=np.uint8).reshape(2, 8, 10, 3)
    tifffile.imwrite(path, data, photometric="rgb", metadata={"axes": "CYXS"})
    src = open_tiff(path)
    assert (src.dims, src.shape) == (("c", "y", "x"), (6, 8, 10))
    canonical = data.transpose(0, 3, 1, 2).reshape(6, 8, 10)
    for c0, c1 in [(0, 6), (2, 5), (4, 5), (1, 4)]:
        region = (slice(c0, c1), slice(1, 7), slice(3, 10))
        assert np.array_equal(src.read(region), canonical[region])


def test_unlabelled_page_sequence_is_read_as_z_and_says_so(tmp_path: Path) -> None:
    path = tmp_path / "pages.tif"
    data = np.arange(3 * 4 * 5, dtype=np.uint16).reshape(3, 4, 5)
    with tifffile.TiffWriter(path) as w:
        for plane in data:
            w.write(plane, metadata=None, **MB)
    src = open_tiff(path)
    assert (src.dims, src.shape) == (("z", "y", "x"), (3, 4, 5))
    assert "z" in src.acquisition["axes_assumed"]
    assert np.array_equal(src.read((slice(None),) * 3), data)


def test_axis_that_cannot_be_stored_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "tiles.tif"
    tifffile.imwrite(path, np.zeros((2, 4, 4), np.uint8), metadata={"axes": "RYX"}, **MB)
    with pytest.raises(InvalidImage, match=r"tile axis") as info:
        open_tiff(path)
    assert str(path) in str(info.value)


def test_big_endian_tiff(tmp_path: Path) -> None:
    path = tmp_path / "be.tif"
    data = np.arange(2 * 6 * 7, dtype=np.uint16).reshape(2, 6, 7) * 300
    tifffile.imwrite(path, data, byteorder=">", metadata={"axes": "CYX"}, **MB)
    src = open_tiff(path)
    out = src.read((slice(None), slice(1, 5), slice(None)))
    assert out.dtype == np.dtype("uint16") and out.dtype.isnative
    assert np.array_equal(out, data[:, 1:5])


def test_region_validation(tmp_path: Path) -> None:
    path = tmp_path / "r.tif"
    tifffile.imwrite(path, np.zeros((4, 5), np.uint8), **MB)
    src = open_tiff(path)
    with pytest.raises(ValueError, match="step 1"):
        src.read((slice(0, 4, 2), slice(None)))
    with pytest.raises(ValueError, match="more dims"):
        src.read((slice(None),) * 3)
    assert src.read((slice(2, 10),)).shape == (2, 5)
