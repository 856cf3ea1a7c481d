"""Annotation threads under load: 50 concurrent clients writing and reading one dataset.

What is measured
----------------
Latency (p50, p99) and throughput of the live service (``uvicorn`` in its own process, as
an operator runs it, on loopback) over a seeded SQLite repository
(:func:`nanorepo.testing._service.seed_repository`), with 50 signed-in clients on the same
public dataset, each repeating: open a thread (``POST .../threads``, a region anchor, a
Markdown body), reply to a thread (``POST .../threads/{id}/posts``), list the threads
(``GET .../threads``, first page of 50). Run in rounds so that the dataset's thread count
grows (every round adds 50 x ``--per-client`` threads and as many replies), in two modes:

* **paced**: each client waits a random 1-5 s between actions (50 people annotating at
  once, each acting every 3 s on average: ~17 requests/s offered);
* **saturated**: no waiting (the most the service can do; latency there is queueing:
  with 50 clients always waiting, p50 ~ 50 / throughput).

Every write re-indexes the dataset's search document (:func:`nanorepo.search.
index_dataset`, which includes the threads' text), so the cost of a write grows with the
dataset's threads; the last table times ``index_dataset`` alone against the number of
threads (up to 5,000, added in-process at the end), and on a dataset of 100,000 images (the
search benchmark's cached catalog, when it exists).

Goal: create and list p99 < 100 ms on SQLite.

Run ``python benchmarks/bench_annotations.py [--rounds N] [--per-client N]``. Not a test;
prints tables only.
"""

from __future__ import annotations

import argparse
import random
import shutil
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as C
from rich.console import Console

WHAT = """
p50/p99 latency of creating threads, replying and listing threads with 50 concurrent
signed-in clients on one dataset of a seeded SQLite repository, live service in its own
uvicorn process on loopback; paced (a random 1-5 s between a client's actions) and
saturated (no waiting); the dataset's thread count grows round by round. Goal: create and
list p99 < 100 ms on SQLite. Then index_dataset alone against threads and images.
"""

HOME = C.DATA_DIR / "annotations-repo"
CLIENTS = 50
GOAL_MS = 100.0
OPS = ("create thread", "reply", "list threads")
BODY = (
    "The ring at the **upper left** looks incomplete: I count seven of eight corners. "
    "Could this be a labelling gap (Nup96-SNAP) rather than a missing subunit? See the "
    "region at x 1.2-1.5 um; the neighbouring pores are complete. Tagging for review."
)


@dataclass
class Latencies:
    by_op: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, op: str, seconds: float) -> None:
        with self.lock:
            self.by_op[op].append(seconds)


def _client(
    url: str, headers: dict[str, str], acc: str, image: str, per_client: int,
    think: Callable[[], float], lat: Latencies, seed: int, errors: list[BaseException],
) -> None:  # fmt: skip
    """One user: ``per_client`` times open a thread, reply to one, list the threads."""
    import httpx

    rng = random.Random(seed)
    base = f"/datasets/{acc}/threads"
    mine: list[int] = []
    try:
        with httpx.Client(base_url=url, headers=headers, timeout=300) as c:
            for k in range(per_client):
                x0 = rng.uniform(0, 700)  # the seeded image is 960 x 1280 nm
                anchor = {"kind": "region", "image": image, "unit": "nanometer",
                          "shape": "box", "x": [x0, x0 + 200.0], "y": [100.0, 300.0]}  # fmt: skip
                body = {"title": f"Incomplete ring {seed}-{k}", "body": BODY,
                        "anchor": anchor, "tags": ["ring", "review"]}  # fmt: skip
                for op in OPS:
                    time.sleep(think())
                    t0 = time.perf_counter()
                    if op == "create thread":
                        r = c.post(base, json=body)
                    elif op == "reply":
                        r = c.post(f"{base}/{rng.choice(mine)}/posts",
                                   json={"body": f"Agreed ({seed}-{k}): a labelling gap."})  # fmt: skip
                    else:
                        r = c.get(base, params={"limit": 50})
                    lat.add(op, time.perf_counter() - t0)
                    if r.status_code not in (200, 201):
                        raise RuntimeError(f"{op} -> {r.status_code}: {r.text[:300]}")
                    if op == "create thread":
                        mine.append(r.json()["id"])
    except BaseException as exc:  # reported by the caller
        errors.append(exc)


