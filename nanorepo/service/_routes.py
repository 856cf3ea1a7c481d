"""Every router of the service, in the order they are mounted."""

from __future__ import annotations

from nanorepo.service import (
    _annotations,
    _citation,
    _datasets,
    _deposits,
    _download,
    _images,
    _oai,
    _pages,
    _runs,
    _zarr,
)

__all__ = ["LARGER_BODIES", "ROUTERS", "STREAMED_UPLOADS"]

ROUTERS = [
    _datasets.router,
    _citation.router,
    _annotations.router,
    _deposits.router,
    _images.router,
    _download.router,
    _runs.router,
    _zarr.router,
    _oai.router,
    _pages.router,  # last: /S-NANO{rest} landing pages (they match accessions only)
]

#: Routes that stream their body to disk and enforce their own limit while doing so
#: (method, path pattern after the prefix): the service-wide body limit does not apply.
STREAMED_UPLOADS: list[tuple[str, str]] = [
    ("POST", r"/deposits"),  # multipart, MAX_UPLOAD_BYTES
    ("PUT", r"/runs/[^/]+/outputs/.+"),  # MAX_OUTPUT
]

#: JSON routes that may carry more than the service-wide limit, and how much.
LARGER_BODIES: list[tuple[str, str, int]] = [
    # a run's notebook (at most MAX_NOTEBOOK bytes) JSON-escaped, plus the record
    ("POST", r"/runs", 2 * _runs.MAX_NOTEBOOK + (1 << 20)),
]
