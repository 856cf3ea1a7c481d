"""RO-Crate export of run records: a Process Run Crate, or a Workflow Run Crate.

An RO-Crate is a folder (or zip) with the files of a research result and a JSON-LD file
that describes them; the Workflow Run RO-Crate profiles say how to describe the
executions that made the files. We write it with ``rocrate`` (ro-crate-py, kept by the
RO-Crate community) so the JSON-LD layout, identifiers and zip packaging are theirs.

What the crate holds (RO-Crate 1.1, Process Run Crate 0.5; Workflow Run Crate 0.5 and
Workflow RO-Crate 1.0 as well when every run executed the same notebook and its bytes are
included, since the notebook is then the crate's main workflow):

* each run is a ``CreateAction``: ``instrument`` the notebook (a
  ``SoftwareSourceCode``; a ``ComputationalWorkflow`` file in a workflow crate),
  ``agent`` the user (``Person``), ``startTime``/``endTime``, ``actionStatus``
  (``CompletedActionStatus``, ``FailedActionStatus`` with ``error``, or
  ``ActiveActionStatus``), ``object`` the dataset versions, images and files it opened
  plus one ``PropertyValue`` per parameter, ``result`` its outputs;
* parameters: in a workflow crate each is also a ``FormalParameter`` of the notebook
  (``input``), which the run's ``PropertyValue`` realises (``exampleOfWork``);
* inputs are referenced, never copied: ``Dataset`` (a version, an OME-Zarr image) or
  ``File`` entities whose ``@id`` is their nanorepo URI, with the citable reference and
  ``sha256:<digest>`` as ``identifier``;
* outputs are included when the ``files`` callback returns their stored path (checked
  against the recorded SHA-256 while copying), else referenced by URI;
* the environment is the notebook's ``softwareRequirements``: the interpreter and every
  package, as versioned PyPI ``SoftwareApplication`` entities (Process Run Crate,
  "Specifying software dependencies"); each action's description names the interpreter,
  platform, container image and environment digest;
* a batch is an ``OrganizeAction`` whose ``result`` is its runs; datasets deposited from
  outputs are ``Dataset`` entities ``isBasedOn`` those outputs.

Only the RO-Crate 1.1 JSON-LD context is used (no extension terms), so validators need
nothing else to read the crate.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import quote

from rocrate.model.computerlanguage import ComputerLanguage
from rocrate.model.contextentity import ContextEntity
from rocrate.model.entity import Entity
from rocrate.rocrate import ROCrate

from nanorepo.errors import IntegrityError, InvalidInput
from nanorepo.provenance._prov import _DATASET_ID, _segment, _text, namespace_uri, node_path
from nanorepo.provenance._record import BatchRecord, Input, Lineage, RunRecord

__all__ = ["write_crate"]

Files = Callable[[str, str], "Path | None"]

PROCESS_RUN_CRATE = "https://w3id.org/ro/wfrun/process/0.5"
WORKFLOW_RUN_CRATE = "https://w3id.org/ro/wfrun/workflow/0.5"
WORKFLOW_RO_CRATE = "https://w3id.org/workflowhub/workflow-ro-crate/1.0"
NOTEBOOK_LANGUAGE = "https://jupyter.org/"
DEFAULT_LICENSE = (
    "No licence is stated for this crate. It describes analyses run in a nanorepo "
    "repository; the included files belong to the people who ran them (the agent of "
    "each action) and the input datasets keep their own licences."
)

_STATUS = {  # plain strings: what the Process Run Crate validator compares against
    "succeeded": "http://schema.org/CompletedActionStatus",
    "failed": "http://schema.org/FailedActionStatus",
    "interrupted": "http://schema.org/FailedActionStatus",
    "running": "http://schema.org/ActiveActionStatus",
}
BIOSCHEMAS_WORKFLOW = "https://bioschemas.org/profiles/ComputationalWorkflow/1.0-RELEASE"


def _time(value: datetime | None) -> str | None:
    """ISO 8601 with milliseconds and a numeric UTC offset, as the profile recommends.

    Times without a zone are taken to be UTC (what nanorepo records).
    """
    if value is None:
        return None
    value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return value.isoformat(timespec="milliseconds")


def _crate_path(run_id: str, name: str) -> str:
    """Where an output is stored in the crate: ``runs/<run>/<name>``; refuses escapes."""
    parts = name.split("/")
    if (
        not name
        or name.startswith("/")
        or "\x00" in name
        or any(p in ("", ".", "..") for p in parts)
        or any(c in run_id for c in "/\\\x00")
        or run_id in ("", ".", "..")
    ):
        raise InvalidInput(
            f"output {name!r} of run {run_id!r} is not a plain relative path",
            hint="output names are paths inside the run's output directory, without '..'",
        )
    return str(PurePosixPath("runs", run_id, *parts))


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def _value(value: Any) -> Any:
    """A parameter value as JSON-LD accepts it: scalars as they are, the rest as JSON."""
    if isinstance(value, str):
        return _text(value)
    if isinstance(value, bool | int | float):
        return value
    return json.dumps(value, sort_keys=True, default=str)


def _data_type(values: Iterable[Any]) -> str:
    """The schema.org ``DataType`` a parameter's values have (``PropertyValue`` if mixed)."""
    kinds = set()
    for v in values:
        if isinstance(v, bool):
            kinds.add("Boolean")
        elif isinstance(v, int):
            kinds.add("Integer")
        elif isinstance(v, float):
            kinds.add("Float")
        elif isinstance(v, str):
            kinds.add("Text")
        else:
            kinds.add("PropertyValue")
    if kinds == {"Integer", "Float"}:
        return "Float"
    return kinds.pop() if len(kinds) == 1 else "PropertyValue"


