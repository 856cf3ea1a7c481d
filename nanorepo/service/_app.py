"""The nanorepo REST service: a FastAPI application over one :class:`Repository`.

Run standalone with ``nanorepo serve`` or as a JupyterHub managed service (the app is then
mounted under ``JUPYTERHUB_SERVICE_PREFIX`` and identities come from the hub). FastAPI is
the chosen framework for its OpenAPI document generated from typed routes (what
schemathesis tests against) and Starlette's Range-capable file responses.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import date
from typing import Annotated

from fastapi import Depends, FastAPI, Request
from sqlmodel import Session
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from nanorepo import __version__
from nanorepo.policy import Principal
from nanorepo.repository import Repository
from nanorepo.service._identity import HubIdentity, resolve_principal
from nanorepo.service._problems import install_problem_handlers
from nanorepo.service._schemas import COMMON_RESPONSES
from nanorepo.settings import Settings

__all__ = ["CurrentPrincipal", "DbSession", "ServiceState", "create_app", "state_of"]

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

        await self.app(scope, receive, send_with_headers)


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


async def _release_due_embargoes(state: ServiceState, every_s: float) -> None:
    """Release embargoes whose date has come, at start and then periodically."""
    while True:
        try:
            await asyncio.to_thread(state.repo.release_due, date.today())
        except Exception:  # keep serving; the next round tries again
            import logging

            logging.getLogger("nanorepo.service").exception("releasing due embargoes failed")
        await asyncio.sleep(every_s)


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
        try:
            yield
        finally:
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
    app.add_middleware(SecurityHeaders, cors_origins=settings.cors_origins)
    return app
