"""Alembic environment: runs migrations on the connection nanorepo hands over."""

from __future__ import annotations

from alembic import context
from sqlmodel import SQLModel

from nanorepo.catalog import models  # noqa: F401  (registers the tables)
from nanorepo.catalog._db import not_fulltext

config = context.config
target_metadata = SQLModel.metadata


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is None:  # `alembic` CLI use: build an engine from the ini URL
        from sqlalchemy import create_engine

        engine = create_engine(config.get_main_option("sqlalchemy.url"))
        with engine.connect() as conn:
            _run(conn)
        return
    _run(connection)


def _run(connection: object) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=True,  # SQLite ALTER TABLE support
        compare_type=True,
        include_object=not_fulltext,
    )
    with context.begin_transaction():
        context.run_migrations()


run_migrations_online()
