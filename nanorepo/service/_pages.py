"""Public landing pages of dataset versions: ``GET {prefix}/S-NANO1@v2`` (and
``{prefix}/S-NANO1`` for the latest version), the address a citation, a journal or a
colleague opens.

One server-rendered HTML page per version, readable without an account for public data:
title, authors with ORCID links, description, licence, technique, organism, sizes,
thumbnails, files, versions with what changed, the citation (copy buttons, BibTeX/RIS/
CSL-JSON/DataCite downloads), how to open it (notebook, napari, JupyterLab on the hub), the
discussion's size. Machines read the same page through

- schema.org ``Dataset`` JSON-LD in the page (Bioschemas Dataset profile 1.0: its minimum
  and recommended properties), also served alone for ``Accept: application/ld+json``;
- FAIR Signposting ``Link`` headers (level 1: ``cite-as``, ``describedby``, ``item``,
  ``license``, ``author``, ``type``), so a harvester needs no HTML parsing;
- ``{prefix}/sitemap.xml`` listing every public version's page.

A version the viewer may not see answers exactly like one that does not exist (the same
404 page). Every text is escaped; the page's only script is the service's own copy-button
file (CSP ``script-src 'self'``); the JSON-LD block is data, never executed, and is
escaped so no value can close it.

The path ``/S-NANO{rest}`` only matches accessions, so the pages never shadow an API route.
"""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from importlib import resources
from typing import Any
from urllib.parse import quote
from xml.sax.saxutils import escape as xml_escape

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse
from sqlalchemy import func
from sqlmodel import Session, col, select

from nanorepo import __version__
from nanorepo.catalog._catalog import row_id
from nanorepo.catalog.models import Dataset, File, Image, Thread, Version
from nanorepo.citation import PUBLISHER, cite
from nanorepo.errors import DatasetNotFound
from nanorepo.policy import Principal
from nanorepo.service._app import CurrentPrincipal, DbSession, state_of
from nanorepo.service._citation import citation_record
from nanorepo.service._datasets import version_row
from nanorepo.service._landing import hub_base, lab_link
from nanorepo.storage import ACCESSION_RE

__all__ = ["PAGE_CSP", "router"]

router = APIRouter(include_in_schema=False)

#: The page's policy: its own stylesheet, copy-button script and same-origin thumbnails.
PAGE_CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self'; script-src 'self'; "
    "connect-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)
_CSS = "_static/landing.css"
_JS = "_static/copy.js"
#: Most thumbnails a page shows (a dataset may hold thousands of images).
MAX_THUMBNAILS = 24
#: Most files and images listed on the page and as Signposting items.
MAX_ITEMS = 200
BIOSCHEMAS_DATASET = "https://bioschemas.org/profiles/Dataset/1.0-RELEASE"


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _size(n: int) -> str:
    """A file's or image's size for people (decimal units, as storage is sold)."""
    for unit, size in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= size:
            return f"{n / size:,.1f} {unit}"
    return f"{n} B"


def _spdx(license: str | None) -> str | None:
    """The SPDX page of a licence identifier (``CC-BY-4.0``), for links and JSON-LD."""
    if not license or not all(c.isalnum() or c in ".-+" for c in license):
        return None
    return f"https://spdx.org/licenses/{license}.html"


