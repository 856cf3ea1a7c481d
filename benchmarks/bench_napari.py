"""napari on a large remote image: nanorepo's reader through the service against
napari-ome-zarr through a plain static server, time to the first rendered view and bytes.

What is measured
----------------
A generated 2D mosaic of nuclear pores (default 104,448 x 104,448 uint16, 21.8 GB logical,
9 pyramid levels) is deposited once into a repository under ``benchmarks/.data/`` and
served by two servers, each uvicorn (uvloop, httptools) in its own process on loopback:

* **nanorepo**: the service's Zarr endpoint, read with ``viewer.open("nanorepo://ACC@v1/IMAGE",
  plugin="nanorepo")`` and the user's token: the dataset's API records, the regions of the
  image (its threads) and tensorstore range reads through the service;
* **napari-ome-zarr**: ``starlette.staticfiles.StaticFiles`` on the same image directory (it
  honours ``Range``, which sharded Zarr needs; ``python -m http.server`` does not), read
  with ``viewer.open(URL, plugin="napari-ome-zarr")`` (zarr-python over fsspec, dask).

Both servers count the requests and response-body bytes they answer (an ASGI middleware).
A real napari window (on the current ``DISPLAY``, else on an Xvfb screen of its own) opens
the image and draws it; **time to first rendered view** runs from ``viewer.open`` until
napari has drawn the pyramid level it picks for the canvas (it draws, picks a level, loads
it and draws again: we render until the level stops changing). Then the view jumps to a
full-resolution 1024 x 1024 region in the middle, timed the same way (**zoom to full
resolution**). Finally the image gets 10 region threads and nanorepo's first view is timed
again, now drawing their Shapes layer too. Rounds alternate between the readers; medians are reported with the ratio
nanorepo / napari-ome-zarr (goal: time <= 1.2x, bytes <= 1x). The pixels each reader shows
are compared.

Run ``python benchmarks/bench_napari.py [--yx N] [--rounds R]``. The input is made once
(~20 GB of disk for a moment while it is deposited, ~3-6 GB kept); ``--yx 16384`` makes a
quick small one. Not a test; prints tables.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as C
from rich.console import Console

WHAT = """
Time to the first rendered view and bytes transferred when napari opens a large (>= 20 GB
logical) image over loopback HTTP: nanorepo's plugin through the nanorepo service (token,
embargo checks, API records, threads) against napari-ome-zarr through Starlette
StaticFiles serving the same OME-Zarr. A real napari window; rounds alternate. Goal:
nanorepo <= 1.2x the time, and no more bytes.
"""

NANOREPO = "nanorepo (service)"
REFERENCE = "napari-ome-zarr (StaticFiles)"
TILE = 2048  # rendered tile of the mosaic (yx)
DISTINCT_TILES = 12
THREADS = 10  # region threads of the image in the last measurement


# -- the input ----------------------------------------------------------------------------


def _tiles(n: int, seed: int) -> list[np.ndarray]:
    """Distinct STED tiles of nuclear pores (each with its own labels and shot noise)."""
    from nanorepo.samples import STED, nuclear_pores, render

    field = TILE * 20.0
    out = []
    for i in range(n):
        npc = nuclear_pores((field, field, 400.0), seed=seed + i)
        out.append(render(npc, STED, (TILE, TILE), pixel_size_nm=20.0, seed=seed + 100 + i))
    return out


def make_input(yx: int, seed: int, out: Console) -> Path:
    """A (yx, yx) uint16 OME-TIFF mosaic of rendered tiles, written through a memory map."""
    import tifffile

    path = C.DATA_DIR / f"napari-mosaic-{yx}.ome.tif"
    if path.exists():
        return path
    C.DATA_DIR.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    tiles = _tiles(DISTINCT_TILES, seed)
    tmp = path.with_suffix(".partial")
    m = tifffile.memmap(
        tmp, shape=(yx, yx), dtype="uint16", bigtiff=True, ome=True,
        metadata={"axes": "YX", "PhysicalSizeX": 0.02, "PhysicalSizeXUnit": "µm",
                  "PhysicalSizeY": 0.02, "PhysicalSizeYUnit": "µm",
                  "Channel": {"Name": ["Nup96"]}},
    )  # fmt: skip
    rng = np.random.default_rng(seed)
    for y in range(0, yx, TILE):
        for x in range(0, yx, TILE):
            tile = tiles[int(rng.integers(len(tiles)))]
            h, w = min(TILE, yx - y), min(TILE, yx - x)
            m[y : y + h, x : x + w] = tile[:h, :w]
        m.flush()
    del m
    tmp.rename(path)
    out.print(
        f"[input] {path.name}: {yx * yx * 2 / 1e9:.1f} GB in {time.perf_counter() - t0:.0f} s"
    )
    return path


def _home(yx: int) -> Path:
    return C.DATA_DIR / f"repo-napari-napari-mosaic-{yx}"


def cached_deposit(yx: int) -> dict[str, Any] | None:
    """The mosaic's deposit from an earlier run, if there is one."""
    marker = _home(yx) / "benchmark-deposit.json"
    return dict(json.loads(marker.read_text())) if marker.exists() else None


