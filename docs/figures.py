"""Make the README figure from the demo reference data: ``python docs/figures.py``.

Renders, from a fresh demo repository, the same field of nuclear pore complexes as the
confocal and the STED image (S-NANO1) and the 3D-SIM microtubules (S-NANO3), with the
channel colours and contrast windows stored with the images.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np
from scipy import ndimage

import nanorepo
from nanorepo.cli._demo import deposit_demo
from nanorepo.ome._thumbnail import png_bytes, render_rgb
from nanorepo.repository import Repository
from nanorepo.settings import Settings

SIZE = 480


def _panel(img: nanorepo.Image, *, crop_nm: float | None = None) -> np.ndarray:
    """One panel; ``crop_nm`` selects a centred square of that side (physical units)."""
    da = img.to_xarray(0)
    if "z" in da.dims:
        da = da.isel(z=da.sizes["z"] // 2)
    if crop_nm is not None:
        cy, cx = float(da.y.mean()), float(da.x.mean())
        half = crop_nm / 2
        da = da.sel(y=slice(cy - half, cy + half), x=slice(cx - half, cx + half))
    data = np.asarray(da.values)
    if "c" not in da.dims:
        data = data[None]
    chans = img.zarr.channels
    rgb = render_rgb(data, [c.color for c in chans], [c.window for c in chans])
    zoom = (SIZE / rgb.shape[0], SIZE / rgb.shape[1], 1)
    return ndimage.zoom(rgb, zoom, order=0)


def main(out: Path) -> None:
    with tempfile.TemporaryDirectory() as home:
        settings = Settings.from_env(home, env={"NANOREPO_USER": "demo"})
        with Repository(settings, create=True) as repo:
            deposit_demo(repo)
        npc = nanorepo.open("S-NANO1", settings=settings)
        sim = nanorepo.open("S-NANO3", settings=settings)
        crop = 3000.0  # nm: the same 3 µm field in both, so rings of 107 nm show in STED only
        panels = [
            _panel(npc["npc_confocal"], crop_nm=crop),
            _panel(npc["npc_sted"], crop_nm=crop),
            _panel(sim.images[0]),
        ]
    gap = np.full((SIZE, 8, 3), 255, np.uint8)
    montage = np.concatenate([panels[0], gap, panels[1], gap, panels[2]], axis=1)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(png_bytes(montage))
    print(f"wrote {out} ({montage.shape[1]}x{montage.shape[0]})")


if __name__ == "__main__":
    main(
        Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).with_name("images") / "demo.png"
    )
