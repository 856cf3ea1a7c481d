"""Zarr over HTTP: the nanorepo service's Zarr endpoint against plain Starlette StaticFiles,
plus the image table of a version at 100,000 images.

What is measured
----------------
The cached deposit of the benchmark volume (default 128 x 2896 x 2896 uint16, 2 GiB, sharded
OME-Zarr) is served by two servers, each a separate process, both uvicorn with the same
settings (uvloop, httptools, one worker, no access log) on loopback:

* **nanorepo**: the service (``nanorepo.service.create_app``) at
  ``/zarr/ACCESSION/v1/IMAGE/KEY``. Every request carries a reader's token, so each one goes
  through authentication, the embargo check, the manifest allowlist and the symlink-refusing
  open (from the endpoint's short-lived in-process caches, as in production);
* **StaticFiles**: ``starlette.staticfiles.StaticFiles`` mounted on the image directory, no
  authentication at all: the reference a plain web server gives.

``python -m http.server`` is not a reference: it ignores ``Range``, which sharded Zarr needs.

With 16 concurrent aiohttp clients (in this process) each server answers, in turn and in
alternating rounds, the requests a viewer makes:

* range GETs of random inner chunks of level-0 shards (a napari/neuroglancer tile);
* suffix-range GETs of shard indexes (``bytes=-N``, how sharded Zarr finds its chunks);
* whole small objects (``zarr.json`` of the group and the arrays);
* whole shards (tens of MB: MB/s matters here);
* GETs of chunks that do not exist (a sparse image; must be a quick 404).

Figures: requests/s, MB/s of response bodies, the server process's CPU milliseconds per
request (user + system, from ``/proc``: on two shared cores the CPU cost says more than the
wall clock), and the ratio nanorepo / StaticFiles (goal >= 0.7x). Then tensorstore (through
``nanorepo.ome.OmeZarrImage``) and zarr-python (``FsspecStore`` over aiohttp) read the same
random 512 x 512 regions of level 0 through both servers, with their pixels compared.

Finally the image table: 100,000 image rows inserted into a scratch catalog on SQLite (and
PostgreSQL when ``--postgres URL`` is given), then filtered and sorted pages through the
service's route function (not HTTP), timed.

Run ``python benchmarks/bench_service_zarr.py [--size-gb N]``. Not a test; prints tables.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as C

WHAT = """
Chunk and shard GETs per second, MB/s and server CPU per request of the nanorepo Zarr
endpoint (token auth + embargo check + manifest allowlist + symlink-refusing open) against
plain Starlette StaticFiles (no auth) serving the same files, both uvicorn (uvloop, httptools,
1 worker) in their own process, 16 concurrent aiohttp clients, warm page cache, rounds
alternating between the servers. Goal: nanorepo >= 0.7x StaticFiles. Then random 512x512
region reads through both with tensorstore and zarr-python, and the image table at 100k rows.
"""

CONCURRENCY = 16
NANOREPO = "nanorepo /zarr (token)"
STATIC = "Starlette StaticFiles"


# -- the servers (each runs as `python bench_service_zarr.py --serve KIND ...`) -----------


def _serve(args: argparse.Namespace) -> None:
    import uvicorn

    if args.serve == "nanorepo":
        from nanorepo.service import create_app

        app: Any = create_app(C.settings_for(Path(args.home), keep_originals=False))
    else:
        from starlette.applications import Starlette
        from starlette.routing import Mount
        from starlette.staticfiles import StaticFiles

        app = Starlette(routes=[Mount("/img", StaticFiles(directory=args.root))])
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=args.port,
        log_level="warning",
        access_log=False,
        loop="uvloop",
        http="httptools",
        lifespan="on",
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    name: str
    base: str  # URL of the image (no trailing slash)
    proc: subprocess.Popen[bytes]

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextmanager
def server(
    name: str, argv: list[str], base_path: str, probe: str, headers: dict[str, str]
) -> Iterator[Server]:
    import httpx

    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, __file__, "--serve", *argv, "--port", str(port)],
        stdout=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}{base_path}"
    deadline = time.monotonic() + 60
    try:
        while True:
            try:
                if httpx.get(f"{base}/{probe}", headers=headers, timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"{name} did not start")
            time.sleep(0.1)
        yield Server(name, base, proc)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


# -- workloads ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    key: str
    range: str | None = None
    status: int = 200


@dataclass
class Result:
    seconds: float = 0.0
    requests: int = 0
    nbytes: int = 0
    cpu: float = 0.0

    @property
    def rps(self) -> float:
        return self.requests / self.seconds

    @property
    def mb_s(self) -> float:
        return C.mb_s(self.nbytes, self.seconds)

    @property
    def cpu_ms(self) -> float:
        return self.cpu * 1e3 / self.requests


def shard_layout(image_dir: Path) -> tuple[list[str], int, dict[str, list[tuple[int, int]]]]:
    """Level-0 shard keys, the shard index size, and each shard's inner chunks (offset,
    nbytes) read from the shard index on disk."""
    meta = json.loads((image_dir / "0" / "zarr.json").read_text())
    codec = meta["codecs"][0]
    assert codec["name"] == "sharding_indexed", codec
    cfg = codec["configuration"]
    per_shard = int(
        np.prod(
            [
                s // c
                for s, c in zip(
                    meta["chunk_grid"]["configuration"]["chunk_shape"],
                    cfg["chunk_shape"],
                    strict=True,
                )
            ]
        )
    )
    crc = any(c["name"] == "crc32c" for c in cfg.get("index_codecs", []))
    index_size = per_shard * 16 + (4 if crc else 0)
    manifest = json.loads(
        image_dir.with_name(image_dir.name.removesuffix(".ome.zarr") + ".manifest.json").read_text()
    )["objects"]
    shards = sorted(k for k in manifest if k.startswith("0/c/"))
    chunks: dict[str, list[tuple[int, int]]] = {}
    for key in shards:
        with open(image_dir / key, "rb") as f:
            f.seek(-index_size, os.SEEK_END)
            raw = f.read(per_shard * 16)
        pairs = struct.unpack(f"<{per_shard * 2}Q", raw)
        chunks[key] = [
            (o, n) for o, n in zip(pairs[::2], pairs[1::2], strict=True) if o != 2**64 - 1
        ]
    return shards, index_size, chunks


def workloads(image_dir: Path, rng: np.random.Generator, scale: float) -> dict[str, list[Request]]:
    shards, index_size, chunks = shard_layout(image_dir)
    inner = [(k, o, n) for k in shards for o, n in chunks[k]]
    picks = rng.integers(0, len(inner), int(3000 * scale))
    small = ["zarr.json", *(f"{lv}/zarr.json" for lv in range(4) if (image_dir / str(lv)).is_dir())]
    nshards = max(4, int(24 * scale))
    return {
        "inner-chunk range GETs (viewer tiles)": [
            Request(inner[i][0], f"bytes={inner[i][1]}-{inner[i][1] + inner[i][2] - 1}", 206)
            for i in picks
        ],
        "shard-index suffix GETs (bytes=-N)": [
            Request(shards[int(i)], f"bytes=-{index_size}", 206)
            for i in rng.integers(0, len(shards), int(2000 * scale))
        ],
        "whole small objects (zarr.json)": [
            Request(small[int(i)]) for i in rng.integers(0, len(small), int(2000 * scale))
        ],
        "whole shards": [Request(shards[int(i)]) for i in rng.integers(0, len(shards), nshards)],
        "missing chunks (404)": [
            Request(f"0/c/{int(i)}/999/999", None, 404)
            for i in rng.integers(0, 1000, int(2000 * scale))
        ],
    }


async def _drive(base: str, work: Sequence[Request], headers: dict[str, str]) -> tuple[float, int]:
    import aiohttp

    todo = iter(work)
    total = 0

    async def client(session: aiohttp.ClientSession) -> None:
        nonlocal total
        for req in todo:
            h = {"Range": req.range} if req.range else None
            async with session.get(f"{base}/{req.key}", headers=h) as r:
                body = await r.read()
                if r.status != req.status:
                    raise SystemExit(f"{base}/{req.key} {req.range}: {r.status} {body[:200]!r}")
                total += len(body)

    connector = aiohttp.TCPConnector(limit=CONCURRENCY)
    async with aiohttp.ClientSession(connector=connector, headers=headers) as session:
        t0 = time.perf_counter()
        await asyncio.gather(*(client(session) for _ in range(CONCURRENCY)))
        return time.perf_counter() - t0, total


def run(srv: Server, work: Sequence[Request], headers: dict[str, str]) -> Result:
    cpu0 = srv.cpu_seconds()
    seconds, nbytes = asyncio.run(_drive(srv.base, work, headers))
    return Result(seconds, len(work), nbytes, srv.cpu_seconds() - cpu0)


def best(results: list[Result]) -> Result:
    """The median round by throughput (rounds alternate between the servers)."""
    return sorted(results, key=lambda r: r.rps)[len(results) // 2]


# -- region reads through both servers ----------------------------------------------------


def region_readers(
    servers: dict[str, Server], auth: dict[str, dict[str, str]]
) -> dict[str, Callable[[tuple[int, int, int]], np.ndarray]]:
    import zarr
    from zarr.storage import FsspecStore

    from nanorepo.ome import OmeZarrImage

    out: dict[str, Callable[[tuple[int, int, int]], np.ndarray]] = {}
    for name, srv in servers.items():
        img = OmeZarrImage.open(srv.base, headers=auth[name] or None)
        store = FsspecStore.from_url(
            f"{srv.base}/0", read_only=True, storage_options={"headers": auth[name]}
        )
        arr = zarr.open_array(store=store, mode="r")

        def ts_read(r: tuple[int, int, int], img: Any = img) -> np.ndarray:
            z, y, x = r
            return img.read_region(0, (z, slice(y, y + 512), slice(x, x + 512)))

        def zarr_read(r: tuple[int, int, int], arr: Any = arr) -> np.ndarray:
            z, y, x = r
            return np.asarray(arr[z, y : y + 512, x : x + 512])

        out[f"tensorstore via {name}"] = ts_read
        out[f"zarr-python via {name}"] = zarr_read
    return out


@dataclass
class Series:
    latencies: list[float] = field(default_factory=list)
    nbytes: int = 0


def regions(
    readers: dict[str, Callable[[tuple[int, int, int]], np.ndarray]],
    shape: tuple[int, ...],
    n: int,
    rng: np.random.Generator,
) -> dict[str, Series]:
    names = list(readers)
    res = {k: Series() for k in names}
    for i in range(n):
        r = (
            int(rng.integers(shape[0])),
            int(rng.integers(shape[1] - 512)),
            int(rng.integers(shape[2] - 512)),
        )
        ref = None
        k = i % len(names)
        for name in names[k:] + names[:k]:
            t0 = time.perf_counter()
            a = readers[name](r)
            res[name].latencies.append(time.perf_counter() - t0)
            res[name].nbytes += a.nbytes
            if ref is None:
                ref = a
            elif not np.array_equal(a, ref):
                raise SystemExit(f"{name} returned other pixels for region {r}")
    return res


# -- the image table ----------------------------------------------------------------------


def image_table(out: Any, urls: list[str], n: int) -> None:
    """Filtered, sorted first and later pages of ``n`` images, via the route function."""
    from sqlalchemy import insert

    from nanorepo.catalog import Catalog
    from nanorepo.catalog.models import Dataset, Image, Version
    from nanorepo.policy import ANONYMOUS
    from nanorepo.service._images import list_images

    rows_out = []
    for url in urls:
        cat = Catalog(url)
        with cat.session() as s:
            ds = Dataset(accession="S-NANO424242", owner="bench")
            s.add(ds)
            s.flush()
            v = Version(
                dataset_id=ds.id or 0,
                number=1,
                created_by="bench",
                metadata_json="{}",
                metadata_digest="0" * 64,
                manifest_digest="0" * 64,
            )
            s.add(v)
            s.flush()
            conditions = ["control", "Treated", "knockdown", "DMSO"]
            rows = [
                {
                    "version_id": v.id,
                    "name": f"img{i:06d}",
                    "path": f"images/v1/img{i:06d}",
                    "dims": ["c", "z", "y", "x"],
                    "shape": [2, 16, 2048, 2048],
                    "dtype": "uint16",
                    "pixel_sizes": {"z": 100.0, "y": 30.0, "x": 30.0},
                    "channels": [
                        {"name": "Nup96", "color": "FF00FF", "window": [100.0, 900.0]},
                        {"name": "DNA", "color": "00FF00", "window": [100.0, 900.0]},
                    ],
                    "levels": [[2, 16, 2048, 2048], [2, 16, 1024, 1024], [2, 16, 512, 512]],
                    "key_values": {
                        "condition": conditions[i % 4],
                        "plate": f"P{i // 10_000}",
                        "well": f"{chr(65 + i % 8)}{i % 12 + 1:02d}",
                        "cell_line": "U2OS",
                    },
                    "technique": "SIM",
                    "manifest_digest": "0" * 64,
                    "size_bytes": 10**9,
                }
                for i in range(n)
            ]
            t0 = time.perf_counter()
            s.execute(insert(Image), rows)
            s.commit()
            insert_s = time.perf_counter() - t0
        cases = [
            ("all, by name", {}),
            (
                "filter condition, sort well desc",
                {"filter_": ["condition:treated"], "sort": "well", "order": "desc"},
            ),
            (
                "2 filters (3 values), sort well",
                {"filter_": ["condition:control", "condition:dmso", "plate:p3"], "sort": "well"},
            ),
            ("q=substring of name", {"q": "img0999"}),
        ]
        backend = url.split(":", 1)[0]
        for title, params in cases:
            first, later = [], []
            for _ in range(5):
                with cat.session() as s:
                    t0 = time.perf_counter()
                    page = list_images("S-NANO424242", "v1", s, ANONYMOUS, limit=50, **params)
                    first.append(time.perf_counter() - t0)
                    if page.next:
                        t0 = time.perf_counter()
                        list_images(
                            "S-NANO424242", "v1", s, ANONYMOUS, limit=50, cursor=page.next, **params
                        )
                        later.append(time.perf_counter() - t0)
            rows_out.append(
                [
                    backend,
                    title,
                    f"{page.total:,}",
                    f"{C.percentile([x * 1e3 for x in first], 50):.0f}",
                    f"{C.percentile([x * 1e3 for x in later], 50):.0f}" if later else "-",
                    f"{insert_s:.1f}",
                ]
            )
        cat.close()
    out.print(
        C.table(
            f"image table: {n:,} images in one version, pages of 50 (median of 5)",
            ["catalog", "query", "matches", "first page ms", "next page ms", "insert s"],
            rows_out,
            text_columns=2,
        )
    )


# -- main -----------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    C.add_input_args(parser)
    parser.add_argument("--rounds", type=int, default=3, help="rounds per server (3)")
    parser.add_argument("--scale", type=float, default=1.0, help="requests per round x (1)")
    parser.add_argument("--regions", type=int, default=60, help="512x512 region reads (60)")
    parser.add_argument("--images", type=int, default=100_000, help="image table rows (100k)")
    parser.add_argument(
        "--postgres",
        help="also time the image table on this PostgreSQL "
        "server (an admin URL; a scratch database is created and dropped)",
    )
    parser.add_argument("--serve", choices=["nanorepo", "static"], help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--home", help=argparse.SUPPRESS)
    parser.add_argument("--root", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        _serve(args)
        return
    C.quiet_warnings()
    out = C.console()
    C.header(out, "nanorepo Zarr endpoint benchmark", WHAT)
    inp = C.input_tiff(C.spec_from_args(args), out)
    dep = C.cached_deposit(inp, out, keep_originals=False)
    out.print(f"- input: {inp.describe()}")
    out.print(f"- dataset: {dep.describe()}")
    files = C.files_under(dep.image_dir)
    warmed = C.warm(files)
    out.print(f"- page cache: warm ({len(files)} objects, {warmed / C.MB:,.0f} MB, read once)")

    from nanorepo.catalog import Catalog
    from nanorepo.policy import Role, create_token

    cat = Catalog(dep.settings.database_url)
    with cat.session() as s:
        token = create_token(s, "bench-reader", role=Role.reader, note="bench_service_zarr")
        s.commit()
    cat.close()
    accession = dep.ref.split("@")[0]
    image = dep.image_dir.name.removesuffix(".ome.zarr")
    auth = {NANOREPO: {"Authorization": f"token {token}"}, STATIC: {}}
    rng = np.random.default_rng(20240611)
    work = workloads(dep.image_dir, rng, args.scale)
    out.print(
        f"- {CONCURRENCY} concurrent aiohttp clients; {args.rounds} alternating rounds per "
        "server, median round shown\n"
    )

    with (
        server(
            NANOREPO,
            ["nanorepo", "--home", str(dep.settings.home)],
            f"/zarr/{accession}/v1/{image}",
            "zarr.json",
            auth[NANOREPO],
        ) as nano,
        server(STATIC, ["static", "--root", str(dep.image_dir)], "/img", "zarr.json", {}) as static,
    ):
        servers = {NANOREPO: nano, STATIC: static}
        for srv in servers.values():  # warm-up: imports, pools, caches
            run(srv, work["whole small objects (zarr.json)"][:200], auth[srv.name])
            run(srv, work["inner-chunk range GETs (viewer tiles)"][:200], auth[srv.name])
        rows = []
        for title, reqs in work.items():
            res: dict[str, list[Result]] = {n: [] for n in servers}
            for rnd in range(args.rounds):
                order = list(servers) if rnd % 2 == 0 else list(reversed(servers))
                for name in order:
                    res[name].append(run(servers[name], reqs, auth[name]))
            a, b = best(res[NANOREPO]), best(res[STATIC])
            for name, r in ((NANOREPO, a), (STATIC, b)):
                rows.append(
                    [
                        title if name == NANOREPO else "",
                        name,
                        f"{r.rps:,.0f}",
                        f"{r.mb_s:,.0f}",
                        f"{r.cpu_ms:.2f}",
                        C.ratio_cell(a.rps / b.rps, 0.7) if name == NANOREPO else "",
                        C.ratio_cell(a.mb_s / b.mb_s)
                        if name == NANOREPO and reqs[0].status != 404
                        else "",
                    ]
                )
        out.print(
            C.table(
                f"HTTP: {len(work['inner-chunk range GETs (viewer tiles)']):,} requests per round "
                f"(whole shards: {len(work['whole shards'])})",
                [
                    "workload",
                    "server",
                    "req/s",
                    "MB/s",
                    "server CPU ms/req",
                    "req/s ratio",
                    "MB/s ratio",
                ],
                rows,
                text_columns=2,
            )
        )
        out.print("")

        readers = region_readers(servers, auth)
        import tensorstore as ts

        level0 = ts.open(
            {"driver": "zarr3", "kvstore": {"driver": "file", "path": str(dep.image_dir / "0")}},
            read=True,
        ).result()
        shape = tuple(int(n) for n in level0.shape)
        regions(readers, shape, 4, np.random.default_rng(1))  # warm-up, shard indexes
        res2 = regions(readers, shape, args.regions, np.random.default_rng(2))
        ref = {k.split(" via ")[0]: v for k, v in res2.items() if k.endswith(STATIC)}
        rows = []
        for name, ser in res2.items():
            ms = [x * 1e3 for x in ser.latencies]
            mbs = C.mb_s(ser.nbytes, sum(ser.latencies))
            lib = name.split(" via ")[0]
            refs = ref[lib]
            ratio = mbs / C.mb_s(refs.nbytes, sum(refs.latencies))
            rows.append(
                [
                    name,
                    f"{mbs:,.0f}",
                    f"{C.percentile(ms, 50):.1f}",
                    f"{C.percentile(ms, 99):.1f}",
                    C.ratio_cell(ratio, 0.7) if name.endswith(NANOREPO) else "",
                ]
            )
        out.print(
            C.table(
                f"random 512x512 regions of level 0 {shape}, {args.regions} reads, same regions, "
                "pixels compared",
                ["reader", "MB/s", "p50 ms", "p99 ms", "vs StaticFiles"],
                rows,
            )
        )
        out.print("")

    urls = [f"sqlite:///{C.DATA_DIR / 'bench-image-table.sqlite'}"]
    (C.DATA_DIR / "bench-image-table.sqlite").unlink(missing_ok=True)
    pg_db = None
    if args.postgres:
        import psycopg

        pg_db = f"nanorepo_bench_{os.getpid()}"
        with psycopg.connect(args.postgres, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{pg_db}"')
        urls.append(f"{args.postgres.rsplit('/', 1)[0]}/{pg_db}")
    try:
        image_table(out, urls, args.images)
    finally:
        (C.DATA_DIR / "bench-image-table.sqlite").unlink(missing_ok=True)
        if pg_db:
            import psycopg

            with psycopg.connect(args.postgres, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{pg_db}" WITH (FORCE)')


if __name__ == "__main__":
    main()
