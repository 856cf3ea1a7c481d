"""Citations of dataset versions: one record, every format reference managers and DataCite
read (BibTeX, RIS, CSL-JSON, APA, Vancouver, DataCite 4.5 JSON and XML).

``nanorepo cite ACC@vN --format F`` and the service's
``GET /datasets/{acc}/versions/{v}/citation?format=F`` both go through :func:`cite`.
"""

from __future__ import annotations

from nanorepo.citation._formats import FORMATS, MEDIA_TYPES, cite, csl_json, datacite_json
from nanorepo.citation._record import PUBLISHER, Author, CitationRecord

__all__ = [
    "FORMATS",
    "MEDIA_TYPES",
    "PUBLISHER",
    "Author",
    "CitationRecord",
    "cite",
    "csl_json",
    "datacite_json",
]
