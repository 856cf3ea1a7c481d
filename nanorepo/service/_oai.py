"""OAI-PMH 2.0 at ``{prefix}/oai``: the catalogue for harvesters (aggregators, search
engines of research data, library discovery systems).

The protocol (verbs, arguments, errors, resumption tokens, the XML envelope) is
``oai_repo``'s, a maintained implementation of the specification; nanorepo gives it data
through :class:`NanorepoOAI`:

- one record per published **version** (``oai:{host}:S-NANO1@v2``), datestamped when it was
  published (versions never change: a new version is a new record);
- metadata formats ``oai_dc`` (Dublin Core) and ``oai_datacite`` (DataCite 4.5 inside
  DataCite's OAI envelope), both from the same citation record as every other citation;
- sets per imaging technique (``technique:STED``);
- only public versions are listed; an embargoed dataset appears when it is released;
  a withdrawn one stays as a deleted record (``deletedRecord: persistent``), as the
  protocol asks, so harvesters remove it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Request, Response
from lxml import etree
from oai_repo import DataInterface, Identify, MetadataFormat, OAIRepository, RecordHeader, Set
from sqlalchemy import func
from sqlmodel import Session, col, select
from starlette.concurrency import run_in_threadpool

from nanorepo.catalog import Catalog
from nanorepo.catalog.models import Dataset, Image, Version
from nanorepo.citation import PUBLISHER, CitationRecord
from nanorepo.citation._formats import datacite_xml
from nanorepo.service._app import state_of
from nanorepo.service._citation import citation_record
from nanorepo.storage import parse_ref

__all__ = ["NanorepoOAI", "router"]

router = APIRouter(include_in_schema=False)

#: Records per page before a resumption token.
PAGE = 100
DC = "http://purl.org/dc/elements/1.1/"
OAI_DC = "http://www.openarchives.org/OAI/2.0/oai_dc/"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
OAI_DATACITE = "http://schema.datacite.org/oai/oai-1.1/"
FORMATS = [
    MetadataFormat("oai_dc", "http://www.openarchives.org/OAI/2.0/oai_dc.xsd", OAI_DC),
    MetadataFormat("oai_datacite", "http://schema.datacite.org/oai/oai-1.1/oai.xsd", OAI_DATACITE),
]


def _utc(dt: datetime) -> str:
    """An OAI-PMH datestamp (UTC, seconds granularity); the catalog stores naive UTC."""
    dt = dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


class NanorepoOAI(DataInterface):
    """The repository's public versions as OAI-PMH records (one per request: it holds the
    request's catalog session)."""

    limit = PAGE

    def __init__(self, s: Session, catalog: Catalog, base_url: str, public_url: str | None):
        self.s, self.catalog, self.base_url, self.public_url = s, catalog, base_url, public_url
        host = urlsplit(public_url or "").hostname or "nanorepo"
        self.namespace = host
        #: identifiers of withdrawn versions met while answering (see :func:`_mark_deleted`)
        self.deleted: set[str] = set()

    # -- identifiers ---------------------------------------------------------------------

    def _identifier(self, accession: str, number: int) -> str:
        return f"oai:{self.namespace}:{accession}@v{number}"

    def _row(self, identifier: str) -> tuple[Dataset, Version] | None:
        prefix = f"oai:{self.namespace}:"
        if not identifier.startswith(prefix):
            return None
        try:
            acc, number = parse_ref(identifier[len(prefix) :])
        except Exception:
            return None
        if number is None:
            return None
        row = self.s.exec(
            select(Dataset, Version)
            .join(Version, col(Version.dataset_id) == col(Dataset.id))
            .where(Dataset.accession == acc, Version.number == number)
            .where(Dataset.access == "public")
        ).first()
        if row is None:
            return None
        if row[0].state != "active":
            self.deleted.add(identifier)
        return row[0], row[1]

    def is_valid_identifier(self, identifier: str) -> bool:
        return self._row(identifier) is not None

    # -- repository ------------------------------------------------------------------------

    def get_identify(self) -> Identify:
        earliest = self.s.exec(select(func.min(Version.created))).one()
        ident = Identify()
        ident.repository_name = "nanorepo: open reference data for nanoscopy"
        ident.base_url = self.base_url
        ident.admin_email = [
            "curators@" + (self.namespace if "." in self.namespace else "localhost")
        ]
        ident.earliest_datestamp = _utc(earliest or datetime.now(UTC))
        ident.deleted_record = "persistent"
        ident.granularity = "YYYY-MM-DDThh:mm:ssZ"
        return ident

    def get_metadata_formats(self, identifier: str | None = None) -> list[MetadataFormat]:
        return list(FORMATS)

    # -- records -----------------------------------------------------------------------------

    def _techniques(self, version_id: int) -> list[str]:
        rows = self.s.exec(
            select(Image.technique).where(Image.version_id == version_id).distinct()
        ).all()
        return sorted(t for t in rows if t)

    def get_record_header(self, identifier: str) -> RecordHeader:
        row = self._row(identifier)
        assert row is not None  # oai_repo asks only for identifiers it validated
        _, v = row
        header = RecordHeader()
        header.identifier = identifier
        header.datestamp = _utc(v.created)
        header.setspecs = [f"technique:{_spec(t)}" for t in self._techniques(v.id or 0)]
        return header

    def _record(self, identifier: str) -> tuple[Dataset, CitationRecord] | None:
        row = self._row(identifier)
        if row is None:
            return None
        ds, v = row
        return ds, citation_record(self.s, self.catalog, ds, v, self.public_url)

    def get_record_metadata(self, identifier: str, metadataprefix: str) -> Any:
        found = self._record(identifier)
        if found is None:
            return None
        r = found[1]  # (a withdrawn version's metadata is removed by _mark_deleted)
        if metadataprefix == "oai_dc":
            return _dublin_core(r)
        if metadataprefix == "oai_datacite":
            return _oai_datacite(r)
        return None

    def get_record_abouts(self, identifier: str) -> list[Any]:
        return []

    # -- lists -------------------------------------------------------------------------------

    def list_identifiers(
        self,
        metadataprefix: str,
        filter_from: datetime | None = None,
        filter_until: datetime | None = None,
        filter_set: str | None = None,
        cursor: int = 0,
    ) -> tuple[list[str], int, Any]:
        q = (
            select(Dataset.accession, Version.number)
            .join(Version, col(Version.dataset_id) == col(Dataset.id))
            .where(Dataset.access == "public")
        )
        if filter_from is not None:
            q = q.where(Version.created >= filter_from.replace(tzinfo=None))
        if filter_until is not None:
            q = q.where(Version.created <= filter_until.replace(tzinfo=None))
        if filter_set is not None:
            technique = filter_set.removeprefix("technique:")
            if not filter_set.startswith("technique:"):
                return [], 0, None
            names = [t for t in self._all_techniques() if _spec(t) == technique]
            with_technique = select(Image.version_id).where(col(Image.technique).in_(names))
            q = q.where(col(Version.id).in_(with_technique))
        rows = self.s.exec(q.order_by(col(Version.created), col(Version.id))).all()
        ids = [self._identifier(acc, n) for acc, n in rows]
        # the list's state: a new or withdrawn version invalidates older resumption tokens
        return ids[cursor : cursor + self.limit], len(ids), len(ids)

    def _all_techniques(self) -> Sequence[str]:
        public = select(Version.id).join(Dataset, col(Dataset.id) == col(Version.dataset_id))
        public = public.where(Dataset.access == "public")
        rows = self.s.exec(
            select(Image.technique).where(col(Image.version_id).in_(public)).distinct()
        ).all()
        return sorted(t for t in rows if t)

    def list_set_specs(self, identifier: str | None = None, cursor: int = 0) -> tuple[Any, ...]:
        if identifier is not None:
            row = self._row(identifier)
            techniques = self._techniques(row[1].id or 0) if row else []
        else:
            techniques = list(self._all_techniques())
        specs = [f"technique:{_spec(t)}" for t in techniques]
        return specs[cursor : cursor + self.limit], len(specs), len(specs)

    def get_set(self, setspec: str) -> Set | None:
        for t in self._all_techniques():
            if setspec == f"technique:{_spec(t)}":
                out = Set()
                out.spec, out.name = setspec, f"Imaging technique: {t}"
                out.description = []
                return out
        return None


