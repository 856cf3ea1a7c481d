"""Run records in the repository: the catalog rows and the stored outputs of every run.

:class:`Runs` is the one implementation of the run store; the CLI uses it directly on a
local repository, and the service uses it behind ``/runs`` (with the caller as
``principal``, so a run is visible only to those who may see every dataset it read, and
only to its owner and curators until its inputs are known: a run recorded by the service
reports each input as its journal records it, before the notebook gets the data). The
client-side :class:`~nanorepo.client.RemoteRuns` speaks the same methods over HTTP.

Publication is crash safe (DESIGN.md invariant 6): a run's outputs are copied to a
staging directory, checked against the digests the record states, moved into
``runs/ab/<id>/`` in one rename, and only then registered in one transaction. A crash
before the commit leaves an unregistered directory that the next ``finish`` of that run
replaces; never registered outputs without their files.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from sqlmodel import Session, col, select

from nanorepo.catalog import Catalog
from nanorepo.catalog.models import Dataset as DatasetRow
from nanorepo.catalog.models import File as FileRow
from nanorepo.catalog.models import Image as ImageRow
from nanorepo.catalog.models import (
    Run,
    RunBatch,
    RunDerived,
    RunEnvironment,
    RunInput,
    RunOutput,
    Version,
    utcnow,
)
from nanorepo.errors import Conflict, DatasetNotFound, InvalidInput, RunNotFound
from nanorepo.policy import Principal, visible
from nanorepo.provenance._record import (
    BatchRecord,
    Environment,
    Input,
    Lineage,
    LineageNode,
    NotebookRef,
    Output,
    RunError,
    RunRecord,
)
from nanorepo.storage import Layout, check_relpath, hash_file, publish_dir, write_atomic

__all__ = ["RunStore", "Runs", "run_to_record"]

FINAL = ("succeeded", "failed", "interrupted")
#: Statuses whose record holds every input the run read (sent with ``finish``).
INPUTS_KNOWN = ("succeeded", "failed")
#: Inputs one ``note_inputs`` call may report.
MAX_NOTED = 1000


class RunStore(Protocol):
    """What the runner needs from wherever runs are recorded (local or the service)."""

    def begin(self, record: RunRecord, notebook: bytes) -> RunRecord: ...

    def finish(self, record: RunRecord, files: Mapping[str, Path]) -> RunRecord: ...

    def interrupt(self, run_id: str) -> RunRecord | None: ...

    def note_inputs(self, run_id: str, inputs: Sequence[Input]) -> RunRecord: ...

    def get(self, run_id: str) -> RunRecord: ...

    def notebook(self, run_id: str) -> bytes: ...

    def begin_batch(self, batch: BatchRecord) -> BatchRecord: ...

    def finish_batch(self, batch_id: str, status: str) -> BatchRecord: ...

    def close(self) -> None: ...


def run_to_record(s: Session, run: Run, principal: Principal | None = None) -> RunRecord:
    """The :class:`RunRecord` of a catalog row (inputs, outputs, environment, derived
    datasets: those ``principal`` may see)."""
    inputs = s.exec(select(RunInput).where(RunInput.run_id == run.id).order_by(col(RunInput.id)))
    outputs = s.exec(
        select(RunOutput).where(RunOutput.run_id == run.id).order_by(col(RunOutput.id))
    )
    env = s.get(RunEnvironment, run.environment_sha256) if run.environment_sha256 else None
    derived = _derived_accessions(s, run.id, principal)
    err = run.error
    return RunRecord(
        id=run.id,
        agent=run.agent,
        status=run.status,  # type: ignore[arg-type]
        started=run.started,
        ended=run.ended,
        notebook=NotebookRef(run.notebook_name, run.notebook_sha256, run.notebook_size),
        parameters=dict(run.parameters),
        inputs=tuple(
            Input(i.kind, i.accession, i.version, i.sha256, i.name)  # type: ignore[arg-type]
            for i in inputs
        ),
        outputs=tuple(
            Output(o.name, o.sha256, o.size, o.media_type, o.role)  # type: ignore[arg-type]
            for o in outputs
        ),
        values=dict(run.values),
        environment=Environment(**{**env.doc, "host": run.host}) if env is not None else None,
        error=RunError(**{**err, "traceback": tuple(err.get("traceback", ()))}) if err else None,
        batch=run.batch_id,
        item=run.item,
        rerun_of=run.rerun_of,
        derived=tuple(sorted(derived)),
    )


def _derived_accessions(s: Session, run_id: str, principal: Principal | None) -> list[str]:
    """Accessions deposited from ``run_id``'s outputs that ``principal`` may see."""
    rows = s.exec(
        select(DatasetRow)
        .join(RunDerived, col(RunDerived.dataset_id) == col(DatasetRow.id))
        .where(RunDerived.run_id == run_id)
    )
    return [ds.accession for ds in rows if principal is None or visible(s, principal, ds)]


