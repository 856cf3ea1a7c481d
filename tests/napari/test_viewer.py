"""Real napari windows (on Xvfb): the plugin is found through its entry point, a large
remote image shown whole fetches only its lowest level, and regions round-trip between
the service and the Shapes layer, at every pyramid level."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from napari.layers import Layer

import nanorepo
from nanorepo.annotations import region_to_pixels
from nanorepo.napari import ImageGeometry, read_layers
from nanorepo.napari._regions import STATUS_COLORS
from nanorepo.napari._widget import ThreadsWidget
from tests.napari.conftest import (
    BIG_PIXEL_NM,
    MARK_COLS,
    MARK_ROWS,
    MARK_VALUE,
    Service,
    settle,
)


def _open(viewer: Any, location: str, plugin: str | None = "nanorepo") -> list[Any]:
    return list(viewer.open(location, plugin=plugin))


def test_plugin_is_registered_and_found_by_napari(
    napari_service: Service, viewer: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import npe2
    from napari.errors import ReaderPluginError

    manifest = npe2.PluginManager.instance().get_manifest("nanorepo")
    assert manifest.package_metadata is not None  # found through the installed entry point
    assert [w.display_name for w in manifest.contributions.widgets or []] == ["Threads"]
    settings = napari_service.env("bob")
    for key, value in {"NANOREPO_HOME": str(settings.home), "NANOREPO_URL": settings.url,
                       "NANOREPO_TOKEN": settings.token}.items():  # fmt: skip
        monkeypatch.setenv(key, str(value))
    # no plugin named: nanorepo's reader is the only one for these, napari picks it
    added = _open(viewer, f"nanorepo://{napari_service.big}/big", plugin=None)
    assert [lay.name for lay in added] == ["big · Nup96", "big · DNA"]
    added = _open(viewer, f"{napari_service.url}/zarr/{napari_service.big}/v1/big", plugin=None)
    assert [lay.name for lay in added] == ["big · Nup96 [1]", "big · DNA [1]"]  # napari numbers
    _, widget = viewer.window.add_plugin_dock_widget("nanorepo", "Threads")
    assert isinstance(widget, ThreadsWidget)

    with pytest.raises(ReaderPluginError) as exc:
        _open(viewer, "nanorepo://S-NANO99", plugin=None)
    assert "no dataset 'S-NANO99'" in str(exc.value.__cause__)


def test_showing_the_whole_large_image_fetches_only_its_lowest_level(
    napari_service: Service, viewer: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    svc = napari_service
    settings = svc.env("bob")
    monkeypatch.setattr("nanorepo.settings.Settings.from_env", lambda *a, **k: settings)
    viewer.window.resize(700, 560)  # a canvas smaller than the 512 px lowest level
    settle(viewer, 0.3)
    svc.traffic.clear()
    layers = _open(viewer, f"nanorepo://{svc.big}/big")
    viewer.reset_view()
    settle(viewer, 1.5)
    images = [lay for lay in layers if lay.multiscale]
    lowest = len(images[0].data) - 1
    assert lowest == 4 and all(lay.data_level == lowest for lay in images)
    chunks = [(p, n) for p, status, n in svc.traffic.zarr() if "/c/" in p]
    assert chunks and {p.split("/")[5] for p, _ in chunks} == {str(lowest)}
    fetched = svc.traffic.bytes()
    stored = svc.repo.show(svc.big)["images"][0]["size_bytes"]
    assert fetched < 0.02 * stored, (fetched, stored)
    # what is on screen is the image: the bright mark shows in the rendered canvas
    shot = viewer.screenshot(canvas_only=True, flash=False)[..., :3]
    image = shot.max(-1) > 0  # the image's pixels on the black canvas
    bright = shot.min(-1) > 200  # the mark (white: both channels at the top of their window)
    mark_fraction = np.ptp(MARK_ROWS) * np.ptp(MARK_COLS) / 8192**2
    assert 0.5 * mark_fraction < bright.sum() / image.sum() < 2 * mark_fraction


def _box_anchor(image: str) -> dict[str, Any]:
    """A box around the bright mark, in nm from the image's origin."""
    return {
        "kind": "region", "image": image, "unit": "nanometer", "shape": "box",
        "x": [MARK_COLS[0] * BIG_PIXEL_NM, MARK_COLS[1] * BIG_PIXEL_NM],
        "y": [MARK_ROWS[0] * BIG_PIXEL_NM, MARK_ROWS[1] * BIG_PIXEL_NM],
    }  # fmt: skip


