"""Deposit inputs: checked paths, what each file is, and the facts harvested from it.

Nothing here writes: classification opens every input (readers sniff content, not file
name extensions) and collects every problem, so a deposit with one bad file among many is
refused before any conversion starts.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nanorepo.deposition._metadata import ImageFacts
from nanorepo.errors import InvalidInput, PathNotAllowed
from nanorepo.settings import Settings
from nanorepo.storage import check_name

if TYPE_CHECKING:
    from nanorepo.ome import Channel, ImageSource

# nanorepo.ome (tensorstore, zarr, dask, xarray) is imported where images are handled, so
# commands that only read the catalog (list, show, history) start in a fraction of a second.


def check_input_path(settings: Settings, path: Path) -> Path:
    p = Path(path).expanduser()
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


def fingerprint(path: Path) -> list[Any]:
    """Identity of an input for the deposit key: path, size and mtime of every file."""
    if path.is_dir():
        out = []
        for dirpath, _dirs, files in sorted(os.walk(path)):
            for f in sorted(files):
                st = os.stat(os.path.join(dirpath, f))
                out.append(
                    [
                        os.path.relpath(os.path.join(dirpath, f), path),
                        st.st_size,
                        str(st.st_mtime_ns),
                    ]
                )
        return [str(path), out]
    st = path.stat()
    return [str(path), st.st_size, str(st.st_mtime_ns)]  # ns exceed JSON-safe integers


@dataclass
class Inputs:
    sources: list[ImageSource]
    tables: list[tuple[str, Path, Any]]  # name, path, LocalisationTable
    supporting: list[Path]
    originals: list[Path]


def classify(
    settings: Settings,
    paths: Sequence[Path],
    supporting: Sequence[Path],
    pattern: str | None,
    taken: set[str],
) -> Inputs:
    from nanorepo.ome import is_localisation_table, open_sources, read_localisations

    sources: list[ImageSource] = []
    tables: list[tuple[str, Path, Any]] = []
    originals: list[Path] = []
    names = set(taken)
    errors: list[InvalidInput] = []
    for raw in paths:
        p = check_input_path(settings, raw)
        originals.append(p)
        try:
            if p.is_file() and is_localisation_table(p):
                name = safe_name(file_stem(p))
                tables.append((name, p, read_localisations(p)))
                new = [name]
            else:
                # Every series of a multi-series file becomes an image (<name>_s<i>).
                # A plane folder names its image(s) from the file-name pattern's {name}.
                image_name = None if p.is_dir() and not is_zarr_dir(p) else safe_name(file_stem(p))
                found = open_sources(p, pattern=pattern, name=image_name)
                sources.extend(found)
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
    sup = [check_input_path(settings, s) for s in supporting]
    for s in sup:
        if not s.is_file():
            raise InvalidInput(f"{s}: supporting files must be regular files")
    return Inputs(sources, tables, sup, originals)


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
