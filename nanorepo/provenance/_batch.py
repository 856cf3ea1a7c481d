"""``nanorepo run NOTEBOOK --over QUERY``: one notebook over many datasets or images.

Each matching dataset version (``--per dataset``) or image (``--per image``) is an *item*;
the notebook runs once per item with ``accession="S-NANO1@v2"`` (and ``image="cell1"``)
injected, each run its own record, the batch a record grouping them. Items are pinned to
the version that was latest when the batch first ran, so a resumed batch analyses the same
data.

Runs execute in parallel in a process pool (each papermill run drives its own kernel, so a
few worker processes keep the cores busy), or on a Dask Gateway cluster when
``DASK_GATEWAY__ADDRESS`` is set (through ``distributed``'s ``concurrent.futures``
executor, so both paths are the same code). The batch is identified by what it does (see
:class:`~nanorepo.provenance.BatchRecord`): running it again after Ctrl-C, a crash or
failures resumes it, skipping items whose run succeeded.
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Executor, Future, ProcessPoolExecutor, as_completed
from contextlib import contextmanager
from functools import cache
from multiprocessing import get_context
from pathlib import Path
from typing import Any, Literal

from nanorepo.errors import InvalidInput
from nanorepo.provenance._record import BatchRecord, NotebookRef, RunRecord, utcnow
from nanorepo.provenance._runner import _parameter_names, load_notebook, run, sweep
from nanorepo.provenance._store import RunStore
from nanorepo.settings import Settings
from nanorepo.storage import canonical_json, sha256_hex

__all__ = ["Items", "StoreFactory", "run_batch"]

#: Makes the run store of the repository ``settings`` point at, in a worker process (a
#: module-level function, so that it pickles: :func:`nanorepo.connection.run_store`).
StoreFactory = Callable[[Settings], RunStore]
#: The items a query finds: ``(query, per) -> ["ACC@vN", ...]`` or ``["ACC@vN/IMAGE", ...]``
#: (:func:`nanorepo.connection.batch_items`, as the caller may see them).
Items = Callable[[str, str], list[str]]

Progress = Callable[[int, int, RunRecord | None], None]


def _split(ref: str) -> tuple[str, int]:
    acc, ver = ref.split("/", 1)[0].split("@v")
    return acc, int(ver)


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def _item_dir(base: Path, item: str) -> Path:
    """A fresh output directory for ``item`` under ``base`` (``S-NANO1@v2/cell1`` →
    ``S-NANO1@v2_cell1``; a second attempt gets ``~2``)."""
    name = _UNSAFE.sub("_", item.replace("/", "_"))
    d = base / name
    n = 1
    while d.exists() and any(d.iterdir()):
        n += 1
        d = base / f"{name}~{n}"
    return d


@cache
def _worker_store(open_store: StoreFactory, settings: Settings) -> RunStore:
    """One store per worker process (a catalog connection or an HTTP client), reused."""
    return open_store(settings)


def _run_item(
    notebook: str,
    params: dict[str, Any],
    output_dir: str,
    settings: Settings,
    batch_id: str,
    item: str,
    kernel: str | None,
    open_store: StoreFactory,
) -> RunRecord:
    """One batch run, in a worker process."""
    return run(
        notebook, params, output_dir=output_dir, kernel=kernel, settings=settings,
        store=_worker_store(open_store, settings), batch=batch_id, item=item,
    )  # fmt: skip


@contextmanager
def _executor(jobs: int) -> Iterator[Executor]:
    """A process pool of ``jobs`` workers, or a Dask Gateway cluster's executor."""
    from nanorepo.compute import ComputeSettings

    if ComputeSettings.from_env().gateway_address is not None:
        from nanorepo.compute import cluster

        with cluster() as c:
            c.cluster.scale(jobs)
            yield c.client.get_executor()
        return
    # spawn: the parent may hold threads (progress display, HTTP pools); fork would copy them
    with ProcessPoolExecutor(max_workers=jobs, mp_context=get_context("spawn")) as pool:
        yield pool


