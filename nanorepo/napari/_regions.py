"""Region threads as a napari Shapes layer, and the service calls behind it.

Each thread anchored to a region of the image is one shape (a box as a rectangle, a
polygon as a polygon) in world nanometres (:mod:`nanorepo.napari._geometry`), with the
thread's id, title, status and author as features, the title as text, open threads in
yellow and resolved ones dimmed grey. Shapes the user draws into the layer get status
``new`` (cyan) until the dock widget posts them as threads.

Threads live in the service only (it is the only writer and decides who may read them),
so they come through :class:`nanorepo.Client`. The token goes only to the configured
service: a Zarr URL dragged in from another host is read anonymously, so a user's token
never leaves for a server it was not issued by.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from nanorepo.napari._geometry import ImageGeometry
from nanorepo.settings import Settings

if TYPE_CHECKING:
    from nanorepo.client import Client

__all__ = [
    "FEATURE_DEFAULTS",
    "STATUS_COLORS",
    "RegionSource",
    "edge_width_nm",
    "feature_columns",
    "region_layer",
    "region_shapes",
]

#: Edge and text colour (RGBA) per thread status; ``new`` marks drawn, unposted shapes.
STATUS_COLORS: dict[str, list[float]] = {
    "open": [1.0, 0.83, 0.0, 1.0],
    "resolved": [0.62, 0.62, 0.62, 0.45],
    "new": [0.0, 0.9, 1.0, 1.0],
}
#: Thread features of the layer, with the values new shapes get.
FEATURE_DEFAULTS: dict[str, Any] = {"thread": 0, "title": "", "status": "new", "author": ""}


@dataclass(frozen=True)
class RegionSource:
    """Where the threads of one image come from: a service, a dataset version, an image.

    Attributes
    ----------
    service:
        The service root URL.
    accession, version:
        The dataset version the image was opened from (new threads are written against
        it).
    image:
        The image's name.
    authenticated:
        Whether the configured token is sent (only to the configured service).
    """

    service: str
    accession: str
    version: int
    image: str
    authenticated: bool = True

    def to_json(self) -> dict[str, Any]:
        return {
            "service": self.service,
            "accession": self.accession,
            "version": self.version,
            "image": self.image,
            "authenticated": self.authenticated,
        }

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> RegionSource:
        return cls(
            service=str(doc["service"]),
            accession=str(doc["accession"]),
            version=int(doc["version"]),
            image=str(doc["image"]),
            authenticated=bool(doc.get("authenticated", True)),
        )

    @classmethod
    def for_service(
        cls, service: str, accession: str, version: int, image: str, settings: Settings
    ) -> RegionSource:
        """A source that sends the configured token only if ``service`` is the configured
        service (``NANOREPO_URL``)."""
        same = bool(settings.url) and _root(service) == _root(settings.url or "")
        return cls(_root(service), accession, version, image, authenticated=same)

    def client(self, settings: Settings | None = None) -> Client:
        """A client of the service, with the configured token when it is the configured
        service, else anonymous. Close it after use."""
        from nanorepo.client import Client

        settings = settings or Settings.from_env()
        token = (settings.token or "") if self.authenticated else ""
        return Client(self.service, token)

    def headers(self, settings: Settings | None = None) -> dict[str, str]:
        """The headers that carry the token to this service (none for another service),
        as :attr:`nanorepo.Client.auth_headers` has them, without making a client."""
        token = (settings or Settings.from_env()).token if self.authenticated else None
        return {"Authorization": f"token {token}"} if token else {}

    def threads(
        self, settings: Settings | None = None, *, client: Client | None = None
    ) -> list[dict[str, Any]]:
        """The image's threads that the caller may see (every page), oldest first.

        ``client``: an open client of this service with the same token to use (a new
        client costs an SSL context, tens of ms, even for http URLs).
        """
        if client is not None and _root(client.url) == self.service:
            return list(client.threads(self.accession, image=self.image))
        with self.client(settings) as c:
            return list(c.threads(self.accession, image=self.image))

    def create(
        self,
        title: str,
        body: str,
        anchor: Mapping[str, Any],
        settings: Settings | None = None,
    ) -> dict[str, Any]:
        """Post a new thread about a region (an anchor from
        :meth:`ImageGeometry.shape_anchor`) against this version; the service records the
        token's user as its author."""
        with self.client(settings) as c:
            return c.create_thread(self.accession, title, body, anchor=anchor, version=self.version)

    def reply(self, thread_id: int, body: str, settings: Settings | None = None) -> dict[str, Any]:
        """Post a reply to a thread."""
        with self.client(settings) as c:
            return c.reply(self.accession, thread_id, body)


