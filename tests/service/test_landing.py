"""The service's landing page (``GET {prefix}/``): what the repository holds, for people,
counted only over what the viewer may see."""

from __future__ import annotations

import re
from typing import Any

import httpx

from nanorepo.service._landing import (
    PAGE_CSP,
    Holdings,
    PendingSignup,
    hub_base,
    lab_link,
    render_landing,
    terabytes,
)


def _count(page: str, label: str) -> int:
    m = re.search(rf'<div class="nr-count"><span>([\d,]+)</span> {label}</div>', page)
    assert m, f"no {label} count on the page"
    return int(m.group(1).replace(",", ""))


def test_landing_counts_only_what_the_viewer_may_see(service: Any) -> None:
    seed = service.seed
    with httpx.Client(base_url=service.url, timeout=30) as c:
        pages = {}
        for user in ("anonymous", "bob", "root"):
            r = c.get("/", headers=seed.headers(user))
            assert r.status_code == 200, r.text
            assert r.headers["content-type"].startswith("text/html")
            assert r.headers["content-security-policy"] == PAGE_CSP
            assert "<script" not in r.text.lower()
            pages[user] = r.text
        anon, bob, root = pages["anonymous"], pages["bob"], pages["root"]

        # anonymous: the public dataset only, neither embargoed one listed nor counted
        assert seed.public in anon and "Public pores" in anon
        for hidden in (seed.granted, seed.hidden):
            assert hidden not in anon
        assert "zanzibar" not in anon and "embargoed" not in anon
        assert (_count(anon, "datasets"), _count(anon, "images")) == (1, 1)
        assert "Not signed in" in anon
        # bob is granted one embargoed dataset: it is listed (with its badge) and counted
        assert seed.granted in bob and seed.hidden not in bob and "zanzibar" not in bob
        assert "embargoed until 2099-01-01" in bob
        assert (_count(bob, "datasets"), _count(bob, "images")) == (2, 2)
        assert "Signed in as <strong>bob</strong>" in bob
        # an admin sees everything
        assert seed.hidden in root and _count(root, "datasets") == 3
        # the technique table sums the visible images' bytes
        assert re.search(r"<tr><td>STED</td><td>[\d.,]+ MB</td></tr>", anon)
        # standalone (no hub): the code that opens it instead of a Lab link
        assert f'<code>nanorepo.open("{seed.public}@v1")</code>' in anon
        # each recent dataset links to its version's landing page, which loads
        page_link = f'<a class="nr-ref" href="/{seed.public}@v1">{seed.public}@v1</a>'
        assert page_link in anon
        assert c.get(f"/{seed.public}@v1").status_code == 200
        # the thumbnails it shows are same-origin and load for the viewer
        thumb = re.search(r'<img src="([^"]+)"', anon)
        assert thumb
        r = c.get(thumb.group(1).replace("&amp;", "&"))
        assert r.status_code == 200 and r.headers["content-type"] == "image/png"
        css = c.get("/_static/landing.css")
        assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")


def test_landing_escapes_text_and_links_into_lab() -> None:
    h = Holdings(viewer='<img src=x onerror="1">', datasets=1, images=2,
                 bytes_by_technique={"STED": 3 * 10**12, "<b>SIM</b>": 5 * 10**6})  # fmt: skip
    page = render_landing(
        h,
        prefix="/services/nanorepo",
        hub="/",
        pending=[PendingSignup("eve", "eve@lab.org", "Eve <Doe>", "EMBL", "0000-0002-1825-0097")],
    )
    assert "<img src=x" not in page and "&lt;img src=x onerror=&quot;1&quot;&gt;" in page
    assert "<b>SIM</b>" not in page and "&lt;b&gt;SIM&lt;/b&gt;" in page
    assert "3.00 TB" in page and "5.00 MB" in page
    assert "Eve &lt;Doe&gt;" in page and 'href="https://orcid.org/0000-0002-1825-0097"' in page
    assert 'href="/hub/authorize"' in page
    assert hub_base("/services/nanorepo/") == "/" and hub_base("/jhub/services/x/") == "/jhub/"
    assert hub_base("/") is None
    assert lab_link("/", "S-NANO1") == "/hub/user-redirect/lab?nanorepo-dataset=S-NANO1"
    assert terabytes(1_500_000_000_000) == "1.50 TB" and terabytes(0) == "0.00 MB"


def test_landing_on_the_hub_signs_in_and_links_into_lab(jupyterhub: Any) -> None:
    """Behind a real hub (anonymous access off): a visitor is sent through the service's
    OAuth sign-in and back; bob then sees what he may see, with Open in Lab links."""
    hub, seed = jupyterhub, jupyterhub.seed
    landing = f"{hub.service_url}/"
    with httpx.Client(timeout=60) as c:
        r = c.get(landing, follow_redirects=False)
        assert r.status_code == 302
        assert r.headers["location"].startswith("/services/nanorepo/login?next=")
        hub.browser_login(c, "bob")
        r = c.get(landing, follow_redirects=True)  # the service's OAuth, then the page
        assert r.status_code == 200 and str(r.url) == landing
        page = r.text
    assert "Signed in as <strong>bob</strong>" in page
    assert seed.granted in page and seed.hidden not in page and "zanzibar" not in page
    assert _count(page, "datasets") == 2
    assert f'href="/hub/user-redirect/lab?nanorepo-dataset={seed.public}"' in page
    assert "Sign-ups waiting" not in page  # bob is no admin (and this hub has no sign-ups)
