"""The read-only Zarr endpoint: HTTP semantics (Range, suffix Range, 416, ETag, 304, HEAD,
Cache-Control, CORS), embargo on every object, and the viewers that must read it unchanged
(zarr-python over fsspec, ome-zarr-py, napari-ome-zarr, nanorepo's tensorstore reader)."""

from __future__ import annotations

import asyncio
import json
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import tifffile
import yaml

import nanorepo
from nanorepo.ome import OmeZarrImage
from nanorepo.repository import Repository
from nanorepo.service._zarr import ACCESS_TTL_S, parse_range, split_key
from nanorepo.settings import Settings
from nanorepo.testing._service import live_service, seed_repository

ORIGIN = "https://viewer.example.org"
#: Well-formed, same length as the seeded accessions, never deposited.
MISSING = "S-NANO9"


def _manifest(image_dir: Path) -> dict[str, Any]:
    path = image_dir.with_name(image_dir.name.removesuffix(".ome.zarr") + ".manifest.json")
    return dict(json.loads(path.read_text())["objects"])


def _image_dir(repo: Repository, accession: str) -> Path:
    shown = repo.show(accession)
    return Path(shown["images"][0]["storage_path"])


def write_volume(path: Path, seed: int = 0) -> np.ndarray:
    """A 2-channel, 3-plane, 1100 x 1000 OME-TIFF: three pyramid levels, several 512 x 512
    inner chunks per plane, all in one shard per level (so the shard index is read with a
    suffix range)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:1100, 0:1000]
    base = (200 + 100 * np.sin(yy / 37.0) * np.cos(xx / 23.0)).astype(np.float32)
    data = np.stack(
        [
            np.stack([rng.poisson(base + 50 * z + 300 * c).astype(np.uint16) for z in range(3)])
            for c in range(2)
        ]
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    tifffile.imwrite(
        path, data, ome=True, photometric="minisblack",
        metadata={"axes": "CZYX", "PhysicalSizeX": 0.02, "PhysicalSizeXUnit": "µm",
                  "PhysicalSizeY": 0.02, "PhysicalSizeYUnit": "µm", "PhysicalSizeZ": 0.1,
                  "PhysicalSizeZUnit": "µm", "Channel": {"Name": ["Nup96", "DNA"]}},
    )  # fmt: skip
    return data


def deposit_volume(repo: Repository, workdir: Path, name: str, *, embargoed: bool) -> str:
    from datetime import date

    src = workdir / name / f"{name}.ome.tif"
    write_volume(src)
    meta = src.parent / "metadata.yaml"
    meta.write_text(
        yaml.safe_dump(
            {"study": {"description": "Viewer test volume.", "authors": [{"name": "Alice"}],
                       "license": "CC-BY-4.0"},
             "biosample": {"organism": "Homo sapiens"},
             "specimen": {"labels": [{"target": "Nup96"}]},
             "image_acquisition": {"technique": "STED"}}
        )
    )  # fmt: skip
    until = date(2099, 1, 1) if embargoed else None
    return repo.deposit([src], title=f"Viewer volume {name}", metadata=meta,
                        embargo_until=until).accession  # fmt: skip


@pytest.fixture(scope="module")
def viewers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One service (SQLite) for the viewer tests, which only read: the seeded cases plus a
    public and an embargoed (granted to bob) three-level volume; CORS open to ORIGIN."""
    tmp = tmp_path_factory.mktemp("viewers")
    settings = Settings.from_env(tmp / "home", env={"NANOREPO_USER": "alice"}).with_(
        cors_origins=(ORIGIN,)
    )
    repo = Repository(settings, create=True)
    seed = seed_repository(repo, tmp / "seed")
    public = deposit_volume(repo, tmp / "in", "volume", embargoed=False)
    private = deposit_volume(repo, tmp / "in", "secret", embargoed=True)
    repo.grant(private, "user", "bob", who="alice")
    with live_service(settings, repo=repo) as live:
        live.seed = seed  # type: ignore[attr-defined]
        live.volume = public  # type: ignore[attr-defined]
        live.private = private  # type: ignore[attr-defined]
        yield live
    repo.close()


# -- the pieces ------------------------------------------------------------------------


