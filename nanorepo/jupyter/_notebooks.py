"""The shared training notebooks and analysis templates, copied into each user's home.

On every start of a user's Jupyter server, :func:`sync_notebooks` brings
``<server root>/nanorepo-notebooks/`` up to date with the notebooks shipped with nanorepo,
without ever destroying a user's work:

- a notebook the user does not have yet is copied (first start: all of them);
- a notebook the user has not changed since it was copied is replaced by a newer version;
- a notebook the user **edited** is left alone; a newer version goes next to it as
  ``name (updated).ipynb`` and the log says so;
- a notebook the user **deleted** stays deleted (until nanorepo ships a newer version of it,
  which is then offered again).

What was copied is remembered in a hidden manifest (:data:`MANIFEST`): the SHA-256 of the
bytes last written to each path. "Edited" means "differs from what we wrote". Every write is
atomic (temporary file, then rename), so a server killed mid-copy leaves each notebook
either as it was or complete.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import nanorepo
from nanorepo.errors import ConfigurationError
from nanorepo.storage import sha256_hex, write_atomic

__all__ = ["MANIFEST", "SyncReport", "bundled_notebooks", "sync_notebooks"]

log = logging.getLogger("nanorepo.jupyter")

#: Name of the manifest file inside the destination directory.
MANIFEST = ".nanorepo-notebooks.json"

_MANIFEST_FORMAT = "nanorepo-notebooks/1"
_SKIP_PARTS = {".ipynb_checkpoints", "__pycache__"}


def bundled_notebooks(package: Path | None = None) -> Path:
    """The directory of notebooks shipped with nanorepo.

    In an installed wheel they are ``nanorepo/_notebooks`` (hatch ``force-include``); in a
    source checkout (editable install) the repository's own ``notebooks/``. ``package`` is
    the ``nanorepo`` package directory (default: the one imported).
    """
    package = package or Path(nanorepo.__file__).resolve().parent
    for candidate in (package / "_notebooks", package.parent / "notebooks"):
        if (candidate / "training").is_dir():
            return candidate
    raise ConfigurationError(
        f"no notebooks found next to {package}",
        hint="reinstall nanorepo (the wheel ships them as nanorepo/_notebooks)",
    )


@dataclass
class SyncReport:
    """What :func:`sync_notebooks` did, by path relative to the destination."""

    copied: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    side_copies: list[str] = field(default_factory=list)
    kept_edited: list[str] = field(default_factory=list)
    kept_deleted: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.copied or self.updated or self.side_copies)


def _sources(source: Path) -> list[str]:
    out = []
    for p in source.rglob("*"):
        rel = p.relative_to(source)
        if not p.is_file() or any(
            part.startswith(".") or part in _SKIP_PARTS for part in rel.parts
        ):
            continue
        out.append(rel.as_posix())
    return sorted(out)


def _side_name(rel: str) -> str:
    """``training/02.ipynb`` → ``training/02 (updated).ipynb``."""
    p = Path(rel)
    return (p.parent / f"{p.stem} (updated){p.suffix}").as_posix()


def _load_manifest(path: Path) -> dict[str, str]:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        log.warning("ignoring unreadable %s (%s): treating every notebook as new", path, exc)
        return {}
    files = data.get("files") if isinstance(data, dict) else None
    if not isinstance(files, dict):
        return {}
    return {str(k): str(v) for k, v in files.items()}


def _digest(path: Path) -> str | None:
    try:
        return sha256_hex(path.read_bytes())
    except FileNotFoundError:
        return None


def sync_notebooks(dest: Path, source: Path | None = None) -> SyncReport:
    """Bring ``dest`` up to date with ``source`` (default :func:`bundled_notebooks`).

    Parameters
    ----------
    dest:
        The user's copy, e.g. ``~/nanorepo-notebooks``; created if missing.
    source:
        The shipped notebooks.

    Returns
    -------
    SyncReport
        What was copied, updated, offered next to an edited notebook, or left alone.
    """
    source = bundled_notebooks() if source is None else source
    dest.mkdir(parents=True, exist_ok=True)
    manifest_path = dest / MANIFEST
    recorded = _load_manifest(manifest_path)
    written = dict(recorded)
    report = SyncReport()

    def put(rel: str, data: bytes, digest: str) -> None:
        write_atomic(dest / rel, data)
        written[rel] = digest

    for rel in _sources(source):
        data = (source / rel).read_bytes()
        new = sha256_hex(data)
        current = _digest(dest / rel)
        last = recorded.get(rel)
        if current is None:
            if last is None or last != new:
                # never had it, or deleted it and we now ship a newer version
                put(rel, data, new)
                report.copied.append(rel)
            else:
                report.kept_deleted.append(rel)
            continue
        if current == new:
            written[rel] = new
            continue
        if last is not None and current == last:
            put(rel, data, new)  # untouched by the user: take the new version
            report.updated.append(rel)
            continue
        report.kept_edited.append(rel)
        if last == new:
            continue  # their edit of the version we still ship: nothing new to offer
        side = _side_name(rel)
        side_current = _digest(dest / side)
        if side_current == new:
            continue
        side_last = recorded.get(side)
        if side_current is None and side_last == new:
            report.kept_deleted.append(side)  # they deleted the offer of this very version
            continue
        if side_current is not None and side_current != side_last:
            log.warning(
                "nanorepo notebooks: %s and %s both hold your edits; the new version of %s "
                "was not copied (rename one of them to get it at the next start)",
                dest / rel, dest / side, rel,
            )  # fmt: skip
            continue
        put(side, data, new)
        report.side_copies.append(side)
        log.warning(
            "nanorepo notebooks: kept your edited %s; its new version is %s",
            dest / rel,
            dest / side,
        )
    if written != recorded or not manifest_path.exists():
        body = {"format": _MANIFEST_FORMAT, "version": nanorepo.__version__, "files": written}
        write_atomic(manifest_path, (json.dumps(body, indent=1, sort_keys=True) + "\n").encode())
    return report
