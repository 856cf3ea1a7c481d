"""Fixtures of the JupyterLab extension's tests: its npm packages must be installed (``./dev``
does it from the lockfiles)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

EXTENSION = Path(__file__).resolve().parents[2] / "extension"
UI_TESTS = EXTENSION / "ui-tests"


def _need(path: Path, what: str) -> None:
    if not path.exists():
        pytest.fail(
            f"{what} is not installed ({path} is missing): run ./dev test, which installs it "
            "with npm ci from the lockfile"
        )


@pytest.fixture(scope="session")
def node() -> str:
    """The ``node`` executable."""
    exe = shutil.which("node")
    if exe is None:
        pytest.fail("the extension's tests need Node.js (>= 18)")
    return exe


@pytest.fixture(scope="session")
def jest(node: str) -> list[str]:
    """The command running the extension's jest tests."""
    script = EXTENSION / "node_modules" / "jest" / "bin" / "jest.js"
    _need(script, "the extension's npm packages (jest)")
    return [node, str(script)]


@pytest.fixture(scope="session")
def playwright_test(node: str) -> list[str]:
    """The command running the UI tests (Playwright's test runner)."""
    script = UI_TESTS / "node_modules" / "@playwright" / "test" / "cli.js"
    _need(script, "the UI tests' npm packages (@playwright/test)")
    return [node, str(script)]
