"""pytest plugin: temporary repositories on SQLite and PostgreSQL, sample files.

Registered through the ``pytest11`` entry point so every test module (and projects that
build on nanorepo) get the same fixtures. The ``catalog_url`` fixture is parametrised
over both backends: tests that take it run twice, as jupyterhub's own suite does.
PostgreSQL tests get a fresh database each; on CI a missing server is an error, never
a skip (``.ci/run`` starts it).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from nanorepo.settings import Settings

PG_ADMIN_URL = os.environ.get(
    "NANOREPO_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres"
)


def _pg_available() -> str | None:
    try:
        import psycopg

        with psycopg.connect(PG_ADMIN_URL, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
        return None
    except Exception as exc:
        return str(exc)


@pytest.fixture(scope="session")
def postgres_server() -> str:
    """URL of the PostgreSQL admin database; fails on CI, skips elsewhere, if it is down."""
    problem = _pg_available()
    if problem:
        msg = f"PostgreSQL not reachable at {PG_ADMIN_URL}: {problem}"
        if os.environ.get("CI"):
            pytest.fail(msg + " (.ci/run should have started it)")
        pytest.skip(msg)
    return PG_ADMIN_URL


@pytest.fixture
def postgres_url(postgres_server: str) -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test, dropped afterwards."""
    import psycopg

    name = f"nanorepo_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_server, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = postgres_server.rsplit("/", 1)[0]
    yield f"{base}/{name}"
    with psycopg.connect(postgres_server, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def catalog_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Catalog URL on each backend in turn."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'catalog.sqlite'}"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def catalog(catalog_url: str) -> Iterator[Any]:
    """A migrated :class:`nanorepo.catalog.Catalog` on each backend, closed afterwards."""
    from nanorepo.catalog import Catalog

    cat = Catalog(catalog_url)
    yield cat
    cat.close()


@pytest.fixture
def settings(tmp_path: Path, catalog_url: str) -> Settings:
    """Settings of a fresh repository under ``tmp_path/home`` (on each catalog backend)."""
    home = tmp_path / "home"
    env = {"NANOREPO_DATABASE_URL": catalog_url, "NANOREPO_USER": "alice"}
    return Settings.from_env(home, env=env)


@pytest.fixture
def sqlite_settings(tmp_path: Path) -> Settings:
    """Settings of a fresh repository on SQLite only (for tests about storage, not the DB)."""
    return Settings.from_env(tmp_path / "home", env={"NANOREPO_USER": "alice"})


@pytest.fixture
def repo(settings: Settings) -> Iterator[Any]:
    """A :class:`nanorepo.repository.Repository` on each catalog backend."""
    from nanorepo.repository import Repository

    r = Repository(settings, create=True)
    yield r
    r.close()


@pytest.fixture
def sqlite_repo(sqlite_settings: Settings) -> Iterator[Any]:
    from nanorepo.repository import Repository

    r = Repository(sqlite_settings, create=True)
    yield r
    r.close()


@pytest.fixture
def cli_env(sqlite_settings: Settings) -> dict[str, str]:
    """Environment for running the ``nanorepo`` command against a fresh repository (created
    first, as ``nanorepo init`` does: no other command creates one)."""
    from nanorepo.repository import Repository

    with Repository(sqlite_settings, create=True) as fresh:
        fresh.ready()
    env = {k: v for k, v in os.environ.items() if not k.startswith("NANOREPO_")}
    env.update(
        NANOREPO_HOME=str(sqlite_settings.home),
        NANOREPO_USER="alice",
        COLUMNS="200",
    )
    return env


@pytest.fixture
def service_process(repo: Any, tmp_path: Path) -> Iterator[Any]:
    """Like ``service`` but the service runs as its own process (load tests)."""
    from nanorepo.testing._service import live_service, seed_repository

    seed = seed_repository(repo, tmp_path / "seed")
    with live_service(repo.settings, repo=repo, process=True) as live:
        live.seed = seed  # type: ignore[attr-defined]
        yield live


@pytest.fixture
def service(repo: Any, tmp_path: Path) -> Iterator[Any]:
    """A live service (real uvicorn on loopback) over a seeded repository, on each catalog
    backend. ``service.seed`` names the public / granted / hidden datasets and holds a
    token per user of :data:`nanorepo.testing._service.ROLES`."""
    from nanorepo.testing._service import live_service, seed_repository

    seed = seed_repository(repo, tmp_path / "seed")
    with live_service(repo.settings, repo=repo) as live:
        live.seed = seed  # type: ignore[attr-defined]
        yield live


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def jupyterhub(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Any]:
    """A real JupyterHub (behind configurable-http-proxy) running the nanorepo service as a
    managed service over a seeded repository, on each catalog backend; one per test
    module. See :class:`nanorepo.testing._hub.LiveHub` (``.url``, ``.service_url``,
    ``.seed``, ``.user_token(user)``, ``.browser_login(client, user)``)."""
    import shutil

    from nanorepo.testing._hub import live_hub

    if not (shutil.which("configurable-http-proxy") or shutil.which("npm")):
        msg = "the hub tests need configurable-http-proxy, or Node.js with npm to install it"
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)
    workdir = tmp_path_factory.mktemp("hub")
    if request.param == "sqlite":
        with live_hub(workdir) as hub:
            yield hub
        return
    import psycopg

    admin_url = request.getfixturevalue("postgres_server")
    name = f"nanorepo_hub_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        with live_hub(workdir, database_url=f"{admin_url.rsplit('/', 1)[0]}/{name}") as hub:
            yield hub
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module")
def hub_servers(jupyterhub: Any) -> Iterator[Any]:
    """Start users' JupyterLab servers on the module's ``jupyterhub``:
    ``url = hub_servers("bob")`` (or ``hub_servers("bob", "name", options={"profile":
    "large"})``) starts one through the hub API, with nanorepo's spawn hook (storage view,
    environment), and returns its URL; a server already running is reused. Every server
    started is stopped at the end of the module. Drive kernels with
    :func:`nanorepo.testing._hub.kernel_session`."""
    started: dict[tuple[str, str], str] = {}

    def start(user: str, name: str = "", *, options: dict[str, Any] | None = None) -> str:
        key = (user, name)
        if key not in started:
            started[key] = jupyterhub.start_server(user, name, options=options)
        return started[key]

    yield start
    for user, name in started:
        jupyterhub.stop_server(user, name)
