"""The nanorepo REST service: a FastAPI application over one :class:`Repository`.

Run standalone with ``nanorepo serve`` or as a JupyterHub managed service (the app is then
mounted under ``JUPYTERHUB_SERVICE_PREFIX`` and identities come from the hub). FastAPI is
the chosen framework for its OpenAPI document generated from typed routes (what
schemathesis tests against) and Starlette's Range-capable file responses.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Annotated

from fastapi import Depends, FastAPI, HTTPException, Request, Response
from sqlmodel import Session
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from nanorepo import __version__
from nanorepo.annotations import RenderPool, use_render_pool
from nanorepo.errors import InvalidInput
from nanorepo.policy import Principal
from nanorepo.repository import Repository
from nanorepo.service._admission import Admission, document_admission
from nanorepo.service._identity import HubIdentity, resolve_principal
from nanorepo.service._problems import (
    INTERNAL_ERROR,
    INTERNAL_HINT,
    install_problem_handlers,
    problem,
)
from nanorepo.service._schemas import COMMON_RESPONSES
from nanorepo.settings import Settings

__all__ = [
    "MAX_JSON_DEPTH",
    "CurrentPrincipal",
    "DbSession",
    "ServiceState",
    "create_app",
    "json_depth",
    "public_namespace",
    "state_of",
]

#: Sent on every response. The API serves JSON, PNG and Zarr bytes, never pages, so the
#: policy forbids everything a browser could do with a response it was tricked into
#: rendering.
SECURITY_HEADERS: list[tuple[bytes, bytes]] = [
    (
        b"content-security-policy",
        b"default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
]


class SecurityHeaders:
    """Pure ASGI middleware (no per-request task overhead, unlike BaseHTTPMiddleware)."""

    def __init__(self, app: ASGIApp, *, cors_origins: tuple[str, ...] = ()) -> None:
        self.app = app
        self.cors = {o.encode() for o in cors_origins}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        origin = next((v for k, v in scope["headers"] if k == b"origin"), None)
        allow = (
            origin if origin is not None and (origin in self.cors or b"*" in self.cors) else None
        )
        if allow is not None and scope["method"] == "OPTIONS":
            await _preflight(send, allow)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {k.lower() for k, _ in headers}
                headers += [(k, v) for k, v in SECURITY_HEADERS if k not in present]
                if allow is not None:
                    headers += [
                        (b"access-control-allow-origin", allow),
                        (b"access-control-expose-headers", b"ETag, Content-Range, Content-Length"),
                        (b"cross-origin-resource-policy", b"cross-origin"),
                        (b"vary", b"Origin"),
                    ]
                message["headers"] = headers
            await send(message)

        started = False

        async def send_tracked(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send_with_headers(message)

        try:
            await self.app(scope, receive, send_tracked)
        except Exception:
            # An unexpected error: answer here, inside this middleware, so the 500 carries
            # the security headers too (Starlette's outermost error middleware would send
            # a bare one); re-raise so the server logs the traceback for the operator.
            if not started:
                await problem(500, INTERNAL_ERROR, hint=INTERNAL_HINT)(scope, receive, send_tracked)
            raise


class BodyLimit:
    """Refuse request bodies over a limit while they stream in (pure ASGI middleware).

    A ``Content-Length`` over the limit gets 413 before a byte is read; a body without one
    (chunked) is counted as it arrives and refused at the first byte past the limit, so the
    service never buffers more than the limit. Routes that stream a large body to disk
    and enforce their own limit (uploads) are listed in ``own_limit``.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        limit: int,
        prefix: str,
        own_limit: Sequence[tuple[str, str]] = (),
        larger: Sequence[tuple[str, str, int]] = (),
    ) -> None:
        self.app = app
        self.limit = limit
        self.own = [(m, re.compile(re.escape(prefix) + pattern)) for m, pattern in own_limit]
        self.larger = [(m, re.compile(re.escape(prefix) + pt), n) for m, pt, n in larger]

    def _limit_for(self, method: str, path: str) -> int | None:
        if any(m == method and rx.fullmatch(path) for m, rx in self.own):
            return None
        for m, rx, n in self.larger:
            if m == method and rx.fullmatch(path):
                return max(n, self.limit)
        return self.limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self._limit_for(scope["method"], scope["path"])
        if limit is None:
            await self.app(scope, receive, send)
            return
        length = next((v for k, v in scope["headers"] if k == b"content-length"), b"")
        if length.isdigit() and int(length) > limit:
            await _too_large(limit)(scope, receive, send)
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise HTTPException(413, _too_large_text(limit))
            return message

        await self.app(scope, counted, send)


def _too_large_text(limit: int) -> str:
    return (
        f"the request body is larger than the {limit:,} bytes this service accepts "
        "(NANOREPO_MAX_BODY_BYTES); nothing was changed"
    )


def _too_large(limit: int) -> Response:
    return problem(
        413,
        _too_large_text(limit),
        hint="send less per request (e.g. split an import), or upload large files through "
        "the staging route",
        limit=limit,
    )