def deposit(inp: Path, out: Console) -> dict[str, Any]:
    """Deposit the mosaic once (originals not kept) and remember where it is."""
    from nanorepo.policy import Role, create_token
    from nanorepo.repository import Repository

    home = _home(int(inp.name.split("-")[-1].split(".")[0]))
    marker = home / "benchmark-deposit.json"
    shutil.rmtree(home, ignore_errors=True)
    settings = C.settings_for(home, keep_originals=False)
    meta = C.write_metadata(home / "inputs")
    out.print(f"[deposit] depositing {inp.name} into {home} (cached for later runs)")
    with Repository(settings, create=True) as repo:
        t0 = time.perf_counter()
        result = repo.deposit([inp], title="napari benchmark mosaic", metadata=meta)
        seconds = time.perf_counter() - t0
        shown = repo.show(result.accession)
        with repo.catalog.session() as s:
            token = create_token(s, "reader", role=Role.reader, note="bench_napari")
            s.commit()
    im = shown["images"][0]
    info = {"home": str(home), "accession": result.accession, "image": im["name"],
            "image_dir": im["storage_path"], "stored_bytes": im["size_bytes"],
            "shape": im["shape"], "levels": im["levels"], "token": token,
            "deposit_seconds": seconds}  # fmt: skip
    marker.write_text(json.dumps(info))
    out.print(f"[deposit] {result.accession} in {seconds:.0f} s")
    return info


def set_threads(service: str, info: dict[str, Any], n: int) -> None:
    """Give the image exactly ``n`` region threads (boxes along its diagonal): earlier
    ones are deleted (hidden from lists, as deletion is in nanorepo)."""
    import nanorepo

    with nanorepo.Client(service, info["token"]) as c:
        for t in list(c.threads(info["accession"], image=info["image"])):
            c.delete_thread(info["accession"], t["id"])
        side = info["shape"][-1] * 20.0  # nm
        for i in range(n):
            x0 = (i + 0.5) * side / (n + 1)
            anchor = {"kind": "region", "image": info["image"], "unit": "nanometer",
                      "shape": "box", "x": [x0, x0 + side / 50], "y": [x0, x0 + side / 80]}  # fmt: skip
            c.create_thread(info["accession"], f"Region {i + 1}", "benchmark", anchor=anchor)


# -- the servers (each runs as `python bench_napari.py --serve KIND ...`) -----------------


