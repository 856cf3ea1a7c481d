"""Citations of a version (``nanorepo cite``, ``GET .../citation``): every format parsed
back by that format's own library, hostile titles kept inside their field, the embargo
held, and the CLI saying the same locally and through the service."""

from __future__ import annotations

import importlib.resources
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import bibtexparser
import httpx
import jsonschema
import pytest
import rispy
from lxml import etree

from nanorepo.citation import FORMATS, CitationRecord, cite
from tests.publication.conftest import PUBLIC

#: a title that tries to close its field and add one of its own, in every syntax
HOSTILE = "Pores & rings: 50% {done}}, note = {pwned}\nER  - \nTY  - JOUR \\ ~^ $x_1$ #1"


def _show(title: str = "NPC rings in U2OS", **extra: Any) -> dict[str, Any]:
    show = {
        "accession": "S-NANO7",
        "version": 2,
        "title": title,
        "created": "2026-11-03T10:00:00+00:00",
        "license": "CC-BY-4.0",
        "size_bytes": 123456,
        "versions": [{"version": 1}, {"version": 2}],
        "mutable": {"description": "Nuclear pore complexes.", "keywords": ["NPC", "STED"]},
        "metadata": {
            "study": {
                "authors": [
                    {"name": "Doe, Jane", "orcid": "0000-0002-1825-0097", "affiliation": "EMBL"},
                    {"name": "Ørsted Lab"},
                ]
            },
            "image_acquisition": {"technique": "STED"},
            "biosample": {"organism": "Homo sapiens"},
        },
    }
    show.update(extra)
    return show


def test_every_format_parses_back_with_its_own_library() -> None:
    r = CitationRecord.from_show(_show(), PUBLIC)
    url = f"{PUBLIC}/S-NANO7@v2"

    lib = bibtexparser.parse_string(cite(r, "bibtex"))
    assert not lib.failed_blocks and len(lib.entries) == 1
    e = lib.entries[0]
    assert (e.entry_type, e.key) == ("misc", "nanorepo_S-NANO7_v2")
    assert e["author"] == "Doe, Jane and {Ørsted Lab}"  # the lab is one name, not split
    assert e["title"] == "{NPC rings in U2OS}" and e["year"] == "2026"
    assert (e["url"], e["version"]) == (url, "2")

    (entry,) = rispy.loads(cite(r, "ris"))
    assert entry["type_of_reference"] == "DATA"
    assert entry["authors"] == ["Doe, Jane", "Ørsted Lab"]
    assert (entry["title"], entry["year"], entry["urls"]) == ("NPC rings in U2OS", "2026", [url])
    assert entry["keywords"] == ["NPC", "STED"]

    (item,) = json.loads(cite(r, "csl-json"))
    assert item["type"] == "dataset" and item["issued"] == {"date-parts": [[2026, 11, 3]]}
    assert item["author"] == [{"family": "Doe", "given": "Jane"}, {"literal": "Ørsted Lab"}]

    apa = cite(r, "apa")
    assert apa.startswith("Doe, J., & Ørsted Lab. (2026). NPC rings in U2OS") and url in apa
    vancouver = cite(r, "vancouver")
    assert vancouver.startswith("Doe J, Ørsted Lab. NPC rings in U2OS.")
    assert vancouver.endswith(f"Available from: {url}")

    # DataCite 4.5: valid against the schema file DataCite's JSON form is defined by
    schema = json.loads(
        (importlib.resources.files("datacite") / "schemas/datacite-v4.5.json").read_text()
    )
    data = json.loads(cite(r, "datacite-json"))
    jsonschema.Draft7Validator(schema).validate(data)
    assert data["creators"][0]["nameIdentifiers"][0]["nameIdentifier"] == (
        "https://orcid.org/0000-0002-1825-0097"
    )
    assert data["relatedIdentifiers"] == [
        {
            "relatedIdentifier": f"{PUBLIC}/S-NANO7@v1",
            "relatedIdentifierType": "URL",
            "relationType": "IsNewVersionOf",
        }
    ]
    xml = etree.fromstring(cite(r, "datacite-xml").encode())
    ns = {"d": "http://datacite.org/schema/kernel-4"}
    assert xml.xpath("//d:creator/d:creatorName/text()", namespaces=ns) == [
        "Doe, Jane",
        "Ørsted Lab",
    ]
    assert xml.xpath("//d:publicationYear/text()", namespaces=ns) == ["2026"]

    assert cite(r, "text") == (
        f"Jane Doe, Ørsted Lab (2026). NPC rings in U2OS. nanorepo S-NANO7@v2. {url}"
    )
    # with a DOI, the DOI is what the text form and DataCite name
    doi = CitationRecord.from_show(_show(mutable={"doi": "https://doi.org/10.1234/abc"}), PUBLIC)
    assert cite(doi, "text").endswith("https://doi.org/10.1234/abc")
    assert json.loads(cite(doi, "datacite-json"))["doi"] == "10.1234/abc"


