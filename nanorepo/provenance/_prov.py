"""W3C PROV export of run records and lineages.

A :class:`~nanorepo.provenance.Lineage` (one run, a batch, or everything connected to a
dataset) becomes a :class:`prov.model.ProvDocument`, which the ``prov`` package serialises
as PROV-JSON, PROV-N and PROV-XML and reads back (JSON, XML). We build the document with
``prov`` rather than writing JSON by hand so every serialisation comes from one model that
its maintainers keep conformant to the W3C documents.

The mapping (``nanorepo`` is the namespace, see :func:`namespace_uri`):

* run → ``prov:Activity`` ``nanorepo:runs/<id>`` with start and end time, status,
  parameters (canonical JSON), recorded values, the environment digest and the error;
* user → ``prov:Agent`` of type ``prov:Person`` ``nanorepo:users/<name>``, associated
  with the run through the notebook as ``prov:Plan``
  (``wasAssociatedWith(run, user, notebook)``); the notebook is the entity
  ``nanorepo:notebooks/<sha256>`` so every run of the same bytes shares one plan;
* environment → ``prov:SoftwareAgent`` ``nanorepo:environments/<sha256>`` (interpreter,
  kernel, packages, container image), associated with the run and acting on behalf of
  the user;
* dataset version → entity ``nanorepo:datasets/<acc>/versions/<n>`` (a ``prov:Collection``
  with its manifest digest), ``specializationOf`` the dataset ``nanorepo:datasets/<acc>``;
  images and files the run opened are entities that are ``hadMember`` of their version;
* outputs → entities ``nanorepo:runs/<id>/outputs/<name>`` ``wasGeneratedBy`` the run
  (the executed notebook also ``wasDerivedFrom`` the plan); datasets deposited from
  outputs ``wasDerivedFrom`` them;
* batch → activity ``nanorepo:batches/<id>``; each of its runs ``wasStartedBy`` it.

Digests are ``nanorepo:sha256`` (lower-case hex). Identifiers are the namespace URI plus a
path whose segments are percent-encoded, so a user-chosen name (an image called
``cell "1"/(a)``) yields a valid PROV-N qualified name and, with a service URL as
namespace, a URI that is the service route of the thing. Free text (titles, tracebacks)
loses terminal escape sequences and control characters, which XML cannot carry.
Integer-valued attributes are typed literals whose lexical form is a string
(``xsd:nonNegativeInteger``): plain JSON numbers would not validate against the
PROV-JSON schema.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from importlib import resources
from typing import Any
from urllib.parse import quote

from prov.constants import PROV, XSD
from prov.identifier import Namespace, QualifiedName
from prov.model import Literal, ProvDocument

from nanorepo.errors import ConfigurationError, InvalidInput
from nanorepo.provenance._record import (
    BatchRecord,
    Environment,
    Input,
    Lineage,
    LineageEdge,
    LineageNode,
    RunRecord,
)

__all__ = [
    "DEFAULT_NAMESPACE",
    "lineage_of",
    "namespace_uri",
    "node_path",
    "prov_json",
    "prov_jsonschema",
    "prov_n",
    "to_prov",
]

DEFAULT_NAMESPACE = "urn:nanorepo:"
"""The namespace URI when the service's public URL is not known."""

_DATASET_ID = re.compile(r"^(?P<acc>[^@/\s]+)@v(?P<version>[0-9]+)$")
_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b[@-Z\\-_]")
# Characters XML 1.0 cannot carry, plus the C1 controls and other escapes of nothing useful.
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")


# --------------------------------------------------------------------------- identifiers


