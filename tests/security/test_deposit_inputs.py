"""Issue 14, findings 1 and 2: a deposit reads only the regular files it was given.

Before: a plane folder in a staging area could hold symlinks (to ``/proc/self/environ``,
to the catalog, to an embargoed original) that deposition followed and kept as
originals, downloadable by anyone; a multi-file OME-TIFF's ``<UUID FileName=...>`` made
tifffile read any TIFF on the server. Now every input is opened without following links,
must be a regular file inside the caller's area, and companions must be deposited
together; anything else is refused by name and nothing is written.
"""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tifffile

from nanorepo.deposition._inputs import check_unchanged, confine_input
from nanorepo.errors import InvalidInput, PathNotAllowed, UnsafeInput
from nanorepo.samples import write_plane_directory
from tests.conftest import write_ome_tiff


def _planes(folder: Path) -> Path:
    data = np.random.default_rng(0).poisson(300, (2, 48, 40)).astype(np.uint16)
    write_plane_directory(folder, data, dims=("z", "y", "x"), prefix="cell",
                          pixel_sizes_nm={"x": 20, "y": 20, "z": 100})  # fmt: skip
    return folder


def _nothing_written(repo: Any) -> None:
    rows, total = repo.list_datasets(offset=0, limit=10)
    assert total == 0, rows
    storage = repo.settings.storage
    assert not any(p.is_file() for p in storage.rglob("*")) if storage.exists() else True
    staging = repo.settings.staging
    assert not list(staging.glob("*/dataset")) if staging.exists() else True


@pytest.mark.parametrize(
    "target",
    ["/proc/self/environ", "catalog", "/etc/passwd"],
    ids=["proc-environ", "the-catalog", "etc-passwd"],
)
def test_a_link_in_a_plane_folder_is_refused_by_name(
    sqlite_repo: Any, tmp_path: Path, metadata_file: Path, target: str
) -> None:
    sqlite_repo.ready()
    folder = _planes(tmp_path / "inputs" / "planes")
    real = sqlite_repo.settings.home / "catalog.sqlite" if target == "catalog" else Path(target)
    (folder / "cell_t000_c00_z002.tif").symlink_to(real)
    with pytest.raises(UnsafeInput, match=r"planes/cell_t000_c00_z002\.tif is a symbolic link"):
        sqlite_repo.deposit([folder], title="T", metadata=metadata_file)
    _nothing_written(sqlite_repo)


def test_a_linked_folder_inside_an_input_is_refused(
    sqlite_repo: Any, tmp_path: Path, metadata_file: Path
) -> None:
    folder = _planes(tmp_path / "inputs" / "planes")
    (folder / "more").symlink_to(sqlite_repo.settings.home)
    with pytest.raises(UnsafeInput, match=r"planes/more is a symbolic link"):
        sqlite_repo.deposit([folder], title="T", metadata=metadata_file)
    _nothing_written(sqlite_repo)


def test_a_fifo_is_refused_and_does_not_hang(
    sqlite_repo: Any, tmp_path: Path, metadata_file: Path
) -> None:
    folder = _planes(tmp_path / "inputs" / "planes")
    os.mkfifo(folder / "cell_t000_c00_z002.tif")
    outcome: list[BaseException] = []

    def run() -> None:
        try:
            sqlite_repo.deposit([folder], title="T", metadata=metadata_file)
        except BaseException as exc:  # collected for the assertion below
            outcome.append(exc)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(60)
    assert not t.is_alive(), "the deposit hangs on a FIFO"
    assert isinstance(outcome[0], UnsafeInput)
    assert "planes/cell_t000_c00_z002.tif is a FIFO" in str(outcome[0])
    _nothing_written(sqlite_repo)


