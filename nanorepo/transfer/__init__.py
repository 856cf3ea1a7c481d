"""Moving whole versions out of the repository: verified, resumable, parallel download
(``nanorepo download``), optionally as a BagIt bag."""

from __future__ import annotations

from nanorepo.transfer._download import DownloadResult, HttpSource, LocalSource, download, plan

__all__ = ["DownloadResult", "HttpSource", "LocalSource", "download", "plan"]