def namespace_uri(base: str | None = None) -> str:
    """The URI of the ``nanorepo`` namespace: ``base`` (the service's public URL) or the URN.

    An ``http(s)`` base gets a trailing ``/`` so identifiers become service routes
    (``https://repo.example.org/datasets/S-NANO1/versions/2``).
    """
    if not base:
        return DEFAULT_NAMESPACE
    if any(c.isspace() or c in '<>"{}|\\^`' for c in base) or ":" not in base:
        raise InvalidInput(
            f"namespace {base!r} is not an absolute URI",
            hint="give the service's public URL (https://host/prefix/) or leave it unset",
        )
    if base.startswith(("http://", "https://")) and not base.endswith("/"):
        base += "/"
    if not base.endswith(("/", ":", "#")):
        raise InvalidInput(f"namespace {base!r} must end with '/', ':' or '#'")
    return base


def _segment(text: str) -> str:
    """One path segment, percent-encoded so it is safe in PROV-N, JSON, XML and a URI."""
    s = quote(text, safe="")
    if s.strip(".") == "":  # "", "." and ".." mean something in URI paths
        return s.replace(".", "%2E") or "_"
    if s.endswith("."):  # PROV-N local names may not end with a dot
        s = s[:-1] + "%2E"
    return s


def _path(text: str) -> str:
    """A relative POSIX path (file or output name), each non-empty segment encoded."""
    return "/".join(_segment(p) for p in text.split("/") if p) or "_"


def _dataset_path(accession: str, version: int | None = None) -> str:
    base = f"datasets/{_segment(accession)}"
    return base if version is None else f"{base}/versions/{int(version)}"


def _input_path(i: Input) -> str:
    version = _dataset_path(i.accession, i.version)
    if i.kind == "dataset" or not i.name:
        return version
    return f"{version}/{'images' if i.kind == 'image' else 'files'}/{_path(i.name)}"


def _output_path(run_id: str, name: str) -> str:
    return f"runs/{_segment(run_id)}/outputs/{_path(name)}"


def node_path(node_id: str) -> str:
    """The path (below the namespace) that identifies a lineage node in every export.

    ``S-NANO1@v2`` → ``datasets/S-NANO1/versions/2``, ``run:<id>`` → ``runs/<id>``,
    ``batch:<id>`` → ``batches/<id>``, ``output:<run>/<name>`` →
    ``runs/<run>/outputs/<name>``; anything else is kept as one encoded segment below
    ``nodes/``.
    """
    m = _DATASET_ID.match(node_id)
    if m:
        return _dataset_path(m["acc"], int(m["version"]))
    kind, _, rest = node_id.partition(":")
    if kind == "run" and rest:
        return f"runs/{_segment(rest)}"
    if kind == "batch" and rest:
        return f"batches/{_segment(rest)}"
    if kind == "output" and "/" in rest:
        run_id, _, name = rest.partition("/")
        return _output_path(run_id, name)
    return f"nodes/{_segment(node_id)}"


def _text(value: object) -> str:
    """Free text made safe for every serialisation (no terminal escapes or controls)."""
    return _CONTROL.sub("\ufffd", _ANSI.sub("", str(value)))


def _json(value: object) -> str:
    """Canonical JSON (sorted keys, no spaces) of user data; non-JSON values as strings."""
    return _text(json.dumps(value, sort_keys=True, separators=(",", ":"), default=str))


def _count(n: int) -> Literal:
    return Literal(str(int(n)), XSD["nonNegativeInteger"])


# --------------------------------------------------------------------------- lineage


def _dataset_node_id(ref: str) -> str:
    """``S-NANO5`` or ``S-NANO5@v3`` → the node id of that version (a deposit makes v1)."""
    return ref if _DATASET_ID.match(ref) else f"{ref}@v1"


def _run_label(run: RunRecord) -> str:
    return f"{run.notebook.name} · {run.id[:8]}"


