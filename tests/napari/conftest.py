"""Fixtures of the napari plugin's tests: a virtual screen, a live service whose traffic is
counted, and a repository with a large image and a nuclear-pore image.

napari draws with OpenGL, which Qt's ``offscreen`` platform does not provide here, so the
tests run real napari windows on an Xvfb screen of their own (``xvfb`` is one of the
system packages ``./dev`` installs). The service is the real FastAPI app under uvicorn on
loopback, wrapped in an ASGI middleware that records every request's path and the bytes of
its response body, so a test can say exactly what a viewer fetched.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import threading
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tifffile
import uvicorn
import yaml

from nanorepo.repository import Repository
from nanorepo.settings import Settings
from nanorepo.testing._service import SeededRepository, seed_repository

with warnings.catch_warnings():
    # Imported once, here: npe2 and napari build pydantic models with options pydantic 2
    # deprecates (extra Field keywords, json_encoders) at import time. Not ours to fix; the
    # tests themselves still turn every warning into an error.
    warnings.simplefilter("ignore", DeprecationWarning)
    import napari
    import napari.layers

METADATA = {
    "study": {"description": "napari plugin tests.", "authors": [{"name": "Alice"}],
              "license": "CC-BY-4.0"},
    "biosample": {"organism": "Homo sapiens", "cell_line": "U2OS"},
    "specimen": {"labels": [{"target": "Nup96", "fluorophore": "AF647"}]},
    "image_acquisition": {"technique": "STED"},
}  # fmt: skip

#: The large image: 2 channels of 8192 x 8192 uint16 (256 MiB), 30 nm pixels, 5 levels.
BIG_SHAPE = (2, 8192, 8192)
BIG_PIXEL_NM = 30.0
#: A bright square painted into both channels of the large image (level-0 rows, columns).
MARK_ROWS, MARK_COLS = (4096, 4608), (6144, 6912)
MARK_VALUE = 4000


class _OutlivingPopen(subprocess.Popen):  # type: ignore[type-arg]
    """A child meant to run until this process ends (it gets SIGTERM then, through
    PR_SET_PDEATHSIG): collecting the object must not warn that it still runs."""

    def __del__(self) -> None:
        pass


@pytest.fixture(scope="session")
def display() -> Iterator[str]:
    """An Xvfb screen for napari's windows (DISPLAY and QT_QPA_PLATFORM=xcb set for the
    session, so subprocesses such as ``nanorepo view`` draw on it too)."""
    xvfb = shutil.which("Xvfb")
    if xvfb is None:
        msg = "the napari tests draw on an Xvfb screen: install xvfb (./dev does)"
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)
    read, write = os.pipe()
    proc = _OutlivingPopen(
        [xvfb, "-displayfd", str(write), "-screen", "0", "1600x1000x24", "-nolisten", "tcp"],
        pass_fds=(write,),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        preexec_fn=_die_with_parent,
    )
    os.close(write)
    with os.fdopen(read) as f:
        number = f.readline().strip()
    if not number:
        proc.kill()
        pytest.fail("Xvfb did not start")
    saved = {k: os.environ.get(k) for k in ("DISPLAY", "QT_QPA_PLATFORM")}
    os.environ.update(DISPLAY=f":{number}", QT_QPA_PLATFORM="xcb")
    try:
        yield f":{number}"
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        # Not stopped here: Qt's application object outlives the tests and exits the
        # process with status 1 when its X server goes away under it. Xvfb ends with us.
        if proc.poll() is not None:
            pytest.fail(f"Xvfb exited early ({proc.returncode})")


def _die_with_parent() -> None:
    """In the child, before exec: get SIGTERM when the test process ends (Linux)."""
    import ctypes
    import signal

    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


@dataclass
class Traffic:
    """Requests the service answered: ``[path, status, body bytes]`` each."""

    log: list[list[Any]] = field(default_factory=list)

    def clear(self) -> None:
        self.log = []  # a response still being sent updates its entry in the old list

    def zarr(self) -> list[tuple[str, int, int]]:
        return [(p, s, n) for p, s, n in self.log if "/zarr/" in p]

    def paths(self) -> list[str]:
        return [p for p, _, _ in self.log]

    def bytes(self) -> int:
        return sum(n for _, _, n in self.log)


class _Counting:
    """ASGI middleware: records each HTTP request's path, status and response body bytes.

    The entry is written when the response starts and its byte count grows as the body
    is sent, so it is complete by the time the client has the whole response.
    """

    def __init__(self, app: Any, traffic: Traffic) -> None:
        self.app, self.traffic = app, traffic

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        entry: list[Any] = []

        async def counting_send(message: Any) -> None:
            if message["type"] == "http.response.start":
                entry[:] = [scope["path"], int(message["status"]), 0]
                self.traffic.log.append(entry)
            elif message["type"] == "http.response.body" and entry:
                entry[2] += len(message.get("body", b""))
            await send(message)

        await self.app(scope, receive, counting_send)


@dataclass
class Service:
    """The live service of the module, its repository and what it holds."""

    url: str
    repo: Repository
    settings: Settings
    seed: SeededRepository
    traffic: Traffic
    big: str  # accession of the large public image "big"
    npc: str  # accession of the nuclear-pore image "npc" (screenshot)

    def env(self, user: str | None, *, storage: bool = False, url: bool = True) -> Settings:
        """Settings of a user's machine: an empty home, the service URL, the user's token;
        ``storage=True`` also mounts the repository storage (a hub user's server)."""
        env: dict[str, str] = {}
        if url:
            env["NANOREPO_URL"] = self.url
        if user is not None:
            env["NANOREPO_TOKEN"] = self.seed.tokens[user]
        if storage:
            env["NANOREPO_STORAGE"] = str(self.settings.storage)
        home = self.settings.home.parent / f"client-{user}-{int(storage)}-{int(url)}"
        home.mkdir(exist_ok=True)
        return Settings.from_env(home, env=env)


def _write_big(path: Path) -> None:
    """A large 2-channel image, made fast: a smooth pattern plus uniform noise (real,
    incompressible-enough chunks), and a bright square to find at every pyramid level."""
    rng = np.random.default_rng(7)
    ny, nx = BIG_SHAPE[1:]
    yy = np.arange(ny, dtype=np.float32)[:, None]
    xx = np.arange(nx, dtype=np.float32)[None, :]
    base = (100 + 60 * np.sin(yy / 97.0) * np.cos(xx / 61.0)).astype(np.uint16)
    data = rng.integers(0, 64, size=BIG_SHAPE, dtype=np.uint16)
    data += base
    data[:, slice(*MARK_ROWS), slice(*MARK_COLS)] = MARK_VALUE
    um = BIG_PIXEL_NM / 1000
    tifffile.imwrite(
        path, data, ome=True, photometric="minisblack",
        metadata={"axes": "CYX", "PhysicalSizeX": um, "PhysicalSizeXUnit": "µm",
                  "PhysicalSizeY": um, "PhysicalSizeYUnit": "µm",
                  "Channel": {"Name": ["Nup96", "DNA"]}},
    )  # fmt: skip


#: The nuclear-pore image: 12.8 µm square at 20 nm pixels.
NPC_FIELD_NM, NPC_PIXEL_NM = 12800.0, 20.0


def npc_structures() -> Any:
    """The nuclear pores of the screenshot image (their centres place its regions)."""
    from nanorepo.samples import nuclear_pores

    return nuclear_pores(
        (NPC_FIELD_NM, NPC_FIELD_NM, 400.0), origin_nm=(-25.0, -25.0, -200.0), seed=101
    )


def _write_npc(path: Path) -> None:
    """Nuclear pores by STED and chromatin by confocal (the screenshot image)."""
    from nanorepo.samples import (
        CONFOCAL,
        STED,
        chromatin_domains,
        default_channel,
        render,
        write_ome_tiff,
    )

    n = int(NPC_FIELD_NM // NPC_PIXEL_NM)
    dna = chromatin_domains((NPC_FIELD_NM, NPC_FIELD_NM, 400.0), seed=5)
    data = np.stack(
        [render(npc_structures(), STED, (n, n), pixel_size_nm=NPC_PIXEL_NM, seed=12),
         render(dna, CONFOCAL, (n, n), pixel_size_nm=NPC_PIXEL_NM, seed=13)]
    )  # fmt: skip
    write_ome_tiff(
        path, data, dims=("c", "y", "x"), pixel_sizes_nm={"y": NPC_PIXEL_NM, "x": NPC_PIXEL_NM},
        channels=[default_channel("nuclear_pores"), default_channel("chromatin")],
        modality=STED, description="Nup96 (STED) and chromatin (confocal)",
    )  # fmt: skip


def _deposit(repo: Repository, src: Path, title: str) -> str:
    meta = src.parent / "metadata.yaml"
    meta.write_text(yaml.safe_dump(METADATA))
    return repo.deposit([src], title=title, metadata=meta).accession


@pytest.fixture(scope="module")
def napari_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """A live service (SQLite) over a seeded repository plus a large public image ``big``
    and a nuclear-pore image ``npc``, its traffic counted."""
    from nanorepo.service import create_app

    tmp = tmp_path_factory.mktemp("napari")
    settings = Settings.from_env(tmp / "home", env={"NANOREPO_USER": "alice"}).with_(
        keep_originals=False
    )
    repo = Repository(settings, create=True)
    seed = seed_repository(repo, tmp / "seed")
    (tmp / "big").mkdir()
    _write_big(tmp / "big" / "big.ome.tif")
    big = _deposit(repo, tmp / "big" / "big.ome.tif", "A large image")
    (tmp / "npc").mkdir()
    _write_npc(tmp / "npc" / "npc.ome.tif")
    npc = _deposit(repo, tmp / "npc" / "npc.ome.tif", "Nuclear pores, STED")

    traffic = Traffic()
    app = _Counting(create_app(settings, repo=repo), traffic)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the nanorepo service did not start")
        time.sleep(0.02)
    try:
        yield Service(f"http://127.0.0.1:{port}", repo, settings, seed, traffic, big, npc)
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()
        repo.close()


@pytest.fixture
def viewer(display: str) -> Iterator[Any]:
    """A shown napari viewer on the Xvfb screen, closed afterwards."""
    v = napari.Viewer(show=True)
    v.window.resize(1400, 860)
    try:
        yield v
    finally:
        v.close()


def settle(viewer: Any, seconds: float = 1.0) -> None:
    """Let Qt draw and napari load what the view needs (it re-slices after a draw)."""
    from qtpy.QtWidgets import QApplication

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        QApplication.processEvents()
        time.sleep(0.02)
