"""Content sniffing, dispatch, and bad input: every damaged file gets a clear error."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tifffile
from ome_types import to_xml

from nanorepo.errors import InvalidImage, InvalidInput, NanorepoError
from nanorepo.ome._harvest import check, is_image, is_localisation_table, open_source
from nanorepo.ome._smlm import read_localisations
from tests.ome.test_readers_planes import write_planes
from tests.ome.test_readers_tiff import MB, rich_ome, write_rich_ome_tiff
from tests.ome.test_readers_zarr import write_ome_zarr

# -- classification ------------------------------------------------------------------------------


def test_classification_is_by_content(tmp_path: Path) -> None:
    tiff_named_dat = tmp_path / "image.dat"
    tifffile.imwrite(tiff_named_dat, np.zeros((4, 4), np.uint8), **MB)
    text_named_tif = tmp_path / "notes.tif"
    text_named_tif.write_text("not an image\n")
    table = tmp_path / "locs.csv"
    table.write_text("x_nm,y_nm\n1,2\n")
    zarr_dir = tmp_path / "img.zarr"
    write_ome_zarr(zarr_dir, "0.5", (4, 4), axes=[{"name": "y", "type": "space"},
                                                   {"name": "x", "type": "space"}],
                   scale=[1.0, 1.0])  # fmt: skip
    planes = tmp_path / "planes"
    write_planes(planes, (1, 1, 2, 4, 4))
    empty_dir = tmp_path / "empty"
    empty_dir.mkdir()

    assert is_image(tiff_named_dat)
    assert not is_image(text_named_tif)
    assert not is_image(table)
    assert is_image(zarr_dir)
    assert is_image(planes)
    assert not is_image(empty_dir)
    assert not is_image(tmp_path / "nothing-here")
    assert is_localisation_table(table)
    assert not is_localisation_table(tiff_named_dat)
    assert not is_localisation_table(zarr_dir)

    assert open_source(tiff_named_dat).name == "image"
    assert open_source(zarr_dir / "zarr.json").shape == (4, 4)  # the metadata file means the group


def test_name_can_be_given(tmp_path: Path) -> None:
    path = tmp_path / "x.ome.tif"
    write_rich_ome_tiff(path, (1, 1, 1, 8, 8))
    assert open_source(path, name="cell_7").name == "cell_7"


def test_check_passes_on_good_input(tmp_path: Path) -> None:
    path = tmp_path / "x.ome.tif"
    write_rich_ome_tiff(path, compression="zlib")
    check(open_source(path))
    check(open_source(path), max_block_bytes=100)  # many small blocks, same result


# -- bad input -------------------------------------------------------------------------------------


def _expect(path: Path, problem: str, error: type[NanorepoError] = InvalidImage) -> None:
    """Opening (and checking) ``path`` raises ``error`` naming the file and ``problem``."""
    with pytest.raises(error, match=problem) as info:
        check(open_source(path))
    assert str(path) in str(info.value)
    assert info.value.hint, "every error says how to fix it"


@pytest.mark.parametrize("compression", [None, "zlib"])
@pytest.mark.parametrize("ome", [True, False])
def test_truncated_tiff(tmp_path: Path, compression: str | None, ome: bool) -> None:
    path = tmp_path / "cut.tif"
    data = np.random.default_rng(0).integers(0, 4000, (6, 32, 32), dtype=np.uint16)
    tifffile.imwrite(path, data, ome=ome, compression=compression, metadata={"axes": "ZYX"}, **MB)
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])
    _expect(path, r"damaged|truncated")


def test_truncated_single_page_tiff(tmp_path: Path) -> None:
    path = tmp_path / "cut.tif"
    tifffile.imwrite(path, np.ones((64, 64), np.uint16), **MB)
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])
    _expect(path, r"is truncated: .* needs bytes up to")


def test_corrupt_bytes_in_the_middle(tmp_path: Path) -> None:
    path = tmp_path / "corrupt.tif"
    data = np.random.default_rng(0).integers(0, 4000, (6, 32, 32), dtype=np.uint16)
    tifffile.imwrite(path, data, compression="zlib", metadata={"axes": "ZYX"}, **MB)
    raw = bytearray(path.read_bytes())
    middle = len(raw) // 2
    raw[middle - 64 : middle + 64] = bytes(range(128))
    path.write_bytes(bytes(raw))
    _expect(path, r"damaged|truncated|cannot decode")


def test_text_file_named_tif(tmp_path: Path) -> None:
    path = tmp_path / "notes.tif"
    path.write_text("Acquisition notes: STED, 775 nm depletion\n")
    _expect(path, r"is not a TIFF, OME-TIFF, CZI, LIF, ND2, OME-Zarr, TIFF plane directory "
                  r"or localisation table: it is text")  # fmt: skip


def test_other_formats_are_named(tmp_path: Path) -> None:
    path = tmp_path / "scan.ims"
    path.write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(100))
    _expect(path, "it is an HDF5 file")
    cut = tmp_path / "scan.czi"  # a vendor format nanorepo reads, cut short
    cut.write_bytes(b"ZISRAWFILE" + bytes(100))
    _expect(cut, "is a Zeiss CZI file that bioio-czi [0-9.]+ cannot open")


@pytest.mark.parametrize(
    ("name", "content", "what"),
    [
        ("cell_sml.mat", b"MATLAB 7.3 MAT-file, Platform: GLNXA64" + bytes(200),
         "a MATLAB .mat file"),
        ("locs.hdf5", b"\x89HDF\r\n\x1a\n" + bytes(200), "an HDF5 file"),
        ("cell.smlm", b"PK\x03\x04" + bytes(200), "the .smlm format"),
        ("storm.txt", b'# <localizations insequence="true" repetitions="variable">'
         b'<field identifier="Position-0-0" unit="nanometer" /></localizations>\n'
         b"1012.5 2000.1 0 3000\n", "rapidSTORM"),
        ("elyra.txt", b"Index\tFirst Frame\tNumber Frames\tPosition X [nm]\tPosition Y [nm]\n"
         b"1\t1\t1\t100.5\t200.5\n\x00\x01\x02", "Zeiss ZEN (Elyra)"),
    ],
)  # fmt: skip
def test_localisation_files_not_read_are_named(
    tmp_path: Path, name: str, content: bytes, what: str
) -> None:
    """A localisation file nanorepo does not read is named for what it is, with a hint
    about tables (no Bio-Formats, which does not apply to tables)."""
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(InvalidImage) as info:
        open_source(path)
    assert f"is a localisation file of {what}" in info.value.message
    assert "Bio-Formats" not in str(info.value) and "x [nm]" in (info.value.hint or "")


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.ome.tif"
    path.write_bytes(b"")
    _expect(path, r"is empty \(0 bytes\)")


def test_missing_file(tmp_path: Path) -> None:
    _expect(tmp_path / "nope.tif", "does not exist")


def test_malformed_ome_xml(tmp_path: Path) -> None:
    path = tmp_path / "bad.ome.tif"
    xml = to_xml(rich_ome((1, 2, 3, 16, 16))).replace("</Pixels>", "", 1)
    write_rich_ome_tiff(path, (1, 2, 3, 16, 16), xml=xml)
    # nanorepo's own words and the place of the damage (the closing </Pixels> is missing,
    # so its </Image> is the mismatched tag), whichever XML parser ome-types uses
    line = xml[: xml.index("</Image>")].count("\n") + 1
    _expect(path, rf"its OME-XML is not well-formed XML \(line {line}, column \d+\)")


def test_ome_xml_with_invalid_values(tmp_path: Path) -> None:
    path = tmp_path / "bad.ome.tif"
    xml = to_xml(rich_ome((1, 1, 2, 16, 16))).replace('Type="uint16"', 'Type="uint17"')
    write_rich_ome_tiff(path, (1, 1, 2, 16, 16), xml=xml)
    _expect(path, r"OME-XML is not valid: .*type")


@pytest.mark.parametrize("size_z", [2, 4])
def test_ome_xml_that_contradicts_the_pages(tmp_path: Path, size_z: int) -> None:
    """SizeZ=2 or 4 while the file holds 3 z planes: never convert part of the data."""
    path = tmp_path / "liar.ome.tif"
    xml = to_xml(rich_ome((1, 1, size_z, 16, 16)))
    write_rich_ome_tiff(path, (1, 1, 3, 16, 16), xml=xml)
    _expect(path, r"OME-XML contradicts the pixel data")


def test_ome_xml_with_wrong_plane_size(tmp_path: Path) -> None:
    path = tmp_path / "liar.ome.tif"
    xml = to_xml(rich_ome((1, 1, 3, 16, 16))).replace('SizeX="16"', 'SizeX="17"')
    write_rich_ome_tiff(path, (1, 1, 3, 16, 16), xml=xml)
    _expect(path, r"OME-XML contradicts the pixel data|damaged")


def test_plane_directory_with_a_missing_plane(tmp_path: Path) -> None:
    directory = tmp_path / "planes"
    write_planes(directory, (1, 2, 3, 8, 8), skip=(0, 1, 1))
    _expect(directory, r"planes of 'cell1' are missing: t=0 c=1 z=1")


def test_zarr_with_broken_multiscales(tmp_path: Path) -> None:
    path = tmp_path / "broken.ome.zarr"
    write_ome_zarr(path, "0.5", (8, 8), axes=[{"name": "y", "type": "space"},
                                               {"name": "x", "type": "space"}],
                   scale=[1.0, 1.0])  # fmt: skip
    meta = (path / "zarr.json").read_text().replace('"datasets"', '"data_sets"')
    (path / "zarr.json").write_text(meta)
    _expect(path, r"OME-Zarr \(NGFF 0\.5\) metadata is not valid: .*datasets")


def test_directory_that_is_nothing(tmp_path: Path) -> None:
    directory = tmp_path / "misc"
    directory.mkdir()
    (directory / "readme.txt").write_text("hello")
    _expect(directory, r"is not a TIFF, .* \(a directory without Zarr metadata or TIFF files\)")


def test_localisation_table_given_as_an_image(tmp_path: Path) -> None:
    path = tmp_path / "locs.csv"
    path.write_text("x [nm],y [nm]\n1,2\n")
    _expect(path, "is a localisation table, not an image")


def test_csv_without_coordinates(tmp_path: Path) -> None:
    path = tmp_path / "locs.csv"
    path.write_text("frame,intensity\n1,200\n2,300\n")
    assert not is_localisation_table(path)
    with pytest.raises(InvalidInput, match=r"no x and no y coordinate column") as info:
        read_localisations(path)
    assert str(path) in str(info.value)
