"""The JupyterLab Repository panel in a real browser over a 10,000-dataset catalog.

What is measured
----------------
In Debian's Chromium driven by Playwright (``extension/ui-tests/tests/bench.spec.ts``),
against JupyterLab with nanorepo's extension and server extension, in front of the nanorepo
service (its own process, on loopback) over the catalog of ``bench_search.py`` (10,000
datasets, ~1,000,000 images, SQLite; built once and cached):

* **typing a query → results on screen**: from the search box's input event (the whole
  query at once, as a paste or the last keystroke) to the first animation frame after the
  result list shows the answer. It includes the panel's 100 ms typing pause, the search
  and the facet counts (two requests, in parallel) through the user's Jupyter server;
* **clicking a dataset → its page rendered**: from the click on a result to the first frame
  after the page shows the summary, versions and the sealed metadata (the image table's
  first page and the threads load alongside). Every click opens a dataset not opened before;
* **scrolling the image table of a version with 100,000 images** (virtualised): the time
  from a scroll step to the second frame after it, the number of rows in the DOM, and a
  jump 5,000 rows down until those rows are filled in.

Times are taken inside the page (``performance.now()``), so Playwright's own round trips
are not counted. Beside each figure: when the last ``nanorepo/api/`` answer of the
interaction arrived (Resource Timing; for a search that is the facet counts, asked for
once the results are shown), and, as the reference run side by side, the same requests
sent straight to the service with httpx, one after the other (no browser, no Jupyter
server).

Goal: p95 < 300 ms for both, on loopback.

Run ``python benchmarks/bench_lab.py [--searches N] [--opens N] [--rebuild]`` (needs the
extension built and its UI tests' npm packages, as ``./dev`` installs them). Not a test;
prints tables only.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import _common as C
import bench_search
import httpx
from rich.console import Console

ROOT = Path(__file__).resolve().parents[1]
UI_TESTS = ROOT / "extension" / "ui-tests"
GOAL_MS = 300.0
WHAT = "browser: typing a query -> results, clicking a dataset -> its page (10,000 datasets)"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def jupyter_lab(service_url: str, service_token: str, workdir: Path) -> Iterator[str]:
    """JupyterLab with nanorepo's server extension, forwarding to the service; its URL
    (with the token in the query)."""
    port, token = _free_port(), secrets.token_hex(16)
    (workdir / "root").mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NANOREPO_", "JUPYTER"))}
    env.update(
        NANOREPO_URL=service_url,
        NANOREPO_TOKEN=service_token,
        NANOREPO_STORAGE=str(workdir / "storage"),
        JUPYTER_CONFIG_DIR=str(workdir / "config"),
        JUPYTER_RUNTIME_DIR=str(workdir / "runtime"),
        JUPYTER_PLATFORM_DIRS="1",
    )
    cmd = [
        sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root",
        "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={workdir / 'root'}",
        "--ServerApp.jpserver_extensions={'nanorepo.jupyter': True}",
        "--NanorepoExtension.copy_notebooks=False", "--LabApp.news_url=None",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
    ]  # fmt: skip
    log = (workdir / "lab.log").open("wb")
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 90
        while True:
            if proc.poll() is not None:
                raise SystemExit(f"jupyter lab exited: see {workdir / 'lab.log'}")
            try:
                r = httpx.get(f"{base}api/status", headers={"Authorization": f"token {token}"})
                if r.status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit(f"jupyter lab did not start: see {workdir / 'lab.log'}")
            time.sleep(0.2)
        yield f"{base}lab?token={token}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def queries(info: dict[str, Any], n: int) -> list[str]:
    """Varied queries: common and rare words, two words, filters, words with a filter."""
    rng = random.Random(20261121)
    common, medium, rare = bench_search.COMMON_WORD, bench_search.MEDIUM_WORD, info["rare_word"]
    base = [
        common, medium, rare, "nuclear pore", f"{common} {medium}", "technique:STED",
        'technique:STED organism:"Homo sapiens"', f"{medium} technique:SIM",
        f"{medium} license:cc0-1.0", f"access:public {medium}",
    ]  # fmt: skip
    out = []
    while len(out) < n:
        q = rng.choice(base)
        if out and q == out[-1]:
            continue  # the same text twice fires no input event
        out.append(q)
    return out


def reference(
    service_url: str, token: str, qs: list[str], accessions: list[str]
) -> dict[str, list[float]]:
    """The same requests straight to the service (search + facets; dataset + sealed
    metadata), sequentially, in ms."""
    headers = {"Authorization": f"token {token}"}
    out: dict[str, list[float]] = {"search": [], "open": []}
    with httpx.Client(base_url=service_url, headers=headers, timeout=30) as c:
        for q in qs:
            t0 = time.perf_counter()
            c.get("/datasets", params={"q": q, "limit": 20}).raise_for_status()
            c.get("/facets", params={"q": q}).raise_for_status()
            out["search"].append((time.perf_counter() - t0) * 1000)
        for acc in accessions:
            t0 = time.perf_counter()
            c.get(f"/datasets/{acc}").raise_for_status()
            c.get(f"/datasets/{acc}/versions/v1/metadata").raise_for_status()
            out["open"].append((time.perf_counter() - t0) * 1000)
    return out


def _pct(values: list[float], p: float) -> float:
    return float(statistics.quantiles(values, n=100, method="inclusive")[int(p) - 1])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rebuild", action="store_true", help="build the catalog again")
    parser.add_argument("--searches", type=int, default=60, help="queries typed")
    parser.add_argument("--opens", type=int, default=60, help="dataset pages opened")
    args = parser.parse_args(argv)
    C.quiet_warnings()
    out = Console(width=None if sys.stdout.isatty() else 200, highlight=False, soft_wrap=True,
                  markup=False)  # fmt: skip
    C.header(out, "nanorepo JupyterLab panel benchmark", WHAT)
    cli = UI_TESTS / "node_modules" / "@playwright" / "test" / "cli.js"
    if not cli.exists() or not (ROOT / "extension" / "labextension").exists():
        raise SystemExit("build the extension and install its UI tests first: ./dev test does")
    chromium = os.environ.get("CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    info = bench_search.catalog(out, rebuild=args.rebuild)
    out.print(f"- catalog: {info['datasets']:,} datasets, {info['images']:,} images (SQLite)")
    from nanorepo.repository import Repository
    from nanorepo.testing._service import live_service

    settings = bench_search._settings(bench_search.HOME)
    token = bench_search.tokens(settings)["bob"]
    qs = queries(info, args.searches)
    with (
        tempfile.TemporaryDirectory(prefix="bench-lab-") as tmp,
        live_service(settings, repo=Repository(settings, create=True), process=True) as live,
        jupyter_lab(live.url, token, Path(tmp)) as lab,
    ):
        out.print(f"- service: {live.url} (own process); JupyterLab: {lab.split('?')[0]}")
        result = Path(tmp) / "samples.json"
        env = {k: v for k, v in os.environ.items() if not k.startswith("NANOREPO_")}
        env.update(
            NANOREPO_BENCH_LAB=lab, NANOREPO_BENCH_OUT=str(result),
            NANOREPO_BENCH_QUERIES=json.dumps(qs), NANOREPO_BENCH_OPENS=str(args.opens),
            NANOREPO_BENCH_BIG=info["big"],
            NANOREPO_UI_OUTPUT=str(Path(tmp) / "results"), CHROMIUM=chromium, CI="true",
        )  # fmt: skip
        proc = subprocess.run(
            ["node", str(cli), "test", "tests/bench.spec.ts"], cwd=UI_TESTS, env=env,
            capture_output=True, text=True, timeout=3600,
        )  # fmt: skip
        if proc.returncode != 0 or not result.exists():
            raise SystemExit(f"the browser run failed:\n{proc.stdout[-5000:]}{proc.stderr[-3000:]}")
        samples = json.loads(result.read_text())
        with httpx.Client(base_url=live.url, headers={"Authorization": f"token {token}"}) as c:
            accs = [
                d["accession"]
                for d in c.get("/datasets", params={"limit": args.opens}).json()["items"]
            ]
        ref = reference(live.url, token, qs, accs)
    rows = []
    for what, label in (("search", "typing a query -> results"),
                        ("open", "clicking a dataset -> page rendered")):  # fmt: skip
        ms = [s["ms"] for s in samples if s["what"] == what]
        net = [s["network_ms"] for s in samples if s["what"] == what]
        p95 = _pct(ms, 95)
        rows.append([
            label, str(len(ms)), f"{statistics.median(ms):.0f}", f"{p95:.0f}", f"{max(ms):.0f}",
            f"{statistics.median(net):.0f}", f"{statistics.median(ref[what]):.0f}",
            f"{_pct(ref[what], 95):.0f}", "met" if p95 < GOAL_MS else "MISSED",
        ])  # fmt: skip
    scroll = [s["ms"] for s in samples if s["what"] == "scroll"]
    dom_rows = max((int(s["network_ms"]) for s in samples if s["what"] == "scroll"), default=0)
    jump = [s["ms"] for s in samples if s["what"] == "jump"]
    out.print("")
    if scroll:
        out.print(
            f"- image table of {info['big']}@v1 (100,000 images), 120 scroll steps of 10 rows: "
            f"two frames after each step p50 {statistics.median(scroll):.0f} ms, "
            f"p95 {_pct(scroll, 95):.0f} ms, max {max(scroll):.0f} ms; at most {dom_rows} rows "
            f"in the DOM; a jump to row 5,000 filled in {jump[0] / 1000:.1f} s "
            "(25 pages followed in order)"
        )
    out.print(C.table(
        f"Repository panel in Chromium, 10,000 datasets (goal p95 < {GOAL_MS:.0f} ms)",
        ["interaction", "n", "p50 ms", "p95 ms", "max ms", "last API answer p50 ms",
         "service alone p50 ms", "service alone p95 ms", "goal"],
        rows, text_columns=1,
    ))  # fmt: skip


if __name__ == "__main__":
    main()