def test_a_hostile_title_stays_inside_its_field_in_every_format() -> None:
    r = CitationRecord.from_show(_show(HOSTILE), PUBLIC)
    lib = bibtexparser.parse_string(cite(r, "bibtex"))
    assert not lib.failed_blocks and len(lib.entries) == 1
    fields = lib.entries[0].fields_dict
    assert "pwned" not in fields.get("note").value  # type: ignore[union-attr]
    assert "pwned" in fields["title"].value and set(fields) == {
        "author", "title", "year", "month", "publisher", "version", "note", "url", "keywords"
    }  # fmt: skip
    records = rispy.loads(cite(r, "ris"))
    assert len(records) == 1 and records[0]["type_of_reference"] == "DATA"
    assert records[0]["title"] == " ".join(HOSTILE.split())
    assert json.loads(cite(r, "csl-json"))[0]["title"] == HOSTILE
    xml = etree.fromstring(cite(r, "datacite-xml").encode())
    assert xml.findtext("{http://datacite.org/schema/kernel-4}titles/"
                        "{http://datacite.org/schema/kernel-4}title") == HOSTILE  # fmt: skip


def test_an_unknown_format_is_refused_with_the_formats_named() -> None:
    from nanorepo.errors import InvalidInput

    with pytest.raises(InvalidInput) as info:
        cite(CitationRecord.from_show(_show()), "mla")
    assert "'mla' is not a citation format" in info.value.message
    assert "bibtex" in (info.value.hint or "")


def test_service_cites_what_the_caller_may_see_under_the_public_url(live: Any) -> None:
    seed = live.seed
    path = "/datasets/{}/versions/v1/citation"
    with httpx.Client(base_url=live.url, timeout=30) as c:
        # the Host header does not choose the URL in the citation
        r = c.get(path.format(seed.public), params={"format": "bibtex"},
                  headers={"Host": "evil.example"})  # fmt: skip
        assert r.status_code == 200, r.text
        assert r.headers["content-type"].startswith("application/x-bibtex")
        assert f"url = {{{PUBLIC}/{seed.public}@v1}}" in r.text
        assert "evil.example" not in r.text
        assert "{Alice}" in r.text and "{Public pores}" in r.text
        # revalidation
        again = c.get(path.format(seed.public), params={"format": "bibtex"},
                      headers={"If-None-Match": r.headers["etag"]})  # fmt: skip
        assert again.status_code == 304
        # every format answers
        for fmt in FORMATS:
            assert c.get(path.format(seed.public), params={"format": fmt}).status_code == 200
        # embargoed: exactly the answer of a dataset that does not exist
        hidden = c.get(path.format(seed.hidden), params={"format": "ris"})
        missing = c.get(path.format("S-NANO999"), params={"format": "ris"})
        assert hidden.status_code == missing.status_code == 404
        assert hidden.json()["title"] == missing.json()["title"]
        assert hidden.json()["detail"].replace(seed.hidden, "?") == missing.json()[
            "detail"
        ].replace("S-NANO999", "?")
        assert "zanzibar" not in hidden.text
        # a granted reader gets it, privately cached
        granted = c.get(path.format(seed.granted), headers=seed.headers("bob"))
        assert granted.status_code == 200 and "Granted embargoed pores" in granted.text
        assert granted.headers["cache-control"].startswith("private")
        bad = c.get(path.format(seed.public), params={"format": "mla"})
        assert bad.status_code == 422


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "nanorepo", *args], env=env, capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip


def test_cli_cites_the_same_locally_and_through_the_service(live: Any, tmp_path: Path) -> None:
    base = {k: v for k, v in os.environ.items() if not k.startswith("NANOREPO_")}
    base["HOME"] = str(tmp_path)  # a fresh home, as a new user has
    local = {**base, "NANOREPO_HOME": str(live.settings.home), "NANOREPO_USER": "alice",
             "NANOREPO_PUBLIC_URL": PUBLIC}  # fmt: skip
    remote = {**base, "NANOREPO_URL": live.url, "NANOREPO_TOKEN": live.seed.tokens["bob"]}
    ref = f"{live.seed.granted}@v1"
    for fmt in ("apa", "ris", "datacite-json"):
        here, there = (
            _cli(local, "cite", ref, "--format", fmt),
            _cli(remote, "cite", ref, "--format", fmt),
        )
        assert here.returncode == there.returncode == 0, here.stderr + there.stderr
        assert here.stdout == there.stdout and "Granted embargoed pores" in here.stdout
    anonymous = {**base, "NANOREPO_URL": live.url}
    refused = _cli(anonymous, "cite", ref)
    assert refused.returncode == 1 and live.seed.granted in refused.stderr
    assert "Granted embargoed pores" not in refused.stdout + refused.stderr
