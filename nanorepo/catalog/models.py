"""Catalog tables (SQLModel).

One module holds every table so the schema reads in one place; Alembic migrations in
``migrations/`` create them. JSON columns hold structures that are read whole (shapes,
channel lists, key/value metadata); anything filtered or joined on is a real column.

Immutable metadata is stored as the exact canonical JSON text that was sealed, next to
its SHA-256, so the seal can be re-checked on every read without re-serialising.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import JSON, Column, ForeignKey, Index, Integer, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

__all__ = [
    "Accession",
    "ApiToken",
    "Dataset",
    "DatasetField",
    "Deposit",
    "File",
    "FixityEvent",
    "Grant",
    "Group",
    "GroupMember",
    "Image",
    "ImageKeyValue",
    "MutableRevision",
    "Post",
    "PostRevision",
    "Run",
    "RunBatch",
    "RunDerived",
    "RunEnvironment",
    "RunInput",
    "RunOutput",
    "SearchDoc",
    "Thread",
    "ThreadEvent",
    "User",
    "Version",
    "utcnow",
]


def utcnow() -> datetime:
    """Timezone-aware now; every timestamp in the catalog is UTC."""
    return datetime.now(UTC)


class User(SQLModel, table=True):
    """An identity; names come from JupyterHub (or standalone tokens)."""

    __tablename__ = "user"
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(index=True, unique=True, max_length=255)
    role: str = Field(default="reader", max_length=32)  # reader | depositor | curator | admin
    created: datetime = Field(default_factory=utcnow)


class Group(SQLModel, table=True):
    __tablename__ = "group"
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(index=True, unique=True, max_length=255)


class GroupMember(SQLModel, table=True):
    __tablename__ = "group_member"
    group_id: int = Field(foreign_key="group.id", primary_key=True)
    user_id: int = Field(foreign_key="user.id", primary_key=True)


class Grant(SQLModel, table=True):
    """Access to an embargoed dataset for a user or a group."""

    __tablename__ = "grant"
    __table_args__ = (UniqueConstraint("dataset_id", "principal_kind", "principal"),)
    id: int | None = Field(default=None, primary_key=True)
    dataset_id: int = Field(foreign_key="dataset.id", index=True)
    principal_kind: str = Field(max_length=8)  # user | group
    principal: str = Field(max_length=255)
    granted_by: str = Field(max_length=255)
    created: datetime = Field(default_factory=utcnow)


class Accession(SQLModel, table=True):
    """Accession numbers handed out; the row id is the number, so it never repeats."""

    __tablename__ = "accession"
    id: int | None = Field(default=None, primary_key=True)
    deposit_key: str = Field(index=True, unique=True, max_length=64)
    created: datetime = Field(default_factory=utcnow)


class Deposit(SQLModel, table=True):
    """A deposit or revision in progress; lets an interrupted one resume."""

    __tablename__ = "deposit"
    key: str = Field(primary_key=True, max_length=64)
    accession: str = Field(index=True, max_length=32)
    kind: str = Field(max_length=16)  # new | revision
    version: int
    state: str = Field(default="staging", max_length=16)  # staging | publishing | published
    owner: str = Field(max_length=255)
    created: datetime = Field(default_factory=utcnow)
    updated: datetime = Field(default_factory=utcnow)


class Dataset(SQLModel, table=True):
    """A dataset: stable accession, owner, access state and current mutable metadata."""

    __tablename__ = "dataset"
    id: int | None = Field(default=None, primary_key=True)
    accession: str = Field(index=True, unique=True, max_length=32)
    owner: str = Field(max_length=255)
    created: datetime = Field(default_factory=utcnow)
    access: str = Field(default="public", max_length=16)  # public | embargoed
    embargo_until: date | None = None
    state: str = Field(default="active", max_length=16)  # active | withdrawn | takedown
    latest_version: int = 1
    title: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    mutable: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    mutable_rev: int = 0


class Version(SQLModel, table=True):
    """One published, immutable version of a dataset."""

    __tablename__ = "version"
    __table_args__ = (UniqueConstraint("dataset_id", "number"),)
    id: int | None = Field(default=None, primary_key=True)
    dataset_id: int = Field(foreign_key="dataset.id", index=True)
    number: int
    created: datetime = Field(default_factory=utcnow)
    created_by: str = Field(max_length=255)
    note: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    metadata_json: str = Field(sa_column=Column(Text, nullable=False))
    metadata_digest: str = Field(max_length=64)
    manifest_digest: str = Field(max_length=64)
    size_bytes: int = 0


class Image(SQLModel, table=True):
    """One OME-Zarr multiscale image of a version (shared by later versions when unchanged)."""

    __tablename__ = "image"
    __table_args__ = (UniqueConstraint("version_id", "name"),)
    id: int | None = Field(default=None, primary_key=True)
    version_id: int = Field(foreign_key="version.id", index=True)
    name: str = Field(max_length=128)
    path: str = Field(max_length=512)  # relative to the dataset directory
    dims: list[str] = Field(sa_column=Column(JSON, nullable=False))
    shape: list[int] = Field(sa_column=Column(JSON, nullable=False))
    dtype: str = Field(max_length=16)
    pixel_sizes: dict[str, float] = Field(sa_column=Column(JSON, nullable=False))
    channels: list[dict[str, Any]] = Field(sa_column=Column(JSON, nullable=False))
    levels: list[list[int]] = Field(sa_column=Column(JSON, nullable=False))
    key_values: dict[str, str] = Field(sa_column=Column(JSON, nullable=False))
    technique: str = Field(default="", max_length=64)
    manifest_digest: str = Field(max_length=64)
    size_bytes: int = 0


class ImageKeyValue(SQLModel, table=True):
    """One pair of an image's file-level key/value metadata, as an indexed row.

    A side table derived from :attr:`Image.key_values`, which stays the source of truth
    (the API returns it): the image table filters and sorts on these rows through indexes
    instead of reading every image's JSON. Database triggers (migration 0005) write the
    rows in the same statement that writes the image, on SQLite and PostgreSQL alike, so
    every way an image row is written (a deposit, a bulk insert) keeps them in step;
    deleting an image deletes its rows (``ON DELETE CASCADE``).

    ``value`` is the text the JSON functions return for the key (``json_extract`` on
    SQLite, ``->>`` on PostgreSQL; SQL NULL for a JSON ``null``) and ``value_lower`` is the
    database's own ``lower()`` of it, the form a ``KEY:VALUE`` filter compares: ``lower()``
    is ASCII-only on SQLite and Unicode-aware on PostgreSQL, so computing it in Python would
    match differently from the JSON filter it replaces. ``version_id`` repeats the image's,
    so a filter is one index range per key: ``(version_id, key, value_lower)``. On SQLite
    the table is ``WITHOUT ROWID``, clustered by ``(image_id, key)``, so the sort value of
    an image is one lookup that reads no other page.
    """

    __tablename__ = "image_key_value"
    __table_args__ = (
        Index("ix_image_key_value_match", "version_id", "key", "value_lower", "image_id"),
        {"sqlite_with_rowid": False},
    )
    image_id: int = Field(
        sa_column=Column(
            Integer, ForeignKey("image.id", ondelete="CASCADE"), primary_key=True, nullable=False
        )
    )
    key: str = Field(sa_column=Column(Text, primary_key=True, nullable=False))
    version_id: int = Field(foreign_key="version.id")
    value: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    value_lower: str | None = Field(default=None, sa_column=Column(Text, nullable=True))


class File(SQLModel, table=True):
    """Any other stored file of a version: originals, localisation tables, ground truth."""

    __tablename__ = "file"
    __table_args__ = (UniqueConstraint("version_id", "name"),)
    id: int | None = Field(default=None, primary_key=True)
    version_id: int = Field(foreign_key="version.id", index=True)
    name: str = Field(max_length=512)
    path: str = Field(max_length=512)  # relative to the dataset directory
    role: str = Field(max_length=32)  # original | localisations | supporting | ome-xml
    media_type: str = Field(max_length=128)
    size_bytes: int
    sha256: str = Field(max_length=64)
    summary: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


class MutableRevision(SQLModel, table=True):
    """One change of a mutable metadata field: who, when, old, new, why."""

    __tablename__ = "mutable_revision"
    id: int | None = Field(default=None, primary_key=True)
    dataset_id: int = Field(foreign_key="dataset.id", index=True)
    rev: int
    key: str = Field(max_length=64)
    old: Any = Field(default=None, sa_column=Column(JSON, nullable=True))
    new: Any = Field(default=None, sa_column=Column(JSON, nullable=True))
    who: str = Field(max_length=255)
    when: datetime = Field(default_factory=utcnow)
    reason: str = Field(sa_column=Column(Text, nullable=False))


class FixityEvent(SQLModel, table=True):
    """Result of one fixity check of a version: what was checked and what was wrong."""

    __tablename__ = "fixity_event"
    id: int | None = Field(default=None, primary_key=True)
    version_id: int = Field(foreign_key="version.id", index=True)
    when: datetime = Field(default_factory=utcnow)
    who: str = Field(max_length=255)
    ok: bool
    objects_checked: int
    bytes_checked: int
    problems: list[dict[str, Any]] = Field(sa_column=Column(JSON, nullable=False))


class SearchDoc(SQLModel, table=True):
    """Full-text document of a dataset (latest version + mutable metadata).

    SQLite indexes ``text`` with an FTS5 table kept in step by triggers; PostgreSQL with a
    GIN index over ``to_tsvector``. Both are created by the migrations.
    """

    __tablename__ = "search_doc"
    dataset_id: int = Field(foreign_key="dataset.id", primary_key=True)
    text: str = Field(sa_column=Column(Text, nullable=False))


class DatasetField(SQLModel, table=True):
    """A filterable field value of a dataset (technique, organism, licence, ...); facets."""

    __tablename__ = "dataset_field"
    __table_args__ = (
        Index("ix_dataset_field_field_value", "field", "value"),
        # Covering indexes of search filters and facet counts (migration 0003): by value
        # for filters and whole-catalog counts, by dataset for counts over a result set.
        Index("ix_dataset_field_facet", "field", "value", "dataset_id", "display"),
        Index("ix_dataset_field_dataset_facet", "dataset_id", "field", "value", "display"),
    )
    id: int | None = Field(default=None, primary_key=True)
    dataset_id: int = Field(foreign_key="dataset.id", index=True)
    field: str = Field(max_length=32)
    value: str = Field(max_length=255)  # lower-cased for matching
    display: str = Field(max_length=255)  # as written, for facets


class ApiToken(SQLModel, table=True):
    """A standalone-service API token (``nanorepo token create``); only its hash is kept.

    Tokens are 256-bit random strings, so an unsalted SHA-256 is a safe hash (as for
    JupyterHub's own API tokens); ``prefix`` finds the row without scanning.
    """

    __tablename__ = "api_token"
    id: int | None = Field(default=None, primary_key=True)
    user: str = Field(index=True, max_length=255)
    prefix: str = Field(index=True, max_length=16)
    sha256: str = Field(unique=True, max_length=64)
    note: str = Field(default="", max_length=255)
    created: datetime = Field(default_factory=utcnow)
    expires: datetime | None = None
    last_used: datetime | None = None
    revoked: bool = False


class Thread(SQLModel, table=True):
    """An annotation thread anchored to a dataset, an image, or a region of an image.

    ``anchor`` is the physical-unit target (see :mod:`nanorepo.annotations`): region
    coordinates are in the image's units (nm), so they hold at every pyramid level and in
    later versions. ``version`` is the dataset version the thread was written against.
    ``rev`` counts changes (the ETag); every change is a :class:`ThreadEvent`.
    """

    __tablename__ = "thread"
    id: int | None = Field(default=None, primary_key=True)
    dataset_id: int = Field(foreign_key="dataset.id", index=True)
    version: int
    image: str | None = Field(default=None, max_length=128)
    anchor: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    title: str = Field(sa_column=Column(Text, nullable=False))
    motivation: str = Field(default="commenting", max_length=32)
    tags: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    status: str = Field(default="open", max_length=16)  # open | resolved
    state: str = Field(default="active", max_length=16)  # active | deleted
    created_by: str = Field(max_length=255)
    created: datetime = Field(default_factory=utcnow)
    updated: datetime = Field(default_factory=utcnow)
    rev: int = 1


class ThreadEvent(SQLModel, table=True):
    """One change of a thread (resolve, reopen, retitle, tags, delete): who, when, old, new."""

    __tablename__ = "thread_event"
    id: int | None = Field(default=None, primary_key=True)
    thread_id: int = Field(foreign_key="thread.id", index=True)
    rev: int
    what: str = Field(max_length=32)
    old: Any = Field(default=None, sa_column=Column(JSON, nullable=True))
    new: Any = Field(default=None, sa_column=Column(JSON, nullable=True))
    who: str = Field(max_length=255)
    when: datetime = Field(default_factory=utcnow)


class Post(SQLModel, table=True):
    """A post of a thread (the first one opens it; ``parent_id`` makes replies).

    ``body`` is the author's Markdown as written; ``html`` is its sanitised rendering, the
    only form that reaches a browser. Every edit keeps the previous text as a
    :class:`PostRevision`.
    """

    __tablename__ = "post"
    id: int | None = Field(default=None, primary_key=True)
    thread_id: int = Field(foreign_key="thread.id", index=True)
    parent_id: int | None = Field(default=None, foreign_key="post.id")
    author: str = Field(max_length=255)
    motivation: str = Field(default="commenting", max_length=32)
    body: str = Field(sa_column=Column(Text, nullable=False))
    html: str = Field(sa_column=Column(Text, nullable=False))
    created: datetime = Field(default_factory=utcnow)
    updated: datetime = Field(default_factory=utcnow)
    rev: int = 1
    state: str = Field(default="active", max_length=16)  # active | deleted


class PostRevision(SQLModel, table=True):
    """One version of a post's text: revision 1 is the original, each edit adds one."""

    __tablename__ = "post_revision"
    __table_args__ = (UniqueConstraint("post_id", "rev"),)
    id: int | None = Field(default=None, primary_key=True)
    post_id: int = Field(foreign_key="post.id", index=True)
    rev: int
    body: str = Field(sa_column=Column(Text, nullable=False))
    who: str = Field(max_length=255)
    when: datetime = Field(default_factory=utcnow)
    reason: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))


