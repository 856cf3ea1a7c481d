"""Commands about analyses with provenance: ``run``, ``rerun``, ``runs``, ``prov``.

They work on the local repository, or through the service when ``NANOREPO_URL`` is set (a
user server, whose storage is read-only): the run executes here, next to the data, and
its record goes to the service.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

if TYPE_CHECKING:
    from nanorepo.cli._context import Context as _Ctx
    from nanorepo.provenance import RunRecord

__all__ = ["COMMANDS", "parse_value"]

err = Console(stderr=True, highlight=False)
out = Console(highlight=False, soft_wrap=True)


def parse_value(text: str) -> Any:
    """A ``-p NAME VALUE`` value typed as papermill's CLI types it: True, False, None,
    integers and floats; anything else stays a string."""
    if text in ("True", "False"):
        return text == "True"
    if text == "None":
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def _ctx() -> _Ctx:
    obj: _Ctx = click.get_current_context().find_root().obj
    return obj


def _summary(rec: RunRecord) -> None:
    colour = {"succeeded": "green", "failed": "red", "interrupted": "yellow"}.get(rec.status, "")
    out.print(f"run {rec.id}  [{colour}]{rec.status}[/{colour}]  {escape(rec.notebook.name)}")
    for i in rec.inputs:
        out.print(f"  read    {escape(i.ref)}  sha256:{i.sha256[:12]}")
    for o in rec.outputs:
        out.print(f"  wrote   {escape(o.name)}  sha256:{o.sha256[:12]}  {o.size} B")
    for k, v in rec.values.items():
        out.print(f"  value   {escape(k)} = {escape(json.dumps(v))[:200]}")
    if rec.error is not None:
        out.print(
            f"  [red]error[/red]   {escape(rec.error.ename)}: {escape(rec.error.evalue)[:500]}"
        )


@click.command("run")
@click.argument("notebook", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "-p", "--parameter", "params", nargs=2, multiple=True, metavar="NAME VALUE",
    help="A parameter to inject (papermill style: numbers, True/False/None are typed).",
)  # fmt: skip
@click.option(
    "--output-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where results go (new or empty). Default: ./nanorepo-runs/<run id>.",
)
@click.option("--kernel", help="Kernel name. Default: the notebook's own.")
@click.option("--over", "query", help="Run once per dataset (or image) this search matches.")
@click.option(
    "--per", type=click.Choice(["dataset", "image"]), default="dataset", show_default=True,
    help="With --over: one run per matching dataset or per image.",
)  # fmt: skip
@click.option("--jobs", type=click.IntRange(1, 256), default=2, show_default=True,
              help="With --over: runs in parallel.")  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="Print the record as JSON.")
def run_cmd(
    notebook: Path,
    params: tuple[tuple[str, str], ...],
    output_dir: Path | None,
    kernel: str | None,
    query: str | None,
    per: str,
    jobs: int,
    as_json: bool,
) -> None:
    """Run NOTEBOOK with papermill and record its provenance.

    The record lists the dataset versions, images and files the notebook opened with
    nanorepo.open, the parameters, the environment, and every output with its digest.
    With --over QUERY, the notebook runs once per match (parameters `accession`, and
    `image` with --per image, are set for each), in parallel; running the same command
    again resumes the batch.
    """
    from nanorepo.provenance import run, run_batch

    c = _ctx()
    parameters = {name: parse_value(value) for name, value in params}
    if query is None:
        rec = run(notebook, parameters, output_dir=output_dir, kernel=kernel,
                  settings=c.conn.settings, store=c.runs)  # fmt: skip
        if as_json:
            click.echo(json.dumps(rec.to_json(), indent=2))
        else:
            _summary(rec)
        if rec.status != "succeeded":
            raise SystemExit(1)
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    with Progress(
        "[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
        TimeElapsedColumn(), console=err, disable=as_json,
    ) as bar:  # fmt: skip
        task = bar.add_task(f"{notebook.name} over {query!r}", total=None)

        def progress(done: int, total: int, rec: RunRecord | None) -> None:
            bar.update(task, completed=done, total=total)
            if rec is not None and rec.status != "succeeded":
                bar.console.print(f"[red]{rec.status}[/red] {escape(rec.item or '')}: run {rec.id}")

        from nanorepo.connection import batch_items, run_store

        batch = run_batch(
            notebook, query, per=per, parameters=parameters, jobs=jobs,  # type: ignore[arg-type]
            output_dir=output_dir, kernel=kernel, settings=c.conn.settings, progress=progress,
            store=c.runs, open_store=run_store, items=lambda q, p: batch_items(c.conn, q, p),
        )  # fmt: skip
    if as_json:
        click.echo(json.dumps(batch.to_json(), indent=2))
    else:
        ok = sum(r["status"] == "succeeded" for r in batch.runs)
        out.print(f"batch {batch.id}  {batch.status}: {ok} of {len(batch.runs)} runs succeeded")
    if batch.status != "succeeded":
        raise SystemExit(1)


@click.command("rerun")
@click.argument("run_id")
@click.option("--output-dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--rtol", type=click.FloatRange(min=0), default=1e-6, show_default=True,
              help="Relative tolerance for recorded values.")  # fmt: skip
@click.option("--atol", type=click.FloatRange(min=0), default=0.0, show_default=True,
              help="Absolute tolerance for recorded values.")  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def rerun_cmd(
    run_id: str, output_dir: Path | None, rtol: float, atol: float, as_json: bool
) -> None:
    """Run RUN_ID again (same notebook, parameters, input versions) and report whether it
    reproduces: outputs identical by digest, recorded values equal within tolerance, or
    different; plus what changed in the environment. Exit code 0 unless different."""
    from nanorepo.provenance import rerun

    c = _ctx()
    again, report = rerun(
        run_id,
        output_dir=output_dir,
        rtol=rtol,
        atol=atol,
        settings=c.conn.settings,
        store=c.runs,
    )
    if as_json:
        click.echo(json.dumps(report.to_json(), indent=2))
    else:
        colour = {"identical": "green", "equal within tolerance": "cyan"}.get(report.verdict, "red")
        out.print(f"re-run {again.id} of {report.original}: [{colour}]{report.verdict}[/{colour}]")
        f, v = report.files, report.values
        for name in f["differ"]:
            out.print(f"  file differs    {escape(name)}")
        for name in f["missing"]:
            out.print(f"  file missing    {escape(name)}")
        for name in f["added"]:
            out.print(f"  file added      {escape(name)}")
        for name, (a, b) in v["within_tolerance"].items():
            out.print(f"  value ≈         {escape(name)}: {a} → {b}")
        for name, (a, b) in v["differ"].items():
            out.print(f"  [red]value differs[/red]   {escape(name)}: {a} → {b}")
        env = report.environment
        if env.get("packages"):
            p = env["packages"]
            out.print(f"  environment: {len(p['changed'])} packages changed, "
                      f"{len(p['added'])} added, {len(p['removed'])} removed")  # fmt: skip
        for k in ("python", "image", "host"):
            if k in env:
                out.print(f"  environment: {k} {env[k][0]} → {env[k][1]}")
    if report.verdict == "different":
        raise SystemExit(1)


@click.command("runs")
@click.argument("run_id", required=False)
@click.option("--dataset", help="Runs that read ACCESSION[@vN].")
@click.option("--status", type=click.Choice(["running", "succeeded", "failed", "interrupted"]))
@click.option("--batch", help="Runs of a batch.")
@click.option("--limit", type=click.IntRange(1, 1000), default=20, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print records as JSON.")
def runs_cmd(
    run_id: str | None,
    dataset: str | None,
    status: str | None,
    batch: str | None,
    limit: int,
    as_json: bool,
) -> None:
    """List runs you may see (newest first), or show RUN_ID's record."""
    c = _ctx()
    if run_id is not None:
        rec = c.runs.get(run_id)
        if as_json:
            click.echo(json.dumps(rec.to_json(), indent=2))
        else:
            _summary(rec)
        return
    found = c.conn.find_runs(dataset=dataset, status=status, batch=batch, limit=limit)
    if as_json:
        click.echo(json.dumps([r.to_json() for r in found], indent=2))
        return
    t = Table(box=None)
    for col in ("run", "status", "notebook", "read", "started", "agent"):
        t.add_column(col)
    for r in found:
        t.add_row(
            r.id[:12], r.status, escape(r.notebook.name),
            escape(", ".join(sorted({f"{i.accession}@v{i.version}" for i in r.inputs}))),
            r.started.strftime("%Y-%m-%d %H:%M"), escape(r.agent),
        )  # fmt: skip
    out.print(t)