def lineage_of(
    runs: Iterable[RunRecord],
    batches: Iterable[BatchRecord] = (),
    *,
    focus: str | None = None,
    datasets: Mapping[str, Mapping[str, Any]] | None = None,
) -> Lineage:
    """Build the lineage graph of some runs (and the batches they belong to) from records.

    Parameters
    ----------
    runs, batches:
        The records; a run's inputs, outputs, batch and derived datasets become nodes and
        edges (see :class:`~nanorepo.provenance.LineageEdge` for the relations).
    focus:
        The node the lineage is about (``S-NANO1@v1``, ``run:<id>``, ``batch:<id>``,
        ``output:<run>/<name>``); default the only batch, else the first run.
    datasets:
        Extra attributes of dataset nodes by node id (``{"S-NANO1@v1": {"title": ...}}``),
        e.g. titles from the catalog.

    A derived dataset given as a bare accession is taken to be its first version (a
    deposit creates version 1) and is derived from every ``output``-role file of the run.
    """
    runs = list(runs)
    batches = list(batches)
    extra = datasets or {}
    nodes: dict[str, LineageNode] = {}
    edges: dict[tuple[str, str, str], LineageEdge] = {}
    parts: dict[str, dict[str, set[str]]] = {}
    digests: dict[str, str] = {}

    def node(nid: str, kind: Any, label: str, attrs: Mapping[str, Any] | None = None) -> None:
        if nid not in nodes:
            nodes[nid] = LineageNode(nid, kind, label, dict(attrs or {}))

    def edge(source: str, target: str, relation: Any) -> None:
        edges.setdefault((source, target, relation), LineageEdge(source, target, relation))

    for b in batches:
        node(
            f"batch:{b.id}",
            "batch",
            f"batch of {b.notebook.name} over {b.query!r}",
            {"status": b.status, "agent": b.agent, "query": b.query, "per": b.per},
        )
    for run in runs:
        rid = f"run:{run.id}"
        node(
            rid,
            "run",
            _run_label(run),
            {
                "status": run.status,
                "agent": run.agent,
                "notebook": run.notebook.name,
                "started": run.started.isoformat(),
                "ended": run.ended.isoformat() if run.ended else None,
                "item": run.item,
            },
        )
        for i in run.inputs:
            did = f"{i.accession}@v{i.version}"
            parts.setdefault(did, {"images": set(), "files": set()})
            if i.kind == "dataset":
                digests[did] = i.sha256
            elif i.name:
                parts[did]["images" if i.kind == "image" else "files"].add(i.name)
            edge(rid, did, "used")
        for o in run.outputs:
            oid = f"output:{run.id}/{o.name}"
            node(
                oid,
                "output",
                o.name,
                {"sha256": o.sha256, "size": o.size, "media_type": o.media_type, "role": o.role},
            )
            edge(oid, rid, "wasGeneratedBy")
        if run.batch:
            node(f"batch:{run.batch}", "batch", f"batch {run.batch}")
            edge(rid, f"batch:{run.batch}", "wasStartedBy")
        sources = [o for o in run.outputs if o.role == "output"] or list(run.outputs)
        for ref in run.derived:
            did = _dataset_node_id(ref)
            node(did, "dataset", did, {"derived_from_run": run.id, **extra.get(did, {})})
            for o in sources:
                edge(did, f"output:{run.id}/{o.name}", "wasDerivedFrom")
    for did, p in parts.items():
        attrs: dict[str, Any] = {
            "images": sorted(p["images"]),
            "files": sorted(p["files"]),
            **extra.get(did, {}),
        }
        if did in digests:
            attrs["sha256"] = digests[did]
        node(did, "dataset", did, attrs)
    if focus is None:
        if len(batches) == 1:
            focus = f"batch:{batches[0].id}"
        elif runs:
            focus = f"run:{runs[0].id}"
        else:
            raise InvalidInput("a lineage needs at least one run or batch")
    return Lineage(
        focus=_resolve_focus(focus, nodes),
        nodes=tuple(nodes.values()),
        edges=tuple(edges.values()),
        runs=tuple(runs),
        batches=tuple(batches),
    )


