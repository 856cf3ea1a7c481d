"""The ``nanorepo`` command line.

click parses arguments (well kept, composable groups, testable with ``CliRunner``);
rich prints tables for people. Every command takes ``--json`` for scripts; errors are
one clear message on stderr and a non-zero exit code, never a traceback.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from nanorepo.cli._context import Context
from nanorepo.cli._runs import COMMANDS as RUN_COMMANDS
from nanorepo.cli._service import COMMANDS
from nanorepo.errors import InvalidInput, NanorepoError

__all__ = ["cli", "main"]

err = Console(stderr=True, highlight=False)
out = Console(highlight=False, soft_wrap=True)


def _emit(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))


#: The group's object (kept under this name: commands in other modules annotate with it).
_Ctx = Context


pass_ctx = click.make_pass_decorator(_Ctx)


def _progress(enabled: bool) -> Callable[[str], None] | None:
    if not enabled:
        return None
    return lambda msg: err.print(f"[dim]·[/dim] {msg}")


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option(
    "--home",
    type=click.Path(file_okay=False),
    envvar="NANOREPO_HOME",
    help="Repository home (catalog, storage, staging). Default: $NANOREPO_HOME or ~/.nanorepo.",
)
@click.option(
    "--local",
    is_flag=True,
    help="Use the local repository even when NANOREPO_URL is set (operators on the "
    "service's machine).",
)
@click.version_option(package_name="nanorepo")
@click.pass_context
def cli(ctx: click.Context, home: str | None, local: bool) -> None:
    """nanorepo: an open reference data repository for nanoscopy.

    Deposit super-resolution datasets, open them lazily in physical units, verify that
    every stored byte is still what was published.

    \b
    Where the repository is: NANOREPO_URL (a repository's service, with NANOREPO_TOKEN;
    on a JupyterHub server both are set for you), else NANOREPO_HOME or --home (a
    repository on this machine), else ~/.nanorepo if `nanorepo init` made one there.
    Through the service (no catalog needed):
      list, search, show, cite, download, history, set, grant, release, embargo,
      deposit (upload),
      run, rerun, runs (the run executes here; its record goes to the service)
    Commands marked (operator) act on the local repository only (its catalog and
    storage): init, revise, verify, demo, serve, token, user; with NANOREPO_URL set they
    need --local.
    """
    ctx.obj = Context(home, local=local)
    ctx.call_on_close(ctx.obj.close)
    if (ctx.obj.settings.home / "runs-active").is_dir():  # a run may have been killed
        from nanorepo.provenance import sweep

        try:
            store = ctx.obj.runs
        except NanorepoError:  # not pointed at a repository: the command will say so
            return
        for run_id in sweep(ctx.obj.settings, store):
            err.print(f"run {run_id} was interrupted (its process ended without finishing)")


@cli.command("deposit")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--title", required=True, help="Dataset title.")
@click.option(
    "--metadata",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Deposit metadata file (YAML or JSON, REMBI sections; see docs/metadata.md).",
)
@click.option(
    "--embargo-until",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    help="Keep the dataset embargoed until this date (YYYY-MM-DD).",
)
@click.option(
    "--supporting",
    multiple=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="A supporting file to keep with the dataset (ground truth, protocol); repeatable.",
)
@click.option(
    "--pattern",
    help="File-name pattern for a directory of TIFF planes, e.g. '{name}_t{t}_c{c}_z{z}.tif'.",
)
@click.option(
    "--derived-from",
    metavar="RUN",
    help="These files are outputs of RUN (checked by digest): the dataset's provenance "
    "points to the run.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@pass_ctx
def deposit_cmd(
    c: _Ctx,
    paths: tuple[Path, ...],
    title: str,
    metadata: Path | None,
    embargo_until: Any,
    supporting: tuple[Path, ...],
    pattern: str | None,
    derived_from: str | None,
    as_json: bool,
) -> None:
    """Deposit image files and localisation tables as a new dataset.

    Accepts OME-TIFF, TIFF and ImageJ hyperstacks, directories of TIFF planes, OME-Zarr,
    and SMLM localisation tables (ThunderSTORM CSV, plain x/y[/z] nm tables, Parquet).
    The accession is the last line printed. Interrupted? Run the same command again: it
    resumes without converting finished images again. With NANOREPO_URL set, the files
    are uploaded to the service (at most 2 GiB; larger datasets go through your staging
    area, nanorepo.Client().deposit_staged).
    """
    until = embargo_until.date() if embargo_until else None
    if c.remote:
        d = c.client.deposit(
            list(paths),
            title,
            metadata,
            until,
            supporting=list(supporting),
            pattern=pattern,
            derived_from=derived_from,
        )
        if as_json:
            _emit(d)
            return
        err.print(f"uploaded and deposited as [bold]{d['ref']}[/bold]")
        click.echo(d["accession"])
        return
    res = c.repo.deposit(
        list(paths),
        title=title,
        metadata=metadata,
        embargo_until=until,
        supporting=list(supporting),
        pattern=pattern,
        progress=_progress(not as_json),
        derived_from=derived_from,
    )
    if as_json:
        _emit(res.to_json())
        return
    err.print(
        f"deposited {len(res.images)} image(s) and {len(res.files)} file(s) as "
        f"[bold]{res.accession}@v{res.version}[/bold]" + (" (resumed)" if res.resumed else "")
    )
    click.echo(res.accession)


def _parse_replace(values: tuple[str, ...]) -> dict[str, Path]:
    out = {}
    for v in values:
        name, sep, path = v.partition("=")
        if not sep or not name or not path:
            raise InvalidInput(f"--replace {v!r} must be IMAGE=PATH")
        out[name] = Path(path)
    return out


@cli.command("revise")
@click.argument("accession")
@click.option("--metadata", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--add", multiple=True, type=click.Path(path_type=Path), help="Add an image/table.")
@click.option("--replace", multiple=True, help="IMAGE=PATH: replace an image; repeatable.")
@click.option("--supporting", multiple=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--note", default="", help="What this version changes (kept with the version).")
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def revise_cmd(
    c: _Ctx,
    accession: str,
    metadata: Path | None,
    add: tuple[Path, ...],
    replace: tuple[str, ...],
    supporting: tuple[Path, ...],
    note: str,
    as_json: bool,
) -> None:
    """(operator) Publish a new version: corrected metadata, added or replaced images.

    Unchanged images are shared with the previous version, never copied.
    """
    res = c.repo.revise(
        accession,
        metadata=metadata,
        add=list(add),
        replace=_parse_replace(replace),
        supporting=list(supporting),
        note=note,
        progress=_progress(not as_json),
    )
    if as_json:
        _emit(res.to_json())
        return
    err.print(f"published [bold]{res.accession}@v{res.version}[/bold]")
    click.echo(f"{res.accession}@v{res.version}")


@cli.command("set")
@click.argument("accession")
@click.argument("assignments", nargs=-1, required=True)
@click.option("--reason", required=True, help="Why (kept in the history).")
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def set_cmd(
    c: _Ctx, accession: str, assignments: tuple[str, ...], reason: str, as_json: bool
) -> None:
    """Change administrative metadata: KEY=VALUE ... (title, keywords, license, ...)."""
    changes: dict[str, str] = {}
    for a in assignments:
        k, sep, v = a.partition("=")
        if not sep or not k:
            raise InvalidInput(f"{a!r} is not KEY=VALUE", hint="e.g. license=CC0-1.0")
        changes[k.strip()] = v
    revs = c.conn.set_metadata(accession, changes, reason=reason)
    if as_json:
        _emit(revs)
        return
    if not revs:
        err.print("nothing changed (the values were already set)")
    for r in revs:
        out.print(f"{r['key']}: {r['old']!r} -> {r['new']!r}")


@cli.command("history")
@click.argument("accession")
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def history_cmd(c: _Ctx, accession: str, as_json: bool) -> None:
    """Every change of a dataset's administrative metadata: who, when, old -> new, why."""
    revs = c.conn.history(accession)
    if as_json:
        _emit(revs)
        return
    t = Table("rev", "when (UTC)", "who", "field", "old -> new", "reason", box=None)
    for r in revs:
        t.add_row(
            str(r["rev"]),
            r["when"][:19],
            r["who"],
            r["key"],
            f"{r['old']!r} -> {r['new']!r}",
            r["reason"],
        )
    out.print(t)


