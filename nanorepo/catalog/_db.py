"""Catalog engine: SQLite (embedded default) or PostgreSQL, migrated on open.

Alembic owns the schema: opening a catalog upgrades it to the newest migration, so an
operator never runs a separate step and an old catalog opened by new code is brought
forward (never the other way round).
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from nanorepo.errors import ConfigurationError

__all__ = ["make_engine", "migrate"]

_MIGRATIONS = Path(__file__).with_name("migrations")
_migrate_lock = threading.Lock()


def _alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(_MIGRATIONS))
    return cfg


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets readers proceed while one writer commits; busy_timeout makes concurrent
    # CLI processes wait for the lock instead of failing at once.
    cur = dbapi_connection.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


def not_fulltext(
    obj: object, name: str | None, type_: str, reflected: bool, compare_to: object
) -> bool:
    """Alembic ``include_object`` filter: leave the hand-made full-text tables alone."""
    # The FTS5 table and its shadow tables are created by hand in 0001; autogenerate
    # must neither drop nor recreate them.
    name = name or ""
    return not (
        (type_ == "table" and name.startswith("search_fts"))
        or (type_ == "index" and name == "ix_search_doc_tsv")
    )


def make_engine(url: str) -> Engine:
    """Create an engine for ``url`` (``sqlite:///path`` or ``postgresql+psycopg://...``).

    ``postgresql://`` URLs are taken to mean psycopg 3, the driver nanorepo installs.
    """
    try:
        parsed = make_url(url)
    except Exception as exc:
        raise ConfigurationError(
            f"cannot parse the catalog URL {url!r}: {exc}",
            hint="use sqlite:////abs/path/catalog.sqlite or postgresql://user@host:5432/db",
        ) from exc
    if parsed.drivername in {"postgresql", "postgres"}:
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.drivername.startswith("sqlite"):
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        # NullPool: SQLite connections are cheap and this avoids sharing one across threads.
        engine = create_engine(
            parsed, poolclass=NullPool, connect_args={"check_same_thread": False}
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if parsed.drivername.startswith("postgresql"):
        # The service runs sync routes on up to 40 worker threads: let each have a connection.
        return create_engine(parsed, pool_pre_ping=True, pool_size=10, max_overflow=30)
    raise ConfigurationError(
        f"unsupported catalog database {parsed.drivername!r}",
        hint="nanorepo supports SQLite and PostgreSQL",
    )


def migrate(engine: Engine) -> None:
    """Bring the catalog schema to the newest migration (no-op when it is current)."""
    cfg = _alembic_config()
    head = ScriptDirectory.from_config(cfg).get_current_head()
    with engine.connect() as conn:
        current = MigrationContext.configure(conn).get_current_revision()
    if current == head:
        return
    with _migrate_lock, engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
