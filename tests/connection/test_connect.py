"""The front door: one place decides how a process reaches the repository, in a fixed
order, and nothing but ``init``/``demo``/``up`` ever creates a catalog."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import nanorepo
from nanorepo.connection import connect
from nanorepo.errors import ConfigurationError, RepositoryNotFound
from nanorepo.repository import Repository
from nanorepo.settings import Settings

HUB_ENV = {
    "JUPYTERHUB_API_URL": "http://127.0.0.1:8081/hub/api",
    "JUPYTERHUB_API_TOKEN": "t0ken",
    "JUPYTERHUB_USER": "ada",
}


def settings(tmp_path: Path, home: Path | None = None, **env: str) -> Settings:
    """Settings as a process with only ``env`` would read them (HOME under tmp_path)."""
    return Settings.from_env(home, env={"HOME": str(tmp_path), **env})


def test_nothing_pointed_at_is_an_error_that_says_where_it_looked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(RepositoryNotFound) as exc:
        connect(settings=settings(tmp_path))
    for looked_for in ("NANOREPO_URL", "NANOREPO_HOME", "JUPYTERHUB_API_URL", ".nanorepo"):
        assert looked_for in exc.value.message
    assert "nanorepo init" in (exc.value.hint or "")
    assert list(tmp_path.iterdir()) == []  # no ~/.nanorepo, no catalog


def test_the_order_explicit_then_settings_then_the_hub(tmp_path: Path) -> None:
    home = tmp_path / "repo"
    with Repository(settings(tmp_path, home), create=True) as made:
        made.ready()
    # NANOREPO_URL wins over NANOREPO_HOME (a user server may have both)
    both = settings(tmp_path, home, NANOREPO_URL="http://svc:8000", NANOREPO_HOME=str(home))
    assert connect(settings=both).mode == "remote"
    assert connect(settings=both).source == "NANOREPO_URL"
    # ... unless told: --local, or an explicit home
    assert connect(settings=both, local=True).mode == "local"
    assert connect(home, settings=both).mode == "local"
    # an explicit url wins over everything
    explicit = connect(settings=settings(tmp_path, home), url="http://other:1", token="x")
    assert (explicit.mode, explicit.settings.url, explicit.settings.token) == (
        "remote", "http://other:1", "x",
    )  # fmt: skip
    # NANOREPO_HOME alone: local
    assert connect(settings=settings(tmp_path, home)).mode == "local"
    # a hub's user server without NANOREPO_URL: the hub's service, with the server's token
    hub = connect(settings=settings(tmp_path, **HUB_ENV))
    assert hub.mode == "remote"
    assert hub.settings.url == "http://127.0.0.1:8081/services/nanorepo"
    assert hub.settings.token == "t0ken"
    assert "hub" in hub.source


def test_a_home_without_a_catalog_is_refused_and_left_alone(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    s = settings(tmp_path, empty)
    with pytest.raises(RepositoryNotFound, match=f"no nanorepo repository at {empty}"):
        connect(settings=s)
    with pytest.raises(RepositoryNotFound, match="nanorepo init"):
        Repository(s).list_datasets()
    with pytest.raises(RepositoryNotFound):
        nanorepo.open("S-NANO1", settings=s)
    assert list(empty.iterdir()) == []
    # only when asked
    with connect(settings=s, create=True) as conn:
        assert conn.search() == ([], 0)
    assert (empty / "catalog.sqlite").is_file()


def test_a_remote_connection_never_hands_out_the_local_repository(tmp_path: Path) -> None:
    conn = connect(settings=settings(tmp_path, NANOREPO_URL="http://svc:8000"))
    with pytest.raises(ConfigurationError, match="through the service at http://svc:8000"):
        conn.repository  # noqa: B018
    assert list(tmp_path.iterdir()) == []


def _blocked(*modules: str) -> str:
    """Python that makes ``modules`` unimportable, as if their extra were not installed."""
    return "import sys\n" + "".join(f"sys.modules[{m!r}] = None\n" for m in modules)


SERVER = ("fastapi", "sqlmodel", "sqlalchemy", "alembic", "uvicorn")
HUB = ("jupyterhub", "jupyterlab", "jupyter_server", "notebook", "napari")


@pytest.mark.parametrize(
    ("part", "extra"),
    [("nanorepo.service", "server"), ("nanorepo.repository", "server"),
     ("nanorepo.catalog", "server"), ("nanorepo.hub", "hub"), ("nanorepo.jupyter", "hub")],
)  # fmt: skip
def test_a_part_whose_extra_is_missing_says_which_extra_to_install(part: str, extra: str) -> None:
    code = _blocked(*SERVER, *HUB) + f"import {part}\n"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    assert "MissingExtra: nanorepo's" in proc.stderr
    assert f"pip install 'nanorepo[{extra}]'" in proc.stderr


def test_the_plain_install_imports_and_points_to_the_extra(tmp_path: Path) -> None:
    """Without [server] and [hub]: ``import nanorepo`` and the CLI start; what needs the
    catalog says which extra to install."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NANOREPO_", "JUPYTERHUB_"))}
    env |= {"HOME": str(tmp_path), "NANOREPO_HOME": str(tmp_path / "h")}
    code = _blocked(*SERVER, *HUB) + (
        "import nanorepo, nanorepo.client, nanorepo.connection, nanorepo.access\n"
        "from nanorepo.cli._main import main\n"
        "main(['list'])\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env
    )
    assert proc.returncode == 1, proc.stderr
    assert "pip install 'nanorepo[server]'" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "h").exists()


#: The only places in nanorepo/ that may create a catalog: the repository itself (asked to,
#: with create=True), the commands that create (init and demo through the CLI context, up),
#: the test fixtures; and two that open an existing one only after checking it exists.
MAY_CREATE = {
    "repository/_repository.py",  # Catalog(...) only with create=True or an existing one
    "cli/_context.py",  # Context.creating(): init, demo
    "cli/_up.py",  # nanorepo up
    "hub/_spawner.py",  # the hub's catalog, after catalog_exists()
    "access/_open.py",  # open_from_storage: an existing SQLite file (or a server catalog)
    "testing/plugin.py",
    "testing/_hub.py",
    "testing/_service.py",
}


def test_only_the_allowed_places_create_or_open_a_catalog() -> None:
    """Catalog(...) migrates, so creates, a catalog; create=True asks the repository to.
    Any new place doing either must be one of those that may (see MAY_CREATE)."""
    import ast

    root = Path(nanorepo.__file__).parent
    found = set()
    for path in root.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call):
                continue
            name = getattr(node.func, "id", getattr(node.func, "attr", ""))
            creates = any(
                k.arg == "create" and isinstance(k.value, ast.Constant) and k.value.value
                for k in node.keywords
            )
            if name == "Catalog" or creates:
                found.add(path.relative_to(root).as_posix())
    assert found <= MAY_CREATE, sorted(found - MAY_CREATE)
    assert {"cli/_context.py", "cli/_up.py"} <= found
