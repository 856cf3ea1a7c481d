"""Where things live in the repository storage, and the only place paths are built.

::

    storage/
      public/S-NANO1/                 one directory per dataset; public ones here ...
      embargoed/S-NANO2/              ... embargoed ones here, so a user's server can mount
                                      public/ plus just the embargoed datasets it may read
        images/v1/cell1.ome.zarr      OME-Zarr, written by the version that introduced it
        images/v1/cell1.manifest.json per-object SHA-256 of that image (written once)
        files/v1/locs.parquet         other files; originals/v1/... the files as deposited
        versions/v1/version.json      what version 1 holds (images, files, pointers)
        versions/v1/metadata.json     sealed immutable metadata (canonical JSON)
        versions/v1/manifest.json     digests of everything the version holds
      runs/ab/ab12...ef/              outputs of a run (its executed notebook and every file it
                                      wrote), published whole when the run ends
      runs/notebooks/ab/ab12...ef.ipynb  the notebooks runs executed, one copy per content digest
      .incoming/                      same-filesystem landing area for atomic publication

Later versions reference unchanged images and files of earlier ones by path, so a
metadata-only revision writes only ``versions/vN/``. Names that reach a path are checked
against strict patterns here; nothing else in nanorepo joins user input onto a path.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from nanorepo.errors import InvalidInput, PathNotAllowed

__all__ = [
    "ACCESSION_RE",
    "Layout",
    "check_accession",
    "check_name",
    "check_relpath",
    "check_run_id",
    "parse_ref",
]

ACCESSION_RE = re.compile(r"S-NANO[1-9][0-9]{0,11}")
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
RUN_ID_RE = re.compile(r"[0-9a-f]{32}")
SHA256_RE = re.compile(r"[0-9a-f]{64}")
_REF_RE = re.compile(r"(?P<acc>[^@/]+)(?:@v?(?P<ver>[0-9]+))?")

AREAS = ("public", "embargoed")


def check_accession(accession: str) -> str:
    """Return ``accession`` if it is well formed, else raise :class:`InvalidInput`."""
    if not isinstance(accession, str) or not ACCESSION_RE.fullmatch(accession):
        raise InvalidInput(
            f"{accession!r} is not an accession",
            hint="accessions look like S-NANO12; add @vN for a version (S-NANO12@v2)",
        )
    return accession


def parse_ref(ref: str) -> tuple[str, int | None]:
    """Split ``"S-NANO1@v2"`` into ``("S-NANO1", 2)``; bare ``"S-NANO1"`` gives ``None``."""
    m = _REF_RE.fullmatch(ref.strip()) if isinstance(ref, str) else None
    if not m:
        raise InvalidInput(
            f"{ref!r} is not a dataset reference",
            hint="write ACCESSION or ACCESSION@vN, e.g. S-NANO1 or S-NANO1@v2",
        )
    acc = check_accession(m["acc"])
    ver = int(m["ver"]) if m["ver"] else None
    if ver == 0:
        raise InvalidInput(f"{ref!r}: versions start at 1", hint="use @v1 for the first version")
    return acc, ver


def check_name(name: str, what: str = "image name") -> str:
    """Return ``name`` if it is safe as one path component of the repository."""
    if not isinstance(name, str) or not NAME_RE.fullmatch(name) or name in {".", ".."}:
        raise InvalidInput(
            f"{name!r} is not a valid {what}",
            hint="use 1-128 characters from A-Z a-z 0-9 . _ - , starting with a letter or digit",
        )
    return name


def check_run_id(run_id: str) -> str:
    """Return ``run_id`` if it is a run (or batch) id: 32 lower-case hex digits."""
    if not isinstance(run_id, str) or not RUN_ID_RE.fullmatch(run_id):
        raise InvalidInput(
            f"{run_id!r} is not a run id",
            hint="run ids are 32 hex digits, as `nanorepo runs` lists them",
        )
    return run_id


def check_relpath(relpath: str) -> PurePosixPath:
    """Validate a repository-relative POSIX path (no absolute, no ``..``, no backslash)."""
    p = PurePosixPath(relpath)
    if (
        not relpath
        or p.is_absolute()
        or "\\" in relpath
        or "\x00" in relpath
        or any(part in {"", ".", ".."} for part in relpath.split("/"))
    ):
        raise PathNotAllowed(f"{relpath!r} is not a path inside the repository")
    return p


@dataclass(frozen=True)
class Layout:
    """Paths of the repository storage rooted at ``root``."""

    root: Path

    @property
    def incoming(self) -> Path:
        return self.root / ".incoming"

    def area(self, access: str) -> Path:
        """``public/`` or ``embargoed/``: the unit a user's server mounts."""
        if access not in AREAS:
            raise ValueError(f"unknown access area {access!r}")
        return self.root / access

    def dataset_dir(self, accession: str, access: str) -> Path:
        return self.area(access) / check_accession(accession)

    @staticmethod
    def image_relpath(version: int, name: str) -> str:
        return f"images/v{version}/{check_name(name)}.ome.zarr"

    @staticmethod
    def image_manifest_relpath(image_relpath: str) -> str:
        return image_relpath.removesuffix(".ome.zarr") + ".manifest.json"

    @staticmethod
    def file_relpath(version: int, name: str, *, original: bool = False) -> str:
        top = "originals" if original else "files"
        return f"{top}/v{version}/{check_name(name, 'file name')}"

    @staticmethod
    def original_relpath(version: int, parts: list[str]) -> str:
        """Where a file as deposited is kept; ``parts`` are checked path components."""
        return f"originals/v{version}/" + "/".join(check_name(p, "file name") for p in parts)

    def run_dir(self, run_id: str) -> Path:
        """Where a finished run's outputs are stored."""
        run_id = check_run_id(run_id)
        return self.root / "runs" / run_id[:2] / run_id

    def run_notebook(self, sha256: str) -> Path:
        """The stored copy of a notebook runs executed, by the SHA-256 of its bytes."""
        if not isinstance(sha256, str) or not SHA256_RE.fullmatch(sha256):
            raise InvalidInput(f"{sha256!r} is not a SHA-256 digest")
        return self.root / "runs" / "notebooks" / sha256[:2] / f"{sha256}.ipynb"

    @staticmethod
    def version_relpath(version: int) -> str:
        return f"versions/v{version}"

    @staticmethod
    def resolve(dataset_dir: Path, relpath: str) -> Path:
        """Join a stored relative path onto a dataset directory, refusing any escape."""
        p = (dataset_dir / check_relpath(relpath)).resolve()
        base = dataset_dir.resolve()
        if p != base and base not in p.parents:
            raise PathNotAllowed(f"{relpath!r} escapes the dataset directory")
        return p
