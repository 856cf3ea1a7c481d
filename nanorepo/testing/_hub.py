"""A real JupyterHub for tests: the nanorepo service as its managed service, and user
servers (JupyterLab) spawned with nanorepo's storage views.

:func:`live_hub` starts ``jupyterhub`` configured like the embedded hub of ``nanorepo up``
(:func:`nanorepo.hub.configure_local`: the same service definition, roles, spawn hook,
``SimpleLocalProcessSpawner`` with homes under ``<workdir>/home/users``), except that it
signs people in with the DummyAuthenticator and a shared password (login mechanics are
not what these tests are about; ``tests/hub/test_up.py`` covers NativeAuthenticator),
knows a fixed set of users and groups, and runs no idle culler. The repository behind
the service is freshly seeded (:func:`nanorepo.testing._service.seed_repository`).
Everything listens on loopback ports chosen at start; the public URL is the proxy's, so
the service is reached at ``/services/nanorepo/`` exactly as users reach it.

The hub knows the users of :data:`nanorepo.testing._service.ROLES` plus ``frank`` (in no
catalog group, but in the hub group ``lab``, which is granted the embargoed dataset) and
``eve`` (a hub user without the scope to use the service). ``root`` is a hub admin.
A hub service ``test-admin`` (role ``admin``) holds :attr:`LiveHub.admin_token`, to create
users' tokens, start servers and change users.

Every process the hub starts carries :data:`MARKER` (=the work directory), so a test hub
leaves nothing running even if it is killed. configurable-http-proxy comes from
:func:`nanorepo.hub.find_proxy` or, when missing, is installed once with npm from
``hub/package-lock.json`` under :func:`cache_dir`. :func:`overlay_venv` builds the
virtualenv in which the same tests run against another JupyterHub release.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import sysconfig
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from nanorepo.errors import ConfigurationError
from nanorepo.hub import CHP_VERSION, MARK, find_proxy, stop_marked
from nanorepo.hub._local import LocalHub, free_ports
from nanorepo.hub._proxy import lock_dir
from nanorepo.repository import Repository
from nanorepo.settings import Settings
from nanorepo.testing._service import ROLES, SeededRepository, seed_repository

__all__ = [
    "CHP_VERSION",
    "HUB_GROUPS",
    "HUB_USERS",
    "MARKER",
    "SERVICE_NAME",
    "KernelSession",
    "LiveHub",
    "cache_dir",
    "configurable_http_proxy",
    "kernel_session",
    "live_hub",
    "overlay_venv",
]

SERVICE_NAME = "nanorepo"
#: Hub users: the seeded repository's users plus frank (hub group only) and eve (no access).
HUB_USERS = sorted({u for u in ROLES if u != "anonymous"} | {"frank", "eve"})
HUB_GROUPS = {"lab": ["dave", "frank"]}
_HUB_ADMINS = ["root"]
_NO_ACCESS = {"eve"}
#: Set in the environment of a test hub and of everything it starts (proxy, service, user
#: servers, kernels), to the hub's work directory: how :func:`_stop` finds what is left.
MARKER = MARK


def cache_dir() -> Path:
    """Where test tools are installed once (``NANOREPO_TEST_CACHE``, else the user cache)."""
    explicit = os.environ.get("NANOREPO_TEST_CACHE")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "nanorepo"


def configurable_http_proxy() -> str:
    """The ``configurable-http-proxy`` command: the one ``nanorepo up`` would use, else
    npm-installed in the cache (from ``hub/package-lock.json`` when this is a checkout).

    The install goes to a temporary directory renamed into place, so an interrupted or
    concurrent install never leaves a half-installed proxy behind.
    """
    with contextlib.suppress(ConfigurationError):
        return find_proxy()
    prefix = cache_dir() / f"configurable-http-proxy-{CHP_VERSION}"
    exe = prefix / "node_modules" / ".bin" / "configurable-http-proxy"
    if exe.exists():
        return str(exe)
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError(
            "the hub tests need configurable-http-proxy: run ./dev up, install Node.js "
            f"(with npm), or `npm install -g configurable-http-proxy@{CHP_VERSION}`"
        )
    prefix.parent.mkdir(parents=True, exist_ok=True)
    tmp = prefix.with_name(f"{prefix.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    locked = lock_dir()
    if locked is not None:
        for name in ("package.json", "package-lock.json"):
            shutil.copy(locked / name, tmp / name)
        cmd = [npm, "ci", "--prefix", str(tmp)]
    else:
        cmd = [npm, "install", "--prefix", str(tmp), f"configurable-http-proxy@{CHP_VERSION}"]
    subprocess.run(
        [*cmd, "--no-audit", "--no-fund", "--loglevel=error"],
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

    # -- user servers --------------------------------------------------------------------

    def server_url(self, user: str, name: str = "") -> str:
        """The public URL of ``user``'s server ``name`` ("" the default server)."""
        return f"{self.url}/user/{user}/{name + '/' if name else ''}"

    def start_server(
        self, user: str, name: str = "", *, options: dict[str, Any] | None = None,
        timeout_s: float = 120,
    ) -> str:  # fmt: skip
        """Start ``user``'s server through the hub API (as the admin), wait until it is
        ready, return its URL."""
        path = f"/users/{user}/servers/{name}" if name else f"/users/{user}/server"
        with self.api() as api:
            r = api.post(path, json=options or {})
            if r.status_code not in (201, 202, 400):
                raise RuntimeError(f"starting {user}'s server: {r.status_code} {r.text[:300]}")
            self.wait_server(user, name, timeout_s=timeout_s, api=api)
        return self.server_url(user, name)

    def wait_server(
        self, user: str, name: str = "", *, timeout_s: float = 120, api: httpx.Client | None = None
    ) -> None:
        """Until ``user``'s server ``name`` is ready (a clear error if it fails to start)."""
        own = api is None
        api = api or self.api()
        try:
            deadline = time.monotonic() + timeout_s
            seen = False
            while time.monotonic() < deadline:
                server = (api.get(f"/users/{user}").json().get("servers") or {}).get(name)
                if server:
                    seen = True
                    if server.get("ready"):
                        return
                elif seen:  # the hub dropped it: the spawn failed
                    raise RuntimeError(
                        f"{user}'s server {name!r} failed to start:\n{self.log_tail()}"
                    )
                time.sleep(0.2)
            raise RuntimeError(
                f"{user}'s server did not start in {timeout_s} s:\n{self.log_tail()}"
            )
        finally:
            if own:
                api.close()

    def stop_server(self, user: str, name: str = "", *, timeout_s: float = 60) -> None:
        """Stop ``user``'s server ``name`` and wait until it is gone."""
        path = f"/users/{user}/servers/{name}" if name else f"/users/{user}/server"
        with self.api() as api:
            api.delete(path)
            deadline = time.monotonic() + timeout_s
            while time.monotonic() < deadline:
                if name not in (api.get(f"/users/{user}").json().get("servers") or {}):
                    return
                time.sleep(0.2)
        raise RuntimeError(f"{user}'s server did not stop in {timeout_s} s")

    def view_dir(self, user: str) -> Path:
        """The local storage view the spawn hook made for ``user``."""
        from nanorepo.hub import view_dir_name

        return self.settings.home / "views" / view_dir_name(user)

    def log_tail(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no hub log)"


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


