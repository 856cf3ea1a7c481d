"""A napari window on a dataset version: what ``nanorepo view`` opens.

The layers are read before the window appears, so a dataset that does not exist (or that
the user may not see) is one clear error on the command line, not an empty window. The
window gets the image layers, the regions layer, the threads dock widget and napari's
scale bar (in nm, from the layers' units).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import TYPE_CHECKING

from nanorepo.errors import ConfigurationError
from nanorepo.napari._reader import read_layers
from nanorepo.napari._uri import SCHEME
from nanorepo.settings import Settings
from nanorepo.storage import check_name, parse_ref

if TYPE_CHECKING:
    import napari

__all__ = ["open_viewer", "require_napari"]

#: Window size of a screenshot (pixels), so figures are the same on every machine.
SCREENSHOT_SIZE = (1400, 860)


def require_napari() -> None:
    """Raise a clear error if napari or a Qt binding is missing."""
    try:
        import napari  # noqa: F401
        import qtpy  # noqa: F401  (raises if no Qt binding is installed)
    except Exception as exc:
        raise ConfigurationError(
            f"napari cannot start here: {exc}",
            hint="install the viewer with `pip install 'nanorepo[napari]'` (napari and a Qt "
            "binding); on a server without a screen, use the hub's desktop (docs/napari.md)",
        ) from exc


def open_viewer(
    ref: str,
    *,
    image: str | None = None,
    settings: Settings | None = None,
    show: bool = True,
    screenshot: str | os.PathLike[str] | None = None,
) -> napari.Viewer:
    """Open a dataset version (one image, or all) in a new napari window.

    Parameters
    ----------
    ref:
        ``ACCESSION`` or ``ACCESSION@vN``.
    image:
        One image's name; default every image of the version.
    settings:
        Storage, service and token (default: the environment).
    show:
        Whether the window is shown.
    screenshot:
        Save a PNG of the whole window (canvas, layer list, threads widget) there once the
        view has been drawn; the window is then closed and returned closed.

    Returns
    -------
    napari.Viewer
        The viewer; run the Qt event loop (``napari.run()``) to use it.
    """
    accession, version = parse_ref(ref)
    if image is not None:
        check_name(image)
    require_napari()
    import napari
    from napari.layers import Layer

    from nanorepo.napari._widget import ThreadsWidget

    settings = settings or Settings.from_env()
    target = accession if version is None else f"{accession}@v{version}"
    uri = SCHEME + target + (f"/{image}" if image else "")
    layers = read_layers(uri, settings=settings)
    viewer = napari.Viewer(title=f"nanorepo · {uri}", show=show or screenshot is not None)
    if screenshot is not None:
        viewer.window.resize(*SCREENSHOT_SIZE)
    for data in layers:
        viewer.add_layer(Layer.create(*data))
    viewer.window.add_dock_widget(
        ThreadsWidget(viewer, settings=settings), name="nanorepo threads", area="right"
    )
    viewer.canvas.overlays.scale_bar.visible = True
    viewer.reset_view()
    if screenshot is not None:
        _settle(viewer)
        path = Path(screenshot)
        path.parent.mkdir(parents=True, exist_ok=True)
        viewer.screenshot(str(path), canvas_only=False, flash=False)
        viewer.close()
    return viewer


def _settle(viewer: napari.Viewer, seconds: float = 1.5) -> None:
    """Let Qt lay the window out and napari draw; a multiscale layer picks the level it
    shows at its first draw and loads it afterwards, so a screenshot waits for that."""
    from qtpy.QtWidgets import QApplication

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        QApplication.processEvents()
        time.sleep(0.02)
