"""The run record: what produced a result, as plain data.

A :class:`RunRecord` is what ``nanorepo run`` writes, what ``GET /runs/{id}`` returns and
what the W3C PROV and RO-Crate exports are built from. It is W3C PROV shaped: the run is
the *activity*, its agent the user, its plan the notebook (by content digest), the
dataset versions, images and files it opened are the entities it *used*, and its output
files the entities it *generated*.

Records are frozen dataclasses with a lossless JSON form (:meth:`RunRecord.to_json` /
:meth:`RunRecord.from_json`), so the service, the client and the exports share one shape.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Literal

__all__ = [
    "BATCH_STATUSES",
    "RUN_STATUSES",
    "BatchRecord",
    "Environment",
    "Input",
    "Lineage",
    "LineageEdge",
    "LineageNode",
    "NotebookRef",
    "Output",
    "RunError",
    "RunRecord",
]

Status = Literal["running", "succeeded", "failed", "interrupted"]
RUN_STATUSES: tuple[str, ...] = ("running", "succeeded", "failed", "interrupted")
BATCH_STATUSES: tuple[str, ...] = ("running", "succeeded", "failed", "interrupted")


def utcnow() -> datetime:
    """Timezone-aware now (every time in a record is UTC)."""
    return datetime.now(UTC)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _dt(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


@dataclass(frozen=True)
class NotebookRef:
    """The notebook a run executed (its plan), identified by the SHA-256 of its bytes."""

    name: str
    sha256: str
    size: int


@dataclass(frozen=True)
class Input:
    """Something a run opened through ``nanorepo.open``.

    ``kind`` is ``dataset`` (a dataset version; ``sha256`` is its version manifest digest,
    which covers every byte of the version), ``image`` (one image of it; ``sha256`` is the
    image manifest digest) or ``file`` (a stored file; ``sha256`` its content digest).
    ``ref`` is citable: ``S-NANO1@v2``, ``S-NANO1@v2/cell1``, ``S-NANO1@v2/locs.parquet``.
    """

    kind: Literal["dataset", "image", "file"]
    accession: str
    version: int
    sha256: str
    name: str = ""  # image or file name; empty for a dataset

    @property
    def ref(self) -> str:
        base = f"{self.accession}@v{self.version}"
        return f"{base}/{self.name}" if self.name else base


@dataclass(frozen=True)
class Output:
    """A file a run generated: the executed notebook or a file written to its output dir.

    ``name`` is the path relative to the output directory (POSIX separators).
    """

    name: str
    sha256: str
    size: int
    media_type: str = "application/octet-stream"
    role: Literal["output", "executed-notebook"] = "output"


@dataclass(frozen=True)
class Environment:
    """Where a run executed: interpreter, kernel, packages, container image, host.

    ``packages`` maps distribution names (normalised, lower case) to versions;
    ``packages_sha256`` is the digest of that list, ``sha256`` of the whole environment
    (host and time excluded), so two runs in the same environment share one.
    """

    sha256: str
    python: str
    implementation: str
    platform: str
    kernel: Mapping[str, str]
    packages: Mapping[str, str]
    packages_sha256: str
    image: str | None = None
    host: str = ""


@dataclass(frozen=True)
class RunError:
    """Why a run failed: the exception as the kernel reported it."""

    ename: str
    evalue: str
    traceback: Sequence[str] = ()
    cell: int | None = None  # index of the failing cell in the executed notebook


@dataclass(frozen=True)
class RunRecord:
    """The provenance record of one run (see the module docstring)."""

    id: str
    agent: str
    status: Status
    started: datetime
    notebook: NotebookRef
    parameters: Mapping[str, Any] = field(default_factory=dict)
    ended: datetime | None = None
    inputs: Sequence[Input] = ()
    outputs: Sequence[Output] = ()
    values: Mapping[str, Any] = field(default_factory=dict)
    environment: Environment | None = None
    error: RunError | None = None
    batch: str | None = None
    item: str | None = None  # the batch item this run is for (``S-NANO1@v1/cell1``)
    rerun_of: str | None = None
    derived: Sequence[str] = ()  # accessions deposited from this run's outputs

    def with_(self, **changes: Any) -> RunRecord:
        return replace(self, **changes)

    def to_json(self) -> dict[str, Any]:
        """The record as JSON-ready data (datetimes as ISO 8601 strings)."""
        d = asdict(self)
        d["started"] = _iso(self.started)
        d["ended"] = _iso(self.ended)
        d["inputs"] = [{**asdict(i), "ref": i.ref} for i in self.inputs]
        d["parameters"] = dict(self.parameters)
        d["values"] = dict(self.values)
        return d

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> RunRecord:
        env = d.get("environment")
        err = d.get("error")
        return cls(
            id=d["id"],
            agent=d["agent"],
            status=d["status"],
            started=_dt(d["started"]) or datetime.min,
            ended=_dt(d.get("ended")),
            notebook=NotebookRef(**d["notebook"]),
            parameters=dict(d.get("parameters") or {}),
            inputs=tuple(
                Input(**{k: v for k, v in i.items() if k != "ref"}) for i in d.get("inputs", ())
            ),
            outputs=tuple(Output(**o) for o in d.get("outputs", ())),
            values=dict(d.get("values") or {}),
            environment=Environment(**env) if env else None,
            error=RunError(**{**err, "traceback": tuple(err.get("traceback", ()))})
            if err
            else None,
            batch=d.get("batch"),
            item=d.get("item"),
            rerun_of=d.get("rerun_of"),
            derived=tuple(d.get("derived", ())),
        )


@dataclass(frozen=True)
class BatchRecord:
    """A batch: one notebook run once per dataset or image matching a query.

    ``key`` identifies the batch by what it does (notebook digest, query, granularity,
    parameters, agent), so running the same batch again resumes it.
    """

    id: str
    key: str
    agent: str
    notebook: NotebookRef
    query: str
    per: Literal["dataset", "image"]
    parameters: Mapping[str, Any]
    created: datetime
    status: str = "running"
    runs: Sequence[Mapping[str, str]] = ()  # {"id", "item", "status"} for each run

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["created"] = _iso(self.created)
        d["parameters"] = dict(self.parameters)
        d["runs"] = [dict(r) for r in self.runs]
        return d

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> BatchRecord:
        return cls(
            id=d["id"],
            key=d["key"],
            agent=d["agent"],
            notebook=NotebookRef(**d["notebook"]),
            query=d["query"],
            per=d["per"],
            parameters=dict(d.get("parameters") or {}),
            created=_dt(d["created"]) or datetime.min,
            status=d.get("status", "running"),
            runs=tuple(dict(r) for r in d.get("runs", ())),
        )


@dataclass(frozen=True)
class LineageNode:
    """A node of a lineage graph: a dataset version, a run, a batch or a run output.

    ``id`` is stable and unique in the graph: ``S-NANO1@v1`` for datasets, ``run:<id>``,
    ``batch:<id>``, ``output:<run id>/<name>`` for outputs.
    """

    id: str
    kind: Literal["dataset", "run", "batch", "output"]
    label: str
    attrs: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class LineageEdge:
    """``source`` → ``target`` with a PROV relation name.

    ``used`` (run → dataset it read), ``wasGeneratedBy`` (output → run),
    ``wasDerivedFrom`` (dataset → run output it was deposited from),
    ``wasStartedBy`` (run → batch).
    """

    source: str
    target: str
    relation: Literal["used", "wasGeneratedBy", "wasDerivedFrom", "wasStartedBy"]


@dataclass(frozen=True)
class Lineage:
    """Upstream and downstream of ``focus``: the runs, datasets and outputs connected to it,
    with the full records of the runs and batches involved (for the exports)."""

    focus: str
    nodes: Sequence[LineageNode]
    edges: Sequence[LineageEdge]
    runs: Sequence[RunRecord] = ()
    batches: Sequence[BatchRecord] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "focus": self.focus,
            "nodes": [asdict(n) for n in self.nodes],
            "edges": [asdict(e) for e in self.edges],
            "runs": [r.to_json() for r in self.runs],
            "batches": [b.to_json() for b in self.batches],
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Lineage:
        return cls(
            focus=d["focus"],
            nodes=tuple(LineageNode(**n) for n in d["nodes"]),
            edges=tuple(LineageEdge(**e) for e in d["edges"]),
            runs=tuple(RunRecord.from_json(r) for r in d.get("runs", ())),
            batches=tuple(BatchRecord.from_json(b) for b in d.get("batches", ())),
        )
