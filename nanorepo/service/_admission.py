"""Admission control for costly requests: per-client rate limits and a bound on costly work
in flight, decided before the body is parsed.

Why here, as pure ASGI middleware: the checks run on the event loop before FastAPI reads
and parses a body (which it does on the loop itself) and before a request takes a thread of
the pool, so a refused request costs microseconds and holds nothing. Cheap requests
(``/health``, reads, short posts) are never counted and never wait.

A request is *costly* when its route renders Markdown or validates a large document and
its body is larger than :data:`CHEAP_BODY_BYTES` (or its length is not announced), or when
it is a deposit (reading images and writing Zarr, whatever the body size). Each costly
request is, in order:

1. counted against its client's rate limit (a moving window from the ``limits`` library,
   the one slowapi and Flask-Limiter use): over it, ``429`` problem+json with
   ``Retry-After`` (seconds until the window frees a request), answered after a pause of
   up to ``tarpit_s`` (1 s), as nginx's ``limit_req`` delays excess requests: a client
   that ignores ``Retry-After`` and retries at once is slowed to about one request a
   second per connection, instead of costing the service a refusal every millisecond (a
   pause costs the service a sleeping coroutine, no thread and no CPU). The client is its
   credential (the ``Authorization`` header, hashed), or its IP address without one;
2. admitted only while fewer than ``slots`` requests of its kind are in flight (default:
   one per CPU core): otherwise ``503`` problem+json "busy" with ``Retry-After``, at once.
   A request of the ``render`` kind takes its slot only once its body has arrived (the
   body is at most ``NANOREPO_MAX_BODY_BYTES``), so a client sending slowly holds nothing.

Both answers change nothing, and the client may retry after ``Retry-After`` seconds.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from limits import RateLimitItem, parse
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from nanorepo.service._problems import problem

__all__ = ["CHEAP_BODY_BYTES", "COSTLY_ROUTES", "Admission", "CostlyRoute", "document_admission"]

#: Bodies up to this size are cheap on every route: a post of this size renders in at most
#: ~70 ms of a worker process's CPU (posts up to 256 characters inline in ~10 ms).
CHEAP_BODY_BYTES = 4096


@dataclass(frozen=True)
class CostlyRoute:
    """A route whose work can be costly: ``kind`` names the slots it competes for;
    ``by_size``: cheap when its body is at most :data:`CHEAP_BODY_BYTES`."""

    method: str
    pattern: str
    kind: str
    by_size: bool = True


_ACC = r"/datasets/[^/]+"
#: The routes admission control watches (paths below the service prefix).
COSTLY_ROUTES: tuple[CostlyRoute, ...] = (
    CostlyRoute("POST", _ACC + r"/threads", "render"),  # Markdown of the first post
    CostlyRoute("POST", _ACC + r"/threads/[^/]+/posts", "render"),
    CostlyRoute("PATCH", _ACC + r"/threads/[^/]+/posts/[^/]+", "render"),
    CostlyRoute("POST", _ACC + r"/annotations", "render"),  # W3C import: up to 1,000 renders
    CostlyRoute("PATCH", _ACC + r"/mutable", "render"),  # a metadata document to validate
    CostlyRoute("POST", r"/deposits", "deposit", by_size=False),  # reads images, writes Zarr
    CostlyRoute("POST", r"/deposits/staged", "deposit", by_size=False),
)


class Admission:
    """Rate limits and in-flight slots for :data:`COSTLY_ROUTES` (pure ASGI middleware).

    Parameters
    ----------
    app:
        The application to admit requests to.
    prefix:
        The service prefix the routes live under.
    rate:
        Costly requests one client may make, in ``limits`` notation
        (``NANOREPO_COSTLY_RATE``, e.g. ``"30/minute"``).
    slots:
        Costly requests of one kind in flight at once (``NANOREPO_COSTLY_SLOTS``).
    retry_after_s:
        What a ``503`` tells the client to wait (about one render budget).
    tarpit_s:
        Longest pause before a ``429`` is answered.
    routes:
        The routes to watch (default :data:`COSTLY_ROUTES`).
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        prefix: str,
        rate: str,
        slots: int,
        retry_after_s: float = 1.0,
        tarpit_s: float = 1.0,
        routes: Sequence[CostlyRoute] = COSTLY_ROUTES,
    ) -> None:
        self.app = app
        self.routes = [(r, re.compile(re.escape(prefix) + r.pattern)) for r in routes]
        self.rate: RateLimitItem = parse(rate)
        self.rate_text = rate
        self.limiter = MovingWindowRateLimiter(MemoryStorage())
        self.slots = slots
        self.in_flight: dict[str, int] = {}
        self.retry_after = max(1, math.ceil(retry_after_s))
        self.tarpit_s = tarpit_s

    def _costly(self, scope: Scope) -> CostlyRoute | None:
        method, path = scope["method"], scope["path"]
        route = next((r for r, rx in self.routes if r.method == method and rx.fullmatch(path)),
                     None)  # fmt: skip
        if route is None or not route.by_size:
            return route
        length = next((v for k, v in scope["headers"] if k == b"content-length"), None)
        if length is not None and length.isdigit() and int(length) <= CHEAP_BODY_BYTES:
            return None
        return route

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        route = self._costly(scope)
        if route is None:
            await self.app(scope, receive, send)
            return
        key = _client_key(scope)
        if not self.limiter.hit(self.rate, "costly", key):
            reset = self.limiter.get_window_stats(self.rate, "costly", key).reset_time
            wait = max(1, math.ceil(reset - time.time()))
            await asyncio.sleep(min(self.tarpit_s, wait))
            await problem(
                429,
                f"too many costly requests from this client (at most {self.rate_text} for "
                "posts longer than a note, imports, metadata edits and deposits); nothing "
                "was changed",
                hint=f"wait {wait} s and send it again (NANOREPO_COSTLY_RATE sets the limit)",
                headers={"Retry-After": str(wait)},
                limit=self.rate_text,
            )(scope, receive, send)
            return
        if route.kind == "render":
            body = await _whole_body(receive)
            if isinstance(body, HTTPException):  # over the body limit while it streamed
                await problem(body.status_code, str(body.detail))(scope, receive, send)
                return
            receive = _replay(body, receive)
        if self.in_flight.get(route.kind, 0) >= self.slots:
            await problem(
                503,
                f"the service is busy with as many costly requests ({route.kind}) as it runs "
                "at once; nothing was changed",
                hint=f"send it again in {self.retry_after} s",
                headers={"Retry-After": str(self.retry_after)},
            )(scope, receive, send)
            return
        # one event loop: no other coroutine runs between the check and the increment
        self.in_flight[route.kind] = self.in_flight.get(route.kind, 0) + 1
        held = True

        def release() -> None:
            nonlocal held
            if held:
                held = False
                self.in_flight[route.kind] -= 1

        async def send_then_release(message: Message) -> None:
            # free the slot before the last byte goes out: a client that sends its next
            # request as soon as it has the answer must find the slot free
            if message["type"] == "http.response.body" and not message.get("more_body"):
                release()
            await send(message)

        try:
            await self.app(scope, receive, send_then_release)
        finally:
            release()


