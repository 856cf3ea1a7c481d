"""Finding and stopping every process a hub started, however it was started.

The hub starts the proxy, the services and the user servers (each in a session of its
own, so signals to the hub's process group do not reach them) and the servers start
kernels. If the hub is killed, or a server ignores its stop, they outlive it. So
everything started for one hub carries one environment variable, :data:`MARK`, with one
value (:attr:`NanorepoHub.propagate_env` passes it on), and :func:`stop_marked` finds the
processes by reading ``/proc/<pid>/environ``. Linux only; elsewhere it finds nothing and
the hub's own clean-up is all there is.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path

__all__ = ["MARK", "marked", "stop_marked"]

#: The environment variable marking every process started for one hub.
MARK = "NANOREPO_PROCESS_MARK"


def marked(value: str, *, name: str = MARK) -> list[int]:
    """Process ids of this user's processes whose environment holds ``name=value``."""
    needle = f"{name}={value}".encode() + b"\0"
    found: list[int] = []
    proc = Path("/proc")
    if not proc.is_dir():
        return found
    me = os.getpid()
    for entry in proc.iterdir():
        if not entry.name.isdigit() or int(entry.name) == me:
            continue
        try:
            environ = (entry / "environ").read_bytes()
            state = (entry / "stat").read_text().rsplit(")", 1)[-1].split()[0]
        except (OSError, IndexError):  # gone, or not ours
            continue
        if state != "Z" and (environ.startswith(needle) or b"\0" + needle in environ):
            found.append(int(entry.name))
    return found


def stop_marked(value: str, *, name: str = MARK, grace_s: float = 5.0) -> list[int]:
    """SIGTERM every marked process, SIGKILL what is still there after ``grace_s``;
    returns the ids that were found."""
    first = left = marked(value, name=name)
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in left:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)
        deadline = time.monotonic() + grace_s
        while left and time.monotonic() < deadline:
            time.sleep(0.1)
            left = [pid for pid in left if pid in set(marked(value, name=name))]
        if not left:
            break
    return first