def load(
    url: str, tokens: list[str], acc: str, image: str, per_client: int, paced: bool, seed: int
) -> tuple[Latencies, float]:
    """One round: every client runs; returns the latencies and the wall time."""
    lat = Latencies()
    errors: list[BaseException] = []
    threads = []
    for i, tok in enumerate(tokens):
        rng = random.Random(seed * 1000 + i)

        def think(rng: random.Random = rng) -> float:
            return rng.uniform(1.0, 5.0) if paced else 0.0

        headers = {"Authorization": f"token {tok}"}
        args = (url, headers, acc, image, per_client, think, lat, seed * 1000 + i, errors)
        threads.append(threading.Thread(target=_client, args=args))
    t0 = time.perf_counter()
    for t in threads:
        t.start()
        if paced:  # spread the first actions, as people do not all click at once
            time.sleep(1.0 / len(tokens))
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return lat, time.perf_counter() - t0


def seed(out: Console) -> tuple[Any, Any, list[str]]:
    """A fresh seeded repository with ``CLIENTS`` reader tokens; settings, seed, tokens."""
    from nanorepo.policy import Role, create_token
    from nanorepo.repository import Repository
    from nanorepo.settings import Settings
    from nanorepo.testing._service import seed_repository

    shutil.rmtree(HOME, ignore_errors=True)
    settings = Settings.from_env(HOME / "home", env={"NANOREPO_USER": "alice"})
    with Repository(settings, create=True) as repo:
        seeded = seed_repository(repo, HOME / "work")
        with repo.catalog.session() as s:
            tokens = [
                create_token(s, f"user{i:02d}", role=Role.reader, note="bench_annotations")
                for i in range(CLIENTS)
            ]
            s.commit()
    out.print(f"- repository: {HOME} (seeded, SQLite), dataset {seeded.public}")
    return settings, seeded, tokens


def _image_name(settings: Any, acc: str) -> str:
    from nanorepo.repository import Repository

    with Repository(settings, create=True) as repo:
        return str(repo.show(acc)["images"][0]["name"])


def _row(mode: str, threads_before: int, op: str, xs: list[float], seconds: float) -> list[str]:
    ms = [x * 1000 for x in xs]
    p99 = C.percentile(ms, 99)
    return [
        mode, f"{threads_before:,}", op, str(len(ms)), f"{C.percentile(ms, 50):.1f}",
        f"{p99:.1f}", f"{max(ms):.1f}", f"{len(ms) / seconds:.0f}", f"{p99 / GOAL_MS:.2f}",
    ]  # fmt: skip


def time_index_dataset(url: str, accession: str, repeat: int = 5) -> list[str]:
    """A row of the index_dataset table: ``accession``'s threads and images, and the median
    milliseconds of a full rebuild and of a re-index after one new thread (rolled back)."""
    from sqlmodel import col, delete, func, select

    import nanorepo.annotations as an
    from nanorepo.catalog import Catalog
    from nanorepo.catalog.models import DatasetField, Image, Thread, Version
    from nanorepo.search import index_dataset
    from nanorepo.search._index import _SOURCE

    cat = Catalog(url)
    try:
        with cat.session() as s:
            ds = cat.dataset(s, accession)
            ds_id = int(ds.id or 0)
            n_threads = s.exec(
                select(func.count()).select_from(Thread).where(col(Thread.dataset_id) == ds_id)
            ).one()
            v = s.exec(
                select(Version).where(Version.dataset_id == ds_id,
                                      Version.number == ds.latest_version)
            ).one()  # fmt: skip
            n_images = s.exec(
                select(func.count()).select_from(Image).where(col(Image.version_id) == v.id)
            ).one()
        rebuild, after_write = [], []
        for _ in range(repeat):
            with cat.session() as s:
                ds = cat.dataset(s, accession)
                # without its bookkeeping row the document is built from scratch
                s.exec(delete(DatasetField).where(col(DatasetField.dataset_id) == ds_id,
                                                  col(DatasetField.field) == _SOURCE))  # fmt: skip
                t0 = time.perf_counter()
                index_dataset(s, ds_id)
                rebuild.append(time.perf_counter() - t0)
                an.create_thread(s, ds, version=ds.latest_version, image_row=None,
                                 anchor={"kind": "dataset"}, title="One more thread",
                                 body=BODY, who="alice")  # fmt: skip
                t0 = time.perf_counter()
                index_dataset(s, ds_id)
                after_write.append(time.perf_counter() - t0)
                s.rollback()
        return [accession, f"{n_threads:,}", f"{n_images:,}",
                f"{sorted(rebuild)[len(rebuild) // 2] * 1000:.1f}",
                f"{sorted(after_write)[len(after_write) // 2] * 1000:.1f}"]  # fmt: skip
    finally:
        cat.close()


