"""Hostile text in request bodies is refused with a 422 that says why, and changes nothing."""

from __future__ import annotations

from typing import Any

import httpx


def test_nul_characters_are_refused_everywhere(service: Any) -> None:
    seed = service.seed
    h = seed.headers("alice")
    for method, url, body in [
        ("POST", f"/datasets/{seed.granted}/release", {"reason": "a\x00b"}),
        (
            "PATCH",
            f"/datasets/{seed.public}/mutable",
            {"changes": {"title": "x\x00"}, "reason": "r"},
        ),
        ("POST", f"/datasets/{seed.public}/threads", {"title": "t", "body": "b\x00"}),
        ("POST", f"/datasets/{seed.public}/annotations", {"type": "x\x00"}),
    ]:
        r = httpx.request(method, service.url + url, json=body, headers={**h, "If-Match": "*"})
        assert r.status_code == 422, (url, r.text)
        assert "NUL" in r.text