def _resolve_focus(focus: str, nodes: Mapping[str, LineageNode]) -> str:
    """The node id ``focus`` names: a node id, a bare accession (its newest version in the
    graph), a run id or unique prefix (8+ characters), or an output's SHA-256."""
    if focus in nodes:
        return focus
    versions = [
        (int(m["version"]), nid)
        for nid in nodes
        if (m := _DATASET_ID.match(nid)) and m["acc"] == focus
    ]
    if versions:
        return max(versions)[1]
    key = focus.removeprefix("run:")
    runs = [nid for nid in nodes if nid.startswith("run:") and nid[4:].startswith(key)]
    if len(key) >= 8 and len(runs) == 1:
        return runs[0]
    outputs = [
        nid for nid, n in nodes.items() if n.kind == "output" and n.attrs.get("sha256") == focus
    ]
    if outputs:
        return outputs[0]
    raise InvalidInput(
        f"the focus {focus!r} is not a node of this lineage",
        hint="give a dataset (S-NANO1 or S-NANO1@v2), a run id (or 8+ leading "
        "characters), batch:<id>, or an output's SHA-256",
    )


# --------------------------------------------------------------------------- PROV


class _Builder:
    """Adds records to one document, each entity or agent once."""

    def __init__(self, doc: ProvDocument, ns: Namespace) -> None:
        self.doc = doc
        self.ns = ns
        self.seen: set[QualifiedName] = set()

    def q(self, path: str) -> QualifiedName:
        return self.ns[path]

    def once(self, path: str) -> tuple[QualifiedName, bool]:
        qn = self.q(path)
        new = qn not in self.seen
        self.seen.add(qn)
        return qn, new

    def attrs(self, **values: object) -> list[tuple[QualifiedName, object]]:
        out: list[tuple[QualifiedName, object]] = []
        for key, value in values.items():
            if value is None or value == "":
                continue
            name = PROV["label"] if key == "label" else self.ns[key]
            if isinstance(value, bool):
                value = "true" if value else "false"
            elif isinstance(value, int):
                value = _count(value)
            elif isinstance(value, str):
                value = _text(value)
            out.append((name, value))
        return out

    def dataset(self, accession: str, version: int, sha256: str | None = None) -> QualifiedName:
        qn, new = self.once(_dataset_path(accession, version))
        if new:
            whole, whole_new = self.once(_dataset_path(accession))
            if whole_new:
                self.doc.entity(
                    whole,
                    [
                        (PROV["type"], self.ns["Dataset"]),
                        *self.attrs(label=accession, accession=accession),
                    ],
                )
            self.doc.entity(
                qn,
                [
                    (PROV["type"], PROV["Collection"]),
                    (PROV["type"], self.ns["DatasetVersion"]),
                    *self.attrs(
                        label=f"{accession}@v{version}",
                        accession=accession,
                        version=version,
                        ref=f"{accession}@v{version}",
                    ),
                ],
            )
            self.doc.specializationOf(qn, whole)
        if sha256:
            record = self.doc.get_record(qn)[0]
            if not list(record.get_attribute(self.ns["sha256"])):
                record.add_attributes([(self.ns["sha256"], sha256)])
        return qn

    def input(self, i: Input) -> QualifiedName:
        if i.kind == "dataset" or not i.name:
            return self.dataset(i.accession, i.version, i.sha256)
        version = self.dataset(i.accession, i.version)
        qn, new = self.once(_input_path(i))
        if new:
            self.doc.entity(
                qn,
                [
                    (PROV["type"], self.ns["Image" if i.kind == "image" else "File"]),
                    *self.attrs(label=i.ref, ref=i.ref, name=i.name, sha256=i.sha256),
                ],
            )
            self.doc.hadMember(version, qn)
        return qn

    def user(self, name: str) -> QualifiedName:
        qn, new = self.once(f"users/{_segment(name)}")
        if new:
            self.doc.agent(qn, [(PROV["type"], PROV["Person"]), *self.attrs(label=name)])
        return qn

    def plan(self, run_or_batch: RunRecord | BatchRecord) -> QualifiedName:
        nb = run_or_batch.notebook
        qn, new = self.once(f"notebooks/{_segment(nb.sha256)}")
        if new:
            self.doc.entity(
                qn,
                [
                    (PROV["type"], PROV["Plan"]),
                    (PROV["type"], self.ns["Notebook"]),
                    *self.attrs(label=nb.name, name=nb.name, sha256=nb.sha256, size=nb.size),
                ],
            )
        return qn

    def environment(self, env: Environment) -> QualifiedName:
        qn, new = self.once(f"environments/{_segment(env.sha256)}")
        if new:
            self.doc.agent(
                qn,
                [
                    (PROV["type"], PROV["SoftwareAgent"]),
                    *self.attrs(
                        label=f"{env.implementation} {env.python} on {env.platform}",
                        sha256=env.sha256,
                        python=env.python,
                        implementation=env.implementation,
                        platform=env.platform,
                        kernel=_json(dict(env.kernel)),
                        packages=_json(dict(env.packages)),
                        packagesSha256=env.packages_sha256,
                        containerImage=env.image,
                    ),
                ],
            )
        return qn

    def run(self, run: RunRecord, batches: Mapping[str, QualifiedName]) -> None:
        act = self.q(f"runs/{_segment(run.id)}")
        self.seen.add(act)
        err = run.error
        rerun = self.q(f"runs/{_segment(run.rerun_of)}") if run.rerun_of else None
        self.doc.activity(
            act,
            run.started,
            run.ended,
            [
                (PROV["type"], self.ns["Run"]),
                *self.attrs(
                    label=f"run {run.id} of {run.notebook.name}",
                    status=run.status,
                    parameters=_json(dict(run.parameters)),
                    values=_json(dict(run.values)) if run.values else None,
                    item=run.item,
                    environment=run.environment.sha256 if run.environment else None,
                    host=run.environment.host if run.environment else None,
                    errorName=err.ename if err else None,
                    errorValue=err.evalue if err else None,
                    errorCell=err.cell if err else None,
                    traceback="\n".join(err.traceback) if err and err.traceback else None,
                ),
                *([(self.ns["rerunOf"], rerun)] if rerun else []),
            ],
        )
        user = self.user(run.agent)
        plan = self.plan(run)
        self.doc.wasAssociatedWith(act, user, plan)
        if run.environment is not None:
            env = self.environment(run.environment)
            self.doc.wasAssociatedWith(act, env)
            self.doc.actedOnBehalfOf(env, user, act)
        for i in run.inputs:
            self.doc.used(act, self.input(i))
        for o in run.outputs:
            out, _ = self.once(_output_path(run.id, o.name))
            self.doc.entity(
                out,
                [
                    (PROV["type"], self.ns["ExecutedNotebook" if o.role != "output" else "Output"]),
                    *self.attrs(
                        label=o.name,
                        name=o.name,
                        sha256=o.sha256,
                        size=o.size,
                        mediaType=o.media_type,
                        role=o.role,
                    ),
                ],
            )
            self.doc.wasGeneratedBy(out, act, run.ended)
            if o.role == "executed-notebook":
                self.doc.wasDerivedFrom(out, plan, act)
        if run.batch and run.batch in batches:
            self.doc.wasStartedBy(act, None, batches[run.batch], run.started)

    def batch(self, b: BatchRecord) -> QualifiedName:
        act = self.q(f"batches/{_segment(b.id)}")
        self.seen.add(act)
        self.doc.activity(
            act,
            b.created,
            None,
            [
                (PROV["type"], self.ns["Batch"]),
                *self.attrs(
                    label=f"batch {b.id} of {b.notebook.name}",
                    status=b.status,
                    query=b.query,
                    per=b.per,
                    key=b.key,
                    parameters=_json(dict(b.parameters)),
                ),
            ],
        )
        self.doc.wasAssociatedWith(act, self.user(b.agent), self.plan(b))
        return act


