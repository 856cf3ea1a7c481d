"""``nanorepo rerun RUN``: execute a run again and report whether it reproduces.

The re-run uses the stored copy of the notebook (by digest), the parameters as they were
injected, and the same input versions: bare accessions the notebook opens resolve to the
versions the original run read (``NANOREPO_RUN_PINS``), not to newer ones. It is itself a
run (``rerun_of`` the original), in the current environment.

The reproducibility report compares

- output files by SHA-256 (the executed notebook aside: its timings always differ),
- values the notebook recorded with :func:`nanorepo.record`, numerically within
  ``rtol``/``atol`` (as :func:`math.isclose`, element by element for lists and dicts),
- inputs (the digests of what was read) and the environment (:func:`diff_environments`),

and gives a verdict: ``identical`` (every file and value the same), ``equal within
tolerance`` (values all within tolerance; files that differ are listed), or ``different``
(a value out of tolerance, a file or value missing or added, files differing with no
recorded values to judge by, or the re-run failed). The report is written into the
re-run's output directory as ``reproducibility.json`` before its outputs are published, so
it is one of the re-run's recorded outputs.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nanorepo.provenance._environment import diff_environments
from nanorepo.provenance._record import RunRecord
from nanorepo.provenance._runner import run
from nanorepo.provenance._store import RunStore
from nanorepo.settings import Settings

__all__ = ["REPORT_NAME", "Reproducibility", "compare_runs", "rerun"]

REPORT_NAME = "reproducibility.json"


@dataclass(frozen=True)
class Reproducibility:
    """The comparison of a run (``original``) and its re-run (``rerun``)."""

    original: str
    rerun: str
    verdict: str  # identical | equal within tolerance | different
    rerun_status: str
    rtol: float
    atol: float
    files: Mapping[str, Any] = field(default_factory=dict)
    values: Mapping[str, Any] = field(default_factory=dict)
    inputs: Mapping[str, Any] = field(default_factory=dict)
    environment: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "original": self.original,
            "rerun": self.rerun,
            "verdict": self.verdict,
            "rerun_status": self.rerun_status,
            "tolerance": {"rtol": self.rtol, "atol": self.atol},
            "files": dict(self.files),
            "values": dict(self.values),
            "inputs": dict(self.inputs),
            "environment": dict(self.environment),
        }


def _number(v: Any) -> float | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, int | float):
        return float(v)
    if v in ("NaN", "Infinity", "-Infinity"):
        return float(v.replace("Infinity", "inf"))
    return None


def _close(a: Any, b: Any, rtol: float, atol: float) -> tuple[bool, bool]:
    """(equal exactly, equal within tolerance) for recorded values."""
    if a == b:
        return True, True
    na, nb = _number(a), _number(b)
    if na is not None and nb is not None:
        if math.isnan(na) and math.isnan(nb):
            return True, True
        return False, math.isclose(na, nb, rel_tol=rtol, abs_tol=atol)
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        pairs = [_close(x, y, rtol, atol) for x, y in zip(a, b, strict=True)]
        return all(p[0] for p in pairs), all(p[1] for p in pairs)
    if isinstance(a, dict) and isinstance(b, dict) and a.keys() == b.keys():
        pairs = [_close(a[k], b[k], rtol, atol) for k in a]
        return all(p[0] for p in pairs), all(p[1] for p in pairs)
    return False, False


def compare_runs(
    original: RunRecord, again: RunRecord, *, rtol: float = 1e-6, atol: float = 0.0
) -> Reproducibility:
    """Compare two runs of the same notebook (see the module docstring)."""

    def files_of(r: RunRecord) -> dict[str, str]:
        return {
            o.name: o.sha256
            for o in r.outputs
            if o.role != "executed-notebook" and o.name != REPORT_NAME
        }

    fa, fb = files_of(original), files_of(again)
    files = {
        "identical": sorted(n for n in fa.keys() & fb.keys() if fa[n] == fb[n]),
        "differ": sorted(n for n in fa.keys() & fb.keys() if fa[n] != fb[n]),
        "missing": sorted(fa.keys() - fb.keys()),
        "added": sorted(fb.keys() - fa.keys()),
    }
    va, vb = dict(original.values), dict(again.values)
    values: dict[str, Any] = {"equal": [], "within_tolerance": {}, "differ": {}}
    for name in sorted(va.keys() & vb.keys()):
        exact, close = _close(va[name], vb[name], rtol, atol)
        if exact:
            values["equal"].append(name)
        elif close:
            values["within_tolerance"][name] = [va[name], vb[name]]
        else:
            values["differ"][name] = [va[name], vb[name]]
    values["missing"] = sorted(va.keys() - vb.keys())
    values["added"] = sorted(vb.keys() - va.keys())
    ia = {i.ref: i.sha256 for i in original.inputs}
    ib = {i.ref: i.sha256 for i in again.inputs}
    inputs = {
        "same": sorted(k for k in ia.keys() & ib.keys() if ia[k] == ib[k]),
        "differ": sorted(k for k in ia.keys() & ib.keys() if ia[k] != ib[k]),
        "missing": sorted(ia.keys() - ib.keys()),
        "added": sorted(ib.keys() - ia.keys()),
    }
    broken = (
        again.status != "succeeded"
        or files["missing"]
        or files["added"]
        or values["differ"]
        or values["missing"]
        or values["added"]
    )
    if broken:
        verdict = "different"
    elif not files["differ"] and not values["within_tolerance"]:
        verdict = "identical"
    elif values["equal"] or values["within_tolerance"]:
        verdict = "equal within tolerance"
    else:
        verdict = "different"  # files differ and no recorded value says by how little
    return Reproducibility(
        original=original.id,
        rerun=again.id,
        verdict=verdict,
        rerun_status=again.status,
        rtol=rtol,
        atol=atol,
        files=files,
        values=values,
        inputs=inputs,
        environment=diff_environments(original.environment, again.environment),
    )


def rerun(
    run_id: str,
    *,
    output_dir: str | os.PathLike[str] | None = None,
    rtol: float = 1e-6,
    atol: float = 0.0,
    settings: Settings | None = None,
    store: RunStore,
) -> tuple[RunRecord, Reproducibility]:
    """Execute run ``run_id`` again (same notebook, parameters, input versions) in the
    current environment; return the new run and the reproducibility report. ``store`` holds
    the original and receives the new record (``nanorepo.connection.rerun`` hands in the
    one of the repository this process reaches)."""
    settings = settings or Settings.from_env()
    original = store.get(run_id)
    nb = store.notebook(original.id)
    params = dict(original.parameters)
    params.pop("output_dir", None)  # the re-run writes to its own directory
    pins = tuple(sorted({f"{i.accession}@v{i.version}" for i in original.inputs}))
    with tempfile.TemporaryDirectory(prefix="nanorepo-rerun-") as tmp:
        nb_path = Path(tmp) / original.notebook.name
        nb_path.write_bytes(nb)

        def report(record: RunRecord) -> dict[str, bytes]:
            rep = compare_runs(original, record, rtol=rtol, atol=atol)
            return {REPORT_NAME: json.dumps(rep.to_json(), indent=2).encode()}

        again = run(
            nb_path, params, output_dir=output_dir, settings=settings, store=store,
            rerun_of=original.id, pins=pins, before_finish=report,
            kernel=(original.environment.kernel.get("name") if original.environment else None),
        )  # fmt: skip
    return again, compare_runs(original, again, rtol=rtol, atol=atol)
