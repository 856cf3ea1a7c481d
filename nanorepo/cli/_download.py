"""``nanorepo download ACCESSION[@vN] DEST [--bagit]``: every object of a version, verified.

Through the service (``NANOREPO_URL``, with the user's token) or, on the service's machine,
from the local repository's storage. Each object is checked against the version's SHA-256
manifests on arrival; an interrupted download resumes where it stopped when the same
command runs again (:mod:`nanorepo.transfer`).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn

from nanorepo.transfer import HttpSource, LocalSource, download

if TYPE_CHECKING:
    from nanorepo.cli._context import Context as _Ctx

__all__ = ["download_cmd"]

err = Console(stderr=True, highlight=False)


@click.command("download")
@click.argument("ref")
@click.argument("dest", type=click.Path(file_okay=False, path_type=Path))
@click.option("--workers", default=8, show_default=True, help="Objects fetched at once.")
@click.option("--bagit", is_flag=True, help="Make DEST/ACC@vN a BagIt bag (RFC 8493) when done.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@click.pass_obj
def download_cmd(c: _Ctx, ref: str, dest: Path, workers: int, bagit: bool, quiet: bool) -> None:
    """Download every object of a dataset version into DEST/ACC@vN, verified.

    REF is ACCESSION or ACCESSION@vN. Run the same command again to resume.
    """
    if c.remote:
        client = c.client
        source: HttpSource | LocalSource = HttpSource(client.url, client.auth_headers, ref)
    else:
        source = LocalSource(c.conn.show(ref))
    progress = Progress(
        "[progress.description]{task.description}", BarColumn(), DownloadColumn(),
        TransferSpeedColumn(), console=err, disable=quiet or not err.is_terminal,
    )  # fmt: skip
    with progress:
        task = progress.add_task(f"{source.accession}@v{source.number}", total=None)
        result = download(
            source,
            dest,
            workers=workers,
            bagit=bagit,
            on_plan=lambda n, size: progress.update(task, total=size),
            on_object=lambda size: progress.advance(task, size),
        )
    source.close()
    mb = 1e6
    err.print(
        f"{result.ref}: {result.objects:,} objects, {result.bytes_total / mb:,.1f} MB verified "
        f"in {result.root} ({result.bytes_fetched / mb:,.1f} MB fetched, "
        f"{result.bytes_reused / mb:,.1f} MB kept from before)"
        + ("; BagIt bag written" if result.bag else "")
    )