async def _preflight(send: Send, origin: bytes) -> None:
    headers = [
        (b"access-control-allow-origin", origin),
        (b"access-control-allow-methods", b"GET, HEAD, OPTIONS"),
        (b"access-control-allow-headers", b"Authorization, Range, If-None-Match"),
        (b"access-control-max-age", b"600"),
        (b"vary", b"Origin"),
        *SECURITY_HEADERS,
    ]
    await send({"type": "http.response.start", "status": 204, "headers": headers})
    await send({"type": "http.response.body", "body": b""})


@dataclass
class ServiceState:
    """What every request needs: the repository, its settings, the hub (if any)."""

    repo: Repository
    settings: Settings
    hub: HubIdentity | None = None


def state_of(request: Request) -> ServiceState:
    state: ServiceState = request.app.state.nanorepo
    return state


def public_namespace(request: Request) -> str | None:
    """The base of identifiers in exports: the configured public URL (``NANOREPO_PUBLIC_URL``,
    ending in ``/``), or ``None`` (exports then use ``urn:nanorepo:``). Never the request's
    ``Host`` header: whoever sends the request chooses it, and ids copied from it would
    point readers of an export at the sender's server."""
    url = state_of(request).settings.public_url
    return f"{url.rstrip('/')}/" if url else None


def _session(request: Request) -> Iterator[Session]:
    with state_of(request).repo.catalog.session() as s:
        yield s


DbSession = Annotated[Session, Depends(_session)]


def _principal(request: Request, s: DbSession) -> Principal:
    st = state_of(request)
    cached: Principal | None = getattr(request.state, "principal", None)
    if cached is None:
        cached = resolve_principal(
            request, s, hub=st.hub, allow_anonymous=st.settings.allow_anonymous
        )
        request.state.principal = cached
    return cached


CurrentPrincipal = Annotated[Principal, Depends(_principal)]

#: Deepest nesting of arrays and objects a JSON body may have (metadata is a few levels
#: deep; a W3C annotation about six). Deeper documents cost recursion, not information.
MAX_JSON_DEPTH = 32


