"""Repository storage: layout, digests, manifests and atomic publication."""

from __future__ import annotations

from nanorepo.storage._digest import (
    FileDigest,
    canonical_json,
    hash_file,
    hash_files,
    sha256_hex,
)
from nanorepo.storage._layout import (
    ACCESSION_RE,
    Layout,
    check_accession,
    check_name,
    check_relpath,
    check_run_id,
    parse_ref,
)
from nanorepo.storage._manifest import (
    MANIFEST_FORMAT,
    ImageEntry,
    Manifest,
    build_image_manifest,
    load_manifest,
    walk_files,
    write_manifest,
)
from nanorepo.storage._publish import fsync_dir, fsync_tree, publish_dir, write_atomic

__all__ = [
    "ACCESSION_RE",
    "MANIFEST_FORMAT",
    "FileDigest",
    "ImageEntry",
    "Layout",
    "Manifest",
    "build_image_manifest",
    "canonical_json",
    "check_accession",
    "check_name",
    "check_relpath",
    "check_run_id",
    "fsync_dir",
    "fsync_tree",
    "hash_file",
    "hash_files",
    "load_manifest",
    "parse_ref",
    "publish_dir",
    "sha256_hex",
    "walk_files",
    "write_atomic",
    "write_manifest",
]
