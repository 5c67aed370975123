r"""dSprites without a network: a procedural renderer and a loader for the original file.

The dSprites dataset (Matthey et al. 2017) holds every combination of five ground-truth
factors, in this order (the factor order of this module and of the original file):

==============  ======  ====================================================================
factor          size    values
==============  ======  ====================================================================
shape           3       1 = square, 2 = ellipse, 3 = heart (the original file's values)
scale           6       ``linspace(0.5, 1, 6)``
orientation     40      :math:`k\cdot 2\pi/40`, :math:`k=0,\dots,39` (radians)
posX            32      ``linspace(0, 1, 32)``
posY            32      ``linspace(0, 1, 32)``
==============  ======  ====================================================================

that is :math:`3\cdot6\cdot40\cdot32\cdot32 = 737{,}280` binary 64×64 images. Image ``i`` of the
grid has the factor indices ``np.unravel_index(i, factor_sizes)`` (posY varies fastest), as
in the original file.

Geometry of the procedural renderer (our own choice, close to the original)
---------------------------------------------------------------------------
Lengths are in *units* of 1/64 of the canvas width, so one unit is one pixel at 64×64 and
half a pixel at 32×32. Continuous pixel coordinates put pixel ``j`` on ``[j, j+1)``, with
its centre at ``j + 0.5``; ``x`` runs along columns, ``y`` along rows (downwards).

* **Position.** The sprite's reference point is at
  ``x = (16.5 + 31·posX)`` units and ``y = (16.5 + 31·posY)`` units. At 64×64 the 32
  positions are the centres of pixels 16, 17, …, 47: **one position step is exactly one
  pixel**, so translation is an exact integer shift. posX increasing moves the sprite
  **right** (column index grows); posY increasing moves it **down** (row index grows, i.e.
  down on screen with ``imshow``'s default ``origin="upper"``).
* **Scale** multiplies every length of the sprite.
* **Orientation** rotates the sprite about its reference point, counter-clockwise on screen
  (the y axis of the sprite points up on screen). Cosines and sines are reduced to the first
  quadrant and rotated by exact quarter turns, so the square at ``k`` and ``k+10`` and the
  ellipse at ``k`` and ``k+20`` are *bit-identical* images (as symmetry demands); the heart
  has no rotational symmetry, so its 40 orientations all differ.
* **Shapes at scale 1** (sprite frame, ``v`` up on screen):

  - *square*: ``max(|u|, |v|) <= 8.5`` (side 17 units, circumradius 12.0; at 64×64 and
    orientation 0 its edges lie on pixel boundaries, 17×17 pixels);
  - *ellipse*: ``(u/13)**2 + (v/6.5)**2 <= 1`` (major axis horizontal at orientation 0);
  - *heart*: with ``g = 9`` and ``q = v + κ g``, the union of the diamond
    ``|u| + |q| <= g`` and the two discs of radius ``g/√2`` centred at ``(±g/2, g/2)`` (the
    midpoints of the diamond's upper edges); lobes up, tip down at orientation 0. The shift
    ``κ = (π/4 + 1/3) / (2 + π/2) ≈ 0.313`` puts the heart's centroid on the reference
    point. Area ``(2 + π/2) g² ≈ 289``, width 21.7, height 19.9 units, farthest point (the
    tip) 11.8 units from the centroid.

  Every sprite stays within 13 units of its reference point, so at every position, scale
  and orientation it lies fully inside the canvas (margin ≥ 3.5 units at scale 1).
* **Rasterisation, binary at every resolution.** Each pixel is sampled at ``s × s`` points
  (``supersample``, default 4) placed symmetrically about its centre; the pixel is 1 if at
  least half of the points fall inside the sprite, else 0. Images are ``uint8`` in {0, 1}
  at every resolution.
* **Speed.** Each position is split into an integer pixel and a fractional part (positions
  are snapped to 1e-9 px). One small *template* is rendered per (shape, scale, orientation,
  fractional x, fractional y) and pasted at the integer offset. At 64×64 every fractional
  part is 0.5, so the 737,280 images need only 720 templates. Renderers and their template
  caches are shared between instances with the same grid, resolution and supersampling.

dSprites-lite (:func:`dsprites_lite`, ours): 32×32, the same ranges resampled
to shape 3, scale 4 (``linspace(0.5, 1, 4)``), orientation 8 (:math:`k\cdot2\pi/8`, i.e.
every 5th original orientation), posX 8 and posY 8 (``linspace(0, 1, 8)``): 6,144 images.

Distinctness (tested): at 64×64 two images coincide exactly when symmetry demands (square
``k ~ k+10``, ellipse ``k ~ k+20``, heart never) — checked on all 737,280 images (430,080
distinct). At lower resolutions small sprites lose detail: in dSprites-lite images still
differ whenever shape, scale or position differ, but 8 pairs of the smallest hearts (scale
0.5, about 5 px wide) coincide across orientations; at 32×32 with all 40 orientations and
at 16×16 more orientations coincide, so use coarse orientation subgrids there.

Differences from the original file: the original orientation grid is
``linspace(0, 2π, 40)`` (its last value equals its first, so orientations 0 and 39 render
alike); here it is :math:`k\cdot2\pi/40` (our choice). The pixel geometry of the
original is not reproduced exactly (sizes and margins are our own choice).

Used in: :ref:`ch-rate-distortion` (data), :ref:`appendix-metrics` and
:ref:`ch-semafovae` (ground-truth sampler).
"""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ..config import check_rng

