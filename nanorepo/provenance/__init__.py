"""Analyses with provenance: papermill runs recorded as W3C PROV shaped records.

:func:`run` executes a notebook and records what produced its result (inputs opened through
``nanorepo.open``, parameters, environment, outputs with digests); :func:`run_batch` runs one
notebook over every dataset or image a query matches, resumably; :func:`rerun` repeats a
run and reports whether it reproduces. :class:`Runs` keeps the records in the repository;
:func:`to_prov`, :func:`write_crate` and :func:`lineage_dot` export them as W3C PROV,
RO-Crate (Workflow/Process Run Crate) and Graphviz.
"""

from __future__ import annotations

from nanorepo.provenance._batch import batch_items, run_batch
from nanorepo.provenance._crate import write_crate
from nanorepo.provenance._environment import capture_environment, diff_environments
from nanorepo.provenance._graph import lineage_dot, lineage_tree, render_svg
from nanorepo.provenance._prov import (
    DEFAULT_NAMESPACE,
    lineage_of,
    namespace_uri,
    node_path,
    prov_json,
    prov_jsonschema,
    prov_n,
    to_prov,
)
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
    "DEFAULT_NAMESPACE",
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
    "lineage_dot",
    "lineage_of",
    "lineage_tree",
    "load_notebook",
    "namespace_uri",
    "node_path",
    "prov_json",
    "prov_jsonschema",
    "prov_n",
    "render_svg",
    "rerun",
    "run",
    "run_batch",
    "store_for",
    "sweep",
    "to_prov",
    "write_crate",
]
