"""SMLM localisation tables: formats, canonical columns, units, validation, Parquet output."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from nanorepo.errors import InvalidInput
from nanorepo.ome._smlm import (
    CANONICAL_COLUMNS,
    is_localisation_table,
    read_localisations,
)

THUNDERSTORM_HEADER = (
    '"id","frame","x [nm]","y [nm]","z [nm]","sigma [nm]","intensity [photon]",'
    '"offset [photon]","bkgstd [photon]","uncertainty_xy [nm]"'
)


def localisations(n: int = 50, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "frame": np.sort(rng.integers(1, 20, n)).astype(float),
        "x": rng.uniform(0, 20_000, n),
        "y": rng.uniform(0, 20_000, n),
        "z": rng.uniform(-400, 400, n),
        "sigma": rng.uniform(90, 160, n),
        "photons": rng.uniform(300, 5000, n),
        "offset": rng.uniform(5, 20, n),
        "bkgstd": rng.uniform(2, 8, n),
        "unc": rng.uniform(3, 20, n),
    }


def write_thunderstorm(path: Path, locs: dict[str, np.ndarray]) -> None:
    lines = [THUNDERSTORM_HEADER]
    for i in range(len(locs["x"])):
        row = [float(i + 1)] + [locs[k][i] for k in
               ("frame", "x", "y", "z", "sigma", "photons", "offset", "bkgstd", "unc")]  # fmt: skip
        lines.append(",".join(repr(float(v)) for v in row))
    path.write_text("\n".join(lines) + "\n")


def test_thunderstorm_csv(tmp_path: Path) -> None:
    path = tmp_path / "ts.csv"
    locs = localisations()
    write_thunderstorm(path, locs)
    assert is_localisation_table(path)
    table = read_localisations(path)
    assert table.software == "ThunderSTORM"
    assert len(table) == 50
    assert table.columns == [
        "x_nm", "y_nm", "z_nm", "frame", "photons", "sigma_nm", "uncertainty_nm",
        "background_std_photons", "offset_photons", "id",
    ]  # fmt: skip
    t = table.table
    assert t.column("frame").type == pa.int64()
    assert t.column("id").type == pa.int64()
    assert np.allclose(t.column("x_nm").to_numpy(), locs["x"])
    assert np.allclose(t.column("z_nm").to_numpy(), locs["z"])
    assert np.allclose(t.column("uncertainty_nm").to_numpy(), locs["unc"])
    assert np.allclose(t.column("photons").to_numpy(), locs["photons"])
    assert table.source_columns["uncertainty_nm"] == "uncertainty_xy [nm]"
    assert table.units_assumed == ()


def test_thunderstorm_header_quoted_as_one_field(tmp_path: Path) -> None:
    """Some ThunderSTORM exports quote the whole header row as one field."""
    path = tmp_path / "ts_quoted.csv"
    path.write_text('"id,frame,x [nm],y [nm],intensity [photon]"\n'
                    "1,1,100.5,200.25,300\n2,3,110,210,250\n")  # fmt: skip
    assert is_localisation_table(path)
    table = read_localisations(path)
    assert (table.software, len(table)) == ("ThunderSTORM", 2)
    assert table.columns == ["x_nm", "y_nm", "frame", "photons", "id"]
    assert table.units == {"x_nm": "nm", "y_nm": "nm", "frame": "frame", "photons": "photon",
                           "id": None}  # fmt: skip
    assert table.table.column("x_nm").to_pylist() == [100.5, 110.0]
    assert table.table.column("frame").to_pylist() == [1, 3]


def test_summary_is_json_and_correct(tmp_path: Path) -> None:
    path = tmp_path / "ts.csv"
    locs = localisations(seed=3)
    write_thunderstorm(path, locs)
    summary = read_localisations(path).summary()
    json.dumps(summary)  # JSON-able without help
    assert summary["software"] == "ThunderSTORM"
    assert summary["rows"] == 50
    x = summary["columns"]["x_nm"]
    assert x["unit"] == "nm" and x["count"] == 50
    assert x["min"] == pytest.approx(locs["x"].min())
    assert x["max"] == pytest.approx(locs["x"].max())
    assert x["mean"] == pytest.approx(locs["x"].mean())
    assert summary["columns"]["frame"]["unit"] == "frame"
    assert summary["columns"]["photons"]["unit"] == "photon"


def test_write_parquet_round_trip(tmp_path: Path) -> None:
    src = tmp_path / "ts.csv"
    write_thunderstorm(src, localisations())
    table = read_localisations(src)
    out = tmp_path / "locs.parquet"
    table.write_parquet(out)
    meta = pq.read_schema(out).metadata
    stored = json.loads(meta[b"nanorepo.localisations"])
    assert stored == json.loads(json.dumps(table.summary(), sort_keys=True))
    again = read_localisations(out)
    assert again.software == "ThunderSTORM"  # remembered through the metadata
    assert again.columns == table.columns
    assert again.table.select(table.columns).equals(table.table)
    assert again.units_assumed == ()


@pytest.mark.parametrize(
    ("header", "delimiter", "factor"),
    [
        (["x_nm", "y_nm", "frame", "photons"], ",", 1.0),
        (["x", "y", "frame", "phot"], "\t", 1.0),
        (["x (µm)", "y (µm)", "frame", "photons"], ";", 1000.0),
        (["x_um", "y_um", "frame_number", "photon_count"], ",", 1000.0),
        (["X [nm]", "Y [nm]", "Frame", "Intensity"], ",", 1.0),
    ],
)
def test_generic_tables(tmp_path: Path, header: list[str], delimiter: str, factor: float) -> None:
    path = tmp_path / "locs.txt"
    rows = [[1.5, 2.5, 1, 100.0], [3.25, 4.0, 2, 200.0]]
    text = delimiter.join(header) + "\n"
    text += "\n".join(delimiter.join(str(v) for v in r) for r in rows) + "\n"
    path.write_text(text, encoding="utf-8")
    assert is_localisation_table(path)
    table = read_localisations(path)
    assert table.columns[:4] == ["x_nm", "y_nm", "frame", "photons"]
    assert table.table.column("x_nm").to_pylist() == pytest.approx([1.5 * factor, 3.25 * factor])
    assert table.table.column("frame").to_pylist() == [1, 2]
    assert table.software == "generic"
    unitless = "x" in header
    assert table.units_assumed == (("x", "y") if unitless else ())


def test_smap_columns(tmp_path: Path) -> None:
    path = tmp_path / "smap.csv"
    path.write_text("frame,xnm,ynm,znm,phot,bg,locprecnm,locprecznm,PSFxnm\n"
                    "1,10,20,30,500,12,5,15,110\n")  # fmt: skip
    table = read_localisations(path)
    assert table.software == "SMAP"
    assert table.columns == [
        "x_nm", "y_nm", "z_nm", "frame", "photons", "sigma_x_nm", "uncertainty_nm",
        "uncertainty_z_nm", "background_photons",
    ]  # fmt: skip


def test_parquet_input_and_unknown_columns_are_kept(tmp_path: Path) -> None:
    path = tmp_path / "in.parquet"
    pq.write_table(pa.table({"x_nm": [1.0, 2.0], "y_nm": [3.0, 4.0], "Cluster ID": [7, 8]}), path)
    table = read_localisations(path)
    assert table.format == "parquet"
    assert table.columns == ["x_nm", "y_nm", "cluster_id"]
    assert table.source_columns["cluster_id"] == "Cluster ID"


def test_comment_lines_are_skipped(tmp_path: Path) -> None:
    path = tmp_path / "c.csv"
    path.write_text('# exported by a script\n# {"px_size": [100, 100]}\nx_nm,y_nm\n1,2\n3,4\n')
    assert len(read_localisations(path)) == 2


def test_pixel_coordinates_need_a_pixel_size(tmp_path: Path) -> None:
    path = tmp_path / "px.csv"
    path.write_text("frame,x [px],y [px],sigma [px]\n1,10.5,20,1.2\n")
    with pytest.raises(InvalidInput, match=r"'x \[px\]' is in pixels and no pixel size") as info:
        read_localisations(path)
    assert str(path) in str(info.value)
    assert "pixel_size_nm" in str(info.value)
    table = read_localisations(path, pixel_size_nm=107.0)
    assert table.table.column("x_nm").to_pylist() == pytest.approx([1123.5])
    assert table.table.column("sigma_nm").to_pylist() == pytest.approx([128.4])
    assert table.summary()["pixel_size_nm"] == 107.0


def test_non_finite_coordinates_name_the_rows(tmp_path: Path) -> None:
    path = tmp_path / "nan.csv"
    path.write_text("x_nm,y_nm\n1,2\nnan,3\n4,inf\n5,\n6,7\n")
    with pytest.raises(InvalidInput, match=r"3 missing, NaN or infinite") as info:
        read_localisations(path)
    message = str(info.value)
    assert "'x_nm' in data row(s) 2" in message
    assert "'y_nm' in data row(s) 3, 4" in message


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"x_nm,y_nm\n", "no localisations"),
        (b"", r"is empty \(0 bytes\)"),
        (bytes(range(256)) * 4, "is not a table"),
        (b"\x89HDF\r\n\x1a\n" + bytes(64), "is an HDF5 file"),
        (b"PAR1garbage", "not a readable Parquet"),
        (b"x_nm,y_nm\n1,2,3\n", "cannot be read as a table"),
        (b"x_nm,y_nm\nleft,2\n", "'x_nm' is not numeric"),
        (b"frame,photons\n1,2\n", "no x and no y coordinate column"),
        (b"x_nm,z_nm\n1,2\n", r"no y coordinate column \(columns: x_nm, z_nm\)"),
    ],
)
def test_bad_tables(tmp_path: Path, content: bytes, problem: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    with pytest.raises(InvalidInput, match=problem) as info:
        read_localisations(path)
    assert str(path) in str(info.value)


def test_sniffer(tmp_path: Path) -> None:
    good = tmp_path / "a.tsv"
    good.write_text("frame\tx [nm]\ty [nm]\n1\t2\t3\n")
    wrong_suffix = tmp_path / "a.dat"
    wrong_suffix.write_text("x_nm,y_nm\n1,2\n")
    no_xy = tmp_path / "b.csv"
    no_xy.write_text("a,b\n1,2\n")
    assert is_localisation_table(good)
    assert not is_localisation_table(wrong_suffix)
    assert not is_localisation_table(no_xy)
    assert not is_localisation_table(tmp_path)
    assert not is_localisation_table(tmp_path / "missing.csv")


def test_canonical_units_are_declared() -> None:
    assert CANONICAL_COLUMNS["x_nm"] == "nm"
    assert CANONICAL_COLUMNS["photons"] == "photon"


def test_gzip_and_byte_order_mark(tmp_path: Path) -> None:
    import gzip

    path = tmp_path / "locs.csv.gz"
    with gzip.open(path, "wt", encoding="utf-8") as fh:
        fh.write("\ufeffx [nm],y [nm],frame\n1,2,3\n4,5,6\n")
    assert is_localisation_table(path)
    table = read_localisations(path)
    assert table.columns == ["x_nm", "y_nm", "frame"]
    assert table.table.column("y_nm").to_pylist() == [2.0, 5.0]
