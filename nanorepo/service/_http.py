"""HTTP conventions shared by every route: ETags, ``If-Match``, cursors, pages.

Edits are optimistic: a client reads a resource (getting its ETag), sends the edit with
``If-Match: <etag>``; a stale ETag gets 412 with the current state, a missing one 428.
Lists are paginated by opaque cursors (base64url JSON of the last key seen), which stay
correct while rows are added, unlike offsets.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from fastapi import Request, Response

from nanorepo.errors import InvalidInput
from nanorepo.service._problems import PreconditionFailed, PreconditionRequired

__all__ = [
    "check_if_match",
    "decode_cursor",
    "encode_cursor",
    "etag",
    "not_modified",
    "set_etag",
]


def etag(*parts: object) -> str:
    """A strong ETag from the parts that identify a resource's state."""
    return '"' + "-".join(str(p) for p in parts) + '"'


def set_etag(response: Response, tag: str, *, cache: str = "no-cache") -> None:
    """Attach the ETag and a cache policy (``no-cache``: revalidate every time)."""
    response.headers["ETag"] = tag
    response.headers["Cache-Control"] = cache


def _tags(header: str) -> list[str]:
    return [t.strip().removeprefix("W/") for t in header.split(",") if t.strip()]


def not_modified(request: Request, tag: str) -> bool:
    """Whether ``If-None-Match`` already names ``tag`` (answer 304)."""
    header = request.headers.get("if-none-match")
    return header is not None and (header.strip() == "*" or tag in _tags(header))


def check_if_match(request: Request, current: str, *, what: str, state: Any = None) -> bool:
    """Require ``If-Match`` to name the current ETag (428 when absent, 412 when stale).

    ``state`` (the resource as it is now) is returned with the 412 so the client can show
    the newer version and nothing typed is lost.

    Returns
    -------
    bool
        ``True`` for ``If-Match: *`` (RFC 9110: "any current state"): the caller then edits
        whatever state is current, without a revision check, so a concurrent edit can
        never turn it into a 412.
    """
    header = request.headers.get("if-match")
    if header is None:
        raise PreconditionRequired(
            f"editing {what} needs an If-Match header",
            hint=f"GET {what} first and send its ETag as If-Match (it is {current} now)",
        )
    if header.strip() == "*" or "*" in _tags(header):
        return True
    if current in _tags(header):
        return False
    err = PreconditionFailed(
        f"{what} changed since you read it (ETag is now {current})",
        hint="reload, re-apply your change and send it with the new ETag",
    )
    err.current = state  # type: ignore[attr-defined]
    err.etag = current  # type: ignore[attr-defined]
    raise err


def encode_cursor(key: dict[str, Any]) -> str:
    raw = json.dumps(key, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> dict[str, Any] | None:
    """The key a cursor stands for; a cursor the service did not make is a 422."""
    if not cursor:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        key = json.loads(raw)
    except (binascii.Error, ValueError, UnicodeDecodeError):
        key = None
    if not isinstance(key, dict):
        raise InvalidInput(
            f"cursor {cursor[:40]!r} is not one this service issued",
            hint="pass the `next` value of the previous page unchanged, or omit it",
        )
    return key
