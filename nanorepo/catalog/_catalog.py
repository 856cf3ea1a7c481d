"""Catalog operations: the only code that writes catalog rows.

Callers pass a session so that a deposit (dataset, version, images, files, search
document) commits as one transaction on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy import Engine, func, update
from sqlalchemy.exc import IntegrityError as SAIntegrityError
from sqlmodel import Session, col, select

from nanorepo.catalog._db import make_engine, migrate
from nanorepo.catalog.models import (
    Accession,
    Dataset,
    Deposit,
    File,
    FixityEvent,
    Grant,
    Group,
    GroupMember,
    Image,
    MutableRevision,
    User,
    Version,
    utcnow,
)
from nanorepo.errors import (
    Conflict,
    DatasetNotFound,
    IntegrityError,
    InvalidInput,
    VersionNotFound,
)
from nanorepo.storage import check_accession, sha256_hex

__all__ = ["MUTABLE_FIELDS", "Catalog", "ImageRecord", "VersionRecord", "row_id"]


def row_id(row: Any) -> int:
    """The primary key of a flushed row (SQLModel types it ``int | None`` until then)."""
    if row.id is None:
        raise RuntimeError(f"{type(row).__name__} row has no id yet; flush the session first")
    return int(row.id)


_STATES = {"curation_state": {"submitted", "in-review", "curated", "flagged"}}
_PRESERVATION = {"ok", "at-risk", "damaged", "repaired"}
_URL = re.compile(r"https?://[^\s<>\"']+")

#: Mutable (administrative) metadata keys and what each accepts.
MUTABLE_FIELDS: dict[str, str] = {
    "title": "text, 1-500 characters",
    "description": "text",
    "keywords": "comma-separated words",
    "license": "licence identifier, e.g. CC-BY-4.0 or CC0-1.0",
    "links": "comma-separated http(s) URLs (publication, protocol, code)",
    "release_date": "YYYY-MM-DD",
    "curation_state": "one of submitted, in-review, curated, flagged",
    "preservation_state": "one of ok, at-risk, damaged, repaired",
}


def _coerce_mutable(key: str, value: Any) -> Any:
    """Validate and normalise a mutable field value; raises InvalidInput."""
    if key not in MUTABLE_FIELDS:
        raise InvalidInput(
            f"{key!r} is not an editable metadata field",
            hint="editable fields: " + ", ".join(sorted(MUTABLE_FIELDS)),
        )
    if key in {"keywords", "links"} and isinstance(value, str):
        value = [v.strip() for v in value.split(",") if v.strip()]
    if key in {"keywords", "links"}:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise InvalidInput(f"{key} must be a list of strings ({MUTABLE_FIELDS[key]})")
        if key == "links":
            bad = [v for v in value if not _URL.fullmatch(v)]
            if bad:
                raise InvalidInput(f"links must be http(s) URLs, not {bad}")
        return value
    if not isinstance(value, str):
        raise InvalidInput(f"{key} must be text ({MUTABLE_FIELDS[key]})")
    value = value.strip()
    if key == "title" and not 1 <= len(value) <= 500:
        raise InvalidInput("title must have 1 to 500 characters")
    if key == "release_date":
        try:
            date.fromisoformat(value)
        except ValueError:
            raise InvalidInput(f"release_date {value!r} is not a date (YYYY-MM-DD)") from None
    if key == "curation_state" and value not in _STATES["curation_state"]:
        raise InvalidInput(f"curation_state must be {MUTABLE_FIELDS[key]}, not {value!r}")
    if key == "preservation_state" and value not in _PRESERVATION:
        raise InvalidInput(f"preservation_state must be {MUTABLE_FIELDS[key]}, not {value!r}")
    return value


@dataclass
class ImageRecord:
    """What the catalog stores of an image (see :class:`nanorepo.catalog.models.Image`)."""

    name: str
    path: str
    dims: list[str]
    shape: list[int]
    dtype: str
    pixel_sizes: dict[str, float]
    channels: list[dict[str, Any]]
    levels: list[list[int]]
    key_values: dict[str, str]
    technique: str
    manifest_digest: str
    size_bytes: int


@dataclass
class VersionRecord:
    """Everything a new version brings, assembled by deposition before the commit."""

    accession: str
    number: int
    created_by: str
    metadata_json: str
    metadata_digest: str
    manifest_digest: str
    size_bytes: int
    images: list[ImageRecord]
    files: list[dict[str, Any]]
    note: str = ""
    title: str = ""
    access: str = "public"
    embargo_until: date | None = None
    mutable: dict[str, Any] = field(default_factory=dict)


class Catalog:
    """The repository catalog on SQLite or PostgreSQL, migrated on open."""

    def __init__(self, url: str, *, engine: Engine | None = None) -> None:
        self.url = url
        self.engine = engine or make_engine(url)
        migrate(self.engine)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session; commit explicitly, anything uncommitted is rolled back."""
        with Session(self.engine, expire_on_commit=False) as s:
            yield s

    def close(self) -> None:
        self.engine.dispose()

    # -- accessions and deposits -------------------------------------------------------

    def reserve_accession(self, s: Session, deposit_key: str) -> str:
        """The accession for a deposit: the same key always gets the same accession."""
        row = s.exec(select(Accession).where(Accession.deposit_key == deposit_key)).first()
        if row is None:
            row = Accession(deposit_key=deposit_key)
            s.add(row)
            try:
                s.flush()
            except SAIntegrityError:  # a concurrent process reserved it first
                s.rollback()
                row = s.exec(select(Accession).where(Accession.deposit_key == deposit_key)).one()
        return f"S-NANO{row.id}"

    def deposit(self, s: Session, key: str) -> Deposit | None:
        return s.get(Deposit, key)

    def abandon_deposit(self, s: Session, key: str) -> None:
        """Forget a deposit that failed on bad input: its row and its unpublished accession."""
        dep = s.get(Deposit, key)
        if dep is not None and dep.state != "published":
            s.delete(dep)
            if dep.kind == "new":
                acc = s.exec(select(Accession).where(Accession.deposit_key == key)).first()
                if acc is not None:
                    s.delete(acc)
        s.flush()

    def open_deposits(self, s: Session) -> Sequence[Deposit]:
        return s.exec(select(Deposit).where(Deposit.state != "published")).all()

    # -- reading -----------------------------------------------------------------------

    def dataset(self, s: Session, accession: str) -> Dataset:
        check_accession(accession)
        ds = s.exec(select(Dataset).where(Dataset.accession == accession)).first()
        if ds is None:
            raise DatasetNotFound(accession)
        return ds

    def version(self, s: Session, accession: str, number: int | None = None) -> Version:
        """A version (``None``: the latest), with its sealed metadata re-checked."""
        ds = self.dataset(s, accession)
        n = ds.latest_version if number is None else number
        v = s.exec(select(Version).where(Version.dataset_id == ds.id, Version.number == n)).first()
        if v is None:
            raise VersionNotFound(accession, n, ds.latest_version)
        if sha256_hex(v.metadata_json.encode()) != v.metadata_digest:
            raise IntegrityError(
                f"{accession}@v{n}: sealed metadata does not match its digest",
                hint="the catalog row was altered; restore it from versions/vN/metadata.json",
            )
        return v

    def versions(self, s: Session, dataset_id: int) -> Sequence[Version]:
        return s.exec(
            select(Version).where(Version.dataset_id == dataset_id).order_by(col(Version.number))
        ).all()

    def images(self, s: Session, version_id: int) -> Sequence[Image]:
        return s.exec(
            select(Image).where(Image.version_id == version_id).order_by(col(Image.name))
        ).all()

    def files(self, s: Session, version_id: int) -> Sequence[File]:
        return s.exec(
            select(File).where(File.version_id == version_id).order_by(col(File.name))
        ).all()

    def embargoed(self, s: Session) -> Sequence[Dataset]:
        return s.exec(select(Dataset).where(Dataset.access == "embargoed")).all()

    def all_datasets(self, s: Session) -> Sequence[Dataset]:
        return s.exec(select(Dataset).order_by(col(Dataset.id))).all()

    def list_datasets(
        self, s: Session, *, offset: int = 0, limit: int = 100, include_embargoed: bool = True
    ) -> tuple[Sequence[Dataset], int]:
        q = select(Dataset).where(Dataset.state == "active")
        if not include_embargoed:
            q = q.where(Dataset.access == "public")
        total = s.exec(select(func.count()).select_from(q.subquery())).one()
        rows = s.exec(q.order_by(col(Dataset.id)).offset(offset).limit(limit)).all()
        return rows, int(total)

    # -- writing versions --------------------------------------------------------------

    def add_version(self, s: Session, rec: VersionRecord) -> tuple[Dataset, Version]:
        """Add a dataset version (and the dataset, for version 1). Caller commits."""
        ds = s.exec(select(Dataset).where(Dataset.accession == rec.accession)).first()
        if rec.number == 1:
            if ds is not None:
                raise Conflict(f"{rec.accession} exists already")
            mutable = {k: _coerce_mutable(k, v) for k, v in rec.mutable.items()}
            mutable.setdefault("title", rec.title)
            ds = Dataset(
                accession=rec.accession,
                owner=rec.created_by,
                access=rec.access,
                embargo_until=rec.embargo_until,
                latest_version=1,
                title=mutable["title"],
                mutable=mutable,
                mutable_rev=1,
            )
            s.add(ds)
            s.flush()
            for k, v in mutable.items():
                s.add(
                    MutableRevision(
                        dataset_id=row_id(ds), rev=1, key=k, old=None, new=v,
                        who=rec.created_by, reason="deposited",
                    )
                )  # fmt: skip
        else:
            if ds is None:
                raise DatasetNotFound(rec.accession)
            if rec.number != ds.latest_version + 1:
                raise Conflict(
                    f"{rec.accession}: version {rec.number} cannot follow {ds.latest_version}",
                    hint="another revision was published meanwhile; run the command again",
                )
            ds.latest_version = rec.number
            s.add(ds)
        v = Version(
            dataset_id=row_id(ds),
            number=rec.number,
            created_by=rec.created_by,
            note=rec.note,
            metadata_json=rec.metadata_json,
            metadata_digest=rec.metadata_digest,
            manifest_digest=rec.manifest_digest,
            size_bytes=rec.size_bytes,
        )
        s.add(v)
        s.flush()
        for im in rec.images:
            s.add(Image(version_id=row_id(v), **im.__dict__))
        for f in rec.files:
            s.add(File(version_id=row_id(v), **f))
        s.flush()
        return ds, v

    # -- mutable metadata --------------------------------------------------------------

    def set_mutable(
        self,
        s: Session,
        accession: str,
        changes: dict[str, Any],
        *,
        who: str,
        reason: str,
        expected_rev: int | None = None,
    ) -> list[MutableRevision]:
        """Change mutable fields, recording one revision row per changed key.

        ``expected_rev`` implements optimistic locking (the service's ``If-Match``): a stale
        value raises :class:`Conflict` and changes nothing. Caller commits.
        """
        if not reason or not reason.strip():
            raise InvalidInput(
                "a reason is required for every metadata change",
                hint="add --reason 'why this changes' (it is kept in the history)",
            )
        if not changes:
            raise InvalidInput("no changes given", hint="write key=value, e.g. license=CC0-1.0")
        clean = {k: _coerce_mutable(k, v) for k, v in changes.items()}
        ds_id = row_id(self.dataset(s, accession))
        # Optimistic concurrency: the UPDATE only applies if nobody changed the row since we
        # read it (compare-and-set on mutable_rev); otherwise re-read and try again. Works
        # the same on SQLite (no row locks) and PostgreSQL.
        for _attempt in range(100):
            ds = s.exec(
                select(Dataset)
                .where(col(Dataset.id) == ds_id)
                .execution_options(populate_existing=True)
            ).one()
            seen = ds.mutable_rev
            if expected_rev is not None and seen != expected_rev:
                raise Conflict(
                    f"{accession} changed since you read it (revision {seen}, not {expected_rev})",
                    hint="reload, re-apply your change and try again",
                )
            current = dict(ds.mutable)
            revs = []
            for k, new in clean.items():
                if current.get(k) != new:
                    revs.append((k, current.get(k), new))
                    current[k] = new
            if not revs:
                return []
            result = s.execute(
                update(Dataset)
                .where(col(Dataset.id) == ds_id, col(Dataset.mutable_rev) == seen)
                .values(mutable=current, title=current.get("title", ds.title), mutable_rev=seen + 1)
            )
            if getattr(result, "rowcount", 0) != 1:
                continue
            out = [
                MutableRevision(
                    dataset_id=ds_id, rev=seen + 1, key=k, old=old, new=new, who=who,
                    reason=reason.strip(),
                )
                for k, old, new in revs
            ]  # fmt: skip
            s.add_all(out)
            s.flush()
            s.expire(ds)
            return out
        raise Conflict(f"{accession} is being edited by many at once", hint="try again")

    def history(self, s: Session, accession: str) -> Sequence[MutableRevision]:
        ds = self.dataset(s, accession)
        return s.exec(
            select(MutableRevision)
            .where(MutableRevision.dataset_id == ds.id)
            .order_by(col(MutableRevision.rev), col(MutableRevision.id))
        ).all()

    # -- fixity ------------------------------------------------------------------------

    def record_fixity(
        self,
        s: Session,
        version_id: int,
        *,
        who: str,
        ok: bool,
        objects_checked: int,
        bytes_checked: int,
        problems: list[dict[str, Any]],
    ) -> FixityEvent:
        ev = FixityEvent(
            version_id=version_id,
            who=who,
            ok=ok,
            objects_checked=objects_checked,
            bytes_checked=bytes_checked,
            problems=json.loads(json.dumps(problems)),
        )
        s.add(ev)
        s.flush()
        return ev

    # -- users, groups, grants ---------------------------------------------------------

    def ensure_user(self, s: Session, name: str, role: str | None = None) -> User:
        u = s.exec(select(User).where(User.name == name)).first()
        if u is None:
            u = User(name=name, role=role or "reader")
            s.add(u)
            s.flush()
        elif role and u.role != role:
            u.role = role
            s.add(u)
        return u

    def add_to_group(self, s: Session, user: str, group: str) -> None:
        u = self.ensure_user(s, user)
        g = s.exec(select(Group).where(Group.name == group)).first()
        if g is None:
            g = Group(name=group)
            s.add(g)
            s.flush()
        if s.get(GroupMember, (g.id, u.id)) is None:
            s.add(GroupMember(group_id=row_id(g), user_id=row_id(u)))
            s.flush()

    def groups_of(self, s: Session, user: str) -> list[str]:
        rows = s.exec(
            select(Group.name)
            .join(GroupMember, col(GroupMember.group_id) == col(Group.id))
            .join(User, col(User.id) == col(GroupMember.user_id))
            .where(User.name == user)
        ).all()
        return sorted(rows)

    def grant(self, s: Session, accession: str, kind: str, principal: str, *, by: str) -> Grant:
        if kind not in {"user", "group"}:
            raise InvalidInput(f"grants go to a user or a group, not {kind!r}")
        ds = self.dataset(s, accession)
        g = self._find_grant(s, row_id(ds), kind, principal)
        if g is None:
            g = Grant(
                dataset_id=row_id(ds), principal_kind=kind, principal=principal, granted_by=by
            )
            s.add(g)
            s.flush()
        return g

    @staticmethod
    def _find_grant(s: Session, dataset_id: int, kind: str, principal: str) -> Grant | None:
        return s.exec(
            select(Grant).where(
                Grant.dataset_id == dataset_id,
                Grant.principal_kind == kind,
                Grant.principal == principal,
            )
        ).first()

    def grants(self, s: Session, dataset_id: int) -> Sequence[Grant]:
        return s.exec(
            select(Grant).where(Grant.dataset_id == dataset_id).order_by(col(Grant.id))
        ).all()

    def revoke(self, s: Session, accession: str, kind: str, principal: str) -> bool:
        """Remove a grant; returns whether there was one. Caller records and commits."""
        g = self._find_grant(s, row_id(self.dataset(s, accession)), kind, principal)
        if g is None:
            return False
        s.delete(g)
        s.flush()
        return True

    def record_change(
        self, s: Session, accession: str, key: str, old: Any, new: Any, *, who: str, reason: str
    ) -> MutableRevision:
        """Record a change of access (embargo, release, grant) as a dataset revision.

        Bumps ``mutable_rev`` with the same compare-and-set as :meth:`set_mutable`, so the
        dataset's ETag changes and the history shows access changes beside metadata edits.
        """
        ds_id = row_id(self.dataset(s, accession))
        for _attempt in range(100):
            seen = s.exec(
                select(Dataset.mutable_rev)
                .where(col(Dataset.id) == ds_id)
                .execution_options(populate_existing=True)
            ).one()
            result = s.execute(
                update(Dataset)
                .where(col(Dataset.id) == ds_id, col(Dataset.mutable_rev) == seen)
                .values(mutable_rev=seen + 1)
            )
            if getattr(result, "rowcount", 0) == 1:
                rev = MutableRevision(
                    dataset_id=ds_id, rev=seen + 1, key=key, old=old, new=new, who=who,
                    reason=reason.strip() or key,
                )  # fmt: skip
                s.add(rev)
                s.flush()
                return rev
        raise Conflict(f"{accession} is being edited by many at once", hint="try again")

    def set_access(
        self, s: Session, accession: str, access: str, embargo_until: date | None
    ) -> Dataset:
        """Set a dataset's access state (caller moves storage, records and commits)."""
        if access not in {"public", "embargoed"}:
            raise InvalidInput(f"access must be public or embargoed, not {access!r}")
        ds = self.dataset(s, accession)
        ds.access = access
        ds.embargo_until = embargo_until
        s.add(ds)
        s.flush()
        return ds

    def touch_deposit(self, s: Session, dep: Deposit, state: str) -> None:
        dep.state = state
        dep.updated = utcnow()
        s.add(dep)