def json_depth(doc: object, limit: int = MAX_JSON_DEPTH) -> int:
    """How deep ``doc`` nests (a scalar is 0), counting no further than ``limit + 1``;
    iterative, so a hostile document cannot exhaust the stack."""
    deepest = 0
    stack: list[tuple[object, int]] = [(doc, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict):
            children: Iterable[object] = value.values()
        elif isinstance(value, list):
            children = value
        else:
            continue
        deepest = max(deepest, depth)
        if depth > limit:
            return depth
        stack.extend((c, depth + 1) for c in children if isinstance(c, dict | list))
    return deepest


def _check_request(request: Request) -> None:
    """Refuse a JSON body nested deeper than :data:`MAX_JSON_DEPTH`, and NUL characters in
    query and path parameters (the catalog cannot compare them: PostgreSQL refuses NUL in
    text). Runs on every route, after FastAPI parsed the body and before it is validated."""
    params = [*(("query", k, v) for k, v in request.query_params.multi_items()),
              *(("path", k, v) for k, v in request.path_params.items())]  # fmt: skip
    for where, name, value in params:
        if isinstance(value, str) and "\x00" in value:
            raise InvalidInput(
                f"the {where} parameter {name!r} contains a NUL character",
                hint="remove it: no nanorepo name, accession or filter contains NUL",
            )
    doc = getattr(request, "_json", None)
    if doc is not None and json_depth(doc) > MAX_JSON_DEPTH:
        raise InvalidInput(
            f"the JSON body nests deeper than {MAX_JSON_DEPTH} levels of arrays and objects",
            hint="flatten the document; no nanorepo resource nests that deep",
        )


async def _release_due_embargoes(state: ServiceState, every_s: float) -> None:
    """Release embargoes whose date has come, at start and then periodically."""
    while True:
        try:
            await asyncio.to_thread(state.repo.release_due, date.today())
        except Exception:  # keep serving; the next round tries again
            import logging

            logging.getLogger("nanorepo.service").exception("releasing due embargoes failed")
        await asyncio.sleep(every_s)


_ACCESSION = r"S-NANO[1-9][0-9]{0,11}"
#: Formats the routes check by hand (they give their own, clearer 422), stated in the
#: OpenAPI document so clients and schemathesis know them: (location, name) -> pattern.
_PARAMETER_PATTERNS: dict[tuple[str, str], str] = {
    ("path", "accession"): f"^{_ACCESSION}$",
    ("path", "version"): r"^(v?[1-9][0-9]{0,8}|latest)$",
    ("query", "dataset"): rf"^{_ACCESSION}(@v?[1-9][0-9]{{0,8}})?$",
    ("query", "cursor"): r"^[A-Za-z0-9_-]*$",
    ("query", "filter"): r"^[^:]+:.*$",
    ("path", "run_id"): r"^[0-9a-f]{8,32}$",
    ("path", "batch_id"): r"^[0-9a-f]{32}$",
    ("path", "kind"): r"^(user|group)$",
}
#: Where a route's parameter differs from the rule above (path suffix -> pattern).
_PATTERN_EXCEPTIONS: dict[tuple[str, str], tuple[str, str]] = {
    ("path", "accession"): ("/lineage", rf"^{_ACCESSION}(@v?[1-9][0-9]{{0,8}})?$"),
    ("path", "version"): ("/zarr/", r"^[vV]?[1-9][0-9]{0,8}$"),
}


#: Edits need the ETag they start from (428 without it): a header the routes read by hand.
_IF_MATCH = {
    "in": "header",
    "name": "If-Match",
    "required": True,
    "description": "the ETag of the state the edit starts from, or `*` for any state",
    "schema": {"type": "string", "minLength": 1, "maxLength": 200},
}


def _document_formats(app: FastAPI, prefix: str) -> None:
    """Add the parameter formats of :data:`_PARAMETER_PATTERNS`, the ``If-Match``
    header of edits and the answers of admission control to the OpenAPI document."""
    generate = app.openapi

    def openapi() -> dict[str, object]:
        if app.openapi_schema:
            return app.openapi_schema
        doc = generate()
        for path, ops in doc.get("paths", {}).items():
            for op in ops.values():
                for prm in op.get("parameters", ()) if isinstance(op, dict) else ():
                    key = (prm.get("in"), prm.get("name"))
                    pattern = _PARAMETER_PATTERNS.get(key)
                    if pattern is None:
                        continue
                    where, other = _PATTERN_EXCEPTIONS.get(key, ("\0", ""))
                    if where in path:
                        pattern = other
                    schema = prm.setdefault("schema", {})
                    for alt in schema.get("anyOf", [schema]):
                        alt = alt.get("items", alt) if alt.get("type") == "array" else alt
                        if alt.get("type") == "string":
                            alt.setdefault("pattern", pattern)
                if isinstance(op, dict) and "428" in op.get("responses", {}):
                    op.setdefault("parameters", []).append(_IF_MATCH)
        document_admission(doc, prefix)
        app.openapi_schema = doc
        return doc

    app.openapi = openapi  # type: ignore[method-assign]


def create_app(
    settings: Settings | None = None,
    *,
    repo: Repository | None = None,
    hub: HubIdentity | None = None,
    embargo_check_s: float = 3600.0,
) -> FastAPI:
    """Build the service for ``settings`` (default: from the environment)."""
    settings = settings or (repo.settings if repo is not None else Settings.from_env())
    repo = repo or Repository(settings)
    if hub is None and settings.hub_api_url and settings.hub_api_token:
        from nanorepo.service._hub import JupyterHubIdentity

        hub = JupyterHubIdentity(settings)
    state = ServiceState(repo=repo, settings=settings, hub=hub)
    prefix = settings.service_prefix.rstrip("/")

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await asyncio.to_thread(repo.ready)
        task = asyncio.create_task(_release_due_embargoes(state, embargo_check_s))
        # Markdown renders in worker processes with a time budget, never in this process
        # (a hostile post would hold the interpreter and delay every other request).
        pool = RenderPool(budget_s=settings.render_budget_ms / 1000)
        use_render_pool(pool)
        try:
            yield
        finally:
            use_render_pool(None, instead_of=pool)
            pool.close()
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    app = FastAPI(
        title="nanorepo",
        version=__version__,
        summary="Open reference data repository for nanoscopy",
        description=(
            "Datasets, versions, sealed and mutable metadata, images, files, thumbnails, "
            "threaded annotations and a read-only Zarr endpoint. Errors are "
            "`application/problem+json`; edits need `If-Match`; lists are cursor-paginated."
        ),
        lifespan=lifespan,
        dependencies=[Depends(_check_request)],
        docs_url=None,  # the interactive docs load scripts from a CDN: not under our CSP
        redoc_url=None,
        # The hub's proxy forwards /services/nanorepo/... unchanged, so every route lives
        # under the prefix (root_path would be for a proxy that strips it).
        openapi_url=f"{prefix}/openapi.json",
    )
    app.state.nanorepo = state
    install_problem_handlers(app)
    from nanorepo.service import _routes

    for router in _routes.ROUTERS:
        app.include_router(router, prefix=prefix, responses=COMMON_RESPONSES)
    if hub is not None:
        hub.install(app)
    from nanorepo.service._landing import install_landing

    install_landing(app, prefix)
    _document_formats(app, prefix)
    # inside the body limit (which bounds what admission buffers), outside the routes
    app.add_middleware(
        Admission, prefix=prefix, rate=f"{settings.costly_per_minute}/minute",
        slots=settings.costly_slots or os.cpu_count() or 1,
        retry_after_s=settings.render_budget_ms / 1000,
    )  # fmt: skip
    app.add_middleware(
        BodyLimit, limit=settings.max_body_bytes, prefix=prefix,
        own_limit=_routes.STREAMED_UPLOADS, larger=_routes.LARGER_BODIES,
    )  # fmt: skip
    app.add_middleware(SecurityHeaders, cors_origins=settings.cors_origins)
    return app
