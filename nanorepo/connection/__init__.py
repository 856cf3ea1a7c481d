"""The front door: how this process reaches the repository (local catalog and storage, or
the service over HTTP with the user's token), decided in one place and handed to features."""

from __future__ import annotations

from nanorepo.connection._connection import (
    SERVICE_NAME,
    Connection,
    GrantNotFound,
    batch_items,
    connect,
    open,
    rerun,
    run,
    run_batch,
    run_store,
    search,
)

__all__ = [
    "SERVICE_NAME",
    "Connection",
    "GrantNotFound",
    "batch_items",
    "connect",
    "open",
    "rerun",
    "run",
    "run_batch",
    "run_store",
    "search",
]
