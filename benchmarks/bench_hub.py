"""From login to a usable server: the research environment's hub, against a bare JupyterLab.

What is measured
----------------
A real JupyterHub configured like ``nanorepo up`` (:func:`nanorepo.hub.configure_local`:
configurable-http-proxy, the nanorepo service as a managed service, the spawn hook that
builds each user's storage view from the catalog's grants, ``SimpleLocalProcessSpawner``
with JupyterLab) over a small seeded repository; only the login is the DummyAuthenticator's
(``nanorepo.testing._hub``). For 1, 5 and 10 users starting at once, each user, in a
thread of this process, does what a browser does:

1. signs in (the login form, its ``_xsrf``);
2. starts a server from the spawn form (the small size);
3. follows the spawn's progress events until ready (as the spawn-pending page does), then
   opens JupyterLab (``/user/<name>/lab``, which
   signs the browser in to its server by OAuth);
4. starts a kernel (jupyter-server REST API, cookie + XSRF) and runs ``print(1 + 1)`` over
   its websocket.

The time from 1 to the kernel's answer is "login to usable server". Goal: p50 < 5 s for one
user, < 15 s for ten. The reference, run side by side: the same user servers without a hub
(``python -m jupyterlab`` started directly with a token, polled until it answers, then the
same kernel round trip), as many at once; the ratio hub / bare is what JupyterHub, the proxy,
OAuth and nanorepo's spawn hook add. Then the memory of an idle user server (RSS and PSS of
its process and of its kernel, from ``/proc``), and the spawn hook alone (catalog grants +
storage view) timed in this process.

Run ``python benchmarks/bench_hub.py [--repeat N]``. Not a test; prints tables.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as C

WHAT = """
Seconds from a browser's login to a kernel that answers, for 1, 5 and 10 users at once, on
a JupyterHub configured like `nanorepo up` (proxy, nanorepo service, spawn hook building the
storage view, local JupyterLab servers), against the same JupyterLab servers started without
a hub. Goal: p50 < 5 s for 1 user, < 15 s for 10. Then the memory of an idle user server.
"""

USERS = [f"user{i:02d}" for i in range(1, 11)]


def _form_action(page: httpx.Response) -> str:
    m = re.search(r'id="spawn_form"\s+action="([^"]+)"', page.text)
    if m is None:
        raise RuntimeError(f"no spawn form: {page.status_code} {page.text[:200]}")
    return m.group(1).replace("&amp;", "&")


def wait_progress(browser: httpx.Client, hub_url: str, user: str) -> None:
    """Follow the spawn's progress events until ready, as the spawn-pending page does
    (an EventSource on ``/hub/api/users/<name>/server/progress``, cookie + ``_xsrf``)."""
    xsrf = next((str(c.value) for c in browser.cookies.jar if c.name == "_xsrf"), "")
    url = f"{hub_url}/hub/api/users/{user}/server/progress"
    with browser.stream("GET", url, params={"_xsrf": xsrf}, timeout=300) as r:
        if r.status_code != 200:
            raise RuntimeError(f"{user}: progress answered {r.status_code}")
        for line in r.iter_lines():
            if not line.startswith("data:"):
                continue
            event = json.loads(line[5:])
            if event.get("failed"):
                raise RuntimeError(f"{user}: spawn failed: {event.get('message')}")
            if event.get("ready"):
                return
    raise RuntimeError(f"{user}: the progress stream ended before the server was ready")


def login_to_kernel(hub: Any, user: str) -> float:
    """One browser's login → server → JupyterLab → kernel answer; seconds."""
    from nanorepo.testing._hub import kernel_session

    t0 = time.perf_counter()
    with httpx.Client(timeout=120) as browser:
        hub.browser_login(browser, user)
        form = browser.get(f"{hub.url}/hub/spawn/{user}")
        browser.post(f"{hub.url}{_form_action(form)}", data={"profile": "small"})
        wait_progress(browser, hub.url, user)
        lab = browser.get(f"{hub.server_url(user)}lab", follow_redirects=True)
        if lab.status_code != 200:
            raise RuntimeError(f"{user}: JupyterLab answered {lab.status_code}")
        with kernel_session(hub.server_url(user), client=browser) as kernel:
            if kernel.run("print(1 + 1)").strip() != "2":
                raise RuntimeError(f"{user}: the kernel gave a wrong answer")
    return time.perf_counter() - t0


