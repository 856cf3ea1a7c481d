"""Lab terminals of a user server: the server's environment first on PATH, even though the
terminal is a login shell and the system profile sets PATH afresh."""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from nanorepo.hub._singleuser import terminal_command

BIN = Path(sys.executable).parent


@pytest.mark.parametrize("shell", ["/bin/bash", "/bin/sh"])
def test_the_terminal_shell_finds_nanorepo_python_and_jupyter_of_the_server(
    shell: str, tmp_path: Path
) -> None:
    if not Path(shell).exists():
        pytest.skip(f"no {shell} here")
    command = shlex.split(terminal_command(shell, BIN))
    assert command[:3] == [shell, "-l", "-c"]  # the profile runs, as users expect
    typed = "".join(f"command -v {c}\n" for c in ("nanorepo", "python", "jupyter"))
    typed += "echo login-profile-ran:${PROFILE_RAN:-no}\n"
    (tmp_path / ".profile").write_text("PATH=/usr/bin:/bin; export PROFILE_RAN=yes\n")
    done = subprocess.run(
        command, input=typed, capture_output=True, text=True, timeout=60,
        env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin", "TERM": "dumb"},
    )  # fmt: skip
    lines = done.stdout.split()
    assert lines[:3] == [str(BIN / "nanorepo"), str(BIN / "python"), str(BIN / "jupyter")]
    assert "login-profile-ran:yes" in lines  # a profile resetting PATH did not undo it
