"""What a citation of one dataset version says, taken from what ``show`` returns.

One record feeds every format (:mod:`nanorepo.citation._formats`), so BibTeX, RIS, CSL-JSON,
DataCite and the formatted styles can never disagree about authors, year or reference.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["PUBLISHER", "Author", "CitationRecord"]

#: The publisher named in every citation (DataCite's required ``publisher``).
PUBLISHER = "nanorepo"

_ORCID = re.compile(r"(?:https?://orcid\.org/)?(\d{4}-\d{4}-\d{4}-\d{3}[\dX])$")


@dataclass(frozen=True)
class Author:
    """One creator. ``family``/``given`` are set for people whose name could be split
    (``"Family, Given"``, or given/family written out in the metadata); otherwise ``name``
    is an organisation or a name kept as written (``literal`` in CSL, braced in BibTeX)."""

    name: str
    family: str | None = None
    given: str | None = None
    orcid: str | None = None
    affiliation: str | None = None

    @classmethod
    def from_metadata(cls, entry: Any) -> Author | None:
        """An author from the sealed metadata's ``study.authors`` entry (a mapping with
        ``name`` and optionally ``given``/``family``, ``orcid``, ``affiliation``, or a bare
        string); ``None`` for an entry without a name."""
        if isinstance(entry, str):
            entry = {"name": entry}
        if not isinstance(entry, Mapping):
            return None
        family = _text(entry.get("family") or entry.get("family_name"))
        given = _text(entry.get("given") or entry.get("given_name"))
        name = _text(entry.get("name")) or " ".join(x for x in (given, family) if x)
        if not name:
            return None
        if not family and "," in name:
            family, _, given = (x.strip() for x in name.partition(","))
            name = f"{given} {family}".strip()
        orcid = None
        m = _ORCID.match(_text(entry.get("orcid")) or "")
        if m:
            orcid = m.group(1)
        return cls(
            name=name,
            family=family or None,
            given=given or None,
            orcid=orcid,
            affiliation=_text(entry.get("affiliation")) or None,
        )

    @property
    def orcid_url(self) -> str | None:
        return f"https://orcid.org/{self.orcid}" if self.orcid else None


@dataclass(frozen=True)
class CitationRecord:
    """Everything any citation format needs about one published version."""

    accession: str
    version: int
    title: str
    authors: tuple[Author, ...]
    date: str  #: publication date of the version, YYYY-MM-DD
    base_url: str | None = None  #: the service's public address, if configured
    doi: str | None = None
    license: str | None = None
    description: str | None = None
    keywords: tuple[str, ...] = ()
    technique: str | None = None
    organism: str | None = None
    size_bytes: int | None = None
    versions: tuple[int, ...] = field(default_factory=tuple)

    @property
    def ref(self) -> str:
        """The citable reference, ``ACCESSION@vN``."""
        return f"{self.accession}@v{self.version}"

    @property
    def url(self) -> str | None:
        """The version's landing page (``{public URL}/S-NANO1@v2``), if the service has a
        configured public address."""
        return self.version_url(self.version)

    def version_url(self, version: int) -> str | None:
        """The landing page of another version of the same dataset."""
        if not self.base_url:
            return None
        return f"{self.base_url.rstrip('/')}/{self.accession}@v{version}"

    @property
    def year(self) -> str:
        return self.date[:4]

    @property
    def key(self) -> str:
        """A citation key for reference managers: ``nanorepo_S-NANO1_v1``."""
        return f"{PUBLISHER}_{self.accession}_v{self.version}"

    @classmethod
    def from_show(cls, show: Mapping[str, Any], base_url: str | None = None) -> CitationRecord:
        """The record of the version described by ``show`` (what ``Repository.show`` and
        ``nanorepo show --json`` return). ``base_url`` is the service's public address
        (``NANOREPO_PUBLIC_URL``): the citation's URL is the version's landing page there."""
        metadata = show.get("metadata") or {}
        study = metadata.get("study") or {}
        mutable = show.get("mutable") or {}
        acquisition = metadata.get("image_acquisition") or {}
        biosample = metadata.get("biosample") or {}
        authors = tuple(a for a in map(Author.from_metadata, study.get("authors") or []) if a)
        keywords = mutable.get("keywords", study.get("keywords")) or ()
        if isinstance(keywords, str):
            keywords = [k.strip() for k in keywords.split(",")]
        accession, version = str(show["accession"]), int(show["version"])
        images = show.get("images") or []  # per-image techniques, when the study names none
        doi = _text(mutable.get("doi")) or _text(study.get("doi")) or None
        return cls(
            accession=accession,
            version=version,
            title=str(show.get("title") or study.get("title") or accession),
            authors=authors,
            date=str(show.get("created") or "")[:10],
            base_url=base_url.rstrip("/") if base_url else None,
            doi=doi.removeprefix("https://doi.org/") if doi else None,
            license=_text(show.get("license") or mutable.get("license") or study.get("license"))
            or None,
            description=_text(mutable.get("description") or study.get("description")) or None,
            keywords=tuple(k for k in (str(x).strip() for x in keywords) if k),
            technique=_text(acquisition.get("technique"))
            or ", ".join(sorted({str(i["technique"]) for i in images if i.get("technique")}))
            or None,
            organism=_text(biosample.get("organism")) or None,
            size_bytes=show.get("size_bytes"),
            versions=tuple(int(v["version"]) for v in show.get("versions") or []),
        )


def _text(value: Any) -> str:
    if isinstance(value, Mapping):  # e.g. organism as {name, ncbi_taxon}
        value = value.get("name") or value.get("label") or ""
    return str(value).strip() if value is not None else ""
