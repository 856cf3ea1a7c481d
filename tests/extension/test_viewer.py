"""The image viewer end to end (issue 17): Playwright drives Debian's Chromium, with
software WebGL (SwiftShader), against a real JupyterHub with the nanorepo service; the
browser side is ``extension/ui-tests/tests/viewer.spec.ts``.

The image deposited here is its own ground truth: 2 channels × 3 planes × 512 × 512,
uint16, 20 nm pixels, black except for 128-pixel squares of value 1000 — channel
``membrane`` at pixels [64, 192) on plane 0 and [320, 448) on plane 2, channel ``nucleus``
at x [320, 448), y [64, 192) on every plane. The spec saves screenshots of the canvas with
the view (target, zoom) beside them; this side maps the squares to screen pixels and checks
the colours there: the right square lit in the channel's colour, the rest dark, the open
thread's outline yellow where its anchor says. The thread the spec draws is read back from
the API with its anchor in nanometres. bob's browser must fetch nothing of an embargoed
image's Zarr (the spec records every request).
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import tifffile
import yaml
from PIL import Image as PILImage

from nanorepo.repository import Repository
from tests.extension.conftest import UI_TESTS
from tests.extension.test_ui import _chromium

pytestmark = [
    pytest.mark.slow,
    pytest.mark.parametrize("jupyterhub", ["sqlite"], indirect=True),
]

PIXEL_NM = 20.0
SIZE = 512
SQUARES = {  # (channel, plane) -> (x0, x1, y0, y1) of the bright square, level-0 pixels
    (0, 0): (64, 192, 64, 192),
    (0, 1): (64, 192, 64, 192),
    (0, 2): (320, 448, 320, 448),
    (1, 0): (320, 448, 64, 192),
    (1, 1): (320, 448, 64, 192),
    (1, 2): (320, 448, 64, 192),
}
OPEN_BOX_PX = (200, 312, 20, 60)  # the open thread's box (x0, x1, y0, y1), pixels
RESOLVED_BOX_PX = (20, 60, 400, 480)
DRAWN_PX = (100, 200, 300, 400)  # the box the spec draws


def _ground_truth() -> np.ndarray:
    data = np.zeros((2, 3, SIZE, SIZE), np.uint16)
    for (c, z), (x0, x1, y0, y1) in SQUARES.items():
        data[c, z, y0:y1, x0:x1] = 1000
    return data


def _deposit(repo: Repository, workdir: Path) -> str:
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / "squares.ome.tif"
    tifffile.imwrite(
        path, _ground_truth(), ome=True, photometric="minisblack",
        metadata={"axes": "CZYX", "PhysicalSizeX": PIXEL_NM / 1000, "PhysicalSizeXUnit": "µm",
                  "PhysicalSizeY": PIXEL_NM / 1000, "PhysicalSizeYUnit": "µm",
                  "PhysicalSizeZ": 0.1, "PhysicalSizeZUnit": "µm",
                  "Channel": {"Name": ["membrane", "nucleus"]}},
    )  # fmt: skip
    meta = workdir / "metadata.yaml"
    meta.write_text(yaml.safe_dump({
        "study": {"description": "Squares whose place the viewer tests know.",
                  "authors": [{"name": "Alice"}], "license": "CC-BY-4.0"},
        "biosample": {"organism": "Homo sapiens"},
        "image_acquisition": {"technique": "STED"},
    }))  # fmt: skip
    return repo.deposit([path], title="Viewer ground truth squares", metadata=meta).accession


def _nm(box: tuple[int, int, int, int]) -> dict[str, list[float]]:
    x0, x1, y0, y1 = box
    return {"x": [x0 * PIXEL_NM, x1 * PIXEL_NM], "y": [y0 * PIXEL_NM, y1 * PIXEL_NM]}


def _screen(view: dict[str, Any], x: float, y: float) -> tuple[int, int]:
    s = 2 ** view["zoom"]
    return (
        round((x - view["target"][0]) * s + view["width"] / 2),
        round((y - view["target"][1]) * s + view["height"] / 2),
    )


def _shot(out: Path, name: str) -> tuple[np.ndarray, dict[str, Any]]:
    rgb = np.asarray(PILImage.open(out / f"{name}.png").convert("RGB")).astype(int)
    return rgb, json.loads((out / f"{name}.json").read_text())


def _inside(rgb: np.ndarray, view: dict[str, Any], box: tuple[int, int, int, int]) -> np.ndarray:
    """Mean colour of the middle half of a pixel box, on screen."""
    x0, x1, y0, y1 = box
    qx, qy = (x1 - x0) / 4, (y1 - y0) / 4
    a, b = _screen(view, x0 + qx, y0 + qy), _screen(view, x1 - qx, y1 - qy)
    return rgb[a[1] : b[1], a[0] : b[0]].reshape(-1, 3).mean(axis=0)


def _check_plane(out: Path, name: str, channel: int, z: int, colour: str) -> None:
    rgb, view = _shot(out, name)
    lit = _inside(rgb, view, SQUARES[(channel, z)])
    others = {SQUARES[k] for k in SQUARES} - {SQUARES[(channel, z)]}
    for box in others:
        dark = _inside(rgb, view, box)
        assert dark.max() < 40, (name, box, dark)
    if colour == "green":
        assert lit[1] > 150 and lit[0] < 60 and lit[2] < 60, (name, lit)
    else:  # magenta
        assert lit[0] > 150 and lit[2] > 150 and lit[1] < 60, (name, lit)
    # the image's background between the squares is black
    assert _inside(rgb, view, (230, 290, 230, 290)).max() < 40


def test_viewer(
    jupyterhub: Any,
    hub_servers: Any,
    playwright_test: list[str],
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> None:
    hub = jupyterhub
    with Repository(hub.settings) as repo:
        accession = _deposit(repo, tmp_path / "deposit")
    token = hub.user_token("alice")
    api = httpx.Client(base_url=hub.service_url, headers={"Authorization": f"token {token}"},
                       timeout=30)  # fmt: skip
    request.addfinalizer(api.close)  # (an unclosed client warns in a later test)
    image = api.get(f"/datasets/{accession}/versions/v1/images").json()["items"][0]["name"]
    hidden = hub.seed.hidden
    hidden_image = api.get(f"/datasets/{hidden}/versions/v1/images").json()["items"][0]["name"]
    titles = {"open": "Edge of the membrane square", "resolved": "Dust, resolved"}
    for status, box in (("open", OPEN_BOX_PX), ("resolved", RESOLVED_BOX_PX)):
        anchor = {"kind": "region", "image": image, "unit": "nanometer", "shape": "box", **_nm(box)}
        r = api.post(f"/datasets/{accession}/threads",
                     json={"title": titles[status], "body": "seeded", "anchor": anchor})  # fmt: skip
        assert r.status_code == 201, r.text
        if status == "resolved":
            r = api.patch(f"/datasets/{accession}/threads/{r.json()['id']}",
                          json={"status": "resolved"}, headers={"If-Match": r.headers["ETag"]})  # fmt: skip
            assert r.status_code == 200, r.text
    for user in ("alice", "bob"):
        hub_servers(user)
    out = tmp_path / "shots"
    seed = {"accession": accession, "image": image, "hidden": hidden,
            "hidden_image": hidden_image, "thread_open": titles["open"],
            "thread_resolved": titles["resolved"], "out": str(out)}  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NANOREPO_", "JUPYTER"))}
    env.update(
        NANOREPO_UI_HUB=hub.url,
        NANOREPO_UI_PASSWORD=hub.password,
        NANOREPO_UI_VIEWER=json.dumps(seed),
        NANOREPO_UI_OUTPUT=str(tmp_path / "results"),
        CHROMIUM=_chromium(),
        CI="true",
    )
    proc = subprocess.run(
        [*playwright_test, "test", "tests/viewer.spec.ts"],
        cwd=UI_TESTS, env=env, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    (tmp_path / "playwright.log").write_text(proc.stdout + proc.stderr)
    text = proc.stdout[-8000:] + proc.stderr[-4000:]
    assert proc.returncode == 0, f"{text}\n--- hub log ---\n{hub.log_tail(40)}"
    assert "2 passed" in proc.stdout, text

    # pixels against the ground truth: channel 0 at z 0, channel 1, channel 0 at z 2, in the
    # colours the deposit stored (membrane magenta, nucleus green)
    _check_plane(out, "c0-z0", 0, 0, "magenta")
    _check_plane(out, "c1-z0", 1, 0, "green")
    _check_plane(out, "c0-z2", 0, 2, "magenta")
    # the open thread's outline is drawn yellow on its box's top edge; the resolved one dim
    rgb, view = _shot(out, "c0-z0")
    x0, x1, y0, _ = OPEN_BOX_PX
    sx, sy = _screen(view, (x0 + x1) / 2, y0)
    edge = rgb[sy - 2 : sy + 3, sx - 2 : sx + 3].reshape(-1, 3)
    assert any(p[0] > 180 and p[1] > 130 and p[2] < 90 for p in edge), edge
    x0, x1, y0, _ = RESOLVED_BOX_PX
    sx, sy = _screen(view, (x0 + x1) / 2, y0)
    edge = rgb[sy - 2 : sy + 3, sx - 2 : sx + 3].reshape(-1, 3)
    assert any(p.max() > 40 for p in edge) and not any(p[0] > 180 and p[2] < 90 for p in edge)

    # the drawn thread, in the API, anchored in nanometres where it was drawn
    threads = api.get(f"/datasets/{accession}/threads", params={"image": image}).json()["items"]
    drawn = [t for t in threads if t["title"] == "drawn box"]
    assert len(drawn) == 1, threads
    anchor = drawn[0]["anchor"]
    drawn_view = json.loads((out / "drawn.json").read_text())["view"]
    tolerance = 2 * PIXEL_NM / 2 ** drawn_view["zoom"] + 1  # two screen pixels, in nm
    want = _nm(DRAWN_PX)
    assert anchor["kind"] == "region" and anchor["shape"] == "box" and anchor["unit"] == "nanometer"
    for axis in ("x", "y"):
        assert anchor[axis] == pytest.approx(want[axis], abs=tolerance), (anchor, want)
    # the copied link names the view in nanometres
    link = (out / "link.txt").read_text()
    assert link.startswith(f"{accession}@v1/{image}?x="), link
