"""A real Jupyter Server with the nanorepo extension, and a recording stand-in service.

:func:`jupyter_server` starts ``python -m jupyter_server`` (what JupyterHub's spawner runs)
as a subprocess on a free loopback port with a known token and private Jupyter
directories, with only ``nanorepo.jupyter`` enabled (the editable install does not put
``jupyter-config/`` into ``etc/jupyter``, and the other installed extensions would only
slow the start).

:class:`Recorder` is a plain HTTP server that records every request it gets: put at
``NANOREPO_URL``, it shows exactly what the forwarder sends (and that it sends nothing
for an unauthenticated request).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

JUPYTER_TOKEN = "jupyter-test-token-0123456789abcdef"

#: Extensions installed in the environment that the test servers do not load.
_OTHERS_OFF = ("jupyterlab", "jupyter_lsp", "jupyter_server_terminals", "notebook_shim",
               "jupyter_server_proxy", "jupyter_server_ydoc", "jupyter_collaboration",
               "jupyterhub")  # fmt: skip


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class JupyterServer:
    """A running server: ``url`` (with the base URL) ends with ``/``; ``headers`` carry
    its token."""

    url: str
    root: Path
    log: Path
    proc: subprocess.Popen[bytes]

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"token {JUPYTER_TOKEN}"}

    def api(self, path: str) -> str:
        return f"{self.url}nanorepo/api/{path}"

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


@contextmanager
def jupyter_server(
    workdir: Path,
    env: dict[str, str],
    *,
    enable: tuple[str, ...] = (),
    base_url: str = "/",
    extra_args: tuple[str, ...] = (),
) -> Iterator[JupyterServer]:
    """Run a Jupyter Server with the nanorepo extension (and ``enable``) until the block ends."""
    workdir.mkdir(parents=True, exist_ok=True)
    root = workdir / "home"
    root.mkdir(exist_ok=True)
    port = free_port()
    extensions = {name: name in enable for name in _OTHERS_OFF} | {"nanorepo.jupyter": True}
    full_env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("NANOREPO_", "JUPYTERHUB_", "JUPYTER_", "DASK_"))
    }
    full_env.update(
        JUPYTER_CONFIG_DIR=str(workdir / "config"),
        JUPYTER_DATA_DIR=str(workdir / "data"),
        JUPYTER_RUNTIME_DIR=str(workdir / "runtime"),
        JUPYTER_PLATFORM_DIRS="1",
        **env,
    )
    cmd = [
        sys.executable, "-m", "jupyter_server",
        "--allow-root", "--no-browser",
        "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={JUPYTER_TOKEN}", f"--ServerApp.root_dir={root}",
        f"--ServerApp.jpserver_extensions={extensions!r}", f"--ServerApp.base_url={base_url}",
        *extra_args,
    ]  # fmt: skip
    log = workdir / "jupyter.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, env=full_env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}{base_url}"
    server = JupyterServer(url=url, root=root, log=log, proc=proc)
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError(
                    f"jupyter server exited ({proc.returncode}):\n{server.log_text()}"
                )
            try:
                r = httpx.get(f"{url}api/status", headers=server.headers, timeout=2)
                if r.status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"jupyter server did not start:\n{server.log_text()}")
            time.sleep(0.1)
        yield server
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@dataclass
class Seen:
    """One request as the stand-in service received it."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Recorder:
    """A stand-in service on loopback, under :attr:`prefix` like the hub-managed service,
    that records requests.

    Answers: ``/big`` streams :attr:`big` in two parts, the second only after
    :attr:`release` is set (or 20 s), and sets :attr:`aborted` if the
    forwarder hung up meanwhile; ``/moved`` answers 201 with a ``Location`` under the
    service URL; anything else echoes what it got as JSON with an ``ETag``.
    """

    url: str = ""
    prefix: str = "/services/nanorepo/"
    seen: list[Seen] = field(default_factory=list)
    big: bytes = b""
    release: threading.Event = field(default_factory=threading.Event)
    aborted: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def clear(self) -> None:
        with self.lock:
            self.seen.clear()
        self.release.clear()
        self.aborted.clear()


def _handler(rec: Recorder) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _any(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            with rec.lock:
                rec.seen.append(
                    Seen(self.command, self.path, {k.lower(): v for k, v in self.headers.items()},
                         body)
                )  # fmt: skip
            if self.path.startswith(rec.prefix + "big"):
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(len(rec.big)))
                self.end_headers()
                if self.command == "HEAD":
                    return
                half = 256 * 1024
                self.wfile.write(rec.big[:half])
                self.wfile.flush()
                rec.release.wait(20)
                try:
                    self.wfile.write(rec.big[half:])
                    self.wfile.flush()
                except OSError:  # the forwarder hung up: its browser went away
                    rec.aborted.set()
                    self.close_connection = True
                return
            if self.path.startswith(rec.prefix + "moved"):
                out = b'{"ok": true}'
                self.send_response(201)
                self.send_header("Location", rec.url + "datasets/S-NANO9")
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)
                return
            out = json.dumps({"method": self.command, "path": self.path}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("ETag", '"echo"')
            self.send_header("Set-Cookie", "service-session=must-not-reach-the-browser")
            self.send_header("Content-Length", str(len(out)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(out)

        do_GET = do_HEAD = do_POST = do_PATCH = do_PUT = do_DELETE = do_OPTIONS = _any

    return Handler


@contextmanager
def recorder() -> Iterator[Recorder]:
    """Run a :class:`Recorder` on a free loopback port until the block ends."""
    rec = Recorder()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(rec))
    httpd.daemon_threads = True
    rec.url = f"http://127.0.0.1:{httpd.server_address[1]}{rec.prefix}"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield rec
    finally:
        rec.release.set()
        httpd.shutdown()
        httpd.server_close()