class _Page:
    """What one landing page shows, read from the catalog once."""

    def __init__(self, s: Session, request: Request, p: Principal, ref: str) -> None:
        acc, _, ver = ref.partition("@")
        st = state_of(request)
        self.ds, self.v = version_row(s, p, acc, ver or "latest")
        self.prefix = st.settings.service_prefix.rstrip("/")
        #: absolute links when the public address is configured, else prefix-relative ones
        self.base = (st.settings.public_url or "").rstrip("/") or self.prefix
        self.hub = hub_base(st.settings.service_prefix)
        cat = st.repo.catalog
        self.versions: Sequence[Version] = cat.versions(s, row_id(self.ds))
        vid = row_id(self.v)
        self.images: Sequence[Image] = s.exec(
            select(Image).where(Image.version_id == vid).order_by(col(Image.name)).limit(MAX_ITEMS)
        ).all()
        self.image_count = s.exec(select(func.count()).where(Image.version_id == vid)).one()
        self.files: Sequence[File] = s.exec(
            select(File).where(File.version_id == vid).order_by(col(File.name)).limit(MAX_ITEMS)
        ).all()
        self.threads = dict(
            s.exec(
                select(Thread.status, func.count())
                .where(Thread.dataset_id == row_id(self.ds), Thread.state == "active")
                .group_by(Thread.status)
            ).all()
        )
        self.metadata: dict[str, Any] = json.loads(self.v.metadata_json)
        self.record = citation_record(s, cat, self.ds, self.v, st.settings.public_url)

    # -- addresses ---------------------------------------------------------------------------

    @property
    def ref(self) -> str:
        return self.record.ref

    def page_url(self, version: int) -> str:
        return f"{self.base}/{self.ds.accession}@v{version}"

    def api(self, path: str) -> str:
        return f"{self.base}/{path}"

    def citation_url(self, fmt: str) -> str:
        return self.api(
            f"datasets/{self.ds.accession}/versions/v{self.v.number}/citation?format={fmt}"
        )

    def file_url(self, f: File) -> str:
        return self.api(
            f"datasets/{self.ds.accession}/versions/v{self.v.number}/files/"
            + quote(f.name, safe="/")
        )

    def image_url(self, im: Image) -> str:
        return self.api(f"zarr/{self.ds.accession}/v{self.v.number}/{quote(im.name)}")

    def thumbnail_url(self, im: Image) -> str:
        return self.api(
            f"datasets/{self.ds.accession}/versions/v{self.v.number}/images/"
            f"{quote(im.name)}/thumbnail.png?size=128"
        )

    def here(self, url: str) -> str:
        """``url`` as a same-origin path for the HTML page (links and thumbnails load from
        where the page was served; the absolute public URLs are for machines)."""
        return self.prefix + url[len(self.base) :] if url.startswith(self.base) else url

    @property
    def cite_as(self) -> str:
        """What ``cite-as`` names: the DOI when there is one, else this page."""
        if self.record.doi:
            return f"https://doi.org/{self.record.doi}"
        return self.page_url(self.v.number)

    # -- machine-readable --------------------------------------------------------------------

    def json_ld(self) -> dict[str, Any]:
        """schema.org ``Dataset`` (Bioschemas Dataset profile 1.0) of this version."""
        r = self.record
        creators = []
        for a in r.authors:
            person: dict[str, Any] = {"@type": "Person" if a.family else "Organization"}
            person["name"] = a.name
            if a.family:
                person["familyName"] = a.family
                if a.given:
                    person["givenName"] = a.given
            if a.orcid_url:
                person["@id"] = a.orcid_url
                person["identifier"] = a.orcid_url
            if a.affiliation:
                person["affiliation"] = {"@type": "Organization", "name": a.affiliation}
            creators.append(person)
        identifiers = [self.cite_as] if r.doi else []
        identifiers.append(r.ref)
        keywords = list(r.keywords) or [t for t in (r.technique, r.organism) if t]
        doc: dict[str, Any] = {
            "@context": "https://schema.org/",
            "@type": "Dataset",
            "@id": self.page_url(self.v.number),
            "dct:conformsTo": {"@id": BIOSCHEMAS_DATASET},
            "name": r.title,
            "description": r.description or r.title,
            "identifier": identifiers,
            "url": self.page_url(self.v.number),
            "version": str(self.v.number),
            "keywords": keywords,
            "license": _spdx(r.license) or (r.license or "unspecified"),
            "creator": creators,
            "datePublished": r.date,
            "dateModified": r.date,  # a version never changes after publication
            "publisher": {"@type": "Organization", "name": PUBLISHER},
            "includedInDataCatalog": {
                "@type": "DataCatalog",
                "name": PUBLISHER,
                "url": f"{self.base}/",
            },
            "isAccessibleForFree": True,
            "measurementTechnique": r.technique or "microscopy",
            "citation": cite(r, "text"),
            "contentSize": f"{self.v.size_bytes} B",
            "distribution": [
                {
                    "@type": "DataDownload",
                    "name": im.name,
                    "contentUrl": self.image_url(im),
                    "encodingFormat": "application/vnd.ome-zarr",
                    "contentSize": f"{im.size_bytes} B",
                }
                for im in self.images
            ]
            + [
                {
                    "@type": "DataDownload",
                    "name": f.name,
                    "contentUrl": self.file_url(f),
                    "encodingFormat": f.media_type,
                    "contentSize": f"{f.size_bytes} B",
                    "sha256": f.sha256,
                }
                for f in self.files
            ],
        }
        if r.organism:
            doc["about"] = {"@type": "Taxon", "name": r.organism}
        if self.v.number > 1:
            doc["isBasedOn"] = self.page_url(self.v.number - 1)
        return doc

    def signposting(self) -> str:
        """FAIR Signposting level 1 as one ``Link`` header value."""
        links = [f'<{self.cite_as}>; rel="cite-as"']
        for fmt, media in (
            ("datacite-xml", "application/vnd.datacite.datacite+xml"),
            ("datacite-json", "application/vnd.datacite.datacite+json"),
            ("csl-json", "application/vnd.citationstyles.csl+json"),
        ):
            links.append(f'<{self.citation_url(fmt)}>; rel="describedby"; type="{media}"')
        links.append('<https://schema.org/Dataset>; rel="type"')
        links.append('<https://schema.org/AboutPage>; rel="type"')
        lic = _spdx(self.record.license)
        if lic:
            links.append(f'<{lic}>; rel="license"')
        links += [f'<{a.orcid_url}>; rel="author"' for a in self.record.authors if a.orcid_url]
        links += [
            f'<{self.image_url(im)}/zarr.json>; rel="item"; type="application/json"'
            for im in self.images
        ]
        links += [f'<{self.file_url(f)}>; rel="item"; type="{f.media_type}"' for f in self.files]
        return ", ".join(links)

    # -- for people ------------------------------------------------------------------------

    def html(self) -> str:
        r, ds, v = self.record, self.ds, self.v
        out: list[str] = [
            "<!doctype html>",
            '<html lang="en"><head><meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f"<title>{_e(r.title)} ({_e(r.ref)}) · nanorepo</title>",
            f'<meta name="description" content="{_e((r.description or r.title)[:300])}">',
            f'<link rel="canonical" href="{_e(self.page_url(v.number))}">',
            f'<link rel="cite-as" href="{_e(self.cite_as)}">',
            f'<link rel="stylesheet" href="{_e(self.prefix + "/" + _CSS)}">',
            f'<script src="{_e(self.prefix + "/" + _JS)}" defer></script>',
            '<script type="application/ld+json">',
            # data, not code; "<" escaped so no value can end the block
            json.dumps(self.json_ld(), ensure_ascii=False).replace("<", "\\u003c"),
            "</script></head><body>",
            f'<header class="nr-top"><p><a href="{_e(self.prefix)}/">nanorepo</a> · '
            f'<span class="nr-ref">{_e(r.ref)}</span></p>',
            f"<h1>{_e(r.title)}</h1>",
        ]
        if ds.access == "embargoed":
            until = f" until {ds.embargo_until}" if ds.embargo_until else ""
            out.append(
                f'<p><span class="nr-badge nr-embargo">embargoed{_e(until)}</span> '
                "only you and others granted access see this page</p>"
            )
        if v.number < ds.latest_version:
            out.append(
                f'<p class="nr-newer">A newer version exists: <a href="'
                f'{_e(self.here(self.page_url(ds.latest_version)))}">{_e(ds.accession)}@v'
                f"{ds.latest_version}</a></p>"
            )
        if r.authors:
            out.append('<p class="nr-authors">')
            parts = []
            for a in r.authors:
                part = _e(a.name)
                if a.orcid_url:
                    part += (
                        f' <a class="nr-orcid" href="{_e(a.orcid_url)}" '
                        f'title="ORCID {_e(a.orcid)}">ORCID</a>'
                    )
                if a.affiliation:
                    part += f' <span class="nr-aff">({_e(a.affiliation)})</span>'
                parts.append(part)
            out.append("; ".join(parts) + "</p>")
        out.append("</header><main>")
        if r.description:
            out.append(f'<section><p class="nr-description">{_e(r.description)}</p></section>')
        out.append(self._facts())
        out.append(self._cite())
        out.append(self._open())
        out.append(self._images())
        out.append(self._files())
        out.append(self._versions())
        out.append(
            f'<footer><a href="{_e(self.prefix)}/openapi.json">API (OpenAPI)</a> · '
            f"nanorepo {_e(__version__)}</footer></main></body></html>"
        )
        return "".join(out)

    def _facts(self) -> str:
        r, v = self.record, self.v
        lic = _spdx(r.license)
        rows = [
            ("Reference", _e(r.ref)),
            ("Published", _e(r.date)),
            (
                "Licence",
                f'<a href="{_e(lic)}">{_e(r.license)}</a>' if lic else _e(r.license or "-"),
            ),
            ("Technique", _e(r.technique or "-")),
            ("Organism", _e(r.organism or "-")),
            ("Images", f"{self.image_count:,}"),
            ("Size", _e(_size(v.size_bytes))),
            ("Keywords", _e(", ".join(r.keywords) or "-")),
            (
                "Discussion",
                f"{self.threads.get('open', 0):,} open, "
                f"{self.threads.get('resolved', 0):,} resolved threads",
            ),
            ("Manifest SHA-256", f"<code>{_e(v.manifest_digest)}</code>"),
        ]
        body = "".join(f"<tr><th>{k}</th><td>{val}</td></tr>" for k, val in rows)
        return f'<section><h2>About</h2><table class="nr-facts">{body}</table></section>'

    def _cite(self) -> str:
        text = cite(self.record, "text")
        out = [
            '<section><h2>Cite</h2><p class="nr-cite">',
            f'<span id="nr-cite-text">{_e(text)}</span> ',
            '<button type="button" class="nr-copy" data-copy="nr-cite-text">Copy</button></p>',
            '<p class="nr-formats">',
        ]
        for fmt, label in (
            ("bibtex", "BibTeX"),
            ("ris", "RIS"),
            ("csl-json", "CSL-JSON"),
            ("apa", "APA"),
            ("vancouver", "Vancouver"),
            ("datacite-xml", "DataCite XML"),
            ("datacite-json", "DataCite JSON"),
        ):
            out.append(f'<a href="{_e(self.here(self.citation_url(fmt)))}">{label}</a> ')
        out.append("</p></section>")
        return "".join(out)

    def _open(self) -> str:
        ref = self.ref
        snippets = [
            ("nr-open-py", "In a notebook", f'ds = nanorepo.open("{ref}")'),
            ("nr-open-napari", "In napari", f"nanorepo view {ref}"),
            ("nr-open-cite", "Citation from a terminal", f"nanorepo cite {ref} --format bibtex"),
        ]
        out = ['<section><h2>Open it</h2><ul class="nr-open-list">']
        if self.hub:
            out.append(
                f'<li><a class="nr-open" href="{_e(lab_link(self.hub, self.ds.accession))}">'
                "Open in JupyterLab</a> (the Repository panel, on the hub)</li>"
            )
        for ident, label, code in snippets:
            out.append(
                f'<li>{_e(label)}: <code id="{ident}">{_e(code)}</code> '
                f'<button type="button" class="nr-copy" data-copy="{ident}">Copy</button></li>'
            )
        out.append("</ul></section>")
        return "".join(out)

    def _images(self) -> str:
        if not self.images:
            return ""
        out = ['<section><h2>Images</h2><ul class="nr-images">']
        for im in self.images[:MAX_THUMBNAILS]:
            px = ", ".join(f"{k} {v:g} nm" for k, v in (im.pixel_sizes or {}).items())
            shape = " × ".join(f"{n} {d}" for d, n in zip(im.dims, im.shape, strict=False))
            out.append(
                f'<li><img src="{_e(self.here(self.thumbnail_url(im)))}" alt="{_e(im.name)}" '
                'width="96" height="96">'
                f'<div><span class="nr-name">{_e(im.name)}</span> '
                f'<span class="nr-dims">{_e(shape)}</span> '
                f'<span class="nr-px">{_e(px)}</span></div></li>'
            )
        out.append("</ul>")
        more = self.image_count - min(len(self.images), MAX_THUMBNAILS)
        if more > 0:
            out.append(f"<p>and {more:,} more images.</p>")
        out.append("</section>")
        return "".join(out)

    def _files(self) -> str:
        if not self.files:
            return ""
        out = ['<section><h2>Files</h2><table class="nr-files"><thead><tr>']
        out.append("<th>file</th><th>role</th><th>size</th><th>SHA-256</th></tr></thead><tbody>")
        for f in self.files:
            out.append(
                f'<tr><td><a href="{_e(self.here(self.file_url(f)))}">{_e(f.name)}</a></td>'
                f"<td>{_e(f.role)}</td><td>{_e(_size(f.size_bytes))}</td>"
                f"<td><code>{_e(f.sha256[:16])}…</code></td></tr>"
            )
        out.append("</tbody></table></section>")
        return "".join(out)

    def _versions(self) -> str:
        out = ['<section><h2>Versions</h2><table class="nr-versions"><thead><tr>']
        out.append("<th>version</th><th>published</th><th>by</th><th>what changed</th>")
        out.append("</tr></thead><tbody>")
        for x in reversed(self.versions):
            label = f"v{x.number}"
            cell = (
                f"<strong>{label}</strong>"
                if x.number == self.v.number
                else f'<a href="{_e(self.here(self.page_url(x.number)))}">{label}</a>'
            )
            out.append(
                f"<tr><td>{cell}</td><td>{_e(x.created.date().isoformat())}</td>"
                f"<td>{_e(x.created_by)}</td><td>{_e(x.note or '-')}</td></tr>"
            )
        out.append("</tbody></table></section>")
        return "".join(out)


