"""Arbitrarily large synthetic images, rendered region by region on demand.

A :class:`SyntheticImage` is an :class:`~nanorepo.ome.ImageSource` whose pixels do not
exist until they are read. Two fixed grids make any region reproducible and seamless:

* **structure cells** in nanometres: the labels of cell ``(iz, iy, ix)`` of channel ``c``
  are drawn by the structure generator from a seed derived from the image seed, the
  channel and the cell index, so they do not depend on which region asked for them;
* **render blocks** in pixels (``block_shape``): a block is rendered from the labels of
  every cell that reaches it (plus the PSF's reach), and its shot noise is drawn from a
  seed derived from the block index.

``read(region)`` renders the blocks the region overlaps and copies out the region, so
the same pixel has the same value whichever region it is read in, and memory grows with
the region (plus one block and a bounded cache of cell labels), never with the image.
"""

from __future__ import annotations

import math
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, NamedTuple

import numpy as np

from nanorepo.errors import InvalidInput
from nanorepo.ome._source import AXES, Channel
from nanorepo.samples._geometry import (
    Structures,
    chromatin_domains,
    microtubules,
    nuclear_pores,
)
from nanorepo.samples._modality import Modality, get_modality
from nanorepo.samples._render import TRUNCATE, detect, expected_photons

__all__ = ["KINDS", "SyntheticImage", "default_channel"]

#: Structure generators by kind, with the cell size (nm) and the distance (nm) their labels
#: may reach beyond a cell, used when streaming.
KINDS: dict[str, tuple[Callable[..., Structures], float, float]] = {
    "nuclear_pores": (nuclear_pores, 2000.0, 0.0),
    "microtubules": (microtubules, 8000.0, 4000.0),
    "chromatin": (chromatin_domains, 2000.0, 600.0),
}

_KIND_OPTIONS: dict[str, dict[str, Any]] = {
    "microtubules": {"overhang_nm": 4000.0},
    "chromatin": {"overhang_nm": 600.0},
}

_KIND_CODE = {"nuclear_pores": 1, "microtubules": 2, "chromatin": 3}
_NOISE = 0x5EED
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")

_CHANNELS: dict[str, Channel] = {
    "nuclear_pores": Channel(
        name="Nup96-SNAP-AF647",
        color="FF00FF",
        emission_wavelength_nm=665.0,
        excitation_wavelength_nm=640.0,
        fluorophore="Alexa Fluor 647",
    ),
    "microtubules": Channel(
        name="alpha-tubulin-AF488",
        color="00FF00",
        emission_wavelength_nm=520.0,
        excitation_wavelength_nm=488.0,
        fluorophore="Alexa Fluor 488",
    ),
    "chromatin": Channel(
        name="H2B-SNAP-AF568",
        color="00FFFF",
        emission_wavelength_nm=603.0,
        excitation_wavelength_nm=561.0,
        fluorophore="Alexa Fluor 568",
    ),
}


class _Cell(NamedTuple):
    """Cached labels of one structure cell: offsets (float32) from its origin (nm)."""

    origin: np.ndarray
    offsets: np.ndarray
    weights: np.ndarray


def default_channel(kind: str) -> Channel:
    """The channel description (name, colour, dye, wavelengths) used for a structure kind."""
    _check_kind(kind)
    return _CHANNELS[kind]


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise InvalidInput(
            f"unknown structure kind {kind!r}", hint=f"use one of {', '.join(sorted(KINDS))}"
        )


def _zigzag(i: int) -> int:
    """Map any int to a non-negative one, one-to-one (SeedSequence keys must be >= 0)."""
    return 2 * i if i >= 0 else -2 * i - 1


def _default_dims(ndim: int) -> tuple[str, ...]:
    return {2: ("y", "x"), 3: ("z", "y", "x"), 4: ("c", "z", "y", "x"), 5: AXES}.get(ndim, ())


