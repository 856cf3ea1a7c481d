"""The run journal: what a notebook opened and what values it recorded.

``nanorepo run`` starts the notebook's kernel with ``NANOREPO_RUN_JOURNAL`` naming a file;
inside the kernel, :func:`nanorepo.open` appends every dataset version it opens, and the
images and files whose contents are then read, and :func:`record` appends named values.
The runner reads the journal when the notebook ends, so a run's record lists what the
notebook *actually* used, whatever its parameters declared.

The journal is JSON Lines, one ``os.write`` of a short line per entry on a file opened with
``O_APPEND``: entries from several processes of one run (a kernel and its Dask workers on
the same machine) never interleave, and a kernel killed mid-run leaves every complete line
readable. Outside a run (no journal configured) noting costs one attribute check.

When the run is recorded by the service (``NANOREPO_URL`` in the kernel's environment), each
input is also posted to ``POST /runs/{id}/inputs`` *before* its data is returned to the
notebook, so the service judges who may see the run on what it has read while it runs, and
an interrupted run keeps what it reported (issue 14, finding 3). If that post fails, the
read fails with :class:`InputNotRecorded`: no data is returned whose read was not recorded.
The local file stays the record of truth for the runner.
"""

from __future__ import annotations

import json
import math
import os
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, TypeVar

from nanorepo.errors import InvalidInput, NanorepoError
from nanorepo.settings import Settings

__all__ = [
    "InputNotRecorded",
    "Journal",
    "JournalContents",
    "journal_for",
    "read_journal",
    "record",
]

T = TypeVar("T")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]{0,127}")
_RUN_ID = re.compile(r"[0-9a-f]{32}")


class InputNotRecorded(NanorepoError, RuntimeError):
    """The service did not record that the run read this input, so it was not read."""


class Journal:
    """Appends inputs and values of the current run to its journal file and, for a run
    recorded by the service at ``url``, posts each input there first."""

    def __init__(self, path: Path, *, url: str | None = None, token: str | None = None) -> None:
        self.path = path
        self.url = url.rstrip("/") if url else None
        self.token = token
        self._seen: set[tuple[str, ...]] = set()
        self._lock = threading.Lock()

    @property
    def run_id(self) -> str | None:
        """The run this journal belongs to (the runner names it ``<run id>.journal``)."""
        return self.path.stem if _RUN_ID.fullmatch(self.path.stem) else None

    def note_input(
        self, kind: str, accession: str, version: int, sha256: str, name: str = ""
    ) -> None:
        """Note that the run read ``kind`` (dataset, image, file) ``accession@vN[/name]``."""
        key = (kind, accession, str(version), name)
        with self._lock:
            if key in self._seen:
                return
        entry = {
            "kind": kind,
            "accession": accession,
            "version": version,
            "sha256": sha256,
            "name": name,
        }
        if self.url is not None and self.run_id is not None:
            self._report(entry)  # raises: the caller never gets data whose read is unrecorded
        self._append({"input": entry})
        with self._lock:
            self._seen.add(key)

    def _report(self, entry: Mapping[str, Any]) -> None:
        """Post one input to the service recording this run (the kernel's token is the
        run's owner's); any failure is an :class:`InputNotRecorded` naming the input."""
        import httpx

        ref = f"{entry['accession']}@v{entry['version']}" + (
            f"/{entry['name']}" if entry["name"] else ""
        )
        headers = {"Authorization": f"token {self.token}"} if self.token else {}
        hint = (
            "the run's record must list every input before the notebook reads it; "
            "check that the service is up and that you may read this dataset, then run again"
        )
        try:
            r = httpx.post(
                f"{self.url}/runs/{self.run_id}/inputs",
                json={"inputs": [dict(entry)]},
                headers=headers,
                timeout=60,
            )
        except httpx.HTTPError as exc:
            raise InputNotRecorded(
                f"{ref} was not read: the service at {self.url} could not record it as an "
                f"input of run {self.run_id} ({type(exc).__name__})",
                hint=hint,
            ) from None
        if r.status_code >= 400:
            try:
                detail = str(r.json().get("detail") or "")
            except ValueError:
                detail = ""
            raise InputNotRecorded(
                f"{ref} was not read: the service refused to record it as an input of run "
                f"{self.run_id} ({r.status_code}{': ' + detail[:300] if detail else ''})",
                hint=hint,
            )

    def note_value(self, name: str, value: Any) -> None:
        self._append({"value": {"name": name, "value": value}})

    def _append(self, entry: Mapping[str, Any]) -> None:
        line = (json.dumps(entry, ensure_ascii=False, allow_nan=False) + "\n").encode()
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)


