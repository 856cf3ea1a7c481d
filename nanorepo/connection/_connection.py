"""The front door: how this process reaches the repository, decided once.

There are two ways in:

- **local**: the repository's catalog and storage are on this machine (the operator's
  shell, the service itself, a single-user laptop after ``nanorepo init``);
- **remote**: through the repository's service over HTTP, with the user's token (a hub
  user's server, a laptop next to a hub). A hub user's server also mounts the storage
  read-only: datasets are then described by the service and read from the mount.

:func:`connect` decides, in this order: explicit arguments (``url=``, ``home=``,
``local=True``, ``create=True``); settings (``NANOREPO_URL``, then ``NANOREPO_HOME`` or
``NANOREPO_DATABASE_URL``); the hub's environment (a user server's ``JUPYTERHUB_API_URL``
and ``JUPYTERHUB_API_TOKEN``: the service at ``{hub}/services/nanorepo``); a repository
already in the default home ``~/.nanorepo``. Nothing here creates a catalog unless asked
(``create=True``: ``nanorepo init``, ``demo``, ``up``); finding no repository is a
:class:`~nanorepo.errors.RepositoryNotFound` saying what was looked for and how to point at one.

Features do not choose: they are handed what they need (a run store, a repository, a
client) by the :class:`Connection`. ``nanorepo.open``, ``nanorepo.search``, ``nanorepo.run``,
the CLI and the notebooks all come in through here.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import date
from functools import cached_property
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit, urlunsplit

from nanorepo.access import Dataset, journal_for, open_from_storage, open_remote, pinned
from nanorepo.errors import (
    ConfigurationError,
    Conflict,
    InvalidInput,
    NanorepoError,
    RepositoryNotFound,
)
from nanorepo.settings import Settings
from nanorepo.storage import Layout, parse_ref

if TYPE_CHECKING:
    from nanorepo.client import Client
    from nanorepo.provenance import BatchRecord, Reproducibility, RunRecord, RunStore
    from nanorepo.repository import Repository

__all__ = [
    "SERVICE_NAME",
    "Connection",
    "GrantNotFound",
    "batch_items",
    "connect",
    "open",
    "rerun",
    "run",
    "run_batch",
    "run_store",
    "search",
]

#: The name the hub knows the repository's service by (``{hub}/services/nanorepo``).
SERVICE_NAME = "nanorepo"

Mode = Literal["local", "remote"]

_SUMMARY_KEYS = (
    "accession", "title", "latest_version", "access", "embargo_until", "owner", "created",
    "license",
)  # fmt: skip


class GrantNotFound(NanorepoError, LookupError):
    """There is no such grant to revoke."""


class Connection:
    """How this process reaches the repository: ``local`` or ``remote`` (see the module).

    Made by :func:`connect`; hands features what they need (:attr:`repository`,
    :attr:`client`, :attr:`runs`) and answers the questions every face asks the same way
    whichever way it reaches the repository (:meth:`open`, :meth:`search`, :meth:`show` ...).
    """

    def __init__(
        self, settings: Settings, mode: Mode, *, source: str, create: bool = False
    ) -> None:
        self.settings = settings
        self.mode: Mode = mode
        self.source = source
        self.create = create

    def __repr__(self) -> str:
        where = self.settings.url if self.remote else str(self.settings.home)
        return f"<nanorepo.Connection {self.mode} {where} (from {self.source})>"

    @property
    def remote(self) -> bool:
        return self.mode == "remote"

    @property
    def where(self) -> str:
        """Where the repository is, for messages."""
        if self.remote:
            return f"the service at {self.settings.url}"
        return f"the local repository at {self.settings.home}"

    # -- what features are handed ----------------------------------------------------------

    @cached_property
    def repository(self) -> Repository:
        """The local repository (catalog + storage). Refused on a remote connection: a user
        server must not quietly start an empty repository in its home."""
        if self.remote:
            raise ConfigurationError(
                f"this acts on the repository's catalog and storage, but this process reaches "
                f"the repository through {self.where} ({self.source})",
                hint="operators: run it on the service's machine as `nanorepo --local ...` "
                "(or unset NANOREPO_URL there)",
            )
        from nanorepo.repository import Repository

        return Repository(self.settings, create=self.create)

    @cached_property
    def client(self) -> Client:
        """A client of the service with the user's token (remote connections)."""
        if not self.remote:
            raise ConfigurationError(
                f"this talks to the repository's service, but this process uses {self.where}",
                hint="set NANOREPO_URL to the service (what `nanorepo serve` prints, or "
                "{hub}/services/nanorepo) and NANOREPO_TOKEN",
            )
        from nanorepo.client import Client

        return Client(settings=self.settings)

    @cached_property
    def runs(self) -> RunStore:
        """Where run records go: the service (remote) or the local repository."""
        if self.remote:
            from nanorepo.client import RemoteRuns

            return RemoteRuns(self.client)
        return self.repository.runs

    def close(self) -> None:
        if "client" in self.__dict__:
            self.client.close()
        if "repository" in self.__dict__:
            self.repository.close()

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- what every face asks ----------------------------------------------------------------

    def open(self, ref: str) -> Dataset:
        """A dataset version, lazily (see :func:`nanorepo.open`)."""
        if self.remote:
            mount = Layout(self.settings.storage) if self.settings.storage.is_dir() else None
            ds = open_remote(pinned(ref, self.settings.run_pins), self.client, mount=mount)
        else:
            ds = open_from_storage(ref, self.settings)
        return ds._attach(journal_for(self.settings))

    def search(
        self, query: str = "", *, offset: int = 0, limit: int = 50
    ) -> tuple[list[dict[str, Any]], int]:
        """Dataset summaries ``offset .. offset+limit`` a search finds (all datasets for an
        empty query), best first, and how many there are; only what the caller may see."""
        if self.remote:
            pages = self.client.datasets(query, page_size=max(1, min(500, offset + limit)))
            rows = [
                {k: d.get(k) for k in _SUMMARY_KEYS} for d in islice(pages, offset, offset + limit)
            ]
            return rows, pages.total or 0
        if not query:
            return self.repository.list_datasets(offset=offset, limit=limit)
        return self.repository.search(query, offset=offset, limit=limit)

    def show(self, ref: str) -> dict[str, Any]:
        """Everything about a dataset version as JSON-able data (``nanorepo show --json``)."""
        if self.remote:
            from nanorepo.connection._remote import show

            return show(self.client, ref)
        return self.repository.show(ref)

    def history(self, accession: str) -> list[dict[str, Any]]:
        """Every change of a dataset's administrative metadata."""
        if self.remote:
            from nanorepo.connection._remote import history

            return history(self.client, accession)
        return self.repository.history(accession)

    def set_metadata(
        self, accession: str, changes: Mapping[str, Any], *, reason: str
    ) -> list[dict[str, Any]]:
        """Change administrative metadata; the revisions recorded (none if nothing changed)."""
        if self.remote:
            from nanorepo.connection._remote import set_metadata

            return set_metadata(self.client, accession, changes, reason=reason)
        return self.repository.set_metadata(accession, changes, reason=reason)

    def grant(self, accession: str, kind: str, principal: str) -> dict[str, Any]:
        """Give a user or group (``kind``) access to an embargoed dataset."""
        if self.remote:
            return dict(self.client.grant(accession, **{kind: principal}))
        return self.repository.grant(accession, kind, principal)

    def revoke(self, accession: str, kind: str, principal: str) -> None:
        """Withdraw a grant; :class:`GrantNotFound` if there is none."""
        if self.remote:
            self.client.revoke(accession, **{kind: principal})
        elif not self.repository.revoke(accession, kind, principal):
            raise GrantNotFound(f"{accession} has no grant for {kind} {principal}")

    def release(self, accession: str, *, reason: str) -> dict[str, Any]:
        """End a dataset's embargo now; its access summary after."""
        if self.remote:
            return dict(self.client.release(accession, reason))
        if not self.repository.release(accession, reason=reason):
            raise Conflict(f"{accession} is public already")
        return self._access_summary(accession)

    def embargo(self, accession: str, until: date, *, reason: str) -> dict[str, Any]:
        """Put a dataset (back) under embargo until ``until``; its access summary after."""
        if self.remote:
            return dict(self.client.embargo(accession, until, reason))
        self.repository.embargo(accession, until, reason=reason)
        return self._access_summary(accession)

    def _access_summary(self, accession: str) -> dict[str, Any]:
        d = self.repository.show(accession)
        return {k: d[k] for k in ("accession", "title", "access", "embargo_until")}

    def find_runs(
        self,
        *,
        dataset: str | None = None,
        status: str | None = None,
        batch: str | None = None,
        limit: int = 20,
    ) -> list[RunRecord]:
        """The runs the caller may see, newest first (``nanorepo runs``)."""
        if self.remote:
            from nanorepo.provenance import RunRecord

            pages = self.client.runs(dataset=dataset, status=status, batch=batch, page_size=limit)
            return [RunRecord.from_json(r) for r in islice(pages, limit)]
        found: list[RunRecord] = self.repository.runs.find(
            dataset=dataset, status=status, batch=batch, limit=limit
        )
        return found

    def image_names(self, ref: str) -> list[str]:
        """The names of a dataset version's images."""
        if self.remote:
            acc, ver = parse_ref(ref)
            return [im["name"] for im in self.client.images(acc, ver)]
        return [im.name for im in self.open(ref).images]