def _summary_table(rows: list[dict[str, Any]], total: int) -> None:
    t = Table("accession", "version", "access", "title", box=None)
    for r in rows:
        acc = r["access"] + (f" until {r['embargo_until']}" if r["embargo_until"] else "")
        t.add_row(r["accession"], f"v{r['latest_version']}", acc, r["title"])
    out.print(t)
    err.print(f"{len(rows)} of {total} dataset(s)")


@cli.command("list")
@click.option("--offset", default=0, type=click.IntRange(min=0))
@click.option("--limit", default=100, type=click.IntRange(1, 10000))
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def list_cmd(c: _Ctx, offset: int, limit: int, as_json: bool) -> None:
    """List datasets."""
    rows, total = c.conn.search("", offset=offset, limit=limit)
    if as_json:
        _emit({"total": total, "offset": offset, "items": rows})
        return
    _summary_table(rows, total)


def _requote(word: str) -> str:
    """The shell removed the quotes of ``organism:"Homo sapiens"``; put them back."""
    field, sep, value = word.partition(":")
    if sep and " " in value:
        return f'{field}:"{value}"'
    return f'"{word}"' if " " in word else word


@cli.command("search")
@click.argument("query", nargs=-1)
@click.option("--offset", default=0, type=click.IntRange(min=0))
@click.option("--limit", default=50, type=click.IntRange(1, 10000))
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def search_cmd(c: _Ctx, query: tuple[str, ...], offset: int, limit: int, as_json: bool) -> None:
    """Full-text search with field filters, e.g. nuclear pore technique:STED organism:"Homo sapiens".

    Fields: accession, access, author, cell_line, fluorophore, instrument, keyword,
    license, organism, target, technique.
    """
    q = " ".join(_requote(w) for w in query)
    rows, total = c.conn.search(q, offset=offset, limit=limit)
    if as_json:
        _emit({"query": q, "total": total, "offset": offset, "items": rows})
        return
    _summary_table(rows, total)


