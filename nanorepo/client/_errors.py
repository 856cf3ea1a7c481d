"""HTTP error responses of the service, turned back into nanorepo errors.

The service answers every error with ``application/problem+json`` whose ``detail`` says what
is wrong and ``hint`` how to fix it; the client raises the matching class of
:mod:`nanorepo.errors` with exactly that message and hint, so code written against the local
repository catches the same exceptions remotely, and no raw ``httpx`` exception ever reaches a
caller for an HTTP error.
"""

from __future__ import annotations

from typing import Any

import httpx

from nanorepo.errors import (
    AuthenticationRequired,
    ConfigurationError,
    Conflict,
    DatasetNotFound,
    ImageNotFound,
    InvalidInput,
    NanorepoError,
    PermissionDenied,
)

__all__ = ["NotFound", "ServiceError", "error_from_response", "transport_error"]


class NotFound(DatasetNotFound, ImageNotFound):
    """The service answered 404: no such dataset, version, image, file or thread, or one
    the caller may not see (the service says which in the message).

    From the status alone the client cannot tell a missing dataset from a missing image, so
    this is both a :class:`~nanorepo.errors.DatasetNotFound` and an
    :class:`~nanorepo.errors.ImageNotFound` (and a ``LookupError``).
    """

    def __init__(self, message: str, *, hint: str | None = None, accession: str = "") -> None:
        self.accession = accession
        NanorepoError.__init__(self, message, hint=hint)


class ServiceError(NanorepoError, RuntimeError):
    """The service failed (5xx) or answered something that is not an API response."""


def _problem(response: httpx.Response) -> dict[str, Any] | None:
    ctype = response.headers.get("content-type", "")
    if "json" not in ctype:
        return None
    try:
        body = response.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def error_from_response(
    response: httpx.Response, *, accession: str = "", base_url: str = ""
) -> NanorepoError:
    """The nanorepo error an error response stands for (status 400 and above)."""
    status = response.status_code
    body = _problem(response) or {}
    detail = str(body.get("detail") or "").strip()
    hint = body.get("hint")
    hint = str(hint) if hint else None
    if not detail:
        text = " ".join(response.text.split())[:200]
        detail = f"the service at {base_url or response.request.url} answered {status}" + (
            f": {text}" if text else ""
        )
    err: NanorepoError
    if status == 401:
        err = AuthenticationRequired(
            detail,
            hint=(hint + "; " if hint else "")
            + "set NANOREPO_TOKEN (or pass token= to nanorepo.Client) to a valid token",
        )
    elif status == 403:
        err = PermissionDenied(detail, hint=hint)
    elif status == 404:
        err = NotFound(detail, hint=hint, accession=accession)
    elif status in {409, 412}:
        err = Conflict(detail, hint=hint)
    elif status >= 500:
        err = ServiceError(detail, hint=hint or "try again; if it persists, tell the operator")
    elif 400 <= status < 500:
        err = InvalidInput(detail, hint=hint)
    else:  # a redirect or informational answer where data was expected
        err = ServiceError(detail, hint=hint or "check NANOREPO_URL: it must be the service root")
    # what a caller may need besides the message: the status, the newer state of a 412,
    # the per-field problems of a 422
    for attr, value in (("status", status), ("current", body.get("current")),
                        ("errors", body.get("errors"))):  # fmt: skip
        setattr(err, attr, value)
    return err


def transport_error(exc: httpx.TransportError, base_url: str) -> NanorepoError:
    """A connection-level failure, said in terms of what to fix."""
    if isinstance(exc, httpx.ConnectError | httpx.UnsupportedProtocol):
        return ConfigurationError(
            f"cannot reach the nanorepo service at {base_url}: {exc}",
            hint="check NANOREPO_URL (or url=) and that the service is running "
            "(`nanorepo serve` starts one)",
        )
    if isinstance(exc, httpx.TimeoutException):
        return ServiceError(
            f"the nanorepo service at {base_url} did not answer in time ({type(exc).__name__})",
            hint="try again, or pass a longer timeout= to nanorepo.Client",
        )
    return ServiceError(
        f"the connection to the nanorepo service at {base_url} failed: {exc}",
        hint="try again; check the network and NANOREPO_URL",
    )