COMMANDS = [run_cmd, rerun_cmd, runs_cmd]


_FORMATS = ["tree", "json", "prov-json", "provn", "dot", "svg", "crate"]


def _focus(target: str) -> tuple[str, Path | None]:
    """What ``nanorepo prov TARGET`` is about: an accession, a run, or a file (by digest)."""
    p = Path(target)
    if p.is_file():
        from nanorepo.storage import hash_file

        return hash_file(p).sha256, p
    return target, None


@click.command("prov")
@click.argument("target")
@click.option("--format", "fmt", type=click.Choice(_FORMATS), default="tree", show_default=True,
              help="tree: upstream and downstream in the terminal; W3C PROV (JSON, PROV-N); "
              "Graphviz DOT or SVG; an RO-Crate zip (of a run).")  # fmt: skip
@click.option("-o", "--output", "dest", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the export to this file (default: standard output; needed for svg "
              "and crate).")  # fmt: skip
def prov_cmd(target: str, fmt: str, dest: Path | None) -> None:
    """Show where TARGET came from and what came of it: ACCESSION[@vN], a RUN id (or
    prefix), or a FILE (a run's output, found by its SHA-256)."""
    from nanorepo.provenance import (
        Lineage,
        lineage_dot,
        lineage_of,
        lineage_tree,
        prov_json,
        prov_n,
        render_svg,
        to_prov,
        write_crate,
    )

    c = _ctx()
    focus, file = _focus(target)
    if fmt in ("svg", "crate") and dest is None:
        raise click.UsageError(f"--format {fmt} needs -o FILE")
    if c.remote:
        output = None
        if file is not None:
            found = list(c.client.runs(output_sha256=focus, page_size=1))
            if not found:
                raise click.ClickException(
                    f"no run you can see wrote {file} (sha256 {focus[:12]}…)"
                )
            rec = found[0]
            output = next(o["name"] for o in rec["outputs"] if o["sha256"] == focus)
            focus = rec["id"]
        lineage = c.client.lineage(focus, output=output)
        assert isinstance(lineage, Lineage)
    else:
        lineage = c.repo.runs.lineage(focus)
    if fmt == "tree":
        out.print(lineage_tree(lineage))
        return
    if fmt == "crate":
        runs = list(lineage.runs)
        if c.remote:
            if len(runs) != 1:
                raise click.UsageError("--format crate takes one RUN through the service")
            assert dest is not None
            dest.write_bytes(c.client.run_crate(runs[0].id))
        else:
            store = c.repo.runs
            assert dest is not None
            made = write_crate(lineage_of(runs, lineage.batches, focus=lineage.focus),
                               dest.with_suffix(""), zip=True,
                               files=lambda rid, name: store.crate_file(runs, rid, name))  # fmt: skip
            made.replace(dest)
        err.print(f"RO-Crate written to {dest}")
        return
    if fmt == "json":
        data = json.dumps(lineage.to_json(), indent=2).encode()
    elif fmt in ("prov-json", "provn"):
        doc = to_prov(lineage, namespace=c.settings.url)
        data = (prov_json(doc) if fmt == "prov-json" else prov_n(doc)).encode()
    elif fmt == "dot":
        data = lineage_dot(lineage).encode()
    else:
        data = render_svg(lineage_dot(lineage))
    if dest is None:
        click.echo(data.decode())
    else:
        dest.write_bytes(data)
        err.print(f"{fmt} written to {dest}")


COMMANDS.append(prov_cmd)