class KernelSession:
    """A kernel of a Jupyter server, driven over the jupyter-server REST API and the
    kernel's websocket (the messaging protocol JupyterLab itself speaks)."""

    def __init__(self, ws: Any, session: str) -> None:
        self._ws = ws
        self._session = session

    def run(self, code: str, *, timeout_s: float = 120) -> str:
        """Execute ``code``; its stdout. A :class:`RuntimeError` with the traceback if
        it raised."""
        msg_id = uuid.uuid4().hex
        header = {"msg_id": msg_id, "msg_type": "execute_request", "username": "test",
                  "session": self._session, "version": "5.3",
                  "date": datetime.now(UTC).isoformat()}  # fmt: skip
        content = {"code": code, "silent": False, "store_history": False,
                   "user_expressions": {}, "allow_stdin": False, "stop_on_error": True}  # fmt: skip
        request = {"header": header, "parent_header": {}, "metadata": {}, "content": content,
                   "channel": "shell", "buffers": []}  # fmt: skip
        self._ws.send(json.dumps(request))
        out: list[str] = []
        error: str | None = None
        deadline = time.monotonic() + timeout_s
        self._ws.settimeout(timeout_s)
        while time.monotonic() < deadline:
            msg = json.loads(self._ws.recv())
            if msg.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            kind = msg["header"]["msg_type"]
            content = msg.get("content", {})
            if kind == "stream" and content.get("name") == "stdout":
                out.append(content["text"])
            elif kind == "error":
                error = "\n".join(content.get("traceback") or [content.get("evalue", "")])
            elif kind == "status" and content.get("execution_state") == "idle":
                break
        else:
            raise TimeoutError(f"the kernel did not finish within {timeout_s} s")
        if error is not None:
            raise RuntimeError("the kernel raised:\n" + _ANSI.sub("", error))
        return "".join(out)