class Run(SQLModel, table=True):
    """A notebook run and its provenance (W3C PROV shaped: activity, agent, plan, used,
    generated); see :mod:`nanorepo.provenance`.

    ``id`` is chosen by the runner (a random UUID) so a retried registration is idempotent.
    A run whose process died without finishing (SIGKILL) is marked ``interrupted`` by the
    next ``nanorepo`` command on its machine (:func:`nanorepo.provenance.sweep`).
    """

    __tablename__ = "run"
    id: str = Field(primary_key=True, max_length=32)
    agent: str = Field(index=True, max_length=255)
    status: str = Field(index=True, max_length=16)  # running | succeeded | failed | interrupted
    started: datetime = Field(default_factory=utcnow)
    ended: datetime | None = None
    notebook_name: str = Field(max_length=255)
    notebook_sha256: str = Field(index=True, max_length=64)
    notebook_size: int
    parameters: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    values: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    environment_sha256: str | None = Field(default=None, max_length=64)
    error: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    batch_id: str | None = Field(default=None, index=True, max_length=32)
    item: str | None = Field(default=None, max_length=512)
    rerun_of: str | None = Field(default=None, index=True, max_length=32)
    host: str = Field(default="", max_length=255)


class RunInput(SQLModel, table=True):
    """A dataset version, image or file a run opened (``kind``), with its digest."""

    __tablename__ = "run_input"
    __table_args__ = (Index("ix_run_input_accession_version", "accession", "version"),)
    id: int | None = Field(default=None, primary_key=True)
    run_id: str = Field(foreign_key="run.id", index=True, max_length=32)
    dataset_id: int = Field(foreign_key="dataset.id", index=True)
    kind: str = Field(max_length=16)  # dataset | image | file
    accession: str = Field(max_length=32)
    version: int
    name: str = Field(default="", max_length=512)
    sha256: str = Field(max_length=64)


