"""Data the extension's tests need beyond the seeded repository: a public dataset of many
small images with file-level key/value metadata (condition, well), for the image table's
filters and sort and the code cell's printed shape. The images are nuclear pores rendered
by :mod:`nanorepo.samples` (STED and confocal channels), so the screenshots the UI tests
take show what the repository is for."""

from __future__ import annotations

from dataclasses import dataclass
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

    def seed(self, seeded: Any) -> dict[str, Any]:
        """What the browser and jest tests are told (``NANOREPO_TEST_SEED``)."""
        return {
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
                  "authors": [{"name": "Alice"}], "license": "CC-BY-4.0"},
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
