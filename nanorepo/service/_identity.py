"""Who is calling: standalone tokens, JupyterHub tokens and OAuth cookies, or nobody.

Credentials are read from ``Authorization: token <t>`` (what JupyterHub clients send) or
``Authorization: Bearer <t>``; never from the query string, so tokens stay out of logs.
Tokens issued by ``nanorepo token create`` (prefix ``nr_``) are checked against the
catalog; inside a hub every other token, and the browser's OAuth cookie, is checked by
the hub (:mod:`nanorepo.service._hub`). Without credentials the caller is anonymous,
which sees public data only, and only when the setting allows it.
"""

from __future__ import annotations

from typing import Protocol

from fastapi import FastAPI, Request
from sqlmodel import Session

from nanorepo.policy import ANONYMOUS, Principal, principal_for_token
from nanorepo.service._problems import Unauthenticated

__all__ = ["HubIdentity", "bearer_token", "resolve_principal"]


class HubIdentity(Protocol):
    """Identity from a JupyterHub (implemented in :mod:`nanorepo.service._hub`)."""

    def principal_for_token(self, s: Session, token: str) -> Principal | None: ...

    def principal_for_cookie(self, s: Session, request: Request) -> Principal | None: ...

    def install(self, app: FastAPI) -> None:
        """Add the routes the hub's OAuth flow needs (login, callback)."""


def bearer_token(request: Request) -> str | None:
    """The token of an ``Authorization: token ...`` or ``Bearer ...`` header."""
    header = request.headers.get("authorization")
    if not header:
        return None
    scheme, _, value = header.strip().partition(" ")
    if scheme.lower() not in {"token", "bearer"} or not value.strip():
        raise Unauthenticated(
            "the Authorization header must be `token <token>` or `Bearer <token>`",
            hint="create a token with `nanorepo token create USER` (or use your hub token)",
        )
    return value.strip()


def resolve_principal(
    request: Request, s: Session, *, hub: HubIdentity | None, allow_anonymous: bool
) -> Principal:
    """The principal of ``request``; 401 for a bad token or when anonymity is off."""
    token = bearer_token(request)
    if token is not None:
        p = principal_for_token(s, token)
        if p is None and hub is not None and not token.startswith("nr_"):
            p = hub.principal_for_token(s, token)
        if p is None:
            raise Unauthenticated(
                "the token is not valid (unknown, revoked or expired)",
                hint="create a new one with `nanorepo token create USER`, or use your hub token",
            )
        return p
    if hub is not None:
        p = hub.principal_for_cookie(s, request)
        if p is not None:
            return p
    if not allow_anonymous:
        how = "send `Authorization: token <token>`"
        if hub is not None:
            how += f", or sign in in a browser at {request.scope.get('root_path', '')}login"
        raise Unauthenticated("this repository requires signing in", hint=how)
    return ANONYMOUS
