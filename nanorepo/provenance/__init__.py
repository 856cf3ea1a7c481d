"""Analyses with provenance: papermill runs recorded as W3C PROV shaped records.

:func:`run` executes a notebook and records what produced its result (inputs opened through
``nanorepo.open``, parameters, environment, outputs with digests); :func:`run_batch` runs one
notebook over every dataset or image a query matches, resumably; :func:`rerun` repeats a
run and reports whether it reproduces. :class:`Runs` keeps the records in the repository.
"""

from __future__ import annotations

from nanorepo.provenance._batch import batch_items, run_batch
from nanorepo.provenance._environment import capture_environment, diff_environments
from nanorepo.provenance._record import (
    BatchRecord,
    Environment,
    Input,
    Lineage,
    LineageEdge,
    LineageNode,
    NotebookRef,
    Output,
    RunError,
    RunRecord,
)
from nanorepo.provenance._rerun import REPORT_NAME, Reproducibility, compare_runs, rerun
from nanorepo.provenance._runner import load_notebook, run, store_for, sweep
from nanorepo.provenance._store import Runs, RunStore

__all__ = [
    "REPORT_NAME",
    "BatchRecord",
    "Environment",
    "Input",
    "Lineage",
    "LineageEdge",
    "LineageNode",
    "NotebookRef",
    "Output",
    "Reproducibility",
    "RunError",
    "RunRecord",
    "RunStore",
    "Runs",
    "batch_items",
    "capture_environment",
    "compare_runs",
    "diff_environments",
    "load_notebook",
    "rerun",
    "run",
    "run_batch",
    "store_for",
    "sweep",
]
