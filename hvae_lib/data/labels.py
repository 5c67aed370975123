"""Labels and splits of datasets: coarse labels from factor indices, a random train/test split.

Used in: :ref:`ch-rate-distortion`, :ref:`ch-transitive`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..config import check_rng

__all__ = ["coarse_labels", "train_test_split"]


def train_test_split(
    n: int, test_fraction: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """A random split of ``range(n)`` into sorted train and test index arrays.

    One permutation drawn from ``rng`` (a ``numpy.random.Generator``; an integer seed is a
    ``TypeError``); its first ``round(n * test_fraction)`` entries (at least one) are the test set.

    Used in: :ref:`ch-rate-distortion`
    """
    check_rng(rng)
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    perm = rng.permutation(n)
    num_test = max(1, int(round(n * test_fraction)))
    return np.sort(perm[num_test:]), np.sort(perm[:num_test])


def coarse_labels(
    factors: np.ndarray,
    factor_names: Sequence[str],
    factor_sizes: Sequence[int],
    chosen: Sequence[str],
    bins: int,
) -> tuple[np.ndarray, int]:
    """A discrete label from coarsened factor indices, e.g. a 4 × 4 grid of positions.

    Each chosen factor index :math:`f\\in\\{0,\\dots,S-1\\}` becomes the bin
    :math:`\\lfloor f\\cdot b/S\\rfloor\\in\\{0,\\dots,b-1\\}` (``b = min(bins, S)``) and the bins are
    combined in mixed radix.

    Parameters
    ----------
    factors : int ``[N, K]`` factor indices (``DSprites.all_factors()``).
    factor_names, factor_sizes : names and sizes of the ``K`` factors.
    chosen : names of the factors that make the label.
    bins : bins per chosen factor.

    Returns
    -------
    ``(labels int64 [N], number of label values)``.


    Used in: :ref:`ch-transitive`
    """
    f = np.asarray(factors)
    names = list(factor_names)
    if f.ndim != 2 or f.shape[1] != len(names):
        raise ValueError(f"factors must be [N, {len(names)}], got {f.shape}")
    if int(bins) < 1 or not chosen:
        raise ValueError("need at least one chosen factor and bins >= 1")
    labels = np.zeros(len(f), dtype=np.int64)
    num_values = 1
    for name in chosen:
        if name not in names:
            raise ValueError(f"unknown factor {name!r}; valid: {', '.join(names)}")
        k = names.index(name)
        size = int(factor_sizes[k])
        b = min(int(bins), size)
        labels = labels * b + (f[:, k].astype(np.int64) * b) // size
        num_values *= b
    return labels, num_values
