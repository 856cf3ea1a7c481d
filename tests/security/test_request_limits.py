"""Issue 14, finding 4: one request could take hours of CPU or gigabytes of memory.

Bodies are limited on every route while they stream in (413 naming the limit); JSON
nesting, metadata fields, imports and posts are bounded; Markdown renders in worker
processes within a time budget, so a hostile post neither runs long nor delays others.
"""

from __future__ import annotations

import dataclasses
import socket
import statistics
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from nanorepo.annotations import MAX_IMPORT_ITEMS
from nanorepo.service._app import MAX_JSON_DEPTH
from nanorepo.service._schemas import MAX_FIELD_CHARS

LIMIT = 4 << 20  # the default NANOREPO_MAX_BODY_BYTES
#: The costliest Markdown pattern found (~35 µs a character): over the render budget.
HOSTILE_POST = "![" * 49_000


def _problem(r: httpx.Response, status: int, *words: str) -> dict[str, Any]:
    assert r.status_code == status, (r.status_code, r.text[:300])
    assert r.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = r.json()
    for w in words:
        assert w in body["detail"], (w, body["detail"])
    return body


def test_a_body_over_the_limit_is_413_before_it_is_read(service: Any) -> None:
    seed = service.seed
    h = {**seed.headers("alice"), "Content-Type": "application/json"}
    url = f"{service.url}/datasets/{seed.public}/threads"
    big = b'{"title": "x", "body": "' + b"a" * (LIMIT + 10) + b'"}'
    r = httpx.post(url, content=big, headers=h, timeout=60)
    body = _problem(r, 413, f"{LIMIT:,} bytes", "NANOREPO_MAX_BODY_BYTES")
    assert body["limit"] == LIMIT

    # Chunked, no Content-Length: the 413 arrives while the body is still coming, after
    # about the limit, not after the whole body was buffered.
    u = httpx.URL(url)
    with socket.create_connection((u.host, u.port), timeout=30) as sock:
        head = (f"POST {u.raw_path.decode()} HTTP/1.1\r\nHost: {u.host}\r\n"
                f"Authorization: {h['Authorization']}\r\nContent-Type: application/json\r\n"
                "Transfer-Encoding: chunked\r\n\r\n")  # fmt: skip
        sock.sendall(head.encode())
        chunk = b"a" * (1 << 20)
        for _ in range(LIMIT // len(chunk) + 2):
            sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        reply = sock.recv(65536)  # the rest (up to 150 MB) is never sent
    assert reply.startswith(b"HTTP/1.1 413"), reply[:200]
    assert f"{LIMIT:,} bytes".encode() in reply


def test_json_nesting_is_bounded(service: Any) -> None:
    seed = service.seed
    url = f"{service.url}/datasets/{seed.public}/annotations"
    h = {**seed.headers("alice"), "Content-Type": "application/json"}
    for depth in (MAX_JSON_DEPTH + 5, 5_000):
        doc = "[" * depth + "]" * depth
        r = httpx.post(url, content=f'{{"a": {doc}}}', headers=h, timeout=60)
        _problem(r, 422, "nests")


def test_metadata_fields_are_bounded(service: Any) -> None:
    seed = service.seed
    acc = seed.public
    h = {**seed.headers("alice"), "If-Match": "*"}
    r = httpx.patch(
        f"{service.url}/datasets/{acc}/mutable",
        json={"changes": {"description": "d" * (MAX_FIELD_CHARS + 1)}, "reason": "long"},
        headers=h,
        timeout=60,
    )
    _problem(r, 422, f"at most {MAX_FIELD_CHARS:,}")
    r = httpx.patch(
        f"{service.url}/datasets/{acc}/mutable",
        json={"changes": {"description": "d" * (30 << 20)}, "reason": "huge"},
        headers=h,
        timeout=60,
    )
    _problem(r, 413)


def test_imports_are_bounded_in_items(service: Any) -> None:
    seed = service.seed
    item = {"type": "Annotation", "motivation": "commenting", "body": {"type": "TextualBody",
            "value": "x"}, "target": "urn:x"}  # fmt: skip
    doc = {
        "@context": "http://www.w3.org/ns/anno.jsonld",
        "type": "AnnotationCollection",
        "first": {"type": "AnnotationPage",
                  "items": [{**item, "id": f"urn:a{i}"} for i in range(MAX_IMPORT_ITEMS + 1)]},
    }  # fmt: skip
    r = httpx.post(f"{service.url}/datasets/{seed.public}/annotations", json=doc,
                   headers=seed.headers("alice"), timeout=60)  # fmt: skip
    _problem(r, 422, f"at most {MAX_IMPORT_ITEMS:,} annotations")


def _health_ms(url: str, n: int) -> list[float]:
    out = []
    with httpx.Client(timeout=30) as c:
        for _ in range(n):
            t = time.perf_counter()
            assert c.get(f"{url}/health").status_code == 200
            out.append((time.perf_counter() - t) * 1000)
            time.sleep(0.02)
    return out


@pytest.fixture
def tight_service(repo: Any, tmp_path: Path) -> Iterator[Any]:
    """The live service with a render budget well under what the hostile post costs on any
    machine (~1.3 s of CPU on these): with a budget over that (2 s was the default), a fast, quiet machine renders
    it in time and the cut-off is never exercised."""
    from nanorepo.testing._service import live_service, seed_repository

    seed = seed_repository(repo, tmp_path / "seed")
    settings = dataclasses.replace(repo.settings, render_budget_ms=TIGHT_BUDGET_MS)
    with live_service(settings, repo=repo) as live:
        live.seed = seed
        yield live


TIGHT_BUDGET_MS = 300


def test_a_hostile_post_is_cut_off_and_does_not_stall_the_service(tight_service: Any) -> None:
    service = tight_service
    budget_s = TIGHT_BUDGET_MS / 1000
    seed = service.seed
    url = f"{service.url}/datasets/{seed.public}/threads"
    httpx.get(f"{service.url}/health", timeout=30)
    baseline = _health_ms(service.url, 20)
    answers: list[httpx.Response] = []
    took: list[float] = []

    def attack() -> None:
        t = time.perf_counter()
        r = httpx.post(url, json={"title": "slow", "body": HOSTILE_POST},
                       headers=seed.headers("alice"), timeout=120)  # fmt: skip
        took.append(time.perf_counter() - t)
        answers.append(r)

    attackers = [threading.Thread(target=attack) for _ in range(4)]
    for t in attackers:
        t.start()
    time.sleep(0.3)
    during = _health_ms(service.url, 30)
    for t in attackers:
        t.join()
    # cut off at the budget, or (beyond one render per core) refused at once as busy
    cut = [r for r in answers if r.status_code == 422]
    assert cut, [r.status_code for r in answers]
    for r in cut:
        _problem(r, 422, f"more than {budget_s:g} s to render")
    for r in answers:
        if r.status_code != 422:
            _problem(r, 503, "busy")
    # each attack costs at most the budget (plus waiting for a worker), not its full cost
    assert max(took) < 4 * budget_s + 10, took
    # /health is not held up by the renders (100 ms over its unloaded median)
    assert statistics.median(during) < statistics.median(baseline) + 100, (baseline, during)
    # and nothing was written
    r = httpx.get(url, params={"limit": 200}, headers=seed.headers("alice"), timeout=30)
    assert all(t["title"] != "slow" for t in r.json()["items"])


def test_the_render_budget_counts_cpu_time_not_time_waiting_for_a_core() -> None:
    """On a busy machine the low-priority renderer waits for a core; an ordinary post must
    not be refused for that (the budget was wall time), while a hostile one still is."""
    import os
    import signal

    from nanorepo.annotations import RenderPool
    from nanorepo.errors import InvalidInput

    pool = RenderPool(workers=1, budget_s=0.3)
    try:
        assert "<strong>" in pool.render("**warm** " * 40)  # starts the worker
        (worker,) = pool._all
        answer: list[str] = []
        os.kill(worker.proc.pid, signal.SIGSTOP)  # starved: no CPU at all for 0.8 s
        t = threading.Thread(target=lambda: answer.append(pool.render("plain words " * 400)))
        t.start()
        time.sleep(0.8)
        os.kill(worker.proc.pid, signal.SIGCONT)
        t.join(30)
        assert answer and answer[0].startswith("<p>plain words"), answer
        with pytest.raises(InvalidInput, match=r"more than 0\.3 s to render"):
            pool.render(HOSTILE_POST)
    finally:
        pool.close()