def _sqlite_file(url: str) -> Path | None:
    if not url.startswith("sqlite"):
        return None
    return Path(url.split("///", 1)[-1].split("?", 1)[0])


def _hub_service_url(settings: Settings) -> str | None:
    """The repository's service as a hub's user server reaches it, from the hub API URL the
    hub gives every server (``.../hub/api`` → ``.../services/nanorepo``); None off a hub."""
    if not settings.hub_api_url or not settings.token:
        return None
    parts = urlsplit(settings.hub_api_url)
    base = parts.path.rstrip("/").removesuffix("/api").removesuffix("/hub")
    return urlunsplit((parts.scheme, parts.netloc, f"{base}/services/{SERVICE_NAME}", "", ""))


def _not_pointed(settings: Settings) -> RepositoryNotFound:
    return RepositoryNotFound(
        "this process is not pointed at a nanorepo repository: looked for NANOREPO_URL (a "
        "repository's service), NANOREPO_HOME (a repository on this machine), a JupyterHub "
        f"server's JUPYTERHUB_API_URL and JUPYTERHUB_API_TOKEN, and a repository in the "
        f"default home {settings.home}; found none",
        hint="reach a service: export NANOREPO_URL=https://HUB/services/nanorepo and "
        "NANOREPO_TOKEN=... (a hub sets both for you); or use a repository on this machine: "
        "export NANOREPO_HOME=/path/to/it, or create one with `nanorepo init` "
        "(`nanorepo demo` adds the reference datasets)",
    )


