"""What the napari reader accepts: ``nanorepo://`` URIs and the service's Zarr URLs.

* ``nanorepo://ACCESSION[@vN][/IMAGE]``: a dataset version (the latest without ``@vN``)
  and optionally one of its images, opened with :func:`nanorepo.open`, so from the mounted
  storage when it is there and over HTTP from ``NANOREPO_URL`` otherwise.
* ``http(s)://HOST[/PREFIX]/zarr/ACCESSION/vN/IMAGE[/]``: an image on the Zarr endpoint
  of a nanorepo service (what ``nanorepo.Client.zarr_url`` and the Lab extension hand
  out). The service root is the part before ``/zarr/``.

Anything else is not nanorepo's, and the reader returns ``None`` for it so that napari asks
other plugins. A string that starts with ``nanorepo://`` *is* ours, so a malformed one is a
clear error rather than a silent "no reader".
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from nanorepo.errors import InvalidInput
from nanorepo.storage import ACCESSION_RE, check_name, parse_ref
from nanorepo.storage._layout import NAME_RE

__all__ = ["SCHEME", "Target", "parse_target"]

#: The URI scheme of the reader.
SCHEME = "nanorepo://"

_ZARR_URL = re.compile(
    rf"(?P<service>https?://[^?#\s]+?)/zarr/(?P<acc>{ACCESSION_RE.pattern})/[vV]?"
    rf"(?P<ver>[1-9][0-9]{{0,8}})/(?P<image>{NAME_RE.pattern})/?"
)


@dataclass(frozen=True)
class Target:
    """A dataset version (and maybe one image) the reader is asked to open.

    Attributes
    ----------
    accession:
        The dataset, e.g. ``S-NANO1``.
    version:
        The version number, or ``None`` for the latest.
    image:
        One image's name, or ``None`` for every image of the version.
    service:
        The service root the location names (Zarr URLs), or ``None`` for ``nanorepo://``
        URIs, which use the configured ``NANOREPO_URL``.
    """

    accession: str
    version: int | None = None
    image: str | None = None
    service: str | None = None

    @property
    def ref(self) -> str:
        """``ACCESSION`` or ``ACCESSION@vN``, as :func:`nanorepo.open` takes it."""
        return self.accession if self.version is None else f"{self.accession}@v{self.version}"

    @property
    def uri(self) -> str:
        """The ``nanorepo://`` form of the target."""
        return SCHEME + self.ref + (f"/{self.image}" if self.image else "")


def parse_target(location: object) -> Target | None:
    """The :class:`Target` ``location`` names, or ``None`` if it is not nanorepo's.

    Raises
    ------
    InvalidInput
        A ``nanorepo://`` URI that is malformed (bad accession, version or image name),
        with what the right form is. URLs that do not have the shape of a nanorepo Zarr
        URL are simply not ours (``None``): they may be another server's.
    """
    if not isinstance(location, str):
        return None
    text = location.strip()
    if text[: len(SCHEME)].lower() == SCHEME:
        rest = text[len(SCHEME) :].strip("/")
        ref, _, image = rest.partition("/")
        if not ref or "/" in image:
            raise InvalidInput(
                f"{location!r} is not a nanorepo URI",
                hint="write nanorepo://ACCESSION[@vN][/IMAGE], e.g. nanorepo://S-NANO1/npc_sted",
            )
        accession, version = parse_ref(ref)
        return Target(accession, version, check_name(image) if image else None)
    m = _ZARR_URL.fullmatch(text)
    if m is None:  # another server's URL, or not a nanorepo image: not ours
        return None
    return Target(m["acc"], int(m["ver"]), m["image"], service=m["service"])
