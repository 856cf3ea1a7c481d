"""Where configurable-http-proxy (the hub's proxy, a Node.js program) comes from.

``./dev up`` installs the release pinned in ``hub/package-lock.json`` with ``npm ci``
into ``<virtualenv>/nanorepo-node`` (:func:`proxy_prefix`); one on ``PATH`` (an operator's
``npm install -g``) is used first.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from nanorepo.errors import ConfigurationError

__all__ = ["CHP_VERSION", "find_proxy", "lock_dir", "proxy_prefix"]

#: The configurable-http-proxy release pinned in hub/package-lock.json.
CHP_VERSION = "4.6.3"


def proxy_prefix() -> Path:
    """The npm prefix ``./dev`` installs the proxy into, inside this virtualenv."""
    return Path(sys.prefix) / "nanorepo-node"


def lock_dir() -> Path | None:
    """``hub/`` of a source checkout (package.json + package-lock.json), if this is one."""
    hub = Path(__file__).resolve().parents[2] / "hub"
    return hub if (hub / "package-lock.json").is_file() else None


def find_proxy() -> str:
    """The ``configurable-http-proxy`` command: on PATH, else the one ``./dev`` installed."""
    found = shutil.which("configurable-http-proxy")
    if found:
        return found
    local = proxy_prefix() / "node_modules" / ".bin" / "configurable-http-proxy"
    if local.exists():
        return str(local)
    raise ConfigurationError(
        "configurable-http-proxy (the hub's proxy, a Node.js program) is not installed",
        hint=f"run `./dev up` (installs it with npm into {proxy_prefix()}), or "
        f"`npm install -g configurable-http-proxy@{CHP_VERSION}`",
    )