def test_keys_are_allowlisted() -> None:
    assert split_key("zarr.json") == ("zarr.json",)
    assert split_key("0/c/0/0/0") == ("0", "c", "0", "0", "0")
    assert split_key(".zattrs") == (".zattrs",)  # v2 probes get a plain 404 later
    for bad in ["", "/", "a//b", "../x", "a/../b", "./a", "a/.", "a\\b", "/etc/passwd",
                "a\x00b", "%2e%2e/x", "a;b", "é", "a b", "x" * 256, "a/" * 600]:  # fmt: skip
        assert split_key(bad) is None, bad


def test_range_parsing_follows_rfc_9110() -> None:
    from starlette.exceptions import HTTPException

    assert parse_range(None, 100) is None
    assert parse_range("bytes=0-9", 100) == (0, 10)
    assert parse_range("bytes=90-", 100) == (90, 100)
    assert parse_range("bytes=90-1000", 100) == (90, 100)
    assert parse_range("bytes=-10", 100) == (90, 100)
    assert parse_range("bytes=-1000", 100) == (0, 100)
    assert parse_range("Bytes = 1 - 2", 100) == (1, 3)
    # ignored (the whole object is sent): other units, several ranges, malformed
    for ignored in ["items=0-1", "bytes=0-1,5-6", "bytes=5-3", "bytes=-", "bytes=a-b", "0-1"]:
        assert parse_range(ignored, 100) is None, ignored
    for unsatisfiable in ["bytes=100-", "bytes=100-200", "bytes=-0"]:
        with pytest.raises(HTTPException) as e:
            parse_range(unsatisfiable, 100)
        assert e.value.status_code == 416
        assert e.value.headers == {"Content-Range": "bytes */100"}
    with pytest.raises(HTTPException):
        parse_range("bytes=-5", 0)


def test_starlette_file_responses_as_the_benchmark_reference(tmp_path: Path) -> None:
    """Starlette's FileResponse (behind StaticFiles, the reference of
    benchmarks/bench_service_zarr.py) honours single, suffix and multiple ranges, so the
    comparison is like with like. The Zarr endpoint still serves bytes itself: FileResponse
    answers 416 in plain text (not problem+json), and follows symlinks."""
    from starlette.applications import Starlette
    from starlette.routing import Mount
    from starlette.staticfiles import StaticFiles

    data = bytes(range(256)) * 40
    (tmp_path / "obj").write_bytes(data)
    (tmp_path / "link").symlink_to(tmp_path / "obj")
    app = Starlette(routes=[Mount("/s", StaticFiles(directory=tmp_path))])

    async def get(path: str, **headers: str) -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            return await c.get(path, headers=headers)

    r = asyncio.run(get("/s/obj", Range="bytes=-16"))
    assert (r.status_code, r.content) == (206, data[-16:])
    r = asyncio.run(get("/s/obj", Range="bytes=10-19"))
    assert (r.status_code, r.content) == (206, data[10:20])
    r = asyncio.run(get("/s/obj", Range="bytes=0-1,4-5"))
    assert r.status_code == 206
    assert r.headers["content-type"].startswith("multipart/byteranges")
    r = asyncio.run(get("/s/obj", Range=f"bytes={len(data)}-"))
    assert r.status_code == 416
    assert r.headers["content-type"].startswith("text/plain")
    assert asyncio.run(get("/s/link")).content == data  # a symlink is followed


# -- HTTP semantics --------------------------------------------------------------------


