"""``nanorepo up`` as an operator runs it: started in a fresh home, it answers at its URL;
the admin signs in with the password printed once and approves a new account; that
person's JupyterLab server and kernel run; SIGTERM stops everything (no process left
behind, found by the environment mark every child carries); a second run keeps the
accounts, homes and data and prints no password.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from nanorepo.hub import MARK, marked
from nanorepo.hub._local import free_ports
from nanorepo.repository import Repository
from nanorepo.settings import Settings
from nanorepo.testing._hub import configurable_http_proxy, kernel_session
from nanorepo.testing._service import seed_repository

pytestmark = pytest.mark.slow

PASSWORD = "correct horse battery staple"


class Up:
    """A running ``nanorepo up``: its URL, what it printed (read by a thread), its process."""

    def __init__(self, proc: subprocess.Popen[str], mark: str) -> None:
        self.proc, self.mark = proc, mark
        self.out: list[str] = []
        self.url = ""
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.out.append(line)

    def read_until(self, pattern: str, timeout_s: float = 120) -> re.Match[str]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for line in list(self.out):
                if m := re.search(pattern, line):
                    return m
            if not self._reader.is_alive() and self.proc.poll() is not None:
                break
            time.sleep(0.1)
        raise AssertionError(f"nanorepo up never printed {pattern!r}: {self.out}")

    def close(self) -> None:
        self._reader.join(timeout=10)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


@contextmanager
def nanorepo_up(
    home: Path, port: int, *, demo: bool = False, timeout_s: float = 120
) -> Iterator[Up]:
    """``nanorepo up`` in ``home`` (with the demo datasets if ``demo``) until the block ends."""
    mark = f"test-up-{uuid.uuid4().hex}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NANOREPO_", "JUPYTERHUB_"))}
    proxy_bin = str(Path(configurable_http_proxy()).parent)
    env |= {MARK: mark, "PATH": proxy_bin + os.pathsep + env.get("PATH", "")}
    cmd = [sys.executable, "-m", "nanorepo", "up", "--home", str(home),
           *([] if demo else ["--no-demo"]), "--port", str(port)]  # fmt: skip
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, text=True)
    up = Up(proc, mark)
    try:
        up.url = up.read_until(r"nanorepo is up at (\S+)/", timeout_s).group(1)
        yield up
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                raise
        up.close()


def _xsrf(page: httpx.Response) -> str:
    m = re.search(r'name="_xsrf"\s+value="([^"]+)"', page.text) or re.search(
        r'xsrf_token:\s*"([^"]+)"', page.text
    )
    assert m is not None, page.text[:300]
    return m.group(1)


def _login(client: httpx.Client, url: str, user: str, password: str) -> httpx.Response:
    page = client.get(f"{url}/hub/login")
    return client.post(
        f"{url}/hub/login",
        data={"username": user, "password": password, "_xsrf": _xsrf(page)},
        follow_redirects=False,
    )


def _stopped_cleanly(up: Up) -> None:
    up.proc.send_signal(signal.SIGTERM)
    assert up.proc.wait(timeout=90) == 0
    assert marked(up.mark) == []  # no process of this run is left


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A home with a small seeded repository (instead of the demo data, for speed)."""
    home = tmp_path_factory.mktemp("up") / "home"
    with Repository(Settings.from_env(home, env={"NANOREPO_USER": "alice"}), create=True) as repo:
        seed_repository(repo, home.parent / "seed")
    return home


