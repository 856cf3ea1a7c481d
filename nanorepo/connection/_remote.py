"""``show``, ``history`` and ``set`` through the service, for remote connections.

Each returns data shaped exactly like :class:`nanorepo.repository.Repository`'s, so
:class:`~nanorepo.connection.Connection` answers the same either way and the CLI prints the
same table or JSON.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from nanorepo.client import Client
from nanorepo.storage import parse_ref

__all__ = ["history", "set_metadata", "show"]

_SUMMARY_KEYS = (
    "accession", "title", "latest_version", "access", "embargo_until", "owner", "created",
    "license",
)  # fmt: skip


def _url(client: Client, path: str) -> str:
    """A service path (``zarr/...``, ``/datasets/...``) or URL as a full URL."""
    return path if "://" in path else f"{client.url}/{path.lstrip('/')}"


def _summary(d: Mapping[str, Any]) -> dict[str, Any]:
    return {k: d.get(k) for k in _SUMMARY_KEYS}


def history(client: Client, accession: str) -> list[dict[str, Any]]:
    acc, _ = parse_ref(accession)
    keys = ("rev", "key", "old", "new", "who", "when", "reason")
    return [{k: r.get(k) for k in keys} for r in client.history(acc)]


def set_metadata(
    client: Client, accession: str, changes: Mapping[str, Any], *, reason: str
) -> list[dict[str, Any]]:
    """Change mutable metadata; returns the revisions recorded (empty if nothing changed)."""
    acc, _ = parse_ref(accession)
    before = client.dataset(acc)["mutable_rev"]
    after = client.set_metadata(acc, changes, reason)["rev"]
    if after == before:
        return []
    return [r for r in history(client, acc) if r["rev"] == after]


def show(client: Client, ref: str) -> dict[str, Any]:
    """What ``Repository.show`` gives, from the API; storage paths become service URLs."""
    acc, ver = parse_ref(ref)
    d = client.dataset(acc)
    v = client.version(acc, ver)
    n = int(v["version"])
    sealed = client.sealed_metadata(acc, n)
    images = [
        {
            "name": i["name"], "storage_path": _url(client, i["zarr"]), "path": i["zarr"],
            "dims": i["dims"], "shape": i["shape"], "dtype": i["dtype"],
            "pixel_sizes": i["pixel_sizes"], "channels": i["channels"], "levels": i["levels"],
            "key_values": i["key_values"], "technique": i["technique"],
            "size_bytes": i["size_bytes"], "manifest_sha256": i["manifest_sha256"],
        }
        for i in client.images(acc, n)
    ]  # fmt: skip
    files = [
        {
            "name": f["name"], "storage_path": _url(client, f["download"]),
            "path": f["download"], "role": f["role"], "media_type": f["media_type"],
            "size_bytes": f["size_bytes"], "sha256": f["sha256"], "summary": f["summary"],
        }
        for f in client.files(acc, n)
    ]  # fmt: skip
    versions = [
        {k: x[k] for k in ("version", "created", "created_by", "note", "manifest_sha256",
                           "size_bytes")}
        for x in d["versions"]
    ]  # fmt: skip
    return {
        **_summary(d),
        "version": n,
        "ref": f"{acc}@v{n}",
        "created": v["created"],
        "created_by": v["created_by"],
        "manifest_sha256": v["manifest_sha256"],
        "metadata_sha256": v["metadata_sha256"],
        "size_bytes": v["size_bytes"],
        "path": f"{client.url}/datasets/{acc}",
        "versions": versions,
        "mutable": d["mutable"],
        "mutable_rev": d["mutable_rev"],
        "metadata": sealed["metadata"],
        "images": images,
        "files": files,
    }