def test_objects_ranges_etags_head_and_cache_policy(viewers: Any) -> None:
    repo, acc = viewers.repo, viewers.volume
    image_dir = _image_dir(repo, acc)
    objects = _manifest(image_dir)
    shard = "0/c/0/0/0/0"
    assert shard in objects and "zarr.json" in objects
    disk = (image_dir / shard).read_bytes()
    size = len(disk)
    assert size > 4 << 20  # larger than one inline read: the whole GET is streamed
    url = f"{viewers.url}/zarr/{acc}/v1/volume"
    with httpx.Client(timeout=30) as c:
        r = c.get(f"{url}/{shard}")
        assert r.status_code == 200
        assert r.content == disk
        assert r.headers["etag"] == f'"{objects[shard]["sha256"]}"'
        assert r.headers["content-length"] == str(size)
        assert r.headers["accept-ranges"] == "bytes"
        assert r.headers["content-type"] == "application/octet-stream"
        assert r.headers["cache-control"].startswith("public, max-age=")
        tag = r.headers["etag"]

        r = c.get(f"{url}/zarr.json")
        assert r.headers["content-type"] == "application/json"
        assert r.json()["attributes"]["ome"]["version"] == "0.5"

        r = c.get(f"{url}/{shard}", headers={"Range": "bytes=100-1099"})
        assert r.status_code == 206
        assert r.content == disk[100:1100]
        assert r.headers["content-range"] == f"bytes 100-1099/{size}"
        assert r.headers["content-length"] == "1000"

        r = c.get(f"{url}/{shard}", headers={"Range": "bytes=-4096"})  # a shard index read
        assert r.status_code == 206
        assert r.content == disk[-4096:]
        assert r.headers["content-range"] == f"bytes {size - 4096}-{size - 1}/{size}"

        r = c.get(f"{url}/{shard}", headers={"Range": f"bytes={size - 10}-"})
        assert (r.status_code, r.content) == (206, disk[-10:])

        r = c.get(f"{url}/{shard}", headers={"Range": f"bytes={size}-"})
        assert r.status_code == 416
        assert r.headers["content-range"] == f"bytes */{size}"
        assert r.headers["content-type"] == "application/problem+json"
        assert "beyond the end" in r.json()["detail"]

        r = c.get(f"{url}/{shard}", headers={"Range": "bytes=0-1,5-6"})  # ignored: whole
        assert (r.status_code, len(r.content)) == (200, size)
        r = c.get(f"{url}/{shard}", headers={"Range": "bytes=0-9", "If-Range": '"other"'})
        assert (r.status_code, len(r.content)) == (200, size)
        r = c.get(f"{url}/{shard}", headers={"Range": "bytes=0-9", "If-Range": tag})
        assert (r.status_code, r.content) == (206, disk[:10])

        r = c.get(f"{url}/{shard}", headers={"If-None-Match": tag})
        assert (r.status_code, r.content) == (304, b"")
        assert r.headers["etag"] == tag
        r = c.get(f"{url}/{shard}", headers={"If-None-Match": f'"x", W/{tag}'})
        assert r.status_code == 304
        r = c.get(f"{url}/{shard}", headers={"If-None-Match": '"stale"'})
        assert r.status_code == 200

        r = c.head(f"{url}/{shard}")
        assert (r.status_code, r.content) == (200, b"")
        assert r.headers["content-length"] == str(size)
        assert r.headers["etag"] == tag
        r = c.head(f"{url}/{shard}", headers={"Range": "bytes=-8"})
        assert (r.status_code, r.headers["content-range"]) == (
            206,
            f"bytes {size - 8}-{size - 1}/{size}",
        )

        # a chunk that was never written is normal in Zarr: a plain, quick 404
        t0 = time.perf_counter()
        r = c.get(f"{url}/0/c/0/0/9/9")
        assert r.status_code == 404
        assert r.headers["content-type"] == "application/problem+json"
        assert "has no object" in r.json()["detail"]
        assert time.perf_counter() - t0 < 1.0
        assert c.get(f"{url}/.zattrs").status_code == 404  # zarr v2 probes
        # `latest` would make cached URLs change meaning: refused with a reason
        r = c.get(f"{viewers.url}/zarr/{acc}/latest/volume/zarr.json")
        assert r.status_code == 422 and "fixed version" in r.json()["hint"]
        assert c.get(f"{viewers.url}/zarr/{acc}/1/volume/zarr.json").status_code == 200
        assert c.get(f"{viewers.url}/zarr/{acc}/v2/volume/zarr.json").status_code == 404
        assert c.get(f"{viewers.url}/zarr/{acc}/v1/nope/zarr.json").status_code == 404

        # embargoed data: private caching only
        private = f"{viewers.url}/zarr/{viewers.private}/v1/secret/zarr.json"
        r = c.get(private, headers=viewers.seed.headers("bob"))
        assert r.status_code == 200
        assert r.headers["cache-control"].startswith("private")


