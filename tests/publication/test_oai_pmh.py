"""OAI-PMH 2.0 (``/oai``): harvested end to end with sickle, a harvester library; every
response valid against the OAI-PMH schema; public versions only; withdrawn versions as
deleted records; resumption tokens; protocol errors for bad requests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from lxml import etree
from sickle import Sickle
from sqlmodel import select

from nanorepo.catalog.models import Dataset
from nanorepo.service._oai import NanorepoOAI

SCHEMA = etree.XMLSchema(etree.parse(str(Path(__file__).parent / "data" / "OAI-PMH.xsd")))
NS = {
    "o": "http://www.openarchives.org/OAI/2.0/",
    "dc": "http://purl.org/dc/elements/1.1/",
    "dcite": "http://datacite.org/schema/kernel-4",
}


def _get(c: httpx.Client, **params: str) -> Any:
    r = c.get("/oai", params=params)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/xml")
    doc = etree.fromstring(r.content)
    SCHEMA.assertValid(doc)
    return doc


def test_harvest_with_sickle_and_every_answer_is_schema_valid(live: Any) -> None:
    seed = live.seed
    harvester = Sickle(f"{live.url}/oai")
    ident = harvester.Identify()
    assert ident.protocolVersion == "2.0" and ident.deletedRecord == "persistent"
    assert ident.baseURL == "https://repo.example.org/nano/oai"  # the public address

    records = list(harvester.ListRecords(metadataPrefix="oai_dc"))
    ids = [r.header.identifier for r in records]
    assert ids == [f"oai:repo.example.org:{seed.public}@v1"]  # public versions only
    dc = records[0].metadata
    assert dc["title"] == ["Public pores"] and dc["creator"] == ["Alice"]
    assert f"https://repo.example.org/nano/{seed.public}@v1" in dc["identifier"]
    assert records[0].header.setSpecs == ["technique:STED"]

    with httpx.Client(base_url=live.url, timeout=30) as c:
        for params in (
            {"verb": "Identify"},
            {"verb": "ListMetadataFormats"},
            {"verb": "ListSets"},
            {"verb": "ListIdentifiers", "metadataPrefix": "oai_dc", "set": "technique:STED"},
            {"verb": "ListRecords", "metadataPrefix": "oai_datacite"},
            {"verb": "GetRecord", "metadataPrefix": "oai_dc", "identifier": ids[0]},
        ):
            _get(c, **params)
        datacite = _get(c, verb="GetRecord", metadataPrefix="oai_datacite", identifier=ids[0])
        titles = datacite.xpath("//dcite:resource/dcite:titles/dcite:title/text()", namespaces=NS)
        assert titles == ["Public pores"]
        # the embargoed datasets are neither listed nor retrievable
        for hidden in (seed.granted, seed.hidden):
            doc = _get(c, verb="GetRecord", metadataPrefix="oai_dc",
                       identifier=f"oai:repo.example.org:{hidden}@v1")  # fmt: skip
            assert doc.xpath("//o:error/@code", namespaces=NS) == ["idDoesNotExist"]
        # protocol errors, each with its code, nothing else
        for params, code in (
            ({"verb": "Nope"}, "badVerb"),
            ({"verb": "ListRecords"}, "badArgument"),
            ({"verb": "ListRecords", "metadataPrefix": "mods"}, "cannotDisseminateFormat"),
            ({"verb": "ListRecords", "metadataPrefix": "oai_dc", "set": "technique:XYZ"},
             "noRecordsMatch"),
            ({"verb": "ListRecords", "resumptionToken": "garbage"}, "badResumptionToken"),
        ):  # fmt: skip
            doc = _get(c, **params)
            assert doc.xpath("//o:error/@code", namespaces=NS) == [code], params
        twice = c.get("/oai?verb=Identify&verb=Identify")
        assert etree.fromstring(twice.content).xpath("//o:error/@code", namespaces=NS) == [
            "badArgument"
        ]


def test_resumption_released_and_withdrawn(live: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    seed, repo = live.seed, live.repo
    monkeypatch.setattr(NanorepoOAI, "limit", 1)  # one record per page
    repo.release(seed.granted, reason="published", who="alice")
    with repo.catalog.session() as s:  # a withdrawn dataset (curators' action, issue 18)
        ds = s.exec(select(Dataset).where(Dataset.accession == seed.public)).one()
        ds.state = "withdrawn"
        s.add(ds)
        s.commit()
    try:
        harvester = Sickle(f"{live.url}/oai")
        headers = list(harvester.ListIdentifiers(metadataPrefix="oai_dc", ignore_deleted=False))
        assert [h.identifier.rsplit(":", 1)[1] for h in headers] == [
            f"{seed.public}@v1",
            f"{seed.granted}@v1",
        ]  # two pages, through a resumption token
        assert [h.deleted for h in headers] == [True, False]
        with httpx.Client(base_url=live.url, timeout=30) as c:
            doc = _get(c, verb="ListIdentifiers", metadataPrefix="oai_dc")
            token = doc.xpath("//o:resumptionToken", namespaces=NS)[0]
            assert token.get("completeListSize") == "2" and token.text
            # the withdrawn version: a header marked deleted, no metadata
            ident = headers[0].identifier
            rec = _get(c, verb="GetRecord", metadataPrefix="oai_dc", identifier=ident)
            assert rec.xpath("//o:header/@status", namespaces=NS) == ["deleted"]
            assert not rec.xpath("//o:metadata", namespaces=NS)
    finally:
        with repo.catalog.session() as s:
            ds = s.exec(select(Dataset).where(Dataset.accession == seed.public)).one()
            ds.state = "active"
            s.add(ds)
            s.commit()
