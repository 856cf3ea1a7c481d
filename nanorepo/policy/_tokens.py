"""Standalone API tokens: issued by ``nanorepo token create``, stored hashed.

Used when the service runs without JupyterHub (inside a hub, hub tokens are checked by the
hub instead). A token is 32 random bytes (URL-safe text prefixed ``nr_``); the catalog
keeps its SHA-256 and a short prefix for lookup, never the token itself, so a copy of the
database gives nobody access.
"""

from __future__ import annotations

import hmac
import secrets
from datetime import datetime, timedelta

from sqlmodel import Session, col, select

from nanorepo.catalog.models import ApiToken, Group, GroupMember, User, utcnow
from nanorepo.errors import InvalidInput
from nanorepo.policy._policy import Principal, Role
from nanorepo.storage import sha256_hex

__all__ = ["create_token", "principal_for_token", "principal_for_user", "revoke_tokens"]

_PREFIX = "nr_"
_USER_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._@+-")


def _check_user(name: str) -> str:
    if not name or len(name) > 255 or not set(name) <= _USER_CHARS:
        raise InvalidInput(
            f"{name!r} is not a valid user name",
            hint="use letters, digits and . _ @ + - (as JupyterHub user names)",
        )
    return name


def create_token(
    s: Session,
    user: str,
    *,
    role: Role | None = None,
    note: str = "",
    expires_in: timedelta | None = None,
) -> str:
    """Issue a token for ``user`` (created if new; ``role`` sets their role). Caller commits.

    Returns the token text; it is shown once and cannot be recovered later.
    """
    _check_user(user)
    u = s.exec(select(User).where(User.name == user)).first()
    if u is None:
        u = User(name=user, role=(role or Role.reader).name)
        s.add(u)
    elif role is not None:
        u.role = role.name
        s.add(u)
    token = _PREFIX + secrets.token_urlsafe(32)
    s.add(
        ApiToken(
            user=user,
            prefix=token[:10],
            sha256=sha256_hex(token.encode()),
            note=note[:255],
            expires=utcnow() + expires_in if expires_in else None,
        )
    )
    s.flush()
    return token


def revoke_tokens(s: Session, user: str) -> int:
    """Revoke every token of ``user``; returns how many were live. Caller commits."""
    rows = s.exec(
        select(ApiToken).where(ApiToken.user == user, col(ApiToken.revoked).is_(False))
    ).all()
    for r in rows:
        r.revoked = True
        s.add(r)
    return len(rows)


def principal_for_user(s: Session, name: str, *, admin: bool = False) -> Principal:
    """The principal of a known user name: role from the catalog, groups from membership.

    ``admin`` (a hub admin) raises the role to admin whatever the catalog says.
    """
    u = s.exec(select(User).where(User.name == name)).first()
    role = Role.parse(u.role) if u is not None else Role.reader
    if admin:
        role = Role.admin
    groups: frozenset[str] = frozenset()
    if u is not None and u.id is not None:
        groups = frozenset(
            s.exec(
                select(Group.name)
                .join(GroupMember, col(GroupMember.group_id) == col(Group.id))
                .where(GroupMember.user_id == u.id)
            ).all()
        )
    return Principal(name, role, groups)


def principal_for_token(s: Session, token: str, *, now: datetime | None = None) -> Principal | None:
    """The principal a standalone token stands for, or ``None`` if it is unknown, revoked or
    expired. Compares digests in constant time."""
    if not token.startswith(_PREFIX) or len(token) > 200:
        return None
    digest = sha256_hex(token.encode())
    row = s.exec(select(ApiToken).where(ApiToken.prefix == token[:10])).all()
    match = next((r for r in row if hmac.compare_digest(r.sha256, digest)), None)
    if match is None or match.revoked:
        return None
    now = now or utcnow()
    if match.expires is not None and match.expires <= now:
        return None
    return principal_for_user(s, match.user)