def test_cors_for_a_viewer_on_another_origin(viewers: Any) -> None:
    url = f"{viewers.url}/zarr/{viewers.volume}/v1/volume/zarr.json"
    with httpx.Client(timeout=30) as c:
        r = c.options(url, headers={"Origin": ORIGIN, "Access-Control-Request-Method": "GET",
                                    "Access-Control-Request-Headers": "range"})  # fmt: skip
        assert r.status_code == 204
        assert r.headers["access-control-allow-origin"] == ORIGIN
        assert "Range" in r.headers["access-control-allow-headers"]
        r = c.get(url, headers={"Origin": ORIGIN, "Range": "bytes=-2"})
        assert r.status_code == 206
        assert r.headers["access-control-allow-origin"] == ORIGIN
        exposed = r.headers["access-control-expose-headers"]
        assert "Content-Range" in exposed and "ETag" in exposed
        r = c.get(url, headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in r.headers


# -- embargo -----------------------------------------------------------------------------


def test_embargo_on_every_object(service: Any) -> None:
    """Outsiders get, for the hidden dataset, exactly the 404 of one that does not exist
    (same body, same length, no ETag), on metadata and chunk keys, GET and HEAD; those
    with access get the bytes."""
    seed = service.seed
    keys = ["zarr.json", "0/zarr.json", "0/c/0/0/0", "0/c/9/9/9", "0/c/..%2F..%2Fsecret"]
    sees_granted = {"bob", "dave", "alice", "cur", "root"}
    with httpx.Client(base_url=service.url, timeout=30) as c:
        for user in ("anonymous", "carol", "bob", "dave", "erin", "alice", "cur", "root"):
            h = seed.headers(user)
            for key in keys:
                for method in ("GET", "HEAD"):
                    hidden = c.request(method, f"/zarr/{seed.hidden}/v1/cell2/{key}", headers=h)
                    missing = c.request(method, f"/zarr/{MISSING}/v1/cell2/{key}", headers=h)
                    if user in {"alice", "cur", "root"}:  # the owner and curators see it
                        continue
                    if key == "0/c/..%2F..%2Fsecret":  # refused before anything is looked up
                        assert hidden.status_code == missing.status_code == 404
                        assert "is not a key" in missing.text or method == "HEAD"
                        continue
                    assert hidden.status_code == missing.status_code == 404, (user, key)
                    assert hidden.text.replace(seed.hidden, MISSING) == missing.text
                    assert hidden.headers["content-length"] == missing.headers["content-length"]
                    assert "etag" not in hidden.headers
                granted = c.get(f"/zarr/{seed.granted}/v1/cell1/{key}", headers=h)
                if key in {"0/c/9/9/9", "0/c/..%2F..%2Fsecret"}:
                    assert granted.status_code == 404
                elif user in sees_granted:
                    assert granted.status_code == 200, (user, key, granted.text)
                    assert granted.headers["cache-control"].startswith("private")
                else:
                    m = c.get(f"/zarr/{MISSING}/v1/cell1/{key}", headers=h)
                    assert granted.status_code == 404
                    assert granted.text.replace(seed.granted, MISSING) == m.text
        # a bad token is refused (401), never treated as anonymous
        r = c.get(f"/zarr/{seed.public}/v1/cell0/zarr.json",
                  headers={"Authorization": "token nr_not-a-token"})  # fmt: skip
        assert r.status_code == 401
        assert c.get(f"/zarr/{seed.public}/v1/cell0/zarr.json").status_code == 200


def _poll(fn: Any, expect: int, within: float) -> float:
    """Seconds until ``fn()`` returns ``expect`` (fails after ``within``)."""
    t0 = time.monotonic()
    while True:
        status = fn()
        if status == expect:
            return time.monotonic() - t0
        assert time.monotonic() - t0 < within, f"still {status} after {within} s"
        time.sleep(0.1)


def test_access_changes_reach_the_zarr_endpoint(service: Any) -> None:
    """Embargo takes effect at once (the dataset's directory moves away); release, grant and
    revoke within the endpoint's cache time (ACCESS_TTL_S), as documented."""
    seed, url = service.seed, service.url
    alice = seed.headers("alice")
    with httpx.Client(base_url=url, timeout=30) as c:

        def etag_of(acc: str) -> str:
            return c.get(f"/datasets/{acc}", headers=alice).headers["etag"]

        pub = f"/zarr/{seed.public}/v1/cell0/0/c/0/0/0"
        assert c.get(pub).status_code == 200  # cached for anonymous now
        r = c.post(f"/datasets/{seed.public}/embargo", json={"reason": "takedown request"},
                   headers={**seed.headers("cur"), "If-Match": etag_of(seed.public)})  # fmt: skip
        assert r.status_code == 200, r.text
        assert c.get(pub).status_code == 404  # at once, despite the cache
        assert c.get(pub, headers=alice).status_code == 200

        # release and revoke at once, then wait for both (one cache time, not two)
        hidden = f"/zarr/{seed.hidden}/v1/cell2/zarr.json"
        granted = f"/zarr/{seed.granted}/v1/cell1/zarr.json"
        bob = seed.headers("bob")
        assert c.get(hidden).status_code == 404  # cached as not visible
        assert c.get(granted, headers=bob).status_code == 200  # cached as visible
        r = c.post(f"/datasets/{seed.hidden}/release", json={"reason": "published"},
                   headers={**alice, "If-Match": etag_of(seed.hidden)})  # fmt: skip
        assert r.status_code == 200, r.text
        r = c.delete(f"/datasets/{seed.granted}/grants/user/bob", headers=alice)
        assert r.status_code == 204
        limit = ACCESS_TTL_S + 3
        _poll(lambda: c.get(hidden).status_code, 200, limit)
        _poll(lambda: c.get(granted, headers=bob).status_code, 404, limit)
        assert c.get(granted, headers=seed.headers("dave")).status_code == 200  # group grant


# -- viewers -------------------------------------------------------------------------------


def _local_levels(viewers: Any, acc: str) -> list[np.ndarray]:
    ds = nanorepo.open(acc, settings=viewers.settings)
    im = ds.images[0]
    return [np.asarray(im.to_xarray(level).values) for level in range(len(im.levels))]


def test_zarr_python_reads_every_level_over_http(viewers: Any) -> None:
    import zarr

    acc = viewers.private  # embargoed: the token travels with every request
    local = _local_levels(viewers, acc)
    url = f"{viewers.url}/zarr/{acc}/v1/secret"
    group = zarr.open_group(url, mode="r", storage_options={"headers": viewers.seed.headers("bob")})
    assert group.attrs["ome"]["multiscales"][0]["name"] == "secret"
    for level, expected in enumerate(local):
        arr = group[str(level)]
        assert arr.shards is not None  # sharded: inner chunks come by Range
        assert np.array_equal(arr[...], expected), level
    # a region straddling inner chunks
    assert np.array_equal(group["0"][1, 2, 500:600, 400:700], local[0][1, 2, 500:600, 400:700])
    # without the token the same URL is not there
    with pytest.raises(FileNotFoundError):
        zarr.open_group(url, mode="r")


def test_nanorepo_reader_over_http_equals_local(viewers: Any) -> None:
    acc = viewers.private
    ds = nanorepo.open(acc, settings=viewers.settings)
    local = OmeZarrImage.open(ds.images[0].path)
    remote = OmeZarrImage.open(
        f"{viewers.url}/zarr/{acc}/v1/secret", headers=viewers.seed.headers("bob")
    )
    assert remote.levels == local.levels
    assert remote.dims == local.dims
    assert [c.name for c in remote.channels] == ["Nup96", "DNA"]
    for level, region in [(0, (slice(None), 1, slice(300, 812), slice(200, 712))),
                          (1, (0, slice(None), slice(0, 550), slice(123, 456))),
                          (2, (slice(None), slice(None), slice(None), slice(None)))]:  # fmt: skip
        assert np.array_equal(remote.read_region(level, region), local.read_region(level, region))


def test_ome_zarr_py_reads_it(viewers: Any) -> None:
    from ome_zarr.io import parse_url
    from ome_zarr.reader import Multiscales, Reader

    acc = viewers.volume
    local = _local_levels(viewers, acc)
    loc = parse_url(f"{viewers.url}/zarr/{acc}/v1/volume")
    assert loc is not None
    nodes = list(Reader(loc)())
    image = nodes[0]
    assert image.load(Multiscales) is not None
    assert len(image.data) == len(local)
    for data, expected in zip(image.data, local, strict=True):
        assert np.array_equal(np.asarray(data), expected)


def test_napari_ome_zarr_reads_it(viewers: Any) -> None:
    """napari-ome-zarr's reader, headless. It is not a dependency (it pulls napari, whose
    pytest plugin would load into every test run), so this runs where it is installed."""
    reader_mod = pytest.importorskip("napari_ome_zarr._reader")
    acc = viewers.volume
    local = _local_levels(viewers, acc)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # napari's own deprecation chatter
        reader = reader_mod.napari_get_reader(f"{viewers.url}/zarr/{acc}/v1/volume")
        assert reader is not None
        layers = reader(f"{viewers.url}/zarr/{acc}/v1/volume")
    data, meta, kind = layers[0]
    assert kind == "image"
    assert meta.get("channel_axis") == 0
    assert len(data) == len(local)
    assert np.array_equal(np.asarray(data[-1]), local[-1])
