"""Deposit inputs: checked paths, what each file is, and the facts harvested from it.

Nothing here writes: classification opens every input (readers sniff content, not file
name extensions) and collects every problem, so a deposit with one bad file among many is
refused before any conversion starts.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from nanorepo.deposition._metadata import ImageFacts
from nanorepo.errors import InvalidInput, PathNotAllowed, UnsafeInput
from nanorepo.settings import Settings
from nanorepo.storage import NotRegularFile, check_name, open_beneath, scan_beneath

if TYPE_CHECKING:
    from nanorepo.ome import Channel, ImageSource

# nanorepo.ome (tensorstore, zarr, dask, xarray) is imported where images are handled, so
# commands that only read the catalog (list, show, history) start in a fraction of a second.


def check_input_path(settings: Settings, path: Path) -> Path:
    """The real path of a deposit input, if it lies where deposits may come from.

    Only the path as given is resolved (the caller chose it); what lies below it is
    checked without following links by :func:`confine_input`.
    """
    p = Path(path).expanduser()
    if "\x00" in str(p):
        raise InvalidInput(f"{str(p)[:200]!r} is not a path")
    try:
        real = p.resolve(strict=True)
    except (OSError, RuntimeError):
        raise InvalidInput(f"{p}: no such file or directory", hint="check the path") from None
    if settings.allowed_roots and not any(
        real == r or r in real.parents for r in settings.allowed_roots
    ):
        raise PathNotAllowed(
            f"{p}: outside the directories deposits may come from",
            hint="allowed: " + ", ".join(str(r) for r in settings.allowed_roots),
        )
    storage = settings.storage.resolve()
    if real == storage or storage in real.parents:
        raise PathNotAllowed(
            f"{p}: is inside the repository storage",
            hint="deposit from a copy outside the repository; to correct a dataset use `nanorepo revise`",
        )
    return real


#: (st_dev, st_ino, st_size, st_mtime_ns) of a regular file, as :class:`Entry` gives it.
Identity = tuple[int, int, int, int]


def _anchor(settings: Settings, real: Path) -> tuple[Path, PurePosixPath]:
    """The directory an input is confined to, and the input's path below it: the allowed
    root it lies in (service: the caller's staging area or upload folder), else (a local
    CLI deposit) the directory holding it."""
    for r in settings.allowed_roots:
        if real == r or r in real.parents:
            return r, PurePosixPath(real.relative_to(r).as_posix())
    return real.parent, PurePosixPath(real.name)


def _unsafe(shown: str, kind: str) -> UnsafeInput:
    return UnsafeInput(
        f"{shown} is {kind}; deposits read only regular files, never links or special files",
        hint="copy the file itself (not a link to it) into the deposit, or leave it out; "
        "nothing was deposited",
    )


def confine_input(settings: Settings, path: Path) -> tuple[Path, dict[Path, Identity]]:
    """Check one deposit input and every file below it; returns its real path and the
    identity of each regular file it holds (by real path).

    Every component from the confining directory down to each file is opened with
    ``O_NOFOLLOW`` (:func:`nanorepo.storage.open_beneath`): a symbolic link anywhere in the
    input, a FIFO, a socket or a device file is refused by name (relative to the deposit)
    before any reader opens anything.

    Raises
    ------
    UnsafeInput
        The input is, or holds, something other than regular files and directories.
    PathNotAllowed
        The input lies outside the caller's staging area (or in the repository storage).
    """
    real = check_input_path(settings, path)
    root, rel = _anchor(settings, real)
    files: dict[Path, Identity] = {}
    try:
        if real.is_dir():
            for e in scan_beneath(root, rel if rel.parts else ()):
                shown = f"{real.name}/{e.rel}"
                if e.identity is None:
                    raise _unsafe(shown, e.kind)
                files[real / e.rel] = e.identity
        else:
            fd, st = open_beneath(root, rel)
            os.close(fd)
            files[real] = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
    except NotRegularFile as exc:
        raise _unsafe(exc.where, exc.kind) from None
    except FileNotFoundError:
        raise InvalidInput(f"{path}: disappeared while it was checked") from None
    return real, files


def check_unchanged(checked: Mapping[Path, Identity]) -> None:
    """Refuse the deposit if a checked input file was replaced since it was checked (e.g.
    swapped for a link while it was converted): what was read must be what was checked."""
    for p, ident in checked.items():
        try:
            fd, st = open_beneath(p.parent, p.name)
            os.close(fd)
        except (OSError, NotRegularFile):
            st = None
        if st is None or (st.st_dev, st.st_ino) != ident[:2]:
            raise UnsafeInput(
                f"{p.name} was replaced while it was being deposited",
                hint="leave the files alone until the deposit finishes, then run it again; "
                "nothing was deposited",
            )


def safe_name(stem: str) -> str:
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", stem).strip("._-") or "image"
    if not name[0].isalnum():
        name = "i" + name
    return name[:128]


def file_stem(p: Path) -> str:
    name = p.name
    for suffix in (".ome.tiff", ".ome.tif", ".ome.zarr", ".tiff", ".tif", ".zarr"):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return p.stem


def is_zarr_dir(p: Path) -> bool:
    return any((p / marker).exists() for marker in ("zarr.json", ".zattrs", ".zgroup"))


def fingerprint(path: Path, checked: Mapping[Path, Identity]) -> list[Any]:
    """Identity of an input for the deposit key: path, size and mtime of every file (as
    :func:`confine_input` found them, no link followed)."""
    if path in checked:
        ident = checked[path]
        return [str(path), ident[2], str(ident[3])]  # ns exceed JSON-safe integers
    out = [
        [q.relative_to(path).as_posix(), ident[2], str(ident[3])]
        for q, ident in sorted(checked.items())
        if path in q.parents
    ]
    return [str(path), out]


@dataclass
class Inputs:
    sources: list[ImageSource]
    tables: list[tuple[str, Path, Any]]  # name, path, LocalisationTable
    supporting: list[Path]
    originals: list[Path]
    #: every regular file of the deposit (real path -> identity), checked without links
    checked: dict[Path, Identity] = field(default_factory=dict)
    #: the inputs as given (real paths): files and folders
    given: set[Path] = field(default_factory=set)

    def confine(self, settings: Settings, path: Path) -> Path:
        """Check one more input (:func:`confine_input`) and remember its files."""
        real, files = confine_input(settings, path)
        self.checked.update(files)
        self.given.add(real)
        return real

    def check_origins(self, sources: Sequence[ImageSource]) -> None:
        """Every file a reader opened for ``sources`` must be one the deposit was given
        (a multi-file OME-TIFF's companions deposited together, side by side)."""
        for src in sources:
            for o in src.origin:
                if Path(o) not in self.checked and Path(o) not in self.given:
                    raise UnsafeInput(
                        f"{src.name}: its reader refers to {Path(o).name!r}, which is not "
                        "among the deposited files",
                        hint="deposit a multi-file OME-TIFF's files together, side by side in "
                        "one folder; nothing was deposited",
                    )


def classify(
    settings: Settings,
    paths: Sequence[Path],
    supporting: Sequence[Path],
    pattern: str | None,
    taken: set[str],
) -> Inputs:
    from nanorepo.ome import (
        binary_only_master,
        is_localisation_table,
        open_sources,
        read_localisations,
    )

    inputs = Inputs([], [], [], [])
    names = set(taken)
    errors: list[InvalidInput] = []
    reals: list[Path] = []
    for raw in paths:
        try:
            reals.append(inputs.confine(settings, raw))
        except UnsafeInput as exc:
            errors.append(exc)
    if not errors:
        inputs.supporting = [inputs.confine(settings, s) for s in supporting]
    for p in reals if not errors else []:
        inputs.originals.append(p)
        master = binary_only_master(p) if p.is_file() and not is_localisation_table(p) else None
        if master is not None:
            # A multi-file OME-TIFF's companion (Bio-Formats writes them): its planes are
            # read through the file holding the OME-XML, which must be deposited with it.
            if not any(r.parent == p.parent and r.name == master for r in reals):
                errors.append(
                    InvalidInput(
                        f"{p.name} is a companion of the multi-file OME-TIFF {master[:200]!r} "
                        "(its OME-XML is only <BinaryOnly>), which is not deposited with it",
                        hint=f"deposit {master[:200]!r} and its companions together, side by "
                        "side in one folder; nothing was deposited",
                    )
                )
            continue
        try:
            if p.is_file() and is_localisation_table(p):
                name = safe_name(file_stem(p))
                inputs.tables.append((name, p, read_localisations(p)))
                new = [name]
            else:
                # Every series of a multi-series file becomes an image (<name>_s<i>).
                # A plane folder names its image(s) from the file-name pattern's {name}.
                image_name = None if p.is_dir() and not is_zarr_dir(p) else safe_name(file_stem(p))
                found = open_sources(p, pattern=pattern, name=image_name)
                inputs.check_origins(found)
                inputs.sources.extend(found)
                new = [src.name for src in found]
        except InvalidInput as exc:
            errors.append(exc)
            continue
        for n in new:
            check_name(n)
            if n in names:
                errors.append(
                    InvalidInput(
                        f"{p}: a second image or table named {n!r}; rename one of the files"
                    )
                )
            names.add(n)
    if len(errors) == 1:
        raise errors[0]
    if errors:
        raise InvalidInput(
            f"{len(errors)} inputs cannot be deposited:\n" + "\n".join(f"  - {e}" for e in errors),
            hint="nothing was deposited; fix or remove the files named above",
        )
    for s in inputs.supporting:
        if not s.is_file():
            raise InvalidInput(f"{s}: supporting files must be regular files")
    return inputs


def image_facts(src: ImageSource) -> ImageFacts:
    return ImageFacts(
        name=src.name,
        dims=list(src.dims),
        shape=[int(s) for s in src.shape],
        dtype=str(src.dtype),
        pixel_sizes=dict(src.pixel_sizes),
        channels=[{k: v for k, v in asdict(c).items() if v is not None} for c in src.channels],
        acquisition=dict(src.acquisition),
        key_values=dict(src.key_values),
        origin=list(src.origin),
        origin_names=[Path(o).name for o in src.origin] + [file_stem(Path(o)) for o in src.origin],
    )


class SourcedImage:
    """An ImageSource with metadata overrides from the deposit applied."""

    def __init__(self, src: ImageSource, facts: ImageFacts) -> None:
        from nanorepo.ome import Channel

        self._src = src
        self.name = src.name
        self.dims = tuple(src.dims)
        self.shape = tuple(src.shape)
        self.dtype = src.dtype
        self.pixel_sizes: Mapping[str, float] = dict(facts["pixel_sizes"])
        fields = set(Channel.__dataclass_fields__)
        self.channels: tuple[Channel, ...] = tuple(
            Channel(
                **{k: (tuple(v) if k == "window" and v else v) for k, v in c.items() if k in fields}  # type: ignore[arg-type]
            )
            for c in facts["channels"]
        ) or tuple(src.channels)
        self.acquisition: Mapping[str, Any] = dict(facts["acquisition"])
        self.key_values: Mapping[str, str] = dict(facts["key_values"])
        self.origin = tuple(src.origin)

    def read(self, region: tuple[slice, ...]) -> Any:
        return self._src.read(region)