def test_up_serves_signs_in_spawns_and_stops_leaving_nothing(home: Path) -> None:
    (port,) = free_ports(1)
    with nanorepo_up(home, port) as up, httpx.Client(timeout=60) as admin:
        password = up.read_until(r"admin account: admin\s+first password: (\S+)").group(1)
        assert up.url == f"http://127.0.0.1:{port}"
        health = httpx.get(f"{up.url}/services/nanorepo/health", timeout=30)
        assert health.status_code == 200 and health.json()["status"] == "ok"
        assert _login(admin, up.url, "admin", "not the password").status_code != 302
        assert _login(admin, up.url, "admin", password).status_code == 302
        # the admin finds account approval in the hub's navigation
        nav = admin.get(f"{up.url}/hub/home").text
        assert 'href="/hub/authorize">Accounts</a>' in nav
        assert 'href="/services/nanorepo/">Repository</a>' in nav
        # ada signs up with who she is; she may sign in only once the admin approved her
        with httpx.Client(timeout=60) as ada:
            page = ada.get(f"{up.url}/hub/signup")
            for field in ("name", "email", "affiliation", "orcid"):
                assert f'name="{field}"' in page.text
            profile = {
                "name": "Ada Lovelace",
                "email": "ada@lab.example.org",
                "affiliation": "EMBL Heidelberg",
                "orcid": "0000-0002-1825-0097",
            }
            form = {"username": "ada", "signup_password": PASSWORD,
                    "signup_password_confirmation": PASSWORD, "_xsrf": _xsrf(page)}  # fmt: skip
            bad = ada.post(
                f"{up.url}/hub/signup", data={**form, **profile, "orcid": "0000-0002-1825-0098"}
            )
            assert "ORCID iD must look like" in bad.text  # a wrong check digit
            bad = ada.post(f"{up.url}/hub/signup", data={**form, **profile, "affiliation": " "})
            assert "Affiliation is required." in bad.text
            assert "ada" not in admin.get(f"{up.url}/hub/authorize").text  # nothing created
            signup = ada.post(f"{up.url}/hub/signup", data={**form, **profile})
            assert signup.status_code == 200, signup.text[:300]
            assert _login(ada, up.url, "ada", PASSWORD).status_code != 302
            accounts = admin.get(f"{up.url}/hub/authorize").text
            assert "Ada Lovelace" in accounts and "EMBL Heidelberg" in accounts
            assert 'href="https://orcid.org/0000-0002-1825-0097"' in accounts
            assert 'href="/hub/authorize/admin"' not in accounts  # no self-unauthorize link
            # the landing page shows the admin her pending sign-up; anonymous sees none
            landing = admin.get(f"{up.url}/services/nanorepo/")
            assert "Not signed in" in landing.text  # the service does not know her yet
            signin = re.search(r'class="nr-signin" href="([^"]+)"', landing.text)
            assert signin, landing.text[-2000:]
            url = f"{up.url}{signin.group(1).replace('&amp;', '&')}"
            landing = admin.get(url, follow_redirects=True)  # the hub's OAuth, and back
            assert "Signed in as <strong>admin</strong>" in landing.text, landing.text[-2000:]
            assert "Sign-ups waiting for approval" in landing.text, landing.text[-2000:]
            assert "Ada Lovelace" in landing.text and "ada@lab.example.org" in landing.text
            public = httpx.get(f"{up.url}/services/nanorepo/", timeout=30).text
            assert "Public pores" in public and "Sign-ups waiting" not in public
            assert "/hub/user-redirect/lab?nanorepo-dataset=" in public
            # a stray click on one's own account does not lock the admin out
            refused = admin.get(f"{up.url}/hub/authorize/admin")
            assert refused.status_code == 400
            assert "cannot unauthorize your own account" in refused.text
            accounts = admin.get(f"{up.url}/hub/authorize").text
            assert re.search(r'id="user-admin"[^>]*data-authorized="yes"', accounts)
            admin.get(f"{up.url}/hub/authorize/ada")
            assert _login(ada, up.url, "ada", PASSWORD).status_code == 302
            landing = admin.get(f"{up.url}/services/nanorepo/", follow_redirects=True).text
            assert "Ada Lovelace" not in landing  # approved: no longer pending
            # her server starts from the spawn form; a kernel runs in her home
            form = ada.get(f"{up.url}/hub/spawn/ada")
            action = re.search(r'id="spawn_form"\s+action="([^"]+)"', form.text)
            assert action is not None
            ada.post(f"{up.url}{action.group(1).replace('&amp;', '&')}", data={"profile": "small"})
            lab = ada.get(f"{up.url}/user/ada/lab", follow_redirects=True)
            for _ in range(60):  # the spawn-pending page, until the server is up
                if lab.status_code == 200 and "JupyterLab" in lab.text:
                    break
                time.sleep(1)
                lab = ada.get(f"{up.url}/user/ada/lab", follow_redirects=True)
            assert "JupyterLab" in lab.text
            with kernel_session(f"{up.url}/user/ada/", client=ada) as kernel:
                out = kernel.run(
                    "import os; open('notes.txt', 'w').write('kept'); print(os.getcwd())"
                )
            assert out.strip() == str(home / "users" / "ada")
            with kernel_session(f"{up.url}/user/ada/", client=ada):
                # hub, proxy, service, culler, ada's server and this kernel: all marked
                assert len(marked(up.mark)) >= 6
                _stopped_cleanly(up)
    assert up.read_until(r"admin account").group(0)  # printed once, in the first run

    with nanorepo_up(home, port) as again, httpx.Client(timeout=60) as ada:
        assert not any("first password" in line for line in again.out)
        assert _login(ada, again.url, "ada", PASSWORD).status_code == 302
        assert (home / "users" / "ada" / "notes.txt").read_text() == "kept"
        datasets = httpx.get(f"{again.url}/services/nanorepo/datasets", timeout=30).json()
        assert [d["title"] for d in datasets["items"]] == ["Public pores"]
        _stopped_cleanly(again)


def test_second_up_on_the_same_home_is_refused(home: Path) -> None:
    (port,) = free_ports(1)
    with nanorepo_up(home, port) as first:
        other = subprocess.run(
            [sys.executable, "-m", "nanorepo", "up", "--home", str(home), "--no-demo",
             "--port", str(port + 1)],
            capture_output=True, text=True, timeout=60,
            env={k: v for k, v in os.environ.items() if not k.startswith("NANOREPO_")},
        )  # fmt: skip
        assert other.returncode == 1
        assert "already running for this home" in other.stderr
        assert first.proc.poll() is None
        _stopped_cleanly(first)


def _up_once(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NANOREPO_", "JUPYTERHUB_"))}
    env["PATH"] = str(Path(configurable_http_proxy()).parent) + os.pathsep + env.get("PATH", "")
    env[MARK] = mark = f"test-up-{uuid.uuid4().hex}"
    cmd = [sys.executable, "-m", "nanorepo", "up", "--home", str(home), "--no-demo", *args]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert marked(mark) == []
    return done


def test_port_in_use_is_a_clear_error(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = _up_once(tmp_path / "home", "--port", str(port))
    assert done.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in done.stderr
    assert "choose another port with --port" in done.stderr
    assert not (tmp_path / "home" / "hub" / "jupyterhub.sqlite").exists()


def test_hub_that_fails_to_start_is_reported_and_cleaned_up(tmp_path: Path) -> None:
    config = tmp_path / "broken_config.py"
    config.write_text("raise RuntimeError('this configuration is broken on purpose')\n")
    (port,) = free_ports(1)
    done = _up_once(tmp_path / "home", "--port", str(port), "--config", str(config))
    assert done.returncode == 1
    assert "JupyterHub stopped unexpectedly" in done.stderr or "error:" in done.stderr
    assert "this configuration is broken on purpose" in done.stderr
    assert "nanorepo is up" not in done.stdout
