"""Verified bulk download: ``nanorepo download`` against curl fetching the same objects in
parallel from the same service on loopback.

What is measured
----------------
The cached deposit of the benchmark volume (``--size-gb``, default 0.5 GiB here; sharded
OME-Zarr plus the original OME-TIFF) is served by ``nanorepo serve`` in its own process.
Each round downloads every object of the version into an empty folder, twice, in
alternating order:

* **nanorepo**: :func:`nanorepo.transfer.download` (what ``nanorepo download`` runs), 8
  threads; it also checks the version manifest against the catalog's digest, each image
  manifest, and each object's SHA-256 as it arrives;
* **curl**: one ``curl --parallel --parallel-max 8`` over the same object URLs (the
  ``objects`` route, same token), writing the same files; it verifies nothing.

Figures: MB/s of object bytes (median of ``--rounds``), and the ratio nanorepo / curl (goal
>= 0.8x). Then resuming: a download interrupted after about half its bytes (the process
killed) is run again and the bytes fetched the second time are counted.

Run ``python benchmarks/bench_download.py [--size-gb N] [--rounds N]``. Not a test.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as C

WHAT = (
    "Every object of one version downloaded from `nanorepo serve` on loopback: nanorepo "
    "download (8 threads, each object verified against its SHA-256 on arrival) vs curl "
    "--parallel (8) over the same URLs, which verifies nothing."
)
WORKERS = 8


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serve(home: Path) -> Iterator[str]:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("NANOREPO_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "nanorepo", "--home", str(home), "serve", "--port", str(port)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    import httpx

    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline or proc.poll() is not None:
            raise RuntimeError("nanorepo serve did not start")
        time.sleep(0.2)
    try:
        yield url
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)


def nanorepo_round(url: str, headers: dict[str, str], ref: str, dest: Path) -> tuple[float, int]:
    from nanorepo.transfer import HttpSource, download

    t0 = time.perf_counter()
    with HttpSource(url, headers, ref) as source:
        result = download(source, dest, workers=WORKERS)
    return time.perf_counter() - t0, result.bytes_fetched


def curl_round(url: str, token: str, ref: str, objects: dict[str, tuple[str, int]],
               dest: Path) -> tuple[float, int]:  # fmt: skip
    acc, ver = ref.split("@")
    config = dest.parent / f"{dest.name}.curl"
    with open(config, "w") as f:
        for path in objects:
            f.write(f'url = "{url}/datasets/{acc}/versions/{ver}/objects/{path}"\n')
            f.write(f'output = "{dest / path}"\n')
    t0 = time.perf_counter()
    subprocess.run(
        ["curl", "-s", "--no-progress-meter", "-f", "--parallel", "--parallel-max", str(WORKERS), "--create-dirs",
         "-H", f"Authorization: token {token}", "-K", str(config)],
        check=True,
    )  # fmt: skip
    seconds = time.perf_counter() - t0
    return seconds, sum(p.stat().st_size for p in dest.rglob("*") if p.is_file())


def resumed(url: str, headers: dict[str, str], ref: str, dest: Path, total: int) -> str:
    """Kill a CLI download at about half its bytes, run it again, count the second run's
    fetched bytes."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("NANOREPO_")}
    env.update(NANOREPO_URL=url, NANOREPO_TOKEN=headers["Authorization"].split()[1])
    cmd = [sys.executable, "-m", "nanorepo", "download", ref, str(dest), "--quiet"]
    proc = subprocess.Popen(cmd, env=env, stderr=subprocess.PIPE, text=True)
    while proc.poll() is None:
        have = sum(p.stat().st_size for p in dest.rglob("*") if p.is_file())
        if have >= total / 2:
            proc.kill()
            break
        time.sleep(0.005)
    proc.wait()
    have = sum(p.stat().st_size for p in dest.rglob("*") if p.is_file())
    again = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
    return f"killed with {have / C.MB:,.0f} MB on disk; the rerun said: {again.stderr.strip()}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    C.add_input_args(parser)
    parser.add_argument("--rounds", type=int, default=3, help="rounds per tool (3)")
    parser.set_defaults(size_gb=0.5)
    args = parser.parse_args(argv)
    C.quiet_warnings()
    out = C.console()
    C.header(out, "nanorepo download benchmark", WHAT)
    if shutil.which("curl") is None:
        raise SystemExit("this benchmark needs curl (apt-get install curl)")
    inp = C.input_tiff(C.spec_from_args(args), out)
    dep = C.cached_deposit(inp, out, keep_originals=True)
    out.print(f"- dataset: {dep.describe()}")

    from nanorepo.catalog import Catalog
    from nanorepo.policy import Role, create_token
    from nanorepo.service._download import version_objects

    cat = Catalog(dep.settings.database_url)
    acc, ver = dep.ref.split("@v")
    with cat.session() as s:
        token = create_token(s, "bench-reader", role=Role.reader, note="bench_download")
        s.commit()
        objects = version_objects(dep.dataset_dir.resolve(), cat.version(s, acc, int(ver)))
    cat.close()
    total = sum(size for _, size in objects.values())
    C.warm(C.files_under(dep.dataset_dir))
    out.print(f"- {len(objects):,} objects, {total / C.MB:,.0f} MB; page cache warm\n")
    headers = {"Authorization": f"token {token}"}
    times: dict[str, list[float]] = {"nanorepo": [], "curl": []}
    with serve(dep.settings.home) as url, tempfile.TemporaryDirectory(dir=C.DATA_DIR) as tmp:
        for rnd in range(args.rounds):
            order = ["nanorepo", "curl"] if rnd % 2 == 0 else ["curl", "nanorepo"]
            for tool in order:
                dest = Path(tmp) / f"{tool}-{rnd}"
                dest.mkdir()
                if tool == "nanorepo":
                    seconds, got = nanorepo_round(url, headers, dep.ref, dest)
                else:
                    seconds, got = curl_round(url, token, dep.ref, objects, dest / dep.ref)
                assert got == total, (tool, got, total)
                times[tool].append(seconds)
                shutil.rmtree(dest)
        resume = resumed(url, headers, dep.ref, Path(tmp) / "resume", total)
    med = {k: statistics.median(v) for k, v in times.items()}
    rows = [
        [tool, f"{med[tool]:.2f}", f"{C.mb_s(total, med[tool]):,.0f}",
         C.ratio_cell(med["curl"] / med["nanorepo"], 0.8) if tool == "nanorepo" else ""]
        for tool in ("nanorepo", "curl")
    ]  # fmt: skip
    out.print(C.table(f"download of {dep.ref}: {total / C.MB:,.0f} MB, median of {args.rounds}",
                      ["tool", "seconds", "MB/s", "nanorepo / curl"], rows))  # fmt: skip
    out.print(f"\nresume: {resume}")


if __name__ == "__main__":
    main()