def test_region_threads_appear_where_they_are_at_every_level(
    napari_service: Service, viewer: Any
) -> None:
    svc = napari_service
    with nanorepo.Client(svc.url, svc.seed.tokens["carol"]) as carol:
        t = carol.create_thread(svc.big, "Bright square", "Saturated?", anchor=_box_anchor("big"))
        done = carol.create_thread(
            svc.big, "Checked", "fine", anchor={**_box_anchor("big"), "x": [0.0, 900.0]}
        )
        carol.set_thread_status(svc.big, done["id"], "resolved")
    widget = ThreadsWidget(viewer, settings=svc.env("bob"))
    viewer.window.add_dock_widget(widget)
    layers = [viewer.add_layer(Layer.create(*d)) for d in read_layers(
        f"nanorepo://{svc.big}/big", settings=svc.env("bob"))]  # fmt: skip
    regions = layers[-1]
    assert widget.layer is regions
    ids = [int(i) for i in regions.features["thread"]]
    i = ids.index(t["id"])
    assert regions.shape_type[i] == "rectangle"
    assert regions.features["title"][i] == "Bright square"
    assert regions.features["author"][i] == "carol"
    # world coordinates: nm, pixel centres at index * 30 nm, so the origin is at -15 nm
    v = np.asarray(regions.data[i])
    half = BIG_PIXEL_NM / 2
    assert v.min(0).tolist() == [
        MARK_ROWS[0] * BIG_PIXEL_NM - half,
        MARK_COLS[0] * BIG_PIXEL_NM - half,
    ]
    assert v.max(0).tolist() == [
        MARK_ROWS[1] * BIG_PIXEL_NM - half,
        MARK_COLS[1] * BIG_PIXEL_NM - half,
    ]
    # resolved threads are dimmed, open ones not
    j = ids.index(done["id"])
    assert regions.features["status"][j] == "resolved"
    assert regions.edge_color[j][3] < 0.5 < regions.edge_color[i][3]
    np.testing.assert_allclose(regions.text.color._values[j], STATUS_COLORS["resolved"])
    # at every level, the outline covers exactly the level's pixels of the mark, as the
    # image's own OME-Zarr transforms and the service's region_to_pixels both say
    ome = nanorepo.open(svc.big, settings=svc.settings)["big"].zarr
    geometry = ImageGeometry.from_json(regions.metadata["nanorepo"]["geometry"])
    image_layer = layers[0]
    for level in range(len(ome.levels)):
        box = {}
        for k, axis in enumerate("yx"):
            s, t0 = ome.scales[level][axis], ome.translations[level][axis]
            lo, hi = (v[:, k].min() - t0) / s + 0.5, (v[:, k].max() - t0) / s + 0.5
            box[axis] = (math.floor(lo + 1e-9), math.ceil(hi - 1e-9))
        assert box == {a: region_to_pixels(t["anchor"], geometry.catalog_row(), level)[a]
                       for a in "yx"}, level  # fmt: skip
        inside = image_layer.data[level][slice(*box["y"]), slice(*box["x"])]
        assert inside.min() == MARK_VALUE, level
        around = image_layer.data[level][box["y"][0] - 2 : box["y"][1] + 2,
                                         box["x"][0] - 2 : box["x"][1] + 2]  # fmt: skip
        assert around.min() < MARK_VALUE // 2, level  # the box is not larger than the mark
    # the list and a jump to the region
    assert {th["id"] for th in widget.threads} >= {t["id"], done["id"]}
    settle(viewer, 0.3)
    widget.go_to(t["id"])
    settle(viewer, 0.3)
    centre = v.mean(0)
    np.testing.assert_allclose(viewer.scene.camera.center[-2:], centre)
    extent = np.ptp(v, 0) * viewer.scene.camera.zoom  # screen pixels
    assert 0.3 < np.max(extent / np.asarray(viewer.canvas.size)) <= 0.51