@cli.command("show")
@click.argument("ref")
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def show_cmd(c: _Ctx, ref: str, as_json: bool) -> None:
    """Show a dataset version: metadata, images (with storage paths) and files."""
    d = c.conn.show(ref)
    if as_json:
        _emit(d)
        return
    out.print(f"[bold]{d['ref']}[/bold]  {d['title']}")
    out.print(
        f"access: {d['access']}"
        + (f" until {d['embargo_until']}" if d["embargo_until"] else "")
        + f"   licence: {d['license'] or '-'}   versions: 1..{d['latest_version']}"
    )
    out.print(f"cite as: {d['ref']}   manifest sha256: {d['manifest_sha256']}")
    bio = d["metadata"].get("biosample") or {}
    if bio:
        out.print(
            "biosample: "
            + ", ".join(f"{k}={v}" for k, v in bio.items() if isinstance(v, str | int))
        )
    t = Table("image", "dims", "shape", "dtype", "pixel size (nm)", "technique", "levels", box=None)
    for im in d["images"]:
        px = " ".join(f"{k}={v:g}" for k, v in im["pixel_sizes"].items())
        t.add_row(
            im["name"],
            "".join(im["dims"]),
            "x".join(map(str, im["shape"])),
            im["dtype"],
            px,
            im["technique"],
            str(len(im["levels"])),
        )
    out.print(t)
    if d["files"]:
        ft = Table("file", "role", "bytes", box=None)
        for f in d["files"]:
            ft.add_row(f["name"], f["role"], str(f["size_bytes"]))
        out.print(ft)
    out.print(f'[dim]open it: nanorepo.open("{d["ref"]}").images[0].to_xarray()[/dim]')


