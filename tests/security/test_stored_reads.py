"""Issue 14, finding 6: links planted in storage must not leak embargoed data.

Before: thumbnails followed a symlink planted in a public image and showed the pixels of
an embargoed one (the Zarr endpoint already refused). Now every read of stored data goes
through one confined open (``nanorepo.storage.open_beneath``): a test plants links in
every kind of stored object of a public dataset, pointing at the hidden embargoed one,
and checks every channel: the Zarr endpoint, the files route, thumbnails, verify and
the reader.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from nanorepo.errors import IntegrityError
from nanorepo.ome import OmeZarrImage


def _image_dir(repo: Any, acc: str, access: str) -> Path:
    (d,) = (repo.layout.dataset_dir(acc, access) / "images" / "v1").glob("*.ome.zarr")
    return d


def _plant(public_img: Path, hidden_img: Path) -> list[str]:
    """Replace every object of the public image by a link to the hidden image's object of
    the same key (zarr.json, every chunk or shard, at every level); returns the keys."""
    keys = []
    for p in sorted(public_img.rglob("*")):
        if p.is_file() and not p.is_symlink():
            key = p.relative_to(public_img).as_posix()
            target = hidden_img / key
            if target.is_file():
                p.unlink()
                p.symlink_to(target)
                keys.append(key)
    return keys


def test_links_planted_in_storage_reach_no_channel(service: Any) -> None:
    repo, seed = service.repo, service.seed
    pub, hid = _image_dir(repo, seed.public, "public"), _image_dir(repo, seed.hidden, "embargoed")
    name = pub.name.removesuffix(".ome.zarr")
    hidden_bytes = {
        k: (hid / k).read_bytes() for k in (p.relative_to(hid).as_posix() for p in hid.rglob("*")
                                            if p.is_file())
    }  # fmt: skip
    keys = _plant(pub, hid)
    assert {"zarr.json", "0/zarr.json", "0/c/0/0/0"} <= set(keys)
    # An original file of the public dataset, linked to the hidden one's original.
    pub_orig = next((repo.layout.dataset_dir(seed.public, "public") / "originals").rglob("*.tif"))
    hid_orig = next(
        (repo.layout.dataset_dir(seed.hidden, "embargoed") / "originals").rglob("*.tif")
    )
    pub_orig.unlink()
    pub_orig.symlink_to(hid_orig)

    with httpx.Client(base_url=service.url, timeout=60) as http:
        # 1. the Zarr endpoint: every planted key is refused, none serves the hidden bytes
        for key in keys:
            r = http.get(f"/zarr/{seed.public}/v1/{name}/{key}")
            assert r.status_code == 404, (key, r.status_code)
            assert r.content != hidden_bytes[key]
        # 2. the files route
        files = http.get(f"/datasets/{seed.public}/versions/v1/files").json()["items"]
        orig = next(f for f in files if f["role"] == "original")
        r = http.get(f"/datasets/{seed.public}/versions/v1/files/{orig['name']}")
        assert r.status_code == 404
        assert r.content != hid_orig.read_bytes()
        # 3. thumbnails: refused (a server-side integrity error), no pixels, no paths
        r = http.get(f"/datasets/{seed.public}/versions/v1/images/{name}/thumbnail.png")
        assert r.status_code == 500, r.status_code
        assert r.headers["content-type"] == "application/problem+json"
        assert str(repo.settings.storage) not in r.text

    # 4. verify names every planted link
    (rep,) = repo.verify(seed.public)
    links = {p.path for p in rep.problems if p.kind == "link"}
    assert {f"images/v1/{pub.name}/{k}" for k in keys} <= links
    assert pub_orig.relative_to(repo.layout.dataset_dir(seed.public, "public")).as_posix() in links
    # 5. the reader (scan at open) and the service's strict open
    for mode in ("scan", "strict"):
        with pytest.raises(IntegrityError, match="is a symbolic link"):
            OmeZarrImage.open(pub, confined=mode)


def test_a_linked_image_folder_is_refused_by_the_strict_open(tmp_path: Path) -> None:
    """The path from the dataset directory down to the image is walked without links too."""
    dataset = tmp_path / "public" / "S-NANO1"
    (dataset / "images").mkdir(parents=True)
    elsewhere = tmp_path / "embargoed" / "S-NANO2" / "images" / "v1"
    elsewhere.mkdir(parents=True)
    (dataset / "images" / "v1").symlink_to(elsewhere)
    with pytest.raises(IntegrityError, match="symbolic link"):
        OmeZarrImage.open(
            dataset / "images" / "v1" / "cell.ome.zarr", confined="strict", within=dataset
        )


def test_the_zarr_endpoint_refuses_a_link_planted_after_it_opened_the_image(
    service: Any,
) -> None:
    """The endpoint caches where an image is; a folder on the way to it replaced by a link
    afterwards (here ``images/v1`` -> a copy beside it) must not be followed: every object
    is opened from the storage root, component by component, on every request."""
    repo, seed = service.repo, service.seed
    pub = _image_dir(repo, seed.public, "public")
    name = pub.name.removesuffix(".ome.zarr")
    url = f"/zarr/{seed.public}/v1/{name}/0/zarr.json"
    with httpx.Client(base_url=service.url, timeout=60) as http:
        first = http.get(url)
        assert first.status_code == 200, first.text  # opened, and cached by the endpoint
        versions = pub.parent.parent
        (versions / "v1").rename(versions / "v1-moved")
        (versions / "v1").symlink_to(versions / "v1-moved")
        r = http.get(url)
        assert r.status_code == 404, (r.status_code, r.text[:200])
        assert r.content != first.content
