"""Analyses with provenance: papermill runs recorded as W3C PROV shaped records.

:func:`run` executes a notebook and records what produced its result (inputs opened through
``nanorepo.open``, parameters, environment, outputs with digests); :func:`run_batch` runs one
notebook over every dataset or image a query matches, resumably; :func:`rerun` repeats a
run and reports whether it reproduces. :class:`Runs` keeps the records in the repository;
:func:`to_prov`, :func:`write_crate` and :func:`lineage_dot` export them as W3C PROV,
RO-Crate (Workflow/Process Run Crate) and Graphviz.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nanorepo.provenance._batch import run_batch
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
    from nanorepo.provenance._runner import load_notebook, run, sweep
    from nanorepo.provenance._store import Runs, RunStore

# Submodules load on first use: the client needs only the records, and the exports pull in
# prov and rocrate; `import nanorepo.provenance` stays cheap.
_WHERE = {
    "BatchRecord": "nanorepo.provenance._record",
    "DEFAULT_NAMESPACE": "nanorepo.provenance._prov",
    "Environment": "nanorepo.provenance._record",
    "Input": "nanorepo.provenance._record",
    "Lineage": "nanorepo.provenance._record",
    "LineageEdge": "nanorepo.provenance._record",
    "LineageNode": "nanorepo.provenance._record",
    "NotebookRef": "nanorepo.provenance._record",
    "Output": "nanorepo.provenance._record",
    "REPORT_NAME": "nanorepo.provenance._rerun",
    "Reproducibility": "nanorepo.provenance._rerun",
    "RunError": "nanorepo.provenance._record",
    "RunRecord": "nanorepo.provenance._record",
    "RunStore": "nanorepo.provenance._store",
    "Runs": "nanorepo.provenance._store",
    "capture_environment": "nanorepo.provenance._environment",
    "compare_runs": "nanorepo.provenance._rerun",
    "diff_environments": "nanorepo.provenance._environment",
    "lineage_dot": "nanorepo.provenance._graph",
    "lineage_of": "nanorepo.provenance._prov",
    "lineage_tree": "nanorepo.provenance._graph",
    "load_notebook": "nanorepo.provenance._runner",
    "namespace_uri": "nanorepo.provenance._prov",
    "node_path": "nanorepo.provenance._prov",
    "prov_json": "nanorepo.provenance._prov",
    "prov_jsonschema": "nanorepo.provenance._prov",
    "prov_n": "nanorepo.provenance._prov",
    "render_svg": "nanorepo.provenance._graph",
    "rerun": "nanorepo.provenance._rerun",
    "run": "nanorepo.provenance._runner",
    "run_batch": "nanorepo.provenance._batch",
    "sweep": "nanorepo.provenance._runner",
    "to_prov": "nanorepo.provenance._prov",
    "write_crate": "nanorepo.provenance._crate",
}

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
    "sweep",
    "to_prov",
    "write_crate",
]


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(import_module(_WHERE[name]), name)
    raise AttributeError(f"module 'nanorepo.provenance' has no attribute {name!r}")