class Counting:
    """ASGI middleware: counts requests and response-body bytes, and the bytes that are
    not Zarr objects (API records); ``GET /_bench/traffic`` answers ``{"requests": N,
    "bytes": B, "api_bytes": A}`` and resets the counts."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.counts = {"requests": 0, "bytes": 0, "api_bytes": 0}

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"] == "/_bench/traffic":
            body = json.dumps(self.counts).encode()
            self.counts = dict.fromkeys(self.counts, 0)
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-type", b"application/json")]})  # fmt: skip
            await send({"type": "http.response.body", "body": body})
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        counts = self.counts
        counts["requests"] += 1
        api = not scope["path"].startswith(("/zarr/", "/img.zarr/"))

        async def counting_send(message: Any) -> None:
            if message["type"] == "http.response.body":
                n = len(message.get("body", b""))
                counts["bytes"] += n
                counts["api_bytes"] += n if api else 0
            await send(message)

        await self.app(scope, receive, counting_send)


def _serve(args: argparse.Namespace) -> None:
    import uvicorn

    if args.serve == "nanorepo":
        from nanorepo.service import create_app

        app: Any = create_app(C.settings_for(Path(args.home), keep_originals=False))
    else:
        from starlette.applications import Starlette
        from starlette.routing import Mount
        from starlette.staticfiles import StaticFiles

        # napari-ome-zarr claims locations that end in .zarr
        app = Starlette(routes=[Mount("/img.zarr", StaticFiles(directory=args.root))])
    uvicorn.run(Counting(app), host="127.0.0.1", port=args.port, log_level="warning",
                access_log=False, loop="uvloop", http="httptools", lifespan="on")  # fmt: skip


@dataclass
class Server:
    name: str
    location: str  # what napari opens
    root: str  # server root URL
    plugin: str

    def traffic(self) -> tuple[int, int, int]:
        """Requests, bytes and API (non-Zarr) bytes since the last call."""
        import httpx

        doc = httpx.get(f"{self.root}/_bench/traffic", timeout=10).json()
        return int(doc["requests"]), int(doc["bytes"]), int(doc["api_bytes"])


@contextmanager
def server(name: str, argv: list[str], location: str, plugin: str) -> Any:
    import httpx

    with __import__("socket").socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, __file__, "--serve", *argv, "--port", str(port)])
    root = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(f"{root}/_bench/traffic", timeout=5)
                break
            except httpx.TransportError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"{name} did not start") from None
                time.sleep(0.1)
        yield Server(name, location.format(root=root), root, plugin)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


# -- the viewer ---------------------------------------------------------------------------


@contextmanager
def screen() -> Any:
    """The current display, or an Xvfb screen for the run."""
    if os.environ.get("DISPLAY"):
        yield
        return
    read, write = os.pipe()
    subprocess.Popen(
        ["Xvfb", "-displayfd", str(write), "-screen", "0", "1600x1000x24", "-nolisten", "tcp"],
        pass_fds=(write,), stderr=subprocess.DEVNULL, preexec_fn=_die_with_parent,
    )  # fmt: skip
    os.close(write)
    with os.fdopen(read) as f:
        os.environ["DISPLAY"] = ":" + f.readline().strip()
    os.environ["QT_QPA_PLATFORM"] = "xcb"
    # Not stopped here: Qt exits the process when its X server goes away under it.
    yield


def _die_with_parent() -> None:
    """In the child, before exec: get SIGTERM when this process ends (Linux)."""
    import ctypes
    import signal

    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _render_until_stable(viewer: Any, images: list[Any]) -> None:
    """Draw until the multiscale levels napari picks stop changing (each draw may pick a
    new level, which is then loaded synchronously and drawn by the next one)."""
    from qtpy.QtWidgets import QApplication

    previous = None
    for _ in range(20):
        QApplication.processEvents()
        viewer.screenshot(canvas_only=True, flash=False)
        levels = tuple(lay.data_level for lay in images)
        if levels == previous:
            return
        previous = levels
    raise RuntimeError(f"napari kept changing levels: {previous}")


@dataclass
class Run:
    first_view_s: float
    first_requests: int
    first_bytes: int
    first_api_bytes: int
    zoom_s: float
    zoom_requests: int
    zoom_bytes: int
    level: int
    pixels: np.ndarray


def one_run(viewer: Any, srv: Server, shape: list[int]) -> Run:
    from napari.utils import resize_dask_cache

    # napari keeps dask chunks it loaded (napari-ome-zarr's arrays are dask): start empty
    resize_dask_cache(0)
    resize_dask_cache()
    srv.traffic()  # reset
    t0 = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):  # napari-ome-zarr prints the metadata
        layers = viewer.open(srv.location, plugin=srv.plugin)
    images = [lay for lay in layers if getattr(lay, "multiscale", False)]
    viewer.reset_view()
    _render_until_stable(viewer, images)
    first = time.perf_counter() - t0
    req, nbytes, api = srv.traffic()
    level = images[0].data_level
    pixels = np.asarray(images[0].data[level][(0,) * (images[0].ndim - 2)])
    # jump to a 1024 x 1024 region at full resolution in the middle of the image
    scale = np.asarray(images[0].scale[-2:])
    centre = np.asarray(shape[-2:]) / 2 * scale
    camera = viewer.scene.camera
    t1 = time.perf_counter()
    camera.center = tuple(float(c) for c in centre)
    camera.zoom = float(min(viewer.canvas.size) / (1024 * scale[0]))
    _render_until_stable(viewer, images)
    zoom = time.perf_counter() - t1
    zreq, zbytes, _ = srv.traffic()
    viewer.layers.clear()
    return Run(first, req, nbytes, api, zoom, zreq, zbytes, level, pixels)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--yx", type=int, default=104_448, help="mosaic side (104448: 21.8 GB)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per reader (3)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--serve", choices=["nanorepo", "static"], help=argparse.SUPPRESS)
    parser.add_argument("--home", help=argparse.SUPPRESS)
    parser.add_argument("--root", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        _serve(args)
        return
    C.quiet_warnings()
    out = C.console()
    C.header(out, "nanorepo napari benchmark", WHAT)
    info = cached_deposit(args.yx) or deposit(make_input(args.yx, args.seed, out), out)
    (C.DATA_DIR / f"napari-mosaic-{args.yx}.ome.tif").unlink(missing_ok=True)  # not needed again
    logical = int(np.prod(info["shape"])) * 2
    out.print(f"- image: {info['accession']}/{info['image']} {info['shape']} uint16, "
              f"{logical / 1e9:.1f} GB logical, {info['stored_bytes'] / 1e9:.2f} GB stored, "
              f"{len(info['levels'])} levels (lowest {info['levels'][-1]})\n")  # fmt: skip
    os.environ.update(NANOREPO_HOME=str(C.DATA_DIR / "napari-client"),
                      NANOREPO_TOKEN=info["token"])  # fmt: skip
    with screen():
        import napari

        viewer = napari.Viewer(show=True)
        viewer.window.resize(1400, 860)
        with (
            server(NANOREPO, ["nanorepo", "--home", info["home"]],
                   f"nanorepo://{info['accession']}@v1/{info['image']}", "nanorepo") as ours,
            server(REFERENCE, ["static", "--root", info["image_dir"]], "{root}/img.zarr",
                   "napari-ome-zarr") as theirs,
        ):  # fmt: skip
            os.environ["NANOREPO_URL"] = ours.root
            set_threads(ours.root, info, 0)  # the image as deposited: no threads
            runs: dict[str, list[Run]] = {ours.name: [], theirs.name: []}
            for srv in (ours, theirs):  # warm-up, not counted: imports, shader compilation
                one_run(viewer, srv, info["shape"])
            for r in range(args.rounds):
                order = (ours, theirs) if r % 2 == 0 else (theirs, ours)
                for srv in order:
                    run = one_run(viewer, srv, info["shape"])
                    runs[srv.name].append(run)
                    out.print(f"  round {r + 1} {srv.name}: first view {run.first_view_s:.2f} s, "
                              f"{run.first_requests} requests, {run.first_bytes / 1e3:.1f} kB "
                        f"(API {run.first_api_bytes / 1e3:.1f} kB) "
                              f"(level {run.level}); zoom {run.zoom_s:.2f} s, "
                              f"{run.zoom_bytes / 1e3:.1f} kB")  # fmt: skip
            # the same image once it has region threads: their layer is drawn too
            set_threads(ours.root, info, THREADS)
            one_run(viewer, ours, info["shape"])  # warm-up of the Shapes layer
            with_threads = [one_run(viewer, ours, info["shape"]) for _ in range(args.rounds)]
            set_threads(ours.root, info, 0)
        viewer.close()
    a, b = runs[NANOREPO], runs[REFERENCE]
    same = all(np.array_equal(x.pixels, y.pixels) for x, y in zip(a, b, strict=True))
    load = os.getloadavg()
    out.print(f"\nload average at the end: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    out.print(f"same level shown: {a[0].level == b[0].level}; same pixels: {same}\n")

    def med(rs: list[Run], attr: str) -> float:
        return float(statistics.median(getattr(x, attr) for x in rs))

    rows = []
    for what, t_attr, r_attr, b_attr in [
        ("first rendered view (whole image)", "first_view_s", "first_requests", "first_bytes"),
        ("zoom to a full-resolution 1024² region", "zoom_s", "zoom_requests", "zoom_bytes"),
    ]:
        for rs, name in ((a, NANOREPO), (b, REFERENCE)):
            api = (
                f" (API {med(rs, 'first_api_bytes') / 1e3:.1f})" if t_attr == "first_view_s" else ""
            )
            rows.append([what, name, f"{med(rs, t_attr):.2f}", f"{med(rs, r_attr):.0f}",
                         f"{med(rs, b_attr) / 1e3:.1f}{api}"])  # fmt: skip
        if t_attr == "first_view_s":
            rows.append([what, f"{NANOREPO}, {THREADS} region threads shown",
                         f"{med(with_threads, t_attr):.2f}", f"{med(with_threads, r_attr):.0f}",
                         f"{med(with_threads, b_attr) / 1e3:.1f} (API "
                         f"{med(with_threads, 'first_api_bytes') / 1e3:.1f})"])  # fmt: skip
        t_ratio = med(a, t_attr) / med(b, t_attr)
        b_ratio = med(a, b_attr) / max(med(b, b_attr), 1)
        rows.append([what, "ratio nanorepo / napari-ome-zarr",
                     f"{t_ratio:.2f}x ({'met' if t_ratio <= 1.2 else 'MISSED'} <= 1.2x)",
                     "", f"{b_ratio:.3f}x ({'met' if b_ratio <= 1.0 else 'MISSED'} <= 1x)"])  # fmt: skip
    out.print(C.table(f"napari, {logical / 1e9:.1f} GB image over loopback HTTP (medians of "
                      f"{args.rounds})", ["view", "reader", "seconds", "requests", "kB (of which API)"], rows,
                      text_columns=2))  # fmt: skip


if __name__ == "__main__":
    main()