def _root(url: str) -> str:
    return url.rstrip("/")


def region_shapes(
    threads: Iterable[Mapping[str, Any]], geometry: ImageGeometry
) -> tuple[list[np.ndarray], list[str], dict[str, list[Any]]]:
    """The shapes of the region threads among ``threads``.

    Returns
    -------
    tuple
        ``(vertices, shape_types, features)``: one ``(N, 2)`` array of world ``(y, x)``
        nanometres and one napari shape type per region thread of the image, and the
        feature columns ``thread``, ``title``, ``status``, ``author``. Threads about the
        dataset or the whole image have no outline and are left out.
    """
    data: list[np.ndarray] = []
    kinds: list[str] = []
    features: dict[str, list[Any]] = {k: [] for k in FEATURE_DEFAULTS}
    for t in threads:
        shape = geometry.anchor_shape(t.get("anchor") or {})
        if shape is None:
            continue
        kinds.append(shape[0])
        data.append(shape[1])
        features["thread"].append(int(t["id"]))
        features["title"].append(str(t.get("title", "")))
        features["status"].append(str(t.get("status", "open")))
        features["author"].append(str(t.get("created_by", "")))
    return data, kinds, features


def feature_columns(features: Mapping[str, list[Any]]) -> dict[str, np.ndarray]:
    """Typed feature columns (an int id, strings): an empty layer must still give the
    shapes drawn into it the defaults, which napari casts to each column's type."""
    return {
        k: np.asarray(v, dtype=np.int64 if k == "thread" else object) for k, v in features.items()
    }


def edge_width_nm(geometry: ImageGeometry) -> float:
    """An outline width that shows at the whole-image view: 1/250 of the shorter side."""
    return max(min(geometry.extent_nm("y"), geometry.extent_nm("x")) / 250.0, 1e-6)


def region_layer(
    threads: Iterable[Mapping[str, Any]],
    geometry: ImageGeometry,
    *,
    name: str,
    metadata: dict[str, Any],
) -> tuple[list[np.ndarray], dict[str, Any], str]:
    """The napari layer data tuple of an image's region threads (a Shapes layer).

    ``metadata`` (JSON-able) goes on the layer, so the dock widget knows the image and the
    service. The layer is 2D (``y``, ``x``): in a stack it shows on every plane.
    """
    data, kinds, features = region_shapes(threads, geometry)
    width = edge_width_nm(geometry)
    kwargs: dict[str, Any] = {
        "name": name,
        "shape_type": kinds or "rectangle",
        "features": feature_columns(features),
        "feature_defaults": dict(FEATURE_DEFAULTS),
        # per shape by status; an empty layer's colour is what shapes drawn into it get
        "edge_color": [STATUS_COLORS.get(s, STATUS_COLORS["open"]) for s in features["status"]]
        or STATUS_COLORS["new"],
        "edge_width": width,
        "face_color": "transparent",
        "opacity": 1.0,  # outlines and titles in their status colours, not blended
        "units": ["nm", "nm"],
        "axis_labels": ["y", "x"],
        "text": text_style(),
        "metadata": metadata,
    }
    return data, kwargs, "shapes"


def text_style() -> dict[str, Any]:
    """The text of the layer: each shape's title, coloured like its outline."""
    from napari.layers.utils.color_encoding import NominalColorEncoding

    color = NominalColorEncoding(
        feature="status",
        colormap={"colormap": STATUS_COLORS, "fallback_color": "white"},
    )
    return {"string": "{title}", "color": color, "anchor": "upper_left", "size": 10}