def _spec(technique: str) -> str:
    """A technique as a setSpec token (letters, digits and -_.!~*'() only)."""
    return "".join(c if c.isalnum() or c in "-_.!~*'()" else "-" for c in technique)


def _dublin_core(r: CitationRecord) -> Any:
    root = etree.Element(f"{{{OAI_DC}}}dc", nsmap={"oai_dc": OAI_DC, "dc": DC, "xsi": XSI})
    root.set(f"{{{XSI}}}schemaLocation", f"{OAI_DC} http://www.openarchives.org/OAI/2.0/oai_dc.xsd")

    def add(name: str, text: str | None) -> None:
        if text:
            etree.SubElement(root, f"{{{DC}}}{name}").text = text

    add("title", r.title)
    for a in r.authors:
        add("creator", f"{a.family}, {a.given}" if a.family and a.given else a.name)
    for k in (*r.keywords, r.technique, r.organism):
        add("subject", k)
    add("description", r.description)
    add("publisher", PUBLISHER)
    add("date", r.date)
    add("type", "Dataset")
    add("format", "OME-Zarr (NGFF 0.5)")
    add("identifier", f"https://doi.org/{r.doi}" if r.doi else None)
    add("identifier", r.url)
    add("identifier", r.ref)
    add("rights", r.license)
    return root


