"""Bob's Jupyter server in front of the real service: bob's view, the embargo's 404, edits
with ``If-Match``, Zarr bytes with ``Range`` — each answer identical to the service's own.

The forwarder does not touch the catalog, so these run on SQLite only (the service's own
suite runs every route on both backends).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.jupyter._servers import jupyter_server

pytestmark = pytest.mark.parametrize("catalog_url", ["sqlite"], indirect=True)

MISSING = "S-NANO999999"


def test_bob_through_his_jupyter_server(service: Any, tmp_path: Path) -> None:
    seed = service.seed
    env = {
        "NANOREPO_URL": service.url,
        "NANOREPO_TOKEN": seed.tokens["bob"],
        "NANOREPO_STORAGE": str(service.settings.storage),
    }
    with (
        jupyter_server(tmp_path / "jupyter", env) as jp,
        httpx.Client(headers=jp.headers, timeout=30) as c,
        httpx.Client(base_url=service.url, headers=seed.headers("bob"), timeout=30) as direct,
    ):
        # bob's view of the granted dataset, with its ETag; a revalidation is a 304
        r, d = c.get(jp.api(f"datasets/{seed.granted}")), direct.get(f"/datasets/{seed.granted}")
        assert r.status_code == d.status_code == 200, r.text
        assert r.json() == d.json() and r.json()["accession"] == seed.granted
        assert r.headers["etag"] == d.headers["etag"]
        assert r.headers["content-type"] == d.headers["content-type"]
        again = c.get(
            jp.api(f"datasets/{seed.granted}"), headers={"If-None-Match": r.headers["etag"]}
        )
        assert again.status_code == 304 and again.content == b""

        # the hidden dataset answers exactly like one that does not exist
        r, d = c.get(jp.api(f"datasets/{seed.hidden}")), direct.get(f"/datasets/{seed.hidden}")
        missing = c.get(jp.api(f"datasets/{MISSING}"))
        assert r.status_code == d.status_code == missing.status_code == 404
        assert r.content == d.content
        assert r.headers["content-type"] == "application/problem+json"
        assert r.text.replace(seed.hidden, MISSING) == missing.text
        assert "etag" not in r.headers

        # Zarr objects with Range, byte-exact, and the thumbnail (a streamed PNG)
        key = f"zarr/{seed.granted}/v1/cell1/0/c/0/0/0"
        whole = direct.get(f"/{key}")
        assert whole.status_code == 200 and len(whole.content) > 100
        for rng, part in (("bytes=0-99", whole.content[:100]), ("bytes=-16", whole.content[-16:])):
            r, d = (
                c.get(jp.api(key), headers={"Range": rng}),
                direct.get(f"/{key}", headers={"Range": rng}),
            )
            assert r.status_code == d.status_code == 206, r.text
            assert r.content == part
            assert r.headers["content-range"] == d.headers["content-range"]
            assert r.headers["etag"] == d.headers["etag"]
        thumb = f"datasets/{seed.granted}/versions/v1/images/cell1/thumbnail.png"
        r, d = c.get(jp.api(thumb)), direct.get(f"/{thumb}")
        assert r.status_code == 200 and r.content == d.content and r.content[:4] == b"\x89PNG"
        assert r.headers["content-type"] == "image/png"

        # a thread opened through the forwarder (token auth: no _xsrf needed), then edited
        # with If-Match; a stale ETag is the service's 412, unchanged
        threads = f"datasets/{seed.granted}/threads"
        r = c.post(jp.api(threads), json={"title": "Through Jupyter", "body": "Seen from the lab."})
        assert r.status_code == 201, r.text
        assert r.headers["location"] == f"threads/{r.json()['id']}"  # relative: resolves here
        thread = f"{threads}/{r.json()['id']}"
        assert r.json()["created_by"] == "bob"
        first = r.headers["etag"]
        r = c.patch(jp.api(thread), json={"title": "Renamed"}, headers={"If-Match": first})
        assert r.status_code == 200, r.text
        assert r.json()["title"] == "Renamed" and r.headers["etag"] != first
        stale = c.patch(jp.api(thread), json={"title": "Lost"}, headers={"If-Match": first})
        assert stale.status_code == 412
        assert stale.headers["content-type"] == "application/problem+json"
        assert stale.json()["status"] == 412
        assert direct.get(f"/{thread}").json()["title"] == "Renamed"
        # without If-Match the service refuses, and says so through the forwarder
        r = c.patch(jp.api(thread), json={"title": "Lost"})
        assert r.status_code == 428, r.text
        assert r.headers["content-type"] == "application/problem+json"
        assert "If-Match" in r.json()["detail"]
