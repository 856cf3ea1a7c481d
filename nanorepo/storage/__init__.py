"""Repository storage: layout, digests, manifests and atomic publication."""

from __future__ import annotations

from nanorepo.storage._confined import (
    Entry,
    NotRegularFile,
    copy_beneath,
    hash_beneath,
    kind_of,
    open_beneath,
    open_dir_beneath,
    read_beneath,
    scan_beneath,
)
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
    "Entry",
    "FileDigest",
    "ImageEntry",
    "Layout",
    "Manifest",
    "NotRegularFile",
    "build_image_manifest",
    "canonical_json",
    "check_accession",
    "check_name",
    "check_relpath",
    "check_run_id",
    "copy_beneath",
    "fsync_dir",
    "fsync_tree",
    "hash_beneath",
    "hash_file",
    "hash_files",
    "kind_of",
    "load_manifest",
    "open_beneath",
    "open_dir_beneath",
    "parse_ref",
    "publish_dir",
    "read_beneath",
    "scan_beneath",
    "sha256_hex",
    "walk_files",
    "write_atomic",
    "write_manifest",
]
