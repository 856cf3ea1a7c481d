"""Landing pages of dataset versions (``{prefix}/S-NANO1@v1``): what people and harvesters
read without an account, the embargo held, and hostile metadata kept inert."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import httpx
import pytest

from tests.publication.conftest import PUBLIC

#: Bioschemas Dataset profile 1.0-RELEASE: its minimum and its recommended properties
BIOSCHEMAS_MINIMUM = {"description", "identifier", "keywords", "license", "name", "url"}
BIOSCHEMAS_RECOMMENDED = {
    "citation", "creator", "distribution", "includedInDataCatalog", "isAccessibleForFree",
    "measurementTechnique", "version",
}  # fmt: skip


def _json_ld(page: str) -> dict[str, Any]:
    blocks = re.findall(r'<script type="application/ld\+json">(.*?)</script>', page, re.S)
    assert len(blocks) == 1, "one JSON-LD block per page"
    doc: dict[str, Any] = json.loads(blocks[0])
    return doc


def _links(header: str) -> list[tuple[str, str]]:
    """(target, rel) of every link of a ``Link`` header."""
    return re.findall(r'<([^>]*)>\s*;\s*rel="([^"]+)"', header)


def test_a_public_version_has_a_page_with_json_ld_and_signposting(live: Any) -> None:
    seed = live.seed
    page_url = f"{PUBLIC}/{seed.public}@v1"
    with httpx.Client(base_url=live.url, timeout=30) as c:
        r = c.get(f"/{seed.public}@v1", headers={"Accept": "text/html"})
        assert r.status_code == 200, r.text
        assert r.headers["content-type"].startswith("text/html")
        csp = r.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "'unsafe-inline'" not in csp
        page = r.text
        assert "<h1>Public pores</h1>" in page and f"{seed.public}@v1" in page
        assert f'href="{page_url}"' in page  # canonical
        for fmt in ("bibtex", "ris", "csl-json", "datacite-xml"):
            assert f"citation?format={fmt}" in page
        assert f"nanorepo.open(&quot;{seed.public}@v1&quot;)" in page
        assert "Homo sapiens" in page and "STED" in page
        # the one script is the service's own file, and it is served
        scripts = re.findall(r"<script([^>]*)>", page)
        assert [s for s in scripts if "src=" in s] == [' src="/_static/copy.js" defer']
        assert c.get("/_static/copy.js").status_code == 200
        # thumbnails on the page load for the same anonymous reader
        thumb = re.search(r'<img src="([^"]+thumbnail\.png[^"]*)"', page)
        assert thumb and thumb.group(1).startswith("/datasets/")  # same origin as the page
        assert c.get(thumb.group(1)).status_code == 200

        ld = _json_ld(page)
        assert ld["@type"] == "Dataset" and ld["url"] == page_url
        year = ld["datePublished"][:4]
        cite = f"Alice ({year}). Public pores. nanorepo {seed.public}@v1. {page_url}"
        assert f'<span id="nr-cite-text">{cite}</span>' in page and ld["citation"] == cite
        missing = (BIOSCHEMAS_MINIMUM | BIOSCHEMAS_RECOMMENDED) - set(ld)
        assert not missing, f"Bioschemas properties missing: {missing}"
        assert ld["dct:conformsTo"]["@id"].startswith("https://bioschemas.org/profiles/Dataset/")
        assert ld["license"] == "https://spdx.org/licenses/CC-BY-4.0.html"
        assert ld["creator"][0]["name"] == "Alice"
        assert ld["distribution"] and all(d["contentUrl"].startswith(PUBLIC)
                                          for d in ld["distribution"])  # fmt: skip
        # the same document alone, for a harvester that asks for it
        alone = c.get(f"/{seed.public}@v1", headers={"Accept": "application/ld+json"})
        assert alone.headers["content-type"].startswith("application/ld+json")
        assert alone.json() == ld

        links = _links(r.headers["link"])
        rels = {rel for _, rel in links}
        assert {"cite-as", "describedby", "type", "license", "item"} <= rels
        assert (page_url, "cite-as") in links
        # every describedby and item link resolves for the same reader
        for target, rel in links:
            if rel in ("describedby", "item"):
                got = c.get(target.removeprefix(PUBLIC))
                assert got.status_code == 200, (target, got.status_code)

        # the latest version's address
        latest = c.get(f"/{seed.public}")
        assert latest.status_code == 200 and "<h1>Public pores</h1>" in latest.text


def test_embargoed_and_missing_answer_the_same(live: Any) -> None:
    seed = live.seed
    with httpx.Client(base_url=live.url, timeout=30) as c:
        hidden = c.get(f"/{seed.hidden}@v1")
        answers = [c.get(p) for p in ("/S-NANO999@v1", f"/{seed.public}@v9", "/S-NANO0")]
        assert hidden.status_code == 404 and all(a.status_code == 404 for a in answers)
        assert all(a.text == hidden.text for a in answers)
        assert "zanzibar" not in hidden.text and "link" not in hidden.headers
        # a reader granted the embargoed dataset sees it, badge and private cache
        bob = c.get(f"/{seed.granted}@v1", headers=seed.headers("bob"))
        assert bob.status_code == 200 and "embargoed until 2099-01-01" in bob.text
        assert bob.headers["cache-control"].startswith("private")
        # the sitemap lists public pages only
        sitemap = c.get("/sitemap.xml")
        assert sitemap.status_code == 200
        ns = "{http://www.sitemaps.org/schemas/sitemap/0.9}"
        locs = [e.text for e in ElementTree.fromstring(sitemap.content).iter(f"{ns}loc")]
        assert locs == [f"{PUBLIC}/{seed.public}@v1"]
        # the pages never shadow API routes
        assert c.get("/openapi.json").status_code == 200
        assert c.get("/datasets").status_code == 200


HOSTILE = '</script><script>alert(1)</script><img src=x onerror=alert(2)> "q" & <b>'


def test_hostile_metadata_stays_text(live: Any) -> None:
    seed, repo = live.seed, live.repo
    old = repo.show(f"{seed.public}@v1")["title"]
    repo.set_metadata(seed.public, {"title": HOSTILE, "description": HOSTILE},
                      reason="attack test", who="alice")  # fmt: skip
    try:
        with httpx.Client(base_url=live.url, timeout=30) as c:
            r = c.get(f"/{seed.public}@v1")
        assert r.status_code == 200
        page = r.text
        # no markup from the title: only the service's own script tags, one img per image
        assert page.count("<script") == 2 and "alert(1)</script>" not in page
        assert "<img src=x" not in page and "<b>" not in page
        assert html_unescape_title(page) == HOSTILE
        ld = _json_ld(page)  # the JSON-LD block was not closed early
        assert ld["name"] == HOSTILE
    finally:
        repo.set_metadata(seed.public, {"title": old, "description": "Seeded for tests."},
                          reason="restore", who="alice")  # fmt: skip


def html_unescape_title(page: str) -> str:
    import html

    m = re.search(r"<h1>(.*?)</h1>", page, re.S)
    assert m
    return html.unescape(m.group(1))


def test_chromium_renders_the_page_under_its_policy(live: Any, tmp_path: Path) -> None:
    """The page as a browser shows it: drawn, thumbnails loaded, and no Content Security
    Policy violation (the copy-button script and stylesheet are the service's own)."""
    exe = shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(exe).exists():
        pytest.fail("this test needs Chromium: apt-get install chromium (./dev test does)")
    shot = tmp_path / "page.png"
    proc = subprocess.run(
        [exe, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
         f"--user-data-dir={tmp_path / 'profile'}", "--enable-logging=stderr", "--v=0",
         "--window-size=1100,1500", f"--screenshot={shot}", "--virtual-time-budget=5000",
         f"{live.url}/{live.seed.public}@v1"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert shot.exists(), proc.stderr[-2000:]
    assert "Content Security Policy" not in proc.stderr, proc.stderr[-2000:]
    from PIL import Image

    with Image.open(shot) as im:
        colours = im.convert("RGB").getcolors(maxcolors=1 << 20)
    assert colours is not None and len(colours) > 50  # text, thumbnails: not a blank page
