"""What a user's server may see of the storage: the public area plus the embargoed
datasets that user may read, decided from the catalog's grants at spawn time.

Storage is laid out so that this is possible (:mod:`nanorepo.storage._layout`): one
``public/`` area, and one directory per embargoed dataset under ``embargoed/``. A view
has the same shape as the storage root, so inside the server ``Layout(view)`` and
``nanorepo.open`` work unchanged, without the catalog (the storage is self-describing).

Two renderings of the same decision:

- **local** (:func:`build_local_view`): a per-user directory of symbolic links. All local
  users' servers run as one operating-system user, so the links only keep honest users
  from stumbling on embargoed data: they are **not a security boundary**. The service is
  (it checks every request), and so are the Kubernetes mounts.
- **Kubernetes** (:func:`kube_storage`): KubeSpawner ``volumes`` / ``volume_mounts``,
  all ``readOnly``: the public area mounted whole and each readable embargoed dataset
  by ``subPath``, so the pod's filesystem holds nothing else.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path, PurePosixPath
from typing import Any

from sqlmodel import Session, col, select

from nanorepo.catalog.models import Dataset
from nanorepo.errors import InvalidInput
from nanorepo.policy import Principal, principal_for_user, visible_clause
from nanorepo.storage import check_accession

__all__ = [
    "build_local_view",
    "hub_principal",
    "kube_storage",
    "readable_embargoed",
    "view_dir_name",
]

_SAFE = re.compile(r"[a-z0-9_-]")


def hub_principal(
    s: Session, user: str, *, admin: bool = False, groups: Iterable[str] = ()
) -> Principal:
    """The principal the service would see for hub user ``user``: the catalog role (a hub
    admin is an admin), the catalog's groups united with the hub's ``groups``.

    The same rule as :meth:`nanorepo.service._hub.JupyterHubIdentity._principal`, so a
    server's view never shows more than the service would answer.
    """
    base = principal_for_user(s, user, admin=admin)
    return Principal(user, base.role, base.groups | frozenset(groups))


def readable_embargoed(s: Session, p: Principal) -> list[str]:
    """Accessions of the embargoed datasets ``p`` may read, sorted: owned, granted to
    ``p`` by name or through a group, or every one for curators and admins (taken-down
    datasets only for them, as :func:`nanorepo.policy.visible` says)."""
    q = select(Dataset.accession).where(col(Dataset.access) == "embargoed", visible_clause(p))
    if not p.privileged:
        q = q.where(col(Dataset.state) != "takedown")
    return sorted(s.exec(q).all())


def view_dir_name(user: str) -> str:
    """A file name for ``user`` that is one path component, unique per user name and
    readable: lower-case letters, digits, ``_`` and ``-`` stay, anything else becomes
    ``.xx`` (its UTF-8 bytes in hex)."""
    if not isinstance(user, str) or not user:
        raise InvalidInput(f"{user!r} is not a user name", hint="hub user names are non-empty")
    return "".join(
        c if _SAFE.fullmatch(c) else "".join(f".{b:02x}" for b in c.encode()) for c in user
    )


def _link(path: Path, target: Path) -> None:
    """Make ``path`` a symbolic link to ``target``, replacing an old link atomically."""
    if path.is_symlink() and Path(os.readlink(path)) == target:
        return
    if path.exists() and not path.is_symlink():
        raise InvalidInput(
            f"{path} is in the way of the storage view (a real file or directory)",
            hint="views hold only links made by the hub: move it away",
        )
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    tmp.symlink_to(target, target_is_directory=True)
    os.replace(tmp, path)


def build_local_view(view: Path, storage: Path, accessions: Iterable[str]) -> Path:
    """Make ``view`` a directory shaped like the storage root holding ``public`` (a link to
    the storage's public area) and ``embargoed/<ACC>`` links for ``accessions`` only.

    Idempotent: run at every server start, it adds links for new grants and removes the
    links of withdrawn ones (a running server keeps what it had until it restarts).
    Returns ``view``.
    """
    storage = Path(storage).resolve()
    want = {check_accession(a) for a in accessions}
    view.mkdir(parents=True, exist_ok=True)
    _link(view / "public", storage / "public")
    embargoed = view / "embargoed"
    if embargoed.is_symlink():  # never follow a link out of the view
        embargoed.unlink()
    embargoed.mkdir(exist_ok=True)
    for entry in embargoed.iterdir():
        if entry.name not in want:
            if not entry.is_symlink():
                raise InvalidInput(
                    f"{entry} is in the way of the storage view (not a link)",
                    hint="views hold only links made by the hub: move it away",
                )
            entry.unlink()
    for acc in sorted(want):
        _link(embargoed / acc, storage / "embargoed" / acc)
    return view


def _join(*parts: str) -> str:
    return str(PurePosixPath(*[p.strip("/") for p in parts if p.strip("/")]))


def kube_storage(
    accessions: Iterable[str],
    *,
    volume: Mapping[str, Any],
    mount_path: str = "/srv/nanorepo/storage",
    sub_path: str = "",
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """KubeSpawner ``volumes`` and ``volume_mounts`` for a user who may read ``accessions``.

    Parameters
    ----------
    accessions:
        The embargoed datasets the user may read (:func:`readable_embargoed`).
    volume:
        The Kubernetes volume holding the repository storage, e.g.
        ``{"name": "nanorepo-storage", "persistentVolumeClaim": {"claimName": "nanorepo-storage",
        "readOnly": True}}``.
    mount_path:
        Where the view appears in the pod (the server's ``NANOREPO_STORAGE``).
    sub_path:
        Where the storage root lies inside the volume ("" for its root).

    Every mount is ``readOnly``. The public area is mounted whole; each embargoed dataset
    separately by ``subPath``, so nothing else of ``embargoed/`` exists in the pod.
    """
    name = volume.get("name")
    if not isinstance(name, str) or not name:
        raise InvalidInput(
            "the storage volume needs a name",
            hint='e.g. {"name": "nanorepo-storage", "persistentVolumeClaim": {...}}',
        )
    if not mount_path.startswith("/"):
        raise InvalidInput(f"the mount path {mount_path!r} must be absolute")
    mounts: list[dict[str, Any]] = [
        {
            "name": name,
            "mountPath": "/" + _join(mount_path, "public"),
            "subPath": _join(sub_path, "public"),
            "readOnly": True,
        }
    ]
    for acc in sorted({check_accession(a) for a in accessions}):
        mounts.append(
            {
                "name": name,
                "mountPath": "/" + _join(mount_path, "embargoed", acc),
                "subPath": _join(sub_path, "embargoed", acc),
                "readOnly": True,
            }
        )
    return [dict(volume)], mounts
