"""Anchors: physical-unit regions validated against the image, mapped to any pyramid level."""

from __future__ import annotations

from typing import Any

import pytest

from nanorepo.annotations import normalise_anchor, region_to_pixels
from nanorepo.catalog.models import Image
from nanorepo.errors import InvalidInput
from tests.annotations.conftest import IMAGES

ROWS = {rec.name: Image(version_id=1, **rec.__dict__) for rec in IMAGES}
CELL, STACK, MOVIE = ROWS["cell1"], ROWS["stack"], ROWS["movie"]


def box(image: str = "cell1", **kw: Any) -> dict[str, Any]:
    return {"kind": "region", "image": image, "shape": "box", "x": [100, 200], "y": [0, 50], **kw}


def test_canonical_forms() -> None:
    assert normalise_anchor({"kind": "dataset"}) == {"kind": "dataset"}
    assert normalise_anchor({"kind": "dataset"}, CELL) == {"kind": "dataset"}
    assert normalise_anchor({"kind": "image", "image": "cell1"}, CELL) == {
        "kind": "image",
        "image": "cell1",
    }
    # unit and shape default; integers become floats; touching the border is inside.
    got = normalise_anchor({"kind": "region", "image": "cell1", "x": [0, 1280], "y": [5, 6]}, CELL)
    assert got == {"kind": "region", "image": "cell1", "unit": "nanometer", "shape": "box",
                   "x": [0.0, 1280.0], "y": [5.0, 6.0]}  # fmt: skip
    poly = {"kind": "region", "image": "stack", "unit": "nm", "shape": "polygon",
            "points": [[0, 0], [16020, 0], [8000.5, 20020]], "z": [100, 100], "c": [1, 0, 1],
            "t": None}  # fmt: skip
    del poly["t"]
    got = normalise_anchor(poly, STACK)
    assert got["unit"] == "nanometer" and got["c"] == [0, 1] and got["z"] == [100.0, 100.0]
    assert got["points"][2] == [8000.5, 20020.0]
    got = normalise_anchor({"kind": "image", "image": "movie", "t": [2, 9]}, MOVIE)
    assert got["t"] == [2, 9]


@pytest.mark.parametrize(
    ("anchor", "image", "match"),
    [
        ("dataset", None, "must be an object"),
        ({"kind": "cell"}, None, "anchor.kind must be one of dataset, image, region"),
        ({"kind": "dataset", "image": "cell1"}, None, "dataset anchor has no field"),
        ({"kind": "image"}, CELL, "anchor.image must name an image"),
        ({"kind": "image", "image": "nope"}, CELL, "'nope' is not an image of this"),
        ({"kind": "image", "image": "cell1"}, None, "not an image of this dataset version"),
        (box(colour="red"), CELL, r"region anchor has no field\(s\) colour"),
        (box(unit="pixel"), CELL, "anchor.unit must be 'nanometer'"),
        (box(shape="circle"), CELL, "anchor.shape must be 'box' or 'polygon'"),
        (box(x=[200, 100]), CELL, r"anchor.x = \[200, 100\] must have x0 < x1"),
        (box(y=[10, 10]), CELL, "must have y0 < y1"),
        (box(x=[0, 1281]), CELL, "extent along x is 0 to 1280 nm"),
        (box(y=[-1, 10]), CELL, "extent along y is 0 to 1280 nm"),
        (box(x=[0, float("nan")]), CELL, "finite numbers"),
        (box(x=[0, float("inf")]), CELL, "finite numbers"),
        (box(x=[True, 3]), CELL, "finite numbers"),
        (box(x=["0", "3"]), CELL, "finite numbers"),
        (box(x=[1, 2, 3]), CELL, "must be a pair"),
        ({**box(), "x": None}, CELL, "must be a pair"),
        ({"kind": "region", "image": "cell1", "y": [0, 1]}, CELL, "anchor.x is missing"),
        (box(points=[[0, 0], [1, 1], [0, 1]]), CELL, "points belongs to polygons"),
        (
            {"kind": "region", "image": "cell1", "shape": "polygon", "points": [[0, 0], [1, 1]]},
            CELL,
            "3 to 10,000",
        ),
        (
            {
                "kind": "region",
                "image": "cell1",
                "shape": "polygon",
                "points": [[0, 0], [1, 1], [2, 2]],
            },
            CELL,
            "enclose no area",
        ),
        (
            {
                "kind": "region",
                "image": "cell1",
                "shape": "polygon",
                "points": [[0, 0], [1, 1], [2, 5000]],
            },
            CELL,
            "extent along y",
        ),
        (
            {"kind": "region", "image": "cell1", "shape": "polygon", "points": [[0, 0]] * 10_001},
            CELL,
            "3 to 10,000",
        ),
        (box(z=[0, 100]), CELL, "image 'cell1' has no physical size along z"),
        (box("stack", z=[0, 501]), STACK, "extent along z is 0 to 500 nm"),
        (box("stack", z=[300, 200]), STACK, "must run upwards"),
        (box("stack", c=[2]), STACK, "channel indices run from 0 to 1"),
        (box("stack", c=[]), STACK, "non-empty list of channel indices"),
        (box("stack", c=[0.5]), STACK, "whole-number indices"),
        (box("movie", t=[0, 10]), MOVIE, "time indices run from 0 to 9"),
        (box("movie", t=[5, 4]), MOVIE, "first <= last"),
        (box("movie", t=[1]), MOVIE, "pair"),
    ],
)
def test_bad_anchors_say_which_field_and_range(anchor: Any, image: Any, match: str) -> None:
    with pytest.raises(InvalidInput, match=match) as info:
        normalise_anchor(anchor, image)
    assert info.value.hint  # every error says how to fix it


def test_region_to_pixels_at_every_level() -> None:
    # 20 nm pixels: [100, 200] nm covers pixels 5..9 at level 0.
    a = normalise_anchor(box(), CELL)
    assert region_to_pixels(a, CELL) == {"y": (0, 3), "x": (5, 10)}
    a = normalise_anchor(box("stack", x=[1000, 3000], y=[20020 - 40, 20020], z=[150, 260],
                             c=[1]), STACK)  # fmt: skip
    assert region_to_pixels(a, STACK, 0) == {"c": (1, 2), "z": (1, 3), "y": (999, 1001),
                                              "x": (50, 150)}  # fmt: skip
    # Level 2: pixels of 80 nm, shape (251, 201): the box scales, clipped to the level.
    assert STACK.levels[2] == [2, 5, 251, 201]
    assert region_to_pixels(a, STACK, 2) == {"c": (1, 2), "z": (1, 3), "y": (249, 251),
                                              "x": (12, 38)}  # fmt: skip
    # The same physical place is covered at every level.
    for level in range(len(STACK.levels)):
        px = region_to_pixels(a, STACK, level)
        step = 20.0 * 2**level
        assert px["x"][0] * step <= 1000 and px["x"][1] * step >= 3000
    # A polygon maps to its bounding box; an image anchor to the whole level.
    poly = normalise_anchor({"kind": "region", "image": "cell1", "shape": "polygon",
                             "points": [[30, 30], [90, 45], [50, 110]]}, CELL)  # fmt: skip
    assert region_to_pixels(poly, CELL) == {"y": (1, 6), "x": (1, 5)}
    whole = normalise_anchor({"kind": "image", "image": "movie", "t": [3, 3]}, MOVIE)
    assert region_to_pixels(whole, MOVIE) == {"t": (3, 4), "y": (0, 64), "x": (0, 64)}
    with pytest.raises(InvalidInput, match="levels run from 0 to 0"):
        region_to_pixels(whole, MOVIE, 1)
