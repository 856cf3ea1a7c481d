"""The forwarder: ``{base_url}nanorepo/api/<path>`` on the user's Jupyter server → the service.

The JupyterLab extension talks only to its own Jupyter server (same origin), which is
already signed in through JupyterHub, so the browser needs no second login and Jupyter's
XSRF protection covers every state-changing request (``POST``/``PATCH``/``PUT``/``DELETE``
from a cookie-authenticated browser need the ``_xsrf`` token, as every Jupyter API does).
The server forwards each request to the service at ``NANOREPO_URL`` with the **user's own
token** (``NANOREPO_TOKEN``, else the server's ``JUPYTERHUB_API_TOKEN``), so the service,
which alone decides who may do what, sees the user and nobody else.

What crosses, and what never does:

- method, trailing path (exactly as the browser sent it, still percent-encoded) and query;
- request headers on an allowlist (:data:`REQUEST_HEADERS`: ``Content-Type``, ``If-Match``,
  ``If-None-Match``, ``If-Range``, ``Range``, ``Accept``) and the body. The browser's
  cookies and any ``Authorization`` header it sent **never** reach the service;
- status, body and the response headers that matter (:data:`RESPONSE_HEADERS`), the
  service's ``application/problem+json`` errors unchanged. A ``Location`` under the service
  is rewritten to the forwarder's own URL, so links keep working through it.

A path with a ``.`` or ``..`` segment (also percent-encoded) is refused before anything is
sent: the token is the server's hub token, and a path climbing out of ``NANOREPO_URL``
(``/services/nanorepo/../../hub/api/...``) must not carry it elsewhere.

Bodies are streamed: thumbnails, file downloads and Zarr objects go through piece by piece,
each piece written to the browser before the next is read (back-pressure), so a large
download costs neither memory nor a wait for the whole body.

Why httpx.AsyncClient rather than tornado's AsyncHTTPClient: tornado's
``streaming_callback`` is a plain callback that cannot wait for the browser, so a slow
browser makes the server buffer the whole body in memory; with httpx the loop ``await``\\ s
``flush()`` between pieces. httpx is also the HTTP library the rest of nanorepo (the client)
uses, with a connection pool (keep-alive matters for the many small requests of a
dataset page) and timeouts on by default.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from http.cookiejar import CookieJar, DefaultCookiePolicy
from typing import Any
from urllib.parse import unquote, urlsplit

import httpx
import tornado.web
from jupyter_server.base.handlers import APIHandler
from jupyter_server.utils import url_path_join
from tornado.iostream import StreamClosedError

from nanorepo._version import __version__
from nanorepo.jupyter._napari import NAPARI_KEY, NapariHandler, NapariLauncher
from nanorepo.settings import Settings

__all__ = [
    "REQUEST_HEADERS",
    "RESPONSE_HEADERS",
    "ConfigHandler",
    "ForwardHandler",
    "Forwarder",
    "setup_route_handlers",
]

log = logging.getLogger("nanorepo.jupyter")

#: Request headers passed on to the service (anything else, cookies and the browser's own
#: ``Authorization`` above all, stays behind).
REQUEST_HEADERS = ("Accept", "Content-Type", "If-Match", "If-None-Match", "If-Range", "Range")

#: Response headers passed back to the browser.
RESPONSE_HEADERS = (
    "Accept-Ranges",
    "Cache-Control",
    "Content-Disposition",
    "Content-Encoding",
    "Content-Length",
    "Content-Range",
    "Content-Type",
    "ETag",
    "Last-Modified",
    "Location",
    "Retry-After",
    "Vary",
)

#: Key of the :class:`Forwarder` in the tornado application's settings.
SETTINGS_KEY = "nanorepo_forwarder"

PROBLEM_MEDIA_TYPE = "application/problem+json"

_DOT_SEGMENT = re.compile(r"(?:^|[/\\])\.{1,2}(?:[/\\]|$)")


@dataclass
class Forwarder:
    """Where requests go and with which token; one per Jupyter server.

    Attributes
    ----------
    url:
        The service base URL as seen from this server (``NANOREPO_URL``), or ``None`` when
        unset (every forwarded request then answers 502 saying so).
    token:
        The user's token for the service, sent as ``Authorization: token ...``.
    settings:
        The nanorepo settings the forwarder was built from (user, storage path).
    timeout_s:
        Connect timeout; reads wait up to ``read_timeout_s`` for each piece of a body.
    """

    url: str | None
    token: str | None
    settings: Settings
    timeout_s: float = 10.0
    read_timeout_s: float = 300.0
    _client: httpx.AsyncClient | None = field(default=None, repr=False)

    @classmethod
    def from_settings(cls, settings: Settings) -> Forwarder:
        url = settings.url.rstrip("/") + "/" if settings.url else None
        return cls(url=url, token=settings.token, settings=settings)

    @property
    def client(self) -> httpx.AsyncClient:
        """The shared connection pool (created on first use, inside the event loop)."""
        if self._client is None:
            self._client = httpx.AsyncClient(
                timeout=httpx.Timeout(self.read_timeout_s, connect=self.timeout_s),
                follow_redirects=False,
                trust_env=False,  # never route the user's token through an env proxy
                # Keep no cookies: a cookie the service sets on one answer must never ride
                # along on the next request (the pool is shared by all of them).
                cookies=CookieJar(policy=DefaultCookiePolicy(allowed_domains=[])),
                headers={"User-Agent": f"nanorepo-jupyter/{__version__}"},
            )
        # Lives as long as the server: Jupyter Server has no unload hook for module
        # extensions, and the process exit closes the sockets.
        return self._client


def _problem(status: int, title: str, detail: str, hint: str) -> str:
    return json.dumps(
        {"type": "about:blank", "title": title, "status": status, "detail": detail, "hint": hint}
    )


class _Base(APIHandler):
    @property
    def forwarder(self) -> Forwarder:
        fwd: Forwarder = self.settings[SETTINGS_KEY]
        return fwd

    def send_problem(self, status: int, title: str, detail: str, hint: str) -> None:
        """Answer with a problem+json body shaped like the service's own."""
        self.set_status(status)
        self.finish(_problem(status, title, detail, hint), set_content_type=PROBLEM_MEDIA_TYPE)


