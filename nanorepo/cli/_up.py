"""``nanorepo up``: the whole research environment on one machine, until Ctrl-C.

It prepares the repository (catalog, and the demo reference data on first start), then
runs JupyterHub (``hub/jupyterhub_config.py`` → :func:`nanorepo.hub.configure_local`)
as a child in a session of its own, and the hub starts the proxy, the nanorepo service,
the idle culler and the users' servers. On Ctrl-C, SIGTERM or SIGHUP it stops the hub,
which stops the rest; whatever is still running afterwards (a server that ignored its
stop, kernels of a killed server, everything of a hub that crashed) carries this run's
:data:`~nanorepo.hub.MARK` in its environment and is ended too. A lock file in the home
keeps two ``nanorepo up`` off one home; the mark of a run that was killed outright is
remembered, and its leftovers are ended at the next start.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING

import click
from rich.console import Console

from nanorepo.errors import ConfigurationError
from nanorepo.settings import Settings

if TYPE_CHECKING:
    from nanorepo.cli._context import Context as _Ctx

__all__ = ["up_cmd"]

err = Console(stderr=True, highlight=False)

READY_TIMEOUT_S = 180.0
STOP_TIMEOUT_S = 30.0


@contextlib.contextmanager
def _home_lock(hub: Path) -> Iterator[IO[str]]:
    """Hold ``hub/up.lock`` for the run: one ``nanorepo up`` per home."""
    hub.mkdir(parents=True, exist_ok=True)
    with (hub / "up.lock").open("a+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            raise ConfigurationError(
                f"nanorepo up is already running for this home (pid {f.read().strip() or '?'})",
                hint="use that one, stop it (Ctrl-C), or give another --home",
            ) from None
        f.seek(0)
        f.truncate()
        f.write(str(os.getpid()))
        f.flush()
        yield f


def _check_port(ip: str, port: int) -> None:
    family = socket.AF_INET6 if ":" in ip else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((ip, port))
        except OSError as exc:
            raise ConfigurationError(
                f"cannot listen on {ip}:{port}: {exc.strerror}",
                hint="choose another port with --port, or stop what uses it",
            ) from None


def _admin_exists(db: Path, name: str) -> bool:
    """Whether the hub's database already holds NativeAuthenticator's ``name`` account."""
    if not db.exists():
        return False
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        try:
            row = conn.execute("SELECT 1 FROM users_info WHERE username = ?", (name,)).fetchone()
        except sqlite3.OperationalError:  # no such table yet
            return False
    return row is not None


def _prepare_repository(settings: Settings, hub: Path, *, demo: bool) -> None:
    """Open (and migrate) the catalog; deposit the demo data on first start."""
    from nanorepo.cli._demo import deposit_demo
    from nanorepo.repository import Repository

    done = hub / "demo-deposited"
    with Repository(settings, create=True) as repo:  # `up` is one of the three that create
        repo.ready()
        if not demo or done.exists():
            return
        err.print("first start: generating and depositing the demo reference datasets ...")
        started = time.monotonic()
        results = deposit_demo(repo, progress=lambda msg: err.print(f"[dim]·[/dim] {msg}"))
        for r in results:
            err.print(f"  {r['accession']}  {r['title']}")
        err.print(f"demo data ready in {time.monotonic() - started:.0f} s")
    done.write_text("\n".join(r["accession"] for r in results) + "\n")


def _wait_ready(url: str, proc: subprocess.Popen[bytes], stop: threading.Event) -> bool:
    """Until the hub and the service answer through the proxy; False if stopped first."""
    import httpx

    deadline = time.monotonic() + READY_TIMEOUT_S
    with httpx.Client(timeout=5) as client:
        while time.monotonic() < deadline and not stop.is_set():
            if proc.poll() is not None:
                raise ConfigurationError(f"JupyterHub exited during start ({proc.returncode})")
            with contextlib.suppress(httpx.HTTPError):
                hub = client.get(f"{url}/hub/api/")
                service = client.get(f"{url}/services/nanorepo/health")
                if hub.status_code == 200 and service.status_code in (200, 401):
                    return True
            stop.wait(0.25)
    if stop.is_set():
        return False
    raise ConfigurationError(f"JupyterHub did not answer at {url} within {READY_TIMEOUT_S:.0f} s")


def _stop(proc: subprocess.Popen[bytes], mark: str) -> int:
    """Stop the hub (it stops proxy, services, servers), then end what it left behind;
    returns how many processes had to be ended that way."""
    from nanorepo.hub import stop_marked

    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    return len(stop_marked(mark))


def _tail(log: Path, lines: int = 30) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


@contextlib.contextmanager
def _signals_set(stop: threading.Event) -> Iterator[None]:
    """Ctrl-C, SIGTERM and SIGHUP set ``stop`` instead of killing this process midway."""
    sigs = [signal.SIGINT, signal.SIGTERM, signal.SIGHUP]
    old = {s: signal.getsignal(s) for s in sigs}
    for s in sigs:
        signal.signal(s, lambda *_: stop.set())
    try:
        yield
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)


def run_up(settings: Settings, *, ip: str, port: int, demo: bool, config: Path | None) -> int:
    """Run the environment until a stop signal; the exit code."""
    from nanorepo.hub import MARK, find_proxy, stop_marked
    from nanorepo.hub._local import (
        ADMIN,
        LocalHub,
        config_file,
        first_password_file,
        free_ports,
        hub_dir,
    )

    proxy = find_proxy()
    home = settings.home
    hub = hub_dir(home)
    with _home_lock(hub):
        last_mark = hub / "up.mark"
        if last_mark.exists():  # a previous run was killed outright: end its leftovers
            stop_marked(last_mark.read_text().strip())
        _check_port(ip, port)
        _prepare_repository(settings, hub, demo=demo)
        password = None
        hub_db = hub / "jupyterhub.sqlite"
        if not _admin_exists(hub_db, ADMIN):
            password = secrets.token_urlsafe(12)
            secret = first_password_file(home)
            secret.unlink(missing_ok=True)
            fd = os.open(secret, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(password)
        hub_port, proxy_api, service = free_ports(3, exclude=(port,))
        local = LocalHub(
            home=home, ip=ip, port=port, hub_port=hub_port, proxy_api_port=proxy_api,
            service_port=service, proxy=proxy,
            database_url=settings.database_url, storage=str(settings.storage),
        )  # fmt: skip
        mark = os.environ.get(MARK) or f"nanorepo-up-{uuid.uuid4().hex}"
        last_mark.write_text(mark)
        env = {
            k: v for k, v in os.environ.items() if not k.startswith(("JUPYTERHUB_", "NANOREPO_"))
        }
        env |= {**local.environ(), MARK: mark}
        log = hub / "jupyterhub.log"
        shown = f"[{ip}]" if ":" in ip else ip
        url = f"http://{'127.0.0.1' if ip in ('0.0.0.0', '') else shown}:{port}"
        stop = threading.Event()
        with _signals_set(stop):
            err.print(f"starting JupyterHub (log: {log}) ...")
            with log.open("ab") as out:
                proc = subprocess.Popen(
                    [sys.executable, "-m", "jupyterhub", "-f", str(config or config_file(home))],
                    cwd=hub, env=env, stdout=out, stderr=subprocess.STDOUT,
                    start_new_session=True,
                )  # fmt: skip
            failed = False
            try:
                if _wait_ready(url, proc, stop):
                    if password is not None and not _admin_exists(hub_db, ADMIN):
                        password = None  # another authenticator (e.g. an OpenID provider)
                        err.print("no admin password: this hub signs people in otherwise")
                    _announce(url, home, password, log)
                while not stop.is_set() and proc.poll() is None:
                    stop.wait(0.5)
                failed = not stop.is_set()  # the hub ended on its own
            except ConfigurationError as exc:
                err.print(f"[red]error:[/red] {exc.message}")
                failed = True
            finally:
                err.print("stopping the hub, the proxy, the service and every user server ...")
                ended = _stop(proc, mark)
                last_mark.unlink(missing_ok=True)
                first_password_file(home).unlink(missing_ok=True)
        if ended:
            err.print(f"ended {ended} process(es) the hub had left running")
        if failed:
            err.print(f"[red]JupyterHub stopped unexpectedly[/red] ({proc.returncode}); its log:")
            err.print(_tail(log), markup=False, highlight=False)
            return 1
        err.print("stopped; run `nanorepo up` again to continue where you left off")
        return 0


def _announce(url: str, home: Path, password: str | None, log: Path) -> None:
    click.echo(f"nanorepo is up at {url}/")
    if password is not None:
        click.echo(f"admin account: admin   first password: {password}")
        err.print(
            f"  (shown only this once; change it at {url}/hub/change-password after signing in)"
        )
    err.print(
        f"  people sign up at {url}/hub/signup; the admin approves them at "
        f"{url}/hub/authorize\n  home: {home}   hub log: {log}\n  stop with Ctrl-C"
    )


@click.command("up")
@click.option(
    "--port", default=8000, show_default=True, type=click.IntRange(1, 65535),
    help="Port people connect to (the hub's proxy).",
)  # fmt: skip
@click.option(
    "--ip", default="127.0.0.1", show_default=True,
    help="Interface to listen on; 0.0.0.0 for every interface (then put TLS in front).",
)  # fmt: skip
@click.option(
    "--home", "home", type=click.Path(file_okay=False),
    help="Repository home (catalog, storage, hub state, user homes). "
    "Default: nanorepo --home, $NANOREPO_HOME or ~/.nanorepo.",
)  # fmt: skip
@click.option(
    "--no-demo", is_flag=True,
    help="Do not deposit the demo reference datasets on first start (an empty repository).",
)  # fmt: skip
@click.option(
    "--config", type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="JupyterHub configuration to run instead of hub/jupyterhub_config.py (it should "
    "call nanorepo.hub.configure_local).",
)  # fmt: skip
@click.pass_obj
def up_cmd(
    c: _Ctx, port: int, ip: str, home: str | None, no_demo: bool, config: Path | None
) -> None:
    """(operator) Run the research environment on this machine until Ctrl-C.

    JupyterHub with JupyterLab servers for every user, the nanorepo service (signed in
    through the hub), the idle culler, and on first start the demo reference datasets.
    The first start prints the admin account's password, once. Each user's server sees
    the public datasets and the embargoed ones they are granted (storage view, at server
    start). Ctrl-C or SIGTERM stops everything; running it again keeps all data.
    """
    settings = Settings.from_env(home) if home else c.settings
    sys.exit(run_up(settings, ip=ip, port=port, demo=not no_demo, config=config))
