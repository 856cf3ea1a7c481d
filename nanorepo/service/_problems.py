"""Errors become HTTP responses here, and only here (RFC 9457 ``application/problem+json``).

Every response body for an error has ``type``, ``title``, ``status`` and a human-readable
``detail`` (the error's message) plus ``hint`` (how to fix it) when the error has one.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse

from nanorepo.errors import (
    AuthenticationRequired,
    Busy,
    ConfigurationError,
    Conflict,
    IntegrityError,
    InvalidInput,
    NanorepoError,
    PathNotAllowed,
    PermissionDenied,
)

__all__ = [
    "INTERNAL_ERROR",
    "INTERNAL_HINT",
    "PROBLEM_MEDIA_TYPE",
    "Unauthenticated",
    "install_problem_handlers",
    "problem",
    "scrub_paths",
]

PROBLEM_MEDIA_TYPE = "application/problem+json"
_log = logging.getLogger("nanorepo.service")
#: What a caller is told of an unexpected error (the details go to the service log only).
INTERNAL_ERROR = "the service failed unexpectedly; the error is in the service log"
INTERNAL_HINT = "try again; if it persists, tell the operator the time of the request"


#: No usable credentials were sent (HTTP 401).
Unauthenticated = AuthenticationRequired


class PreconditionFailed(Conflict):
    """An ``If-Match`` did not match the current ETag (HTTP 412)."""


class PreconditionRequired(NanorepoError, ValueError):
    """An edit came without ``If-Match`` (HTTP 428)."""


class PayloadTooLarge(NanorepoError, ValueError):
    """A request body is larger than the route accepts (HTTP 413)."""


_TITLES = {
    400: "Bad request",
    401: "Authentication required",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    412: "Precondition failed",
    413: "Content too large",
    416: "Range not satisfiable",
    422: "Unprocessable content",
    428: "Precondition required",
    500: "Internal server error",
    503: "Service unavailable",
}


def status_of(exc: NanorepoError) -> int:
    """The HTTP status of a nanorepo error (the one mapping in the code base)."""
    if isinstance(exc, Unauthenticated):
        return 401
    if isinstance(exc, PreconditionRequired):
        return 428
    if isinstance(exc, PreconditionFailed):
        return 412
    if isinstance(exc, PayloadTooLarge):
        return 413
    if isinstance(exc, PermissionDenied | PathNotAllowed):
        return 403
    if isinstance(exc, LookupError):
        return 404
    if isinstance(exc, Conflict):
        return 409
    if isinstance(exc, InvalidInput):
        return 422
    if isinstance(exc, ConnectionError | Busy):  # e.g. the hub is unreachable: try later
        return 503
    if isinstance(exc, IntegrityError | ConfigurationError):
        return 500
    return 400


#: An absolute POSIX path of two or more components (storage, home, staging, /proc ...).
_ABSOLUTE_PATH = re.compile(r"(?<![\w.:/])/(?:[^/\s'\"`<>]+/)+[^/\s'\"`<>]*")


def scrub_paths(text: str) -> str:
    """``text`` with absolute file-system paths replaced by ``<path>``: a 5xx error is the
    operator's to fix, and where storage lives on the server is none of the caller's
    business (it helps an attacker aim at it)."""
    return _ABSOLUTE_PATH.sub("<path>", text)


def problem(
    status: int,
    detail: str,
    *,
    hint: str | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    """A ``problem+json`` response."""
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": _TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
    }
    if hint:
        body["hint"] = hint
    body.update(extra)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_MEDIA_TYPE, headers=headers)


def _allowed(request: Request) -> list[str]:
    """The methods some route of the app answers on this request's path (for ``Allow``:
    Starlette names only those of the first route whose path matched)."""
    from starlette.routing import Match

    methods: set[str] = set()
    for route in request.app.router.routes:
        match, _ = route.matches({**request.scope, "method": "\x00"})
        if match is not Match.NONE:
            methods |= set(getattr(route, "methods", None) or ())
    if "GET" in methods:
        methods.add("HEAD")
    return sorted(methods)


def install_problem_handlers(app: FastAPI) -> None:
    """Map nanorepo errors, validation errors and HTTP errors to problem+json."""

    @app.exception_handler(NanorepoError)
    async def _nanorepo(request: Request, exc: NanorepoError) -> JSONResponse:
        status = status_of(exc)
        message, hint = exc.message, exc.hint
        if status >= 500:  # the operator's problem: the log has it, the caller no paths
            _log.error("%s %s: %s", request.method, request.url.path, exc)
            message, hint = scrub_paths(message), scrub_paths(hint) if hint else None
        headers = {"WWW-Authenticate": "token"} if status == 401 else None
        extra: dict[str, Any] = {}
        current = getattr(exc, "current", None)
        if current is not None:  # a 412 carries the newer state so nothing is lost
            extra["current"] = current
        tag = getattr(exc, "etag", None)
        if tag is not None:  # ... and its ETag, to retry without another GET
            headers = {**(headers or {}), "ETag": tag}
        return problem(status, message, hint=hint, headers=headers, **extra)

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"loc": [str(p) for p in e.get("loc", ())], "msg": str(e.get("msg", ""))}
            for e in exc.errors()
        ]
        where = "; ".join(f"{'.'.join(e['loc'])}: {e['msg']}" for e in errors[:5])
        return problem(
            422,
            f"the request is not valid: {where}",
            hint="see the OpenAPI document at /openapi.json",
            errors=errors,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400 and isinstance(exc.__cause__, RecursionError):
            return problem(
                422,
                "the JSON body nests too deeply to be read",
                hint="flatten the document; no nanorepo resource nests more than 32 levels",
            )
        if exc.status_code == 400 and exc.detail == "There was an error parsing the body":
            return problem(  # FastAPI's answer to a body that is not UTF-8 JSON
                422,
                "the request body could not be read as JSON",
                hint="send a UTF-8 JSON document with Content-Type: application/json",
            )
        detail = exc.detail if isinstance(exc.detail, str) else _TITLES.get(exc.status_code, "")
        headers = getattr(exc, "headers", None)
        if exc.status_code == 405:  # Allow: every method of every route on this path
            headers = {**(headers or {}), "Allow": ", ".join(_allowed(request))}
        return problem(exc.status_code, detail, headers=headers)

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
        return problem(500, INTERNAL_ERROR, hint=INTERNAL_HINT)