def _cookies_for(client: httpx.Client, url: str) -> list[Any]:
    """The cookies of ``client`` a browser would send to ``url``, most specific path first."""
    path = urlsplit(url).path
    found = [c for c in client.cookies.jar if path.startswith(c.path or "/")]
    return sorted(found, key=lambda c: -len(c.path or ""))


@contextmanager
def kernel_session(
    server_url: str, *, token: str | None = None, client: httpx.Client | None = None,
    timeout_s: float = 60,
) -> Iterator[KernelSession]:  # fmt: skip
    """Start a kernel on the Jupyter server at ``server_url`` and connect to it; shut it
    down afterwards.

    Authenticated either with a hub ``token`` (``Authorization: token``) or as a browser:
    ``client`` holds the server's cookies, and posts carry its ``_xsrf`` cookie as
    ``X-XSRFToken``, which jupyter-server requires of cookie-authenticated writes.
    """
    import websocket  # websocket-client: a plain synchronous client, enough for tests

    own = client is None
    http = client or httpx.Client(timeout=timeout_s)
    headers: dict[str, str] = {}
    if token is not None:
        headers["Authorization"] = f"token {token}"
    else:
        xsrf = [c for c in _cookies_for(http, server_url) if c.name == "_xsrf"]
        if xsrf:  # the server's own, not the hub's (which has the path /hub/)
            headers["X-XSRFToken"] = str(xsrf[0].value)
    base = server_url.rstrip("/")
    r = http.post(f"{base}/api/kernels", json={"name": "python3"}, headers=headers)
    if r.status_code != 201:
        raise RuntimeError(f"starting a kernel: {r.status_code} {r.text[:300]}")
    kernel_id = r.json()["id"]
    session = uuid.uuid4().hex
    ws_url = (
        re.sub(r"^http", "ws", base) + f"/api/kernels/{kernel_id}/channels?session_id={session}"
    )
    ws_headers = [f"{k}: {v}" for k, v in headers.items() if k == "Authorization"]
    cookies = _cookies_for(http, server_url) if token is None else []
    cookie = "; ".join(f"{c.name}={c.value}" for c in cookies) or None
    ws = websocket.create_connection(ws_url, header=ws_headers, cookie=cookie, timeout=timeout_s)
    try:
        yield KernelSession(ws, session)
    finally:
        ws.close()
        with contextlib.suppress(httpx.HTTPError):
            http.delete(f"{base}/api/kernels/{kernel_id}", headers=headers)
        if own:
            http.close()


