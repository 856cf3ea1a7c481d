"""Small instrument-like input files shared by the test suite."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pytest
import tifffile
import yaml


def write_ome_tiff(
    path: Path,
    shape: tuple[int, ...] = (3, 96, 80),
    axes: str = "ZYX",
    *,
    pixel_size_um: float = 0.02,
    z_step_um: float = 0.1,
    seed: int = 0,
    channel_names: list[str] | None = None,
    compression: str | None = None,
) -> np.ndarray:
    """Write a microscopy-like OME-TIFF (structure + Poisson noise) with OME-XML sizes."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0 : shape[-2], 0 : shape[-1]]
    base = 200 + 800 * np.exp(-(((yy - shape[-2] / 2) ** 2 + (xx - shape[-1] / 3) ** 2) / 200.0))
    data = rng.poisson(np.broadcast_to(base, shape)).astype(np.uint16)
    meta: dict[str, object] = {
        "axes": axes,
        "PhysicalSizeX": pixel_size_um,
        "PhysicalSizeXUnit": "µm",
        "PhysicalSizeY": pixel_size_um,
        "PhysicalSizeYUnit": "µm",
    }
    if "Z" in axes:
        meta.update(PhysicalSizeZ=z_step_um, PhysicalSizeZUnit="µm")
    if channel_names:
        meta["Channel"] = {"Name": channel_names}
    tifffile.imwrite(
        path, data, ome=True, metadata=meta, photometric="minisblack", compression=compression
    )
    return data


METADATA = {
    "study": {
        "description": "Synthetic nuclear pores for tests.",
        "authors": [{"name": "Ada Lovelace"}],
        "keywords": ["test"],
        "license": "CC-BY-4.0",
    },
    "biosample": {"organism": "Homo sapiens", "cell_line": "U2OS"},
    "specimen": {"labels": [{"target": "Nup96", "fluorophore": "AF647"}]},
    "image_acquisition": {"technique": "STED"},
}


@pytest.fixture
def metadata_file(tmp_path: Path) -> Path:
    p = tmp_path / "inputs" / "metadata.yaml"
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(yaml.safe_dump(METADATA))
    return p


@pytest.fixture
def ome_tiff(tmp_path: Path) -> Path:
    p = tmp_path / "inputs" / "cell1.ome.tif"
    p.parent.mkdir(parents=True, exist_ok=True)
    write_ome_tiff(p)
    return p


_STARTED = time.monotonic()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """``./dev test`` quotes the wall time of its stages just before pytest's closing line
    (``NANOREPO_TEST_STAGES``: the install and the linters, measured by ./dev)."""
    stages = os.environ.get("NANOREPO_TEST_STAGES")
    if stages and not hasattr(terminalreporter.config, "workerinput"):
        pytest_s = time.monotonic() - _STARTED
        terminalreporter.write_line(f"./dev test stages: {stages}, pytest {pytest_s:.0f} s")