class ConfigHandler(_Base):
    """``GET nanorepo/api/_config``: what the Lab extension needs to know, answered here.

    The token is never included; only whether one is set.
    """

    @tornado.web.authenticated
    def get(self) -> None:
        fwd = self.forwarder
        st = fwd.settings
        user = getattr(self.current_user, "username", None) or st.user
        body = {
            "service_url": fwd.url,
            "service_url_set": fwd.url is not None,
            "token_set": fwd.token is not None,
            "user": user,
            "storage": str(st.storage),
            "storage_mounted": st.storage.is_dir(),
            "api": url_path_join(self.base_url, "nanorepo", "api") + "/",
            "notebooks": self.settings.get("nanorepo_notebooks_dir"),
            "version": __version__,
        }
        self.finish(json.dumps(body))


class ForwardHandler(_Base):
    """Forwards every verb to the service; each verb needs a signed-in Jupyter user."""

    def initialize(self, pattern: str) -> None:
        self._pattern = re.compile(pattern + "$")

    @tornado.web.authenticated
    async def get(self, path: str) -> None:
        await self._forward()

    @tornado.web.authenticated
    async def head(self, path: str) -> None:
        await self._forward()

    @tornado.web.authenticated
    async def post(self, path: str) -> None:
        await self._forward()

    @tornado.web.authenticated
    async def patch(self, path: str) -> None:
        await self._forward()

    @tornado.web.authenticated
    async def put(self, path: str) -> None:
        await self._forward()

    @tornado.web.authenticated
    async def delete(self, path: str) -> None:
        await self._forward()

    def _tail(self) -> str | None:
        """The path after ``nanorepo/api/`` as sent (percent-encoded), or None if refused."""
        m = self._pattern.match(self.request.path)
        tail = m.group(1) if m else ""
        once = unquote(tail)
        if _DOT_SEGMENT.search(tail) or _DOT_SEGMENT.search(once) or "\x00" in once:
            return None
        return tail

    def _upstream_headers(self) -> dict[str, str]:
        headers = {
            name: value
            for name in REQUEST_HEADERS
            if (value := self.request.headers.get(name)) is not None
        }
        headers["Accept-Encoding"] = "identity"  # bodies pass through as they are
        if self.forwarder.token:
            headers["Authorization"] = f"token {self.forwarder.token}"
        return headers

    def _location(self, value: str) -> str:
        """Map a ``Location`` under the service onto the forwarder's own URL."""
        base = self.forwarder.url or ""
        mine = url_path_join(self.base_url, "nanorepo", "api") + "/"
        if base and value.startswith(base):
            return mine + value[len(base) :]
        service_path = urlsplit(base).path
        if service_path not in ("", "/") and value.startswith(service_path):
            return mine + value[len(service_path) :]
        if service_path in ("", "/") and value.startswith("/"):
            return mine + value[1:]
        return value  # relative (``threads/7``): resolves against the forwarder's URL

    async def _forward(self) -> None:
        fwd = self.forwarder
        method = self.request.method or "GET"
        if fwd.url is None:
            self.send_problem(
                502, "Bad Gateway", "this Jupyter server does not know the nanorepo service",
                "set NANOREPO_URL in the server's environment (the hub does this for you)",
            )  # fmt: skip
            return
        tail = self._tail()
        if tail is None:
            self.send_problem(
                400, "Bad Request",
                f"the path {self.request.path!r} has a '.' or '..' segment",
                "the forwarder only reaches paths below NANOREPO_URL; remove the dot segments",
            )  # fmt: skip
            return
        url = fwd.url + tail + (f"?{self.request.query}" if self.request.query else "")
        body = self.request.body if method in {"POST", "PATCH", "PUT", "DELETE"} else b""
        request = fwd.client.build_request(
            method, url, headers=self._upstream_headers(), content=body or None
        )
        try:
            response = await fwd.client.send(request, stream=True)
        except httpx.HTTPError as exc:
            log.warning("nanorepo service at %s unreachable: %s", fwd.url, exc)
            self.send_problem(
                502, "Bad Gateway",
                f"the nanorepo service at {fwd.url} is unreachable: {type(exc).__name__}: {exc}",
                "check NANOREPO_URL (it must be reachable from this server) and that the "
                "service is running",
            )  # fmt: skip
            return
        try:
            await self._relay(method, response)
        finally:
            await response.aclose()

    async def _relay(self, method: str, response: httpx.Response) -> None:
        self.set_status(response.status_code, response.reason_phrase or "Unknown")
        for name in RESPONSE_HEADERS:
            value = response.headers.get(name)
            if value is not None:
                self.set_header(name, self._location(value) if name == "Location" else value)
        content_type = response.headers.get("Content-Type", "application/octet-stream")
        if method != "HEAD" and response.status_code not in (204, 304):
            try:
                async for chunk in response.aiter_raw():
                    self.write(chunk)
                    await self.flush()
            except StreamClosedError:  # the browser went away: stop reading the service
                return
        self.finish(set_content_type=content_type)

    def compute_etag(self) -> str | None:
        return None  # the service's ETags pass through; none is invented here

    def set_default_headers(self) -> None:
        super().set_default_headers()
        # Bytes from the repository (a deposited HTML file, say) must never be sniffed or
        # run as a page of this server's origin, where the user's kernels live.
        self.set_header("X-Content-Type-Options", "nosniff")

    @property
    def content_security_policy(self) -> str:
        return super().content_security_policy + "; sandbox"


