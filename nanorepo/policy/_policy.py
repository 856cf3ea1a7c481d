"""Who may do what: principals, roles, and the visibility rule for embargoed data.

Every channel of the service (lists, details, search and facets, thumbnails, files, the
Zarr endpoint, annotations, provenance, exports) asks the same two questions here:
*may this principal see this dataset?* (:func:`visible`, :func:`readable_dataset`) and
*may they change it?* (:func:`require`). Keeping the rule in one module is what makes
"no leak on any channel" testable.

A dataset the caller may not see is reported exactly like one that does not exist
(:class:`~nanorepo.errors.DatasetNotFound`, HTTP 404 with the same text), so an error
never tells an outsider that an embargoed accession exists.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from enum import IntEnum

from sqlalchemy import ColumnElement, or_, true
from sqlmodel import Session, col, select

from nanorepo.catalog.models import Dataset, Grant
from nanorepo.errors import (
    AuthenticationRequired,
    DatasetNotFound,
    InvalidInput,
    PermissionDenied,
)

__all__ = [
    "ANONYMOUS",
    "RULES",
    "Principal",
    "Role",
    "allowed",
    "embargo_due",
    "readable_dataset",
    "require",
    "visible",
    "visible_clause",
]


class Role(IntEnum):
    """Repository roles, each including the rights of the ones before it.

    ``depositor`` may deposit and owns what they deposit; ``curator`` edits any dataset's
    administrative metadata, moderates threads, releases embargoes and sees embargoed
    datasets to do so; ``admin`` additionally manages users and grants everywhere.
    """

    anonymous = 0
    reader = 1
    depositor = 2
    curator = 3
    admin = 4

    @classmethod
    def parse(cls, name: str) -> Role:
        try:
            return cls[name]
        except KeyError:
            raise InvalidInput(
                f"{name!r} is not a role",
                hint="roles: " + ", ".join(r.name for r in cls if r is not cls.anonymous),
            ) from None


@dataclass(frozen=True)
class Principal:
    """The identity a request acts as: user name (``None`` when anonymous), role, groups."""

    name: str | None
    role: Role = Role.reader
    groups: frozenset[str] = field(default_factory=frozenset)

    @property
    def authenticated(self) -> bool:
        return self.name is not None

    @property
    def privileged(self) -> bool:
        """Curators and admins see every dataset (to curate and release it)."""
        return self.role >= Role.curator

    def __str__(self) -> str:
        return self.name or "anonymous"


ANONYMOUS = Principal(None, Role.anonymous)


#: Actions on a dataset and the rule each follows (owner = the depositor who owns it).
RULES: dict[str, str] = {
    "read": "anyone who can see the dataset",
    "annotate": "any signed-in user who can see the dataset",
    "edit": "the owner, curators and admins",
    "grant": "the owner, curators and admins",
    "release": "the owner, curators and admins",
    "embargo": "curators and admins",
    "moderate": "curators and admins",
    "revise": "the owner, curators and admins",
    "deposit": "depositors, curators and admins",
    "admin": "admins",
}


def _has_grant(s: Session, p: Principal, dataset_id: int) -> bool:
    if not p.authenticated:
        return False
    q = select(Grant.id).where(Grant.dataset_id == dataset_id, _grant_match(p))
    return s.exec(q.limit(1)).first() is not None


def _grant_match(p: Principal) -> ColumnElement[bool]:
    user = (col(Grant.principal_kind) == "user") & (col(Grant.principal) == p.name)
    if not p.groups:
        return user
    return or_(
        user,
        (col(Grant.principal_kind) == "group") & col(Grant.principal).in_(sorted(p.groups)),
    )


def visible_clause(p: Principal) -> ColumnElement[bool]:
    """A WHERE clause on :class:`Dataset` selecting the datasets ``p`` may see.

    Used by every list, search and facet query so counts never include what the caller
    cannot see.
    """
    if p.privileged:
        return true()
    public = col(Dataset.access) == "public"
    if not p.authenticated:
        return public
    granted = col(Dataset.id).in_(select(Grant.dataset_id).where(_grant_match(p)))
    return or_(public, col(Dataset.owner) == p.name, granted)


def visible(s: Session, p: Principal, ds: Dataset) -> bool:
    """Whether ``p`` may see ``ds`` (public, owned, granted, or privileged)."""
    if ds.state == "takedown" and not p.privileged:
        return False
    if ds.access == "public" or p.privileged:
        return True
    if not p.authenticated:
        return False
    return ds.owner == p.name or _has_grant(s, p, ds.id or 0)


def readable_dataset(s: Session, p: Principal, accession: str) -> Dataset:
    """The dataset ``accession`` if ``p`` may see it; otherwise the same
    :class:`DatasetNotFound` a non-existent accession gets."""
    ds = s.exec(select(Dataset).where(Dataset.accession == accession)).first()
    if ds is None or not visible(s, p, ds):
        raise DatasetNotFound(accession)
    return ds


def allowed(s: Session, p: Principal, action: str, ds: Dataset | None = None) -> bool:
    """Whether ``p`` may do ``action`` (on ``ds``, which the caller already may see)."""
    if action == "deposit":
        return p.role >= Role.depositor
    if action == "admin":
        return p.role >= Role.admin
    if ds is None:
        raise ValueError(f"action {action!r} needs a dataset")
    if not visible(s, p, ds):
        return False
    if action == "read":
        return True
    if not p.authenticated:
        return False
    if action == "annotate":
        return True
    if action in {"embargo", "moderate"}:
        return p.privileged
    if action in {"edit", "grant", "release", "revise"}:
        return p.privileged or ds.owner == p.name
    raise ValueError(f"unknown action {action!r}")


def require(s: Session, p: Principal, action: str, ds: Dataset | None = None) -> None:
    """Raise :class:`PermissionDenied` (or ``DatasetNotFound`` for what ``p`` cannot see)."""
    if ds is not None and not visible(s, p, ds):
        raise DatasetNotFound(ds.accession)
    if allowed(s, p, action, ds):
        return
    if not p.authenticated:
        raise AuthenticationRequired(
            f"signing in is required to {action}",
            hint="send a token: `Authorization: token <token>` (nanorepo token create USER)",
        )
    who = RULES.get(action, action)
    target = f" {ds.accession}" if ds is not None else ""
    raise PermissionDenied(
        f"{p.name} may not {action}{target}: only {who} may",
        hint="ask the dataset's owner or a curator",
    )


def embargo_due(ds: Dataset, today: date) -> bool:
    """Whether an embargoed dataset's embargo has ended by ``today``."""
    return ds.access == "embargoed" and ds.embargo_until is not None and ds.embargo_until <= today
