"""The embedded hub of ``nanorepo up``: one machine, one operating-system user.

:func:`configure_local` is what ``hub/jupyterhub_config.py`` calls. It reads the
settings ``nanorepo up`` hands over in the environment (:class:`LocalHub`), sets the
hub's own parts (addresses, database and cookie secret in the home, the proxy,
authenticator, spawner) and then applies the shared pieces (:func:`configure`).

- **Authenticator**: :class:`NanorepoAuthenticator`, NativeAuthenticator (jupyterhub-
  nativeauthenticator) with the ``admin`` account created on first start. Chosen because
  a lab needs accounts without an identity provider: people sign up at ``/hub/signup``,
  an admin approves them at ``/hub/authorize``; passwords are stored bcrypt-hashed in
  the hub's database; repeated failed logins are slowed down.
- **Spawner**: :class:`LocalSpawner`, JupyterHub's ``SimpleLocalProcessSpawner`` that
  reports a server as soon as it listens: every server runs as the operator's account,
  with its home under ``<home>/users/<name>``, started by :mod:`nanorepo.hub._singleuser`
  (``jupyterhub-singleuser``, ~1.3 s faster). Not an isolation between users (the
  storage view is not a security boundary either): the service, which checks every
  request, is. For real isolation use Kubernetes.
"""

from __future__ import annotations

import os
import random
import socket
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jupyterhub.spawner import SimpleLocalProcessSpawner
from traitlets import Float
from traitlets.config import Config

from nanorepo.errors import ConfigurationError
from nanorepo.hub._config import NanorepoHub, configure
from nanorepo.hub._native import NanorepoAuthenticator

__all__ = [
    "ADMIN",
    "LocalHub",
    "LocalSpawner",
    "config_file",
    "configure_local",
    "first_password_file",
    "free_ports",
    "hub_dir",
]

#: The account created on first start, a hub admin (and so a repository admin).
ADMIN = "admin"
#: Hub user names locally: they name home directories, so keep them plain.
USERNAME_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,63}$"


def hub_dir(home: Path) -> Path:
    """Where the hub keeps its database, cookie secret, log and pid files."""
    return home / "hub"


def first_password_file(home: Path) -> Path:
    """The admin's first password on its way from ``nanorepo up`` to the hub (0600;
    deleted by the hub once the account exists)."""
    return hub_dir(home) / "admin-first-password"


def free_ports(n: int, *, exclude: tuple[int, ...] = ()) -> list[int]:
    """``n`` distinct loopback ports free now, chosen below the kernel's ephemeral range:
    outgoing connections (of this or any process) take ephemeral ports, and one might
    take a port chosen there before the hub binds it."""
    try:
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    rng = random.SystemRandom()
    ports: list[int] = []
    while len(ports) < n:
        want = rng.randrange(20000, low) if low > 21000 else 0
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind(("127.0.0.1", want))
            except OSError:
                continue
            port: int = sock.getsockname()[1]
        if port not in ports and port not in exclude:
            ports.append(port)
    return ports


_THIN_CONFIG = """\
# The embedded hub of `nanorepo up`: every piece comes from nanorepo.hub (hub/README.md).
from nanorepo.hub import configure_local

configure_local(get_config())  # noqa: F821
"""


def config_file(home: Path) -> Path:
    """The JupyterHub configuration ``nanorepo up`` runs: ``hub/jupyterhub_config.py`` of
    a source checkout, else (an installed wheel) the same two lines written to the
    hub's directory in ``home``."""
    checkout = Path(__file__).resolve().parents[2] / "hub" / "jupyterhub_config.py"
    if checkout.is_file():
        return checkout
    path = hub_dir(home) / "jupyterhub_config.py"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(_THIN_CONFIG)
    return path


