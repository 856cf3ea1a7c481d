"""Realistic run records for the export tests: a batch of two runs (one failed), a dataset
deposited from an output, a run downstream of it, and names a hostile user might choose.

Digests are real SHA-256 of the bytes the tests write as stored files, so a crate that
includes them can be checked byte for byte.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from nanorepo.provenance._record import (
    BatchRecord,
    Environment,
    Input,
    NotebookRef,
    Output,
    RunError,
    RunRecord,
)

T0 = datetime(2025, 3, 14, 9, 26, 53, tzinfo=UTC)
RUN_A = "3f2a9c0d4b6e48f1a7c2d5e8f0b1c3d4"
RUN_B = "8e1d2c3b4a5968778695a4b3c2d1e0f9"
RUN_C = "c0ffee00d15ea5e0b0bafe11deadbeef"
BATCH = "b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2"

NOTEBOOK = json.dumps(
    {
        "cells": [
            {
                "cell_type": "code",
                "metadata": {"tags": ["parameters"]},
                "source": "threshold = 0.3",
            },
            {"cell_type": "code", "metadata": {}, "source": "import nanorepo"},
        ],
        "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3"}},
        "nbformat": 4,
        "nbformat_minor": 5,
    },
    indent=1,
).encode()
FRC_NOTEBOOK = NOTEBOOK.replace(b"threshold = 0.3", b"bins = 64")
RINGS_CSV = b"ring,x_nm,y_nm,diameter_nm\n0,1203.5,811.0,106.2\n1,1480.1,934.7,108.9\n"
HISTOGRAM_PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4
EXECUTED = NOTEBOOK.replace(b'"metadata": {}', b'"metadata": {"papermill": {}}')
FAILED_EXECUTED = EXECUTED.replace(b"import nanorepo", b"1 / 0")
FRC_JSON = b'{"resolution_nm": 41.7, "threshold": "1/7"}'


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def nb_ref(name: str, data: bytes) -> NotebookRef:
    return NotebookRef(name=name, sha256=sha(data), size=len(data))


PACKAGES = {
    "numpy": "2.2.6",
    "zarr": "3.1.6",
    "dask": "2025.5.1",
    "xarray": "2025.4.0",
    "scipy": "1.15.3",
    "nanorepo": "0.4.0",
    "papermill": "2.6.0",
}
ENV = Environment(
    sha256=sha(json.dumps(PACKAGES, sort_keys=True).encode() + b"cpython-3.11.12"),
    python="3.11.12",
    implementation="CPython",
    platform="Linux-6.1.0-x86_64-with-glibc2.36",
    kernel={"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"},
    packages=PACKAGES,
    packages_sha256=sha(json.dumps(PACKAGES, sort_keys=True).encode()),
    image="registry.example.org/nanorepo/singleuser:2025.03",
    host="jupyter-carol",
)

MANIFEST_V2 = sha(b"manifest of S-NANO1 version 2")
MANIFEST_S5 = sha(b"manifest of S-NANO5 version 1")
ANSI_TRACEBACK = (
    "\x1b[0;31m---------------------------------------------------------------------------\x1b[0m",
    "\x1b[0;31mZeroDivisionError\x1b[0m                         Traceback (most recent call last)",
    "Cell \x1b[0;32mIn[3], line 1\x1b[0m\n\x1b[0;32m----> 1\x1b[0m \x1b[38;5;241m1\x1b[39m / 0",
    "\x1b[0;31mZeroDivisionError\x1b[0m: division by zero",
)


@dataclass
class Sample:
    """Records plus the stored bytes of every file a crate may include."""

    runs: list[RunRecord]
    batches: list[BatchRecord]
    stored: dict[tuple[str, str], bytes] = field(default_factory=dict)

    def files(self, root: Path):  # the ``files`` callback of write_crate, over real files
        def lookup(run_id: str, name: str) -> Path | None:
            data = self.stored.get((run_id, name))
            if data is None:
                return None
            path = root / run_id / hashlib.sha256(name.encode()).hexdigest()
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
            return path

        return lookup


def sample(
    *,
    image_name: str = "npc_sted",
    output_name: str = "rings.csv",
    agent: str = "carol",
    title: str = "rings",
) -> Sample:
    """The batch, its two runs, the derived dataset and the run downstream of it."""
    ring = nb_ref("ring_diameter.ipynb", NOTEBOOK)
    frc = nb_ref("frc_resolution.ipynb", FRC_NOTEBOOK)
    params = {"threshold": 0.35, "min_points": 12, "channels": [0, 1], "label": title}
    a = RunRecord(
        id=RUN_A,
        agent=agent,
        status="succeeded",
        started=T0,
        ended=T0 + timedelta(seconds=83, microseconds=250000),
        notebook=ring,
        parameters=params,
        inputs=(
            Input("dataset", "S-NANO1", 2, MANIFEST_V2),
            Input("image", "S-NANO1", 2, sha(b"image manifest " + image_name.encode()), image_name),
            Input("file", "S-NANO1", 2, sha(b"localisations"), "tables/locs.parquet"),
        ),
        outputs=(
            Output(output_name, sha(RINGS_CSV), len(RINGS_CSV), "text/csv"),
            Output(
                "figures/diameter histogram.png",
                sha(HISTOGRAM_PNG),
                len(HISTOGRAM_PNG),
                "image/png",
            ),
            Output(
                "ring_diameter.ipynb",
                sha(EXECUTED),
                len(EXECUTED),
                "application/x-ipynb+json",
                "executed-notebook",
            ),
        ),
        values={"mean_diameter_nm": 107.55, "rings": 2},
        environment=ENV,
        batch=BATCH,
        item=f"S-NANO1@v2/{image_name}",
        derived=("S-NANO5",),
    )
    b = RunRecord(
        id=RUN_B,
        agent=agent,
        status="failed",
        started=T0 + timedelta(seconds=90),
        ended=T0 + timedelta(seconds=97),
        notebook=ring,
        parameters=params,
        inputs=(Input("image", "S-NANO1", 2, sha(b"image manifest npc_confocal"), "npc_confocal"),),
        outputs=(
            Output(
                "ring_diameter.ipynb",
                sha(FAILED_EXECUTED),
                len(FAILED_EXECUTED),
                "application/x-ipynb+json",
                "executed-notebook",
            ),
        ),
        environment=ENV,
        error=RunError("ZeroDivisionError", "division by zero", ANSI_TRACEBACK, cell=1),
        batch=BATCH,
        item="S-NANO1@v2/npc_confocal",
    )
    c = RunRecord(
        id=RUN_C,
        agent="bob",
        status="succeeded",
        started=T0 + timedelta(days=2),
        ended=T0 + timedelta(days=2, seconds=12),
        notebook=frc,
        parameters={"bins": 64},
        inputs=(Input("dataset", "S-NANO5", 1, MANIFEST_S5),),
        outputs=(Output("frc.json", sha(FRC_JSON), len(FRC_JSON), "application/json"),),
        environment=ENV,
    )
    batch = BatchRecord(
        id=BATCH,
        key=sha(b"batch key"),
        agent=agent,
        notebook=ring,
        query="technique:STED",
        per="image",
        parameters=params,
        created=T0 - timedelta(seconds=2),
        status="failed",
        runs=(
            {"id": RUN_A, "item": a.item or "", "status": "succeeded"},
            {"id": RUN_B, "item": b.item or "", "status": "failed"},
        ),
    )
    stored = {
        (RUN_A, "notebook.ipynb"): NOTEBOOK,
        (RUN_B, "notebook.ipynb"): NOTEBOOK,
        (RUN_C, "notebook.ipynb"): FRC_NOTEBOOK,
        (RUN_A, output_name): RINGS_CSV,
        (RUN_A, "figures/diameter histogram.png"): HISTOGRAM_PNG,
        (RUN_A, "ring_diameter.ipynb"): EXECUTED,
        (RUN_B, "ring_diameter.ipynb"): FAILED_EXECUTED,
        (RUN_C, "frc.json"): FRC_JSON,
    }
    return Sample([a, b, c], [batch], stored)


HOSTILE_IMAGE = 'cell "1" (a), b=2; [x]: <img src=x onerror=alert(1)> \\ é.'
HOSTILE_OUTPUT = "out put/\"quoted\" 'single' %41 \\ tab\there (1).csv."
UNSAFE_OUTPUT = "../escape.csv"
HOSTILE_AGENT = 'o\'brien "the" <admin> & {root}'
HOSTILE_TITLE = 'He said "hi" \\ then\nleft; ) ] } -- %% \x1b[31mred\x1b[0m \x07'