def to_prov(lineage: Lineage, *, namespace: str | None = None) -> ProvDocument:
    """The lineage as a W3C PROV document (see the module docstring for the mapping).

    Parameters
    ----------
    lineage:
        A run, a batch or a dataset's lineage; the full records in ``lineage.runs`` and
        ``lineage.batches`` give the detail, the nodes and edges add what the records do
        not hold (datasets deposited from outputs, runs or datasets known only by id).
    namespace:
        URI of the ``nanorepo`` namespace: the service's public URL when known, else
        ``urn:nanorepo:`` (:data:`DEFAULT_NAMESPACE`).
    """
    doc = ProvDocument()
    ns = doc.add_namespace("nanorepo", namespace_uri(namespace))
    b = _Builder(doc, ns)
    batch_ids = {x.id: b.batch(x) for x in lineage.batches}
    for node in lineage.nodes:  # batches known only by id still start their runs
        if node.kind == "batch" and node.id.startswith("batch:"):
            bid = node.id.partition(":")[2]
            if bid not in batch_ids:
                qn, _ = b.once(node_path(node.id))
                doc.activity(qn, None, None, b.attrs(label=node.label))
                batch_ids[bid] = qn
    for run in lineage.runs:
        b.run(run, batch_ids)
    by_id = {n.id: n for n in lineage.nodes}
    for node in lineage.nodes:  # what the records did not cover
        m = _DATASET_ID.match(node.id)
        if node.kind == "dataset" and m:
            sha = node.attrs.get("sha256")
            qn = b.dataset(m["acc"], int(m["version"]), sha if isinstance(sha, str) else None)
            title = node.attrs.get("title")
            record = doc.get_record(qn)[0]
            if isinstance(title, str) and title and not list(record.get_attribute(ns["title"])):
                record.add_attributes(b.attrs(title=title))
            continue
        qn, new = b.once(node_path(node.id))
        if not new:
            continue
        if node.kind == "run":
            doc.activity(qn, None, None, [(PROV["type"], ns["Run"]), *b.attrs(label=node.label)])
        elif node.kind in ("output", "dataset"):
            scalar = {
                k: v
                for k, v in node.attrs.items()
                if k in ("sha256", "size", "role") and isinstance(v, (str, int))
            }
            kind = "Output" if node.kind == "output" else "Dataset"
            doc.entity(qn, [(PROV["type"], ns[kind]), *b.attrs(label=node.label, **scalar)])
    for e in lineage.edges:  # derivations only live in the graph
        if e.relation != "wasDerivedFrom":
            continue
        src, dst = by_id.get(e.source), by_id.get(e.target)
        if src is None or dst is None:
            raise InvalidInput(f"lineage edge {e.source} → {e.target} names an unknown node")
        doc.wasDerivedFrom(b.q(node_path(e.source)), b.q(node_path(e.target)))
    return doc


