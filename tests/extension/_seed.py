"""Data the extension's tests need beyond the seeded repository: a public dataset of many
small images with file-level key/value metadata (condition, well), for the image table's
filters and sort and the code cell's printed shape. The images are nuclear pores rendered
by :mod:`nanorepo.samples` (STED and confocal channels), so the screenshots the UI tests
take show what the repository is for.

:func:`record_provenance` adds the runs of the Provenance tab on that dataset: a real
``nanorepo.run`` of ``notebooks/analyses/intensity_statistics.ipynb`` (executed notebook,
CSV and JSON outputs), and, recorded through the provenance store the way the runner
records them, a smoothing run whose output was deposited as a derived dataset, a failed
run with its error, and a comparison run that also read the embargoed dataset nobody
granted bob (so bob must not see it)."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import tifffile
import yaml

from nanorepo.samples import nuclear_pores, render

#: Every image: 2 channels of 64 x 48 pixels (what the code cell prints).
SHAPE = (2, 64, 48)


@dataclass(frozen=True)
class ImageDataset:
    """The deposited dataset: accession, image names, how many are ``treated``."""

    accession: str
    images: tuple[str, ...]
    treated: int

    def seed(self, seeded: Any, provenance: Provenance | None = None) -> dict[str, Any]:
        """What the browser and jest tests are told (``NANOREPO_TEST_SEED``)."""
        prov = {} if provenance is None else {"provenance": provenance.seed()}
        return {
            **prov,
            "public": seeded.public,
            "granted": seeded.granted,
            "hidden": seeded.hidden,
            "images": self.accession,
            "image_count": len(self.images),
            "treated": self.treated,
            "shape": list(SHAPE),
        }


def deposit_image_dataset(repo: Any, workdir: Path, *, count: int = 12) -> ImageDataset:
    """Deposit (as the repository's user) a public dataset of ``count`` images; every third
    one is ``condition: treated``, wells A01, A02, ... in reverse name order."""
    workdir.mkdir(parents=True, exist_ok=True)
    paths, per_image = [], {}
    names = tuple(f"img{i:02d}" for i in range(count))
    for i, name in enumerate(names):
        path = workdir / f"{name}.ome.tif"
        pores = nuclear_pores((20.0 * SHAPE[2], 20.0 * SHAPE[1], 100.0), seed=i,
                              density_per_um2=12.0)  # fmt: skip
        data = np.stack([render(pores, m, SHAPE[1:], pixel_size_nm=20.0, seed=i)
                         for m in ("STED", "confocal")])  # fmt: skip
        tifffile.imwrite(
            path, data, ome=True, photometric="minisblack",
            metadata={"axes": "CYX", "PhysicalSizeX": 0.02, "PhysicalSizeXUnit": "µm",
                      "PhysicalSizeY": 0.02, "PhysicalSizeYUnit": "µm",
                      "Channel": {"Name": ["Nup96 STED", "Nup96 confocal"]}},
        )  # fmt: skip
        paths.append(path)
        condition = "treated" if i % 3 == 2 else "control"
        per_image[path.name] = {"key_values": {"condition": condition, "well": f"A{count - i:02d}"}}
    metadata = {
        "study": {"description": "Nup96 rings, control and treated cells, for the Lab tests.",
                  "authors": [{"name": "Alice", "orcid": "0000-0002-1825-0097",
                               "affiliation": "EMBL"}], "license": "CC-BY-4.0"},
        "biosample": {"organism": "Homo sapiens", "cell_line": "U2OS"},
        "specimen": {"labels": [{"target": "Nup96", "fluorophore": "AF647"}]},
        "image_acquisition": {"technique": "STED"},
        "images": per_image,
    }  # fmt: skip
    meta = workdir / "metadata.yaml"
    meta.write_text(yaml.safe_dump(metadata))
    res = repo.deposit(paths, title="Nup96 rings in control and treated cells", metadata=meta)
    treated = sum(1 for v in per_image.values() if v["key_values"]["condition"] == "treated")
    return ImageDataset(accession=res.accession, images=names, treated=treated)


ROOT = Path(__file__).resolve().parents[2]
INTENSITY = ROOT / "notebooks" / "analyses" / "intensity_statistics.ipynb"


@dataclass(frozen=True)
class Provenance:
    """Run ids and the derived dataset :func:`record_provenance` made."""

    analysis: str  # the real run of intensity_statistics.ipynb (succeeded)
    smoothing: str  # succeeded; its output was deposited as ``derived``
    failed: str  # failed, with its error
    comparison: str  # read the images dataset and the hidden (embargoed) one
    derived: str  # accession of the dataset deposited from the smoothing run
    smoothed: str  # name of the smoothing run's output (in a subdirectory)

    def seed(self) -> dict[str, Any]:
        return {
            "analysis": self.analysis,
            "smoothing": self.smoothing,
            "failed": self.failed,
            "comparison": self.comparison,
            "derived": self.derived,
            "smoothed": self.smoothed,
        }


def _notebook(source: str) -> bytes:
    """A small nbformat 4 notebook of one code cell (the plan of a store-recorded run)."""
    nb = {
        "cells": [{"cell_type": "code", "execution_count": None, "id": "c0", "metadata": {},
                   "outputs": [], "source": source}],
        "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3",
                                    "language": "python"}},
        "nbformat": 4, "nbformat_minor": 5,
    }  # fmt: skip
    return json.dumps(nb, indent=1).encode()


def _inputs(repo: Any, accession: str, images: tuple[str, ...]) -> tuple[Any, ...]:
    """The inputs a run reading ``images`` of version 1 of ``accession`` records."""
    from sqlmodel import select

    from nanorepo.catalog.models import Image, Version
    from nanorepo.provenance import Input

    cat = repo.catalog
    with cat.session() as s:
        ds = cat.dataset(s, accession)
        v = s.exec(select(Version).where(Version.dataset_id == ds.id, Version.number == 1)).one()
        rows = {im.name: im for im in s.exec(select(Image).where(Image.version_id == v.id))}
        return (
            Input("dataset", accession, 1, v.manifest_digest),
            *(Input("image", accession, 1, rows[n].manifest_digest, n) for n in images),
        )


def _record(repo: Any, notebook: bytes, name: str, started: datetime, **final: Any) -> str:
    """Record one finished run through the provenance store, as the runner does: begin
    (running, with the notebook), then finish with its inputs, outputs and end."""
    from nanorepo.provenance import NotebookRef, RunRecord
    from nanorepo.storage import sha256_hex

    files = final.pop("files", {})
    rec = RunRecord(
        id=uuid.uuid4().hex, agent=repo.settings.user, status="running", started=started,
        notebook=NotebookRef(name, sha256_hex(notebook), len(notebook)),
        parameters=final.pop("parameters"),
    )  # fmt: skip
    repo.runs.begin(rec, notebook)
    ended = started + final.pop("took", timedelta(seconds=12))
    repo.runs.finish(rec.with_(ended=ended, **final), files)
    return rec.id


def record_provenance(repo: Any, images: ImageDataset, seeded: Any, workdir: Path) -> Provenance:
    """Run and record the Provenance tab's runs on ``images`` (see the module docstring)."""
    import nanorepo
    from nanorepo.provenance import Output, RunError
    from nanorepo.storage import hash_file

    workdir.mkdir(parents=True, exist_ok=True)
    ref = f"{images.accession}@v1"
    now = datetime.now(UTC)
    # the real thing: papermill executes the analysis template in a kernel, the journal
    # records what nanorepo.open read (in the store of the repository `settings` name)
    analysis = nanorepo.run(
        INTENSITY, {"accession": ref, "images": list(images.images[:2])},
        output_dir=workdir / "analysis", settings=repo.settings,
    )  # fmt: skip
    assert analysis.status == "succeeded", analysis.error

    # a smoothing run: its output is deposited as a derived dataset
    smoothed = "smoothed/img00-smoothed.ome.tif"
    tif = workdir / "smoothing" / smoothed
    tif.parent.mkdir(parents=True, exist_ok=True)
    pores = nuclear_pores((20.0 * SHAPE[2], 20.0 * SHAPE[1], 100.0), seed=0, density_per_um2=12.0)
    raw = render(pores, "STED", SHAPE[1:], pixel_size_nm=20.0, seed=0).astype(np.float64)
    padded = np.pad(raw, 1, mode="edge")
    windows = [padded[dy : dy + SHAPE[1], dx : dx + SHAPE[2]] for dy in range(3) for dx in range(3)]
    mean3 = np.mean(windows, axis=0)
    tifffile.imwrite(
        tif, mean3.astype(np.uint16)[None], ome=True, photometric="minisblack",
        metadata={"axes": "CYX", "PhysicalSizeX": 0.02, "PhysicalSizeXUnit": "µm",
                  "PhysicalSizeY": 0.02, "PhysicalSizeYUnit": "µm",
                  "Channel": {"Name": ["Nup96 STED, 3x3 mean"]}},
    )  # fmt: skip
    d = hash_file(tif)
    smoothing = _record(
        repo, _notebook("import nanorepo\nimg = nanorepo.open(accession)[image]\n"),
        "smooth.ipynb", now - timedelta(hours=3),
        parameters={"accession": ref, "image": "img00", "size": 3},
        status="succeeded", inputs=_inputs(repo, images.accession, ("img00",)),
        outputs=(Output(smoothed, d.sha256, d.size, "image/tiff"),),
        values={"kernel_px": 3}, files={smoothed: tif},
    )  # fmt: skip
    meta = workdir / "derived.yaml"
    meta.write_text(yaml.safe_dump({
        "study": {"description": "Nup96 pores of img00, smoothed with a 3x3 mean.",
                  "authors": [{"name": "Alice", "orcid": "0000-0002-1825-0097",
                               "affiliation": "EMBL"}], "license": "CC-BY-4.0"},
        "biosample": {"organism": "Homo sapiens", "cell_line": "U2OS"},
        "specimen": {"labels": [{"target": "Nup96", "fluorophore": "AF647"}]},
        "image_acquisition": {"technique": "STED"},
    }))  # fmt: skip
    derived = repo.deposit(
        [tif], title="Smoothed Nup96 pores (derived)", metadata=meta, derived_from=smoothing
    ).accession

    # a run that failed: the error, the failing cell, no outputs
    failed = _record(
        repo, INTENSITY.read_bytes(), INTENSITY.name, now - timedelta(hours=2),
        parameters={"accession": ref, "level": 7, "images": None},
        status="failed", inputs=_inputs(repo, images.accession, ()),
        error=RunError("InvalidInput", f"level 7 does not exist: {ref}/img00 has 1 level",
                       ("Traceback (most recent call last):", "  Cell In[2], line 14",
                        f"InvalidInput: level 7 does not exist: {ref}/img00 has 1 level"), 2),
    )  # fmt: skip

    # a comparison with the embargoed dataset nobody granted bob: bob must not see it
    out = workdir / "comparison" / "comparison.csv"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("image,mean_ratio\nimg00,1.04\n")
    c = hash_file(out)
    comparison = _record(
        repo, _notebook("import nanorepo\n"), "compare.ipynb", now - timedelta(hours=1),
        parameters={"reference": ref, "other": f"{seeded.hidden}@v1"},
        status="succeeded",
        inputs=(*_inputs(repo, images.accession, ("img00",)),
                *_inputs(repo, seeded.hidden, ())),
        outputs=(Output("comparison.csv", c.sha256, c.size, "text/csv"),),
        files={"comparison.csv": out},
    )  # fmt: skip
    return Provenance(
        analysis=analysis.id, smoothing=smoothing, failed=failed, comparison=comparison,
        derived=derived, smoothed=smoothed,
    )  # fmt: skip
