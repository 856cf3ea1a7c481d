"""Existing OME-Zarr input: NGFF 0.4 (Zarr v2) and 0.5 (Zarr v3), validation, lazy reads."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import zarr
from ome_types import to_xml

from nanorepo.errors import InvalidImage
from nanorepo.ome._harvest import is_image, open_source, open_sources
from nanorepo.ome._source import ImageSource
from nanorepo.ome._zarr_input import open_ome_zarr
from tests.ome.test_readers_tiff import random_regions, rich_ome

AXES_TCZYX: list[dict[str, Any]] = [
    {"name": "t", "type": "time", "unit": "millisecond"},
    {"name": "c", "type": "channel"},
    {"name": "z", "type": "space", "unit": "micrometer"},
    {"name": "y", "type": "space", "unit": "micrometer"},
    {"name": "x", "type": "space", "unit": "micrometer"},
]
SCALE = [500.0, 1.0, 0.25, 0.04, 0.04]
OMERO = {
    "channels": [
        {
            "label": "Nup96",
            "color": "FF00FF",
            "window": {"start": 5, "end": 900, "min": 0, "max": 4095},
        },
        {
            "label": "DNA",
            "color": "00ffff",
            "window": {"start": 0, "end": 300, "min": 0, "max": 4095},
        },
    ]
}


def write_ome_zarr(
    path: Path,
    version: str = "0.5",
    shape: tuple[int, ...] = (2, 2, 3, 20, 24),
    *,
    axes: list[dict[str, Any]] | None = None,
    scale: list[float] | None = None,
    omero: dict[str, Any] | None = None,
    seed: int = 0,
) -> np.ndarray:
    """Write a two-level OME-Zarr with zarr-python by hand (independent of nanorepo's writer)."""
    axes = AXES_TCZYX if axes is None else axes
    scale = SCALE if scale is None else scale
    data = np.random.default_rng(seed).integers(0, 4000, shape, dtype=np.uint16)
    half = data[..., ::2, ::2]
    ms: dict[str, Any] = {
        "axes": axes,
        "datasets": [
            {"path": "0", "coordinateTransformations": [{"type": "scale", "scale": scale}]},
            {
                "path": "1",
                "coordinateTransformations": [
                    {"type": "scale", "scale": [*scale[:-2], scale[-2] * 2, scale[-1] * 2]}
                ],
            },
        ],
    }
    chunks = (*([1] * (len(shape) - 2)), 8, 8)
    if version == "0.5":
        group = zarr.open_group(path, mode="w", zarr_format=3)
        attrs: dict[str, Any] = {"version": "0.5", "multiscales": [ms]}
        if omero is not None:
            attrs["omero"] = omero
        group.attrs.update({"ome": attrs})
        names = [a["name"] for a in axes]
        group.create_array("0", data=data, chunks=chunks, dimension_names=names)
        group.create_array("1", data=half, chunks=chunks, dimension_names=names)
    else:
        group = zarr.open_group(path, mode="w", zarr_format=2)
        attrs = {"multiscales": [{"version": version, **ms}]}
        if omero is not None:
            attrs["omero"] = omero
        group.attrs.update(attrs)
        group.create_array("0", data=data, chunks=chunks)
        group.create_array("1", data=half, chunks=chunks)
    return data


@pytest.mark.parametrize("version", ["0.4", "0.5"])
def test_ome_zarr_is_read_with_its_metadata(tmp_path: Path, version: str) -> None:
    path = tmp_path / "cell1.ome.zarr"
    data = write_ome_zarr(path, version, omero=OMERO)
    assert is_image(path)
    src = open_source(path)
    assert isinstance(src, ImageSource)
    assert src.name == "cell1"
    assert (src.dims, src.shape, src.dtype) == (("t", "c", "z", "y", "x"), data.shape, np.uint16)
    assert src.pixel_sizes == pytest.approx({"t": 0.5, "z": 250.0, "y": 40.0, "x": 40.0})
    assert [(c.name, c.color, c.window) for c in src.channels] == [
        ("Nup96", "FF00FF", (5.0, 900.0)),
        ("DNA", "00FFFF", (0.0, 300.0)),
    ]
    assert src.ngff_version == version  # type: ignore[attr-defined]
    for region in random_regions(src.shape, 10):
        assert np.array_equal(src.read(region), data[region])


@pytest.mark.parametrize(
    ("change", "field", "problem"),
    [
        (lambda ch: ch.update(color=16711935), "omero.channels[0].color", "'16711935' (int)"),
        (lambda ch: ch.update(color="magenta"), "omero.channels[0].color", "'magenta' (str)"),
        (lambda ch: ch["window"].update(end="900"), "omero.channels[0].window.end", "'900' (str)"),
        (lambda ch: ch.update(label=7), "omero.channels[0].label", "'7' (int)"),
    ],
)  # fmt: skip
def test_invalid_omero_metadata_is_refused_naming_the_field(
    tmp_path: Path, change: Any, field: str, problem: str
) -> None:
    """Not silently replaced by defaults (docs/formats.md)."""
    omero = copy.deepcopy(OMERO)
    change(omero["channels"][0])
    path = tmp_path / "cell.ome.zarr"
    write_ome_zarr(path, "0.5", omero=omero)
    with pytest.raises(InvalidImage) as info:
        open_source(path)
    assert f"its omero metadata is not valid: {field} is {problem}, not " in info.value.message
    assert "omero" in (info.value.hint or "")


def test_translation_is_kept_in_nanometres(tmp_path: Path) -> None:
    """The stage position (an NGFF translation after the scale) is recorded, in nm."""
    path = tmp_path / "cell.ome.zarr"
    write_ome_zarr(path, "0.5")
    group = zarr.open_group(path, mode="r+")
    ome = group.attrs["ome"]
    for ds in ome["multiscales"][0]["datasets"]:
        ds["coordinateTransformations"].append(
            {"type": "translation", "translation": [0.0, 0.0, 1.5, 2.0, -0.4]}
        )
    group.attrs["ome"] = ome
    src = open_source(path)
    assert src.acquisition["translation"] == pytest.approx({"z": 1500.0, "y": 2000.0,
                                                            "x": -400.0})  # fmt: skip


def test_missing_units_are_reported_as_missing_sizes(tmp_path: Path) -> None:
    axes = [{"name": a, "type": "space"} for a in "zyx"]
    write_ome_zarr(tmp_path / "a.zarr", "0.5", (2, 8, 8), axes=axes, scale=[1.0, 1.0, 1.0])
    src = open_ome_zarr(tmp_path / "a.zarr")
    assert src.pixel_sizes == {}
    assert src.missing_pixel_sizes == ("z", "y", "x")
    assert [c.color for c in src.channels] == ["FFFFFF"]


def test_reads_only_the_chunks_a_region_touches(tmp_path: Path) -> None:
    path = tmp_path / "a.zarr"
    axes = [{"name": a, "type": "space", "unit": "nanometer"} for a in "yx"]
    data = write_ome_zarr(path, "0.5", (16, 16), axes=axes, scale=[10.0, 10.0])
    chunk = path / "0" / "c" / "1" / "1"
    assert chunk.is_file()
    chunk.write_bytes(b"garbage, not a chunk")
    src = open_ome_zarr(path)
    assert src.pixel_sizes == {"y": 10.0, "x": 10.0}
    assert np.array_equal(src.read((slice(0, 8), slice(0, 16))), data[:8])
    with pytest.raises(InvalidImage, match="cannot read the pixel data"):
        src.check()


@pytest.mark.parametrize("version", ["0.4", "0.5"])
def test_broken_multiscales_metadata_is_reported(tmp_path: Path, version: str) -> None:
    path = tmp_path / "broken.zarr"
    write_ome_zarr(path, version, (2, 8, 8), axes=AXES_TCZYX[2:], scale=[1.0, 1.0, 1.0])
    meta_file = path / ("zarr.json" if version == "0.5" else ".zattrs")
    meta = json.loads(meta_file.read_text())
    ms = meta["attributes"]["ome"]["multiscales"][0] if version == "0.5" else meta["multiscales"][0]
    ms["axes"][0]["type"] = "channel"  # a channel axis after... and no time axis: still
    ms["axes"] = ms["axes"][1:]  # now 2 axes for 3-D arrays: invalid
    meta_file.write_text(json.dumps(meta))
    with pytest.raises(InvalidImage, match=rf"NGFF {version}\) metadata is not valid") as info:
        open_source(path)
    assert str(path) in str(info.value)


def test_dataset_path_that_does_not_exist(tmp_path: Path) -> None:
    path = tmp_path / "broken.zarr"
    write_ome_zarr(path, "0.5", (8, 8), axes=AXES_TCZYX[3:], scale=[1.0, 1.0])
    meta = json.loads((path / "zarr.json").read_text())
    meta["attributes"]["ome"]["multiscales"][0]["datasets"][0]["path"] = "missing"
    (path / "zarr.json").write_text(json.dumps(meta))
    with pytest.raises(InvalidImage, match="not valid"):
        open_ome_zarr(path)


def test_zarr_json_that_is_not_json(tmp_path: Path) -> None:
    path = tmp_path / "bad.zarr"
    path.mkdir()
    (path / "zarr.json").write_text("{ not json")
    with pytest.raises(InvalidImage, match=r"zarr\.json is not valid JSON"):
        open_source(path)


def test_old_ngff_versions_are_refused_with_a_hint(tmp_path: Path) -> None:
    path = tmp_path / "old.zarr"
    write_ome_zarr(path, "0.3", (8, 8), axes=AXES_TCZYX[3:], scale=[1.0, 1.0])
    with pytest.raises(InvalidImage, match=r"NGFF 0\.3.*reads NGFF 0\.4 and 0\.5") as info:
        open_source(path)
    assert "ome-zarr-py" in str(info.value)


def test_plain_zarr_group_without_ome_metadata(tmp_path: Path) -> None:
    path = tmp_path / "plain.zarr"
    group = zarr.open_group(path, mode="w", zarr_format=3)
    group.create_array("0", data=np.zeros((4, 4), np.uint8))
    with pytest.raises(InvalidImage, match="without OME-Zarr"):
        open_source(path)
    with pytest.raises(InvalidImage, match="bare Zarr array"):
        open_source(path / "0")


def test_bioformats2raw_layout_harvests_its_ome_xml(tmp_path: Path) -> None:
    root = tmp_path / "export.ome.zarr"
    zarr.open_group(root, mode="w", zarr_format=3).attrs.update(
        {"ome": {"version": "0.5", "bioformats2raw.layout": 3}}
    )
    data = write_ome_zarr(root / "0", "0.5", (2, 2, 3, 32, 40))
    write_ome_zarr(root / "1", "0.5", (1, 1, 1, 8, 8), seed=1)
    (root / "OME").mkdir()
    ome = rich_ome((2, 2, 3, 32, 40))
    second = rich_ome((1, 1, 1, 8, 8)).images[0]
    second.id, second.pixels.id, second.name = "Image:1", "Pixels:1", "overview"
    second.pixels.channels[0].id = "Channel:1:0"
    ome.images.append(second)
    (root / "OME" / "METADATA.ome.xml").write_text(to_xml(ome))
    src = open_source(root)
    assert src.name == "export"
    assert src.shape == data.shape
    assert src.acquisition["technique"] == "STED"
    assert src.acquisition["microscope"]["model"] == "STEDYCON"
    assert src.channels[0].name == "Nup96-AF647"
    assert src.key_values == {"cell line": "U2OS"}
    assert "<OME" in (src.ome_xml or "")  # type: ignore[attr-defined]
    both = open_sources(root)
    assert [s.name for s in both] == ["export_s0", "export_s1"]
    assert both[1].acquisition["image_name"] == "overview"