def connect(
    home: str | os.PathLike[str] | None = None,
    *,
    url: str | None = None,
    token: str | None = None,
    settings: Settings | None = None,
    local: bool = False,
    create: bool = False,
) -> Connection:
    """Decide how this process reaches the repository (see the module docstring).

    Parameters
    ----------
    home:
        A repository on this machine (overrides ``NANOREPO_HOME``); means local.
    url, token:
        A repository's service and the token to use (override ``NANOREPO_URL`` and
        ``NANOREPO_TOKEN``); means remote.
    settings:
        Settings to decide from (default: read from the environment, with ``home``; when
        given, ``home`` only says "local").
    local:
        Use the repository on this machine even when ``NANOREPO_URL`` is set (operators on
        the service's machine: ``nanorepo --local``).
    create:
        Create the catalog if there is none (``nanorepo init``, ``demo``, ``up`` only).

    Raises
    ------
    RepositoryNotFound
        Nothing points at a repository, or the local one chosen has no catalog.
    """
    if settings is None:
        settings = Settings.from_env(home)
    if url is not None:
        changed = settings.with_(url=url, token=token if token is not None else settings.token)
        return Connection(changed, "remote", source="url=")
    if local or create or home is not None:
        return _local(settings, create, "home=" if home is not None else "--local")
    if settings.url:
        return Connection(settings, "remote", source="NANOREPO_URL")
    if settings.home_set or _sqlite_file(settings.database_url) is None:
        return _local(settings, False, "NANOREPO_HOME")
    hub = _hub_service_url(settings)
    if hub is not None:
        return Connection(settings.with_(url=hub), "remote", source="the hub's environment")
    db = _sqlite_file(settings.database_url)
    if db is not None and db.is_file():
        return Connection(settings, "local", source=f"the default home {settings.home}")
    raise _not_pointed(settings)