def _not_found(prefix: str) -> HTMLResponse:
    """The one answer for a missing dataset and for one the viewer may not see."""
    page = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        "<title>No such dataset · nanorepo</title>"
        f'<link rel="stylesheet" href="{_e(prefix + "/" + _CSS)}"></head><body><main>'
        "<h1>No such dataset</h1><p>There is no dataset at this address that you may see. "
        "Check the accession (e.g. S-NANO1@v1); embargoed datasets are shown only to "
        f'those granted access, after signing in.</p><p><a href="{_e(prefix)}/">'
        "What the repository holds</a></p></main></body></html>"
    )
    return HTMLResponse(
        page,
        status_code=404,
        headers={"Content-Security-Policy": PAGE_CSP, "Cache-Control": "no-cache"},
    )


def _wants_json_ld(request: Request) -> bool:
    accept = request.headers.get("accept", "")
    return "application/ld+json" in accept and "text/html" not in accept


@router.get("/S-NANO{rest}")
def landing_page(rest: str, request: Request, s: DbSession, p: CurrentPrincipal) -> Response:
    """A version's landing page (``S-NANO1@v2``; ``S-NANO1`` is the latest version)."""
    ref = f"S-NANO{rest}"
    acc, _, ver = ref.partition("@")
    prefix = state_of(request).settings.service_prefix.rstrip("/")
    if not ACCESSION_RE.fullmatch(acc) or (ver and not (ver[:1] == "v" and ver[1:].isdigit())):
        return _not_found(prefix)
    try:
        page = _Page(s, request, p, ref)
    except DatasetNotFound:  # also a version that does not exist, and one not visible
        return _not_found(prefix)
    headers = {
        "Link": page.signposting(),
        "Vary": "Accept, Cookie, Authorization",
        "Cache-Control": "no-cache" if page.ds.access == "public" else "private, no-cache",
    }
    if _wants_json_ld(request):
        return Response(
            json.dumps(page.json_ld(), ensure_ascii=False),
            media_type="application/ld+json",
            headers=headers,
        )
    headers["Content-Security-Policy"] = PAGE_CSP
    return HTMLResponse(page.html(), headers=headers)


