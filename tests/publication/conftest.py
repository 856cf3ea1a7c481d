"""A seeded repository published under a public address, and its live service (SQLite:
these tests are about pages and formats, not the database)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from nanorepo.settings import Settings

PUBLIC = "https://repo.example.org/nano"


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A seeded SQLite repository published under :data:`PUBLIC`, and its service."""
    from nanorepo.repository import Repository
    from nanorepo.testing._service import live_service, seed_repository

    tmp = tmp_path_factory.mktemp("cite")
    settings = Settings.from_env(
        tmp / "home", env={"NANOREPO_USER": "alice", "NANOREPO_PUBLIC_URL": PUBLIC}
    )
    repo = Repository(settings, create=True)
    seed = seed_repository(repo, tmp / "seed")
    with live_service(settings, repo=repo) as service:
        service.seed = seed
        service.settings = settings
        service.repo = repo
        yield service
    repo.close()