@cache
def _journal_at(path: str, url: str | None, token: str | None) -> Journal:
    return Journal(Path(path), url=url, token=token)


def journal_for(settings: Settings) -> Journal | None:
    """The journal of the run this process belongs to, or ``None`` outside a run; it
    reports inputs to the service when the run is recorded there (``settings.url``), unless
    the runner recorded it in a local repository (it sets ``NANOREPO_RUN_REPORT=0``: e.g.
    ``nanorepo --local run`` where ``NANOREPO_URL`` is also set)."""
    if settings.run_journal is None:
        return None
    url = settings.url if os.environ.get("NANOREPO_RUN_REPORT") != "0" else None
    return _journal_at(str(settings.run_journal), url, settings.token)


def _jsonable(value: Any, where: str) -> Any:
    """``value`` as JSON data: numpy scalars and arrays become Python numbers and lists;
    non-finite floats become the strings ``"NaN"``, ``"Infinity"``, ``"-Infinity"``."""
    if hasattr(value, "tolist") and not isinstance(value, str | bytes):
        value = value.tolist()  # numpy scalar or array
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, list | tuple):
        return [_jsonable(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, Mapping):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise InvalidInput(f"{where}: keys must be strings, not {k!r}")
            out[k] = _jsonable(v, f"{where}[{k!r}]")
        return out
    raise InvalidInput(
        f"{where}: cannot record a {type(value).__name__}",
        hint="record numbers, strings, booleans, None, or lists/dicts of them "
        "(numpy scalars and arrays are converted)",
    )


def record(name: str, value: T, *, settings: Settings | None = None) -> T:
    """Record a named result value of the current run and return ``value`` unchanged.

    ``nanorepo rerun`` compares recorded values numerically (within a tolerance), so record
    the numbers a result stands on: ``nanorepo.record("median_diameter_nm", d)``. Outside a
    run nothing is written. Values must be JSON data (numbers, strings, booleans, None,
    lists and dicts of them; numpy scalars and arrays are converted).
    """
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise InvalidInput(
            f"{name!r} is not a value name",
            hint="names start with a letter or _, then letters, digits, _ . - (at most 128)",
        )
    data = _jsonable(value, name)
    journal = journal_for(settings or Settings.from_env())
    if journal is not None:
        journal.note_value(name, data)
    return value


@dataclass
class JournalContents:
    """What a run's journal holds: inputs in first-use order, last value of each name."""

    inputs: list[dict[str, Any]] = field(default_factory=list)
    values: dict[str, Any] = field(default_factory=dict)


def read_journal(path: Path) -> JournalContents:
    """Read a journal; a torn last line (a kernel killed mid-write) is ignored."""
    out = JournalContents()
    seen: set[tuple[Any, ...]] = set()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return out
    for line in text.splitlines():
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            continue
        if "input" in entry:
            i = entry["input"]
            key = (i["kind"], i["accession"], i["version"], i.get("name", ""))
            if key not in seen:
                seen.add(key)
                out.inputs.append(i)
        elif "value" in entry:
            out.values[entry["value"]["name"]] = entry["value"]["value"]
    return out
