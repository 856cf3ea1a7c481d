"""Issue 14, finding 8 (the service's part): a 500 carries the security headers and never
shows where storage lives; exported ids never come from the caller's ``Host`` header;
``If-Match: *`` is never answered 412.
"""

from __future__ import annotations

import threading
from typing import Any

import httpx
from sqlmodel import select

from nanorepo.catalog.models import Image
from nanorepo.service._app import SECURITY_HEADERS
from nanorepo.testing._service import live_service

EVIL = "evil.example"


def _assert_secure_500(r: httpx.Response, *roots: object) -> None:
    assert r.status_code == 500, r.text[:300]
    assert r.headers["content-type"] == "application/problem+json"
    for name, value in SECURITY_HEADERS:
        assert r.headers.get(name.decode()) == value.decode(), name
    for root in roots:
        assert str(root) not in r.text
    assert "/storage/" not in r.text and "/tmp/" not in r.text


def test_a_500_has_security_headers_and_no_storage_path(service: Any) -> None:
    """An image whose catalog digest disagrees with its stored manifest: the Zarr
    endpoint fails (500), and said so with the absolute storage path and no CSP."""
    seed, repo = service.seed, service.repo
    with repo.catalog.session() as s:
        im = s.exec(select(Image).where(Image.name == "cell0")).first()
        assert im is not None
        im.manifest_digest = "0" * 64
        s.add(im)
        s.commit()
    r = httpx.get(f"{service.url}/zarr/{seed.public}/v1/cell0/zarr.json", timeout=30)
    _assert_secure_500(r, repo.settings.storage, repo.settings.home)
    assert "the error is in the service log" not in r.text or r.json()["detail"]


def test_an_unexpected_error_is_a_secure_500(repo: Any) -> None:
    """An exception no handler knows (a bug) still leaves through the security headers."""
    import asyncio

    from nanorepo.service import create_app

    app = create_app(repo.settings, repo=repo)

    def boom() -> None:
        raise RuntimeError(f"cannot open {repo.settings.storage}/public/S-NANO1/secret")

    app.add_api_route("/boom-for-test", boom)

    async def call() -> httpx.Response:
        transport = httpx.ASGITransport(app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
            return await c.get("/boom-for-test")

    r = asyncio.run(call())
    _assert_secure_500(r, repo.settings.storage)
    assert r.json()["detail"] == "the service failed unexpectedly; the error is in the service log"


def test_exported_ids_never_come_from_the_host_header(service: Any) -> None:
    seed = service.seed
    h = {**seed.headers("alice"), "Host": EVIL, "X-Forwarded-Host": EVIL}
    with httpx.Client(base_url=service.url, timeout=30) as c:
        ann = c.get(f"/datasets/{seed.public}/annotations", headers=h)
        assert ann.status_code == 200, ann.text
        assert EVIL not in ann.text
        assert ann.json()["id"].startswith("urn:nanorepo:")
        run = seed.runs["public"]
        for path in (f"/runs/{run}/lineage?format=prov-json", f"/runs/{run}/crate",
                     f"/datasets/{seed.public}/lineage?format=provn"):  # fmt: skip
            r = c.get(path, headers=h)
            assert r.status_code == 200, (path, r.text[:200])
            assert EVIL.encode() not in r.content, path


def test_exported_ids_use_the_configured_public_url(repo: Any, tmp_path: Any) -> None:
    from nanorepo.testing._service import seed_repository

    seed = seed_repository(repo, tmp_path / "seed")
    settings = repo.settings.with_(public_url="https://repo.example.org/services/nanorepo")
    with live_service(settings, repo=repo) as live:
        r = httpx.get(f"{live.url}/datasets/{seed.public}/annotations",
                      headers={"Host": EVIL}, timeout=30)  # fmt: skip
        assert r.json()["id"].startswith("https://repo.example.org/services/nanorepo/datasets/")
        assert EVIL not in r.text


def test_if_match_star_is_never_412_even_under_concurrent_edits(service: Any) -> None:
    seed = service.seed
    acc = seed.public
    statuses: list[int] = []
    lock = threading.Lock()

    def edit(i: int) -> None:
        with httpx.Client(base_url=service.url, timeout=60) as c:
            for j in range(4):
                r = c.patch(
                    f"/datasets/{acc}/mutable",
                    json={"changes": {"description": f"edit {i}.{j}"}, "reason": "race"},
                    headers={**seed.headers("alice"), "If-Match": "*"},
                )
                with lock:
                    statuses.append(r.status_code)

    threads = [threading.Thread(target=edit, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert statuses and set(statuses) == {200}, statuses
    # a stale ETag still gets 412: the wildcard is the only exception
    r = httpx.patch(
        f"{service.url}/datasets/{acc}/mutable",
        json={"changes": {"description": "late"}, "reason": "stale"},
        headers={**seed.headers("alice"), "If-Match": '"stale"'},
        timeout=30,
    )
    assert r.status_code == 412


def test_nul_in_a_query_or_path_parameter_is_a_clear_422(service: Any) -> None:
    """Found by schemathesis on PostgreSQL: ``GET /runs?agent=%00`` was a 500 (PostgreSQL
    refuses NUL in text)."""
    with httpx.Client(base_url=service.url, timeout=30) as c:
        for path, params in (("/runs", {"agent": "\x00"}), ("/datasets", {"q": "a\x00b"}),
                             (f"/datasets/{service.seed.public}/threads", {"tag": "\x00"})):  # fmt: skip
            r = c.get(path, params=params, headers=service.seed.headers("root"))
            assert r.status_code == 422, (path, r.status_code, r.text[:200])
            assert "contains a NUL character" in r.json()["detail"]
        r = c.get("/runs/%00%00%00%00%00%00%00%00", headers=service.seed.headers("root"))
        assert r.status_code in (404, 422), r.text[:200]