def test_a_drawn_shape_is_posted_as_a_thread_with_its_physical_anchor(
    napari_service: Service, viewer: Any
) -> None:
    svc = napari_service
    for d in read_layers(f"nanorepo://{svc.npc}/npc", settings=svc.env("bob")):
        viewer.add_layer(Layer.create(*d))
    widget = ThreadsWidget(viewer, settings=svc.env("bob"))
    viewer.window.add_dock_widget(widget)
    assert widget.layer is None  # no region threads yet: no threads layer
    before = len(widget.threads)
    widget.draw_button.click()
    regions = widget.layer
    assert regions is not None and regions.name == "npc · threads"
    assert viewer.layers.selection.active is regions and regions.mode == "add_rectangle"
    # a rectangle drawn from (y, x) = (1990, 3010) to (2790, 4210) nm in the world
    regions.add_rectangles(np.array([[1990.0, 3010.0], [2790.0, 4210.0]]))
    assert regions.features["status"].iloc[-1] == "new"
    regions.selected_data = {len(regions.data) - 1}
    widget.title_edit.setText("Two rings touching")
    widget.body_edit.setPlainText("Are these **one** pore or two?")
    widget.post_button.click()
    assert "posted thread" in widget.status.text(), widget.status.text()
    with nanorepo.Client(svc.url) as anyone:
        threads = list(anyone.threads(svc.npc, image="npc"))
    assert len(threads) == before + 1
    new = threads[-1]
    # world -> nm from the origin (pixel 0's outer corner, 10 nm before its centre)
    assert new["anchor"] == {"kind": "region", "image": "npc", "unit": "nanometer",
                             "shape": "box", "x": [3020.0, 4220.0], "y": [2000.0, 2800.0]}  # fmt: skip
    assert new["created_by"] == "bob" and new["version"] == 1
    assert new["title"] == "Two rings touching"
    # the layer now shows it as an open thread, not as a new shape
    ids = [int(i) for i in regions.features["thread"]]
    assert new["id"] in ids and 0 not in ids
    # an ellipse is posted as a polygon inside the image; a line is refused clearly
    regions.add_ellipses(np.array([[6000.0, 6000.0], [400.0, 250.0]]))
    regions.selected_data = {len(regions.data) - 1}
    created = widget.post_thread("A pore", "round")
    pts = np.asarray(created["anchor"]["points"])
    assert created["anchor"]["shape"] == "polygon" and len(pts) == 64
    np.testing.assert_allclose(pts.mean(0), [6010.0, 6010.0], atol=1.0)  # (x, y) nm
    np.testing.assert_allclose(np.ptp(pts, 0), [500.0, 800.0], rtol=0.01)
    regions.add_lines(np.array([[100.0, 100.0], [500.0, 900.0]]))
    regions.selected_data = {len(regions.data) - 1}
    widget.title_edit.setText("A line")
    widget.body_edit.setPlainText("not a region")
    widget.post_button.click()
    assert "encloses no area" in widget.status.text()
    # a reply to the selected thread, by the token's user
    widget.thread_list.setCurrentRow(len(widget.threads) - 2)
    widget.body_edit.setPlainText("Two, I think.")
    widget.reply_button.click()
    with nanorepo.Client(svc.url) as anyone:
        posts = anyone.thread(svc.npc, new["id"])["posts"]
    assert [(p["author"], p["body"]) for p in posts][-1] == ("bob", "Two, I think.")
    # without a token the service refuses, and the widget says how to fix it
    anonymous = ThreadsWidget(viewer, settings=svc.env(None))
    regions.add_rectangles(np.array([[100.0, 100.0], [300.0, 300.0]]))
    regions.selected_data = {len(regions.data) - 1}
    anonymous.title_edit.setText("Anonymous")
    anonymous.body_edit.setPlainText("hello")
    anonymous.post_button.click()
    assert "NANOREPO_TOKEN" in anonymous.status.text()
