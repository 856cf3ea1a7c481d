"""``GET /datasets/{accession}/versions/{version}/citation?format=``: how to cite a version.

The same formats as ``nanorepo cite`` (:mod:`nanorepo.citation`): BibTeX, RIS, CSL-JSON,
APA, Vancouver, DataCite 4.5 JSON and XML, and the short text form. The citation's URL is
the configured public address (``NANOREPO_PUBLIC_URL``), never the request's ``Host``.
An embargoed version the caller may not see answers exactly like a missing one.
"""

from __future__ import annotations

import json
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request, Response
from sqlmodel import Session, select

from nanorepo.catalog import Catalog
from nanorepo.catalog._catalog import row_id
from nanorepo.catalog.models import Dataset, Image, Version
from nanorepo.citation import MEDIA_TYPES, CitationRecord, cite
from nanorepo.service._app import CurrentPrincipal, DbSession, state_of
from nanorepo.service._datasets import version_row
from nanorepo.service._http import etag, not_modified, set_etag

__all__ = ["citation_record", "router"]

router = APIRouter()


def citation_record(
    s: Session, catalog: Catalog, ds: Dataset, v: Version, public_url: str | None
) -> CitationRecord:
    """The citation record of version ``v`` from the catalog (what landing pages, the
    citation route and OAI-PMH all say about it)."""
    vid = row_id(v)
    techniques = s.exec(select(Image.technique).where(Image.version_id == vid).distinct()).all()
    return CitationRecord.from_show(
        {
            "accession": ds.accession,
            "version": v.number,
            "title": ds.title,
            "created": v.created.isoformat(),
            "license": (ds.mutable or {}).get("license"),
            "size_bytes": v.size_bytes,
            "mutable": ds.mutable,
            "metadata": json.loads(v.metadata_json),
            "versions": [{"version": x.number} for x in catalog.versions(s, row_id(ds))],
            "images": [{"technique": t} for t in techniques],
        },
        public_url,
    )


CitationFormat = Literal[
    "text", "bibtex", "ris", "csl-json", "apa", "vancouver", "datacite-json", "datacite-xml"
]

#: the JSON formats' shapes (the others are text)
_SCHEMAS = {
    "csl-json": {"type": "array", "items": {"type": "object"}},
    "datacite-json": {"type": "object"},
}


@router.get(
    "/datasets/{accession}/versions/{version}/citation",
    tags=["datasets"],
    response_class=Response,
    responses={
        200: {
            "description": "the citation in the format asked for",
            "content": {
                t.split(";")[0]: {"schema": _SCHEMAS.get(f, {"type": "string"})}
                for f, t in MEDIA_TYPES.items()
            },
        },
        304: {"description": "not modified (If-None-Match)"},
    },
)
def citation(
    accession: str,
    version: str,
    request: Request,
    s: DbSession,
    p: CurrentPrincipal,
    format: Annotated[CitationFormat, Query(description="citation format")] = "text",
) -> Response:
    """The citation of a version, for reference managers (BibTeX, RIS, CSL-JSON), papers
    (APA, Vancouver) and registries (DataCite)."""
    st = state_of(request)
    ds, v = version_row(s, p, accession, version)
    # a citation changes with the version (sealed) and the dataset's administrative
    # metadata (title, licence, description, keywords) and versions list
    tag = etag(v.metadata_digest, ds.mutable_rev, ds.latest_version, format)
    if not_modified(request, tag):
        return Response(status_code=304, headers={"ETag": tag})
    body = cite(citation_record(s, st.repo.catalog, ds, v, st.settings.public_url), format)
    response = Response(body, media_type=MEDIA_TYPES[format])
    set_etag(response, tag, cache="no-cache" if ds.access == "public" else "private, no-cache")
    return response
