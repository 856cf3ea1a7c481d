"""Full-text search with field filters (SQLite FTS5 / PostgreSQL full-text)."""

from __future__ import annotations

from nanorepo.search._index import (
    FACET_FIELDS,
    FIELDS,
    Query,
    facets,
    index_dataset,
    parse_query,
    search,
)

__all__ = [
    "FACET_FIELDS",
    "FIELDS",
    "Query",
    "facets",
    "index_dataset",
    "parse_query",
    "search",
]
