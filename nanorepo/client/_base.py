"""What every method group of :class:`nanorepo.Client` stands on: the connection, the
token, error translation, ETags and lazily fetched pages.

httpx is the HTTP library: one connection pool per client (keep-alive matters on the
many small requests of a notebook session), a sync API like requests with timeouts on by
default, and streaming bodies both ways (deposit uploads, file downloads).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Self
from urllib.parse import quote

import httpx

from nanorepo._version import __version__
from nanorepo.client._errors import error_from_response, transport_error
from nanorepo.errors import ConfigurationError, IntegrityError
from nanorepo.settings import Settings

__all__ = ["ClientBase", "Json", "Pages", "Version", "seg", "ver"]

Version = int | str | None
Json = dict[str, Any]


def seg(value: object) -> str:
    """One URL path segment, percent-encoded (a name can never add a path level)."""
    return quote(str(value), safe="")


def ver(version: Version) -> str:
    """``v3`` for 3, ``latest`` for None; strings as given (``v2``, ``latest``)."""
    if version is None:
        return "latest"
    if isinstance(version, int):
        return f"v{version}"
    return version


class Pages(Iterator[Json]):
    """The items of a paginated list, fetched a page at a time as iteration needs them.

    ``total`` (the number of items the caller may see, when the service counts them) and
    ``meta`` (the first page's other keys, e.g. thread ``counts``) fetch the first page
    if iteration has not started.
    """

    def __init__(self, fetch: Callable[[str | None], Json]) -> None:
        self._fetch = fetch
        self._items: deque[Json] = deque()
        self._cursor: str | None = None
        self._started = False
        self._done = False
        self._meta: Json = {}

    def _load(self) -> None:
        page = self._fetch(self._cursor)
        if not self._started:
            self._meta = {k: v for k, v in page.items() if k not in {"items", "next"}}
            self._started = True
        self._items.extend(page.get("items") or [])
        self._cursor = page.get("next")
        self._done = not self._cursor

    @property
    def meta(self) -> Json:
        if not self._started:
            self._load()
        return self._meta

    @property
    def total(self) -> int | None:
        total = self.meta.get("total")
        return int(total) if total is not None else None

    def __iter__(self) -> Pages:
        return self

    def __next__(self) -> Json:
        while not self._items:
            if self._done:
                raise StopIteration
            self._load()
        return self._items.popleft()


class ClientBase:
    """Connection, token and plumbing of a client (see :class:`nanorepo.Client`)."""

    def __init__(
        self,
        url: str | None = None,
        token: str | None = None,
        *,
        settings: Settings | None = None,
        timeout: float = 30.0,
    ) -> None:
        if url is None or token is None:
            settings = settings or Settings.from_env()
            url = url or settings.url
            token = token if token is not None else settings.token
        if not url:
            raise ConfigurationError(
                "no nanorepo service URL is configured",
                hint="set NANOREPO_URL (e.g. http://127.0.0.1:8000, what `nanorepo serve` "
                "prints) or pass url= to nanorepo.Client",
            )
        if not url.startswith(("http://", "https://")):
            raise ConfigurationError(
                f"NANOREPO_URL {url!r} is not an http(s) URL", hint="e.g. http://127.0.0.1:8000"
            )
        self.url = url.rstrip("/")
        self.timeout = timeout
        headers = {"User-Agent": f"nanorepo/{__version__}", "Accept": "application/json"}
        if token:
            headers["Authorization"] = f"token {token}"
        self._auth = {k: v for k, v in headers.items() if k == "Authorization"}
        self._token = token or ""
        self._http = httpx.Client(base_url=self.url + "/", headers=headers, timeout=timeout)

    def __repr__(self) -> str:
        return f"<nanorepo.Client {self.url} {'with' if self._auth else 'without'} token>"

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def clone(self) -> Self:
        """A new client of the same service with the same token (its own connections)."""
        return type(self)(self.url, self._token, timeout=self.timeout)

    @property
    def auth_headers(self) -> dict[str, str]:
        """The headers that carry this client's token (for tensorstore, napari, fsspec)."""
        return dict(self._auth)

    # -- plumbing --------------------------------------------------------------------

    def _request(
        self, method: str, path: str, *, accession: str = "", **kwargs: Any
    ) -> httpx.Response:
        try:
            r = self._http.request(method, path.lstrip("/"), **kwargs)
        except httpx.TransportError as exc:
            raise transport_error(exc, self.url) from exc
        if r.status_code >= 300 and r.status_code != 304:
            raise error_from_response(r, accession=accession, base_url=self.url)
        return r

    def _json(self, method: str, path: str, *, accession: str = "", **kwargs: Any) -> Any:
        return self._request(method, path, accession=accession, **kwargs).json()

    def _pages(
        self, path: str, params: Sequence[tuple[str, Any]], *, accession: str = "", limit: int
    ) -> Pages:
        def fetch(cursor: str | None) -> Json:
            p = [(k, v) for k, v in params if v is not None] + [("limit", limit)]
            if cursor:
                p.append(("cursor", cursor))
            page: Json = self._json("GET", path, accession=accession, params=p)
            return page

        return Pages(fetch)

    def _etag(self, path: str, accession: str) -> str:
        tag = self._request("GET", path, accession=accession).headers.get("etag")
        if not tag:
            raise IntegrityError(f"the service sent no ETag for {path}")
        return tag

    def _long(self) -> httpx.Timeout:
        """Connect quickly, then wait as long as the service works (deposits, downloads)."""
        return httpx.Timeout(self.timeout, read=None, write=None)