if TYPE_CHECKING:  # pragma: no cover
    import torch
    from torch.utils.data import TensorDataset

__all__ = [
    "FACTOR_NAMES",
    "SHAPE_NAMES",
    "SHAPE_ROTATION_ORDER",
    "ORIGINAL_FACTOR_SIZES",
    "NPZ_FILENAME",
    "NPZ_URL",
    "DSprites",
    "original_factor_values",
    "dsprites_lite",
    "load_dsprites_npz",
]

FACTOR_NAMES: tuple[str, ...] = ("shape", "scale", "orientation", "posX", "posY")
SHAPE_NAMES: tuple[str, ...] = ("square", "ellipse", "heart")
#: The order of each shape's rotational symmetry, in the order of ``SHAPE_NAMES``. A shape of
#: order m looks the same after a turn of 2π/m (the square after a quarter turn, the ellipse
#: after a half turn, the heart only after a full one); chapter 4 scores orientation modulo it.
SHAPE_ROTATION_ORDER: tuple[int, ...] = (4, 2, 1)
ORIGINAL_FACTOR_SIZES: tuple[int, ...] = (3, 6, 40, 32, 32)
NPZ_FILENAME = "dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz"
NPZ_URL = "https://github.com/deepmind/dsprites-dataset"

# Geometry, in units of 1/64 of the canvas width (see the module docstring).
_POS_OFFSET = 16.5
_POS_SPAN = 31.0
_SQUARE_HALF_SIDE = 8.5
_ELLIPSE_SEMI_AXES = (13.0, 6.5)
_HEART_G = 9.0
_HEART_KAPPA = (math.pi / 4.0 + 1.0 / 3.0) / (2.0 + math.pi / 2.0)  # centroid height / g
_SHAPE_RADIUS = (
    _SQUARE_HALF_SIDE * math.sqrt(2.0),
    max(_ELLIPSE_SEMI_AXES),
    _HEART_G * (1.0 + _HEART_KAPPA),  # the tip; the lobes reach 1.241 g
)
_MIN_RESOLUTION, _MAX_RESOLUTION = 8, 256
_TEMPLATE_CACHE_LIMIT = 50_000

PathLike = Union[str, "os.PathLike[str]"]
StepSpec = Union[int, Mapping[str, int], Sequence[int], None]


# ----------------------------------------------------------------------------- helpers
def original_factor_values() -> list[np.ndarray]:
    """Values of the five dSprites factors on the original grid.

    Returns
    -------
    list of np.ndarray
        Five float64 arrays, in the order of ``FACTOR_NAMES``: shape ``[1, 2, 3]`` (3,),
        scale ``linspace(0.5, 1, 6)`` (6,), orientation ``k·2π/40`` (40,), posX and posY
        ``linspace(0, 1, 32)`` (32,) each.


    Used in: :ref:`ch-rate-distortion`
    """
    return [
        np.array([1.0, 2.0, 3.0]),
        np.linspace(0.5, 1.0, 6),
        np.arange(40) * (2.0 * math.pi / 40.0),
        np.linspace(0.0, 1.0, 32),
        np.linspace(0.0, 1.0, 32),
    ]


def _check_int(value: Any, name: str, low: int, high: int | None = None) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    value = int(value)
    if value < low or (high is not None and value > high):
        rng = f">= {low}" if high is None else f"in [{low}, {high}]"
        raise ValueError(f"{name} must be {rng}, got {value}")
    return value


def _as_int_array(x: Any, name: str, ndim: int) -> np.ndarray:
    """``x`` as an int64 array with ``ndim`` dimensions, or a clear ``ValueError``."""
    try:
        a = np.asarray(x)
    except Exception as exc:  # ragged lists, etc.
        raise ValueError(f"{name} must be an integer array, got {type(x).__name__}: {exc}") from exc
    if a.size == 0 and a.dtype.kind in "fO":
        a = a.astype(np.int64)
    if a.dtype.kind not in "iu":
        raise ValueError(f"{name} must hold integers (factor indices), got dtype {a.dtype}")
    if a.ndim != ndim:
        want = "[N]" if ndim == 1 else "[N, K]"
        raise ValueError(f"{name} must have shape {want} ({ndim}-D), got shape {a.shape}")
    return a.astype(np.int64, copy=False)