def _port(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if not raw:
        return default
    try:
        port = int(raw)
    except ValueError:
        port = -1
    if not 0 < port < 65536:
        raise ConfigurationError(f"{name}={raw!r} is not a port", hint="a number 1-65535")
    return port


@dataclass(frozen=True)
class LocalHub:
    """Settings of the embedded hub, read once from the environment ``nanorepo up`` sets.

    Attributes
    ----------
    home:
        Repository home (``NANOREPO_HOME``): catalog, storage, hub state, user homes.
    ip, port:
        Where users connect (``NANOREPO_UP_IP``, ``NANOREPO_UP_PORT``; the proxy's).
    hub_port, proxy_api_port, service_port:
        Loopback ports of the hub's API, the proxy's API and the service
        (``NANOREPO_UP_HUB_PORT`` ...).
    proxy:
        The configurable-http-proxy command (``NANOREPO_UP_PROXY``).
    database_url, storage:
        The catalog and storage, when not the home's defaults (``NANOREPO_DATABASE_URL``,
        ``NANOREPO_STORAGE``; empty: the defaults).
    """

    home: Path
    ip: str = "127.0.0.1"
    port: int = 8000
    hub_port: int = 8081
    proxy_api_port: int = 8001
    service_port: int = 8090
    proxy: str = "configurable-http-proxy"
    database_url: str = ""
    storage: str = ""

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> LocalHub:
        env = os.environ if env is None else env
        home = env.get("NANOREPO_HOME")
        if not home:
            raise ConfigurationError(
                "NANOREPO_HOME is not set: the local hub does not know the repository",
                hint="start it with `nanorepo up` (which sets it), or set NANOREPO_HOME",
            )
        return cls(
            home=Path(home).expanduser().resolve(),
            ip=env.get("NANOREPO_UP_IP") or "127.0.0.1",
            port=_port(env, "NANOREPO_UP_PORT", 8000),
            hub_port=_port(env, "NANOREPO_UP_HUB_PORT", 8081),
            proxy_api_port=_port(env, "NANOREPO_UP_PROXY_API_PORT", 8001),
            service_port=_port(env, "NANOREPO_UP_SERVICE_PORT", 8090),
            proxy=env.get("NANOREPO_UP_PROXY") or "configurable-http-proxy",
            database_url=env.get("NANOREPO_DATABASE_URL") or "",
            storage=env.get("NANOREPO_STORAGE") or "",
        )

    def environ(self) -> dict[str, str]:
        """The environment that makes :meth:`from_env` give these settings back."""
        return {
            "NANOREPO_HOME": str(self.home),
            "NANOREPO_UP_IP": self.ip,
            "NANOREPO_UP_PORT": str(self.port),
            "NANOREPO_UP_HUB_PORT": str(self.hub_port),
            "NANOREPO_UP_PROXY_API_PORT": str(self.proxy_api_port),
            "NANOREPO_UP_SERVICE_PORT": str(self.service_port),
            "NANOREPO_UP_PROXY": self.proxy,
            **({"NANOREPO_DATABASE_URL": self.database_url} if self.database_url else {}),
            **({"NANOREPO_STORAGE": self.storage} if self.storage else {}),
        }


class LocalSpawner(SimpleLocalProcessSpawner):
    """``SimpleLocalProcessSpawner`` whose ``start`` returns once the server listens.

    The hub checks a new server with exponential backoff and full jitter (waits drawn up
    to 0.2 s, 0.4 s, 0.8 s ... 5 s), so a server that is up after 2 s is typically noticed
    a second or more later. Probing the port every :attr:`ready_poll_interval` seconds here
    (a loopback TCP connect, nearly free) makes the hub's first check succeed.
    """

    ready_poll_interval = Float(
        0.05, help="""Seconds between two looks at whether a starting server listens."""
    ).tag(config=True)

    async def start(self) -> Any:
        import asyncio

        ip, port = await super().start()
        deadline = asyncio.get_running_loop().time() + self.start_timeout
        while asyncio.get_running_loop().time() < deadline:
            if self.proc is None or self.proc.poll() is not None:
                break  # exited: the hub's own checks report it
            try:
                _reader, writer = await asyncio.open_connection(ip or "127.0.0.1", port)
            except OSError:
                await asyncio.sleep(self.ready_poll_interval)
                continue
            writer.close()
            break
        return ip, port


def configure_local(c: Config, env: Mapping[str, str] | None = None) -> NanorepoHub:
    """Configure ``c`` as the embedded hub of ``nanorepo up`` (settings from ``env``,
    default the process environment), then apply the shared pieces."""
    s = LocalHub.from_env(env)
    state = hub_dir(s.home)
    state.mkdir(parents=True, exist_ok=True)
    jh = c.JupyterHub
    jh.ip, jh.port = s.ip, s.port
    jh.hub_ip, jh.hub_port = "127.0.0.1", s.hub_port
    jh.db_url = f"sqlite:///{state / 'jupyterhub.sqlite'}"
    jh.cookie_secret_file = str(state / "jupyterhub_cookie_secret")
    jh.pid_file = str(state / "jupyterhub.pid")
    jh.cleanup_servers = True  # a stopped hub leaves no server running
    c.ConfigurableHTTPProxy.command = [s.proxy]
    c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{s.proxy_api_port}"
    c.ConfigurableHTTPProxy.pid_file = str(state / "proxy.pid")

    jh.authenticator_class = NanorepoAuthenticator
    c.Authenticator.admin_users = {ADMIN}
    c.Authenticator.allow_all = True  # NativeAuthenticator's approval is the gate
    c.Authenticator.username_pattern = USERNAME_PATTERN
    c.NativeAuthenticator.open_signup = False  # an admin approves every account
    c.NativeAuthenticator.minimum_password_length = 10
    c.NanorepoAuthenticator.first_password_file = str(first_password_file(s.home))

    jh.spawner_class = LocalSpawner
    c.SimpleLocalProcessSpawner.home_dir_template = str(s.home / "users" / "{username}")
    c.Spawner.cmd = [sys.executable, "-m", "nanorepo.hub._singleuser"]
    # The forwarder to the service (nanorepo.jupyter) is enabled by the wheel's jupyter-config
    # file; an editable install (./dev) has none, so the servers enable it explicitly.
    c.Spawner.args = ["--ServerApp.jpserver_extensions=nanorepo.jupyter=True"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:  # containers: servers run as root too
        c.Spawner.args.append("--ServerApp.allow_root=True")
    # kernels run `python` from PATH: make it this environment's
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    c.Spawner.environment = {"PATH": path}
    c.Spawner.start_timeout = 120
    c.Spawner.http_timeout = 60

    c.NanorepoHub.home = str(s.home)
    if s.database_url:
        c.NanorepoHub.database_url = s.database_url
    if s.storage:
        c.NanorepoHub.storage = s.storage
    c.NanorepoHub.service_url = f"http://127.0.0.1:{s.service_port}"
    # each user's home is their staging area: large datasets copied there are deposited
    # by the service (POST /deposits/staged reads <root>/<caller>/ only)
    staging = {"NANOREPO_ALLOWED_ROOTS": str(s.home / "users")}
    c.NanorepoHub.service_environment = staging | dict(
        c.NanorepoHub.get("service_environment") or {}
    )
    return configure(c)
