"""The command line and the service: ``serve`` as a real process, operator commands on the
local repository (``token``, ``user``), and the read/access commands going through the
service when NANOREPO_URL is set, printing what the local repository would print."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from nanorepo.client import Client
from tests.cli.test_cli import run


def _clean_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NANOREPO_", "JUPYTERHUB_"))}
    env.update(NANOREPO_HOME=str(home), COLUMNS="200")
    return env


def _remote_env(service: Any, tmp_path: Path, user: str | None) -> dict[str, str]:
    """A user server: an empty home, the service URL and maybe a token."""
    home = tmp_path / f"home-{user}"
    home.mkdir(exist_ok=True)
    env = _clean_env(home)
    env["NANOREPO_URL"] = service.url
    if user is not None:
        env["NANOREPO_TOKEN"] = service.seed.tokens[user]
    return env


def _local_env(service: Any) -> dict[str, str]:
    """The operator on the service's machine: its home and catalog."""
    env = _clean_env(service.settings.home)
    env.update(NANOREPO_DATABASE_URL=service.settings.database_url, NANOREPO_USER="alice")
    return env


def test_read_commands_through_the_service_print_what_local_ones_print(
    service: Any, tmp_path: Path
) -> None:
    seed = service.seed
    root, local = _remote_env(service, tmp_path, "root"), _local_env(service)
    # the admin sees everything, so the remote answers equal the local ones
    assert run(root, "list").stdout == run(local, "list").stdout
    assert json.loads(run(root, "list", "--json").stdout) == json.loads(
        run(local, "list", "--json").stdout
    )
    assert json.loads(run(root, "search", "pores", "--json").stdout) == json.loads(
        run(local, "search", "pores", "--json").stdout
    )
    remote_show = json.loads(run(root, "show", seed.granted, "--json").stdout)
    local_show = json.loads(run(local, "show", seed.granted, "--json").stdout)
    for doc in (remote_show, local_show):  # where the bytes are differs, nothing else
        doc.pop("path")
        for item in doc["images"] + doc["files"]:
            item.pop("path"), item.pop("storage_path")
    assert remote_show == local_show
    assert remote_show["images"][0]["name"] == "cell1"
    assert json.loads(run(root, "history", seed.granted, "--json").stdout) == json.loads(
        run(local, "history", seed.granted, "--json").stdout
    )
    # and each user sees their own share: bob the granted dataset, anonymous public only
    bob = json.loads(run(_remote_env(service, tmp_path, "bob"), "list", "--json").stdout)
    assert {d["accession"] for d in bob["items"]} == {seed.public, seed.granted}
    anon = json.loads(run(_remote_env(service, tmp_path, None), "list", "--json").stdout)
    assert [d["accession"] for d in anon["items"]] == [seed.public]
    shown = run(_remote_env(service, tmp_path, "bob"), "show", seed.granted).stdout
    assert "cell1" in shown and f"{seed.granted}@v1" in shown
    # the user servers' homes stay empty: nothing local was created
    assert [list(h.iterdir()) for h in tmp_path.glob("home-*")] == [[], [], []]


def test_errors_and_operator_commands_with_a_service_url(service: Any, tmp_path: Path) -> None:
    seed = service.seed
    bob = _remote_env(service, tmp_path, "bob")
    p = run(bob, "show", seed.hidden, check=False)
    assert p.returncode == 1
    assert f"error: no dataset '{seed.hidden}'" in p.stderr and "hint:" in p.stderr
    assert "Traceback" not in p.stderr
    p = run(bob, "set", seed.granted, "title=mine", "--reason", "x", check=False)
    assert p.returncode == 1 and "bob may not edit" in p.stderr
    # operator commands never quietly start an empty local repository on a user server
    for args in (["token", "create", "mallory"], ["verify", seed.public], ["user", "role", "bob",
                                                                            "admin"]):  # fmt: skip
        p = run(bob, *args, check=False)
        assert p.returncode == 1, args
        assert "reaches the repository through the service" in p.stderr and "--local" in p.stderr
    assert list((tmp_path / "home-bob").iterdir()) == []
    down = dict(bob, NANOREPO_URL="http://127.0.0.1:9")
    p = run(down, "list", check=False)
    assert p.returncode == 1 and "cannot reach the nanorepo service" in p.stderr


