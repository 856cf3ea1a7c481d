"""Authorisation: principals, roles and the one visibility rule for embargoed data."""

from __future__ import annotations

from nanorepo.policy._policy import (
    ANONYMOUS,
    RULES,
    Principal,
    Role,
    allowed,
    embargo_due,
    readable_dataset,
    require,
    visible,
    visible_clause,
)
from nanorepo.policy._tokens import (
    create_token,
    principal_for_token,
    principal_for_user,
    revoke_tokens,
)

__all__ = [
    "ANONYMOUS",
    "RULES",
    "Principal",
    "Role",
    "allowed",
    "create_token",
    "embargo_due",
    "principal_for_token",
    "principal_for_user",
    "readable_dataset",
    "require",
    "revoke_tokens",
    "visible",
    "visible_clause",
]
