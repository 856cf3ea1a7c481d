"""What every ``nanorepo`` command is handed: the settings and, through the front door
(:mod:`nanorepo.connection`), the way to the repository; commands never choose it."""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING

from nanorepo.connection import Connection, connect
from nanorepo.settings import Settings

if TYPE_CHECKING:
    from nanorepo.client import Client
    from nanorepo.provenance import RunStore
    from nanorepo.repository import Repository

__all__ = ["Context"]


class Context:
    """The ``nanorepo`` group's object: settings from ``--home`` and the environment; the
    connection made on first use (so ``--help`` and ``init`` need no repository)."""

    def __init__(self, home: str | None, *, local: bool = False) -> None:
        self.settings = Settings.from_env(home)
        self.local = local

    @cached_property
    def conn(self) -> Connection:
        """How this command reaches the repository (``--local`` forces this machine's)."""
        return connect(settings=self.settings, local=self.local)

    @property
    def remote(self) -> bool:
        """Whether the command goes through the service."""
        return self.conn.remote

    @property
    def client(self) -> Client:
        return self.conn.client

    @property
    def runs(self) -> RunStore:
        """Where runs are recorded: the service when remote, else the local repository."""
        return self.conn.runs

    @property
    def repo(self) -> Repository:
        """The local repository; refused on a remote connection (a user server would
        otherwise quietly start an empty repository in its home)."""
        return self.conn.repository

    def creating(self) -> Repository:
        """The local repository, created if there is none (``init``, ``demo`` only)."""
        if "conn" not in self.__dict__ or not self.conn.create:
            self.__dict__["conn"] = connect(settings=self.settings, create=True)
        return self.conn.repository

    def close(self) -> None:
        if "conn" in self.__dict__:
            self.conn.close()
