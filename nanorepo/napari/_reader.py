"""The napari reader: ``nanorepo://`` URIs and the service's Zarr URLs become layers.

napari asks :func:`get_reader` whether it can read a location; it returns ``None`` for
anything that is not nanorepo's (the npe2 contract, as napari-ome-zarr keeps it), and
:func:`read_layers` otherwise. Reading builds on :mod:`nanorepo.access`: the dataset comes
from the mounted storage through :func:`nanorepo.open` when it is there (a hub user's
server), and over HTTP from the service at ``NANOREPO_URL`` with the user's token otherwise
(a laptop). Every image becomes one multiscale layer per channel
(:mod:`nanorepo.napari._layers`) plus a Shapes layer of its region threads
(:mod:`nanorepo.napari._regions`) when a service is known; the threads are listed while the
images open.

Over HTTP, a location that names one image reads no API record at all when it names the
version too (a Zarr URL, ``nanorepo://ACC@vN/IMAGE``; one small request for the latest
version otherwise): the image's OME-Zarr holds everything the viewer needs, where a
notebook's ``nanorepo.open`` reads five records (dataset, version, sealed metadata, images,
files). Time to the first view is what a viewer is judged by, and
``benchmarks/bench_napari.py`` measured the difference.

A dataset the user may not see gets exactly the error of one that does not exist, as on
every other channel (the service answers both with the same 404).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from nanorepo.access import Dataset, Image
from nanorepo.errors import DatasetNotFound, InvalidImage, InvalidInput, NanorepoError
from nanorepo.napari._geometry import ImageGeometry
from nanorepo.napari._layers import image_layers
from nanorepo.napari._regions import RegionSource, region_layer
from nanorepo.napari._uri import SCHEME, Target, parse_target
from nanorepo.settings import Settings

if TYPE_CHECKING:
    from nanorepo.client import Client
    from nanorepo.ome import OmeZarrImage

__all__ = ["MAX_IMAGES", "LayerData", "get_reader", "read_layers"]

log = logging.getLogger(__name__)

#: Most images a location without an image name opens at once (a dataset may hold
#: thousands; name one with ``nanorepo://ACCESSION/IMAGE``).
MAX_IMAGES = 16

LayerData = tuple[Any, dict[str, Any], str]


def _single(path: object) -> str | None:
    if isinstance(path, list | tuple):
        return path[0] if len(path) == 1 and isinstance(path[0], str) else None
    return path if isinstance(path, str) else None


def get_reader(path: str | Sequence[str]) -> Callable[..., list[LayerData]] | None:
    """napari's reader hook: :func:`read_layers` for nanorepo locations, else ``None``.

    Every ``nanorepo://`` string is claimed (a malformed one then fails with a clear
    message instead of "no reader"); ``http(s)`` URLs only when they have the form of a
    service Zarr URL (``.../zarr/ACCESSION/vN/IMAGE``). Stacks of several paths are not
    nanorepo's.
    """
    location = _single(path)
    if location is None:
        return None
    if location.strip()[: len(SCHEME)].lower() == SCHEME:
        return read_layers
    try:
        return read_layers if parse_target(location) is not None else None
    except InvalidInput:
        return None


def read_layers(path: str | Sequence[str], *, settings: Settings | None = None) -> list[LayerData]:
    """Read a nanorepo location into napari layer data tuples.

    Parameters
    ----------
    path:
        ``nanorepo://ACCESSION[@vN][/IMAGE]`` or a service Zarr URL
        (``http(s)://HOST[/PREFIX]/zarr/ACCESSION/vN/IMAGE``).
    settings:
        Where the storage, service and token come from (default: the environment,
        ``NANOREPO_STORAGE``, ``NANOREPO_URL``, ``NANOREPO_TOKEN`` or the hub's
        ``JUPYTERHUB_API_TOKEN``).

    Returns
    -------
    list
        Per image: one ``(levels, kwargs, "image")`` per channel (multiscale, lazy, scale
        and translation in nm, channel name, colour and contrast window from the omero
        metadata), then ``(shapes, kwargs, "shapes")`` of its region threads when a
        service is known. Every layer's ``metadata["nanorepo"]`` names the dataset version,
        the image, its geometry and the thread source.

    Raises
    ------
    DatasetNotFound, VersionNotFound, ImageNotFound
        Nothing of that name that the user may see.
    InvalidInput
        A malformed location, or too many images to open without naming one.
    """
    location = _single(path)
    target = parse_target(location) if location is not None else None
    if target is None:
        raise InvalidInput(
            f"{path!r} is not a nanorepo location",
            hint="write nanorepo://ACCESSION[@vN][/IMAGE] or a service Zarr URL",
        )
    settings = settings or Settings.from_env()
    with ExitStack() as clients:
        return _read(target, settings, clients)


def _read(target: Target, settings: Settings, clients: ExitStack) -> list[LayerData]:
    opened = _open(target, settings, clients)
    sources = {
        name: RegionSource.for_service(
            opened.service, opened.accession, opened.version, name, settings
        )
        for name in opened.images
        if opened.service
    }
    # The threads are listed while the images open: two waits on the network at once.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="nanorepo-threads") as pool:
        listed = pool.submit(_threads, sources, settings, opened.client)
        omes = {name: open_image() for name, open_image in opened.images.items()}
        threads = listed.result()
    layers: list[LayerData] = []
    for name, ome in omes.items():
        layers.extend(_image_layers(opened, name, ome, sources.get(name), threads))
    return layers


def _threads(
    sources: dict[str, RegionSource], settings: Settings, client: Client | None
) -> dict[str, tuple[list[dict[str, Any]], str | None]]:
    """Each image's threads, or the reason they could not be read (the image still
    opens; the widget shows why)."""
    out: dict[str, tuple[list[dict[str, Any]], str | None]] = {}
    for name, source in sources.items():
        try:
            out[name] = (source.threads(settings, client=client), None)
        except NanorepoError as exc:
            log.warning("threads of %s@v%s/%s: %s", source.accession, source.version, name, exc)
            out[name] = ([], str(exc))
    return out


@dataclass(frozen=True)
class _Opened:
    """What the reader opens: a dataset version's images (name -> how to open its
    OME-Zarr) and the service its threads come from (``None``: images only)."""

    accession: str
    version: int
    images: dict[str, Callable[[], OmeZarrImage]]
    service: str | None
    client: Client | None = None  # open, to the service, with the token it may carry

    @property
    def ref(self) -> str:
        return f"{self.accession}@v{self.version}"

    @classmethod
    def of(
        cls, dataset: Dataset, target: Target, service: str | None, client: Client | None = None
    ) -> _Opened:
        if target.image is not None:
            images = [dataset.image(target.image)]
        elif len(dataset.images) > MAX_IMAGES:
            names = ", ".join(i.name for i in dataset.images[:5])
            raise InvalidInput(
                f"{dataset.ref} holds {len(dataset.images)} images; open one at a time",
                hint=f"name one: nanorepo://{dataset.ref}/IMAGE (images: {names}, ...)",
            )
        else:
            images = list(dataset.images)
        openers = {im.name: _opener(im) for im in images}
        return cls(dataset.accession, dataset.version, openers, service, client)


def _opener(image: Image) -> Callable[[], OmeZarrImage]:
    return lambda: image.zarr


def _open(target: Target, settings: Settings, clients: ExitStack) -> _Opened:
    """Find the target's images: on the mounted storage when the dataset is there
    (``nanorepo://`` only), else over HTTP at the service (the configured one, or the one
    a Zarr URL names; the token goes only to the configured one). A client it opens stays
    open in ``clients`` for the threads."""
    from nanorepo.access import open_from_storage

    service = target.service
    if service is None:
        try:  # the mount first: pixels are read in place, no HTTP
            local = open_from_storage(target.ref, settings)
            return _Opened.of(local, target, settings.url)
        except DatasetNotFound:
            if not settings.url:
                raise
        service = settings.url
    source = RegionSource.for_service(
        service, target.accession, target.version or 0, target.image or "", settings
    )
    if target.image is None:
        from nanorepo.access._remote import open_remote

        client = clients.enter_context(source.client(settings))
        return _Opened.of(open_remote(target.ref, client=client), target, service, client)
    # One image: its OME-Zarr says all the viewer needs, so no API record is read (a
    # notebook's nanorepo.open reads five: dataset, version, metadata, images, files).
    # Without a version, one small request finds the latest.
    opened_client: Client | None = None
    if target.version is None:
        opened_client = clients.enter_context(source.client(settings))
        version = int(opened_client.version(target.accession, None)["version"])
    else:  # no client here: the threads' worker makes its own while the image opens
        version = target.version
    name = target.image
    url = f"{source.service}/zarr/{target.accession}/v{version}/{name}"
    headers = source.headers(settings)

    def open_image() -> OmeZarrImage:
        from nanorepo.ome import OmeZarrImage

        try:
            return OmeZarrImage.open(url, headers=headers)
        except InvalidImage:
            # nothing there: the service says why, with the same words for a dataset one
            # may not see as for one that does not exist
            with source.client(settings) as c:
                c.image(target.accession, version, name)
            raise

    return _Opened(target.accession, version, {name: open_image}, service, opened_client)


def _image_layers(
    dataset: _Opened,
    name: str,
    ome: OmeZarrImage,
    source: RegionSource | None,
    threads: dict[str, tuple[list[dict[str, Any]], str | None]],
) -> list[LayerData]:
    geometry = ImageGeometry.of(name, ome)
    listed, problem = threads.get(name, ([], None))
    meta: dict[str, Any] = {
        "nanorepo": {
            "dataset": dataset.ref,
            "image": name,
            "uri": f"{SCHEME}{dataset.ref}/{name}",
            "geometry": geometry.to_json(),
            "regions": source.to_json() if source else None,
            "regions_error": problem,
        }
    }
    layers: list[LayerData] = list(image_layers(ome, name=name, metadata=meta))
    # Only an image with region threads gets a threads layer: an empty one would cost a
    # Shapes layer's set-up and first draw (~0.2-0.3 s in software GL, measured with
    # bench_napari.py) for nothing; the widget makes it when a region is drawn.
    if source is not None and any(t.get("anchor", {}).get("kind") == "region" for t in listed):
        layers.append(region_layer(listed, geometry, name=f"{name} · threads", metadata=meta))
    return layers