class RunOutput(SQLModel, table=True):
    """A file a run generated, stored under the run in the repository storage."""

    __tablename__ = "run_output"
    __table_args__ = (UniqueConstraint("run_id", "name"),)
    id: int | None = Field(default=None, primary_key=True)
    run_id: str = Field(foreign_key="run.id", index=True, max_length=32)
    name: str = Field(max_length=512)
    sha256: str = Field(index=True, max_length=64)
    size: int
    media_type: str = Field(max_length=128)
    role: str = Field(default="output", max_length=32)  # output | executed-notebook


class RunEnvironment(SQLModel, table=True):
    """An execution environment (interpreter, kernel, packages, image), stored once per
    distinct content: a batch of 200 runs in one environment keeps one row."""

    __tablename__ = "run_environment"
    sha256: str = Field(primary_key=True, max_length=64)
    doc: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))


class RunBatch(SQLModel, table=True):
    """One notebook run over every dataset or image a query matches.

    ``key`` is the digest of what the batch does (notebook, query, granularity, parameters,
    agent): running the same batch again finds it and skips the runs that succeeded.
    """

    __tablename__ = "run_batch"
    id: str = Field(primary_key=True, max_length=32)
    key: str = Field(index=True, unique=True, max_length=64)
    agent: str = Field(index=True, max_length=255)
    notebook_name: str = Field(max_length=255)
    notebook_sha256: str = Field(max_length=64)
    notebook_size: int
    query: str = Field(sa_column=Column(Text, nullable=False))
    per: str = Field(max_length=16)  # dataset | image
    parameters: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created: datetime = Field(default_factory=utcnow)
    status: str = Field(default="running", max_length=16)


class RunDerived(SQLModel, table=True):
    """A dataset deposited from a run's outputs: its provenance points to the run."""

    __tablename__ = "run_derived"
    run_id: str = Field(foreign_key="run.id", primary_key=True, max_length=32)
    dataset_id: int = Field(foreign_key="dataset.id", primary_key=True)
