"""Where a Web Annotation made by another tool points, as a nanorepo anchor.

Other tools (Annotorious, Recogito, Mirador, IIIF viewers) place an annotation on an image
with a ``SpecificResource`` whose ``source`` is the image and whose ``selector`` is a Media
Fragments ``xywh=`` box (``FragmentSelector``, in pixels or percent) or an inline SVG shape
(``SvgSelector``), both in the image's full-resolution pixels; or they name the image (or
the dataset) by IRI alone. nanorepo anchors are physical (nanometres from the image's
origin), so pixels are scaled by the image's pixel size and percent by its extent.

The SVG is parsed by lxml without entities, DTDs or network access (a DOCTYPE is refused
outright); only straight-edged shapes map to a region (a box or a polygon), so a path
with curves or arcs, a circle, or a transformed shape is reported, not approximated.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote, urlsplit

from lxml import etree

from nanorepo.catalog.models import Dataset, Image
from nanorepo.errors import InvalidInput

__all__ = ["MAX_SVG_CHARS", "TARGET_HINT", "foreign_anchor"]

#: Longest inline SVG an SvgSelector may carry, in characters.
MAX_SVG_CHARS = 1_000_000
TARGET_HINT = (
    "a target is mapped when it carries nanorepo:anchor, names an image or the dataset by "
    "IRI, or selects part of an image with a FragmentSelector (xywh=pixel:… or "
    "xywh=percent:…) or an SvgSelector (one polygon, rect or straight-edged path, in the "
    "image's full-resolution pixels)"
)
_XYWH = re.compile(r"xywh=(?:(pixel|percent):)?" + ",".join([r"(\d+(?:\.\d+)?)"] * 4))
_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_PATH_TOKEN = re.compile(rf"\s*(?:([A-Za-z])|({_NUMBER}))\s*,?")
_SVG_SHAPES = {"polygon", "polyline", "rect", "path", "circle", "ellipse", "line"}
_SVG_PARSER = etree.XMLParser(
    resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False
)


def _need(cond: bool, where: str, problem: str, hint: str = "") -> None:
    if not cond:
        raise InvalidInput(f"{where}: {problem}", hint=hint or TARGET_HINT)


def _named(ref: Any, images: Mapping[str, Image], accession: str) -> Image | str | None:
    """The image an IRI (or resource object) names, ``"dataset"`` if it names the dataset
    or one of its versions, ``None`` otherwise.

    An image is named by a path segment after ``images/`` (nanorepo's own URIs, e.g.
    ``…/versions/1/images/cell1``) or by the last segment, with file extensions dropped
    (``https://viewer.example/img/cell1.png``, or just ``cell1``)."""
    if isinstance(ref, Mapping):
        ref = ref.get("id")
    if not isinstance(ref, str) or not ref or len(ref) > 2_000:
        return None
    path = urlsplit(ref).path if "://" in ref else ref
    segs = [unquote(p) for p in path.split("/") if p]
    if not segs:
        return None
    k = len(segs) - 1 - segs[::-1].index("images") if "images" in segs[:-1] else len(segs) - 1
    name = segs[k + 1] if k < len(segs) - 1 else segs[k]
    while name:
        if name in images:
            return images[name]
        name = name.rpartition(".")[0]
    if re.fullmatch(rf"{re.escape(accession)}(?:@v\d+)?", segs[-1]) or (
        len(segs) >= 3 and segs[-3] == accession and segs[-2] == "versions"
    ):
        return "dataset"
    return None


def _pixel_nm(where: str, image: Image, axis: str) -> tuple[float, float]:
    """Pixel size (nm) of ``image`` along ``axis`` and its extent (nm)."""
    size = float((image.pixel_sizes or {}).get(axis) or 0.0)
    _need(axis in image.dims and size > 0, where,
          f"image {image.name!r} has no pixel size along {axis}, so a selector in pixels "
          "or percent cannot be placed", TARGET_HINT)  # fmt: skip
    return size, size * int(image.shape[image.dims.index(axis)])


def _svg_points(where: str, shape: Any) -> tuple[str, list[tuple[float, float]]]:
    """``("box", [corner, corner])`` or ``("polygon", vertices)`` of one SVG shape
    element, in the SVG's own (pixel) coordinates."""
    tag = etree.QName(shape).localname
    bad = f"the SvgSelector's <{tag}>"

    def num(attr: str) -> float:
        raw = shape.get(attr, "0")
        _need(re.fullmatch(_NUMBER, raw.strip()) is not None, where,
              f"{bad} has {attr}={raw!r}, not a number in pixels", TARGET_HINT)  # fmt: skip
        return float(raw)

    if tag == "rect":
        x, y, w, h = num("x"), num("y"), num("width"), num("height")
        return "box", [(x, y), (x + w, y + h)]
    if tag in {"polygon", "polyline"}:
        nums = re.findall(_NUMBER, shape.get("points", ""))
        _need(len(nums) % 2 == 0, where, f"{bad} has an odd number of coordinates",
              TARGET_HINT)  # fmt: skip
        return "polygon", [(float(a), float(b)) for a, b in zip(nums[::2], nums[1::2], strict=True)]
    if tag == "path":
        return "polygon", _path_points(where, shape.get("d", ""))
    raise InvalidInput(
        f"{where}: {bad} cannot be mapped: nanorepo regions are boxes and polygons",
        hint=TARGET_HINT,
    )


def _path_points(where: str, d: str) -> list[tuple[float, float]]:
    """Vertices of an SVG path made of straight lines only (M, L, H, V, Z; absolute or
    relative), one outline."""
    pts: list[tuple[float, float]] = []
    cmd, pos = "", 0
    args: list[float] = []
    x = y = 0.0
    while pos < len(d.rstrip()):
        m = _PATH_TOKEN.match(d, pos)
        _need(m is not None, where, f"the SvgSelector's path has {d[pos:pos + 20]!r}, which "
              "is not path data", TARGET_HINT)  # fmt: skip
        assert m is not None
        pos = m.end()
        if m[1]:
            cmd = m[1]
            _need(cmd in "MmLlHhVvZz", where,
                  f"the SvgSelector's path has curves or arcs ({cmd}), which a polygon "
                  "region cannot hold", TARGET_HINT)  # fmt: skip
            _need(cmd not in "Mm" or not pts, where,
                  "the SvgSelector's path has several outlines; give one", TARGET_HINT)  # fmt: skip
            args = []
            continue
        _need(cmd not in {"", "Z", "z"}, where, "the SvgSelector's path has numbers "
              "outside a command", TARGET_HINT)  # fmt: skip
        args.append(float(m[2]))
        rel = cmd.islower()
        if cmd in "Hh":
            x, args = (x if rel else 0.0) + args[0], []
        elif cmd in "Vv":
            y, args = (y if rel else 0.0) + args[0], []
        elif len(args) == 2:
            x, y = (x if rel else 0.0) + args[0], (y if rel else 0.0) + args[1]
            args = []
            cmd = {"M": "L", "m": "l"}.get(cmd, cmd)  # pairs after a move are lines
        else:
            continue
        pts.append((x, y))
    if len(pts) > 1 and pts[0] == pts[-1]:
        pts.pop()
    return pts


def _svg_region(where: str, value: Any) -> tuple[str, list[tuple[float, float]]]:
    _need(isinstance(value, str) and 0 < len(value) <= MAX_SVG_CHARS, where,
          f"an SvgSelector needs its SVG inline as value (at most {MAX_SVG_CHARS:,} "
          "characters)", TARGET_HINT)  # fmt: skip
    _need("<!DOCTYPE" not in value and "<!ENTITY" not in value, where,
          "the SvgSelector's SVG declares a DOCTYPE or entities, which are not read",
          TARGET_HINT)  # fmt: skip
    try:
        root = etree.fromstring(value.encode(), _SVG_PARSER)
    except etree.XMLSyntaxError:
        raise InvalidInput(f"{where}: the SvgSelector's value is not well-formed SVG",
                           hint=TARGET_HINT) from None  # fmt: skip
    shapes = [e for e in root.iter() if isinstance(e.tag, str)
              and etree.QName(e).localname in _SVG_SHAPES]  # fmt: skip
    _need(len(shapes) == 1, where, f"the SvgSelector holds {len(shapes)} shapes; a region "
          "is one polygon, rect or path", TARGET_HINT)  # fmt: skip
    _need(all(e.get("transform") is None for e in shapes[0].iterancestors(None))
          and shapes[0].get("transform") is None, where,
          "the SvgSelector's shape is transformed, which is not mapped", TARGET_HINT)  # fmt: skip
    return _svg_points(where, shapes[0])


def _selected(where: str, sel: Any, image: Image) -> dict[str, Any]:
    """Region anchor fields (nm) of a FragmentSelector or SvgSelector on ``image``."""
    _need(isinstance(sel, Mapping), where, "a selector must be an object", TARGET_HINT)
    kind = sel.get("type")
    (px, ex), (py, ey) = _pixel_nm(where, image, "x"), _pixel_nm(where, image, "y")
    if kind == "FragmentSelector":
        value = sel.get("value")
        m = _XYWH.fullmatch(value.strip()) if isinstance(value, str) else None
        _need(m is not None, where, f"FragmentSelector {value!r} is not a Media Fragments "
              "box (xywh=x,y,w,h, xywh=pixel:… or xywh=percent:…)", TARGET_HINT)  # fmt: skip
        assert m is not None
        x, y, w, h = (float(g) for g in m.groups()[1:])
        sx, sy = (ex / 100, ey / 100) if m[1] == "percent" else (px, py)
        return {"shape": "box", "x": [x * sx, (x + w) * sx], "y": [y * sy, (y + h) * sy]}
    if kind == "SvgSelector":
        shape, pts = _svg_region(where, sel.get("value"))
        nm = [[vx * px, vy * py] for vx, vy in pts]
        if shape == "box":
            return {"shape": "box", "x": sorted(p[0] for p in nm), "y": sorted(p[1] for p in nm)}
        return {"shape": "polygon", "points": nm}
    raise InvalidInput(
        f"{where}: a {kind!r} selector cannot be mapped to a place in an image",
        hint=TARGET_HINT,
    )


def foreign_anchor(
    where: str, target: Any, images: Mapping[str, Image], dataset: Dataset
) -> tuple[dict[str, Any], Image | None]:
    """The anchor of a target written by another tool (no ``nanorepo:anchor``)."""
    acc = dataset.accession
    source = target.get("source", target.get("id")) if isinstance(target, Mapping) else target
    named = _named(source, images, acc)
    _need(named is not None, where,
          f"the target {str(source)[:200]!r} names neither an annotation of this collection, "
          f"an image of {acc} ({', '.join(sorted(images)) or 'none'}) nor the dataset",
          TARGET_HINT)  # fmt: skip
    selectors = target.get("selector") if isinstance(target, Mapping) else None
    if selectors is None:
        if isinstance(named, Image):
            return {"kind": "image", "image": named.name}, named
        return {"kind": "dataset"}, None
    _need(isinstance(named, Image), where,
          "a selector needs an image as its source, not the dataset", TARGET_HINT)  # fmt: skip
    assert isinstance(named, Image)
    alternatives = selectors if isinstance(selectors, list) else [selectors]
    problems: list[str] = []
    for sel in alternatives[:16]:  # alternatives describe the same segment: the first mapped
        try:
            region = _selected(where, sel, named)
        except InvalidInput as exc:
            problems.append(exc.message.removeprefix(f"{where}: "))
            continue
        return {"kind": "region", "image": named.name, "unit": "nanometer", **region}, named
    raise InvalidInput(f"{where}: {'; '.join(problems) or 'no selector'}", hint=TARGET_HINT)