def _batch_to_record(s: Session, b: RunBatch) -> BatchRecord:
    runs = s.exec(
        select(Run.id, Run.item, Run.status).where(Run.batch_id == b.id).order_by(col(Run.started))
    )
    return BatchRecord(
        id=b.id,
        key=b.key,
        agent=b.agent,
        notebook=NotebookRef(b.notebook_name, b.notebook_sha256, b.notebook_size),
        query=b.query,
        per=b.per,  # type: ignore[arg-type]
        parameters=dict(b.parameters),
        created=b.created,
        status=b.status,
        runs=tuple({"id": i, "item": it or "", "status": st} for i, it, st in runs),
    )


class Runs:
    """The run store of a repository (catalog + storage), seen as ``principal``.

    ``principal`` ``None`` means the repository's own operator (the local CLI): no
    visibility filter. The service passes the caller.
    """

    def __init__(
        self,
        catalog: Catalog,
        layout: Layout,
        principal: Principal | None = None,
        *,
        on_close: Callable[[], None] | None = None,
    ) -> None:
        self.catalog = catalog
        self.layout = layout
        self.principal = principal
        self._on_close = on_close

    def close(self) -> None:
        """Release what this store opened (``on_close``: e.g. a repository opened for it)."""
        if self._on_close is not None:
            self._on_close()

    # -- visibility --------------------------------------------------------------------

    def _visible(self, s: Session, run_id: str) -> bool:
        """A run is visible to whoever may see every dataset it read, once that is known.

        Its inputs are all known when it ends ``succeeded`` or ``failed`` (``finish``
        carries the journal's inputs). A ``running`` or ``interrupted`` run is judged on the
        inputs it reported (:meth:`note_inputs`: a run recorded by the service reports each
        one before the notebook gets its data); one that reported none is seen only by its
        owner and curators, so a run over an embargoed dataset never shows its parameters
        or notebook to anyone else (issue 14, finding 3).
        """
        if self.principal is None or self.principal.privileged:
            return True
        run = s.get(Run, run_id)
        if run is None:
            return False
        ids = s.exec(select(RunInput.dataset_id).where(RunInput.run_id == run_id).distinct()).all()
        if run.status not in INPUTS_KNOWN:
            if self.principal.name is not None and run.agent == self.principal.name:
                return True
            if not ids:
                return False
        for ds_id in ids:
            ds = s.get(DatasetRow, ds_id)
            if ds is None or not visible(s, self.principal, ds):
                return False
        return True

    def _run(self, s: Session, run_id: str) -> Run:
        """The run ``run_id`` (or a unique prefix of at least 8 digits) if visible."""
        if not isinstance(run_id, str) or not 8 <= len(run_id) <= 32:
            raise RunNotFound(str(run_id))
        run = s.get(Run, run_id) if len(run_id) == 32 else None
        if run is None and len(run_id) < 32 and all(c in "0123456789abcdef" for c in run_id):
            found = s.exec(select(Run).where(col(Run.id).startswith(run_id)).limit(2)).all()
            run = found[0] if len(found) == 1 else None
        if run is None or not self._visible(s, run.id):
            raise RunNotFound(run_id)
        return run

    # -- reading -----------------------------------------------------------------------

    def get(self, run_id: str) -> RunRecord:
        with self.catalog.session() as s:
            return run_to_record(s, self._run(s, run_id), self.principal)

    def find(
        self,
        *,
        dataset: str | None = None,
        status: str | None = None,
        agent: str | None = None,
        batch: str | None = None,
        output_sha256: str | None = None,
        limit: int = 50,
        before: tuple[datetime, str] | None = None,
    ) -> list[RunRecord]:
        """Visible runs, newest first, filtered; ``before`` is the (started, id) of the
        last run of the previous page."""
        q = select(Run)
        if dataset is not None:
            from nanorepo.storage import parse_ref

            acc, ver = parse_ref(dataset)
            sub = select(RunInput.run_id).where(RunInput.accession == acc)
            if ver is not None:
                sub = sub.where(RunInput.version == ver)
            q = q.where(col(Run.id).in_(sub))
        if status is not None:
            q = q.where(Run.status == status)
        if agent is not None:
            q = q.where(Run.agent == agent)
        if batch is not None:
            q = q.where(Run.batch_id == batch)
        if output_sha256 is not None:
            q = q.where(
                col(Run.id).in_(select(RunOutput.run_id).where(RunOutput.sha256 == output_sha256))
            )
        if before is not None:
            started, rid = before
            q = q.where(
                (col(Run.started) < started) | ((col(Run.started) == started) & (col(Run.id) < rid))
            )
        q = q.order_by(col(Run.started).desc(), col(Run.id).desc())
        out: list[RunRecord] = []
        with self.catalog.session() as s:
            offset = 0
            while len(out) < limit:
                rows = s.exec(q.offset(offset).limit(limit * 2)).all()
                if not rows:
                    break
                offset += len(rows)
                for r in rows:
                    if self._visible(s, r.id):
                        out.append(run_to_record(s, r, self.principal))
                        if len(out) == limit:
                            break
        return out

    def notebook(self, run_id: str) -> bytes:
        """The stored copy of the notebook a visible run executed, byte for byte."""
        with self.catalog.session() as s:
            sha = self._run(s, run_id).notebook_sha256
        return self.layout.run_notebook(sha).read_bytes()

    def output_path(self, run_id: str, name: str) -> tuple[RunOutput, Path]:
        """A registered output of a visible run and where it is stored."""
        with self.catalog.session() as s:
            run = self._run(s, run_id)
            out = s.exec(
                select(RunOutput).where(RunOutput.run_id == run.id, RunOutput.name == name)
            ).first()
        if out is None:
            raise RunNotFound(f"{run_id}/{name}", "run output")
        path = self.layout.run_dir(run.id) / check_relpath(name)
        return out, path

    def get_batch(self, batch_id: str) -> BatchRecord:
        with self.catalog.session() as s:
            b = s.get(RunBatch, batch_id) if isinstance(batch_id, str) else None
            if b is None:
                raise RunNotFound(str(batch_id), "batch")
            rec = _batch_to_record(s, b)
            if not all(self._visible(s, r["id"]) for r in rec.runs):
                raise RunNotFound(batch_id, "batch")
            return rec

    # -- writing -----------------------------------------------------------------------

    def begin(self, record: RunRecord, notebook: bytes) -> RunRecord:
        """Register a running run (idempotent for the same id and agent); store the
        notebook copy and the environment once per content."""
        from nanorepo.storage import sha256_hex

        if sha256_hex(notebook) != record.notebook.sha256:
            raise InvalidInput(
                f"the notebook sent for run {record.id} does not match its digest",
                hint="send the notebook's bytes exactly as executed",
            )
        nb_path = self.layout.run_notebook(record.notebook.sha256)
        if not nb_path.exists():
            write_atomic(nb_path, notebook)
        with self.catalog.session() as s:
            existing = s.get(Run, record.id)
            if existing is not None:
                if existing.agent != record.agent:
                    raise RunNotFound(record.id)
                return run_to_record(s, existing, self.principal)
            env = record.environment
            if env is not None and s.get(RunEnvironment, env.sha256) is None:
                doc = {k: v for k, v in _env_doc(env).items() if k != "host"}
                s.add(RunEnvironment(sha256=env.sha256, doc=doc))
            if record.batch is not None and s.get(RunBatch, record.batch) is None:
                raise RunNotFound(record.batch, "batch")
            if record.rerun_of is not None:
                self._run(s, record.rerun_of)
            s.add(
                Run(
                    id=record.id,
                    agent=record.agent,
                    status="running",
                    started=record.started,
                    notebook_name=record.notebook.name,
                    notebook_sha256=record.notebook.sha256,
                    notebook_size=record.notebook.size,
                    parameters=dict(record.parameters),
                    environment_sha256=env.sha256 if env is not None else None,
                    batch_id=record.batch,
                    item=record.item,
                    rerun_of=record.rerun_of,
                    host=env.host if env is not None else "",
                )
            )
            s.commit()
        return self.get(record.id)

    def finish(self, record: RunRecord, files: Mapping[str, Path]) -> RunRecord:
        """Publish a run's outputs (``files``: output name → file) and its final record.

        Every output the record lists must be among ``files`` with the stated digest;
        inputs must be dataset versions, images and files of this repository with the
        stated digests, visible to the principal. On any mismatch nothing changes.
        """
        if record.status not in FINAL:
            raise InvalidInput(f"a run ends {', '.join(FINAL)}, not {record.status!r}")
        with self.catalog.session() as s:
            run = self._run(s, record.id)
            if run.status != "running":
                if run.status == record.status:
                    return run_to_record(s, run, self.principal)  # a retried finish
                raise Conflict(f"run {run.id} already ended ({run.status})")
            if self.principal is not None and run.agent != self.principal.name:
                raise RunNotFound(record.id)
            inputs = self._check_inputs(s, record.inputs)
        names = {o.name for o in record.outputs}
        if len(names) != len(record.outputs):
            raise InvalidInput(f"run {record.id} lists an output twice")
        missing = names - set(files)
        if missing:
            raise InvalidInput(f"run {record.id}: no file for outputs {sorted(missing)}")
        final = self.layout.run_dir(record.id)
        if final.exists():  # left by a finish that crashed before its commit
            shutil.rmtree(final)
        if record.outputs:
            staging = self.layout.incoming / f"run-{record.id}.{os.getpid()}"
            if staging.exists():
                shutil.rmtree(staging)
            try:
                for o in record.outputs:
                    dst = staging / check_relpath(o.name)
                    dst.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(files[o.name], dst)
                    got = hash_file(dst)
                    if got.sha256 != o.sha256 or got.size != o.size:
                        raise InvalidInput(
                            f"run {record.id}: output {o.name!r} does not match its digest",
                            hint="it changed while the run was being recorded; run it again",
                        )
                publish_dir(staging, final, self.layout.incoming)
            except BaseException:
                shutil.rmtree(staging, ignore_errors=True)
                raise
        with self.catalog.session() as s:
            run = self._run(s, record.id)
            run.status = record.status
            run.ended = record.ended or utcnow()
            run.values = dict(record.values)
            run.error = _error_doc(record.error)
            _add_inputs(s, run.id, inputs)
            for o in record.outputs:
                s.add(
                    RunOutput(
                        run_id=run.id, name=o.name, sha256=o.sha256, size=o.size,
                        media_type=o.media_type, role=o.role,
                    )
                )  # fmt: skip
            s.add(run)
            s.commit()
            return run_to_record(s, run, self.principal)

    def _check_inputs(self, s: Session, inputs: Iterable[Input]) -> list[tuple[Input, int]]:
        """Each input with its dataset row id, after checking it exists (and is visible)
        with the digest the record states."""
        out: list[tuple[Input, int]] = []
        for i in inputs:
            ds = s.exec(select(DatasetRow).where(DatasetRow.accession == i.accession)).first()
            if ds is None or (self.principal is not None and not visible(s, self.principal, ds)):
                raise DatasetNotFound(i.accession)
            v = s.exec(
                select(Version).where(Version.dataset_id == ds.id, Version.number == i.version)
            ).first()
            if v is None:
                raise InvalidInput(f"run input {i.ref}: {i.accession} has no version {i.version}")
            if i.kind == "dataset":
                want: str | None = v.manifest_digest
            elif i.kind == "image":
                want = s.exec(
                    select(ImageRow.manifest_digest).where(
                        ImageRow.version_id == v.id, ImageRow.name == i.name
                    )
                ).first()
            elif i.kind == "file":
                want = s.exec(
                    select(FileRow.sha256).where(FileRow.version_id == v.id, FileRow.name == i.name)
                ).first()
            else:
                raise InvalidInput(f"run input {i.ref}: unknown kind {i.kind!r}")
            if want is None:
                raise InvalidInput(
                    f"run input {i.ref}: no such {i.kind} in {i.accession}@v{i.version}"
                )
            if want != i.sha256:
                raise InvalidInput(
                    f"run input {i.ref}: digest {i.sha256[:12]}… is not the stored {want[:12]}…",
                    hint="the run read something other than the published version",
                )
            out.append((i, ds.id or 0))
        return out

    def note_inputs(self, run_id: str, inputs: Sequence[Input]) -> RunRecord:
        """Record inputs a running run of the principal has read (reported as its journal
        notes them, before the notebook gets the data), after the same checks as
        :meth:`finish`: each exists, is visible to the principal, with the stored digest.
        Reporting one again changes nothing; on any error nothing is recorded."""
        if len(inputs) > MAX_NOTED:
            raise InvalidInput(
                f"{len(inputs)} inputs in one report; at most {MAX_NOTED}",
                hint="report inputs as the run reads them, a few at a time",
            )
        with self.catalog.session() as s:
            run = self._run(s, run_id)
            if self.principal is not None and run.agent != self.principal.name:
                raise RunNotFound(run_id)
            if run.status != "running":
                raise Conflict(
                    f"run {run.id} already ended ({run.status}): inputs are reported while it runs"
                )
            _add_inputs(s, run.id, self._check_inputs(s, inputs))
            s.commit()
            return run_to_record(s, run, self.principal)

    def interrupt(self, run_id: str) -> RunRecord | None:
        """Mark a running run interrupted (its process died); ``None`` if it had ended."""
        with self.catalog.session() as s:
            run = self._run(s, run_id)
            if run.status != "running":
                return None
            run.status = "interrupted"
            run.ended = utcnow()
            s.add(run)
            s.commit()
            return run_to_record(s, run, self.principal)

    def begin_batch(self, batch: BatchRecord) -> BatchRecord:
        """Create the batch, or return the existing one with the same key (to resume)."""
        with self.catalog.session() as s:
            existing = s.exec(select(RunBatch).where(RunBatch.key == batch.key)).first()
            if existing is not None:
                if existing.agent != batch.agent:
                    raise Conflict("another user's batch has the same key")
                existing.status = "running"
                s.add(existing)
                s.commit()
                return _batch_to_record(s, existing)
            if s.get(RunBatch, batch.id) is not None:
                raise Conflict(f"a batch {batch.id} exists already, doing something else")
            b = RunBatch(
                id=batch.id, key=batch.key, agent=batch.agent,
                notebook_name=batch.notebook.name, notebook_sha256=batch.notebook.sha256,
                notebook_size=batch.notebook.size, query=batch.query, per=batch.per,
                parameters=dict(batch.parameters), created=batch.created, status="running",
            )  # fmt: skip
            s.add(b)
            s.commit()
            return _batch_to_record(s, b)

    def finish_batch(self, batch_id: str, status: str) -> BatchRecord:
        with self.catalog.session() as s:
            b = s.get(RunBatch, batch_id)
            if b is None or (self.principal is not None and b.agent != self.principal.name):
                raise RunNotFound(batch_id, "batch")
            b.status = status
            s.add(b)
            s.commit()
            return _batch_to_record(s, b)

    def check_outputs(self, run_id: str, paths: Iterable[Path]) -> str:
        """The full id of run ``run_id`` after checking that every file under ``paths`` is
        one of its outputs (by SHA-256); a clear error naming the first that is not."""
        from nanorepo.storage import walk_files

        with self.catalog.session() as s:
            run = self._run(s, run_id)
            if run.status != "succeeded":
                raise InvalidInput(
                    f"run {run.id} {run.status}: only a succeeded run's outputs can be deposited"
                )
            digests = set(s.exec(select(RunOutput.sha256).where(RunOutput.run_id == run.id)))
        for top in paths:
            files = [top] if top.is_file() else list(walk_files(top))
            for f in files:
                if hash_file(f).sha256 not in digests:
                    raise InvalidInput(
                        f"{f} is not an output of run {run.id}",
                        hint="deposit exactly the files the run wrote (`nanorepo runs RUN` "
                        "lists them with their digests)",
                    )
        return run.id

    def add_derived(self, run_id: str, accession: str) -> None:
        """Record that ``accession`` was deposited from ``run_id``'s outputs."""
        with self.catalog.session() as s:
            run = self._run(s, run_id)
            ds = self.catalog.dataset(s, accession)
            if s.get(RunDerived, (run.id, ds.id)) is None:
                s.add(RunDerived(run_id=run.id, dataset_id=ds.id or 0))
                s.commit()

    # -- lineage -----------------------------------------------------------------------

    def lineage_runs(self, focus: str, *, max_runs: int = 500) -> tuple[list[RunRecord], list[str]]:
        """The visible runs upstream and downstream of ``focus`` (an accession with or
        without version, a run id or prefix, or an output's SHA-256) and the dataset
        versions they connect; used by :func:`nanorepo.provenance.lineage`."""
        from nanorepo.storage import parse_ref

        with self.catalog.session() as s:
            runs: dict[str, Run] = {}
            datasets: set[str] = set()
            down: list[tuple[str, int | None]] = []
            up_runs: list[str] = []
            if len(focus) == 64 and all(c in "0123456789abcdef" for c in focus):
                ids = s.exec(select(RunOutput.run_id).where(RunOutput.sha256 == focus)).all()
                if not ids:
                    raise RunNotFound(focus, "run output")
                up_runs.extend(ids)
                for rid in ids:
                    down.extend(self._derived_of(s, rid))
            elif focus.startswith("S-"):
                acc, ver = parse_ref(focus)
                ds = s.exec(select(DatasetRow).where(DatasetRow.accession == acc)).first()
                if ds is None or (
                    self.principal is not None and not visible(s, self.principal, ds)
                ):
                    raise DatasetNotFound(acc)
                down.append((acc, ver))
                up_runs.extend(
                    s.exec(select(RunDerived.run_id).where(RunDerived.dataset_id == ds.id)).all()
                )
            else:
                run = self._run(s, focus)
                up_runs.append(run.id)
                down.extend(self._derived_of(s, run.id))
            # upstream: runs that made the focus, the datasets they read, the runs that
            # made those, ...
            seen_up: set[str] = set()
            while up_runs and len(runs) < max_runs:
                rid = up_runs.pop()
                if rid in seen_up:
                    continue
                seen_up.add(rid)
                r = s.get(Run, rid)
                if r is None or not self._visible(s, rid):
                    continue
                runs[rid] = r
                for acc in s.exec(
                    select(RunInput.accession).where(RunInput.run_id == rid).distinct()
                ).all():
                    datasets.add(acc)
                    ds = s.exec(select(DatasetRow).where(DatasetRow.accession == acc)).first()
                    if ds is not None:
                        up_runs.extend(
                            s.exec(
                                select(RunDerived.run_id).where(RunDerived.dataset_id == ds.id)
                            ).all()
                        )
            # downstream: runs that read the focus, datasets derived from their outputs, ...
            seen_down: set[tuple[str, int | None]] = set()
            while down and len(runs) < max_runs:
                acc, ver = down.pop()
                if (acc, ver) in seen_down:
                    continue
                seen_down.add((acc, ver))
                datasets.add(acc)
                q = select(RunInput.run_id).where(RunInput.accession == acc)
                if ver is not None:
                    q = q.where(RunInput.version == ver)
                for rid in s.exec(q.distinct()).all():
                    if rid in runs or not self._visible(s, rid):
                        continue
                    r = s.get(Run, rid)
                    if r is None:
                        continue
                    runs[rid] = r
                    down.extend(self._derived_of(s, rid))
            records = [run_to_record(s, r, self.principal) for r in runs.values()]
        records.sort(key=lambda r: (r.started, r.id))
        return records, sorted(datasets)

    def _derived_of(self, s: Session, run_id: str) -> list[tuple[str, int | None]]:
        return [(a, None) for a in _derived_accessions(s, run_id, self.principal)]

    def crate_file(self, runs: Sequence[RunRecord], run_id: str, name: str) -> Path | None:
        """Where the stored file behind a crate entry is (``write_crate``'s ``files``): the
        notebook copy for ``notebook.ipynb``, else the run's output; ``None`` for a run not
        in ``runs``."""
        rec = next((r for r in runs if r.id == run_id), None)
        if rec is None:
            return None
        if name == "notebook.ipynb":
            return self.layout.run_notebook(rec.notebook.sha256)
        return self.layout.run_dir(rec.id) / check_relpath(name)

    def lineage(self, focus: str) -> Lineage:
        """Upstream and downstream of ``focus`` (``ACCESSION[@vN]``, a run id or prefix, or
        an output's SHA-256) as the principal may see it, ready for the exports."""
        from nanorepo.provenance._prov import lineage_of

        runs, _datasets = self.lineage_runs(focus)
        if not runs:  # a dataset no run has read or produced yet: just itself
            node = LineageNode(id=focus, kind="dataset", label=focus)
            return Lineage(focus=focus, nodes=(node,), edges=())
        return lineage_of(runs, self.batches_of(runs), focus=focus)

    def batches_of(self, runs: Sequence[RunRecord]) -> list[BatchRecord]:
        ids = sorted({r.batch for r in runs if r.batch})
        out = []
        with self.catalog.session() as s:
            for i in ids:
                b = s.get(RunBatch, i)
                if b is not None:
                    out.append(_batch_to_record(s, b))
        return out


def _add_inputs(s: Session, run_id: str, inputs: Iterable[tuple[Input, int]]) -> None:
    """Add checked inputs (with their dataset row ids) to a run, except those it has."""
    have = {
        (r.kind, r.accession, r.version, r.name)
        for r in s.exec(select(RunInput).where(RunInput.run_id == run_id))
    }
    for i, ds_id in inputs:
        key = (i.kind, i.accession, i.version, i.name)
        if key in have:
            continue
        have.add(key)
        s.add(
            RunInput(
                run_id=run_id, dataset_id=ds_id, kind=i.kind, accession=i.accession,
                version=i.version, name=i.name, sha256=i.sha256,
            )
        )  # fmt: skip


def _env_doc(env: Environment) -> dict[str, Any]:
    from dataclasses import asdict

    d = asdict(env)
    d["kernel"] = dict(env.kernel)
    d["packages"] = dict(env.packages)
    return d


def _error_doc(err: RunError | None) -> dict[str, Any] | None:
    if err is None:
        return None
    return {
        "ename": err.ename,
        "evalue": err.evalue,
        "traceback": list(err.traceback),
        "cell": err.cell,
    }
