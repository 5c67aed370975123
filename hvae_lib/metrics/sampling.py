"""Ground-truth samplers for the metrics: on-the-fly encoding and a cached factor grid.

A *ground-truth dataset* is any object with the duck-typed interface of
:class:`GroundTruthData` (``hvae_lib.data.DSprites`` and :class:`SyntheticFactors` both have
it). The metrics that need fresh samples with one factor held fixed (FactorVAE, BetaVAE)
take three functions, bundled in :class:`GroundTruthSampler`:

``sample_factors(n, rng) -> [n, K]``, ``observe(factors, rng) -> observations`` and
``encode(observations) -> codes [n, D]``.

:meth:`GroundTruthSampler.from_dataset` renders and encodes on the fly. :class:`GridEncoder`
encodes every grid point (or every point needed) once and serves codes by index lookup; for
a deterministic representation (posterior means) and deterministic rendering this gives the
same codes as on-the-fly encoding for the same factor draws, at the cost of one pass over
the grid (737,280 images for dSprites) instead of about three million encoder calls.

Random numbers: every sampler takes an explicit ``numpy.random.Generator``.
disentanglement_lib consumes one ``RandomState(0)`` sequentially in batches of 16; drawing
from a ``Generator`` (in larger chunks) gives different samples from the same distribution,
so scores are comparable in distribution, not bit-identical.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple, Protocol, runtime_checkable

import numpy as np

from ..config import check_rng

__all__ = [
    "GroundTruthData",
    "GroundTruthSampler",
    "SyntheticFactors",
    "GridEncoder",
    "sample_codes_and_factors",
    "check_encoded",
]

#: Observations per ``encode`` call in the vectorised samplers.
DEFAULT_CHUNK = 4096


@runtime_checkable
class GroundTruthData(Protocol):
    """Duck-typed interface of a ground-truth dataset with a finite factor grid."""

    factor_sizes: tuple[int, ...]

    def sample_factors(self, n: int, rng: np.random.Generator) -> np.ndarray: ...

    def sample_observations_from_factors(
        self, factors: np.ndarray, rng: np.random.Generator
    ) -> Any: ...

    def index_to_factors(self, idx: Any) -> np.ndarray: ...

    def factors_to_index(self, factors: np.ndarray) -> np.ndarray: ...

    def all_factors(self) -> np.ndarray: ...

    def __len__(self) -> int: ...


def check_encoded(codes: Any, n: int) -> np.ndarray:
    """Check the output of an ``encode`` function: ``n`` rows, 2-D, finite; return float64."""
    arr = np.asarray(codes)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2 or arr.shape[0] != n:
        raise ValueError(f"encode must return an array of shape [{n}, D]; got shape {arr.shape}")
    arr = arr.astype(np.float64, copy=False)
    if not np.isfinite(arr).all():
        raise ValueError("encode returned NaN or infinite codes")
    return arr


class GroundTruthSampler(NamedTuple):
    """The three functions the sampling metrics need; unpack with ``*sampler``.

    Attributes
    ----------
    sample_factors : callable ``(n, rng) -> int array [n, K]``
    observe : callable ``(factors [n, K], rng) -> observations`` (anything ``encode`` accepts)
    encode : callable ``(observations) -> codes [n, D]``
    """

    sample_factors: Callable[[int, np.random.Generator], np.ndarray]
    observe: Callable[[np.ndarray, np.random.Generator], Any]
    encode: Callable[[Any], np.ndarray]

    @classmethod
    def from_dataset(
        cls, dataset: GroundTruthData, encode: Callable[[Any], np.ndarray]
    ) -> GroundTruthSampler:
        """Render observations with the dataset and encode them on every call.

        Used in: :ref:`appendix-metrics`
        """
        return cls(dataset.sample_factors, dataset.sample_observations_from_factors, encode)


def sample_codes_and_factors(
    sampler: GroundTruthSampler,
    num_points: int,
    rng: np.random.Generator,
    *,
    chunk_size: int = DEFAULT_CHUNK,
) -> tuple[np.ndarray, np.ndarray]:
    """Draw ``num_points`` factor vectors, observe and encode them (the sampling wrapper).

    Returns
    -------
    codes : numpy.ndarray of float64, shape [num_points, D]
    factors : numpy.ndarray of int64, shape [num_points, K]


    Used in: :ref:`appendix-metrics`
    """
    if num_points < 1:
        raise ValueError(f"num_points must be positive; got {num_points}")
    check_rng(rng)
    codes, factors = [], []
    for start in range(0, num_points, chunk_size):
        m = min(chunk_size, num_points - start)
        f = np.asarray(sampler.sample_factors(m, rng), dtype=np.int64)
        codes.append(check_encoded(sampler.encode(sampler.observe(f, rng)), m))
        factors.append(f)
    return np.concatenate(codes), np.concatenate(factors)


class SyntheticFactors:
    """Small synthetic ground-truth dataset whose observations are the factors themselves.

    The analogue of disentanglement_lib's ``IdentityObservationsData`` (there: 10 factors with
    values 1..10; here: class indices ``0..size-1``). It has the same interface as
    ``hvae_lib.data.DSprites`` and serves the metric tests and benchmarks: encoding the
    observations with the identity gives a perfectly disentangled code.

    Parameters
    ----------
    factor_sizes : sequence of int
        Number of values of each factor (each at least 1).


    Used in: :ref:`appendix-metrics`
    """

    def __init__(self, factor_sizes: Sequence[int] = (10,) * 10) -> None:
        sizes = tuple(int(s) for s in factor_sizes)
        if not sizes or min(sizes) < 1:
            raise ValueError(
                f"factor_sizes must be a non-empty list of positive ints; got {factor_sizes!r}"
            )
        self.factor_sizes: tuple[int, ...] = sizes

    @property
    def num_factors(self) -> int:
        return len(self.factor_sizes)

    def __len__(self) -> int:
        return math.prod(self.factor_sizes)

    def sample_factors(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """Each factor independently uniform over its values: int64 [n, K]."""
        return check_rng(rng).integers(
            0, np.array(self.factor_sizes), size=(int(n), self.num_factors)
        )

    def sample_observations_from_factors(
        self, factors: np.ndarray, rng: np.random.Generator | None = None
    ) -> np.ndarray:
        """Identity observations: the factors as float64 [n, K]."""
        f = np.asarray(factors)
        if f.ndim != 2 or f.shape[1] != self.num_factors:
            raise ValueError(f"factors must have shape [n, {self.num_factors}]; got {f.shape}")
        return f.astype(np.float64)

    def index_to_factors(self, idx: Any) -> np.ndarray:
        """Grid index (row-major, last factor fastest) to factors: int64 [n, K]."""
        idx = np.asarray(idx, dtype=np.int64).reshape(-1)
        return np.stack(np.unravel_index(idx, self.factor_sizes), axis=1).astype(np.int64)

    def factors_to_index(self, factors: np.ndarray) -> np.ndarray:
        """Factors [n, K] to grid index [n] (inverse of :meth:`index_to_factors`)."""
        f = np.asarray(factors, dtype=np.int64)
        if f.ndim != 2 or f.shape[1] != self.num_factors:
            raise ValueError(f"factors must have shape [n, {self.num_factors}]; got {f.shape}")
        return np.ravel_multi_index(tuple(f.T), self.factor_sizes).astype(np.int64)

    def all_factors(self) -> np.ndarray:
        """Every grid point, int64 [len, K] (refuses grids above ten million points)."""
        if len(self) > 10_000_000:
            raise ValueError(f"grid has {len(self)} points; too many to enumerate")
        return self.index_to_factors(np.arange(len(self)))

    def __repr__(self) -> str:
        return f"SyntheticFactors(factor_sizes={self.factor_sizes})"


class GridEncoder:
    """Encode a dataset's factor grid once and serve codes by factor index.

    Parameters
    ----------
    dataset : GroundTruthData
        Finite ground-truth dataset (e.g. ``hvae_lib.data.DSprites``).
    encode : callable ``(observations) -> codes [n, D]``
        A deterministic representation, e.g.
        ``functools.partial(hvae_lib.metrics.representation, model, layers="top")``.
    batch_size : int
        Grid points rendered and encoded per call.
    lazy : bool
        ``False``: encode the whole grid now. ``True``: encode grid points the first time
        they are requested (useful for small budgets on a large grid).
    progress : bool
        Show a ``tqdm.auto`` progress bar while encoding.
    dtype : numpy dtype
        Storage type of the code table (``float32`` halves memory; 737,280 x D values).
    rng : numpy.random.Generator or None
        Passed to ``sample_observations_from_factors``, one batch after the other. For a
        dataset with random observations the cache freezes one draw per grid point. ``None``
        (the default) for datasets whose observations are deterministic (``DSprites``,
        :class:`SyntheticFactors`), which ignore it.
    max_points : int
        Refuse grids larger than this (use :meth:`GroundTruthSampler.from_dataset`).

    Attributes
    ----------
    num_encoded : int
        Grid points encoded so far.
    encoder_calls : int
        Number of calls of ``encode``.


    Used in: :ref:`appendix-metrics`
    """

    def __init__(
        self,
        dataset: GroundTruthData,
        encode: Callable[[Any], np.ndarray],
        *,
        batch_size: int = 1024,
        lazy: bool = False,
        progress: bool = False,
        dtype: Any = np.float32,
        rng: np.random.Generator | None = None,
        max_points: int = 20_000_000,
    ) -> None:
        n = len(dataset)
        if n > max_points:
            raise ValueError(
                f"the grid has {n} points (> max_points={max_points}); cache a smaller grid or "
                "use GroundTruthSampler.from_dataset to encode on the fly"
            )
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive; got {batch_size}")
        self.dataset = dataset
        self.encode_fn = encode
        self.batch_size = int(batch_size)
        self.progress = progress
        self.dtype = np.dtype(dtype)
        self._obs_rng = None if rng is None else check_rng(rng)
        self._table: np.ndarray | None = None
        self._done = np.zeros(n, dtype=bool)
        self.encoder_calls = 0
        if not lazy:
            self.encode_all()

    def __len__(self) -> int:
        return self._done.shape[0]

    @property
    def num_encoded(self) -> int:
        return int(self._done.sum())

    @property
    def num_codes(self) -> int | None:
        """Code dimension ``D`` (None before the first encoding)."""
        return None if self._table is None else self._table.shape[1]

    def _encode_indices(self, idx: np.ndarray) -> None:
        if idx.size == 0:
            return
        batches = range(0, idx.size, self.batch_size)
        if self.progress:
            from tqdm.auto import tqdm

            batches = tqdm(batches, desc="encoding grid", unit="batch")
        for start in batches:
            part = idx[start : start + self.batch_size]
            factors = self.dataset.index_to_factors(part)
            obs = self.dataset.sample_observations_from_factors(factors, self._obs_rng)
            codes = check_encoded(self.encode_fn(obs), part.size)
            self.encoder_calls += 1
            if self._table is None:
                self._table = np.zeros((len(self), codes.shape[1]), dtype=self.dtype)
            elif codes.shape[1] != self._table.shape[1]:
                raise ValueError(
                    f"encode returned {codes.shape[1]} codes; earlier calls returned {self._table.shape[1]}"
                )
            self._table[part] = codes
            self._done[part] = True

    def encode_all(self) -> None:
        """Encode every grid point not yet encoded."""
        self._encode_indices(np.flatnonzero(~self._done))

    @property
    def codes(self) -> np.ndarray:
        """The full code table [len(dataset), D], indexed by grid index (encodes the rest)."""
        self.encode_all()
        assert self._table is not None
        return self._table

    def codes_for_indices(self, idx: Any) -> np.ndarray:
        """Codes of the given grid indices: float64 [n, D]."""
        idx = np.asarray(idx, dtype=np.int64).reshape(-1)
        if idx.size and (idx.min() < 0 or idx.max() >= len(self)):
            raise ValueError(f"grid index out of range [0, {len(self)})")
        missing = np.unique(idx[~self._done[idx]])
        self._encode_indices(missing)
        if self._table is None:  # idx empty and nothing encoded yet
            return np.zeros((0, 0))
        return self._table[idx].astype(np.float64)

    def codes_for_factors(self, factors: np.ndarray) -> np.ndarray:
        """Codes of the given factor vectors [n, K]: float64 [n, D]."""
        return self.codes_for_indices(self.dataset.factors_to_index(np.asarray(factors)))

    def sampler(self) -> GroundTruthSampler:
        """A :class:`GroundTruthSampler` whose ``observe`` maps factors to grid indices and
        whose ``encode`` is a table lookup."""

        def observe(factors: np.ndarray, rng: np.random.Generator) -> np.ndarray:
            return self.dataset.factors_to_index(np.asarray(factors))

        return GroundTruthSampler(self.dataset.sample_factors, observe, self.codes_for_indices)