def at_once(n: int, job: Callable[[int], float]) -> list[float]:
    """Run ``job(0..n-1)`` in ``n`` threads started together; their seconds."""
    results: list[float] = [0.0] * n
    errors: list[BaseException] = []
    barrier = threading.Barrier(n)

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = job(i)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return results


# -- the reference: JupyterLab without a hub -------------------------------------------


@contextlib.contextmanager
def bare_lab(workdir: Path, port: int) -> Iterator[tuple[subprocess.Popen[bytes], str, str]]:
    """``python -m jupyterlab`` on ``port`` with a token, in its own directory."""
    token = secrets.token_hex(16)
    home = workdir / f"bare-{port}"
    home.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", f"--port={port}",
           "--ip=127.0.0.1", f"--IdentityProvider.token={token}", f"--notebook-dir={home}"]  # fmt: skip
    if os.geteuid() == 0:
        cmd.append("--allow-root")
    env = {**os.environ, "HOME": str(home)}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        yield proc, f"http://127.0.0.1:{port}/", token
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def start_to_kernel(workdir: Path, port: int) -> float:
    """Start a bare JupyterLab, wait until it answers, run a kernel round trip; seconds."""
    from nanorepo.testing._hub import kernel_session

    t0 = time.perf_counter()
    with bare_lab(workdir, port) as (proc, url, token), httpx.Client(timeout=5) as http:
        while True:
            if proc.poll() is not None:
                raise RuntimeError("the bare JupyterLab exited")
            with contextlib.suppress(httpx.HTTPError):
                if (
                    http.get(
                        f"{url}api/status", headers={"Authorization": f"token {token}"}
                    ).status_code
                    == 200
                ):
                    break
            time.sleep(0.05)
        with kernel_session(url, token=token) as kernel:
            if kernel.run("print(1 + 1)").strip() != "2":
                raise RuntimeError("the kernel gave a wrong answer")
        return time.perf_counter() - t0


# -- memory ------------------------------------------------------------------------------


def _mem_kb(pid: int) -> tuple[int, int]:
    """(RSS, PSS) of ``pid`` in KiB."""
    rss = pss = 0
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                pss = int(line.split()[1])
    return rss, pss


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def server_and_kernels(marker: str, user: str) -> tuple[list[int], list[int]]:
    """Pids of ``user``'s single-user server and of its kernels (marked processes)."""
    from nanorepo.hub import marked

    servers, kernels = [], []
    for pid in marked(marker):
        try:
            env = Path(f"/proc/{pid}/environ").read_bytes()
        except OSError:
            continue
        if f"JUPYTERHUB_USER={user}".encode() + b"\0" not in env:
            continue
        cmd = _cmdline(pid)
        if "jupyterhub.singleuser" in cmd or "nanorepo.hub._singleuser" in cmd:
            servers.append(pid)
        elif "ipykernel" in cmd:
            kernels.append(pid)
    return servers, kernels


def idle_memory(hub: Any, marker: str, user: str, settle_s: float) -> dict[str, tuple[int, int]]:
    """Start ``user``'s server and one kernel, let them idle, measure them."""
    from nanorepo.testing._hub import kernel_session

    url = hub.start_server(user)
    token = hub.user_token(user)
    with kernel_session(url, token=token) as kernel:
        kernel.run("import nanorepo; print(1)")
        time.sleep(settle_s)
        servers, kernels = server_and_kernels(marker, user)
        out = {"server": _mem_kb(servers[0]) if servers else (0, 0)}
        out["kernel (after import nanorepo)"] = _mem_kb(kernels[0]) if kernels else (0, 0)
    hub.stop_server(user)
    return out


def bare_memory(workdir: Path, port: int, settle_s: float) -> dict[str, tuple[int, int]]:
    from nanorepo.testing._hub import kernel_session

    with bare_lab(workdir, port) as (proc, url, token), httpx.Client(timeout=5) as http:
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if (
                    http.get(
                        f"{url}api/status", headers={"Authorization": f"token {token}"}
                    ).status_code
                    == 200
                ):
                    break
            time.sleep(0.05)
        with kernel_session(url, token=token) as kernel:
            kernel.run("import nanorepo; print(1)")
            time.sleep(settle_s)
            return {"server": _mem_kb(proc.pid)}


# -- the spawn hook alone ------------------------------------------------------------------


