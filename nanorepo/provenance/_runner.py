"""``nanorepo run``: execute a notebook with papermill and record what produced the result.

papermill executes (it injects parameters the way every papermill user knows, keeps the
executed notebook with its outputs, and reports the failing cell); nanorepo adds the
record around it, with nothing for the notebook author to do:

- the kernel starts with ``NANOREPO_RUN_JOURNAL`` set, so every dataset version, image and
  file the notebook opens through :func:`nanorepo.open`, and every value it names with
  :func:`nanorepo.record`, is noted (:mod:`nanorepo.access._journal`);
- the environment (interpreter, kernel, packages, container image, host) is captured once
  per process;
- the run is registered as ``running`` before the first cell executes, and ends
  ``succeeded`` or ``failed`` (with the error and the partial executed notebook), or
  ``interrupted`` (Ctrl-C; or SIGKILL, found by :func:`sweep` at the next ``nanorepo``
  command through the marker file each run keeps in ``NANOREPO_HOME/runs-active/``);
- the executed notebook and every file written to the output directory are published
  with their digests, all or nothing.

Where records go is a :class:`~nanorepo.provenance.RunStore` the caller hands in: the local
repository (:class:`~nanorepo.provenance.Runs`) or the service
(:class:`~nanorepo.client.RemoteRuns`). This module does not choose: the front door
(:mod:`nanorepo.connection`, behind ``nanorepo.run`` and the CLI) does.
"""

from __future__ import annotations

import json
import mimetypes
import os
import re
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nanorepo.access import read_journal
from nanorepo.errors import InvalidInput, NanorepoError
from nanorepo.provenance._environment import capture_environment
from nanorepo.provenance._record import Input, NotebookRef, Output, RunError, RunRecord, utcnow
from nanorepo.provenance._store import MAX_NOTED, Runs, RunStore
from nanorepo.settings import Settings
from nanorepo.storage import hash_file, sha256_hex, walk_files

__all__ = [
    "ActiveRun",
    "load_notebook",
    "process_alive",
    "run",
    "sweep",
]


def load_notebook(path: str | os.PathLike[str]) -> tuple[Path, bytes, dict[str, Any]]:
    """Read a notebook: its path, exact bytes (what the digest covers) and JSON; a clear
    error for what is not an nbformat 4 notebook."""
    import nbformat

    p = Path(path)
    try:
        data = p.read_bytes()
    except FileNotFoundError:
        raise InvalidInput(f"no notebook at {p}", hint="give the path of an .ipynb file") from None
    except IsADirectoryError:
        raise InvalidInput(f"{p} is a directory, not a notebook") from None
    try:
        nb = nbformat.reads(data.decode("utf-8"), as_version=4)
        nbformat.validate(nb)
    except Exception as exc:  # nbformat raises several types for malformed input
        raise InvalidInput(
            f"{p} is not a valid Jupyter notebook: {str(exc).splitlines()[0][:200]}",
            hint="open and save it in JupyterLab, or check it with `jupyter nbconvert --to notebook`",
        ) from None
    return p, data, dict(nb)


def _parameter_names(nb: Mapping[str, Any]) -> list[str]:
    """Names assigned in the cell tagged ``parameters`` (as papermill finds it)."""
    import ast

    for cell in nb.get("cells", ()):
        if cell.get("cell_type") == "code" and "parameters" in cell.get("metadata", {}).get(
            "tags", ()
        ):
            try:
                tree = ast.parse(cell.get("source", ""))
            except SyntaxError:
                return []
            names: list[str] = []
            for node in tree.body:
                targets = node.targets if isinstance(node, ast.Assign) else []
                if isinstance(node, ast.AnnAssign):
                    targets = [node.target]
                names.extend(t.id for t in targets if isinstance(t, ast.Name))
            return names
    return []


def _kernel_of(nb: Mapping[str, Any], kernel: str | None) -> str:
    if kernel:
        return kernel
    spec = nb.get("metadata", {}).get("kernelspec") or {}
    return str(spec.get("name") or "python3")


@dataclass(frozen=True)
class ActiveRun:
    """The marker of a run in progress on this machine (``home/runs-active/<id>.json``)."""

    id: str
    pid: int
    started: float
    url: str | None

    @staticmethod
    def directory(settings: Settings) -> Path:
        return settings.home / "runs-active"