@router.get("/sitemap.xml")
def sitemap(request: Request, s: DbSession) -> Response:
    """Every public version's landing page, for search engines (sitemaps.org 0.9)."""
    st = state_of(request)
    base = (st.settings.public_url or "").rstrip("/") or st.settings.service_prefix.rstrip("/")
    rows = s.exec(
        select(Dataset.accession, Version.number, Version.created)
        .join(Version, col(Version.dataset_id) == col(Dataset.id))
        .where(Dataset.access == "public")
        .order_by(col(Dataset.id), col(Version.number))
    ).all()
    out = ['<?xml version="1.0" encoding="UTF-8"?>']
    out.append('<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">')
    for acc, number, created in rows:
        out.append(
            f"<url><loc>{xml_escape(f'{base}/{acc}@v{number}')}</loc>"
            f"<lastmod>{created.date().isoformat()}</lastmod></url>"
        )
    out.append("</urlset>")
    return Response("\n".join(out), media_type="application/xml")


_COPY_JS = resources.files("nanorepo.service").joinpath("static/copy.js")


@router.get("/_static/copy.js")
def copy_script() -> Response:
    """The landing pages' only script: copy buttons (``data-copy`` names the element)."""
    return Response(
        _COPY_JS.read_bytes(),
        media_type="text/javascript",
        headers={"Cache-Control": "public, max-age=3600"},
    )
