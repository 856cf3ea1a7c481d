"""Shared pieces of the nanorepo benchmarks: input data, deposits, page cache, timing, output.

The benchmarks compare nanorepo with reference tools run side by side, in the same process
and on the same input, so that a ratio means something even on a noisy shared machine. This
module gives them:

* **the input**: a microscopy-like 3D uint16 volume (default 128 × 2896 × 2896, 2 GiB) with
  structures and shot noise from :mod:`nanorepo.samples`, written once as an *uncompressed*
  OME-TIFF with OME-XML pixel sizes and cached in ``benchmarks/.data/``. Random bytes would
  not compress and would make every codec look the same; microscopy compresses ~3–5×.
  Rendering runs in one process per core. If the generator is projected to need more than
  :data:`MAX_GENERATE_SECONDS`, a faster fallback renders a few distinct slabs and tiles them
  along ``z`` with shifted positions and fresh shot noise (the output says so);
* **a cached deposit** of that input (a repository under ``benchmarks/.data/``) for the read
  and verify benchmarks;
* **page-cache control**: ``drop_caches`` when allowed (root), else per-file
  ``posix_fadvise(DONTNEED)``, else the output says that reads are warm-cache;
* **timing and reporting**: wall-clock timers, percentiles, a header with the machine and
  library versions, and tables printed with rich as Markdown so they can be pasted into
  ``docs/benchmarks.md`` verbatim.

Sizes are in bytes; MB/s means 10⁶ bytes per second, of *uncompressed* pixels unless a table
says otherwise.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import math
import os
import platform
import resource
import shutil
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

import numpy as np
from rich import box
from rich.console import Console
from rich.table import Table

BENCH_DIR = Path(__file__).resolve().parent
DATA_DIR = BENCH_DIR / ".data"
MB = 1e6
MiB = 1 << 20
GiB = 1 << 30
#: Above this projected generation time the tiled fallback input is used.
MAX_GENERATE_SECONDS = 180.0
#: Distinct slabs rendered by the fallback before tiling.
FALLBACK_UNIQUE_PLANES = 16

METADATA: dict[str, Any] = {
    "study": {
        "description": "Synthetic nuclear pore complexes rendered for the nanorepo benchmarks.",
        "authors": [{"name": "nanorepo benchmarks"}],
        "keywords": ["benchmark", "synthetic"],
        "license": "CC0-1.0",
    },
    "biosample": {"organism": "Homo sapiens", "cell_line": "U2OS"},
    "specimen": {"labels": [{"target": "Nup96", "fluorophore": "Alexa Fluor 647"}]},
    "image_acquisition": {"technique": "SIM"},
}


def console() -> Console:
    """A console that does not wrap tables when the output is a pipe or a file."""
    width = None if sys.stdout.isatty() else 160
    return Console(width=width, highlight=False, soft_wrap=True, markup=False)


# -- input data -------------------------------------------------------------------------


@dataclass(frozen=True)
class InputSpec:
    """The benchmark volume: ``(nz, ny, nx)`` uint16 of one structure kind and modality."""

    nz: int
    ny: int
    nx: int
    modality: str = "SIM"
    structure: str = "nuclear_pores"
    seed: int = 1

    @property
    def shape(self) -> tuple[int, int, int]:
        return (self.nz, self.ny, self.nx)

    @property
    def nbytes(self) -> int:
        return self.nz * self.ny * self.nx * 2

    @property
    def stem(self) -> str:
        return f"{self.structure}-{self.modality}-{self.nz}x{self.ny}x{self.nx}-seed{self.seed}"

    def describe(self) -> str:
        return (
            f"{self.nz} x {self.ny} x {self.nx} uint16 (z, y, x) = {self.nbytes / MB:,.0f} MB, "
            f"synthetic {self.structure.replace('_', ' ')} rendered as {self.modality} "
            f"(seed {self.seed})"
        )


def add_input_args(parser: argparse.ArgumentParser) -> None:
    """``--size-gb``, ``--yx``, ``--modality``, ``--structure``, ``--seed``."""
    g = parser.add_argument_group("input volume")
    g.add_argument(
        "--size-gb",
        type=float,
        default=2.0,
        help="uncompressed size in GiB; sets the number of z planes (default 2: 128 planes)",
    )
    g.add_argument("--yx", type=int, default=2896, help="plane size in y and x (default 2896)")
    g.add_argument(
        "--modality",
        default="SIM",
        help="sample generator modality: SIM (sCMOS offset + read noise, compresses ~4x, the "
        "default), STED, confocal, SMLM",
    )
    g.add_argument(
        "--structure",
        default="nuclear_pores",
        choices=["nuclear_pores", "microtubules", "chromatin"],
        help="structure kind (default nuclear_pores)",
    )
    g.add_argument("--seed", type=int, default=1, help="generator seed (default 1)")


def spec_from_args(args: argparse.Namespace) -> InputSpec:
    plane = args.yx * args.yx * 2
    nz = max(1, round(args.size_gb * GiB / plane))
    return InputSpec(nz, args.yx, args.yx, args.modality, args.structure, args.seed)


@dataclass(frozen=True)
class InputFile:
    """The cached OME-TIFF and how it was produced."""

    path: Path
    spec: InputSpec
    generator: str
    generator_mb_s: float
    generated_now: bool

    def describe(self) -> str:
        when = "generated in this run" if self.generated_now else "cached"
        return (
            f"{self.spec.describe()}; uncompressed OME-TIFF {self.path.stat().st_size / MB:,.0f} MB "
            f"({when}; {self.generator}, {self.generator_mb_s:.0f} MB/s)"
        )


_WORKER_IMAGE: Any = None


def _synthetic(spec: InputSpec) -> Any:
    from nanorepo.samples._synthetic import SyntheticImage

    return SyntheticImage(
        spec.shape,
        structures=(spec.structure,),
        modality=spec.modality,
        seed=spec.seed,
        name="bench",
        key_values={"purpose": "benchmark"},
    )


def _init_worker(spec: InputSpec) -> None:
    global _WORKER_IMAGE
    _WORKER_IMAGE = _synthetic(spec)


def _render_slab(z0: int, z1: int) -> np.ndarray:
    return np.asarray(_WORKER_IMAGE.read((slice(z0, z1), slice(None), slice(None))))


class _ParallelSource:
    """An :class:`~nanorepo.ome.ImageSource` that renders slabs in one process per core.

    ``stream_ome_tiff`` consumes :meth:`iter_planes`; at most two slabs per worker are in
    flight, so memory stays at a few slabs.
    """

    def __init__(self, spec: InputSpec, workers: int, fallback: bool, first: np.ndarray):
        self.spec = spec
        self.image = _synthetic(spec)
        self.workers = workers
        self.fallback = fallback
        self.first = first  # the probe slab, already rendered
        im = self.image
        self.name, self.dims, self.shape, self.dtype = im.name, im.dims, im.shape, im.dtype
        self.pixel_sizes, self.channels, self.modality = im.pixel_sizes, im.channels, im.modality
        self.acquisition, self.key_values, self.origin = im.acquisition, im.key_values, im.origin
        self.step = int(im.block_shape[0])

    def read(self, region: Sequence[slice]) -> np.ndarray:  # pragma: no cover - unused
        raise NotImplementedError("stream_ome_tiff reads through iter_planes")

    def _slabs(self, unique: int) -> Iterator[np.ndarray]:
        bounds = [(z, min(z + self.step, unique)) for z in range(0, unique, self.step)]
        yield self.first
        pending: list[Future[np.ndarray]] = []
        todo = iter(bounds[1:])
        with ProcessPoolExecutor(
            self.workers, initializer=_init_worker, initargs=(self.spec,)
        ) as pool:
            for z0, z1 in todo:
                pending.append(pool.submit(_render_slab, z0, z1))
                if len(pending) >= 2 * self.workers:
                    yield pending.pop(0).result()
            for f in pending:
                yield f.result()

    def iter_planes(self) -> Iterator[np.ndarray]:
        if not self.fallback:
            for slab in self._slabs(self.spec.nz):
                yield from slab
            return
        # Fallback: render FALLBACK_UNIQUE_PLANES planes, then tile them along z, each copy
        # shifted in y/x and given fresh shot noise, so no two planes are identical.
        unique = min(self.spec.nz, FALLBACK_UNIQUE_PLANES)
        base = np.concatenate(list(self._slabs(unique)))[:unique]
        offset = float(self.image.modality.offset_adu)
        for z in range(self.spec.nz):
            if z < unique:
                yield base[z]
                continue
            rng = np.random.default_rng([self.spec.seed, z])
            shifted = np.roll(
                base[z % unique],
                (int(rng.integers(self.spec.ny)), int(rng.integers(self.spec.nx))),
                axis=(0, 1),
            )
            signal = np.maximum(shifted.astype(np.float32) - offset, 0)
            yield (rng.poisson(signal) + offset).clip(0, 65535).astype(np.uint16)


def input_tiff(spec: InputSpec, out: Console, *, workers: int | None = None) -> InputFile:
    """The benchmark OME-TIFF for ``spec``, generated into ``benchmarks/.data/`` if needed."""
    from nanorepo.samples._tiff import stream_ome_tiff

    DATA_DIR.mkdir(parents=True, exist_ok=True)
    path = DATA_DIR / f"{spec.stem}.ome.tif"
    info_path = DATA_DIR / f"{spec.stem}.json"
    if path.exists() and info_path.exists():
        info = json.loads(info_path.read_text())
        return InputFile(path, spec, info["generator"], info["generator_mb_s"], False)
    workers = workers or max(1, os.cpu_count() or 1)
    image = _synthetic(spec)
    step = int(image.block_shape[0])
    out.print(f"[generating input] {spec.describe()} -> {path.name}")
    t0 = time.perf_counter()
    first = _render_slab_with(image, 0, min(step, spec.nz))
    probe = time.perf_counter() - t0
    single = first.nbytes / probe / MB
    projected = spec.nbytes / MB / (single * min(workers, math.ceil(spec.nz / step)))
    fallback = projected > MAX_GENERATE_SECONDS
    out.print(
        f"[generating input] sample generator: {single:.1f} MB/s per process; "
        f"{workers} processes -> projected {projected:.0f} s for {spec.nbytes / MB:,.0f} MB"
        + (
            f" > {MAX_GENERATE_SECONDS:.0f} s: using the tiled fallback "
            f"({FALLBACK_UNIQUE_PLANES} distinct planes, shifted copies with fresh shot noise)"
            if fallback
            else ""
        )
    )
    source = _ParallelSource(spec, workers, fallback, first)
    t0 = time.perf_counter()
    stream_ome_tiff(path, source)
    seconds = time.perf_counter() - t0 + probe
    rate = spec.nbytes / seconds / MB
    generator = (
        f"tiled fallback of nanorepo.samples.SyntheticImage, {workers} processes"
        if fallback
        else f"nanorepo.samples.SyntheticImage + stream_ome_tiff, {workers} processes"
    )
    info_path.write_text(json.dumps({"generator": generator, "generator_mb_s": rate}))
    out.print(f"[generating input] done in {seconds:.0f} s ({rate:.0f} MB/s)")
    return InputFile(path, spec, generator, rate, True)


def _render_slab_with(image: Any, z0: int, z1: int) -> np.ndarray:
    return np.asarray(image.read((slice(z0, z1), slice(None), slice(None))))


def write_metadata(directory: Path) -> Path:
    """The deposit metadata file (licence, organism, technique) in ``directory``."""
    import yaml

    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "metadata.yaml"
    path.write_text(yaml.safe_dump(METADATA, sort_keys=False))
    return path


# -- repositories -----------------------------------------------------------------------


def settings_for(home: Path, *, keep_originals: bool) -> Any:
    """nanorepo settings for a repository at ``home`` (SQLite catalog, local storage)."""
    from nanorepo.settings import Settings

    return Settings.from_env(
        home,
        env={
            "NANOREPO_KEEP_ORIGINALS": "true" if keep_originals else "false",
            "NANOREPO_USER": "benchmark",
        },
    )


@dataclass(frozen=True)
class Deposited:
    """A cached deposit of the benchmark input."""

    settings: Any
    ref: str
    dataset_dir: Path
    image_dir: Path
    seconds: float
    cached: bool

    keep_originals: bool = True

    def describe(self) -> str:
        how = "cached" if self.cached else f"deposited in this run in {self.seconds:.1f} s"
        kept = "originals kept" if self.keep_originals else "originals not kept"
        return f"{self.ref} at {self.dataset_dir} ({how}; {kept})"


def cached_deposit(inp: InputFile, out: Console, *, keep_originals: bool = True) -> Deposited:
    """The benchmark input deposited once into its own repository and cached.

    ``keep_originals`` True is nanorepo's default (the OME-TIFF is stored next to the
    OME-Zarr); False stores the OME-Zarr only.
    """
    from nanorepo.repository import Repository

    home = DATA_DIR / f"repo-{inp.spec.stem}{'' if keep_originals else '-no-originals'}"
    marker = home / "benchmark-deposit.json"
    settings = settings_for(home, keep_originals=keep_originals)
    if marker.exists():
        info = json.loads(marker.read_text())
        if Path(info["image_dir"]).is_dir():
            return Deposited(
                settings,
                info["ref"],
                Path(info["dataset_dir"]),
                Path(info["image_dir"]),
                info["seconds"],
                True,
                keep_originals,
            )
    shutil.rmtree(home, ignore_errors=True)
    meta = write_metadata(home / "inputs")
    out.print(f"[deposit] depositing {inp.path.name} into {home} (cached for later runs)")
    with Repository(settings, create=True) as repo:
        t0 = time.perf_counter()
        result = repo.deposit([inp.path], title="Benchmark volume", metadata=meta)
        seconds = time.perf_counter() - t0
        shown = repo.show(result.accession)
    ref = f"{result.accession}@v{result.version}"
    image_dir = Path(shown["images"][0]["storage_path"])
    info = {
        "ref": ref,
        "dataset_dir": shown["path"],
        "image_dir": str(image_dir),
        "seconds": seconds,
    }
    marker.write_text(json.dumps(info))
    return Deposited(settings, ref, Path(shown["path"]), image_dir, seconds, False, keep_originals)


# -- files and the page cache -----------------------------------------------------------


def files_under(top: Path) -> list[Path]:
    """Every regular file below ``top``, sorted."""
    out: list[Path] = []
    for dirpath, _dirs, files in os.walk(top):
        out.extend(Path(dirpath) / f for f in files)
    return sorted(out)


def tree_bytes(top: Path) -> int:
    """Total size of the regular files below ``top`` (or of ``top`` if it is a file)."""
    if top.is_file():
        return top.stat().st_size
    return sum(p.stat().st_size for p in files_under(top))


def drop_caches() -> bool:
    """Sync and drop the page cache (needs root); False where the sandbox forbids it."""
    os.sync()
    try:
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
    except OSError:
        return False
    return True


def evict(paths: Iterable[Path]) -> bool:
    """Drop the page cache of ``paths`` only (``posix_fadvise(DONTNEED)``, no root needed)."""
    if not hasattr(os, "posix_fadvise"):
        return False
    os.sync()
    for p in paths:
        fd = os.open(p, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)
    return True


def make_cold(paths: Iterable[Path]) -> str:
    """Evict ``paths`` from the page cache as well as possible; returns how (for the output)."""
    if drop_caches():
        return "cold (drop_caches)"
    if evict(paths):
        return "cold (posix_fadvise DONTNEED per file)"
    return "WARM (could not drop the page cache)"


def warm(paths: Iterable[Path]) -> int:
    """Read ``paths`` once so that they sit in the page cache; returns the bytes read."""
    buf = bytearray(4 * MiB)
    total = 0
    for p in paths:
        with open(p, "rb", buffering=0) as f:
            while n := f.readinto(buf):
                total += n
    return total


def sha256_file(path: Path, block: int = 4 * MiB) -> str:
    """Plain single-thread SHA-256 of one file (the verify benchmark's reference loop)."""
    h = hashlib.sha256()
    buf = bytearray(block)
    view = memoryview(buf)
    with open(path, "rb", buffering=0) as f:
        while n := f.readinto(buf):
            h.update(view[:n])
    return h.hexdigest()


# -- timing -----------------------------------------------------------------------------


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


@dataclass
class Stopwatch:
    """Wall-clock seconds of a ``with`` block, and the CPU seconds (user + system, all
    threads of this process) spent meanwhile: on two cores, CPU time says which tool does
    more work even when the wall clock is disturbed."""

    seconds: float = 0.0
    cpu_seconds: float = 0.0
    _t0: float = field(default=0.0, repr=False)
    _c0: float = field(default=0.0, repr=False)

    def __enter__(self) -> Stopwatch:
        self._c0 = _cpu()
        self._t0 = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self._t0
        self.cpu_seconds = _cpu() - self._c0


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0–100, linear interpolation) of ``values``."""
    return float(np.percentile(np.asarray(values, dtype=np.float64), q))


def mb_s(nbytes: float, seconds: float) -> float:
    return nbytes / MB / seconds if seconds > 0 else math.inf


def ratio_cell(value: float, goal: float | None = None) -> str:
    """``"3.42x"``, with ``(goal >= 3x: met|MISSED)`` when a goal is given."""
    text = f"{value:.2f}x"
    if goal is None:
        return text
    return f"{text} (goal >= {goal:g}x: {'met' if value >= goal else 'MISSED'})"


def quiet_warnings() -> None:
    """Silence library deprecation chatter that would clutter the tables."""
    import warnings

    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", message=".*not part in the Zarr format 3.*")
    warnings.filterwarnings("ignore", message=".*Numcodecs codecs are not in the Zarr.*")


# -- reporting --------------------------------------------------------------------------

_PACKAGES = ("nanorepo", "tensorstore", "zarr", "ome-zarr", "numpy", "tifffile", "dask", "xarray")


def versions(packages: Sequence[str] = _PACKAGES) -> dict[str, str]:
    out = {"python": platform.python_version()}
    for p in packages:
        try:
            out[p] = importlib_metadata.version(p)
        except importlib_metadata.PackageNotFoundError:
            out[p] = "not installed"
    return out


def _meminfo_gb() -> float:
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024 / 1e9
    return float("nan")


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def _disk(path: Path) -> str:
    try:
        res = subprocess.run(
            ["df", "-hT", str(path)], capture_output=True, text=True, check=True, timeout=10
        )
        dev, fstype, size, _used, avail = res.stdout.splitlines()[1].split()[:5]
        return f"{dev} ({fstype}, {size}, {avail} free)"
    except (OSError, subprocess.SubprocessError, ValueError, IndexError):
        return "unknown"


def machine() -> dict[str, str]:
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    load = os.getloadavg()
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": f"{os.cpu_count()} x {_cpu_model()}",
        "memory": f"{_meminfo_gb():.1f} GB",
        "disk": _disk(DATA_DIR),
        "load": f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f} (1/5/15 min, at start)",
    }


def header(out: Console, title: str, what: str) -> None:
    """Print the benchmark title, what it measures, the machine and library versions."""
    out.print(f"# {title}\n")
    out.print(what.strip() + "\n")
    m = machine()
    v = versions()
    out.print(f"- date: {m['date']}")
    out.print(f"- machine: {m['cpu']}, {m['memory']} RAM, disk {m['disk']}")
    out.print(f"- load average: {m['load']}")
    out.print("- versions: " + ", ".join(f"{k} {val}" for k, val in v.items()))
    out.print("")


def table(
    title: str, columns: Sequence[str], rows: Iterable[Sequence[str]], *, text_columns: int = 1
) -> Table:
    """A Markdown-boxed rich table (renders as a table on GitHub when pasted).

    The first ``text_columns`` columns are left-aligned, the rest (numbers) right-aligned.
    """
    t = Table(title=title, box=box.MARKDOWN, title_justify="left", show_edge=True)
    for i, c in enumerate(columns):
        t.add_column(c, justify="left" if i < text_columns else "right", no_wrap=True)
    for r in rows:
        t.add_row(*r)
    return t