def process_start_time(pid: int) -> float | None:
    """When process ``pid`` started (seconds since boot, from ``/proc``), or ``None``."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return float(stat.rsplit(")", 1)[1].split()[19]) / os.sysconf("SC_CLK_TCK")


def process_alive(pid: int, started: float) -> bool:
    """Whether the process that was ``pid`` (started at ``started``) still runs; a pid the
    system gave to another process since counts as dead."""
    if pid <= 0:
        return False
    now = process_start_time(pid)
    if now is None:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    return started <= 0 or abs(now - started) < 0.5


@contextmanager
def _marker(settings: Settings, run_id: str) -> Iterator[Path]:
    """Keep the marker (and the journal next to it) while the run is in progress."""
    d = ActiveRun.directory(settings)
    d.mkdir(parents=True, exist_ok=True)
    marker = d / f"{run_id}.json"
    journal = d / f"{run_id}.journal"
    pid = os.getpid()
    marker.write_text(
        json.dumps(
            {
                "id": run_id,
                "pid": pid,
                "started": process_start_time(pid) or 0.0,
                "url": settings.url,
            }
        )
    )
    try:
        yield journal
    finally:
        marker.unlink(missing_ok=True)
        journal.unlink(missing_ok=True)


def sweep(settings: Settings, store: RunStore) -> list[str]:
    """Mark runs of this home whose process died (SIGKILL, a crash) ``interrupted``.

    Cheap when nothing is running (one directory listing): every ``nanorepo`` command calls
    it. Returns the ids marked.
    """
    d = ActiveRun.directory(settings)
    try:
        markers = sorted(d.glob("*.json"))
    except OSError:
        return []
    done: list[str] = []
    for m in markers:
        try:
            a = ActiveRun(**json.loads(m.read_text()))
        except (OSError, ValueError, TypeError):
            continue
        if process_alive(a.pid, a.started) or (a.url or None) != (settings.url or None):
            continue
        # a run never registered, or not ours to see: just forget the marker
        with suppress(NanorepoError):
            _report_journal(store, a.id, d / f"{a.id}.journal")
            store.interrupt(a.id)
        m.unlink(missing_ok=True)
        (d / f"{a.id}.journal").unlink(missing_ok=True)
        done.append(a.id)
    return done


def _report_journal(store: RunStore, run_id: str, journal: Path) -> None:
    """Record what an ending run's journal noted before it is marked ``interrupted``, so it
    is judged on what it read (a run recorded by the service has reported each input
    already; a local one has not)."""
    inputs = read_journal(journal).inputs
    for start in range(0, len(inputs), MAX_NOTED):
        store.note_inputs(run_id, [Input(**i) for i in inputs[start : start + MAX_NOTED]])


def _kernel_manager_class(env: Mapping[str, str]) -> type:
    """A kernel manager that starts the kernel with ``env`` added to its environment
    (papermill passes no environment through; nbclient takes a manager class).

    An IPython kernel logs only errors: its warnings (such as "running over TCP without
    encryption", said of every loopback kernel) would reach the terminal of ``nanorepo
    run`` and, for a run started from a notebook, that notebook's output, where they say
    nothing about the analysis. What the notebook prints is unaffected.
    """
    from jupyter_client.manager import AsyncKernelManager

    extra = dict(env)

    class RunKernelManager(AsyncKernelManager):
        async def _async_pre_start_kernel(self, **kw: Any) -> Any:
            kw["env"] = {**(kw.get("env") or os.environ), **extra}
            spec = self.kernel_spec
            if spec is not None and any("ipykernel" in str(a) for a in spec.argv):
                kw["extra_arguments"] = [
                    *kw.get("extra_arguments", []),
                    "--IPKernelApp.log_level=ERROR",
                ]
            return await super()._async_pre_start_kernel(**kw)

    return RunKernelManager


def _outputs(output_dir: Path, executed_name: str) -> tuple[list[Output], dict[str, Path]]:
    outputs: list[Output] = []
    files: dict[str, Path] = {}
    for p in walk_files(output_dir):
        if p.is_symlink():
            continue  # a link may point anywhere: only files the run wrote are outputs
        name = p.relative_to(output_dir).as_posix()
        d = hash_file(p)
        media = mimetypes.guess_type(name)[0] or "application/octet-stream"
        if name.endswith(".ipynb"):
            media = "application/x-ipynb+json"
        role = "executed-notebook" if name == executed_name else "output"
        outputs.append(Output(name, d.sha256, d.size, media, role))  # type: ignore[arg-type]
        files[name] = p
    return outputs, files


_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def _error_of(exc: BaseException) -> RunError:
    from papermill.exceptions import PapermillExecutionError

    if isinstance(exc, PapermillExecutionError):
        return RunError(
            ename=str(exc.ename),
            evalue=str(exc.evalue),
            traceback=tuple(_ANSI.sub("", str(t)) for t in exc.traceback),
            cell=int(exc.cell_index),
        )
    return RunError(ename=type(exc).__name__, evalue=str(exc))


def run(
    notebook: str | os.PathLike[str],
    parameters: Mapping[str, Any] | None = None,
    *,
    output_dir: str | os.PathLike[str] | None = None,
    kernel: str | None = None,
    settings: Settings | None = None,
    store: RunStore,
    batch: str | None = None,
    item: str | None = None,
    rerun_of: str | None = None,
    pins: tuple[str, ...] = (),
    log: Callable[[str], None] | None = None,
    execute: bool = True,
    before_finish: Callable[[RunRecord], Mapping[str, bytes]] | None = None,
) -> RunRecord:
    """Execute ``notebook`` with papermill and record its provenance.

    Parameters
    ----------
    notebook:
        The ``.ipynb`` to run; its exact bytes are stored (by digest) with the record.
    parameters:
        Injected as papermill does (after the cell tagged ``parameters``). If the notebook
        has an ``output_dir`` parameter and none is given, it gets the run's output directory.
    output_dir:
        Where the executed notebook and the notebook's files go; must be empty or absent.
        Default ``./nanorepo-runs/<run id>``. The kernel runs with it as working directory.
    kernel:
        Kernel name; default the notebook's own kernelspec (``python3``).
    settings, store:
        Where records go (:func:`nanorepo.run` hands in the one of the repository this
        process reaches, :func:`nanorepo.connection.connect`).
    batch, item, rerun_of, pins:
        Set by :func:`run_batch` and :func:`rerun`: the batch and item this run is for, the
        run it repeats, the dataset versions bare accessions resolve to.
    execute:
        ``False`` records the run without executing (benchmarks measure capture alone).
    before_finish:
        Called with the finished record before its outputs are published; the files it
        returns (name → bytes) are written to the output directory and become outputs
        too (``rerun`` adds its reproducibility report this way).

    Returns
    -------
    RunRecord
        The final record (``succeeded`` or ``failed``; a failed notebook does not raise).
        Ctrl-C marks the run ``interrupted`` and re-raises.
    """
    settings = settings or Settings.from_env()
    sweep(settings, store)
    path, nb_bytes, nb = load_notebook(notebook)
    params = dict(parameters or {})
    run_id = uuid.uuid4().hex
    out = Path(output_dir) if output_dir is not None else Path.cwd() / "nanorepo-runs" / run_id
    out = out.expanduser().resolve()
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise InvalidInput(
            f"output directory {out} is not empty",
            hint="give a new or empty --output-dir: a run's outputs are exactly what it wrote",
        )
    if "output_dir" in _parameter_names(nb) and "output_dir" not in params:
        params["output_dir"] = str(out)
    kernel_name = _kernel_of(nb, kernel)
    env = capture_environment(kernel_name, image=settings.container_image)
    record = RunRecord(
        id=run_id,
        agent=settings.user,
        status="running",
        started=utcnow(),
        notebook=NotebookRef(path.name, sha256_hex(nb_bytes), len(nb_bytes)),
        parameters=params,
        environment=env,
        batch=batch,
        item=item,
        rerun_of=rerun_of,
    )
    record = store.begin(record, nb_bytes).with_(environment=env, parameters=params)
    out.mkdir(parents=True, exist_ok=True)
    executed = out / path.name
    error: RunError | None = None
    with _marker(settings, run_id) as journal:
        kernel_env = {**settings.to_env(), "NANOREPO_RUN_JOURNAL": str(journal)}
        if isinstance(store, Runs):  # recorded here: the kernel reports inputs to no service
            kernel_env["NANOREPO_RUN_REPORT"] = "0"
        if pins:
            kernel_env["NANOREPO_RUN_PINS"] = " ".join(pins)
        try:
            if execute:
                import papermill

                papermill.execute_notebook(
                    str(path), str(executed), parameters=params, kernel_name=kernel_name,
                    cwd=str(out), progress_bar=False, log_output=log is not None,
                    kernel_manager_class=_kernel_manager_class(kernel_env),
                )  # fmt: skip
            else:
                executed.write_bytes(nb_bytes)
        except KeyboardInterrupt:
            with suppress(NanorepoError):
                _report_journal(store, run_id, journal)
            store.interrupt(run_id)
            raise
        except Exception as exc:
            error = _error_of(exc)
        contents = read_journal(journal)
        outputs, files = _outputs(out, executed.name)
        final = record.with_(
            status="failed" if error else "succeeded",
            ended=utcnow(),
            inputs=tuple(Input(**i) for i in contents.inputs),
            outputs=tuple(outputs),
            values=contents.values,
            error=error,
        )
        if before_finish is not None:
            for name, data in before_finish(final).items():
                (out / name).write_bytes(data)
            outputs, files = _outputs(out, executed.name)
            final = final.with_(outputs=tuple(outputs))
        try:
            return store.finish(final, files)
        except BaseException:
            with suppress(Exception):  # the original error is the one to report
                _report_journal(store, run_id, journal)
            with suppress(Exception):
                store.interrupt(run_id)
            raise
