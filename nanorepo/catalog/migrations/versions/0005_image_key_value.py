"""Image key/value side table: indexed rows for the image table's filters and sort.

``image_key_value`` holds one row per key of every image's ``key_values`` (the JSON column
stays the source of truth): ``(image_id, key)`` primary key, the image's ``version_id``,
``value`` as the JSON functions return it and ``value_lower``, the database's ``lower()``
of it, which is what a ``KEY:VALUE`` filter compares. ``ix_image_key_value_match``
``(version_id, key, value_lower, image_id)`` turns a filter into an index range instead of
a ``json_extract`` of every image of the version (100,000 rows: 125-173 ms -> see
``docs/benchmarks.md``).

Triggers write the rows in the statement that writes the image, on both backends, so no
code path (deposit, bulk insert, a future writer) can forget them: SQLite gets row triggers
over ``json_each``; PostgreSQL statement triggers with transition tables over
``json_each_text`` (one ``INSERT ... SELECT`` per statement, not per row). A deleted image
takes its rows with it (``ON DELETE CASCADE``). When a JSON object repeats a key (only
hand-written SQL can do that) the row holds the occurrence the JSON operators return: the
first on SQLite, the last on PostgreSQL. A JSON ``null`` is kept as SQL NULL (it never
matches a filter and sorts as absent, as before).

Existing images are backfilled in the upgrade with the same ``SELECT``. A later migration
that rebuilds the ``image`` table on SQLite (Alembic batch mode copies, drops and renames
it) drops these triggers with it and, with foreign keys on, cascades the drop to the rows:
it must recreate both (``_create_sqlite_triggers`` and ``_backfill`` below show how).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22 01:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_COLUMNS = "image_id, key, version_id, value, value_lower"

#: SQLite: the pairs of image ``{i}`` (``NEW`` in a trigger; ``image`` with ``{src}`` =
#: ``"image, "`` for every image), only if ``key_values`` is a JSON object (``json_each``
#: of anything else yields keys that are not names, or raises).
_SQLITE_PAIRS = (
    "SELECT {i}.id, e.key, {i}.version_id, e.value, lower(e.value) "
    "FROM {src}json_each(CASE WHEN json_valid({i}.key_values) "
    "AND json_type({i}.key_values) = 'object' THEN {i}.key_values ELSE '{{}}' END) AS e"
)

#: PostgreSQL: the pairs of every image of relation ``{rows}``; the last occurrence of a
#: repeated key wins, as for ``->>``.
_PG_PAIRS = (
    "SELECT DISTINCT ON (i.id, e.key) i.id, e.key, i.version_id, e.value, lower(e.value) "
    "FROM {rows} AS i CROSS JOIN LATERAL json_each_text(CASE WHEN json_typeof(i.key_values) "
    "= 'object' THEN i.key_values ELSE '{{}}'::json END) WITH ORDINALITY AS e(key, value, n) "
    "ORDER BY i.id, e.key, e.n DESC"
)

_SQLITE_TRIGGERS = ("image_key_value_ai", "image_key_value_au")
_PG_TRIGGERS = ("image_key_value_ai", "image_key_value_au")


def _create_sqlite_triggers() -> None:
    # INSERT OR IGNORE keeps the first occurrence of a repeated key (what json_extract
    # returns). The DELETE first: SQLite may reuse the id of a deleted image, and rows of
    # an image deleted with foreign keys off would otherwise stay.
    pairs = _SQLITE_PAIRS.format(i="NEW", src="")
    op.execute(
        "CREATE TRIGGER image_key_value_ai AFTER INSERT ON image BEGIN "
        "DELETE FROM image_key_value WHERE image_id = NEW.id; "
        f"INSERT OR IGNORE INTO image_key_value ({_COLUMNS}) {pairs}; END"
    )
    op.execute(
        "CREATE TRIGGER image_key_value_au AFTER UPDATE OF id, version_id, key_values ON image "
        "BEGIN DELETE FROM image_key_value WHERE image_id = OLD.id; "
        f"INSERT OR IGNORE INTO image_key_value ({_COLUMNS}) {pairs}; END"
    )


def _create_pg_triggers() -> None:
    op.execute(
        "CREATE FUNCTION image_key_value_insert() RETURNS trigger LANGUAGE plpgsql AS $$ "
        f"BEGIN INSERT INTO image_key_value ({_COLUMNS}) {_PG_PAIRS.format(rows='new_rows')}; "
        "RETURN NULL; END $$"
    )
    op.execute(
        "CREATE FUNCTION image_key_value_update() RETURNS trigger LANGUAGE plpgsql AS $$ "
        "BEGIN DELETE FROM image_key_value WHERE image_id IN (SELECT id FROM old_rows); "
        f"INSERT INTO image_key_value ({_COLUMNS}) {_PG_PAIRS.format(rows='new_rows')}; "
        "RETURN NULL; END $$"
    )
    op.execute(
        "CREATE TRIGGER image_key_value_ai AFTER INSERT ON image "
        "REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT "
        "EXECUTE FUNCTION image_key_value_insert()"
    )
    op.execute(
        "CREATE TRIGGER image_key_value_au AFTER UPDATE ON image "
        "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT "
        "EXECUTE FUNCTION image_key_value_update()"
    )


def _backfill(dialect: str) -> None:
    if dialect == "sqlite":
        op.execute(
            f"INSERT OR IGNORE INTO image_key_value ({_COLUMNS}) "
            + _SQLITE_PAIRS.format(i="image", src="image, ")
            + " ORDER BY image.id"
        )
    else:
        op.execute(f"INSERT INTO image_key_value ({_COLUMNS}) " + _PG_PAIRS.format(rows="image"))


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    op.create_table(
        "image_key_value",
        sa.Column("image_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.Column("value", sa.Text(), nullable=True),
        sa.Column("value_lower", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["image_id"], ["image.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["version_id"], ["version.id"]),
        sa.PrimaryKeyConstraint("image_id", "key"),
        sqlite_with_rowid=False,
    )
    # Triggers before the backfill: on PostgreSQL creating them locks out concurrent image
    # writers until this transaction commits, so no image can fall between the two.
    if dialect == "sqlite":
        _create_sqlite_triggers()
    else:
        _create_pg_triggers()
    # Fill first, index after: one sorted index build instead of an insertion per row.
    _backfill(dialect)
    op.create_index(
        "ix_image_key_value_match",
        "image_key_value",
        ["version_id", "key", "value_lower", "image_id"],
        unique=False,
    )
    if dialect != "sqlite":
        op.execute("ANALYZE image_key_value")


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for trigger in _SQLITE_TRIGGERS:
            op.execute(f"DROP TRIGGER IF EXISTS {trigger}")
    else:
        for trigger in _PG_TRIGGERS:
            op.execute(f"DROP TRIGGER IF EXISTS {trigger} ON image")
        op.execute("DROP FUNCTION IF EXISTS image_key_value_insert()")
        op.execute("DROP FUNCTION IF EXISTS image_key_value_update()")
    op.drop_index("ix_image_key_value_match", table_name="image_key_value")
    op.drop_table("image_key_value")