class SyntheticImage:
    """A synthetic nanoscopy image of any size that renders only the regions it is asked for.

    Parameters
    ----------
    shape:
        Size along ``dims``, e.g. ``(1, 2, 4000, 100000, 100000)``; construction is instant
        and allocates nothing of that size.
    dims:
        Axis names, a subset of ``t, c, z, y, x`` in that order ending in ``y, x``; default
        from the number of dimensions (2: ``yx``, 3: ``zyx``, 4: ``czyx``, 5: ``tczyx``).
    structures:
        The structure kind of each channel: ``"nuclear_pores"``, ``"microtubules"`` or
        ``"chromatin"``; as many as the ``c`` axis is long (one without a ``c`` axis).
    modality:
        A :class:`Modality` or preset name; sets PSF, pixel size, photons, detector.
    pixel_size_nm, z_step_nm, time_interval_s:
        Sampling; default the modality's. Structures are static; each time point has new
        noise.
    seed:
        Everything (labels and noise) is a function of the seed and ``block_shape``.
    name:
        The image name (``[A-Za-z0-9._-]``).
    block_shape:
        ``(z, y, x)`` size of a render block; reads aligned to it waste nothing.
    structure_options:
        Keyword arguments for the generator of each kind, e.g.
        ``{"chromatin": {"density_per_um3": 4.0}}``.
    channel_info:
        Channel descriptions replacing the defaults of the kinds.
    key_values:
        File-level key/value metadata reported as ``key_values``.
    focal_plane_nm:
        z of the focal plane of an image without a ``z`` axis (structures are centred on 0).
    workers:
        Threads rendering the blocks of one read in parallel (numpy and scipy release the
        GIL for most of the work; 2 gives ~1.3-1.7x on two cores). Results do not depend on it.
    cache_labels:
        Upper bound on the number of label positions kept in the cell cache (16 bytes
        each: the default holds at most 128 MB).
    """

    def __init__(
        self,
        shape: Sequence[int],
        *,
        dims: Sequence[str] | None = None,
        structures: Sequence[str] = ("nuclear_pores",),
        modality: Modality | str = "STED",
        pixel_size_nm: float | None = None,
        z_step_nm: float | None = None,
        time_interval_s: float = 1.0,
        seed: int = 0,
        name: str = "synthetic",
        block_shape: Sequence[int] = (8, 512, 512),
        structure_options: Mapping[str, Mapping[str, Any]] | None = None,
        channel_info: Sequence[Channel] | None = None,
        key_values: Mapping[str, str] | None = None,
        focal_plane_nm: float = 0.0,
        cache_labels: int = 8_000_000,
        workers: int = 1,
    ) -> None:
        try:
            self.shape: tuple[int, ...] = tuple(int(s) for s in shape)
        except (TypeError, ValueError):
            raise InvalidInput(f"shape {shape!r} must be a sequence of ints") from None
        self.dims: tuple[str, ...] = (
            tuple(dims) if dims is not None else _default_dims(len(self.shape))
        )
        if (
            len(self.dims) != len(self.shape)
            or self.dims[-2:] != ("y", "x")
            or list(self.dims) != [a for a in AXES if a in self.dims]
        ):
            raise InvalidInput(
                f"dims {self.dims} do not fit shape {self.shape}",
                hint="dims are a subset of t, c, z, y, x in that order, ending in y, x, "
                "one per dimension of shape",
            )
        if any(s <= 0 for s in self.shape):
            raise InvalidInput(f"shape {self.shape} must have positive sizes")
        if not isinstance(seed, int | np.integer) or seed < 0:
            raise InvalidInput(f"seed {seed!r} must be a non-negative int")
        kinds = tuple(structures)
        for k in kinds:
            _check_kind(k)
        n_c = self._size("c")
        if len(kinds) != n_c:
            raise InvalidInput(
                f"{len(kinds)} structure kinds for {n_c} channels",
                hint="give one kind per channel, e.g. structures=('chromatin', 'microtubules')",
            )
        self.kinds = kinds
        self.modality = get_modality(modality)
        self.seed = int(seed)
        if not _NAME.fullmatch(name):
            raise InvalidInput(
                f"image name {name!r} is not allowed", hint="use letters, digits, '.', '_', '-'"
            )
        self.name = name
        px = float(pixel_size_nm or self.modality.pixel_size_nm)
        pz = float(z_step_nm or self.modality.z_step_nm)
        if not (px > 0 and pz > 0 and time_interval_s > 0):
            raise InvalidInput("pixel_size_nm, z_step_nm and time_interval_s must be positive")
        self._px, self._pz = px, pz
        self.dtype = np.dtype(np.uint16)
        sizes: dict[str, float] = {"y": px, "x": px}
        if "z" in self.dims:
            sizes = {"z": pz, **sizes}
        if "t" in self.dims:
            sizes = {"t": float(time_interval_s), **sizes}
        self.pixel_sizes: Mapping[str, float] = sizes
        if channel_info is not None:
            if len(channel_info) != n_c:
                raise InvalidInput(f"{len(channel_info)} channel descriptions for {n_c} channels")
            self.channels: tuple[Channel, ...] = tuple(channel_info)
        else:
            self.channels = tuple(default_channel(k) for k in kinds)
        self.acquisition: Mapping[str, Any] = {
            **self.modality.acquisition(),
            "generator": {"seed": self.seed, "structures": list(kinds)},
        }
        self.key_values: Mapping[str, str] = {str(k): str(v) for k, v in (key_values or {}).items()}
        self.origin: tuple[str, ...] = (f"synthetic:{name}?seed={self.seed}",)
        bs = tuple(int(b) for b in block_shape)
        if len(bs) != 3 or any(b <= 0 for b in bs):
            raise InvalidInput(f"block_shape {block_shape!r} must be three positive ints (z, y, x)")
        self.block_shape = (bs[0] if "z" in self.dims else 1, bs[1], bs[2])
        self.focal_plane_nm = float(focal_plane_nm)
        options = {k: dict(v) for k, v in (structure_options or {}).items()}
        for k in options:
            _check_kind(k)
        self._options = {k: {**_KIND_OPTIONS.get(k, {}), **options.get(k, {})} for k in KINDS}
        self._cache: OrderedDict[tuple[int, int, int, int], _Cell] = OrderedDict()
        self._cache_points = 0
        self._cache_limit = int(cache_labels)
        self._lock = threading.Lock()
        self.workers = max(1, int(workers))

    # -- geometry -----------------------------------------------------------------------

    def __repr__(self) -> str:
        return (
            f"SyntheticImage(name={self.name!r}, dims={''.join(self.dims)}, shape={self.shape}, "
            f"modality={self.modality.name}, structures={self.kinds}, seed={self.seed})"
        )

    def _size(self, axis: str) -> int:
        return self.shape[self.dims.index(axis)] if axis in self.dims else 1

    @property
    def nbytes(self) -> int:
        """Size of the whole image in bytes, were it ever materialised."""
        return math.prod(self.shape) * self.dtype.itemsize

    def _cell(self, kind: str) -> tuple[float, float]:
        """(cell size, overhang) in nm for a kind; overhang may be raised by options."""
        _, cell, reach = KINDS[kind]
        opts = self._options[kind]
        size = float(opts.get("cell_size_nm", cell))
        reach = max(reach, float(opts.get("overhang_nm", 0.0)))
        return size, reach

    def _cell_labels(self, c: int, iz: int, iy: int, ix: int) -> _Cell:
        """The labels of one structure cell, from the cache or freshly drawn."""
        key = (c, iz, iy, ix)
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None:
                self._cache.move_to_end(key)
                return hit
        kind = self.kinds[c]
        gen = KINDS[kind][0]
        size, _ = self._cell(kind)
        opts = {k: v for k, v in self._options[kind].items() if k != "cell_size_nm"}
        ss = np.random.SeedSequence(
            self.seed,
            spawn_key=(_KIND_CODE[kind], c, _zigzag(iz), _zigzag(iy), _zigzag(ix)),
        )
        origin = np.array([ix * size, iy * size, (iz - 0.5) * size])
        s = gen((size, size, size), origin_nm=origin, seed=ss, describe=False, **opts)
        # float32 offsets from the cell origin: exact to ~1e-3 nm, a third of the memory
        cell = _Cell(
            origin,
            (s.positions_nm - origin).astype(np.float32),
            s.weights.astype(np.float32),
        )
        with self._lock:
            if key not in self._cache:
                self._cache[key] = cell
                self._cache_points += len(cell.weights)
            while self._cache_points > self._cache_limit and len(self._cache) > 1:
                _, old = self._cache.popitem(last=False)
                self._cache_points -= len(old.weights)
        return cell

    def _labels_in(
        self, c: int, lo_nm: np.ndarray, hi_nm: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Positions and weights of channel ``c``'s labels that may fall in [lo, hi] (x, y, z)."""
        size, reach = self._cell(self.kinds[c])
        lo_i = np.floor((lo_nm - reach) / size).astype(int)
        hi_i = np.floor((hi_nm + reach) / size).astype(int)
        # z cells are centred on z = 0
        lo_i[2] = math.floor((lo_nm[2] - reach) / size + 0.5)
        hi_i[2] = math.floor((hi_nm[2] + reach) / size + 0.5)
        pos: list[np.ndarray] = []
        wts: list[np.ndarray] = []
        for iz in range(lo_i[2], hi_i[2] + 1):
            for iy in range(lo_i[1], hi_i[1] + 1):
                for ix in range(lo_i[0], hi_i[0] + 1):
                    cell = self._cell_labels(c, iz, iy, ix)
                    if not len(cell.weights):
                        continue
                    rel_lo = lo_nm - cell.origin
                    rel_hi = hi_nm - cell.origin
                    if np.all(rel_lo <= -reach) and np.all(rel_hi >= size + reach):
                        rel, w = cell.offsets, cell.weights  # the whole cell is inside
                    else:
                        r = cell.offsets
                        m = (r[:, 0] >= rel_lo[0]) & (r[:, 0] <= rel_hi[0])
                        m &= (r[:, 1] >= rel_lo[1]) & (r[:, 1] <= rel_hi[1])
                        m &= (r[:, 2] >= rel_lo[2]) & (r[:, 2] <= rel_hi[2])
                        if not m.any():
                            continue
                        rel, w = r[m], cell.weights[m]
                    pos.append(rel + cell.origin)
                    wts.append(w)
        if not pos:
            return np.zeros((0, 3)), np.zeros(0)
        return np.concatenate(pos), np.concatenate(wts).astype(np.float64)

    def labels(self, channel: int = 0, region: Sequence[slice] | None = None) -> np.ndarray:
        """Ground-truth label positions (``x, y, z`` nm) of a channel inside a region.

        ``region`` is given like for :meth:`read` (slices over ``dims``; ``t`` and ``c`` are
        ignored); pixel ``i`` spans ``(i - 0.5) * pixel_size`` to ``(i + 0.5) * pixel_size``.
        Planar images include labels within the axial PSF's reach of the focal plane.
        """
        sl = self._normalise(
            region if region is not None else tuple(slice(None) for _ in self.dims)
        )
        z, y, x = (sl.get(a, slice(0, 1)) for a in ("z", "y", "x"))
        lo = np.array([(x.start - 0.5) * self._px, (y.start - 0.5) * self._px, 0.0])
        hi = np.array([(x.stop - 0.5) * self._px, (y.stop - 0.5) * self._px, 0.0])
        if "z" in self.dims:
            lo[2], hi[2] = (z.start - 0.5) * self._pz, (z.stop - 0.5) * self._pz
        else:
            reach = TRUNCATE * self.modality.sigma_axial_nm
            lo[2], hi[2] = self.focal_plane_nm - reach, self.focal_plane_nm + reach
        pos, _ = self._labels_in(int(channel), lo, hi)
        keep = np.all((pos >= lo) & (pos < hi), axis=1)
        return pos[keep]

    # -- rendering ----------------------------------------------------------------------

    def render_block(self, t: int, c: int, block: tuple[int, int, int]) -> np.ndarray:
        """The uint16 pixels ``(z, y, x)`` of one render block (clipped at the image edge)."""
        bz, by, bx = block
        BZ, BY, BX = self.block_shape
        nz, ny, nx = self._size("z"), self._size("y"), self._size("x")
        z0, y0, x0 = bz * BZ, by * BY, bx * BX
        shape = (min(BZ, nz - z0), min(BY, ny - y0), min(BX, nx - x0))
        mod = self.modality
        sig = (mod.sigma_axial_nm, mod.sigma_lateral_nm, mod.sigma_lateral_nm)
        reach_xy = TRUNCATE * sig[1] + 2 * self._px
        planar = "z" not in self.dims
        lo = np.array([x0 * self._px - reach_xy, y0 * self._px - reach_xy, 0.0])
        hi = np.array(
            [(x0 + shape[2]) * self._px + reach_xy, (y0 + shape[1]) * self._px + reach_xy, 0.0]
        )
        reach_z = TRUNCATE * sig[0] + 2 * self._pz
        if planar:
            lo[2], hi[2] = self.focal_plane_nm - reach_z, self.focal_plane_nm + reach_z
        else:
            lo[2], hi[2] = z0 * self._pz - reach_z, (z0 + shape[0]) * self._pz + reach_z
        pos, wts = self._labels_in(c, lo, hi)
        exp = expected_photons(
            pos,
            wts,
            start_px=(z0, y0, x0),
            shape=shape,
            pixel_size_nm=(self._pz, self._px, self._px),
            sigma_nm=sig,
            photons_per_label=mod.photons_per_label,
            focal_plane_nm=self.focal_plane_nm if planar else None,
        )
        rng = np.random.default_rng(
            np.random.SeedSequence(self.seed, spawn_key=(_NOISE, t, c, bz, by, bx))
        )
        return detect(exp, mod, rng)

    def _normalise(self, region: Sequence[slice] | slice | None) -> dict[str, slice]:
        if region is None:
            region = ()
        if isinstance(region, slice):
            region = (region,)
        region = tuple(region)
        if len(region) > len(self.dims):
            raise InvalidInput(
                f"region has {len(region)} slices for an image with dims {''.join(self.dims)}"
            )
        region = region + (slice(None),) * (len(self.dims) - len(region))
        out: dict[str, slice] = {}
        for axis, size, s in zip(self.dims, self.shape, region, strict=True):
            if isinstance(s, int | np.integer):
                i = int(s) + (size if s < 0 else 0)
                s = slice(i, i + 1)
            if not isinstance(s, slice):
                raise InvalidInput(f"region along {axis} must be a slice, not {s!r}")
            start, stop, step = s.indices(size)
            if step != 1:
                raise InvalidInput(f"region along {axis}: only steps of 1 are supported")
            if (s.start is not None and not -size <= s.start <= size) or stop < start:
                raise InvalidInput(f"region {s} along {axis} lies outside 0..{size}")
            out[axis] = slice(start, max(stop, start))
        return out

    def read(self, region: Sequence[slice] | slice | None = None) -> np.ndarray:
        """Render the pixels of ``region`` (one slice per dim, steps of 1).

        Integers select one index and keep the axis (length 1). Only the render blocks
        the region overlaps are rendered.
        """
        sl = self._normalise(region)
        out_shape = tuple(sl[a].stop - sl[a].start for a in self.dims)
        out = np.empty(out_shape, dtype=self.dtype)
        if out.size == 0:
            return out
        view = out.reshape(
            tuple(out_shape[self.dims.index(a)] if a in self.dims else 1 for a in AXES)
        )
        full = {a: sl.get(a, slice(0, 1)) for a in AXES}
        tasks = [
            (t, c, (bz, by, bx), src, (ti, ci, *dst))
            for ti, t in enumerate(range(full["t"].start, full["t"].stop))
            for ci, c in enumerate(range(full["c"].start, full["c"].stop))
            for bz, by, bx, src, dst in self._blocks(full["z"], full["y"], full["x"])
        ]

        def one(task: tuple[Any, ...]) -> None:
            t, c, block, src, dst = task
            view[dst] = self.render_block(t, c, block)[src]

        if self.workers > 1 and len(tasks) > 1:
            with ThreadPoolExecutor(min(self.workers, len(tasks))) as pool:
                list(pool.map(one, tasks))
        else:
            for task in tasks:
                one(task)
        return out

    def _blocks(
        self, z: slice, y: slice, x: slice
    ) -> Iterator[tuple[int, int, int, tuple[slice, ...], tuple[slice, ...]]]:
        BZ, BY, BX = self.block_shape

        def spans(s: slice, b: int) -> Iterator[tuple[int, slice, slice]]:
            for i in range(s.start // b, (s.stop - 1) // b + 1):
                lo, hi = max(s.start, i * b), min(s.stop, (i + 1) * b)
                yield i, slice(lo - i * b, hi - i * b), slice(lo - s.start, hi - s.start)

        for bz, sz, dz in spans(z, BZ):
            for by, sy, dy in spans(y, BY):
                for bx, sx, dx in spans(x, BX):
                    yield bz, by, bx, (sz, sy, sx), (dz, dy, dx)

    def iter_planes(self, planes_per_read: int | None = None) -> Iterator[np.ndarray]:
        """Yield every ``(y, x)`` plane in ``t, c, z`` order, reading whole block slabs.

        Memory holds one slab of ``planes_per_read`` planes (default: the block depth).
        """
        nz = self._size("z")
        step = int(planes_per_read or self.block_shape[0])
        for t in range(self._size("t")):
            for c in range(self._size("c")):
                for z0 in range(0, nz, step):
                    idx = {
                        "t": slice(t, t + 1),
                        "c": slice(c, c + 1),
                        "z": slice(z0, min(z0 + step, nz)),
                    }
                    slab = self.read(tuple(idx[a] if a in idx else slice(None) for a in self.dims))
                    yield from slab.reshape(-1, slab.shape[-2], slab.shape[-1])
