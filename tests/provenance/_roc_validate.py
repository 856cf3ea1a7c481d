"""Run roc-validator on one crate, offline; print its issues as JSON (run by test_crate.py).

roc-validator pins ``rich < 14`` while napari's plugin engine needs ``rich >= 14``, so the
validator lives in its own virtualenv (:func:`tests.provenance.test_crate.validator_python`)
and this script runs there. It reads the RO-Crate 1.1 JSON-LD context through the
validator's HTTP cache (requests-cache), filled from the verbatim copy in ``data/`` through
an adapter that serves that file: the validator's documented offline mode ("run online once,
or warm the cache"); the network is never used.

Usage: python _roc_validate.py CRATE PROFILE SEVERITY CONTEXT_FILE CACHE_DIR
"""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path
from typing import Any

import requests
import requests_cache
import urllib3
from rocrate_validator import services
from rocrate_validator.models import ValidationSettings

CONTEXT_URL = "https://w3id.org/ro/crate/1.1/context"


def main() -> None:
    crate, profile, severity, context_file, cache_dir = sys.argv[1:6]
    context = Path(context_file).read_bytes()

    class LocalContext(requests.adapters.BaseAdapter):
        """Answers the context URL from the local copy."""

        def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
            assert request.url == CONTEXT_URL, request.url
            raw = urllib3.HTTPResponse(
                body=io.BytesIO(context), headers={"Content-Type": "application/ld+json"},
                status=200, preload_content=False, request_url=request.url,
            )  # fmt: skip
            return requests.adapters.HTTPAdapter().build_response(request, raw)

        def close(self) -> None:
            pass

    cache = Path(cache_dir) / "http_cache"
    session = requests_cache.CachedSession(cache_name=str(cache), backend="sqlite")
    session.mount("https://w3id.org/", LocalContext())
    # the validator asks with these Accept headers (file descriptor check, JSON-LD loader)
    for accept in (None, "application/ld+json, application/json",
                   "application/ld+json, application/json, */*;q=0.1"):  # fmt: skip
        r = session.get(CONTEXT_URL, headers={"Accept": accept} if accept else {})
        assert r.json()["@id"] == CONTEXT_URL
    session.close()
    settings = ValidationSettings(
        rocrate_uri=crate, profile_identifier=profile, requirement_severity=severity,
        offline=True, cache_path=cache,
    )  # fmt: skip
    result = services.validate(settings)
    issues = [f"{i.severity.name} {i.check.name}: {i.message}" for i in result.get_issues()]
    assert result.passed() == (not issues)
    json.dump(issues, sys.stdout)


if __name__ == "__main__":
    main()