class _CrateBuilder:
    def __init__(self, lineage: Lineage, files: Files, ns: str, license: str | None) -> None:
        self.lineage = lineage
        self.files = files
        self.ns = ns
        self.crate = ROCrate(version="1.1")
        self.notebooks: dict[str, Entity] = {}
        self.parameters: dict[str, Entity] = {}
        self.entities: dict[str, Entity] = {}
        self.parts: set[str] = set()
        self.workflow = False
        root = self.crate.root_dataset
        root["license"] = license or DEFAULT_LICENSE
        root["datePublished"] = _time(datetime.now(UTC))

    def uri(self, path: str) -> str:
        return self.ns + path

    def context(self, identifier: str, properties: dict[str, Any]) -> Entity:
        if identifier in self.entities:
            return self.entities[identifier]
        entity = self.crate.add(ContextEntity(self.crate, identifier, properties=properties))
        self.entities[identifier] = entity
        return entity

    def mention(self, entity: Entity) -> None:
        self.crate.root_dataset.append_to("mentions", entity)

    def part(self, entity: Entity) -> Entity:
        """List a referenced (web-based) data entity in the root's ``hasPart``, once."""
        if entity.id not in self.parts:
            self.parts.add(entity.id)
            self.crate.root_dataset.append_to("hasPart", entity)
        return entity

    # ----------------------------------------------------------------- notebooks

    def notebook_files(self) -> dict[str, Path]:
        """The stored notebook copy for each notebook digest, where one is available."""
        found: dict[str, Path] = {}
        for run in self.lineage.runs:
            digest = run.notebook.sha256
            if digest not in found:
                path = self.files(run.id, "notebook.ipynb")
                if path is not None:
                    found[digest] = Path(path)
        return found

    def add_notebooks(self) -> None:
        records: list[RunRecord | BatchRecord] = [*self.lineage.runs, *self.lineage.batches]
        refs = {r.notebook.sha256: r.notebook for r in records}
        stored = self.notebook_files()
        self.workflow = len(refs) == 1 and set(stored) == set(refs)
        for digest, ref in refs.items():
            props: dict[str, Any] = {
                "name": _text(ref.name),
                "identifier": f"sha256:{digest}",
                "url": self.uri(f"notebooks/{_segment(digest)}"),
                "version": digest,
                "contentSize": str(ref.size),
                "encodingFormat": "application/x-ipynb+json",
                "programmingLanguage": self.language(),
            }
            if digest in stored:
                path = stored[digest]
                if _sha256(path) != digest:
                    raise IntegrityError(
                        f"stored notebook {path} does not match its recorded SHA-256 {digest}"
                    )
                dest = f"notebooks/{digest[:16]}/{_segment(ref.name)}"
                if self.workflow:
                    props["conformsTo"] = {"@id": BIOSCHEMAS_WORKFLOW}
                    entity = self.crate.add_workflow(
                        path, dest, main=True, lang=self.language(), properties=props
                    )
                else:
                    entity = self.crate.add_file(
                        path, dest, properties={**props, "@type": ["File", "SoftwareSourceCode"]}
                    )
            else:
                entity = self.context(
                    self.uri(f"notebooks/{_segment(digest)}"),
                    {**props, "@type": "SoftwareSourceCode"},
                )
                self.mention(entity)
            self.notebooks[digest] = entity

    def language(self) -> Entity:
        if NOTEBOOK_LANGUAGE not in self.entities:
            lang = ComputerLanguage(
                self.crate,
                NOTEBOOK_LANGUAGE,
                properties={
                    "name": "Jupyter Notebook",
                    "alternateName": "ipynb",
                    "identifier": {
                        "@id": "https://nbformat.readthedocs.io/en/latest/format_description.html"
                    },
                    "url": {"@id": NOTEBOOK_LANGUAGE},
                    "version": "4",
                },
            )
            self.entities[NOTEBOOK_LANGUAGE] = self.crate.add(lang)
        return self.entities[NOTEBOOK_LANGUAGE]

    def add_requirements(self) -> None:
        """The interpreter and packages of every run's environment, per notebook."""
        for run in self.lineage.runs:
            env = run.environment
            if env is None:
                continue
            nb = self.notebooks[run.notebook.sha256]
            have = {_id(r) for r in _list(nb.get("softwareRequirements"))}
            release = env.python.replace(".", "")
            reqs = [
                (
                    f"https://www.python.org/downloads/release/python-{quote(release, safe='')}/",
                    env.implementation or "Python",
                    env.python,
                )
            ]
            for name, version in sorted(env.packages.items()):
                reqs.append(
                    (
                        f"https://pypi.org/project/{quote(name, safe='')}/{quote(version, safe='')}/",
                        name,
                        version,
                    )
                )
            for uri, name, version in reqs:
                if uri in have:
                    continue
                app = self.context(
                    uri,
                    {
                        "@type": "SoftwareApplication",
                        "name": _text(name),
                        "softwareVersion": _text(version),
                        "url": uri,
                    },
                )
                nb.append_to("softwareRequirements", app)
                have.add(uri)

    # ----------------------------------------------------------------- parameters

    def add_formal_parameters(self) -> None:
        if not self.workflow:
            return
        values: dict[str, list[Any]] = {}
        for run in self.lineage.runs:
            for k, v in run.parameters.items():
                values.setdefault(k, []).append(v)
        nb = next(iter(self.notebooks.values()))
        for name in sorted(values):
            fp = self.crate.add_formal_parameter(
                name=_text(name),
                additionalType=_data_type(values[name]),
                identifier=f"#parameter-{_segment(name)}",
                description=f"notebook parameter {_text(name)!r} (papermill parameters cell)",
            )
            nb.append_to("input", fp)
            self.parameters[name] = fp

    # ----------------------------------------------------------------- inputs

    def input_entity(self, i: Input) -> Entity:
        version_path = node_path(f"{i.accession}@v{i.version}")
        version_ref = f"{i.accession}@v{i.version}"
        version = self.context(
            self.uri(version_path),
            {
                "@type": "Dataset",
                "name": _text(version_ref),
                "identifier": _text(version_ref),
                "version": str(i.version),
                "description": f"Version {i.version} of dataset {_text(i.accession)} "
                "in the nanorepo repository (not copied into this crate).",
            },
        )
        self.part(version)
        if i.kind == "dataset" or not i.name:
            digest = f"sha256:{i.sha256}"
            ids = [x for x in _list(version.get("identifier")) if isinstance(x, str)]
            if digest not in ids:
                version["identifier"] = [*ids, digest]
            return version
        sub = "images" if i.kind == "image" else "files"
        path = f"{version_path}/{sub}/" + "/".join(_segment(p) for p in i.name.split("/") if p)
        entity = self.context(
            self.uri(path),
            {
                "@type": "Dataset" if i.kind == "image" else "File",
                "name": _text(i.ref),
                "identifier": [_text(i.ref), f"sha256:{i.sha256}"],
                "isPartOf": version,
                "description": ("OME-Zarr image" if i.kind == "image" else "Stored file")
                + f" {_text(i.name)!r} of {_text(version_ref)} (not copied into this crate).",
            },
        )
        return self.part(entity)

    # ----------------------------------------------------------------- runs

    def person(self, name: str) -> Entity:
        person = self.context(
            self.uri(f"users/{_segment(name)}"), {"@type": "Person", "name": _text(name)}
        )
        return person

    def output_entity(self, run: RunRecord, o: Any) -> Entity:
        props: dict[str, Any] = {
            "name": _text(o.name),
            "identifier": f"sha256:{o.sha256}",
            "contentSize": str(o.size),
            "encodingFormat": _text(o.media_type),
            "description": "executed notebook" if o.role == "executed-notebook" else "output",
        }
        dest = _crate_path(run.id, o.name)
        path = self.files(run.id, o.name)
        if path is None:
            return self.part(
                self.context(
                    self.uri(node_path(f"output:{run.id}/{o.name}")), {**props, "@type": "File"}
                )
            )
        path = Path(path)
        if _sha256(path) != o.sha256:
            raise IntegrityError(
                f"stored output {o.name!r} of run {run.id} ({path}) does not match its "
                f"recorded SHA-256 {o.sha256}"
            )
        entity = self.crate.add_file(path, dest, properties=props)
        self.entities[self.uri(node_path(f"output:{run.id}/{o.name}"))] = entity
        return entity

    def add_run(self, run: RunRecord) -> Entity:
        env = run.environment
        where = (
            f" in {env.implementation} {env.python} on {env.platform}"
            + (f", container image {env.image}" if env.image else "")
            + f" (environment sha256:{env.sha256})"
            if env
            else ""
        )
        params = ", ".join(f"{k}={json.dumps(v, default=str)}" for k, v in run.parameters.items())
        description = (
            f"papermill executed {run.notebook.name} (sha256:{run.notebook.sha256}){where}"
            + (f" for {run.item}" if run.item else "")
            + (f" with {params}" if params else "")
            + (f"; re-run of {run.rerun_of}" if run.rerun_of else "")
            + "."
        )
        objects: list[Entity] = [self.input_entity(i) for i in run.inputs]
        for k, v in run.parameters.items():
            pv = self.context(
                f"#run-{_segment(run.id)}-parameter-{_segment(k)}",
                {"@type": "PropertyValue", "name": _text(k), "value": _value(v)},
            )
            if k in self.parameters:
                pv["exampleOfWork"] = self.parameters[k]
                self.parameters[k].append_to("workExample", pv)
            objects.append(pv)
        results = [self.output_entity(run, o) for o in run.outputs]
        props: dict[str, Any] = {
            "@type": "CreateAction",
            "name": _text(f"Run {run.id} of {run.notebook.name}"),
            "description": _text(description),
            "startTime": _time(run.started),
            "agent": self.person(run.agent),
            "actionStatus": _STATUS.get(run.status, _STATUS["failed"]),
        }
        if run.ended is not None:
            props["endTime"] = _time(run.ended)
        if run.error is not None:
            props["error"] = _text(f"{run.error.ename}: {run.error.evalue}")
        action = self.context(self.uri(node_path(f"run:{run.id}")), props)
        action["instrument"] = self.notebooks[run.notebook.sha256]
        if objects:
            action["object"] = objects
        if results:
            action["result"] = results
        self.mention(action)
        return action

    def add_batch(self, b: BatchRecord, actions: Mapping[str, Entity]) -> None:
        runs = [actions[r["id"]] for r in b.runs if r.get("id") in actions]
        runs += [a for rid, a in actions.items() if a not in runs and self.run_batch(rid) == b.id]
        props: dict[str, Any] = {
            "@type": "OrganizeAction",
            "name": _text(f"Batch {b.id}: {b.notebook.name} per {b.per} of {b.query!r}"),
            "description": _text(
                f"One run of {b.notebook.name} per {b.per} matching {b.query!r}, parameters "
                f"{json.dumps(dict(b.parameters), sort_keys=True, default=str)}."
            ),
            "startTime": _time(b.created),
            "agent": self.person(b.agent),
            "instrument": self.notebooks[b.notebook.sha256],
            "actionStatus": _STATUS.get(b.status, _STATUS["failed"]),
        }
        batch = self.context(self.uri(node_path(f"batch:{b.id}")), props)
        if runs:
            batch["result"] = runs
        self.mention(batch)

    def run_batch(self, run_id: str) -> str | None:
        return next((r.batch for r in self.lineage.runs if r.id == run_id), None)

    def add_derived(self) -> None:
        nodes = {n.id: n for n in self.lineage.nodes}
        for e in self.lineage.edges:
            if e.relation != "wasDerivedFrom":
                continue
            node = nodes.get(e.source)
            m = _DATASET_ID.match(e.source)
            source = self.entities.get(self.uri(node_path(e.target)))
            if node is None or m is None or source is None:
                continue
            title = node.attrs.get("title")
            dataset = self.context(
                self.uri(node_path(e.source)),
                {
                    "@type": "Dataset",
                    "name": _text(title if isinstance(title, str) and title else e.source),
                    "identifier": _text(e.source),
                    "version": m["version"],
                    "description": f"Dataset {_text(e.source)} deposited in the nanorepo "
                    "repository from outputs of a run in this crate.",
                },
            )
            dataset.append_to("isBasedOn", source)
            self.part(dataset)

    def build(self, name: str | None, description: str | None) -> ROCrate:
        if not self.lineage.runs:
            raise InvalidInput(
                "the lineage holds no run record: an RO-Crate describes executions",
                hint="export the run, batch or dataset lineage that has runs",
            )
        self.add_notebooks()
        self.add_requirements()
        self.add_formal_parameters()
        actions = {run.id: self.add_run(run) for run in self.lineage.runs}
        for b in self.lineage.batches:
            self.add_batch(b, actions)
        self.add_derived()
        profiles = [("Process Run Crate", PROCESS_RUN_CRATE)]
        if self.workflow:
            profiles += [
                ("Workflow Run Crate", WORKFLOW_RUN_CRATE),
                ("Workflow RO-Crate", WORKFLOW_RO_CRATE),
            ]
        root = self.crate.root_dataset
        for label, uri in profiles:
            profile = self.context(
                uri, {"@type": "CreativeWork", "name": label, "version": uri.rsplit("/", 1)[1]}
            )
            root.append_to("conformsTo", profile)
        focus = next((n for n in self.lineage.nodes if n.id == self.lineage.focus), None)
        what = focus.label if focus else self.lineage.focus
        root["name"] = _text(name or f"Provenance of {what}")
        runs = len(self.lineage.runs)
        root["description"] = _text(
            description
            or f"{runs} run{'s' if runs != 1 else ''} recorded by nanorepo: the notebooks "
            "executed, their parameters, inputs (dataset versions with manifest digests), "
            "environments, agents, times and outputs with digests."
        )
        people = {_id(a.get("agent")): a.get("agent") for a in self.actions()}
        root["author"] = [p for p in people.values() if p is not None]
        if self.ns.startswith(("http://", "https://")):
            root["publisher"] = self.context(
                self.ns, {"@type": "Organization", "name": "nanorepo repository", "url": self.ns}
            )
        self.crate.add_file(
            io.BytesIO(self.readme().encode()),
            "README.md",
            properties={
                "name": "README",
                "about": root,
                "encodingFormat": "text/markdown",
                "description": "What this crate holds, for people.",
            },
        )
        for entity in self.crate.get_entities():  # RO-Crate prefers single values
            props = entity.properties()
            for key, value in list(props.items()):
                if isinstance(value, list) and len(value) == 1 and not key.startswith("@"):
                    props[key] = value[0]
        return self.crate

    def actions(self) -> list[Entity]:
        return [e for e in self.crate.get_entities() if e.type == "CreateAction"]

    def readme(self) -> str:
        """A short Markdown account of the runs, for a person opening the crate."""
        lines = [
            f"# {self.crate.root_dataset['name']}",
            "",
            self.crate.root_dataset["description"],
            "",
        ]
        for run in self.lineage.runs:
            when = _time(run.started) or ""
            lines += [
                f"## Run `{run.id}`",
                "",
                f"- notebook: {_text(run.notebook.name)} (sha256 `{run.notebook.sha256}`)",
                f"- status: {run.status}; by {_text(run.agent)}; started {when}"
                + (f", ended {_time(run.ended)}" if run.ended else ""),
                f"- parameters: `{_text(json.dumps(dict(run.parameters), sort_keys=True, default=str))}`",
            ]
            lines += [f"- used {_text(i.ref)} (sha256 `{i.sha256}`)" for i in run.inputs]
            lines += [
                f"- produced {_text(o.name)} ({o.size} bytes, sha256 `{o.sha256}`)"
                for o in run.outputs
            ]
            if run.error:
                lines.append(f"- error: {_text(run.error.ename)}: {_text(run.error.evalue)}")
            lines.append("")
        lines.append(
            "The machine-readable record is `ro-crate-metadata.json` (RO-Crate 1.1, "
            "Workflow Run RO-Crate profiles)."
        )
        return "\n".join(lines) + "\n"