def _config(
    *, service_env: dict[str, str], admin_token: str, password: str, users: list[str]
) -> str:
    access = [u for u in users if u not in _NO_ACCESS]
    return f"""\
# Generated by nanorepo.testing._hub for one test run: the local hub of `nanorepo up`
# (configure_local reads NANOREPO_HOME and NANOREPO_UP_* from the environment), with
# test users, groups and roles.
from nanorepo.hub import configure_local

c = get_config()  # noqa
c.JupyterHub.log_level = "INFO"
c.NanorepoHub.allow_anonymous = False
c.NanorepoHub.all_users_use_service = False  # eve must not have it: roles below
c.NanorepoHub.cull_idle = False
c.NanorepoHub.service_environment = {service_env!r}
configure_local(c)
c.JupyterHub.authenticator_class = "dummy"
c.DummyAuthenticator.password = {password!r}
c.Authenticator.allow_all = False
c.Authenticator.admin_users = set()
c.Authenticator.allowed_users = {set(users)!r}
c.JupyterHub.load_groups = {{g: {{"users": u}} for g, u in {HUB_GROUPS!r}.items()}}
c.JupyterHub.load_roles = [
    *c.JupyterHub.load_roles,
    {{"name": "nanorepo-users", "scopes": ["access:services!service={SERVICE_NAME}"],
      "users": {access!r}}},
    {{"name": "admin", "users": {_HUB_ADMINS!r}, "services": ["test-admin"]}},
]
c.JupyterHub.services = [
    *c.JupyterHub.services, {{"name": "test-admin", "api_token": {admin_token!r}}},
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


def _stop(proc: subprocess.Popen[bytes], marker: str) -> None:
    """SIGTERM the hub (it stops its proxy, services and servers), then whatever it left
    running: its process group, and the processes carrying its marker (the proxy, the
    service and the servers run in sessions of their own, so they outlive a hub that was
    killed)."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    stop_marked(marker, name=MARKER)


@contextmanager
def live_hub(
    workdir: Path,
    *,
    database_url: str | None = None,
    python: str = sys.executable,
    timeout_s: float = 90,
    extra_users: Sequence[str] = (),
    extra_config: str = "",
) -> Iterator[LiveHub]:
    """Run JupyterHub with the nanorepo service over a freshly seeded repository.

    Parameters
    ----------
    workdir:
        An empty directory for the repository (``home/``, with user homes and views),
        the hub's database, config and log.
    database_url:
        Catalog of the repository (default SQLite in the home).
    python:
        The interpreter running the hub, the service and user servers (another
        virtualenv tests another JupyterHub release).
    extra_users:
        More hub users (readers, like carol), e.g. for load benchmarks.
    extra_config:
        Python appended to the hub's configuration (e.g. another authenticator).
    """
    workdir.mkdir(parents=True, exist_ok=True)
    env_in = {"NANOREPO_USER": "alice"}
    if database_url:
        env_in["NANOREPO_DATABASE_URL"] = database_url
    settings = Settings.from_env(workdir / "home", env=env_in)
    repo = Repository(settings, create=True)
    try:
        seed = seed_repository(repo, workdir / "seed")
    finally:
        repo.close()
    admin_token, password = secrets.token_hex(24), secrets.token_urlsafe(12)
    chp = configurable_http_proxy()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTERHUB_", "NANOREPO_"))}
    marker = env[MARKER] = str(workdir)
    config = workdir / "jupyterhub_config.py"
    config.write_text(
        _config(service_env={"NANOREPO_USER": "nanorepo"}, admin_token=admin_token,
                password=password, users=sorted({*HUB_USERS, *extra_users}))
        + extra_config
    )  # fmt: skip
    for attempt in range(2):  # again with other ports if one was taken meanwhile
        proxy, proxy_api, hub_port, service = free_ports(4)
        local = LocalHub(home=settings.home, port=proxy, hub_port=hub_port,
                         proxy_api_port=proxy_api, service_port=service, proxy=chp,
                         database_url=settings.database_url)  # fmt: skip
        log = workdir / f"jupyterhub-{attempt}.log"
        url = f"http://127.0.0.1:{proxy}"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [python, "-m", "jupyterhub", "-f", str(config)],
                cwd=workdir, env={**env, **local.environ()}, stdout=out,
                stderr=subprocess.STDOUT, start_new_session=True,
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
