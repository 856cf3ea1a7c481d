"""Issue 14, finding 4 (load): costly requests are admitted per client and per core.

A client over its rate of costly requests gets 429 with ``Retry-After``; costly work beyond
the slots gets 503 "busy" at once, instead of queueing behind the renders; cheap requests
(``/health``, reads, short posts) are never counted and never refused; a client that sends
its body slowly holds no slot. Every refusal changes nothing.
"""

from __future__ import annotations

import dataclasses
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from nanorepo.service._admission import CHEAP_BODY_BYTES

#: A benign post whose body is over the cheap size: costly by size, quick to render.
LONG_POST = "A methods note. " * (CHEAP_BODY_BYTES // 16 + 8)
#: The costliest Markdown pattern (~35 µs a character): holds a render for its budget.
HOSTILE_POST = "![" * 49_000


@pytest.fixture
def admitting(repo: Any, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Any]:
    """The live service with the admission settings the test names (indirect param)."""
    from nanorepo.testing._service import live_service, seed_repository

    seed = seed_repository(repo, tmp_path / "seed")
    settings = dataclasses.replace(repo.settings, **request.param)
    with live_service(settings, repo=repo) as live:
        live.seed = seed
        yield live


def _titles(service: Any) -> list[str]:
    r = httpx.get(f"{service.url}/datasets/{service.seed.public}/threads",
                  params={"limit": 200}, headers=service.seed.headers("alice"), timeout=30)  # fmt: skip
    assert r.status_code == 200, r.text
    return [t["title"] for t in r.json()["items"]]


def _refused(r: httpx.Response, status: int, *words: str) -> int:
    assert r.status_code == status, (r.status_code, r.text[:300])
    assert r.headers["content-type"] == "application/problem+json"
    detail = r.json()["detail"]
    for w in words:
        assert w in detail, (w, detail)
    wait = int(r.headers["retry-after"])
    assert 1 <= wait <= 60, wait
    return wait


@pytest.mark.parametrize("admitting", [{"costly_per_minute": 3}], indirect=True)
def test_a_client_over_its_rate_gets_429_and_others_do_not(admitting: Any) -> None:
    service = admitting
    seed = service.seed
    url = f"{service.url}/datasets/{seed.public}/threads"
    with httpx.Client(headers=seed.headers("alice"), timeout=60) as alice:
        for i in range(3):
            r = alice.post(url, json={"title": f"long {i}", "body": LONG_POST})
            assert r.status_code == 201, r.text
        r = alice.post(url, json={"title": "one too many", "body": LONG_POST})
        _refused(r, 429, "too many costly requests", "3/minute")
        assert r.json()["limit"] == "3/minute"
        # cheap requests of the same client are not counted
        r = alice.post(url, json={"title": "short", "body": "a short note"})
        assert r.status_code == 201, r.text
        assert alice.get(f"{service.url}/health").status_code == 200
    # another client has its own allowance
    r = httpx.post(url, json={"title": "bob's long", "body": LONG_POST},
                   headers=seed.headers("bob"), timeout=60)  # fmt: skip
    assert r.status_code == 201, r.text
    titles = _titles(service)
    assert "one too many" not in titles
    assert {"long 0", "long 2", "short", "bob's long"} <= set(titles)


@pytest.mark.parametrize(
    "admitting", [{"costly_slots": 1, "render_budget_ms": 1000}], indirect=True
)
def test_costly_work_beyond_the_slots_is_503_at_once_and_cheap_work_goes_on(
    admitting: Any,
) -> None:
    service = admitting
    seed = service.seed
    url = f"{service.url}/datasets/{seed.public}/threads"
    httpx.get(f"{service.url}/health", timeout=30)
    first: list[httpx.Response] = []
    hold = threading.Thread(target=lambda: first.append(httpx.post(
        url, json={"title": "slow", "body": HOSTILE_POST},
        headers=seed.headers("alice"), timeout=60)))  # fmt: skip
    hold.start()
    time.sleep(0.4)  # the hostile post is rendering: it holds the one slot for ~1 s
    t = time.perf_counter()
    r = httpx.post(url, json={"title": "refused", "body": LONG_POST},
                   headers=seed.headers("bob"), timeout=60)  # fmt: skip
    took = time.perf_counter() - t
    _refused(r, 503, "busy")
    assert took < 0.5, took  # at once, not after waiting for the render
    t = time.perf_counter()
    assert httpx.get(f"{service.url}/health", timeout=30).status_code == 200
    r = httpx.post(url, json={"title": "a short one", "body": "fine"},
                   headers=seed.headers("carol"), timeout=60)  # fmt: skip
    assert r.status_code == 201, r.text
    assert time.perf_counter() - t < 0.5
    hold.join()
    # rendered or cut off at its budget (a fast machine renders it in about 1 s)
    assert first[0].status_code in (201, 422), first[0].text[:300]
    r = httpx.post(url, json={"title": "after", "body": LONG_POST},
                   headers=seed.headers("bob"), timeout=60)  # fmt: skip
    assert r.status_code == 201, r.text
    titles = _titles(service)
    assert "refused" not in titles
    assert {"a short one", "after"} <= set(titles)


@pytest.mark.parametrize("admitting", [{"costly_slots": 1}], indirect=True)
def test_a_slow_sender_holds_no_slot(admitting: Any) -> None:
    """A client trickling its body must not keep others' costly requests out (503)."""
    service = admitting
    seed = service.seed
    url = httpx.URL(f"{service.url}/datasets/{seed.public}/threads")
    body = b'{"title": "trickled", "body": "' + LONG_POST.encode() + b'"}'
    with socket.create_connection((url.host, url.port), timeout=30) as sock:
        head = (f"POST {url.raw_path.decode()} HTTP/1.1\r\nHost: {url.host}\r\n"
                f"Authorization: {seed.headers('alice')['Authorization']}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n")  # fmt: skip
        sock.sendall(head.encode() + body[:100])
        time.sleep(0.3)
        for i in range(2):  # one at a time: each gets the slot the trickler does not hold
            r = httpx.post(str(url), json={"title": f"meanwhile {i}", "body": LONG_POST},
                           headers=seed.headers("bob"), timeout=60)  # fmt: skip
            assert r.status_code == 201, r.text
        sock.sendall(body[100:])
        reply = sock.recv(65536)
    assert reply.startswith(b"HTTP/1.1 201"), reply[:200]
    assert {"meanwhile 0", "meanwhile 1", "trickled"} <= set(_titles(service))


def test_the_openapi_document_names_429_and_503_on_costly_routes(service: Any) -> None:
    doc = httpx.get(f"{service.url}/openapi.json", timeout=30).json()
    posts = doc["paths"]["/datasets/{accession}/threads/{thread_id}/posts"]["post"]
    assert {"429", "503"} <= set(posts["responses"])
    assert "429" not in doc["paths"]["/health"]["get"]["responses"]
