"""Fixtures for the OME-Zarr tests: an HTTP server that serves files the way ours will."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

TOKEN = "s3cret-test-token"


@dataclass
class RangeServer:
    """A loopback HTTP server over a directory, with Range support and token auth."""

    root: Path
    url: str
    requests: list[tuple[str, str | None]] = field(default_factory=list)


def _handler(server_state: RangeServer) -> type[SimpleHTTPRequestHandler]:
    class Handler(SimpleHTTPRequestHandler):
        # http.server ignores Range, which sharded Zarr needs (DESIGN.md); this one honours
        # "bytes=a-b", "bytes=a-" and suffix "bytes=-n", like Starlette and aiohttp do.
        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, directory=str(server_state.root), **kwargs)  # type: ignore[arg-type]

        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            rng = self.headers.get("Range")
            server_state.requests.append((self.path, rng))
            if self.headers.get("Authorization") != f"token {TOKEN}":
                self.send_error(401)
                return
            path = Path(self.translate_path(self.path))
            if not path.is_file():
                self.send_error(404)
                return
            data = path.read_bytes()
            status, start, end = 200, 0, len(data)
            if rng:
                m = re.fullmatch(r"bytes=(\d*)-(\d*)", rng.strip())
                if not m or (not m[1] and not m[2]):
                    self.send_error(416)
                    return
                if not m[1]:
                    start = max(0, len(data) - int(m[2]))
                else:
                    start = int(m[1])
                    end = min(len(data), int(m[2]) + 1) if m[2] else len(data)
                if start >= len(data) and len(data) > 0:
                    self.send_error(416)
                    return
                status = 206
            body = data[start:end]
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Accept-Ranges", "bytes")
            if status == 206:
                self.send_header("Content-Range", f"bytes {start}-{end - 1}/{len(data)}")
            self.end_headers()
            self.wfile.write(body)

    return Handler


@pytest.fixture
def range_server(tmp_path: Path) -> Iterator[RangeServer]:
    """Serve ``tmp_path / "www"`` on loopback; requests need ``Authorization: token …``."""
    root = tmp_path / "www"
    root.mkdir()
    state = RangeServer(root=root, url="")
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    state.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()