def _id(value: Any) -> str:
    return str(value["@id"] if isinstance(value, dict) else getattr(value, "id", value))


def _list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def write_crate(
    lineage: Lineage,
    dest: Path,
    *,
    files: Files,
    zip: bool = False,
    namespace: str | None = None,
    license: str | None = None,
    name: str | None = None,
    description: str | None = None,
) -> Path:
    """Write the runs of ``lineage`` as an RO-Crate (see the module docstring).

    Parameters
    ----------
    lineage:
        A run, a batch or a dataset lineage; needs at least one run record.
    dest:
        The crate directory to create (it must not exist, or be empty), or with
        ``zip=True`` the zip file to write. Written to a temporary sibling first and
        renamed into place, so a crash leaves no half-written crate.
    files:
        ``files(run_id, name)`` returns the local path of a stored file to include (the
        notebook copy is asked for as ``"notebook.ipynb"``, outputs by ``Output.name``), or
        ``None`` to reference it by URI only. Included files must match their recorded
        SHA-256, else :class:`~nanorepo.errors.IntegrityError`.
    namespace:
        Base URI of the identifiers (the service's public URL), as in
        :func:`~nanorepo.provenance.to_prov`; default ``urn:nanorepo:``.
    license:
        The crate's licence (an SPDX/creative-commons URL or a text); default a text saying
        none was stated.
    name, description:
        Title and summary of the crate; default from the lineage's focus.

    Returns
    -------
    Path
        ``dest``.
    """
    dest = Path(dest)
    if zip:
        if dest.is_dir():
            raise InvalidInput(f"{dest} is a directory; give the path of the zip file to write")
    elif dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise InvalidInput(
            f"{dest} already exists and is not an empty directory",
            hint="give a new directory for the crate (it is created)",
        )
    crate = _CrateBuilder(lineage, files, namespace_uri(namespace), license).build(
        name, description
    )
    dest.parent.mkdir(parents=True, exist_ok=True)
    if zip:
        fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
        os.close(fd)
        try:
            crate.write_zip(tmp)
            os.replace(tmp, dest)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return dest
    tmpdir = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent))
    try:
        crate.write(tmpdir)
        if dest.exists():
            dest.rmdir()
        tmpdir.rename(dest)
    except BaseException:
        shutil.rmtree(tmpdir, ignore_errors=True)
        raise
    return dest
