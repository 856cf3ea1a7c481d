"""World nanometres <-> the region anchors the service stores, without a viewer."""

from __future__ import annotations

import numpy as np
import pytest

from nanorepo.annotations import normalise_anchor
from nanorepo.errors import InvalidInput
from nanorepo.napari import ImageGeometry

#: A 2-channel stack of 5 planes, 100 x 200 pixels of 20 nm, planes 100 nm apart.
STACK = ImageGeometry(
    name="cell",
    dims=("c", "z", "y", "x"),
    shape=(2, 5, 100, 200),
    levels=((2, 5, 100, 200), (2, 5, 50, 100)),
    scale={"c": 1.0, "z": 100.0, "y": 20.0, "x": 20.0},
    translation={"c": 0.0, "z": 0.0, "y": 0.0, "x": 0.0},
    pixel_sizes={"z": 100.0, "y": 20.0, "x": 20.0},
    channels=[{"name": "a"}, {"name": "b"}],
)


def test_a_box_is_a_rectangle_half_a_pixel_before_the_pixel_centres() -> None:
    anchor = normalise_anchor(
        {"kind": "region", "image": "cell", "shape": "box", "x": [100, 500], "y": [40, 1000]},
        STACK.catalog_row(),
    )
    kind, v = STACK.anchor_shape(anchor) or ("", np.empty(0))
    assert kind == "rectangle"
    # the origin (outer corner of pixel 0) is 10 nm before pixel 0's centre (world 0)
    assert v.tolist() == [[30, 90], [30, 490], [990, 490], [990, 90]]
    assert STACK.shape_anchor("rectangle", v) == anchor  # and back
    # a drawn rectangle has its vertices in any order, and leading (z) columns
    drawn = np.column_stack([np.full(4, 200.0), v[::-1]])
    assert STACK.shape_anchor("rectangle", drawn) == anchor


def test_polygons_and_other_shapes() -> None:
    pts = [[10.0, 10.0], [300.0, 50.0], [120.0, 900.0]]
    anchor = {"kind": "region", "image": "cell", "unit": "nanometer", "shape": "polygon",
              "points": pts}  # fmt: skip
    kind, v = STACK.anchor_shape(anchor) or ("", np.empty(0))
    assert kind == "polygon" and v.tolist() == [[0, 0], [40, 290], [890, 110]]  # (y, x)
    assert STACK.shape_anchor("polygon", v)["points"] == pts
    # a rotated rectangle is a polygon; an ellipse a 64-gon in its bounding box
    diamond = np.array([[500.0, 1000.0], [700.0, 1200.0], [500.0, 1400.0], [300.0, 1200.0]])
    got = STACK.shape_anchor("rectangle", diamond)
    assert got["shape"] == "polygon" and len(got["points"]) == 4
    ellipse = STACK.shape_anchor("ellipse", diamond)
    xy = np.asarray(ellipse["points"])
    assert len(xy) == 64
    np.testing.assert_allclose(xy.min(0), [1010.0, 310.0], atol=1e-6)
    np.testing.assert_allclose(xy.max(0), [1410.0, 710.0], atol=0.5)
    # dataset/image threads and other images' regions have no outline here
    assert STACK.anchor_shape({"kind": "image", "image": "cell"}) is None
    assert STACK.anchor_shape({**anchor, "image": "other"}) is None


def test_shapes_are_clipped_to_the_image_and_refused_outside_it() -> None:
    extent = (100 * 20.0, 200 * 20.0)  # y, x in nm
    over = np.array([[-500.0, -500.0], [-500.0, 5000.0], [300.0, 5000.0], [300.0, -500.0]])
    got = STACK.shape_anchor("rectangle", over)
    assert got["x"] == [0.0, extent[1]] and got["y"] == [0.0, 310.0]
    outside = np.array([[3000.0, 100.0], [3000.0, 200.0], [3100.0, 200.0], [3100.0, 100.0]])
    with pytest.raises(InvalidInput, match="outside the image"):
        STACK.shape_anchor("rectangle", outside)
    for kind in ("line", "path"):
        with pytest.raises(InvalidInput, match="encloses no area"):
            STACK.shape_anchor(kind, over[:2])
    with pytest.raises(InvalidInput, match="no area"):
        STACK.shape_anchor("polygon", np.array([[0.0, 0.0], [10.0, 10.0], [20.0, 20.0]]))


def test_the_plane_a_shape_was_drawn_on_becomes_its_z_range() -> None:
    box = np.array([[0.0, 0.0], [100.0, 100.0]])
    assert STACK.plane_index("z", 290.0) == 3 and STACK.plane_world("z", 3) == 300.0
    assert STACK.plane_index("z", 1e9) == 4  # clamped to the stack
    got = STACK.shape_anchor("rectangle", box, planes={"z": 3, "t": 7})
    assert got["z"] == [300.0, 400.0] and "t" not in got  # the image has no t axis
    flat = ImageGeometry.from_json({**STACK.to_json(), "shape": [2, 1, 100, 200]})
    assert "z" not in flat.shape_anchor("rectangle", box, planes={"z": 0})


def test_geometry_travels_as_json_and_keeps_foreign_offsets() -> None:
    assert ImageGeometry.from_json(STACK.to_json()) == STACK
    shifted = ImageGeometry.from_json(
        {**STACK.to_json(), "translation": {"c": 0, "z": 0, "y": 1000.0, "x": -40.0}}
    )
    assert (shifted.origin("y"), shifted.origin("x")) == (990.0, -50.0)
    anchor = {"kind": "region", "image": "cell", "unit": "nanometer", "shape": "box",
              "x": [0.0, 20.0], "y": [0.0, 20.0]}  # fmt: skip
    _, v = shifted.anchor_shape(anchor) or ("", np.empty(0))
    assert v.min(0).tolist() == [990.0, -50.0]
    assert shifted.shape_anchor("rectangle", v) == anchor
