"""Hostile clients against the live service: do they delay ``/health`` and other users?

What is measured
----------------
The live service (``uvicorn`` in its own process, as an operator runs it, on loopback) over
a seeded SQLite repository, in two phases of ``--seconds`` each:

* **quiet**: 8 normal clients (read a dataset, list its threads, post a short reply, each
  then waiting 0.1 s) and one prober of ``GET /health`` every 50 ms;
* **hostile**: the same, plus 8 hostile clients without pause, each cycling through the
  costliest requests issue 14 found: a post of the costliest Markdown pattern (``![``
  repeated, rendered in a worker process and cut off at the render budget), a 5 MiB body
  (413 while it streams), a W3C import of 1,000 annotations of 1,000 characters, a JSON
  body 5,000 levels deep, and a 30 MB description. The hostile clients run in a process of
  their own (threads of one interpreter), with their bodies encoded once: in the measuring
  process their JSON encoding held the interpreter lock and delayed the measured clients,
  which the service's users would never see.

The service runs with its defaults (admission control: ``NANOREPO_COSTLY_PER_MINUTE`` 30
per client, one costly request per core in flight), or with ``--per-minute N`` to see the
slots alone (a high ``N``) or with a tighter rate, and ``--slots N``
(``--per-minute 1000000 --slots 1024`` is admission control off, for comparison).

Reported: p50, p99 and max latency of ``/health`` and of the normal requests in each phase,
and what the hostile requests got (statuses and their own latency). Goal: the hostile
phase adds at most 100 ms to the p99 of ``/health`` and of normal requests.

Run ``python benchmarks/bench_hostile.py [--seconds 20] [--per-minute N] [--slots N]``. Bounded: 16 clients and one
prober, ``2 x --seconds`` of load. Not a test; prints tables only.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import shutil
import sys
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as C
import httpx
from rich.console import Console

WHAT = """
Latency of /health and of normal requests (read a dataset, list threads, post a short
reply) with 8 normal clients, without and with 8 hostile clients sending the costliest
requests of issue 14 (hostile Markdown, oversized and deeply nested bodies, a 1,000-item
W3C import, a 30 MB description); live service in its own process on loopback, SQLite.
Goal: hostile load adds at most 100 ms to the p99 of /health and of normal requests.
"""

HOME = C.DATA_DIR / "hostile-repo"
NORMAL, HOSTILE = 8, 8
GOAL_MS = 100.0


class Recorder:
    """Latencies (seconds) and statuses by request kind, thread-safe."""

    def __init__(self) -> None:
        self.lat: dict[str, list[float]] = defaultdict(list)
        self.status: dict[str, Counter[int]] = defaultdict(Counter)
        self.calls: list[tuple[str, float, int]] = []
        self._lock = threading.Lock()

    def call(self, kind: str, fn: Any) -> None:
        t = time.perf_counter()
        try:
            code = fn().status_code
        except httpx.HTTPError:
            code = 0  # the service closed a connection (an oversized upload)
        with self._lock:
            self.lat[kind].append(time.perf_counter() - t)
            self.status[kind][code] += 1
            self.calls.append((kind, self.lat[kind][-1], code))


def _json(doc: object) -> dict[str, Any]:
    return {"content": json.dumps(doc).encode(), "headers": {"Content-Type": "application/json"}}


def _hostile_requests(url: str, acc: str) -> list[tuple[str, dict[str, Any]]]:
    item = {"type": "Annotation", "motivation": "commenting",
            "body": {"type": "TextualBody", "value": "*a " * 333}, "target": "urn:x"}  # fmt: skip
    collection = {
        "@context": "http://www.w3.org/ns/anno.jsonld", "type": "AnnotationCollection",
        "first": {"type": "AnnotationPage",
                  "items": [{**item, "id": f"urn:a{i}"} for i in range(1000)]},
    }  # fmt: skip
    deep = "[" * 5000 + "]" * 5000
    return [
        ("hostile markdown", {"method": "POST", "url": f"{url}/datasets/{acc}/threads",
                              **_json({"title": "slow", "body": "![" * 49_000})}),
        ("5 MiB body", {"method": "POST", "url": f"{url}/datasets/{acc}/threads",
                        "content": b'{"title": "x", "body": "' + b"a" * (5 << 20) + b'"}',
                        "headers": {"Content-Type": "application/json"}}),
        ("1,000-item import", {"method": "POST", "url": f"{url}/datasets/{acc}/annotations",
                               **_json(collection)}),
        ("5,000-deep JSON", {"method": "POST", "url": f"{url}/datasets/{acc}/annotations",
                             "content": f'{{"a": {deep}}}',
                             "headers": {"Content-Type": "application/json"}}),
        ("30 MB description", {"method": "PATCH", "url": f"{url}/datasets/{acc}/mutable",
                               "content": json.dumps({"changes": {"description": "d" * (30 << 20)},
                                                      "reason": "x"}).encode(),
                               "headers": {"If-Match": "*", "Content-Type": "application/json"}}),
    ]  # fmt: skip


def run_phase(url: str, seed: Any, seconds: float, hostile: int) -> Recorder:
    """One phase: NORMAL clients and the prober, with ``hostile`` hostile clients."""
    rec = Recorder()
    stop = time.monotonic() + seconds
    acc = seed.public
    readers = ["carol", "bob", "dave", "erin"]

    def prober() -> None:
        with httpx.Client(timeout=60) as c:
            while time.monotonic() < stop:
                rec.call("GET /health", lambda: c.get(f"{url}/health"))
                time.sleep(0.05)

    def normal(i: int) -> None:
        h = seed.headers(readers[i % len(readers)])
        with httpx.Client(timeout=60, headers=h) as c:
            n = 0
            while time.monotonic() < stop:
                rec.call("GET dataset", lambda: c.get(f"{url}/datasets/{acc}"))
                rec.call("GET threads", lambda: c.get(f"{url}/datasets/{acc}/threads"))
                n += 1
                if n % 5 == 0:
                    body = {"body": f"seen by client {i}, round {n}: **fine**"}
                    rec.call("POST short reply", lambda body=body: c.post(
                        f"{url}/datasets/{acc}/threads/1/posts", json=body))  # fmt: skip
                time.sleep(0.1)

    threads = [threading.Thread(target=prober)]
    threads += [threading.Thread(target=normal, args=(i,)) for i in range(NORMAL)]
    results: Any = None
    if hostile:
        ctx = multiprocessing.get_context("spawn")
        results = ctx.Queue()
        attackers = ctx.Process(target=_attack, args=(url, acc, seed.headers("alice"),
                                                      seconds, hostile, results))  # fmt: skip
        attackers.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=seconds + 180)
    if results is not None:
        for kind, lat, code in results.get(timeout=300):
            rec.lat[kind].append(lat)
            rec.status[kind][code] += 1
        attackers.join(60)
    return rec


def _attack(url: str, acc: str, headers: dict[str, str], seconds: float, n: int, out: Any) -> None:
    """The hostile clients: ``n`` threads of this process, without pause, for
    ``seconds``; puts ``[(kind, latency s, status)]`` on ``out`` at the end."""
    rec = Recorder()
    reqs = _hostile_requests(url, acc)
    stop = time.monotonic() + seconds

    def attacker(i: int) -> None:
        with httpx.Client(timeout=120, headers=headers) as c:
            k = i
            while time.monotonic() < stop:
                kind, kw = reqs[k % len(reqs)]
                rec.call(kind, lambda kw=kw: c.request(**kw))  # headers merge with the client's
                k += 1

    threads = [threading.Thread(target=attacker, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=seconds + 180)
    out.put(rec.calls)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="length of each phase")
    parser.add_argument("--per-minute", type=int, default=None,
                        help="the service's NANOREPO_COSTLY_PER_MINUTE (default: its own)")  # fmt: skip
    parser.add_argument("--hostile", type=int, default=HOSTILE,
                        help=f"hostile clients (default {HOSTILE})")  # fmt: skip
    parser.add_argument("--slots", type=int, default=None,
                        help="the service's NANOREPO_COSTLY_SLOTS (default: one per core; "
                        "1024 with --per-minute 1000000 is admission control off)")  # fmt: skip
    args = parser.parse_args(argv)
    C.quiet_warnings()
    out = Console(width=200 if not sys.stdout.isatty() else None, highlight=False,
                  soft_wrap=True, markup=False)  # fmt: skip
    C.header(out, "nanorepo hostile-client benchmark", WHAT)
    from nanorepo.repository import Repository
    from nanorepo.settings import Settings
    from nanorepo.testing._service import live_service, seed_repository

    shutil.rmtree(HOME, ignore_errors=True)
    env = {"NANOREPO_USER": "alice"}
    if args.per_minute is not None:
        env["NANOREPO_COSTLY_PER_MINUTE"] = str(args.per_minute)
    if args.slots is not None:
        env["NANOREPO_COSTLY_SLOTS"] = str(args.slots)
    settings = Settings.from_env(HOME / "home", env=env)
    with Repository(settings, create=True) as repo:
        seed = seed_repository(repo, HOME / "work")
    phases: dict[str, Recorder] = {}
    with live_service(settings, repo=Repository(settings, create=True), process=True) as live:
        out.print(
            f"- service: {live.url} (uvicorn in its own process), {args.seconds:g} s a phase, "
            f"costly requests: {settings.costly_per_minute}/minute per client, "
            f"{settings.costly_slots or 'one per core'} in flight, render budget "
            f"{settings.render_budget_ms} ms\n"
        )
        httpx.get(f"{live.url}/health", timeout=60)
        for name, hostile in (("quiet", 0), ("hostile", args.hostile)):
            phases[name] = run_phase(live.url, seed, args.seconds, hostile)
    shutil.rmtree(HOME, ignore_errors=True)
    rows = []
    normal_kinds = ("GET /health", "GET dataset", "GET threads", "POST short reply")
    for kind in normal_kinds:
        base = [x * 1000 for x in phases["quiet"].lat[kind]]
        for name, rec in phases.items():
            ms = [x * 1000 for x in rec.lat[kind]]
            if not ms:
                continue
            added = C.percentile(ms, 99) - C.percentile(base, 99)
            rows.append([kind, name, str(len(ms)), f"{C.percentile(ms, 50):.1f}",
                         f"{C.percentile(ms, 99):.1f}", f"{max(ms):.1f}",
                         f"{added:+.1f}" if name == "hostile" else "",
                         dict(phases[name].status[kind]).__repr__()])  # fmt: skip
    columns = ["request", "phase", "n", "p50 ms", "p99 ms", "max ms", "p99 added ms", "statuses"]
    out.print(C.table(f"Normal requests, {NORMAL} clients, with and without {args.hostile} hostile "
                      f"ones (goal: p99 added < {GOAL_MS:.0f} ms)", columns, rows,
                      text_columns=2))  # fmt: skip
    hostile_rows = []
    rec = phases["hostile"]
    for kind in sorted(k for k in rec.lat if k not in normal_kinds):
        s = [x * 1000 for x in rec.lat[kind]]
        hostile_rows.append([kind, str(len(s)), f"{C.percentile(s, 50):.0f}",
                             f"{max(s):.0f}", repr(dict(rec.status[kind]))])  # fmt: skip
    out.print(C.table("What the hostile requests got", ["request", "n", "p50 ms", "max ms",
                      "statuses"], hostile_rows))  # fmt: skip


if __name__ == "__main__":
    main()
