"""``nanorepo.open``: lazy reads that cost what the region costs, on a read-only mount too."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import tensorstore as ts
import tifffile

import nanorepo
from nanorepo.errors import DatasetNotFound, ImageNotFound, InvalidInput, VersionNotFound
from nanorepo.repository import Repository
from tests.conftest import write_ome_tiff


def _bytes_read() -> int:
    """Bytes tensorstore has read from files so far in this process."""
    values = {
        m["name"].rsplit("/", 1)[-1]: m["values"][0].get("value", 0)
        for m in ts.experimental_collect_matching_metrics("/tensorstore/kvstore/file/")
        if m["values"]
    }
    return int(values.get("bytes_read", 0))


@pytest.fixture
def big(sqlite_repo: Repository, tmp_path: Path, metadata_file: Path) -> tuple[str, Path]:
    p = tmp_path / "inputs" / "big.ome.tif"
    write_ome_tiff(p, shape=(16, 2048, 2048), seed=7)
    res = sqlite_repo.deposit([p], title="Big", metadata=metadata_file)
    return res.accession, p


def test_region_reads_only_the_chunks_it_touches(
    sqlite_repo: Repository, big: tuple[str, Path]
) -> None:
    acc, src = big
    ds = nanorepo.open(acc, settings=sqlite_repo.settings)
    img = ds.images[0]
    da = img.to_xarray(0)
    assert da.chunks is not None  # dask-backed
    stored = sum(p.stat().st_size for p in (img.path / "0").rglob("*") if p.is_file())

    bytes0 = _bytes_read()
    region = da.isel(z=5, y=slice(100, 300), x=slice(1000, 1200)).values
    bytes1 = _bytes_read()
    expected = tifffile.memmap(src)[5, 100:300, 1000:1200]
    np.testing.assert_array_equal(region, expected)
    # One 512x512 inner chunk (plus the shard index) out of 16 x 4 x 4 chunks.
    assert 0 < bytes1 - bytes0 < stored / 20, (bytes1 - bytes0, stored)

    # A region four times larger in y/x costs about four times the chunks, not the dataset.
    da.isel(z=slice(0, 2), y=slice(0, 1024), x=slice(0, 1024)).values  # noqa: B018
    bytes2 = _bytes_read()
    assert bytes2 - bytes1 < stored / 4


def test_versions_and_errors(sqlite_repo: Repository, big: tuple[str, Path]) -> None:
    acc, _ = big
    s = sqlite_repo.settings
    assert nanorepo.open(f"{acc}@v1", settings=s).ref == f"{acc}@v1"
    with pytest.raises(VersionNotFound):
        nanorepo.open(f"{acc}@v2", settings=s)
    with pytest.raises(DatasetNotFound):
        nanorepo.open("S-NANO4242", settings=s)
    with pytest.raises(InvalidInput):
        nanorepo.open("S-NANO1/../../x", settings=s)
    with pytest.raises(ImageNotFound, match="images: big"):
        nanorepo.open(acc, settings=s).image("nope")


READ_ONLY = textwrap.dedent(
    """
    import os, sys
    import nanorepo
    from nanorepo.settings import Settings

    storage, home, acc = sys.argv[1:4]
    try:
        open(os.path.join(storage, "probe"), "w")
    except OSError as e:
        print("write refused:", e.strerror)
    else:
        sys.exit("the storage is writable; the test would prove nothing")
    s = Settings.from_env(home, env={"NANOREPO_STORAGE": storage})
    img = nanorepo.open(acc, settings=s).images[0]
    print("ok", int(img.to_xarray(0).isel(z=3, y=slice(0, 600), x=slice(0, 700)).sum()))
    """
)


def test_open_on_a_read_only_mount_of_the_storage(
    sqlite_repo: Repository, big: tuple[str, Path], tmp_path: Path
) -> None:
    """As a user server sees it: storage mounted read-only, no catalog at hand."""
    acc, src = big
    storage = sqlite_repo.settings.storage
    probe = subprocess.run(
        ["unshare", "-rm", "sh", "-c", f"mount --bind -o ro {storage} {storage}"],
        capture_output=True,
        text=True,
    )
    if probe.returncode != 0:
        pytest.skip(f"cannot make a read-only bind mount here: {probe.stderr.strip()}")
    script = tmp_path / "ro.py"
    script.write_text(READ_ONLY)
    server_home = tmp_path / "server-home"
    result = subprocess.run(
        ["unshare", "-rm", "sh", "-c",
         f'mount --bind -o ro "$1" "$1" && exec "{sys.executable}" "{script}" "$1" "$2" "$3"',
         "sh", str(storage), str(server_home), acc],
        capture_output=True, text=True, cwd=Path(__file__).parents[2], timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "write refused: Read-only file system" in result.stdout
    expected = int(tifffile.memmap(src)[3, :600, :700].astype(np.int64).sum())
    assert result.stdout.split("ok ")[1].strip() == str(expected)
