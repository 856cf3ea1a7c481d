"""A published dataset with images of several shapes, on each catalog backend."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from nanorepo.catalog import Catalog, ImageRecord, VersionRecord
from nanorepo.catalog.models import Dataset, Image
from nanorepo.search import index_dataset
from nanorepo.storage import canonical_json, sha256_hex


def image_record(name: str, dims: list[str], shape: list[int], **kw: Any) -> ImageRecord:
    """An image row: 20 nm pixels in y/x, 100 nm in z, a pyramid halving y/x."""
    levels = [list(shape)]
    while shape[-1] > 100:
        shape = [*shape[:-2], (shape[-2] + 1) // 2, (shape[-1] + 1) // 2]
        levels.append(list(shape))
    n_c = levels[0][dims.index("c")] if "c" in dims else 1
    return ImageRecord(
        name=name,
        path=f"images/v1/{name}.ome.zarr",
        dims=dims,
        shape=levels[0],
        dtype="uint16",
        pixel_sizes={a: {"z": 100.0, "t": 1.0}.get(a, 20.0) for a in dims if a != "c"},
        channels=kw.get("channels") or [{"name": f"ch{i}"} for i in range(n_c)],
        levels=levels,
        key_values={},
        technique="STED",
        manifest_digest="1" * 64,
        size_bytes=10,
    )


IMAGES = [
    # 64 x 64 pixels of 20 nm: 1280 x 1280 nm
    image_record("cell1", ["y", "x"], [64, 64]),
    # 2 channels, 5 planes of 100 nm, 1001 x 801 pixels of 20 nm: 16020 x 20020 nm
    image_record("stack", ["c", "z", "y", "x"], [2, 5, 1001, 801]),
    # 10 time points of 64 x 64
    image_record("movie", ["t", "y", "x"], [10, 64, 64]),
]


def record(acc: str, number: int = 1, title: str = "Nuclear pores") -> VersionRecord:
    mj = canonical_json({"biosample": {"organism": "Homo sapiens"}, "n": number}).decode()
    return VersionRecord(
        accession=acc,
        number=number,
        created_by="alice",
        metadata_json=mj,
        metadata_digest=sha256_hex(mj.encode()),
        manifest_digest="0" * 64,
        size_bytes=10,
        images=list(IMAGES),
        files=[],
        title=title,
        mutable={"license": "CC-BY-4.0"},
    )


@dataclass
class Published:
    """What a test needs of a published dataset: its row and image rows by name."""

    catalog: Catalog
    dataset: Dataset
    images: dict[str, Image]


def publish(cat: Catalog, acc: str, title: str = "Nuclear pores") -> Published:
    with cat.session() as s:
        ds, v = cat.add_version(s, record(acc, title=title))
        index_dataset(s, ds.id)
        s.commit()
        images = {im.name: im for im in cat.images(s, v.id)}
    return Published(cat, ds, images)


@pytest.fixture
def published(catalog: Catalog) -> Published:
    """Dataset S-NANO1 (version 1, images cell1, stack, movie) on each backend."""
    return publish(catalog, "S-NANO1")