def test_a_device_file_is_refused(sqlite_repo: Any, tmp_path: Path, metadata_file: Path) -> None:
    folder = _planes(tmp_path / "inputs" / "planes")
    dev = folder / "cell_t000_c00_z002.tif"
    try:
        os.mknod(dev, stat.S_IFCHR | 0o600, os.makedev(1, 5))  # like /dev/zero
    except PermissionError:
        pytest.skip("creating a device node needs CAP_MKNOD")
    with pytest.raises(UnsafeInput, match=r"planes/cell_t000_c00_z002\.tif is a device file"):
        sqlite_repo.deposit([folder], title="T", metadata=metadata_file)
    _nothing_written(sqlite_repo)


def test_a_link_as_metadata_or_supporting_file_cannot_leave_the_staging_area(
    sqlite_repo: Any, tmp_path: Path, metadata_file: Path
) -> None:
    area = tmp_path / "areas" / "alice"
    area.mkdir(parents=True)
    good = area / "cell.ome.tif"
    write_ome_tiff(good)
    (area / "meta.yaml").symlink_to(metadata_file)  # outside the area
    (area / "env.txt").symlink_to("/proc/self/environ")
    confined = sqlite_repo.acting_as("alice", allowed_roots=(area.resolve(),))
    with pytest.raises(PathNotAllowed, match="outside the directories deposits may come from"):
        confined.deposit([good], title="T", metadata=area / "meta.yaml")
    with pytest.raises(PathNotAllowed, match="outside the directories deposits may come from"):
        confined.deposit([good], title="T", supporting=[area / "env.txt"])
    _nothing_written(sqlite_repo)


def _multifile(folder: Path, companion: str) -> Path:
    """A two-plane multi-file OME-TIFF whose second plane lives in ``companion``."""
    folder.mkdir(parents=True, exist_ok=True)
    a = folder / "a.ome.tif"
    xml = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<OME xmlns="http://www.openmicroscopy.org/Schemas/OME/2016-06" '
        'UUID="urn:uuid:00000000-0000-0000-0000-00000000000a">'
        '<Image ID="Image:0" Name="a"><Pixels ID="Pixels:0" DimensionOrder="XYZCT" '
        'Type="uint16" SizeX="32" SizeY="32" SizeZ="2" SizeC="1" SizeT="1" '
        'PhysicalSizeX="0.02" PhysicalSizeY="0.02" PhysicalSizeZ="0.1">'
        '<Channel ID="Channel:0:0" SamplesPerPixel="1"/>'
        '<TiffData FirstZ="0" IFD="0" PlaneCount="1">'
        '<UUID FileName="a.ome.tif">urn:uuid:00000000-0000-0000-0000-00000000000a</UUID>'
        "</TiffData>"
        '<TiffData FirstZ="1" IFD="0" PlaneCount="1">'
        f'<UUID FileName="{companion}">urn:uuid:00000000-0000-0000-0000-00000000000b</UUID>'
        "</TiffData></Pixels></Image></OME>"
    )
    tifffile.imwrite(a, np.full((32, 32), 7, np.uint16), description=xml, metadata=None)
    return a


