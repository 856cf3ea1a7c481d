"""What the forwarder sends to the service and what it gives back, seen by a recording
stand-in service: the user's token and never the browser's credentials, paths and queries
as sent, dot segments refused, bodies streamed, XSRF as Jupyter enforces it."""

from __future__ import annotations

import http.client
import os
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from tests.jupyter._servers import JUPYTER_TOKEN, JupyterServer, Recorder, free_port, jupyter_server
from tests.jupyter.conftest import SERVICE_TOKEN

PREFIX = "/services/nanorepo/"


def raw(
    server: JupyterServer, method: str, path: str, headers: dict[str, str]
) -> tuple[int, str, bytes]:
    """A request with the path exactly as given (httpx would normalise dot segments)."""
    u = urlsplit(server.url)
    conn = http.client.HTTPConnection(u.hostname or "", u.port, timeout=30)
    try:
        conn.request(method, path, headers=headers)
        resp = conn.getresponse()
        return resp.status, resp.getheader("Content-Type") or "", resp.read()
    finally:
        conn.close()


def test_user_token_replaces_browser_credentials(jupyter: JupyterServer, rec: Recorder) -> None:
    headers = {
        **jupyter.headers,
        "Cookie": "session=browser-secret; _xsrf=abc",
        "X-Custom": "stays-behind",
        "Range": "bytes=0-9",
        "If-None-Match": '"v1"',
        "If-Match": '"v2"',
        "Accept": "application/json",
    }
    r = httpx.get(jupyter.api("datasets/S-NANO1"), headers=headers, timeout=30)
    assert r.status_code == 200, r.text
    assert r.json() == {"method": "GET", "path": PREFIX + "datasets/S-NANO1"}
    assert r.headers["etag"] == '"echo"'
    assert "service-session" not in r.headers.get("set-cookie", "")  # service cookies stay
    assert r.headers["x-content-type-options"] == "nosniff"
    assert "default-src 'none'" in r.headers["content-security-policy"]
    (seen,) = rec.seen
    assert seen.headers["authorization"] == f"token {SERVICE_TOKEN}"
    assert JUPYTER_TOKEN not in str(seen.headers)
    assert "cookie" not in seen.headers and "x-custom" not in seen.headers
    assert seen.headers["range"] == "bytes=0-9"
    assert seen.headers["if-none-match"] == '"v1"' and seen.headers["if-match"] == '"v2"'
    assert seen.headers["accept"] == "application/json"


def test_path_query_and_body_pass_unchanged(jupyter: JupyterServer, rec: Recorder) -> None:
    tail = "datasets/S%2FX/a%20b?q=nuclear%20pore&facet=a&facet=b"
    status, _, _ = raw(jupyter, "GET", f"/nanorepo/api/{tail}", jupyter.headers)
    assert status == 200
    body = b'{"title": "Ring \xc3\xa9"}'
    r = httpx.patch(
        jupyter.api("datasets/S-NANO1/mutable"), content=body, timeout=30,
        headers={**jupyter.headers, "Content-Type": "application/json", "If-Match": '"e1"'},
    )  # fmt: skip
    assert r.status_code == 200
    get, patch = rec.seen
    assert get.path == PREFIX + tail
    assert patch.method == "PATCH" and patch.body == body
    assert patch.headers["content-type"] == "application/json"


def test_dot_segments_never_leave_the_service(jupyter: JupyterServer, rec: Recorder) -> None:
    """A path climbing out of NANOREPO_URL (to the hub API, say) is refused before anything
    is sent, however it is spelled."""
    for tail in ("../../hub/api/users", "%2e%2e/%2e%2e/hub/api/users", "..%2F..%2Fhub/api",
                 "datasets/./x", "datasets/..", "datasets\\..\\..\\hub", "a%2F%2E%2E%2Fb"):  # fmt: skip
        status, ctype, body = raw(jupyter, "GET", f"/nanorepo/api/{tail}", jupyter.headers)
        assert status == 400, (tail, status, body)
        assert ctype == "application/problem+json"
        assert b"NANOREPO_URL" in body
    assert rec.seen == []
    # a dot inside a name is not a dot segment
    status, _, _ = raw(
        jupyter, "GET", "/nanorepo/api/zarr/S-NANO1/v1/a.b/zarr.json", jupyter.headers
    )
    assert status == 200
    assert rec.seen[0].path == PREFIX + "zarr/S-NANO1/v1/a.b/zarr.json"


def test_location_is_rewritten_to_the_forwarder(jupyter: JupyterServer, rec: Recorder) -> None:
    r = httpx.post(jupyter.api("moved"), headers=jupyter.headers, content=b"{}", timeout=30)
    assert r.status_code == 201
    assert r.headers["location"] == "/nanorepo/api/datasets/S-NANO9"