@cli.command("verify")
@click.argument("ref", required=False)
@click.option("--all-versions", is_flag=True, help="Verify every version, not one.")
@click.option("--all", "every", is_flag=True, help="Verify every version of every dataset.")
@click.option("--workers", type=click.IntRange(min=1), help="Hashing threads (default: cores).")
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def verify_cmd(
    c: _Ctx, ref: str | None, all_versions: bool, every: bool, workers: int | None, as_json: bool
) -> None:
    """(operator) Re-hash every stored object of ACCESSION[@vN] (or, with --all, of every
    dataset) and report what differs.

    Reports changed and missing objects, links and special files (never followed), objects
    no manifest lists anywhere in the dataset, catalog digests that disagree with storage
    and a dataset in the wrong storage area; exits 1 if there is any.
    """
    if every == bool(ref):
        raise click.UsageError("give ACCESSION[@vN], or --all for every dataset")
    reports = (
        c.repo.verify_all(workers=workers)
        if every
        else c.repo.verify(ref or "", all_versions=all_versions, workers=workers)
    )
    ok = all(r.ok for r in reports)
    if as_json:
        _emit([r.to_json() for r in reports])
    else:
        for r in reports:
            mb = r.bytes_checked / 1e6
            rate = mb / r.seconds if r.seconds else 0.0
            status = "[green]ok[/green]" if r.ok else f"[red]{len(r.problems)} problem(s)[/red]"
            out.print(
                f"{r.accession}@v{r.version}: {status} — {r.objects_checked} objects, "
                f"{mb:.1f} MB in {r.seconds:.2f} s ({rate:.0f} MB/s)"
            )
            for p in r.problems:
                detail = (
                    f" expected {p.expected[:12]}… got {p.actual[:12]}…"
                    if p.actual and p.expected
                    else ""
                )
                out.print(f"  {p.kind:10s} {p.path}{detail} {p.detail}")
    sys.exit(0 if ok else 1)


@cli.command("init")
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def init_cmd(c: Context, as_json: bool) -> None:
    """(operator) Create an empty repository (catalog, storage) in --home / NANOREPO_HOME.

    Nothing else creates one: every other command stops with an error where there is
    none. Running it again on an existing repository changes nothing (it is migrated to
    this version's catalog schema).
    """
    from nanorepo.repository import catalog_exists

    existed = catalog_exists(c.settings.database_url)
    repo = c.creating()
    repo.ready()
    repo.layout.root.mkdir(parents=True, exist_ok=True)
    if as_json:
        _emit({"home": str(c.settings.home), "created": not existed})
        return
    what = "repository already there" if existed else "created an empty repository"
    err.print(f"{what}: {c.settings.home}")
    err.print(
        "next: `nanorepo deposit FILES --title ...`, or `nanorepo demo` for the reference data"
    )


@cli.command("demo")
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def demo_cmd(c: _Ctx, as_json: bool) -> None:
    """(operator) Generate and deposit the reference datasets (synthetic, known truth).

    Running it again deposits nothing new: datasets already there are left as they are.
    """
    from nanorepo.cli._demo import deposit_demo

    results = deposit_demo(c.creating(), progress=_progress(not as_json))
    if as_json:
        _emit(results)
        return
    for r in results:
        out.print(
            f"{r['accession']}  {r['title']}" + ("  (already there)" if r["existing"] else "")
        )
    err.print(f"home: {c.settings.home}")


for _command in COMMANDS + RUN_COMMANDS:  # serve, token, user, grant, ...; run, rerun, runs
    cli.add_command(_command)
cli.add_command(__import__("nanorepo.cli._up", fromlist=["up_cmd"]).up_cmd)  # nanorepo up
cli.add_command(__import__("nanorepo.cli._view", fromlist=["view_cmd"]).view_cmd)  # view
cli.add_command(__import__("nanorepo.cli._cite", fromlist=["cite_cmd"]).cite_cmd)  # cite
cli.add_command(__import__("nanorepo.cli._download", fromlist=["download_cmd"]).download_cmd)


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``nanorepo`` console script."""
    try:
        cli.main(args=argv, prog_name="nanorepo", standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        err.print("aborted")
        sys.exit(130)
    except NanorepoError as exc:
        err.print(f"[red]error:[/red] {escape(exc.message)}")
        if exc.hint:
            err.print(f"  hint: {escape(exc.hint)}")
        sys.exit(1)
    except KeyboardInterrupt:
        err.print("interrupted; run the same command again to resume")
        sys.exit(130)
