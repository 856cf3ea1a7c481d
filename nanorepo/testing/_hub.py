"""A real JupyterHub for tests, with the nanorepo service as its managed service.

:func:`live_hub` starts ``jupyterhub`` (DummyAuthenticator with a password, no user
servers) behind a real configurable-http-proxy, and the hub starts the nanorepo service
(uvicorn) over a seeded repository (:func:`nanorepo.testing._service.seed_repository`).
Everything listens on loopback ports chosen at start; the public URL is the proxy's, so
the service is reached at ``/services/nanorepo/`` exactly as users reach it.

The hub knows the users of :data:`nanorepo.testing._service.ROLES` plus ``frank`` (in no
catalog group, but in the hub group ``lab``, which is granted the embargoed dataset) and
``eve`` (a hub user without the scope to use the service). ``root`` is a hub admin.
A hub service ``test-admin`` (role ``admin``) holds :attr:`LiveHub.admin_token`, to create
users' tokens and change users.

configurable-http-proxy comes from ``PATH`` or, when missing, is installed once with npm
(pinned :data:`CHP_VERSION`) under :func:`cache_dir`. :func:`overlay_venv` builds the
virtualenv in which the same tests run against another JupyterHub release.
"""

from __future__ import annotations

import contextlib
import os
import random
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from nanorepo.repository import Repository
from nanorepo.settings import Settings
from nanorepo.testing._service import ROLES, SeededRepository, seed_repository

__all__ = [
    "CHP_VERSION",
    "HUB_GROUPS",
    "HUB_USERS",
    "SERVICE_NAME",
    "LiveHub",
    "cache_dir",
    "configurable_http_proxy",
    "live_hub",
    "overlay_venv",
]

#: configurable-http-proxy release installed when none is on PATH (the z2jh chart's line).
CHP_VERSION = "4.6.3"
SERVICE_NAME = "nanorepo"
#: Hub users: the seeded repository's users plus frank (hub group only) and eve (no access).
HUB_USERS = sorted({u for u in ROLES if u != "anonymous"} | {"frank", "eve"})
HUB_GROUPS = {"lab": ["dave", "frank"]}
_HUB_ADMINS = ["root"]
_NO_ACCESS = {"eve"}


def cache_dir() -> Path:
    """Where test tools are installed once (``NANOREPO_TEST_CACHE``, else the user cache)."""
    explicit = os.environ.get("NANOREPO_TEST_CACHE")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "nanorepo"


def configurable_http_proxy() -> str:
    """The ``configurable-http-proxy`` command: from PATH, else npm-installed in the cache.

    The install goes to a temporary directory renamed into place, so an interrupted or
    concurrent install never leaves a half-installed proxy behind.
    """
    found = shutil.which("configurable-http-proxy")
    if found:
        return found
    prefix = cache_dir() / f"configurable-http-proxy-{CHP_VERSION}"
    exe = prefix / "node_modules" / ".bin" / "configurable-http-proxy"
    if exe.exists():
        return str(exe)
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError(
            "the hub tests need configurable-http-proxy: install Node.js (with npm) or "
            f"`npm install -g configurable-http-proxy@{CHP_VERSION}`"
        )
    prefix.parent.mkdir(parents=True, exist_ok=True)
    tmp = prefix.with_name(f"{prefix.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    subprocess.run(
        [npm, "install", "--prefix", str(tmp), f"configurable-http-proxy@{CHP_VERSION}",
         "--no-audit", "--no-fund", "--loglevel=error"],
        check=True, timeout=600, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        tmp.rename(prefix)
    except OSError:  # another process installed it meanwhile
        shutil.rmtree(tmp, ignore_errors=True)
    return str(exe)


def overlay_venv(path: Path, requirement: str) -> Path:
    """A virtualenv at ``path`` whose own ``requirement`` (installed without dependencies)
    comes first and that otherwise sees this interpreter's packages; returns its python.

    Used to run the hub tests against another JupyterHub release without reinstalling
    nanorepo and its dependencies (seconds instead of minutes). Rebuilt when
    ``requirement`` changes.
    """
    python = path / "bin" / "python"
    stamp = path / ".nanorepo-overlay"
    want = f"{requirement}\n{sys.executable}\n"
    if python.exists() and stamp.exists() and stamp.read_text() == want:
        return python
    shutil.rmtree(path, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(path)], check=True)
    # Install before the overlay exists, so pip sees (and touches) nothing outside `path`.
    pip = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps",
         "--quiet", "--disable-pip-version-check", requirement],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    if pip.returncode != 0:
        raise RuntimeError(f"installing {requirement} into {path} failed:\n{pip.stderr[-3000:]}")
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        check=True, capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip
    ours = sysconfig.get_path("purelib")
    # addsitedir (not a bare path line) so this environment's own .pth files, such as the
    # editable install of nanorepo, are processed too.
    Path(site, "_nanorepo_overlay.pth").write_text(f"import site; site.addsitedir({ours!r})\n")
    stamp.write_text(want)
    return python