def _cos_sin(theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cosine and sine with exact quarter-turn symmetry.

    ``theta`` is reduced to a quadrant ``q`` and a residual (rounded to 1e-12 quarter turns),
    the residual's cosine and sine are rotated by ``q`` exact quarter turns. Hence angles that
    differ by a multiple of π/2 give values that are exact sign/swap images of each other.
    """
    quarter = np.asarray(theta, dtype=np.float64) / (math.pi / 2.0)
    q = np.floor(np.round(quarter, 9))
    resid = np.round(quarter - q, 12) * (math.pi / 2.0)
    c0, s0 = np.cos(resid), np.sin(resid)
    q = q.astype(np.int64) % 4
    c = np.select([q == 0, q == 1, q == 2], [c0, -s0, -c0], s0)
    s = np.select([q == 0, q == 1, q == 2], [s0, c0, -s0], -c0)
    return c, s


# ----------------------------------------------------------------------------- backends
class _ProceduralBackend:
    """Renders any (shape, scale, orientation, posX, posY) grid at one resolution.

    ``values`` is the backend's full grid; :meth:`render` takes indices into it.
    """

    kind = "procedural"

    def __init__(self, values: list[np.ndarray], resolution: int, supersample: int) -> None:
        self.values = values
        self.resolution = resolution
        self.supersample = supersample
        shape_vals, scales, orients, pos_x, pos_y = values
        self.shape_ids = np.rint(shape_vals).astype(np.int64) - 1
        self.scales = scales
        self.cos, self.sin = _cos_sin(orients)
        unit = resolution / 64.0
        r_max = unit * float(scales.max()) * max(_SHAPE_RADIUS[s] for s in self.shape_ids)
        self.half = int(math.ceil(r_max + 1.0))  # template covers offsets -half..half
        self.axes = [self._axis(pos_x, unit, r_max, "posX"), self._axis(pos_y, unit, r_max, "posY")]
        self.template_sizes = (
            len(shape_vals),
            len(scales),
            len(orients),
            len(self.axes[0][2]),
            len(self.axes[1][2]),
        )
        self._cache: dict[int, np.ndarray] = {}

    def _axis(
        self, pos: np.ndarray, unit: float, r_max: float, name: str
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Integer pixel, fraction class and distinct fractions of every position value."""
        centre = np.round(unit * (_POS_OFFSET + _POS_SPAN * pos), 9)
        if centre.min() - r_max < 0 or centre.max() + r_max > self.resolution:
            raise ValueError(
                f"{name} values in [{pos.min():g}, {pos.max():g}] with scale up to "
                f"{self.scales.max():g} would put the sprite outside the canvas"
            )
        n = np.floor(centre).astype(np.int64)
        frac = centre - n
        fracs, cls = np.unique(frac, return_inverse=True)
        return n, cls.reshape(-1), fracs

    # -- templates
    def _render_templates(self, tids: np.ndarray) -> np.ndarray:
        """Binary templates ``uint8 [U, T, T]`` for template ids ``tids [U]``."""
        sh, sc, orr, fxc, fyc = np.unravel_index(tids, self.template_sizes)
        ss, half = self.supersample, self.half
        T = 2 * half + 1
        sub = (np.arange(ss) + 0.5) / ss - 0.5
        d = (np.arange(-half, half + 1)[:, None] + 0.5 + sub[None, :]).reshape(-1)  # [T*ss]
        out = np.empty((len(tids), T, T), dtype=np.uint8)
        unit = self.resolution / 64.0
        chunk = max(1, 2_000_000 // (d.size * d.size))
        for start in range(0, len(tids), chunk):
            sl = slice(start, start + chunk)
            k = np.asarray(self.scales[sc[sl]] * unit)[:, None]
            x = (d[None, :] - self.axes[0][2][fxc[sl]][:, None]) / k  # [B, M] right
            y = -(d[None, :] - self.axes[1][2][fyc[sl]][:, None]) / k  # [B, M] up
            c = self.cos[orr[sl]][:, None, None]
            s = self.sin[orr[sl]][:, None, None]
            xx, yy = x[:, None, :], y[:, :, None]  # [B, 1, M], [B, M, 1] (rows = y)
            u = xx * c + yy * s
            v = yy * c - xx * s
            inside = np.zeros(u.shape, dtype=bool)
            shp = sh[sl]
            for sid in np.unique(self.shape_ids[shp]):
                m = self.shape_ids[shp] == sid
                inside[m] = _inside(int(sid), u[m], v[m])
            cov = inside.reshape(len(k), T, ss, T, ss).sum(axis=(2, 4), dtype=np.int32)
            out[sl] = 2 * cov >= ss * ss
        return out

    def templates(self, tids: np.ndarray) -> np.ndarray:
        missing = [int(t) for t in tids if int(t) not in self._cache]
        if missing:
            if len(self._cache) + len(missing) > _TEMPLATE_CACHE_LIMIT:
                self._cache.clear()
            for t, img in zip(missing, self._render_templates(np.asarray(missing, dtype=np.int64))):
                self._cache[t] = img
        return np.stack([self._cache[int(t)] for t in tids])

    # -- images
    def render(self, idx: np.ndarray) -> np.ndarray:
        """``uint8 [N, R, R]`` images for backend factor indices ``idx [N, 5]``."""
        R = self.resolution
        if len(idx) == 0:
            return np.zeros((0, R, R), dtype=np.uint8)
        (nx, cx, _), (ny, cy, _) = self.axes
        tid = np.ravel_multi_index(
            (idx[:, 0], idx[:, 1], idx[:, 2], cx[idx[:, 3]], cy[idx[:, 4]]), self.template_sizes
        )
        uniq, inv = np.unique(tid, return_inverse=True)
        tpl = self.templates(uniq)
        half, T = self.half, 2 * self.half + 1
        # Canvas B with the template's offset 0 at B index A+P: image(j) = B[j - n + A + P].
        px = [int(n.max() - n.min()) for n in (nx, ny)]
        P = half
        A = [int(nx.max()), int(ny.max())]
        Wx, Wy = R + px[0] + 2 * P, R + px[1] + 2 * P
        big = np.zeros((len(uniq), Wy, Wx), dtype=np.uint8)
        # template index t in [-half, half] sits at B index t + A + P (always inside B)
        y0, x0 = A[1] + P - half, A[0] + P - half
        big[:, y0 : y0 + T, x0 : x0 + T] = tpl
        windows = sliding_window_view(big, (R, R), axis=(1, 2))  # [U, Wy-R+1, Wx-R+1, R, R]
        sy = A[1] + P - ny[idx[:, 4]]
        sx = A[0] + P - nx[idx[:, 3]]
        return windows[inv.reshape(-1), sy, sx]


@functools.lru_cache(maxsize=8)
def _procedural_backend(
    values: tuple[tuple[float, ...], ...], resolution: int, supersample: int
) -> _ProceduralBackend:
    """One shared renderer (and template cache) per grid, resolution and supersampling."""
    return _ProceduralBackend(
        [np.array(v, dtype=np.float64) for v in values], resolution, supersample
    )


def _inside(shape_id: int, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Indicator of the sprite ``shape_id`` (0 square, 1 ellipse, 2 heart) at scale 1."""
    if shape_id == 0:
        return np.maximum(np.abs(u), np.abs(v)) <= _SQUARE_HALF_SIDE
    if shape_id == 1:
        a, b = _ELLIPSE_SEMI_AXES
        return (u / a) ** 2 + (v / b) ** 2 <= 1.0
    g = _HEART_G
    q = v + _HEART_KAPPA * g
    au = np.abs(u)  # the heart is mirror-symmetric in u
    return (au + np.abs(q) <= g) | ((au - 0.5 * g) ** 2 + (q - 0.5 * g) ** 2 <= 0.5 * g * g)


class _ArrayBackend:
    """Images held in memory (the original file): ``images [N, R, R]`` on a full grid."""

    kind = "npz"

    def __init__(self, images: np.ndarray, values: list[np.ndarray], source: str) -> None:
        self.images = images
        self.values = values
        self.resolution = int(images.shape[-1])
        self.sizes = tuple(len(v) for v in values)
        self.source = source

    def render(self, idx: np.ndarray) -> np.ndarray:
        rows = np.ravel_multi_index(tuple(idx.T), self.sizes) if len(idx) else np.zeros(0, np.int64)
        return self.images[rows]


# ----------------------------------------------------------------------------- the dataset
class DSprites:
    """The dSprites factor grid (or a subgrid of it) with ground-truth factor indices.

    One API for the procedural renderer (this constructor) and for the original file
    (:func:`load_dsprites_npz`). Image ``i`` has factor indices
    ``index_to_factors([i])[0]``; factors are always *indices* ``0..factor_sizes[k]-1`` into
    :attr:`factor_values`. See the module docstring for the geometry.

    Parameters
    ----------
    resolution : int
        Image side R in pixels, 8..256 (default 64, the original). Lengths scale with R.
    step : int, mapping or sequence, optional
        Keep every ``step``-th value of a factor: a mapping ``{"posX": 4, ...}``, a sequence
        of 5 ints, or one int for all factors. ``None`` keeps the full grid.
    factor_values : sequence of 5 array-likes, optional
        Custom real values per factor (shape values in {1, 2, 3}; scale in (0, 1.25];
        positions in [0, 1]; orientations in radians). Default: :func:`original_factor_values`.
    supersample : int
        Samples per pixel side (1..16) for the coverage threshold (default 4: 16 samples).

    Examples
    --------
    >>> ds = DSprites(resolution=64, step={"orientation": 4, "posX": 4, "posY": 4})
    >>> ds.factor_sizes, len(ds)
    ((3, 6, 10, 8, 8), 11520)


    Used in: :ref:`ch-rate-distortion`, :ref:`appendix-metrics`,
    :ref:`ch-semafovae`
    """

    factor_names: tuple[str, ...] = FACTOR_NAMES
    shape_names: tuple[str, ...] = SHAPE_NAMES

    def __init__(
        self,
        resolution: int = 64,
        step: StepSpec = None,
        *,
        factor_values: Sequence[Any] | None = None,
        supersample: int = 4,
    ) -> None:
        resolution = _check_int(resolution, "resolution", _MIN_RESOLUTION, _MAX_RESOLUTION)
        supersample = _check_int(supersample, "supersample", 1, 16)
        values = (
            _validate_values(factor_values)
            if factor_values is not None
            else original_factor_values()
        )
        backend = _procedural_backend(
            tuple(tuple(v.tolist()) for v in values), resolution, supersample
        )
        self._init(backend, [np.arange(len(v)) for v in values])
        if step is not None:
            self._levels = self.subgrid(step)._levels

    @classmethod
    def _from_backend(cls, backend: Any, levels: list[np.ndarray]) -> DSprites:
        obj = cls.__new__(cls)
        obj._init(backend, levels)
        return obj

    def _init(self, backend: Any, levels: list[np.ndarray]) -> None:
        self._backend = backend
        self._levels = [np.asarray(lv, dtype=np.int64) for lv in levels]

    # -- description
    @property
    def factor_sizes(self) -> tuple[int, ...]:
        """Number of values of each factor in this (sub)grid, e.g. ``(3, 6, 40, 32, 32)``."""
        return tuple(len(lv) for lv in self._levels)

    @property
    def factor_values(self) -> list[np.ndarray]:
        """Real values of each factor, float64 arrays of lengths :attr:`factor_sizes`."""
        return [self._backend.values[k][lv].astype(np.float64) for k, lv in enumerate(self._levels)]

    @property
    def num_factors(self) -> int:
        """Number of factors K (5)."""
        return len(self._levels)

    @property
    def resolution(self) -> int:
        """Image side R in pixels."""
        return int(self._backend.resolution)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """``(1, R, R)``: the shape of one image."""
        return (1, self.resolution, self.resolution)

    @property
    def source(self) -> str:
        """``"procedural"`` or ``"npz:<absolute path>"``."""
        return "procedural" if self._backend.kind == "procedural" else f"npz:{self._backend.source}"

    def __len__(self) -> int:
        return int(np.prod(self.factor_sizes, dtype=np.int64))

    def __repr__(self) -> str:
        sizes = ", ".join(f"{n}={s}" for n, s in zip(self.factor_names, self.factor_sizes))
        return f"DSprites({sizes}; {len(self)} images of {self.resolution}x{self.resolution}; {self.source})"

    def factor_index(self, name: str) -> int:
        """Column of factor ``name`` in factor arrays; ``ValueError`` for an unknown name.

        Used in: :ref:`appendix-metrics`
        """
        if name not in self.factor_names:
            raise ValueError(
                f"unknown factor {name!r}; valid factors: {', '.join(self.factor_names)}"
            )
        return self.factor_names.index(name)

    # -- sub-grids and resolutions
    def select(self, levels: Mapping[str, Any]) -> DSprites:
        """Sub-grid keeping the given factor indices (others unchanged).

        Parameters
        ----------
        levels : mapping from factor name to a sequence of indices into this grid's values,
            e.g. ``{"shape": [2], "scale": [0, 5]}``.

        Returns
        -------
        DSprites
            Same renderer (shared template cache), smaller grid.


        Used in: :ref:`ch-rate-distortion`
        """
        new = [lv.copy() for lv in self._levels]
        for name, sel in levels.items():
            k = self.factor_index(name)
            s = _as_int_array(np.atleast_1d(np.asarray(sel)), f"levels[{name!r}]", 1)
            if s.size == 0:
                raise ValueError(f"levels[{name!r}] selects no value")
            if s.min() < 0 or s.max() >= len(self._levels[k]):
                raise ValueError(
                    f"levels[{name!r}] out of range [0, {len(self._levels[k]) - 1}]: {s.tolist()}"
                )
            new[k] = self._levels[k][s]
        return DSprites._from_backend(self._backend, new)

    def subgrid(self, step: StepSpec = None, **steps: int) -> DSprites:
        """Sub-grid keeping every ``step``-th value of each factor (starting at index 0).

        Parameters
        ----------
        step : int, mapping ``{name: int}`` or sequence of K ints; keyword arguments
            ``posX=4`` etc. are merged in. A missing factor keeps step 1.

        Returns
        -------
        DSprites
            e.g. ``subgrid({"orientation": 4, "posX": 4, "posY": 4})`` has sizes
            ``(3, 6, 10, 8, 8)``.


        Used in: :ref:`ch-rate-distortion`
        """
        if step is None:
            spec: dict[str, Any] = {}
        elif isinstance(step, Mapping):
            spec = dict(step)
        elif isinstance(step, (int, np.integer)) and not isinstance(step, bool):
            spec = {n: step for n in self.factor_names}
        else:
            seq = list(step)  # type: ignore[arg-type]
            if len(seq) != self.num_factors:
                raise ValueError(f"step must have {self.num_factors} entries, got {len(seq)}")
            spec = dict(zip(self.factor_names, seq))
        spec.update(steps)
        levels = {}
        for name, st in spec.items():
            k = self.factor_index(name)
            st = _check_int(st, f"step[{name!r}]", 1)
            levels[name] = np.arange(0, len(self._levels[k]), st)
        return self.select(levels)

    def at_resolution(self, resolution: int, supersample: int | None = None) -> DSprites:
        """The same factor grid rendered at another resolution (procedural only).

        Parameters
        ----------
        resolution : new image side R (8..256).
        supersample : samples per pixel side; default: this grid's.

        Returns
        -------
        DSprites
            Same :attr:`factor_values`, images uint8 [N, 1, resolution, resolution].

        Raises
        ------
        ValueError
            For a grid backed by the original file (64×64 only).


        Used in: :ref:`ch-rate-distortion`
        """
        if self._backend.kind != "procedural":
            raise ValueError(
                f"{self.source} holds {self.resolution}x{self.resolution} images only; "
                "use the procedural DSprites(resolution=...) for other resolutions"
            )
        return DSprites(
            resolution,
            factor_values=self.factor_values,
            supersample=self._backend.supersample if supersample is None else supersample,
        )

    # -- indices
    def _check_factors(self, factors: Any, name: str = "factors") -> np.ndarray:
        f = _as_int_array(factors, name, 2)
        if f.shape[1] != self.num_factors:
            raise ValueError(
                f"{name} must have shape [N, {self.num_factors}] (columns {', '.join(self.factor_names)}), "
                f"got shape {f.shape}"
            )
        sizes = np.asarray(self.factor_sizes)
        bad = (f < 0) | (f >= sizes)
        if bad.any():
            row, col = map(int, np.argwhere(bad)[0])
            raise ValueError(
                f"{name}[{row}, {col}] = {f[row, col]} is out of range for factor "
                f"{self.factor_names[col]!r} (valid indices 0..{sizes[col] - 1})"
            )
        return f

    def index_to_factors(self, idx: Any) -> np.ndarray:
        """Factor indices of grid images.

        Parameters
        ----------
        idx : int array [N] in ``[0, len(self))``.

        Returns
        -------
        np.ndarray
            int64 [N, K] factor indices (``np.unravel_index`` order: posY fastest).


        Used in: :ref:`appendix-metrics`
        """
        i = _as_int_array(idx, "idx", 1)
        n = len(self)
        if i.size and (i.min() < 0 or i.max() >= n):
            raise ValueError(f"idx out of range [0, {n - 1}]: min {i.min()}, max {i.max()}")
        if i.size == 0:
            return np.zeros((0, self.num_factors), dtype=np.int64)
        return np.stack(np.unravel_index(i, self.factor_sizes), axis=1).astype(np.int64)

    def factors_to_index(self, factors: Any) -> np.ndarray:
        """Grid index of each factor vector (inverse of :meth:`index_to_factors`).

        Parameters
        ----------
        factors : int array [N, K] of factor indices.

        Returns
        -------
        np.ndarray
            int64 [N] indices in ``[0, len(self))``.


        Used in: :ref:`appendix-metrics`
        """
        f = self._check_factors(factors)
        if len(f) == 0:
            return np.zeros(0, dtype=np.int64)
        return np.ravel_multi_index(tuple(f.T), self.factor_sizes).astype(np.int64)

    def factors_to_values(self, factors: Any) -> np.ndarray:
        """Real factor values, float64 [N, K], of factor indices ``factors`` int [N, K].

        Used in: :ref:`appendix-metrics`
        """
        f = self._check_factors(factors)
        vals = self.factor_values
        return np.stack([vals[k][f[:, k]] for k in range(self.num_factors)], axis=1).reshape(
            len(f), -1
        )

    def one_hot(self, factors: Any) -> np.ndarray:
        """Concatenated one-hot codes, float32 [N, sum(factor_sizes)] (SemafoVAE's ``y``).

        Used in: :ref:`ch-semafovae`
        """
        f = self._check_factors(factors)
        sizes = self.factor_sizes
        out = np.zeros((len(f), sum(sizes)), dtype=np.float32)
        offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        out[np.arange(len(f))[:, None], f + offsets] = 1.0
        return out

    def all_factors(self) -> np.ndarray:
        """Factor indices of every image of the (sub)grid, int64 [len, K], in grid order.

        Used in: :ref:`ch-rate-distortion`
        """
        return self.index_to_factors(np.arange(len(self), dtype=np.int64))

    # -- sampling (ground-truth-data interface of the disentanglement metrics)
    def sample_factors(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """Draw ``n`` factor vectors, each factor independently uniform over its indices.

        Parameters
        ----------
        n : number of samples (>= 0).
        rng : ``numpy.random.Generator``; anything else (an integer seed, a legacy
            ``RandomState``) is a ``TypeError``.

        Returns
        -------
        np.ndarray
            int64 [n, K].


        Used in: :ref:`appendix-metrics`, :ref:`ch-semafovae`
        """
        n = _check_int(n, "n", 0)
        check_rng(rng)
        cols = [rng.integers(0, s, size=n) for s in self.factor_sizes]
        return np.stack(cols, axis=1).astype(np.int64).reshape(n, self.num_factors)

    def sample_observations_from_factors(
        self, factors: Any, rng: np.random.Generator | None = None
    ) -> np.ndarray:
        """Images of the given factors (the renderer is deterministic; ``rng`` is unused).

        Parameters
        ----------
        factors : int array [N, K] of factor indices.
        rng : unused; kept for the ground-truth-data interface.

        Returns
        -------
        np.ndarray
            uint8 [N, 1, R, R] in {0, 1}.


        Used in: :ref:`appendix-metrics`
        """
        return self.images(factors)

    def sample(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """``(factors int64 [n, K], images uint8 [n, 1, R, R])`` with uniform factors.

        Used in: :ref:`appendix-metrics`
        """
        f = self.sample_factors(n, rng)
        return f, self.images(f)

    # -- images
    def images(self, factors: Any) -> np.ndarray:
        """Render (or look up) the images of the given factor indices.

        Parameters
        ----------
        factors : int array [N, K] of factor indices into this (sub)grid.

        Returns
        -------
        np.ndarray
            uint8 [N, 1, R, R] with values in {0, 1}. Only the requested images are made.


        Used in: :ref:`ch-rate-distortion`
        """
        f = self._check_factors(factors)
        back = np.stack([self._levels[k][f[:, k]] for k in range(self.num_factors)], axis=1)
        return self._backend.render(back.reshape(len(f), self.num_factors))[:, None]

    def iter_batches(self, batch_size: int = 32768) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Stream the (sub)grid in grid order without holding it all.

        Parameters
        ----------
        batch_size : images per batch.

        Yields
        ------
        (np.ndarray, np.ndarray)
            int64 factors [B, K] and uint8 images [B, 1, R, R] in {0, 1}.


        Used in: :ref:`ch-rate-distortion`
        """
        batch_size = _check_int(batch_size, "batch_size", 1)
        for start in range(0, len(self), batch_size):
            f = self.index_to_factors(np.arange(start, min(start + batch_size, len(self))))
            yield f, self.images(f)

    def render_all(
        self, batch_size: int = 32768, progress: bool = False, out: np.ndarray | None = None
    ) -> np.ndarray:
        """Every image of the (sub)grid, in grid order.

        Parameters
        ----------
        batch_size : images rendered per batch (memory of the temporaries).
        progress : show a ``tqdm`` progress bar.
        out : optional preallocated uint8 array [len, 1, R, R] to fill (e.g. a
            ``np.lib.format.open_memmap`` file); by default a new array.

        Returns
        -------
        np.ndarray
            uint8 [len, 1, R, R] in {0, 1} (the full 64×64 grid takes 3.0 GB), ``out`` if given.


        Used in: :ref:`ch-rate-distortion`
        """
        batch_size = _check_int(batch_size, "batch_size", 1)
        n, R = len(self), self.resolution
        if out is None:
            out = np.empty((n, 1, R, R), dtype=np.uint8)
        elif not isinstance(out, np.ndarray) or out.shape != (n, 1, R, R) or out.dtype != np.uint8:
            got = (getattr(out, "shape", None), getattr(out, "dtype", type(out).__name__))
            raise ValueError(f"out must be a uint8 array of shape {(n, 1, R, R)}, got {got}")
        batches = self.iter_batches(batch_size)
        if progress:
            from tqdm.auto import tqdm

            batches = tqdm(
                batches, total=-(-n // batch_size), desc=f"dSprites {R}x{R}", unit="batch"
            )
        start = 0
        for _, imgs in batches:
            out[start : start + len(imgs)] = imgs
            start += len(imgs)
        return out

    # -- torch
    def as_tensors(self, factors: Any | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Images and factors as torch tensors.

        Parameters
        ----------
        factors : int array [N, K], or ``None`` for the whole (sub)grid.

        Returns
        -------
        (torch.Tensor, torch.Tensor)
            float32 images [N, 1, R, R] in {0., 1.} and int64 factors [N, K].


        Used in: :ref:`ch-rate-distortion`
        """
        import torch

        if factors is None:
            f, imgs = self.all_factors(), self.render_all()
        else:
            f = self._check_factors(factors)
            imgs = self.images(f)
        return torch.from_numpy(imgs.astype(np.float32)), torch.from_numpy(np.ascontiguousarray(f))

    def to_torch_dataset(self, factors: Any | None = None) -> TensorDataset:
        """A ``TensorDataset`` of (float32 image [1, R, R], int64 factors [K]) pairs.

        Parameters
        ----------
        factors : int array [N, K], or ``None`` for the whole (sub)grid.


        Used in: :ref:`ch-rate-distortion`
        """
        from torch.utils.data import TensorDataset

        return TensorDataset(*self.as_tensors(factors))


def _validate_values(factor_values: Sequence[Any]) -> list[np.ndarray]:
    vals = list(factor_values)
    if len(vals) != len(FACTOR_NAMES):
        raise ValueError(
            f"factor_values needs {len(FACTOR_NAMES)} arrays ({', '.join(FACTOR_NAMES)}), got {len(vals)}"
        )
    out = []
    for name, v in zip(FACTOR_NAMES, vals):
        a = np.asarray(v, dtype=np.float64)
        if a.ndim != 1 or a.size == 0 or not np.all(np.isfinite(a)):
            raise ValueError(
                f"factor_values[{name!r}] must be a non-empty 1-D finite array, got shape {a.shape}"
            )
        out.append(a)
    if not np.all(np.isin(out[0], [1.0, 2.0, 3.0])):
        raise ValueError(
            f"shape values must be in {{1, 2, 3}} (square, ellipse, heart), got {out[0].tolist()}"
        )
    if out[1].min() <= 0 or out[1].max() > 1.25:
        raise ValueError(
            f"scale values must be in (0, 1.25], got [{out[1].min():g}, {out[1].max():g}]"
        )
    for k in (3, 4):
        if out[k].min() < 0 or out[k].max() > 1:
            raise ValueError(
                f"{FACTOR_NAMES[k]} values must be in [0, 1], got [{out[k].min():g}, {out[k].max():g}]"
            )
    return out


def dsprites_lite(resolution: int = 32, supersample: int = 4) -> DSprites:
    """dSprites-lite (our preset): 6,144 images of 32×32.

    Same ranges as the original, resampled: shape 3; scale 4 (``linspace(0.5, 1, 4)``);
    orientation 8 (``k·2π/8``, every 5th original orientation); posX 8 and posY 8
    (``linspace(0, 1, 8)``, about 2.2 px apart at 32×32). Rendered procedurally with the
    module's geometry.

    Parameters
    ----------
    resolution : image side (default 32).
    supersample : samples per pixel side for the coverage threshold.

    Returns
    -------
    DSprites
        ``factor_sizes == (3, 4, 8, 8, 8)``, ``len == 6144``.


    Used in: :ref:`ch-rate-distortion`, :ref:`ch-semafovae`
    """
    values = [
        np.array([1.0, 2.0, 3.0]),
        np.linspace(0.5, 1.0, 4),
        np.arange(8) * (2.0 * math.pi / 8.0),
        np.linspace(0.0, 1.0, 8),
        np.linspace(0.0, 1.0, 8),
    ]
    return DSprites(resolution, factor_values=values, supersample=supersample)


# ----------------------------------------------------------------------------- the original file
def load_dsprites_npz(path: PathLike) -> DSprites:
    """Load the original ``dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz`` (same API).

    The file's ``latents_classes`` define the grid (the distinct classes of each factor, in
    increasing order); rows must be in lexicographic order of the classes, as in the
    original, so any consistent sub-grid file is accepted. The ``metadata`` key (which needs
    pickle) is not read.

    Parameters
    ----------
    path : the ``.npz`` file, or a directory that contains it under its original name.

    Returns
    -------
    DSprites
        Backed by the file's ``imgs`` (uint8 [N, 64, 64], about 3 GB for the full file);
        :attr:`DSprites.factor_values` from ``latents_values`` (shape 1, 2, 3).

    Raises
    ------
    FileNotFoundError
        If the file does not exist (the message gives the absolute path and where to get it).
    ValueError
        If an array is missing or has the wrong shape, dtype or order.


    Used in: :ref:`ch-rate-distortion` (paper profile)
    """
    p = Path(os.fspath(path)).expanduser()
    if p.is_dir():
        p = p / NPZ_FILENAME
    p = p.resolve()
    if not p.is_file():
        raise FileNotFoundError(
            f"dSprites file not found: {p}. Get '{NPZ_FILENAME}' from the deepmind/dsprites-dataset "
            f"GitHub repository ({NPZ_URL}) and pass its path (or its directory); without it use the "
            "procedural DSprites() of hvae_lib.data, which needs no download."
        )
    try:
        npz = np.load(p, allow_pickle=False)
    except Exception as exc:
        raise ValueError(f"{p} is not a readable .npz file: {exc}") from exc
    if not hasattr(npz, "files"):
        raise ValueError(
            f"{p} holds a single array, expected an .npz archive with imgs, latents_classes, latents_values"
        )
    with npz:
        missing = [k for k in ("imgs", "latents_classes", "latents_values") if k not in npz.files]
        if missing:
            raise ValueError(
                f"{p} lacks {missing}; expected arrays imgs uint8 [N, 64, 64], latents_classes int [N, 6] "
                f"and latents_values float [N, 6] (found {npz.files})"
            )
        imgs = npz["imgs"]
        classes = npz["latents_classes"]
        values = npz["latents_values"]
    return _dsprites_from_arrays(imgs, classes, values, str(p))


def _dsprites_from_arrays(
    imgs: np.ndarray, classes: np.ndarray, values: np.ndarray, source: str
) -> DSprites:
    if imgs.ndim != 3 or imgs.shape[1] != imgs.shape[2] or imgs.shape[1] < 1:
        raise ValueError(
            f"imgs must have shape [N, R, R] (original [737280, 64, 64]), got {imgs.shape}"
        )
    if imgs.dtype == np.bool_:
        imgs = imgs.astype(np.uint8)
    if imgs.dtype != np.uint8:
        raise ValueError(f"imgs must be uint8 (values 0/1), got dtype {imgs.dtype}")
    n = imgs.shape[0]
    if classes.ndim != 2 or classes.shape[1] not in (5, 6) or classes.shape[0] != n:
        raise ValueError(
            f"latents_classes must have shape [{n}, 6] (colour, shape, scale, orientation, posX, posY), "
            f"got {classes.shape}"
        )
    if classes.dtype.kind not in "iu":
        raise ValueError(f"latents_classes must be an integer array, got dtype {classes.dtype}")
    if values.shape != classes.shape:
        raise ValueError(
            f"latents_values must have shape {classes.shape} like latents_classes, got {values.shape}"
        )
    if values.dtype.kind != "f":
        raise ValueError(f"latents_values must be a float array, got dtype {values.dtype}")
    if classes.shape[1] == 6:
        if n and np.any(classes[:, 0] != classes[0, 0]):
            raise ValueError(
                "latents_classes[:, 0] (colour) must be constant; dSprites has one colour"
            )
        classes, values = classes[:, 1:], values[:, 1:]
    if n == 0:
        raise ValueError("the file holds no images")
    if imgs.max() > 1:
        raise ValueError(f"imgs must be binary (0/1), found the value {imgs.max()}")
    levels, inverse, grid_vals = [], [], []
    for k, name in enumerate(FACTOR_NAMES):
        lv, first, inv = np.unique(classes[:, k], return_index=True, return_inverse=True)
        inv = inv.reshape(-1)
        vals = values[first, k].astype(np.float64)
        if not np.allclose(values[:, k], vals[inv], rtol=1e-9, atol=1e-12):
            raise ValueError(
                f"latents_values of factor {name!r} differ within one class of latents_classes"
            )
        levels.append(lv)
        inverse.append(inv)
        grid_vals.append(vals)
    sizes = tuple(len(lv) for lv in levels)
    if int(np.prod(sizes)) != n:
        raise ValueError(
            f"latents_classes define a grid of {' x '.join(map(str, sizes))} = {int(np.prod(sizes))} "
            f"combinations but the file has {n} rows; every combination must occur exactly once"
        )
    order = np.ravel_multi_index(tuple(inverse), sizes)
    if not np.array_equal(order, np.arange(n)):
        raise ValueError(
            "rows are not in lexicographic order of latents_classes (shape, scale, orientation, posX, "
            "posY; posY fastest) as in the original file"
        )
    backend = _ArrayBackend(np.ascontiguousarray(imgs), grid_vals, source)
    return DSprites._from_backend(backend, [np.arange(s) for s in sizes])
