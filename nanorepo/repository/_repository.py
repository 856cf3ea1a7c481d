"""The repository as one object: what the CLI and the service both call.

Keeping every operation here (deposit, revise, set, history, verify, search, show)
means the CLI and the REST service cannot drift apart: each is a thin translation of
arguments and results.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from datetime import date
from functools import cached_property
from pathlib import Path
from typing import Any

from nanorepo.access import Dataset, open_version
from nanorepo.catalog import Catalog
from nanorepo.catalog._catalog import row_id
from nanorepo.catalog.models import Dataset as DatasetRow
from nanorepo.deposition import DepositResult, deposit, recover, revise
from nanorepo.errors import InvalidInput, RepositoryNotFound
from nanorepo.preservation import VerifyReport, verify_version
from nanorepo.provenance import Runs
from nanorepo.search import index_dataset, search
from nanorepo.settings import Settings
from nanorepo.storage import Layout, fsync_dir, parse_ref

__all__ = ["Repository"]

Progress = Callable[[str], None]


class Repository:
    """A nanorepo repository: catalog + storage, as configured by :class:`Settings`.

    Parameters
    ----------
    settings:
        Where the catalog and storage are (default: the environment, ``NANOREPO_HOME``).
    create:
        Create the catalog if there is none. Only ``nanorepo init``, ``demo`` and ``up``
        (and test fixtures) pass it: anything else that finds no catalog stops with
        :class:`~nanorepo.errors.RepositoryNotFound` instead of quietly starting an empty
        repository (a hub user's server has no catalog; it reaches the service, see
        :mod:`nanorepo.connection`).
    """

    def __init__(self, settings: Settings | None = None, *, create: bool = False) -> None:
        self.settings = settings or Settings.from_env()
        self.layout = Layout(self.settings.storage)
        self.create = create
        self._recovered = False

    @cached_property
    def catalog(self) -> Catalog:
        if not self.create and not catalog_exists(self.settings.database_url):
            raise no_repository(self.settings)
        self.settings.home.mkdir(parents=True, exist_ok=True)
        cat = Catalog(self.settings.database_url)
        return cat

    def _ready(self) -> Catalog:
        """The catalog, after finishing any publication or access move a crash interrupted."""
        cat = self.catalog
        if not self._recovered:
            self._recovered = True
            recover(self.settings, self.layout, cat, index=index_dataset)
            self._reconcile_areas(cat)
        return cat

    def acting_as(self, user: str, **changes: Any) -> Repository:
        """This repository with ``user`` as the acting identity (the owner of what it
        deposits) and optionally other settings changed, sharing the open catalog.

        The service makes one per request that writes as its caller.
        """
        other = Repository(self.settings.with_(user=user, **changes))
        other.__dict__["catalog"] = self._ready()  # the cached_property's slot
        other._recovered = True
        return other

    @cached_property
    def runs(self) -> Runs:
        """The records of notebook runs and their outputs (:mod:`nanorepo.provenance`)."""
        return Runs(self._ready(), self.layout)

    def ready(self) -> None:
        """Open the catalog (migrating it) and finish interrupted work; the service calls
        this once at start so the first request does not pay for it."""
        self._ready()

    def close(self) -> None:
        if "catalog" in self.__dict__:
            self.catalog.close()

    def __enter__(self) -> Repository:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- writing -----------------------------------------------------------------------

    def deposit(
        self,
        paths: Sequence[Path],
        *,
        title: str,
        metadata: Path | None = None,
        embargo_until: date | None = None,
        supporting: Sequence[Path] = (),
        pattern: str | None = None,
        progress: Progress | None = None,
        derived_from: str | None = None,
    ) -> DepositResult:
        """Deposit a new dataset; see :func:`nanorepo.deposition.deposit`.

        ``derived_from`` names the run whose outputs these files are: each file must be one
        of its outputs (by SHA-256, checked before anything is written), and the dataset's
        provenance then points to the run.
        """
        cat = self._ready()
        run_id = None
        if derived_from is not None:
            run_id = self.runs.check_outputs(derived_from, [*paths, *supporting])
        with cat.session() as s:
            cat.ensure_user(s, self.settings.user)
            s.commit()
        res = deposit(
            self.settings, self.layout, cat, paths, title=title, metadata=metadata,
            embargo_until=embargo_until, supporting=supporting, pattern=pattern,
            progress=progress, index=index_dataset,
        )  # fmt: skip
        if run_id is not None:
            self.runs.add_derived(run_id, res.accession)
        return res

    def revise(
        self,
        accession: str,
        *,
        metadata: Path | None = None,
        add: Sequence[Path] = (),
        replace: Mapping[str, Path] | None = None,
        supporting: Sequence[Path] = (),
        note: str = "",
        progress: Progress | None = None,
    ) -> DepositResult:
        """Publish the next version of ``accession``; see :func:`nanorepo.deposition.revise`."""
        acc, ver = parse_ref(accession)
        if ver is not None:
            raise InvalidInput(
                f"revise takes a bare accession, not {accession!r}",
                hint=f"revisions always follow the latest version: `nanorepo revise {acc}`",
            )
        return revise(
            self.settings, self.layout, self._ready(), acc, metadata=metadata, add=add,
            replace=replace, supporting=supporting, note=note, progress=progress,
            index=index_dataset,
        )  # fmt: skip

    def set_metadata(
        self,
        accession: str,
        changes: Mapping[str, Any],
        *,
        reason: str,
        expected_rev: int | None = None,
        who: str | None = None,
    ) -> list[dict[str, Any]]:
        """Change mutable metadata; returns the revisions recorded (empty if nothing changed)."""
        acc, ver = parse_ref(accession)
        if ver is not None:
            raise InvalidInput(
                f"metadata belongs to the dataset, not one version: use {acc}, not {accession!r}"
            )
        cat = self._ready()
        with cat.session() as s:
            revs = cat.set_mutable(
                s, acc, dict(changes), who=who or self.settings.user, reason=reason,
                expected_rev=expected_rev,
            )  # fmt: skip
            if revs:
                index_dataset(s, revs[0].dataset_id)
            s.commit()
            return [_revision_json(r) for r in revs]

    # -- access: embargo, release, grants ------------------------------------------------

    def embargo(
        self, accession: str, until: date | None, *, reason: str, who: str | None = None
    ) -> None:
        """Put a dataset under embargo until ``until`` (``None``: until released by hand).

        The catalog changes first, then the dataset's directory moves from ``public/`` to
        ``embargoed/``; a crash in between is finished by :meth:`ready` on next start.
        """
        acc = self._bare(accession)
        cat = self._ready()
        with cat.session() as s:
            ds = cat.dataset(s, acc)
            old = {"access": ds.access, "embargo_until": _iso(ds.embargo_until)}
            cat.set_access(s, acc, "embargoed", until)
            new = {"access": "embargoed", "embargo_until": _iso(until)}
            cat.record_change(s, acc, "access", old, new, who=who or self.settings.user,
                              reason=reason)  # fmt: skip
            index_dataset(s, row_id(ds))
            s.commit()
        self._move_area(acc, "embargoed")

    def release(self, accession: str, *, reason: str, who: str | None = None) -> bool:
        """Make an embargoed dataset public; returns False if it was public already.

        The directory moves to ``public/`` before the catalog commits: a crash in between
        exposes only what was being released anyway, and :meth:`ready` puts it right.
        """
        acc = self._bare(accession)
        cat = self._ready()
        with cat.session() as s:
            ds = cat.dataset(s, acc)
            if ds.access == "public":
                return False
            old = {"access": ds.access, "embargo_until": _iso(ds.embargo_until)}
            cat.set_access(s, acc, "public", None)
            cat.record_change(s, acc, "access", old, {"access": "public", "embargo_until": None},
                              who=who or self.settings.user, reason=reason)  # fmt: skip
            index_dataset(s, row_id(ds))
            self._move_area(acc, "public")
            try:
                s.commit()
            except BaseException:
                self._move_area(acc, "embargoed")
                raise
        return True

    def release_due(self, today: date) -> list[str]:
        """Release every dataset whose embargo date has come; returns their accessions."""
        cat = self._ready()
        with cat.session() as s:
            due = [
                ds.accession
                for ds in cat.embargoed(s)
                if ds.embargo_until is not None and ds.embargo_until <= today
            ]
        for acc in due:
            self.release(acc, reason=f"embargo ended ({today.isoformat()})", who="nanorepo")
        return due

    def grant(
        self, accession: str, kind: str, principal: str, *, who: str | None = None
    ) -> dict[str, Any]:
        """Give a user or group access to an (embargoed) dataset; recorded as a revision."""
        acc = self._bare(accession)
        cat = self._ready()
        by = who or self.settings.user
        with cat.session() as s:
            existing = {
                (g.principal_kind, g.principal) for g in cat.grants(s, row_id(cat.dataset(s, acc)))
            }
            g = cat.grant(s, acc, kind, principal, by=by)
            if (kind, principal) not in existing:
                cat.record_change(s, acc, "grant", None, {"kind": kind, "principal": principal},
                                  who=by, reason=f"granted to {kind} {principal}")  # fmt: skip
            s.commit()
            return {"kind": g.principal_kind, "principal": g.principal, "granted_by": g.granted_by,
                    "created": g.created.isoformat()}  # fmt: skip

    def revoke(self, accession: str, kind: str, principal: str, *, who: str | None = None) -> bool:
        """Withdraw a grant; returns whether there was one. Recorded as a revision."""
        acc = self._bare(accession)
        cat = self._ready()
        with cat.session() as s:
            gone = cat.revoke(s, acc, kind, principal)
            if gone:
                cat.record_change(s, acc, "grant", {"kind": kind, "principal": principal}, None,
                                  who=who or self.settings.user,
                                  reason=f"revoked from {kind} {principal}")  # fmt: skip
            s.commit()
            return gone

    def _bare(self, accession: str) -> str:
        acc, ver = parse_ref(accession)
        if ver is not None:
            raise InvalidInput(f"access belongs to the dataset: use {acc}, not {accession!r}")
        return acc

    def _move_area(self, accession: str, to: str) -> None:
        """Move a dataset's directory into the ``to`` area (atomic rename; idempotent)."""
        other = "public" if to == "embargoed" else "embargoed"
        src = self.layout.dataset_dir(accession, other)
        dst = self.layout.dataset_dir(accession, to)
        if src.is_dir() and not dst.exists():
            dst.parent.mkdir(parents=True, exist_ok=True)
            src.rename(dst)
            fsync_dir(src.parent)
            fsync_dir(dst.parent)

    def _reconcile_areas(self, cat: Catalog) -> None:
        """Put every dataset directory in the area its catalog row says (crash repair)."""
        with cat.session() as s:
            wrong = [
                (ds.accession, ds.access)
                for ds in cat.all_datasets(s)
                if not self.layout.dataset_dir(ds.accession, ds.access).exists()
            ]
        for acc, access in wrong:
            self._move_area(acc, access)

    # -- reading -----------------------------------------------------------------------

    def history(self, accession: str) -> list[dict[str, Any]]:
        acc, _ = parse_ref(accession)
        cat = self._ready()
        with cat.session() as s:
            return [_revision_json(r) for r in cat.history(s, acc)]

    def open(self, ref: str) -> Dataset:
        acc, ver = parse_ref(ref)
        return open_version(self.layout, acc, ver, catalog=self._ready())

    def list_datasets(
        self, *, offset: int = 0, limit: int = 100
    ) -> tuple[list[dict[str, Any]], int]:
        cat = self._ready()
        with cat.session() as s:
            rows, total = cat.list_datasets(s, offset=offset, limit=limit)
            return [_summary_json(r) for r in rows], total

    def search(
        self, query: str, *, offset: int = 0, limit: int = 50
    ) -> tuple[list[dict[str, Any]], int]:
        cat = self._ready()
        with cat.session() as s:
            rows, total = search(s, query, offset=offset, limit=limit)
            return [_summary_json(r) for r in rows], total

    def show(self, ref: str) -> dict[str, Any]:
        """Everything about a dataset version as JSON-able data (what ``show --json`` prints)."""
        acc, ver = parse_ref(ref)
        cat = self._ready()
        with cat.session() as s:
            ds = cat.dataset(s, acc)
            v = cat.version(s, acc, ver)
            versions = [
                {"version": x.number, "created": x.created.isoformat(), "created_by": x.created_by,
                 "note": x.note, "manifest_sha256": x.manifest_digest, "size_bytes": x.size_bytes}
                for x in cat.versions(s, ds.id)  # type: ignore[arg-type]
            ]  # fmt: skip
            images = cat.images(s, v.id)  # type: ignore[arg-type]
            files = cat.files(s, v.id)  # type: ignore[arg-type]
            dataset_dir = self.layout.dataset_dir(acc, ds.access)
            return {
                **_summary_json(ds),
                "version": v.number,
                "ref": f"{acc}@v{v.number}",
                "created": v.created.isoformat(),
                "created_by": v.created_by,
                "manifest_sha256": v.manifest_digest,
                "metadata_sha256": v.metadata_digest,
                "size_bytes": v.size_bytes,
                "path": str(dataset_dir),
                "versions": versions,
                "mutable": ds.mutable,
                "mutable_rev": ds.mutable_rev,
                "metadata": json.loads(v.metadata_json),
                "images": [
                    {
                        "name": i.name, "storage_path": str(dataset_dir / i.path),
                        "path": i.path, "dims": i.dims, "shape": i.shape, "dtype": i.dtype,
                        "pixel_sizes": i.pixel_sizes, "channels": i.channels, "levels": i.levels,
                        "key_values": i.key_values, "technique": i.technique,
                        "size_bytes": i.size_bytes, "manifest_sha256": i.manifest_digest,
                    }
                    for i in images
                ],
                "files": [
                    {
                        "name": f.name, "storage_path": str(dataset_dir / f.path), "path": f.path,
                        "role": f.role, "media_type": f.media_type, "size_bytes": f.size_bytes,
                        "sha256": f.sha256, "summary": f.summary,
                    }
                    for f in files
                ],
            }  # fmt: skip

    # -- preservation ------------------------------------------------------------------

    def verify(
        self,
        ref: str,
        *,
        all_versions: bool = False,
        workers: int | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> list[VerifyReport]:
        """Re-hash every stored object of a version (or all versions) and record the result.

        Besides the objects themselves this compares the catalog's digests with storage and
        scans the dataset's whole tree (links, special files, objects no manifest lists, a
        copy in the other storage area); those findings are reported with the newest
        version checked.
        """
        from nanorepo.preservation import CatalogVersion, check_tree

        acc, ver = parse_ref(ref)
        cat = self._ready()
        with cat.session() as s:
            ds = cat.dataset(s, acc)
            every = list(cat.versions(s, ds.id))  # type: ignore[arg-type]
            targets = every if all_versions else [cat.version(s, acc, ver)]
            expect = {
                v.number: CatalogVersion(
                    v.number,
                    v.manifest_digest,
                    {i.path: i.manifest_digest for i in cat.images(s, v.id)},  # type: ignore[arg-type]
                    {f.path: (f.sha256, f.size_bytes) for f in cat.files(s, v.id)},  # type: ignore[arg-type]
                    v.metadata_digest,
                )
                for v in targets
            }
            access = ds.access
            all_digests = [(v.number, v.manifest_digest) for v in every]
        dataset_dir = self.layout.dataset_dir(acc, access)
        other = self.layout.dataset_dir(acc, "public" if access == "embargoed" else "embargoed")
        reports = []
        for v in targets:
            rep = verify_version(
                dataset_dir, acc, v.number, v.manifest_digest, catalog=expect[v.number],
                workers=workers, progress=progress,
            )  # fmt: skip
            if v is targets[-1]:
                rep.problems += check_tree(dataset_dir, all_digests, other_area_dir=other)
            with cat.session() as s:
                cat.record_fixity(
                    s, v.id, who=self.settings.user, ok=rep.ok,  # type: ignore[arg-type]
                    objects_checked=rep.objects_checked, bytes_checked=rep.bytes_checked,
                    problems=[p.__dict__ for p in rep.problems],
                )  # fmt: skip
                s.commit()
            reports.append(rep)
        return reports

    def verify_all(
        self, *, workers: int | None = None, progress: Callable[[int], None] | None = None
    ) -> list[VerifyReport]:
        """:meth:`verify` every version of every dataset (public and embargoed)."""
        cat = self._ready()
        with cat.session() as s:
            accessions = [d.accession for d in cat.all_datasets(s)]
        reports: list[VerifyReport] = []
        for acc in sorted(accessions, key=lambda a: int(a.removeprefix("S-NANO"))):
            reports += self.verify(acc, all_versions=True, workers=workers, progress=progress)
        return reports


def catalog_exists(url: str) -> bool:
    """Whether the catalog at ``url`` exists (an SQLite file, or a database with nanorepo's
    schema), checked without creating anything."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1].split("?", 1)[0]
        return bool(path) and path != ":memory:" and Path(path).is_file()
    from sqlalchemy import create_engine, inspect

    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return inspect(conn).has_table("alembic_version")
    except Exception:  # unreachable or no such database: there is no catalog to use
        return False
    finally:
        engine.dispose()


def no_repository(settings: Settings) -> RepositoryNotFound:
    """The error for a home without a catalog: what was looked for and how to point at one."""
    where = settings.home if settings.database_url.startswith("sqlite") else settings.database_url
    return RepositoryNotFound(
        f"there is no nanorepo repository at {where} (no catalog: "
        f"{settings.database_url.split('://', 1)[0]})",
        hint="create one with `nanorepo init` (or `nanorepo demo`, `nanorepo up`), point "
        "NANOREPO_HOME (or --home) at an existing one, or reach a repository's service "
        "with NANOREPO_URL (on a hub it is set for you): nanorepo.open, nanorepo.search, "
        "nanorepo.Client and the nanorepo command then go through it",
    )


def _iso(d: date | None) -> str | None:
    return d.isoformat() if d else None


def _summary_json(ds: DatasetRow) -> dict[str, Any]:
    return {
        "accession": ds.accession,
        "title": ds.title,
        "latest_version": ds.latest_version,
        "access": ds.access,
        "embargo_until": ds.embargo_until.isoformat() if ds.embargo_until else None,
        "owner": ds.owner,
        "created": ds.created.isoformat(),
        "license": (ds.mutable or {}).get("license"),
    }


def _revision_json(r: Any) -> dict[str, Any]:
    return {
        "rev": r.rev,
        "key": r.key,
        "old": r.old,
        "new": r.new,
        "who": r.who,
        "when": r.when.isoformat(),
        "reason": r.reason,
    }