def prov_json(doc: ProvDocument) -> str:
    """PROV-JSON text of ``doc`` (W3C member submission format, what ``prov`` reads back)."""
    return str(doc.serialize(format="json", indent=2))


def prov_n(doc: ProvDocument) -> str:
    """PROV-N text of ``doc`` (the W3C human-readable notation)."""
    return str(doc.get_provn())


def prov_jsonschema() -> dict[str, Any]:
    """The PROV-JSON JSON Schema (Draft 4) that the ``prov`` package ships.

    ``prov`` keeps a verbatim copy of the schema linked from the PROV-JSON submission
    (``prov/tests/schemas/prov-json.schema.json``) for its own conformance tests; we use
    that copy rather than one of our own.
    """
    try:
        text = (
            resources.files("prov")
            .joinpath("tests", "schemas", "prov-json.schema.json")
            .read_text(encoding="utf-8")
        )
    except (FileNotFoundError, ModuleNotFoundError) as exc:
        raise ConfigurationError(
            "the installed prov package does not ship the PROV-JSON schema "
            "(prov/tests/schemas/prov-json.schema.json)",
            hint="install prov from PyPI (pip install 'prov>=2.5,<3'); distribution "
            "packages that strip its tests also strip the schema",
        ) from exc
    schema: dict[str, Any] = json.loads(text)
    return schema
