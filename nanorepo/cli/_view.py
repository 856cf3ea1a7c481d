"""``nanorepo view ACCESSION[@vN] [--image NAME]``: the dataset in napari.

Opens a napari window with the version's images (one multiscale layer per channel, read
lazily from the mounted storage or over HTTP from ``NANOREPO_URL`` with the user's
token), the region threads of each image as shapes, and the threads dock widget
(:mod:`nanorepo.napari`). ``--screenshot PNG`` draws the view, saves it and exits, which
is how figures are made and how it runs on a machine without a screen (under Xvfb).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click
from rich.console import Console

if TYPE_CHECKING:
    from nanorepo.cli._context import Context as _Ctx

__all__ = ["view_cmd"]

err = Console(stderr=True, highlight=False)


@click.command("view")
@click.argument("ref")
@click.option("--image", "image", metavar="NAME", help="Open only this image of the version.")
@click.option(
    "--screenshot",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Save a PNG of the window once drawn, then exit (no event loop).",
)
@click.pass_obj
def view_cmd(c: _Ctx, ref: str, image: str | None, screenshot: Path | None) -> None:
    """View a dataset version in napari: images lazily, region threads as shapes.

    REF is ACCESSION or ACCESSION@vN. Images come from the mounted storage when it is
    there, else over HTTP from NANOREPO_URL with NANOREPO_TOKEN (or the hub's token);
    threads come from the service. Needs napari and a Qt binding
    (`pip install 'nanorepo[napari]'`).
    """
    from nanorepo.napari import open_viewer

    viewer = open_viewer(ref, image=image, settings=c.settings, screenshot=screenshot)
    if screenshot is not None:
        err.print(f"saved {screenshot}")
        return
    import napari

    napari.run()
    viewer.close()