def _client_key(scope: Scope) -> str:
    """Who a rate limit counts: the credential (hashed, never kept in clear), else the IP."""
    auth = next((v for k, v in scope["headers"] if k == b"authorization"), None)
    if auth:
        return "credential:" + hashlib.sha256(auth).hexdigest()[:32]
    client = scope.get("client")
    return f"address:{client[0] if client else 'unknown'}"


async def _whole_body(receive: Receive) -> list[Message] | HTTPException:
    """Every message of the request body (bounded by the body limit outside this
    middleware, which raises :class:`HTTPException` 413 past it)."""
    messages: list[Message] = []
    while True:
        try:
            message = await receive()
        except HTTPException as exc:
            return exc
        messages.append(message)
        if message["type"] != "http.request" or not message.get("more_body", False):
            return messages


def _replay(messages: list[Message], receive: Receive) -> Receive:
    """A ``receive`` that hands out ``messages`` first, then defers to the real one (which
    reports a disconnect)."""
    pending = list(messages)

    async def replay() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replay


_RESPONSES: dict[str, dict[str, Any]] = {
    "429": {"description": "Too many costly requests from this client: wait `Retry-After` "
            "seconds (NANOREPO_COSTLY_PER_MINUTE)",
            "content": {"application/problem+json": {"schema": {"type": "object"}}}},
    "503": {"description": "The service is busy with as many costly requests as it runs at "
            "once: send it again after `Retry-After` seconds",
            "content": {"application/problem+json": {"schema": {"type": "object"}}}},
}  # fmt: skip


def document_admission(doc: dict[str, Any], prefix: str) -> None:
    """Add the answers of admission control (429, 503) to the costly operations of an
    OpenAPI document, so clients (and schemathesis) know to expect them."""
    routes = [(r, re.compile(re.escape(prefix) + r.pattern)) for r in COSTLY_ROUTES]
    for path, ops in doc.get("paths", {}).items():
        for method, op in ops.items():
            if not isinstance(op, dict):
                continue
            if any(r.method == method.upper() and rx.fullmatch(path) for r, rx in routes):
                for status, answer in _RESPONSES.items():
                    op.setdefault("responses", {}).setdefault(status, answer)