def run_batch(
    notebook: str | os.PathLike[str],
    query: str,
    *,
    per: Literal["dataset", "image"] = "dataset",
    parameters: Mapping[str, Any] | None = None,
    jobs: int = 2,
    output_dir: str | os.PathLike[str] | None = None,
    kernel: str | None = None,
    settings: Settings | None = None,
    progress: Progress | None = None,
    store: RunStore,
    open_store: StoreFactory,
    items: Items,
) -> BatchRecord:
    """Run ``notebook`` once per item of ``query`` (see the module docstring), resumably.

    Returns the batch record; its ``status`` is ``succeeded`` when every item's latest run
    succeeded, ``failed`` otherwise. Ctrl-C stops the pool, marks unfinished runs
    ``interrupted`` and re-raises; running the same batch again resumes it.
    ``progress(done, total, record)`` is called as runs end. ``store`` keeps the records,
    ``open_store`` makes one in each worker process, ``items`` lists what ``query`` finds:
    :func:`nanorepo.connection.run_batch` hands in those of the repository this process
    reaches.
    """
    settings = settings or Settings.from_env()
    if per not in ("dataset", "image"):
        raise InvalidInput(f"--per must be dataset or image, not {per!r}")
    return _run_batch(notebook, query, per, parameters, jobs, output_dir, kernel, settings,
                      progress, store, open_store, items)  # fmt: skip


def _run_batch(
    notebook: str | os.PathLike[str],
    query: str,
    per: Literal["dataset", "image"],
    parameters: Mapping[str, Any] | None,
    jobs: int,
    output_dir: str | os.PathLike[str] | None,
    kernel: str | None,
    settings: Settings,
    progress: Progress | None,
    store: RunStore,
    open_store: StoreFactory,
    items_of: Items,
) -> BatchRecord:
    sweep(settings, store)
    path, nb_bytes, nb = load_notebook(notebook)
    names = _parameter_names(nb)
    if "accession" not in names:
        raise InvalidInput(
            f"{path.name} has no `accession` parameter for the batch to set",
            hint="tag a cell `parameters` that assigns accession = ... (see notebooks/analyses/)",
        )
    if per == "image" and "image" not in names:
        raise InvalidInput(
            f"--per image: {path.name} has no `image` parameter",
            hint="add image = None to its parameters cell, or run --per dataset",
        )
    if jobs < 1:
        raise InvalidInput(f"--jobs must be at least 1, not {jobs}")
    params = dict(parameters or {})
    ref = NotebookRef(path.name, sha256_hex(nb_bytes), len(nb_bytes))
    key = sha256_hex(
        canonical_json(
            {
                "notebook": ref.sha256,
                "query": query,
                "per": per,
                "parameters": params,
                "agent": settings.user,
                "url": settings.url or "",
            }
        )
    )
    batch = store.begin_batch(
        BatchRecord(
            id=uuid.uuid4().hex,
            key=key,
            agent=settings.user,
            notebook=ref,
            query=query,
            per=per,
            parameters=params,
            created=utcnow(),
        )
    )
    # Items: those of the first attempt (pinned versions), plus any the query finds now.
    known = [r["item"] for r in batch.runs]
    items = list(dict.fromkeys(known + items_of(query, per)))
    done = {r["item"] for r in batch.runs if r["status"] == "succeeded"}
    todo = [i for i in items if i not in done]
    base = Path(output_dir or Path.cwd() / "nanorepo-runs" / f"batch-{batch.id[:12]}")
    base = base.expanduser().resolve()
    base.mkdir(parents=True, exist_ok=True)
    total, finished = len(items), len(items) - len(todo)
    if progress:
        progress(finished, total, None)
    failed = False
    try:
        with _executor(jobs) as pool:
            futures: dict[Future[RunRecord], str] = {}
            for item in todo:
                acc_ver, _, image = item.partition("/")
                p = {**params, "accession": acc_ver}
                if image:
                    p["image"] = image
                futures[
                    pool.submit(
                        _run_item,
                        str(path),
                        p,
                        str(_item_dir(base, item)),
                        settings,
                        batch.id,
                        item,
                        kernel,
                        open_store,
                    )
                ] = item
            for fut in as_completed(futures):
                rec = fut.result()
                failed |= rec.status != "succeeded"
                finished += 1
                if progress:
                    progress(finished, total, rec)
    except KeyboardInterrupt:
        sweep(settings, store)
        store.finish_batch(batch.id, "interrupted")
        raise
    except BaseException:
        store.finish_batch(batch.id, "failed")
        raise
    return store.finish_batch(batch.id, "failed" if failed else "succeeded")
