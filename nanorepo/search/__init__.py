"""Full-text search with field filters (SQLite FTS5 / PostgreSQL full-text)."""

from __future__ import annotations

from nanorepo.search._index import FIELDS, Query, index_dataset, parse_query, search

__all__ = ["FIELDS", "Query", "index_dataset", "parse_query", "search"]