def _secret(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tifffile.imwrite(path, np.full((32, 32), 4242, np.uint16))
    return path


@pytest.mark.parametrize("kind", ["climbs-out", "absolute", "subfolder", "missing"])
def test_an_ome_tiff_companion_outside_the_deposit_is_refused(
    sqlite_repo: Any, tmp_path: Path, metadata_file: Path, kind: str
) -> None:
    secret = _secret(tmp_path / "storage-like" / "embargoed.tif")
    name = {
        "climbs-out": "../storage-like/embargoed.tif",
        "absolute": str(secret),
        "subfolder": "sub/b.ome.tif",
        "missing": "b.ome.tif",
    }[kind]
    a = _multifile(tmp_path / "upload", name)
    if kind == "subfolder":
        _secret(tmp_path / "upload" / "sub" / "b.ome.tif")
    with pytest.raises(UnsafeInput, match="names the companion file") as e:
        sqlite_repo.deposit([a], title="T", metadata=metadata_file)
    assert repr(name)[:40] in str(e.value)
    _nothing_written(sqlite_repo)


def test_a_companion_beside_it_but_not_deposited_is_refused(
    sqlite_repo: Any, tmp_path: Path, metadata_file: Path
) -> None:
    a = _multifile(tmp_path / "upload", "b.ome.tif")
    _secret(tmp_path / "upload" / "b.ome.tif")
    with pytest.raises(UnsafeInput, match=r"'b\.ome\.tif', which is not among the deposited"):
        sqlite_repo.deposit([a], title="T", metadata=metadata_file)
    _nothing_written(sqlite_repo)


def test_a_companion_that_is_a_link_is_refused(
    sqlite_repo: Any, tmp_path: Path, metadata_file: Path
) -> None:
    a = _multifile(tmp_path / "upload", "b.ome.tif")
    (tmp_path / "upload" / "b.ome.tif").symlink_to(_secret(tmp_path / "elsewhere" / "s.tif"))
    with pytest.raises(UnsafeInput, match=r"'b\.ome\.tif', which is a link or special file"):
        sqlite_repo.deposit([a], title="T", metadata=metadata_file)
    _nothing_written(sqlite_repo)


def test_an_input_swapped_for_a_link_after_the_check_is_refused(
    sqlite_settings: Any, tmp_path: Path
) -> None:
    f = tmp_path / "in" / "cell.ome.tif"
    f.parent.mkdir()
    write_ome_tiff(f)
    _real, checked = confine_input(sqlite_settings, f)
    check_unchanged(checked)  # untouched: fine
    f.unlink()
    f.symlink_to("/etc/passwd")
    with pytest.raises(
        UnsafeInput, match=r"cell\.ome\.tif was replaced while it was being deposited"
    ):
        check_unchanged(checked)


def _binary_only(path: Path) -> Path:
    """A companion as Bio-Formats writes it: one plane, OME-XML only ``<BinaryOnly>``."""
    xml = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<OME xmlns="http://www.openmicroscopy.org/Schemas/OME/2016-06" '
        'UUID="urn:uuid:00000000-0000-0000-0000-00000000000b">'
        '<BinaryOnly MetadataFile="a.ome.tif" '
        'UUID="urn:uuid:00000000-0000-0000-0000-00000000000a"/></OME>'
    )
    tifffile.imwrite(path, np.full((32, 32), 9, np.uint16), description=xml, metadata=None)
    return path


def test_companions_deposited_together_side_by_side_are_read(
    sqlite_repo: Any, tmp_path: Path, metadata_file: Path
) -> None:
    """The rule refuses only what was not given: a multi-file OME-TIFF whose companion is
    deposited with it, in the same folder, still deposits with every plane in place."""
    a = _multifile(tmp_path / "upload", "b.ome.tif")
    b = _binary_only(tmp_path / "upload" / "b.ome.tif")
    result = sqlite_repo.deposit([a, b], title="T", metadata=metadata_file)
    assert result.images == ["a"]  # the companion is no image of its own
    assert "originals/b.ome.tif" in result.files  # but kept as deposited
    (img,) = sqlite_repo.open(result.accession).images
    planes = np.asarray(img.to_xarray(level=0)).reshape(2, 32, 32)
    assert (planes[0].max(), planes[1].max()) == (7, 9)


def test_a_binary_only_companion_without_its_metadata_file_is_refused(
    sqlite_repo: Any, tmp_path: Path, metadata_file: Path
) -> None:
    _multifile(tmp_path / "upload", "b.ome.tif")
    b = _binary_only(tmp_path / "upload" / "b.ome.tif")
    with pytest.raises(InvalidInput, match=r"b\.ome\.tif is a companion of the multi-file"):
        sqlite_repo.deposit([b], title="T", metadata=metadata_file)
    _nothing_written(sqlite_repo)
