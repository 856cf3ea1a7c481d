"""Runs through the service: the run methods of the client, and :class:`RemoteRuns`, the
run store a user server records its runs in (its storage is read-only; the service is the
only writer).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from urllib.parse import quote

from nanorepo.client._base import ClientBase, Json, Pages
from nanorepo.errors import InvalidInput
from nanorepo.provenance import BatchRecord, Input, Lineage, RunRecord

__all__ = ["RemoteRuns", "RunMethods"]


def _path(name: str) -> str:
    """An output name (a relative POSIX path) as URL path segments."""
    return "/".join(quote(part, safe="") for part in name.split("/"))


class RunMethods(ClientBase):
    """The run and batch methods of :class:`nanorepo.Client`."""

    def runs(
        self,
        *,
        dataset: str | None = None,
        status: str | None = None,
        agent: str | None = None,
        batch: str | None = None,
        output_sha256: str | None = None,
        page_size: int = 50,
    ) -> Pages:
        """Runs the caller may see, newest first, filtered (``dataset``: runs that read
        ``ACCESSION[@vN]``; ``output_sha256``: runs that wrote that file)."""
        params = [("dataset", dataset), ("status", status), ("agent", agent),
                  ("batch", batch), ("output_sha256", output_sha256)]  # fmt: skip
        return self._pages("/runs", params, limit=page_size)

    def run_record(self, run_id: str) -> RunRecord:
        """A run's record (an id prefix of at least 8 digits works)."""
        return RunRecord.from_json(self._json("GET", f"/runs/{quote(run_id, safe='')}"))

    def run_notebook(self, run_id: str) -> bytes:
        """The notebook a run executed, byte for byte."""
        return self._request("GET", f"/runs/{quote(run_id, safe='')}/notebook").content

    def run_output(self, run_id: str, name: str, dest: str | Path | None = None) -> bytes | Path:
        """An output of a run, as bytes or written to ``dest``."""
        r = self._request("GET", f"/runs/{quote(run_id, safe='')}/outputs/{_path(name)}")
        if dest is None:
            return r.content
        target = Path(dest)
        target.write_bytes(r.content)
        return target

    def lineage(
        self, focus: str, *, fmt: str = "json", output: str | None = None
    ) -> Lineage | bytes:
        """Upstream and downstream of a dataset (``ACCESSION[@vN]``) or a run (id or
        prefix; ``output`` focuses on one of its outputs). ``fmt`` ``json`` gives a
        :class:`~nanorepo.provenance.Lineage`; ``prov-json``, ``provn``, ``dot``, ``svg``
        the export's bytes."""
        if focus.startswith("S-"):
            path = f"/datasets/{quote(focus, safe='@')}/lineage"
        else:
            path = f"/runs/{quote(focus, safe='')}/lineage"
        params = {"format": fmt, **({"output": output} if output else {})}
        r = self._request("GET", path, params=params)
        return Lineage.from_json(r.json()) if fmt == "json" else r.content

    def run_crate(self, run_id: str) -> bytes:
        """A run as an RO-Crate zip (record, notebook, outputs)."""
        return self._request(
            "GET", f"/runs/{quote(run_id, safe='')}/crate", timeout=self._long()
        ).content

    def batch(self, batch_id: str) -> BatchRecord:
        return BatchRecord.from_json(self._json("GET", f"/batches/{quote(batch_id, safe='')}"))


class RemoteRuns:
    """A :class:`~nanorepo.provenance.RunStore` backed by the service (``POST /runs``...).

    ``begin`` sends the notebook and environment; ``finish`` uploads each output, then
    ends the run; the service checks every digest and publishes all or nothing.
    """

    def __init__(self, client: RunMethods) -> None:
        self.client = client

    def close(self) -> None:
        self.client.close()

    def begin(self, record: RunRecord, notebook: bytes) -> RunRecord:
        d = record.to_json()
        try:
            text = notebook.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidInput(f"{record.notebook.name} is not UTF-8 text") from None
        body = {
            "id": record.id,
            "notebook": d["notebook"],
            "notebook_text": text,
            "parameters": d["parameters"],
            "started": d["started"],
            "environment": d["environment"],
            "batch": record.batch,
            "item": record.item,
            "rerun_of": record.rerun_of,
        }
        return RunRecord.from_json(self.client._json("POST", "/runs", json=body))

    def finish(self, record: RunRecord, files: Mapping[str, Path]) -> RunRecord:
        base = f"/runs/{record.id}"
        for o in record.outputs:
            with open(files[o.name], "rb") as f:
                self.client._request(
                    "PUT", f"{base}/outputs/{_path(o.name)}", content=f,
                    headers={"Content-Type": "application/octet-stream"},
                    timeout=self.client._long(),
                )  # fmt: skip
        d = record.to_json()
        body: Json = {k: d[k] for k in ("status", "ended", "inputs", "outputs", "values", "error")}
        return RunRecord.from_json(self.client._json("POST", f"{base}/finish", json=body))

    def note_inputs(self, run_id: str, inputs: Sequence[Input]) -> RunRecord:
        """Report inputs a running run read (the kernel's journal does this per input)."""
        body = {"inputs": [asdict(i) for i in inputs]}
        d = self.client._json("POST", f"/runs/{quote(run_id, safe='')}/inputs", json=body)
        return RunRecord.from_json(d)

    def interrupt(self, run_id: str) -> RunRecord | None:
        d = self.client._json("POST", f"/runs/{quote(run_id, safe='')}/interrupt")
        return RunRecord.from_json(d)

    def get(self, run_id: str) -> RunRecord:
        return self.client.run_record(run_id)

    def notebook(self, run_id: str) -> bytes:
        return self.client.run_notebook(run_id)

    def begin_batch(self, batch: BatchRecord) -> BatchRecord:
        d = batch.to_json()
        body = {k: d[k] for k in ("id", "key", "notebook", "query", "per", "parameters", "created")}
        return BatchRecord.from_json(self.client._json("POST", "/batches", json=body))

    def finish_batch(self, batch_id: str, status: str) -> BatchRecord:
        d = self.client._json("POST", f"/batches/{batch_id}/finish", json={"status": status})
        return BatchRecord.from_json(d)
