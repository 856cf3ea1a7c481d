"""The reader: what it claims, what layers it makes (remote and from the mounted storage),
that their pixels are the repository's, and its errors."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import nanorepo
from nanorepo.errors import DatasetNotFound, ImageNotFound, InvalidInput
from nanorepo.napari import LevelArray, RegionSource, get_reader, parse_target, read_layers
from tests.napari.conftest import BIG_PIXEL_NM, BIG_SHAPE, Service


def test_get_reader_claims_only_nanorepo_locations() -> None:
    for ours in ["nanorepo://S-NANO1", "nanorepo://S-NANO1@v2/npc_sted", "NANOREPO://S-NANO4/",
                 "nanorepo://not an accession",  # ours, and read_layers says why it is wrong
                 "http://127.0.0.1:8000/zarr/S-NANO1/v1/cell0",
                 "https://hub.example.org/services/nanorepo/zarr/S-NANO12/2/npc_sted/",
                 ["nanorepo://S-NANO1"]]:  # fmt: skip
        assert get_reader(ours) is read_layers, ours
    for foreign in ["/data/cell.ome.zarr", "cell.tif", "https://example.org/data.zarr",
                    "https://example.org/zarr/images/v1/x",  # not an accession
                    "http://h/zarr/S-NANO1/v1/../../etc",  # not an image name
                    "http://h/zarr/S-NANO1/v0/img", "s3://bucket/zarr/S-NANO1/v1/x",
                    ["nanorepo://S-NANO1", "nanorepo://S-NANO2"], [], None, 42]:  # fmt: skip
        assert get_reader(foreign) is None, foreign  # type: ignore[arg-type]


def test_targets_parse_to_the_dataset_version_and_image() -> None:
    t = parse_target("nanorepo://S-NANO7@v3/npc_sted")
    assert t is not None
    assert (t.accession, t.version, t.image, t.service) == ("S-NANO7", 3, "npc_sted", None)
    assert t.uri == "nanorepo://S-NANO7@v3/npc_sted" and t.ref == "S-NANO7@v3"
    t = parse_target("https://hub.example.org/services/nanorepo/zarr/S-NANO7/v2/img.1/")
    assert t is not None
    assert t.service == "https://hub.example.org/services/nanorepo"
    assert (t.accession, t.version, t.image) == ("S-NANO7", 2, "img.1")
    for bad, says in [("nanorepo://", "not a nanorepo URI"), ("nanorepo://S-NANO1/a/b", "URI"),
                      ("nanorepo://S-NANO1@v0", "versions start at 1"),
                      ("nanorepo://X-1", "not an accession"),
                      ("nanorepo://S-NANO1/.hidden", "not a valid image name")]:  # fmt: skip
        with pytest.raises(InvalidInput, match=says):
            parse_target(bad)


REGION = {"kind": "region", "image": "big", "unit": "nanometer", "shape": "box",
          "x": [0.0, 3000.0], "y": [0.0, 1500.0]}  # fmt: skip


def _by_kind(layers: list[Any], kind: str) -> list[Any]:
    return [lay for lay in layers if lay[2] == kind]


def test_remote_image_opens_as_lazy_multiscale_layers(napari_service: Service) -> None:
    svc = napari_service
    settings = svc.env("bob")
    assert not (settings.storage / "public").exists()  # nothing mounted: HTTP only
    # an image without region threads gets no (empty) threads layer ...
    assert [k for _, _, k in read_layers(f"nanorepo://{svc.big}", settings=settings)] == [
        "image",
        "image",
    ]
    # ... one with a region thread gets one
    with nanorepo.Client(svc.url, svc.seed.tokens["carol"]) as carol:
        carol.create_thread(svc.big, "A corner", "here", anchor=REGION)
    svc.traffic.clear()
    layers = read_layers(f"nanorepo://{svc.big}/big", settings=settings)
    # opening fetched metadata only: no chunk of any level yet
    assert not [p for p, _, _ in svc.traffic.zarr() if "/c/" in p]
    images, shapes = _by_kind(layers, "image"), _by_kind(layers, "shapes")
    assert len(images) == 2 and len(shapes) == 1 and len(layers) == 3
    assert shapes[0][1]["features"]["title"].tolist() == ["A corner"]
    expected = nanorepo.open(svc.big, settings=svc.settings)["big"]
    assert [kw["metadata"]["channel"] for _, kw, _ in images] == expected.channel_names
    assert expected.channel_names == ["Nup96", "DNA"]  # as the data says
    for i, (levels, kw, _) in enumerate(images):
        assert kw["multiscale"] is True and kw["name"] == f"big · {expected.channel_names[i]}"
        assert len(levels) == len(expected.levels) == 5
        assert all(isinstance(lv, LevelArray) for lv in levels)
        assert [lv.shape for lv in levels] == [tuple(s[1:]) for s in expected.levels]
        assert kw["scale"] == [BIG_PIXEL_NM, BIG_PIXEL_NM] and kw["units"] == ["nm", "nm"]
        assert kw["axis_labels"] == ["y", "x"] and kw["translate"] == [0.0, 0.0]
        window = expected.channels[i]["window"]
        assert kw["contrast_limits"] == [float(window[0]), float(window[1])]
        assert kw["colormap"] == "#" + expected.channels[i]["color"].lower()
        meta = kw["metadata"]["nanorepo"]
        assert meta["dataset"] == f"{svc.big}@v1" and meta["image"] == "big"
        assert meta["regions"]["service"] == svc.url
    assert levels[0].image.location.startswith(svc.url + "/zarr/")
    # pixels of regions equal nanorepo.open on the same regions, at several levels
    for level, (ys, xs) in [(0, (slice(4000, 4300), slice(6100, 6400))),
                            (2, (slice(1000, 1100), slice(0, 700))),
                            (4, (slice(None), slice(None)))]:  # fmt: skip
        want = expected.to_xarray(level, dask=False).isel(y=ys, x=xs).values
        for c, (lv, _, _) in enumerate(images):
            got = lv[level][ys, xs]
            assert isinstance(got, np.ndarray) and got.dtype == np.uint16
            np.testing.assert_array_equal(got, want[c])
    # numpy's indexing: an Ellipsis, integers, and the whole array
    lowest = images[1][0][4]
    np.testing.assert_array_equal(lowest[..., 7], lowest[:, 7])
    np.testing.assert_array_equal(lowest[3], np.asarray(lowest)[3])
    assert np.asarray(lowest, dtype=np.float32).dtype == np.float32
    with pytest.raises(IndexError):
        lowest[1, 2, 3]
    # a region costs what the region costs: one 300 x 300 tile is a few inner chunks
    svc.traffic.clear()
    images[0][0][0][100:400, 100:400]
    fetched = sum(n for p, _, n in svc.traffic.zarr())
    assert 0 < fetched < 3 * 512 * 512 * 2  # at most a few 512 x 512 chunks of one channel


def test_zarr_url_of_the_service_opens_the_same(napari_service: Service) -> None:
    svc = napari_service
    url = f"{svc.url}/zarr/{svc.big}/v1/big"
    via_url = read_layers(url, settings=svc.env("bob"))
    via_uri = read_layers(f"nanorepo://{svc.big}/big", settings=svc.env("bob"))
    assert [kw["name"] for _, kw, _ in via_url] == [kw["name"] for _, kw, _ in via_uri]
    levels = via_url[1][0]
    np.testing.assert_array_equal(levels[3][:, :], via_uri[1][0][3][:, :])
    # the token goes to the configured service only: from elsewhere the URL is anonymous
    regions = via_url[0][1]["metadata"]["nanorepo"]["regions"]
    assert regions["service"] == svc.url and regions["authenticated"] is True
    stranger = svc.env("bob").with_(url="http://127.0.0.1:9/")
    meta = read_layers(url, settings=stranger)[0][1]["metadata"]["nanorepo"]
    assert meta["regions"]["authenticated"] is False
    source = RegionSource.from_json(meta["regions"])
    assert source.headers(stranger) == {}
    with nanorepo.Client(svc.url, svc.seed.tokens["bob"]) as bob:
        assert RegionSource.from_json(regions).headers(svc.env("bob")) == bob.auth_headers


def test_mounted_storage_reads_in_place(napari_service: Service) -> None:
    svc = napari_service
    svc.traffic.clear()
    # a machine with the storage mounted and no service: images only, read from the files
    layers = read_layers(f"nanorepo://{svc.big}", settings=svc.env(None, storage=True, url=False))
    assert [lay[2] for lay in layers] == ["image", "image"]  # no service, no threads
    assert svc.traffic.log == []
    lv = layers[1][0][0]
    assert lv.image.location.startswith(str(svc.settings.storage))
    assert lv.shape == BIG_SHAPE[1:]
    local = nanorepo.open(svc.big, settings=svc.settings)["big"]
    np.testing.assert_array_equal(
        lv[2000:2100, 7000:7050],
        local.zarr.read_region(0, (1, slice(2000, 2100), slice(7000, 7050))),
    )
    # a hub user's server: the mount for pixels, the service for threads
    layers = read_layers(f"nanorepo://{svc.big}/big", settings=svc.env("bob", storage=True))
    assert layers[0][1]["metadata"]["nanorepo"]["regions"]["service"] == svc.url
    assert layers[0][0][0].image.location.startswith(str(svc.settings.storage))
    layers[0][0][4][:, :]
    assert svc.traffic.zarr() == []  # no pixel went over HTTP
    assert any(p.endswith("/threads") for p in svc.traffic.paths())


def test_unknown_and_embargoed_datasets_get_the_same_clear_error(napari_service: Service) -> None:
    svc = napari_service
    settings = svc.env("carol")  # signed in, no grant
    errors = {}
    for acc in ("S-NANO99", svc.seed.hidden, svc.seed.granted):
        for location in (f"nanorepo://{acc}", f"nanorepo://{acc}/cell1", f"nanorepo://{acc}@v1/x"):
            with pytest.raises(DatasetNotFound) as exc:
                read_layers(location, settings=settings)
            errors[location] = str(exc.value).replace(acc, "ACC")
    assert len(set(errors.values())) == 1, errors
    assert "no dataset 'ACC'" in errors["nanorepo://S-NANO99"]
    # bob is granted the embargoed one: it opens for him
    assert read_layers(f"nanorepo://{svc.seed.granted}", settings=svc.env("bob"))
    granted = read_layers(f"nanorepo://{svc.seed.granted}@v1/cell1", settings=svc.env("bob"))
    assert granted[0][0][0].shape == (64, 48)
    # a Zarr URL of a dataset one may not see is refused the same way
    with pytest.raises(DatasetNotFound):
        read_layers(f"{svc.url}/zarr/{svc.seed.hidden}/v1/cell2", settings=settings)
    with pytest.raises(ImageNotFound, match="no image 'nope'"):
        read_layers(f"nanorepo://{svc.big}/nope", settings=settings)
    with pytest.raises(InvalidInput, match="not a nanorepo location"):
        read_layers("/tmp/x.tif", settings=settings)
