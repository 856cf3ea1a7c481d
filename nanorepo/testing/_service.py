"""A real nanorepo service on loopback for tests: uvicorn in a thread, a seeded repository.

The seeded repository holds one dataset per access case the authorisation tests need:
``public`` (S-…1), ``granted`` (embargoed, granted to bob and to group ``lab``) and
``hidden`` (embargoed, granted to nobody), all owned by alice, plus a token per role,
one annotation thread and one recorded run (reading that case's dataset and image, with one
output named like the image) per case.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import tifffile
import uvicorn
import yaml
from sqlmodel import select

from nanorepo.policy import Role, create_token
from nanorepo.repository import Repository
from nanorepo.settings import Settings

__all__ = ["ROLES", "LiveService", "SeededRepository", "live_service", "seed_repository"]

#: The users of a seeded repository and their roles (``None``: anonymous, no token).
ROLES: dict[str, Role | None] = {
    "anonymous": None,
    "carol": Role.reader,  # signed in, no grant
    "bob": Role.reader,  # granted the embargoed dataset by name
    "dave": Role.reader,  # member of group "lab", which is granted it
    "erin": Role.depositor,  # a depositor who owns nothing here
    "alice": Role.depositor,  # the owner of every seeded dataset
    "cur": Role.curator,
    "root": Role.admin,
}


@dataclass
class SeededRepository:
    """Accessions by case and tokens by user name."""

    public: str
    granted: str
    hidden: str
    tokens: dict[str, str] = field(default_factory=dict)
    runs: dict[str, str] = field(default_factory=dict)  # case -> run id

    def headers(self, user: str) -> dict[str, str]:
        tok = self.tokens.get(user)
        return {"Authorization": f"token {tok}"} if tok else {}

    def copy(self) -> SeededRepository:
        """A copy whose dicts a test may change without touching the original."""
        return SeededRepository(
            self.public, self.granted, self.hidden, dict(self.tokens), dict(self.runs)
        )


_METADATA = {
    "study": {"description": "Seeded for tests.", "authors": [{"name": "Alice"}],
              "license": "CC-BY-4.0"},
    "biosample": {"organism": "Homo sapiens", "cell_line": "U2OS"},
    "specimen": {"labels": [{"target": "Nup96", "fluorophore": "AF647"}]},
    "image_acquisition": {"technique": "STED"},
}  # fmt: skip


def _tiny_ome_tiff(path: Path, seed: int) -> None:
    rng = np.random.default_rng(seed)
    data = rng.poisson(300, (2, 64, 48)).astype(np.uint16)
    tifffile.imwrite(
        path, data, ome=True, photometric="minisblack",
        metadata={"axes": "CYX", "PhysicalSizeX": 0.02, "PhysicalSizeXUnit": "µm",
                  "PhysicalSizeY": 0.02, "PhysicalSizeYUnit": "µm",
                  "Channel": {"Name": ["Nup96", "DNA"]}},
    )  # fmt: skip


def seed_repository(repo: Repository, workdir: Path) -> SeededRepository:
    """Deposit the three access cases (as alice) and issue a token per user.

    The first seeding of a catalog backend in a test process is kept as a snapshot (the
    repository home's files; for PostgreSQL a template database); later calls restore it
    into ``repo`` instead of depositing again, which gives every test the same fresh,
    mutable, seeded repository in a fraction of the time (seeding deposits, converts and
    records runs: seconds; a copy: milliseconds).
    """
    snapshot = _SNAPSHOTS.get(_snapshot_key(repo.settings))
    if snapshot is not None and snapshot.restore(repo):
        return snapshot.seeded.copy()
    seeded = _seed(repo, workdir)
    _Snapshot.take(repo, seeded)
    return seeded.copy()


def _backend(settings: Settings) -> str:
    return settings.database_url.split(":", 1)[0].split("+", 1)[0]


def _snapshot_key(settings: Settings) -> str:
    """What decides the seeded content: the backend and every setting but the paths."""
    paths = {"NANOREPO_HOME", "NANOREPO_DATABASE_URL", "NANOREPO_STORAGE"}
    env = sorted((k, v) for k, v in settings.to_env().items() if k not in paths)
    return f"{_backend(settings)} {env!r}"


def _pg_admin(url: str) -> tuple[str, str]:
    """The maintenance database URL of a PostgreSQL catalog URL, and the database's name."""
    base, name = url.rsplit("/", 1)
    return f"{base}/postgres", name.split("?", 1)[0]


@dataclass
class _Snapshot:
    """A seeded repository kept for :func:`seed_repository`: its home's files (SQLite
    catalog, storage, staging) and, on PostgreSQL, a template database."""

    seeded: SeededRepository
    files: Path
    template: str | None = None

    @staticmethod
    def _copyable(settings: Settings) -> bool:
        """Only the layout the fixtures make: storage inside the home, and the catalog in
        the home (SQLite) or on PostgreSQL."""
        home = settings.home.resolve()
        inside = settings.storage.resolve().is_relative_to(home)
        backend = _backend(settings)
        if backend == "sqlite":
            db = Path(settings.database_url.split(":///", 1)[-1]).resolve()
            return inside and db.is_relative_to(home)
        return inside and backend.startswith("postgres")

    @classmethod
    def take(cls, repo: Repository, seeded: SeededRepository) -> None:
        import atexit
        import shutil
        import tempfile
        import uuid

        settings = repo.settings
        if not cls._copyable(settings):
            return
        if "catalog" in repo.__dict__:
            repo.catalog.engine.dispose()  # SQLite: checkpoints the WAL into the file
        files = Path(tempfile.mkdtemp(prefix="nanorepo-seed-")) / "home"
        shutil.copytree(settings.home, files, symlinks=True)
        atexit.register(shutil.rmtree, files.parent, True)
        template = None
        if _backend(settings).startswith("postgres"):
            import psycopg

            admin, name = _pg_admin(settings.database_url)
            template = f"nanorepo_seed_{uuid.uuid4().hex[:12]}"
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(f'CREATE DATABASE "{template}" TEMPLATE "{name}"')
            atexit.register(_drop_database, admin, template)
        _SNAPSHOTS[_snapshot_key(settings)] = cls(seeded.copy(), files, template)

    def restore(self, repo: Repository) -> bool:
        """Make ``repo`` (fresh, its catalog maybe open) a copy of the snapshot."""
        import shutil

        settings = repo.settings
        if not self._copyable(settings):
            return False
        if "catalog" in repo.__dict__:
            repo.catalog.engine.dispose()
        if self.template is not None:
            import psycopg

            admin, name = _pg_admin(settings.database_url)
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{self.template}"')
        home = settings.home
        if home.exists():
            shutil.rmtree(home)
        shutil.copytree(self.files, home, symlinks=True)
        if self.template is not None:  # the catalog lives in PostgreSQL, not in these files
            for stray in home.glob("catalog.sqlite*"):
                stray.unlink()
        return True


def _drop_database(admin: str, name: str) -> None:
    import contextlib

    import psycopg

    with (
        contextlib.suppress(psycopg.Error),
        psycopg.connect(admin, autocommit=True, connect_timeout=3) as conn,
    ):
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


#: Per test process (each pytest-xdist worker has its own): :func:`_snapshot_key` ->
#: snapshot.
_SNAPSHOTS: dict[str, _Snapshot] = {}


def _seed(repo: Repository, workdir: Path) -> SeededRepository:
    workdir.mkdir(parents=True, exist_ok=True)
    accs = []
    for i, (title, until) in enumerate(
        [
            ("Public pores", None),
            ("Granted embargoed pores", date(2099, 1, 1)),
            ("Hidden embargoed pores zanzibar", date(2099, 1, 1)),
        ]
    ):
        src = workdir / f"case{i}" / f"cell{i}.ome.tif"
        src.parent.mkdir(parents=True, exist_ok=True)
        _tiny_ome_tiff(src, i)
        meta = src.parent / "metadata.yaml"
        meta.write_text(yaml.safe_dump(_METADATA))
        res = repo.deposit([src], title=title, metadata=meta, embargo_until=until)
        accs.append(res.accession)
    seeded = SeededRepository(public=accs[0], granted=accs[1], hidden=accs[2])
    repo.grant(seeded.granted, "user", "bob", who="alice")
    repo.grant(seeded.granted, "group", "lab", who="alice")
    cat = repo.catalog
    with cat.session() as s:
        _seed_threads(s, cat, seeded)
        for user, role in ROLES.items():
            if role is not None:
                seeded.tokens[user] = create_token(s, user, role=role, note="test")
        cat.add_to_group(s, "dave", "lab")
        s.commit()
    _seed_runs(repo, seeded, workdir)
    return seeded


_SEED_NOTEBOOK = (
    b'{"cells": [], "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3",'
    b' "language": "python"}}, "nbformat": 4, "nbformat_minor": 5}'
)


def _seed_runs(repo: Repository, seeded: SeededRepository, workdir: Path) -> None:
    """One finished run per case, recorded as alice without executing anything."""
    import uuid

    from nanorepo.catalog.models import Image, Version, utcnow
    from nanorepo.provenance import Input, NotebookRef, Output, RunRecord
    from nanorepo.storage import hash_file, sha256_hex

    cat = repo.catalog
    for n, (case, acc) in enumerate(
        (("public", seeded.public), ("granted", seeded.granted), ("hidden", seeded.hidden))
    ):
        with cat.session() as s:
            ds = cat.dataset(s, acc)
            v = s.exec(select(Version).where(Version.dataset_id == ds.id)).one()
            im = s.exec(select(Image).where(Image.version_id == v.id)).one()
        out = workdir / f"run{n}" / f"cell{n}"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(f"ring diameter of case {n}: 107 nm\n")
        d = hash_file(out)
        rec = RunRecord(
            id=uuid.uuid4().hex, agent="alice", status="running", started=utcnow(),
            notebook=NotebookRef("rings.ipynb", sha256_hex(_SEED_NOTEBOOK), len(_SEED_NOTEBOOK)),
            parameters={"accession": acc},
        )  # fmt: skip
        repo.runs.begin(rec, _SEED_NOTEBOOK)
        done = rec.with_(
            status="succeeded", ended=utcnow(),
            inputs=(Input("dataset", acc, 1, v.manifest_digest),
                    Input("image", acc, 1, im.manifest_digest, im.name)),
            outputs=(Output(f"cell{n}", d.sha256, d.size, "text/plain"),),
            values={"diameter_nm": 107.0},
        )  # fmt: skip
        repo.runs.finish(done, {f"cell{n}": out})
        seeded.runs[case] = rec.id


def _seed_threads(s: Any, cat: Any, seeded: SeededRepository) -> None:
    """One region thread (id 1, 2, 3 in order) with a reply on each case's image."""
    import nanorepo.annotations as an
    from nanorepo.catalog.models import Image, Version
    from nanorepo.search import index_dataset

    for n, acc in enumerate((seeded.public, seeded.granted, seeded.hidden)):
        ds = cat.dataset(s, acc)
        v = s.exec(select(Version).where(Version.dataset_id == ds.id)).one()
        im = s.exec(select(Image).where(Image.version_id == v.id)).one()
        anchor = {"kind": "region", "image": im.name, "unit": "nanometer", "shape": "box",
                  "x": [100.0, 400.0], "y": [200.0, 600.0]}  # fmt: skip
        t = an.create_thread(
            s, ds, version=1, image_row=im, anchor=anchor, title=f"Ring at the edge {n}",
            body=f"Is this ring **complete**? case {n}", who="alice",
        )  # fmt: skip
        an.reply(s, t, body="Looks like seven of eight corners.", who="alice")
        index_dataset(s, ds.id)
    s.flush()


def _free_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


@dataclass
class LiveService:
    """A running service: its base URL (with the prefix) and repository."""

    url: str
    repo: Repository
    settings: Settings


def _settings_env(settings: Settings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NANOREPO_", "JUPYTERHUB_"))}
    env.update(settings.to_env())
    return env


def _wait_healthy(proc: subprocess.Popen[bytes], url: str, *, last: bool) -> bool:
    """Until the service process answers ``/health``; ``False`` if it exited first (and
    this is not the ``last`` try), an error if it does not start within 60 s."""
    deadline = time.monotonic() + 60
    while True:
        if proc.poll() is not None:
            if not last:
                return False
            raise RuntimeError(f"the nanorepo service exited with {proc.returncode}")
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                if proc.poll() is None:
                    return True
                continue  # it exited: another process on that port answered
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            proc.kill()
            proc.wait()
            raise RuntimeError("the nanorepo service did not start within 60 s")
        time.sleep(0.1)


@contextmanager
def _service_process(settings: Settings, repo: Repository) -> Iterator[LiveService]:
    """The service as its own process (what an operator runs), on an inherited socket."""
    # A port, not an inherited socket: uvicorn's --fd takes any socket for AF_UNIX, so
    # asyncio would not set TCP_NODELAY and every response would wait ~40 ms (Nagle).
    # The port is free when probed; another test process (pytest-xdist) may take it before
    # uvicorn binds it, so a service that exits while starting is started again elsewhere.
    for attempt in range(3):
        with _free_socket() as probe:
            port = probe.getsockname()[1]
        cmd = [
            sys.executable, "-m", "uvicorn", "--factory", "nanorepo.service:create_app",
            "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning",
            "--no-access-log",
        ]  # fmt: skip
        proc = subprocess.Popen(cmd, env=_settings_env(settings))
        url = f"http://127.0.0.1:{port}{settings.service_prefix.rstrip('/')}"
        if _wait_healthy(proc, url, last=attempt == 2):
            break
    try:
        yield LiveService(url=url, repo=repo, settings=settings)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextmanager
def live_service(
    settings: Settings, *, repo: Repository | None = None, process: bool = False
) -> Iterator[LiveService]:
    """Run the service with uvicorn on a free loopback port until the block ends.

    ``process=True`` runs it as a separate process (for load tests and benchmarks, where
    sharing the test's interpreter would measure the GIL); otherwise in a thread.
    """
    from nanorepo.service import create_app

    repo = repo or Repository(settings, create=True)
    if process:
        with _service_process(settings, repo) as live:
            yield live
        return
    app = create_app(settings, repo=repo)
    sock = _free_socket()
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the nanorepo service did not start")
        time.sleep(0.02)
    prefix = settings.service_prefix.rstrip("/")
    try:
        yield LiveService(url=f"http://127.0.0.1:{port}{prefix}", repo=repo, settings=settings)
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()