def _oai_datacite(r: CitationRecord) -> Any:
    root = etree.Element(f"{{{OAI_DATACITE}}}oai_datacite", nsmap={None: OAI_DATACITE, "xsi": XSI})
    root.set(
        f"{{{XSI}}}schemaLocation", f"{OAI_DATACITE} http://schema.datacite.org/oai/oai-1.1/oai.xsd"
    )
    etree.SubElement(root, f"{{{OAI_DATACITE}}}schemaVersion").text = "4.5"
    etree.SubElement(root, f"{{{OAI_DATACITE}}}datacentreSymbol").text = PUBLISHER.upper()
    payload = etree.SubElement(root, f"{{{OAI_DATACITE}}}payload")
    payload.append(etree.fromstring(datacite_xml(r).encode()))
    return root


def _base_url(request: Request) -> str:
    st = state_of(request)
    prefix = st.settings.service_prefix.rstrip("/")
    public = (st.settings.public_url or "").rstrip("/")
    return f"{public}/oai" if public else f"{prefix}/oai"


async def _args(request: Request) -> dict[str, str]:
    """The request's arguments (GET query or POST form). A repeated argument is passed on
    under a name no verb accepts, so oai_repo answers ``badArgument`` as the protocol asks."""
    items = list(request.query_params.multi_items())
    if request.method == "POST":
        form = await request.form()
        items += [(k, str(v)) for k, v in form.multi_items()]
    args: dict[str, str] = {}
    for k, v in items:
        args[k if k not in args else f"repeated:{k}"] = v
    return args


def _mark_deleted(root: Any, deleted: set[str]) -> None:
    """Withdrawn versions as the protocol wants deleted records: ``status="deleted"`` on
    the header and no metadata (oai_repo 0.5 writes no status, so it is added here)."""
    ns = "{http://www.openarchives.org/OAI/2.0/}"
    for header in root.iter(f"{ns}header", "header"):
        ident = header.find(f"{ns}identifier")
        ident = ident if ident is not None else header.find("identifier")
        if ident is None or ident.text not in deleted:
            continue
        header.set("status", "deleted")
        record = header.getparent()
        for child in list(record) if record is not None and record.tag.endswith("record") else []:
            if child is not header:
                record.remove(child)


def _answer(request: Request, args: dict[str, str]) -> bytes:
    st = state_of(request)
    with st.repo.catalog.session() as s:
        data = NanorepoOAI(s, st.repo.catalog, _base_url(request), st.settings.public_url)
        response = OAIRepository(data).process(args)
        _mark_deleted(response.root(), data.deleted)
        return bytes(response)


@router.api_route("/oai", methods=["GET", "POST"])
async def oai(request: Request) -> Response:
    """The OAI-PMH endpoint (all six verbs); public versions only, no login."""
    args = await _args(request)
    body = await run_in_threadpool(_answer, request, args)
    return Response(body, media_type="text/xml; charset=utf-8")
