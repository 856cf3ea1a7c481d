"""Thumbnails of the demo reference data are readable: what a microscopist must see in
them, asserted on pixel statistics of the PNGs the service sends.

* S-NANO2 (a sparse dSTORM rendering) is not black at the panel's 64 px;
* S-NANO1's STED image shows its pores as many separate bright spots at 64 px (an area
  mean turned them into a dim haze), where the confocal image of the same field is a
  connected haze, is read from a level of at least 128 px, and is the dataset's picture;
* S-NANO3 (two channels, 16 z planes) is a maximum projection over z, in the stored
  channel colours (cyan + green: no red), with the stored contrast windows (a pixel at the
  window's end is saturated in its colour).
"""

from __future__ import annotations

from typing import Any

import httpx
import imagecodecs
import numpy as np
import pytest

from nanorepo.cli._demo import deposit_demo
from nanorepo.ome import OmeZarrImage, thumbnail
from nanorepo.ome._thumbnail import MIN_LEVEL_PX, level_for
from nanorepo.repository import Repository
from nanorepo.testing._service import live_service


@pytest.fixture
def demo(sqlite_repo: Repository) -> Any:
    deposit_demo(sqlite_repo)
    with live_service(sqlite_repo.settings, repo=sqlite_repo) as live:
        yield live


def _png(c: httpx.Client, acc: str, image: str, size: int) -> np.ndarray:
    r = c.get(f"/datasets/{acc}/versions/v1/images/{image}/thumbnail.png", params={"size": size})
    assert r.status_code == 200, r.text
    rgb: np.ndarray = imagecodecs.png_decode(r.content)
    assert max(rgb.shape[:2]) == size
    return rgb


def _zarr(repo: Repository, acc: str, image: str) -> OmeZarrImage:
    (path,) = (repo.settings.home / "storage").rglob(f"{acc}/images/v1/{image}.ome.zarr")
    return OmeZarrImage.open(path)


def _spots(channel: np.ndarray, level: int = 128) -> int:
    """Connected bright regions (4-neighbourhood) above ``level``."""
    from scipy import ndimage

    _, n = ndimage.label(channel > level)
    return int(n)


def test_demo_thumbnails_are_readable(demo: Any) -> None:
    rows, _ = demo.repo.list_datasets()
    by_title = {r["title"]: r["accession"] for r in rows}
    npc = next(a for t, a in by_title.items() if "confocal and STED" in t)
    dstorm = next(a for t, a in by_title.items() if "dSTORM" in t)
    sim = next(a for t, a in by_title.items() if "3D-SIM" in t)
    with httpx.Client(base_url=demo.url, timeout=60) as c:
        # S-NANO2: the sparse dSTORM rendering is not black, in its channel's magenta
        rgb = _png(c, dstorm, "npc_dstorm_rendered", 64)
        assert (rgb[..., 0] > 128).mean() > 0.05, "most pores vanish into the background"
        assert rgb[..., 1].max() == 0 and np.array_equal(rgb[..., 0], rgb[..., 2])

        # S-NANO1: STED pores are separate bright spots, many more than the confocal's
        # blurred ones in the same field
        sted = _png(c, npc, "npc_sted", 64)[..., 0]
        confocal = _png(c, npc, "npc_confocal", 64)[..., 0]
        assert _spots(sted) > 300 and (sted > 128).mean() > 0.15
        assert np.percentile(sted, 5) < 64  # with a dark background between them
        # above a quarter of the window, confocal spots merge into a connected haze
        assert _spots(sted, 64) > 5 * _spots(confocal, 64)
        # and the dataset's picture (panel, landing page) is the STED image, not the
        # confocal one that sorts first
        hits = {h["accession"]: h for h in c.get("/datasets").json()["items"]}
        assert hits[npc]["thumbnail"].split("/")[-2] == "npc_sted"
        image = _zarr(demo.repo, npc, "npc_sted")
        assert len(image.levels) > 1
        for size in (32, 64, 256):
            shape = image.levels[level_for(image, size)]
            assert max(shape) >= max(MIN_LEVEL_PX, size)
        assert level_for(image, 64) == len(image.levels) - 1  # the 320 px level, not 640

        # S-NANO3: maximum projection over z in cyan + green with the stored windows
        image = _zarr(demo.repo, sim, "cell1_control")
        rgb = _png(c, sim, "cell1_control", 256).astype(int)
        assert rgb[..., 0].max() == 0  # no channel is red
        middle = thumbnail(image, 256, z=image.levels[0][1] // 2).astype(int)
        assert (rgb >= middle).all()  # a projection shows at least any one plane
        assert (rgb.sum(-1) > middle.sum(-1) + 30).mean() > 0.2  # and much more of the cell
        raw = np.asarray(image.to_xarray(level_for(image, 256)).max("z").values)
        assert raw.shape[-2:] == rgb.shape[:2]
        (_, tubulin_end) = image.channels[1].window  # type: ignore[misc]
        saturated = raw[1] >= tubulin_end
        assert saturated.mean() > 0.01
        assert (rgb[..., 1][saturated] == 255).all()  # green saturates at the window's end
        (dna_start, _) = image.channels[0].window  # type: ignore[misc]
        dark = (raw[0] <= dna_start) & (raw[1] <= image.channels[1].window[0])  # type: ignore[index]
        if dark.any():
            assert (rgb[dark] == 0).all()  # below both windows' starts: black
