"""``nanorepo view``: a real napari window from the command line, on a user's laptop (an
empty home, NANOREPO_URL and a token), with its regions; the screenshot of the docs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

import nanorepo
from nanorepo.napari._regions import STATUS_COLORS
from tests.napari.conftest import NPC_PIXEL_NM, Service, npc_structures

DOCS_IMAGE = Path(__file__).resolve().parents[2] / "docs" / "images" / "napari-threads.png"


def _run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "nanorepo", "view", *args],
        env=env, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL,
    )  # fmt: skip


def _laptop(svc: Service, tmp_path: Path, user: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NANOREPO_", "JUPYTERHUB_"))}
    home = tmp_path / f"laptop-{user}"
    home.mkdir()
    env.update(NANOREPO_HOME=str(home), NANOREPO_URL=svc.url, NANOREPO_TOKEN=svc.seed.tokens[user])
    return env


def test_view_refuses_what_it_cannot_open(napari_service: Service, tmp_path: Path) -> None:
    env = _laptop(napari_service, tmp_path, "carol")
    for args, says in [(["S-NANO99"], "no dataset 'S-NANO99'"),
                       ([napari_service.seed.hidden], f"no dataset '{napari_service.seed.hidden}'"),
                       (["S-NANO1@@v2"], "not a dataset reference"),
                       ([napari_service.big, "--image", "../x"], "not a valid image name"),
                       ([napari_service.big, "--image", "nope"], "no image 'nope'")]:  # fmt: skip
        p = _run(env, *args)
        assert p.returncode == 1, (args, p.stderr)
        assert says in p.stderr and "Traceback" not in p.stderr, p.stderr


def _pore_boxes(n: int) -> list[dict[str, float]]:
    """Boxes (nm from the image origin) around the first ``n`` pores of the image."""
    structures = npc_structures()
    centres = [structures.positions_nm[structures.structure_ids == i, :2].mean(0)
               for i in range(n)]  # fmt: skip
    half = NPC_PIXEL_NM / 2  # pixel centres are at index x 20 nm: the origin is 10 nm before
    return [{"x": [float(cx) - 300 + half, float(cx) + 300 + half],
             "y": [float(cy) - 300 + half, float(cy) + 300 + half]} for cx, cy in centres]  # fmt: skip


def test_view_shows_the_image_with_its_regions(
    napari_service: Service, display: str, tmp_path: Path
) -> None:
    svc = napari_service
    boxes = _pore_boxes(3)
    with nanorepo.Client(svc.url, svc.seed.tokens["carol"]) as carol:
        titles = ["Ring with a missing corner?", "Two pores touching", "Out of focus"]
        for box, title in zip(boxes, titles, strict=True):
            anchor = {"kind": "region", "image": "npc", "unit": "nanometer", "shape": "box", **box}
            t = carol.create_thread(svc.npc, title, "See the outline.", anchor=anchor)
        carol.set_thread_status(svc.npc, t["id"], "resolved")
    shot = tmp_path / "napari.png"
    p = _run(_laptop(svc, tmp_path, "bob"), f"{svc.npc}@v1", "--image", "npc",
             "--screenshot", str(shot))  # fmt: skip
    assert p.returncode == 0, p.stderr
    rgb = np.asarray(Image.open(shot).convert("RGB")).astype(int)
    assert rgb.shape[0] > 600 and rgb.shape[1] > 1000  # the whole window
    # the open regions' outlines and titles in their colour, the resolved one dimmed
    open_rgb = np.round(np.asarray(STATUS_COLORS["open"][:3]) * 255).astype(int)
    yellow = (np.abs(rgb - open_rgb).max(-1) <= 12).sum()
    assert yellow > 200, yellow
    # the image itself: a field of bright pores, not an empty canvas
    assert (rgb.max(-1) > 150).sum() > 2000
    if os.environ.get("NANOREPO_DOCS_IMAGES"):  # refresh the figure in the docs (256 colours)
        with Image.open(shot) as im:
            im.convert("RGB").quantize(256).save(DOCS_IMAGE, optimize=True)
