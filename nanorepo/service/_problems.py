"""Errors become HTTP responses here, and only here (RFC 9457 ``application/problem+json``).

Every response body for an error has ``type``, ``title``, ``status`` and a human-readable
``detail`` (the error's message) plus ``hint`` (how to fix it) when the error has one.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse

from nanorepo.errors import (
    AuthenticationRequired,
    ConfigurationError,
    Conflict,
    IntegrityError,
    InvalidInput,
    NanorepoError,
    PathNotAllowed,
    PermissionDenied,
)

__all__ = ["PROBLEM_MEDIA_TYPE", "Unauthenticated", "install_problem_handlers", "problem"]

PROBLEM_MEDIA_TYPE = "application/problem+json"


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
    if isinstance(exc, ConnectionError):  # e.g. the hub is unreachable: try again later
        return 503
    if isinstance(exc, IntegrityError | ConfigurationError):
        return 500
    return 400


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


def install_problem_handlers(app: FastAPI) -> None:
    """Map nanorepo errors, validation errors and HTTP errors to problem+json."""

    @app.exception_handler(NanorepoError)
    async def _nanorepo(_request: Request, exc: NanorepoError) -> JSONResponse:
        status = status_of(exc)
        headers = {"WWW-Authenticate": "token"} if status == 401 else None
        extra: dict[str, Any] = {}
        current = getattr(exc, "current", None)
        if current is not None:  # a 412 carries the newer state so nothing is lost
            extra["current"] = current
        tag = getattr(exc, "etag", None)
        if tag is not None:  # ... and its ETag, to retry without another GET
            headers = {**(headers or {}), "ETag": tag}
        return problem(status, exc.message, hint=exc.hint, headers=headers, **extra)

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
    async def _http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = exc.detail if isinstance(exc.detail, str) else _TITLES.get(exc.status_code, "")
        return problem(exc.status_code, detail, headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
        return problem(
            500,
            "the service failed unexpectedly; the error is in the service log",
            hint="try again; if it persists, tell the operator the time of the request",
        )