def _local(settings: Settings, create: bool, source: str) -> Connection:
    """A local connection, if there is a catalog there (or one may be created), or at least
    a storage to read from: a storage alone (a read-only mount, no catalog) opens datasets,
    and what needs the catalog says there is none when asked (:class:`Repository`)."""
    if not create and not settings.storage.is_dir():
        db = _sqlite_file(settings.database_url)
        if db is not None and not db.is_file():
            from nanorepo.repository import no_repository

            raise no_repository(settings)
        if db is None:
            from nanorepo.repository import catalog_exists, no_repository

            if not catalog_exists(settings.database_url):
                raise no_repository(settings)
    return Connection(settings, "local", source=source, create=create)


# -- the public face: nanorepo.open, nanorepo.search, nanorepo.run -----------------------------


def open(ref: str, *, settings: Settings | None = None) -> Dataset:
    """Open a dataset version lazily: ``nanorepo.open("S-NANO1")`` or ``"S-NANO1@v2"``.

    Bare accessions mean the latest version. Images are read in place (the repository
    storage or a hub server's read-only mount of it) or over HTTP through the service,
    whichever way this process reaches the repository (:func:`connect`); nothing is copied.
    """
    with connect(settings=settings) as conn:
        return conn.open(ref)


def search(
    query: str = "", *, limit: int = 50, settings: Settings | None = None
) -> list[dict[str, Any]]:
    """The datasets a search finds, best first, as summaries (``accession``, ``title``,
    ``latest_version``, ``access``, ...): ``nanorepo.search("nuclear pore technique:STED")``.

    Words and ``field:value`` filters (``technique``, ``organism``, ``author``, ...); an empty
    query lists every dataset. Only what the caller may see, wherever the repository is.
    """
    with connect(settings=settings) as conn:
        rows, _total = conn.search(query, limit=limit)
        return rows


def run_store(settings: Settings) -> RunStore:
    """The run store of the repository ``settings`` point at (a function, so that batch
    workers in other processes can make their own)."""
    conn = connect(settings=settings)
    return conn.runs


def run(
    notebook: str | os.PathLike[str],
    parameters: Mapping[str, Any] | None = None,
    *,
    settings: Settings | None = None,
    **options: Any,
) -> RunRecord:
    """Run a notebook with papermill and record its provenance where this process reaches
    the repository (see :func:`nanorepo.provenance.run` for ``options``)."""
    from nanorepo.provenance import run as run_notebook

    with connect(settings=settings) as conn:
        return run_notebook(
            notebook, parameters, settings=conn.settings, store=conn.runs, **options
        )


def rerun(
    run_id: str, *, settings: Settings | None = None, **options: Any
) -> tuple[RunRecord, Reproducibility]:
    """Execute a recorded run again and compare (see :func:`nanorepo.provenance.rerun`)."""
    from nanorepo.provenance import rerun as rerun_notebook

    with connect(settings=settings) as conn:
        return rerun_notebook(run_id, settings=conn.settings, store=conn.runs, **options)


def batch_items(conn: Connection, query: str, per: str) -> list[str]:
    """The items a batch runs over: ``ACC@vN`` per dataset or ``ACC@vN/IMAGE`` per image of
    the datasets ``query`` finds (as the caller may see them), in search order."""
    if per not in ("dataset", "image"):
        raise InvalidInput(f"--per must be dataset or image, not {per!r}")
    refs: list[str] = []
    offset = 0
    while True:
        rows, total = conn.search(query, offset=offset, limit=200)
        refs += [f"{d['accession']}@v{d['latest_version']}" for d in rows]
        offset += len(rows)
        if not rows or offset >= total:
            break
    if per != "image":
        return refs
    return [f"{r}/{name}" for r in refs for name in conn.image_names(r)]


def run_batch(
    notebook: str | os.PathLike[str],
    query: str,
    *,
    settings: Settings | None = None,
    **options: Any,
) -> BatchRecord:
    """Run a notebook over every dataset or image ``query`` finds (see
    :func:`nanorepo.provenance.run_batch`)."""
    from nanorepo.provenance import run_batch as run_notebooks

    with connect(settings=settings) as conn:
        return run_notebooks(
            notebook, query, settings=conn.settings, store=conn.runs, open_store=run_store,
            items=lambda q, per: batch_items(conn, q, per), **options,
        )  # fmt: skip
