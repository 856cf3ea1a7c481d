"""``nanorepo cite ACCESSION[@vN] [--format F]``: how to cite a dataset version.

Through the service (``NANOREPO_URL``) it asks the service's citation route, so the URL
in the citation is the one the service is published under; on the service's machine it
formats the local repository's version the same way (:mod:`nanorepo.citation`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from nanorepo.citation import FORMATS
from nanorepo.storage import parse_ref

if TYPE_CHECKING:
    from nanorepo.cli._context import Context as _Ctx

__all__ = ["cite_cmd"]


@click.command("cite")
@click.argument("ref")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(list(FORMATS)),
    default="text",
    show_default=True,
    help="bibtex, ris and csl-json for reference managers; apa and vancouver as written "
    "in a paper; datacite-json/-xml for registries.",
)
@click.pass_obj
def cite_cmd(c: _Ctx, ref: str, fmt: str) -> None:
    """Print the citation of a dataset version (REF: ACCESSION or ACCESSION@vN)."""
    acc, ver = parse_ref(ref)
    if c.remote:
        path = f"/datasets/{acc}/versions/{f'v{ver}' if ver else 'latest'}/citation"
        text = c.client._request("GET", path, accession=acc, params={"format": fmt}).text
    else:
        from nanorepo.citation import CitationRecord, cite

        record = CitationRecord.from_show(c.conn.show(ref), c.settings.public_url)
        text = cite(record, fmt)
    click.echo(text, nl=not text.endswith("\n"))