def grow_threads(url: str, accession: str, total: int, out: Console) -> None:
    """Open threads (each with one reply) in-process until ``accession`` has ``total``."""
    from sqlmodel import col, func, select

    import nanorepo.annotations as an
    from nanorepo.catalog import Catalog
    from nanorepo.catalog.models import Thread

    cat = Catalog(url)
    try:
        with cat.session() as s:
            ds = cat.dataset(s, accession)
            have = s.exec(
                select(func.count()).select_from(Thread).where(col(Thread.dataset_id) == ds.id)
            ).one()
            for i in range(have, total):
                t = an.create_thread(s, ds, version=1, image_row=None,
                                     anchor={"kind": "dataset"}, title=f"Bulk thread {i}",
                                     body=BODY, tags=["bulk"], who="alice")  # fmt: skip
                an.reply(s, t, body=f"Reply {i}: agreed, a labelling gap.", who="alice")
            s.commit()
        out.print(f"- added {max(total - have, 0):,} threads in-process ({total:,} in all)")
    finally:
        cat.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="rounds per mode (3)")
    parser.add_argument(
        "--per-client", type=int, default=4, help="threads each client opens per round (4)"
    )
    args = parser.parse_args(argv)
    C.quiet_warnings()
    out = Console(width=200 if not sys.stdout.isatty() else None, highlight=False,
                  soft_wrap=True, markup=False)  # fmt: skip
    C.header(out, "nanorepo annotations benchmark", WHAT)
    from nanorepo.repository import Repository
    from nanorepo.testing._service import live_service

    settings, seeded, tokens = seed(out)
    acc = seeded.public
    image = _image_name(settings, acc)
    rows: list[list[str]] = []
    index_rows: list[list[str]] = []
    index_rows.append(time_index_dataset(settings.database_url, acc))
    threads_now = int(index_rows[-1][1].replace(",", ""))
    with live_service(settings, repo=Repository(settings, create=True), process=True) as live:
        out.print(f"- service: {live.url} (uvicorn in its own process), {CLIENTS} clients\n")
        for mode in ("paced", "saturated"):
            for _round in range(args.rounds):
                lat, seconds = load(live.url, tokens, acc, image, args.per_client,
                                    mode == "paced", seed=len(rows) + 1)  # fmt: skip
                for op in OPS:
                    rows.append(_row(mode, threads_now, op, lat.by_op[op], seconds))
                    out.print("  " + " | ".join(rows[-1]))
                threads_now += CLIENTS * args.per_client
                index_rows.append(time_index_dataset(settings.database_url, acc))
    grow_threads(settings.database_url, acc, 5000, out)
    index_rows.append(time_index_dataset(settings.database_url, acc))
    big = C.DATA_DIR / "search-catalog" / "catalog.sqlite"
    if big.exists():
        row = time_index_dataset(f"sqlite:///{big}", "S-NANO2", repeat=3)
        index_rows.append([f"{row[0]} (bench_search catalog)", *row[1:]])
    out.print("")
    columns = ["mode", "threads before", "request", "requests", "p50 ms", "p99 ms", "max ms",
               "req/s", "p99 / goal"]  # fmt: skip
    title = (
        f"Annotations, {CLIENTS} concurrent clients on one dataset (goal p99 < {GOAL_MS:.0f} ms)"
    )
    out.print(C.table(title, columns, rows, text_columns=3))
    out.print("")
    out.print(
        C.table(
            "index_dataset alone (median, rolled back): what every annotation write adds",
            ["dataset", "threads", "images", "full rebuild ms", "after one new thread ms"],
            index_rows,
        )
    )


if __name__ == "__main__":
    main()