def setup_route_handlers(
    web_app: tornado.web.Application,
) -> list[tuple[str, type, dict[str, Any]]]:
    """Register the forwarder's handlers on ``web_app`` (under its ``base_url``).

    The :class:`Forwarder` must be in ``web_app.settings[SETTINGS_KEY]`` and the
    :class:`~nanorepo.jupyter._napari.NapariLauncher` in ``web_app.settings[NAPARI_KEY]``;
    they are built from the environment if not. ``_config`` and ``_napari`` are answered
    here; everything else under ``nanorepo/api/`` is forwarded. Returns the rules added (the authentication test walks
    them, so no handler can be added without being checked).
    """
    if SETTINGS_KEY not in web_app.settings:
        web_app.settings[SETTINGS_KEY] = Forwarder.from_settings(Settings.from_env())
    base_url = web_app.settings.get("base_url", "/")
    api = url_path_join(base_url, "nanorepo", "api")
    forward = re.escape(api + "/") + "(.*)"
    if NAPARI_KEY not in web_app.settings:
        web_app.settings[NAPARI_KEY] = NapariLauncher.from_environment()
    rules: list[tuple[str, type, dict[str, Any]]] = [
        (re.escape(api + "/_config"), ConfigHandler, {}),
        (re.escape(api + "/_napari"), NapariHandler, {}),
        (forward, ForwardHandler, {"pattern": forward}),
    ]
    web_app.add_handlers(".*$", rules)
    return rules