def test_edits_and_access_through_the_service(service: Any, tmp_path: Path) -> None:
    seed = service.seed
    alice = _remote_env(service, tmp_path, "alice")
    p = run(alice, "set", seed.public, "license=CC0-1.0", "--reason", "waived")
    assert p.stdout.strip() == "license: 'CC-BY-4.0' -> 'CC0-1.0'"
    p = run(alice, "set", seed.public, "license=CC0-1.0", "--reason", "again")
    assert "nothing changed" in p.stderr
    hist = json.loads(run(alice, "history", seed.public, "--json").stdout)
    assert (hist[-1]["new"], hist[-1]["who"], hist[-1]["reason"]) == ("CC0-1.0", "alice", "waived")

    with Client(service.url, seed.tokens["carol"]) as carol:
        assert seed.hidden not in {d["accession"] for d in carol.datasets()}
        run(alice, "grant", seed.hidden, "--user", "carol")
        assert carol.dataset(seed.hidden)["accession"] == seed.hidden
        p = run(alice, "grant", seed.hidden, "--user", "carol", "--revoke", "--json")
        assert json.loads(p.stdout)["revoked"] is True
        assert seed.hidden not in {d["accession"] for d in carol.datasets()}
    p = run(alice, "grant", seed.hidden, "--user", "carol", "--group", "lab", check=False)
    assert p.returncode == 1 and "either --user or --group" in p.stderr

    p = run(alice, "release", seed.granted, "--reason", "paper out", "--json")
    assert json.loads(p.stdout)["access"] == "public"
    p = run(alice, "release", seed.granted, "--reason", "again", check=False)
    assert p.returncode == 1 and "public already" in p.stderr
    p = run(alice, "embargo", seed.granted, "--until", "2099-01-01", "--reason", "x", check=False)
    assert p.returncode == 1 and "alice may not embargo" in p.stderr  # curators only
    cur = _remote_env(service, tmp_path, "cur")
    p = run(cur, "embargo", seed.granted, "--until", "2099-01-01", "--reason", "retracted")
    assert f"{seed.granted} is now embargoed until 2099-01-01" in p.stderr


def test_operator_tokens_and_roles_on_the_local_repository(service: Any) -> None:
    local = _local_env(service)
    p = run(local, "token", "create", "frank", "--role", "depositor", "--note", "ci")
    token = p.stdout.strip()
    assert p.stdout == token + "\n" and token.startswith("nr_")  # only the token on stdout
    assert "frank" in p.stderr and "depositor" in p.stderr
    with Client(service.url, token) as frank:
        assert frank.health()["user"] == "frank"
        assert seed_hidden(service) not in {d["accession"] for d in frank.datasets()}
        run(local, "user", "role", "frank", "curator")
        assert seed_hidden(service) in {d["accession"] for d in frank.datasets()}
        p = run(local, "token", "revoke", "frank")
        assert "revoked 1 token" in p.stderr
        with pytest.raises(PermissionError, match="not valid"):
            frank.health()
    p = run(local, "token", "create", "x", "--admin", "--role", "reader", check=False)
    assert p.returncode == 1 and "contradict" in p.stderr
    admin = run(local, "token", "create", "ops", "--admin", "--expires-days", "1").stdout.strip()
    with Client(service.url, admin) as ops:
        assert ops.health()["user"] == "ops"
    # the same access commands work locally (as NANOREPO_USER)
    p = run(local, "--local", "grant", seed_hidden(service), "--group", "lab")
    assert "granted group lab" in p.stderr


def seed_hidden(service: Any) -> str:
    return str(service.seed.hidden)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _serve(env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "nanorepo", "serve", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )


def _wait_healthy(proc: subprocess.Popen[str], url: str) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"serve exited {proc.returncode}: {proc.stderr.read()}")  # type: ignore[union-attr]
        try:
            r = httpx.get(url, timeout=2)
            if r.status_code == 200:
                body: dict[str, Any] = r.json()
                return body
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    proc.kill()
    raise AssertionError("serve did not answer /health within 60 s")


def _stop(proc: subprocess.Popen[str]) -> tuple[float, str]:
    t0 = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    try:
        _out, err = proc.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise AssertionError("serve did not stop within 10 s of SIGTERM") from None
    return time.monotonic() - t0, err


def _assert_clean_stop(proc: subprocess.Popen[str], took: float, err: str) -> None:
    # uvicorn shuts down gracefully (the app's lifespan ends), then re-raises the signal
    # so the exit status says what stopped it, as a supervisor expects
    assert proc.returncode in (0, -signal.SIGTERM), err
    assert "Application shutdown complete" in err
    assert "Traceback" not in err
    assert took < 5


def test_serve_answers_health_and_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    env = _clean_env(tmp_path / "home")
    # no repository yet: serve creates none and says so, without a traceback
    proc = _serve(env, "--port", str(_free_port()))
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode != 0
    assert "there is no nanorepo repository at" in err and "nanorepo init" in err
    assert "Traceback" not in err and not (tmp_path / "home" / "catalog.sqlite").exists()
    subprocess.run(
        [sys.executable, "-m", "nanorepo", "init"], env=env, check=True, capture_output=True
    )
    port = _free_port()
    proc = _serve(env, "--port", str(port))
    try:
        health = _wait_healthy(proc, f"http://127.0.0.1:{port}/health")
        assert health["status"] == "ok" and health["database"] == "sqlite"
        assert health["user"] is None
    finally:
        took, err = _stop(proc)
    _assert_clean_stop(proc, took, err)
    assert f"http://127.0.0.1:{port}/" in err

    # as a hub-managed service: the hub's URL gives the port, the prefix the path
    port = _free_port()
    hub_env = dict(
        env,
        JUPYTERHUB_SERVICE_URL=f"http://127.0.0.1:{port}",
        JUPYTERHUB_SERVICE_PREFIX="/services/nanorepo/",
    )
    proc = _serve(hub_env)
    try:
        health = _wait_healthy(proc, f"http://127.0.0.1:{port}/services/nanorepo/health")
        assert health["status"] == "ok"
    finally:
        took, err = _stop(proc)
    _assert_clean_stop(proc, took, err)
