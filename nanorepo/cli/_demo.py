"""Deposit the reference demo datasets (synthetic nanoscopy with known ground truth)."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from nanorepo.repository import Repository

__all__ = ["deposit_demo"]


def deposit_demo(
    repo: Repository, *, progress: Callable[[str], None] | None = None
) -> list[dict[str, Any]]:
    """Generate the demo datasets and deposit those not yet in the repository.

    A demo dataset counts as present when a dataset with its title exists, so running
    this twice deposits nothing the second time.
    """
    from nanorepo.samples import demo_datasets

    existing: dict[str, str] = {}
    offset = 0
    while True:
        rows, total = repo.list_datasets(offset=offset, limit=1000)
        existing.update({r["title"]: r["accession"] for r in rows})
        offset += len(rows)
        if not rows or offset >= total:
            break
    results = []
    # The generated files are deposited from a private folder in the repository's staging
    # area, and only from there: the deposit is confined to what the demo wrote, whatever
    # NANOREPO_ALLOWED_ROOTS says the operator's other deposits may come from.
    repo.settings.staging.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="demo-", dir=repo.settings.staging) as tmp:
        depositor = repo.acting_as(repo.settings.user, allowed_roots=(Path(tmp).resolve(),))
        for demo in demo_datasets(Path(tmp)):
            if demo.title in existing:
                results.append(
                    {"accession": existing[demo.title], "title": demo.title, "existing": True}
                )
                continue
            meta = Path(tmp) / f"metadata-{len(results)}.yaml"
            meta.write_text(yaml.safe_dump(demo.metadata, sort_keys=False))
            if progress:
                progress(f"depositing {demo.title!r}")
            res = depositor.deposit(
                list(demo.inputs),
                title=demo.title,
                metadata=meta,
                embargo_until=demo.embargo_until,
                supporting=list(demo.ground_truth),
                progress=progress,
            )
            results.append({"accession": res.accession, "title": demo.title, "existing": False})
    return results