def _free_ports(n: int) -> list[int]:
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
        if port not in ports:
            ports.append(port)
    return ports


@dataclass
class LiveHub:
    """A running hub: its public URL (the proxy's), the seeded repository behind the
    service, the hub's version and credentials to drive it."""

    url: str
    service_url: str
    admin_token: str
    password: str
    seed: SeededRepository
    settings: Settings
    version: str
    log: Path

    def api(self) -> httpx.Client:
        """A client of the hub REST API (``/hub/api``) holding the admin token."""
        return httpx.Client(
            base_url=f"{self.url}/hub/api",
            headers={"Authorization": f"token {self.admin_token}"},
            timeout=30,
        )

    def user_token(self, user: str, *, scopes: list[str] | None = None) -> str:
        """A new hub API token of ``user`` (all their permissions unless ``scopes``)."""
        body: dict[str, object] = {"note": "nanorepo test", "expires_in": 3600}
        if scopes is not None:
            body["scopes"] = scopes
        with self.api() as api:
            r = api.post(f"/users/{user}/tokens", json=body)
            r.raise_for_status()
            token: str = r.json()["token"]
            return token

    def browser_login(self, client: httpx.Client, user: str) -> None:
        """Sign ``client`` in to the hub as ``user``, as a browser does: the login form,
        its ``_xsrf`` field and cookie. The client then holds the hub's session cookie."""
        page = client.get(f"{self.url}/hub/login")
        page.raise_for_status()
        m = re.search(r'name="_xsrf"\s+value="([^"]+)"', page.text)
        if m is None:
            raise RuntimeError("the hub login page has no _xsrf field")
        r = client.post(
            f"{self.url}/hub/login",
            data={"username": user, "password": self.password, "_xsrf": m.group(1)},
            follow_redirects=False,
        )
        if r.status_code != 302:
            raise RuntimeError(f"hub login as {user} failed: {r.status_code} {r.text[:300]}")

    def log_tail(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no hub log)"


def _config(
    workdir: Path, ports: dict[str, int], *, python: str, service_env: dict[str, str],
    admin_token: str, password: str, chp: str,
) -> str:  # fmt: skip
    service_cmd = [
        python, "-m", "uvicorn", "--factory", "nanorepo.service:create_app",
        "--host", "127.0.0.1", "--port", str(ports["service"]),
        "--log-level", "warning", "--no-access-log",
    ]  # fmt: skip
    access = [u for u in HUB_USERS if u not in _NO_ACCESS]
    return f"""\
# Generated by nanorepo.testing._hub for one test run.
c = get_config()  # noqa
c.JupyterHub.ip = "127.0.0.1"
c.JupyterHub.port = {ports["proxy"]}
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = {ports["hub"]}
c.JupyterHub.db_url = {f"sqlite:///{workdir / 'jupyterhub.sqlite'}"!r}
c.JupyterHub.cookie_secret_file = {str(workdir / "jupyterhub_cookie_secret")!r}
c.JupyterHub.pid_file = {str(workdir / "jupyterhub.pid")!r}
c.JupyterHub.log_level = "INFO"
c.ConfigurableHTTPProxy.command = [{chp!r}]
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{ports["proxy_api"]}"
c.ConfigurableHTTPProxy.auth_token = {secrets.token_hex(16)!r}
c.ConfigurableHTTPProxy.pid_file = {str(workdir / "proxy.pid")!r}
c.JupyterHub.authenticator_class = "dummy"
c.DummyAuthenticator.password = {password!r}
c.Authenticator.allowed_users = {set(HUB_USERS)!r}
c.JupyterHub.load_groups = {{g: {{"users": u}} for g, u in {HUB_GROUPS!r}.items()}}
c.JupyterHub.load_roles = [
    {{"name": "nanorepo-users", "scopes": ["access:services!service={SERVICE_NAME}"],
      "users": {access!r}}},
    {{"name": "admin", "users": {_HUB_ADMINS!r}, "services": ["test-admin"]}},
]
c.JupyterHub.services = [
    {{"name": {SERVICE_NAME!r}, "url": "http://127.0.0.1:{ports["service"]}",
      "command": {service_cmd!r}, "environment": {service_env!r}, "oauth_no_confirm": True}},
    {{"name": "test-admin", "api_token": {admin_token!r}}},
]
"""