def test_large_bodies_are_streamed(jupyter: JupyterServer, rec: Recorder) -> None:
    """The first part of a body reaches the browser while the service still holds back the
    rest: nothing waits for (or buffers) the whole body."""
    rec.big = os.urandom(3 * 1024 * 1024)
    t0 = time.monotonic()
    got = bytearray()
    with httpx.stream("GET", jupyter.api("big"), headers=jupyter.headers, timeout=60) as r:
        assert r.status_code == 200
        assert r.headers["content-length"] == str(len(rec.big))
        for chunk in r.iter_raw():
            if not got:
                first = time.monotonic() - t0
                rec.release.set()
            got += chunk
    assert first < 10, f"first bytes after {first:.1f} s: the body was buffered"
    assert bytes(got) == rec.big
    h = httpx.head(jupyter.api("big"), headers=jupyter.headers, timeout=30)
    assert h.status_code == 200 and h.headers["content-length"] == str(len(rec.big))
    assert h.content == b""


def test_a_browser_leaving_stops_the_download(jupyter: JupyterServer, rec: Recorder) -> None:
    """When the browser hangs up mid-body, the forwarder hangs up on the service too, and
    logs no error."""
    rec.big = os.urandom(16 * 1024 * 1024)
    with httpx.stream("GET", jupyter.api("big"), headers=jupyter.headers, timeout=60) as r:
        assert r.status_code == 200
        next(r.iter_raw())
    rec.release.set()
    assert rec.aborted.wait(10), "the forwarder kept reading for a browser that left"
    assert (
        httpx.get(jupyter.api("datasets"), headers=jupyter.headers, timeout=30).status_code == 200
    )
    log = jupyter.log_text()
    assert "Traceback" not in log and "Uncaught exception" not in log


def test_xsrf_holds_for_cookies_not_for_tokens(jupyter: JupyterServer, rec: Recorder) -> None:
    """Token-authenticated requests need no _xsrf (as every Jupyter API); a browser session
    (cookie) must send it on POST, and without it nothing is forwarded."""
    url = jupyter.api("datasets/S-NANO1/threads")
    r = httpx.post(url, headers=jupyter.headers, json={"title": "t"}, timeout=30)
    assert r.status_code == 200, r.text
    assert len(rec.seen) == 1
    rec.clear()
    with httpx.Client(base_url=jupyter.url, timeout=30) as browser:
        login = browser.get("login")
        xsrf = browser.cookies["_xsrf"]
        assert login.status_code == 200
        r = browser.post("login", data={"_xsrf": xsrf, "password": JUPYTER_TOKEN})
        assert r.status_code == 302, r.text
        assert browser.get("api/status").status_code == 200  # signed in by cookie
        r = browser.post(url, json={"title": "t"})
        assert r.status_code == 403 and "_xsrf" in r.text
        r = browser.delete(jupyter.api("datasets/S-NANO1/threads/1"))
        assert r.status_code == 403
        assert rec.seen == []
        r = browser.post(url, json={"title": "t"}, headers={"X-XSRFToken": xsrf})
        assert r.status_code == 200, r.text
        assert browser.get(jupyter.api("datasets/S-NANO1")).status_code == 200
    post, get = rec.seen
    assert post.method == "POST" and "cookie" not in post.headers
    assert post.headers["authorization"] == f"token {SERVICE_TOKEN}"
    assert "cookie" not in get.headers and "x-xsrftoken" not in post.headers


def test_unreachable_service_is_a_502_naming_the_setting(tmp_path: Path) -> None:
    """(This server is also configured not to copy the notebooks.)"""
    closed = f"http://127.0.0.1:{free_port()}/services/nanorepo/"
    no_copy = ("--NanorepoExtension.copy_notebooks=False",)
    with jupyter_server(tmp_path / "j", {"NANOREPO_URL": closed}, extra_args=no_copy) as jp:
        r = httpx.get(jp.api("datasets"), headers=jp.headers, timeout=30)
        conf = httpx.get(jp.api("_config"), headers=jp.headers, timeout=30).json()
        assert list(jp.root.iterdir()) == []
        assert conf["notebooks"] is None
    assert r.status_code == 502
    assert r.headers["content-type"] == "application/problem+json"
    problem = r.json()
    assert problem["status"] == 502 and closed in problem["detail"]
    assert "unreachable" in problem["detail"] and "NANOREPO_URL" in problem["hint"]
    assert conf["service_url"] == closed and conf["token_set"] is False
