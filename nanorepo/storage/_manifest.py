"""Manifests: one SHA-256 per stored object, and one digest over the manifest.

Two levels make versions cheap and audits complete:

* an **image manifest** lists every object (each shard, each ``zarr.json``) of one
  OME-Zarr image; it is written once, when the image is first published;
* a **version manifest** lists the version's own objects (files, ``version.json``,
  ``metadata.json``) and, for each image, the digest of its image manifest.

The version manifest's digest therefore covers every byte of the version (a Merkle
tree), yet a metadata-only revision writes a version manifest of a few kB, however many
shards the dataset has. Manifests are stored as canonical JSON, so the digest of the
file is the digest of the manifest.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nanorepo.errors import IntegrityError
from nanorepo.storage._digest import FileDigest, canonical_json, hash_files, sha256_hex

__all__ = [
    "MANIFEST_FORMAT",
    "ImageEntry",
    "Manifest",
    "build_image_manifest",
    "load_manifest",
    "walk_files",
    "write_manifest",
]

MANIFEST_FORMAT = "nanorepo-manifest/1"


@dataclass(frozen=True)
class ImageEntry:
    """An image as the version manifest records it."""

    manifest: str  # relative path of the image manifest
    sha256: str  # digest of the image manifest
    objects: int
    size: int


@dataclass
class Manifest:
    """Objects (relative path -> digest) under ``root`` plus, for versions, image entries."""

    root: str
    objects: dict[str, FileDigest] = field(default_factory=dict)
    images: dict[str, ImageEntry] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "format": MANIFEST_FORMAT,
            "algorithm": "sha256",
            "root": self.root,
            **self.extra,
            "objects": {
                k: {"sha256": v.sha256, "size": v.size} for k, v in sorted(self.objects.items())
            },
            "images": {
                k: {
                    "manifest": v.manifest,
                    "sha256": v.sha256,
                    "objects": v.objects,
                    "size": v.size,
                }
                for k, v in sorted(self.images.items())
            },
        }

    def to_bytes(self) -> bytes:
        return canonical_json(self.to_json())

    @property
    def digest(self) -> str:
        """SHA-256 over the canonical JSON of the manifest."""
        return sha256_hex(self.to_bytes())

    @property
    def size(self) -> int:
        """Bytes of the objects listed directly plus those of the images."""
        return sum(d.size for d in self.objects.values()) + sum(
            e.size for e in self.images.values()
        )

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Manifest:
        if data.get("format") != MANIFEST_FORMAT or data.get("algorithm") != "sha256":
            raise IntegrityError(f"not a {MANIFEST_FORMAT} SHA-256 manifest")
        known = {"format", "algorithm", "root", "objects", "images"}
        return cls(
            root=data["root"],
            objects={
                k: FileDigest(v["sha256"], int(v["size"])) for k, v in data["objects"].items()
            },
            images={
                k: ImageEntry(v["manifest"], v["sha256"], int(v["objects"]), int(v["size"]))
                for k, v in data.get("images", {}).items()
            },
            extra={k: v for k, v in data.items() if k not in known},
        )


def walk_files(top: Path) -> Iterator[Path]:
    """Every regular file below ``top`` (symlinks are reported as files, never followed)."""
    for dirpath, dirnames, filenames in os.walk(top, followlinks=False):
        dirnames.sort()
        for name in sorted(filenames):
            yield Path(dirpath) / name
        for d in dirnames:
            p = Path(dirpath) / d
            if p.is_symlink():
                yield p


def build_image_manifest(image_dir: Path, relroot: str, workers: int | None = None) -> Manifest:
    """Hash every object of an OME-Zarr directory into a manifest rooted at ``relroot``."""
    files = list(walk_files(image_dir))
    digests = hash_files(files, workers=workers)
    return Manifest(
        root=relroot,
        objects={p.relative_to(image_dir).as_posix(): d for p, d in digests.items()},
    )


def write_manifest(manifest: Manifest, path: Path) -> str:
    """Write ``manifest`` as canonical JSON (fsynced) and return its digest."""
    data = manifest.to_bytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return sha256_hex(data)


def load_manifest(path: Path, expected_digest: str | None = None) -> Manifest:
    """Read a manifest (through the confined open: a link or special file in its place is
    an :class:`IntegrityError`), checking its digest when one is expected."""
    from nanorepo.storage._confined import NotRegularFile, read_beneath

    try:
        data = read_beneath(path.parent, path.name)
    except NotRegularFile as exc:
        raise IntegrityError(
            f"{path.name}: the manifest is {exc.kind}; refused, not read",
            hint="storage was altered: `nanorepo verify` names every such object",
        ) from None
    if expected_digest is not None and sha256_hex(data) != expected_digest:
        raise IntegrityError(
            f"{path}: manifest digest {sha256_hex(data)} differs from the recorded {expected_digest}",
            hint="the manifest was altered; run `nanorepo verify` and restore it from a replica",
        )
    try:
        return Manifest.from_json(json.loads(data))
    except (ValueError, KeyError, TypeError) as exc:
        raise IntegrityError(f"{path}: unreadable manifest ({exc})") from exc