def hook_seconds(hub: Any, repeat: int) -> list[float]:
    """The spawn hook's work (grants from the catalog + the storage view), in-process."""
    import asyncio
    from types import SimpleNamespace

    from traitlets.config import Config

    from nanorepo.hub import NanorepoHub

    c = Config()
    c.NanorepoHub.home = str(hub.settings.home)
    c.NanorepoHub.database_url = hub.settings.database_url
    c.NanorepoHub.views_dir = tempfile.mkdtemp(prefix="bench-views-")
    nh = NanorepoHub(config=c)
    spawner = SimpleNamespace(
        user=SimpleNamespace(name="bob", admin=False, groups=[]), environment={},
        user_options={}, mem_limit=None, cpu_limit=None,
        log=SimpleNamespace(info=lambda *a: None),
    )  # fmt: skip
    out = []
    try:
        for _ in range(repeat):
            t0 = time.perf_counter()
            asyncio.run(nh.pre_spawn_hook(spawner))
            out.append(time.perf_counter() - t0)
    finally:
        nh.close()
        shutil.rmtree(c.NanorepoHub.views_dir, ignore_errors=True)
    return out


# -- main ----------------------------------------------------------------------------------


def _stats(xs: list[float]) -> tuple[str, str, str]:
    return f"{C.percentile(xs, 50):.2f}", f"{C.percentile(xs, 95):.2f}", f"{max(xs):.2f}"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--repeat", type=int, default=5, help="rounds of the 1-user case (default 5)")
    p.add_argument("--counts", default="1,5,10", help="users at once (default 1,5,10)")
    p.add_argument(
        "--settle", type=float, default=10.0, help="idle seconds before measuring memory"
    )
    args = p.parse_args()
    counts = [int(x) for x in args.counts.split(",")]
    out = C.console()
    C.header(out, "nanorepo hub: login to a usable server", WHAT)

    from nanorepo.hub._local import free_ports
    from nanorepo.testing._hub import live_hub

    goals = {1: 5.0, 10: 15.0}
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-hub-") as tmp:
        work = Path(tmp)
        with live_hub(work / "hub", extra_users=USERS, timeout_s=180) as hub:
            out.print(f"hub {hub.version} at {hub.url} (log {hub.log})\n")
            login_to_kernel(hub, USERS[0])  # warm the caches once; not counted
            hub.stop_server(USERS[0])
            for n in counts:
                rounds = max(1, args.repeat if n == 1 else round(10 / n))
                hub_s: list[float] = []
                bare_s: list[float] = []
                for _ in range(rounds):
                    users = USERS[:n]
                    hub_s += at_once(n, lambda i, users=users: login_to_kernel(hub, users[i]))
                    for u in users:
                        hub.stop_server(u)
                    ports = free_ports(n)
                    bare_s += at_once(n, lambda i, ports=ports: start_to_kernel(work, ports[i]))
                ratio = C.percentile(hub_s, 50) / C.percentile(bare_s, 50)
                goal = goals.get(n)
                verdict = (
                    f"p50 < {goal:g} s: {'met' if C.percentile(hub_s, 50) < goal else 'MISSED'}"
                    if goal
                    else ""
                )
                rows.append([f"{n}", f"{len(hub_s)}", *_stats(hub_s), *_stats(bare_s),
                             f"{ratio:.2f}x", verdict])  # fmt: skip
            columns = ["users at once", "samples", "hub p50", "hub p95", "hub max",
                       "bare p50", "bare p95", "bare max", "hub / bare (p50)", "goal"]  # fmt: skip
            title = "Login to a kernel's answer (s): hub (nanorepo up config) vs bare JupyterLab"
            out.print(C.table(title, columns, rows, text_columns=2))
            mem = idle_memory(hub, str(work / "hub"), USERS[0], args.settle)
            ref = bare_memory(work, free_ports(1)[0], args.settle)
            mem_rows = [
                [k, f"{rss / 1024:.0f}", f"{pss / 1024:.0f}"] for k, (rss, pss) in mem.items()
            ]
            mem_rows.append(["bare JupyterLab server (reference)", f"{ref['server'][0] / 1024:.0f}",
                             f"{ref['server'][1] / 1024:.0f}"])  # fmt: skip
            out.print(C.table(f"Idle user server after {args.settle:g} s (MiB)",
                              ["process", "RSS", "PSS"], mem_rows))  # fmt: skip
            hooks = hook_seconds(hub, 20)
            out.print(
                f"\nspawn hook alone (catalog grants + storage view, in-process, 20 runs): "
                f"p50 {C.percentile(hooks, 50) * 1000:.1f} ms, p95 "
                f"{C.percentile(hooks, 95) * 1000:.1f} ms"
            )


if __name__ == "__main__":
    main()