def _wait_ready(hub: LiveHub, proc: subprocess.Popen[bytes], timeout_s: float) -> None:
    """Until the service answers through the proxy (401 problem+json: anonymity is off)."""
    deadline = time.monotonic() + timeout_s
    last = "no answer"
    with httpx.Client(timeout=5) as client:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"jupyterhub exited ({proc.returncode}):\n{hub.log_tail()}")
            try:
                r = client.get(f"{hub.service_url}/health")
                last = f"{r.status_code} {r.headers.get('content-type')}"
                if r.status_code == 401 and "problem+json" in r.headers.get("content-type", ""):
                    return
            except httpx.HTTPError as exc:
                last = repr(exc)
            time.sleep(0.2)
    raise RuntimeError(f"the hub's nanorepo service did not come up ({last}):\n{hub.log_tail()}")


#: Set in the environment of a test hub and of everything it starts (proxy, service), to
#: the hub's work directory: how :func:`_stop` finds what a hub left running.
MARKER = "NANOREPO_TEST_HUB"


def _marked(value: str) -> list[int]:
    """Processes of this user whose environment has ``MARKER=value``."""
    needle = f"{MARKER}={value}".encode() + b"\0"
    found: list[int] = []
    if not Path("/proc").is_dir():  # not Linux: rely on the hub's own clean-up
        return found
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if needle in (entry / "environ").read_bytes():
                found.append(int(entry.name))
        except OSError:  # gone, or not ours
            continue
    return found


def _stop(proc: subprocess.Popen[bytes], marker: str) -> None:
    """SIGTERM the hub (it stops its proxy and services), then whatever it left running:
    its process group, and the processes carrying its marker (the proxy and the service
    run in sessions of their own, so they outlive a hub that was killed)."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    left = _marked(marker)
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in left:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)
        deadline = time.monotonic() + 5
        while left and time.monotonic() < deadline:
            time.sleep(0.1)
            left = [pid for pid in left if Path(f"/proc/{pid}").exists()]
        if not left:
            return


@contextmanager
def live_hub(
    workdir: Path,
    *,
    database_url: str | None = None,
    python: str = sys.executable,
    timeout_s: float = 90,
) -> Iterator[LiveHub]:
    """Run JupyterHub with the nanorepo service over a freshly seeded repository.

    Parameters
    ----------
    workdir:
        An empty directory for the repository, the hub's database, config and log.
    database_url:
        Catalog of the repository (default SQLite in ``workdir``).
    python:
        The interpreter running the hub and the service (another virtualenv tests another
        JupyterHub release).
    """
    workdir.mkdir(parents=True, exist_ok=True)
    env_in = {"NANOREPO_USER": "alice"}
    if database_url:
        env_in["NANOREPO_DATABASE_URL"] = database_url
    settings = Settings.from_env(workdir / "home", env=env_in)
    repo = Repository(settings)
    try:
        seed = seed_repository(repo, workdir / "seed")
    finally:
        repo.close()
    admin_token, password = secrets.token_hex(24), secrets.token_urlsafe(12)
    service_env = {
        "NANOREPO_HOME": str(settings.home),
        "NANOREPO_DATABASE_URL": settings.database_url,
        "NANOREPO_ALLOW_ANONYMOUS": "0",
        MARKER: str(workdir),
    }
    chp = configurable_http_proxy()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTERHUB_", "NANOREPO_"))}
    marker = env[MARKER] = str(workdir)
    for attempt in range(2):  # again with other ports if one was taken meanwhile
        ports = dict(zip(("proxy", "proxy_api", "hub", "service"), _free_ports(4), strict=True))
        config = workdir / "jupyterhub_config.py"
        config.write_text(
            _config(workdir, ports, python=python, service_env=service_env,
                    admin_token=admin_token, password=password, chp=chp)
        )  # fmt: skip
        log = workdir / f"jupyterhub-{attempt}.log"
        url = f"http://127.0.0.1:{ports['proxy']}"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [python, "-m", "jupyterhub", "-f", str(config)],
                cwd=workdir, env=env, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        hub = LiveHub(
            url=url, service_url=f"{url}/services/{SERVICE_NAME}", admin_token=admin_token,
            password=password, seed=seed, settings=settings, version="", log=log,
        )  # fmt: skip
        try:
            _wait_ready(hub, proc, timeout_s)
        except RuntimeError:
            _stop(proc, marker)
            if attempt == 0 and "address already in use" in hub.log_tail(400).lower():
                continue
            raise
        break
    try:
        with hub.api() as api:
            hub.version = api.get("/").json()["version"]
        yield hub
    finally:
        _stop(proc, marker)
