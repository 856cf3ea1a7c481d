"""Fixtures for the Jupyter server extension: a stand-in service and a server in front of it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.jupyter._servers import JupyterServer, Recorder, jupyter_server, recorder

#: The token the user's server holds for the service (what the hub puts in its environment).
SERVICE_TOKEN = "nr_service-token-of-the-user"


@pytest.fixture(scope="module")
def stand_in() -> Iterator[Recorder]:
    """A recording stand-in for the service (one per test module)."""
    with recorder() as rec:
        yield rec


@pytest.fixture(scope="module")
def jupyter(
    stand_in: Recorder, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[JupyterServer]:
    """A real Jupyter Server with the extension, forwarding to :func:`stand_in`."""
    work = tmp_path_factory.mktemp("jupyter")
    env = {
        "NANOREPO_URL": stand_in.url,
        "NANOREPO_TOKEN": SERVICE_TOKEN,
        "NANOREPO_HOME": str(work / "nanorepo"),
        "NANOREPO_STORAGE": str(work / "storage"),
    }
    (work / "storage").mkdir()
    with jupyter_server(work, env) as server:
        yield server


@pytest.fixture
def rec(stand_in: Recorder) -> Recorder:
    """The stand-in service with nothing recorded yet."""
    stand_in.clear()
    return stand_in
