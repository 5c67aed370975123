"""Input checks shared by the disentanglement metrics.

Every metric takes **sample-major** arrays: ``codes`` of shape ``[N, D]`` (float) and
``factors`` of shape ``[N, K]`` (integer class indices). These helpers turn bad input into a
``ValueError`` that says what was wrong, before any classifier or estimator sees it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["check_codes", "check_factors", "check_pair", "check_importance"]


def check_codes(codes: Any, name: str = "codes", *, min_dims: int = 1) -> np.ndarray:
    """Validate a code matrix and return it as ``float64`` of shape ``[N, D]``.

    Raises ``ValueError`` if the array is not 2-D, is empty, is not numeric, contains NaN or
    infinity, or has fewer than ``min_dims`` columns.
    """
    arr = np.asarray(codes)
    if arr.ndim != 2:
        raise ValueError(
            f"{name} must be a 2-D array of shape [N, D] (samples first); got shape {arr.shape}"
        )
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"{name} is empty (shape {arr.shape})")
    if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_):
        raise ValueError(f"{name} must be numeric; got dtype {arr.dtype}")
    arr = arr.astype(np.float64, copy=False)
    finite = np.isfinite(arr)
    if not finite.all():
        row, col = np.argwhere(~finite)[0]
        num_bad = int((~finite).sum())
        raise ValueError(
            f"{name} contains {num_bad} NaN or infinite value(s), first at row {row}, column {col}"
        )
    if arr.shape[1] < min_dims:
        raise ValueError(
            f"{name} needs at least {min_dims} code dimensions; got D = {arr.shape[1]}"
        )
    return arr


def check_factors(
    factors: Any,
    name: str = "factors",
    *,
    require_variation: bool = True,
    min_factors: int = 1,
) -> np.ndarray:
    """Validate a factor matrix and return it as ``int64`` of shape ``[N, K]``.

    Factors are class indices. Floats are accepted only if every value is integral. With
    ``require_variation`` every factor must take at least two distinct values (a constant
    factor has zero entropy, which makes MIG divide by zero, SAP's correlation undefined and
    the classifiers of DCI and SAP ill-posed).
    """
    arr = np.asarray(factors)
    if arr.ndim != 2:
        raise ValueError(
            f"{name} must be a 2-D array of shape [N, K] (samples first); got shape {arr.shape}"
        )
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"{name} is empty (shape {arr.shape})")
    if arr.dtype == np.bool_:
        arr = arr.astype(np.int64)
    elif np.issubdtype(arr.dtype, np.integer):
        arr = arr.astype(np.int64, copy=False)
    elif np.issubdtype(arr.dtype, np.floating):
        if not np.isfinite(arr).all():
            raise ValueError(f"{name} contains NaN or infinite values")
        if not np.array_equal(arr, np.round(arr)):
            raise ValueError(f"{name} must hold integer class indices; got non-integral floats")
        arr = arr.astype(np.int64)
    else:
        raise ValueError(f"{name} must hold integer class indices; got dtype {arr.dtype}")
    if arr.shape[1] < min_factors:
        raise ValueError(f"{name} needs at least {min_factors} factors; got K = {arr.shape[1]}")
    if require_variation:
        const = [k for k in range(arr.shape[1]) if np.all(arr[:, k] == arr[0, k])]
        if const:
            raise ValueError(
                f"{name}: factor(s) {const} take a single value in this sample; "
                "a factor needs at least two values (drop constant factors, e.g. dSprites colour)"
            )
    return arr


def check_pair(
    codes: Any,
    factors: Any,
    *,
    suffix: str = "",
    min_dims: int = 1,
    min_factors: int = 1,
    require_variation: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Validate ``codes [N, D]`` and ``factors [N, K]`` together (same ``N``)."""
    c = check_codes(codes, f"codes{suffix}", min_dims=min_dims)
    f = check_factors(
        factors, f"factors{suffix}", require_variation=require_variation, min_factors=min_factors
    )
    if c.shape[0] != f.shape[0]:
        raise ValueError(
            f"codes{suffix} and factors{suffix} must have the same number of samples: "
            f"{c.shape[0]} != {f.shape[0]} (arrays are sample-major: codes [N, D], factors [N, K])"
        )
    if c.shape[0] < 2:
        raise ValueError(f"need at least 2 samples; got N = {c.shape[0]}")
    return c, f


def check_importance(importance: Any) -> np.ndarray:
    """Validate a non-negative importance matrix ``R`` of shape ``[D, K]`` with ``D, K >= 2``."""
    r = np.asarray(importance, dtype=np.float64)
    if r.ndim != 2:
        raise ValueError(f"importance matrix must be 2-D [D, K]; got shape {r.shape}")
    if r.shape[0] < 2 or r.shape[1] < 2:
        raise ValueError(
            "DCI needs D >= 2 codes and K >= 2 factors (entropies are taken in base D and base K); "
            f"got importance matrix of shape {r.shape}"
        )
    if not np.isfinite(r).all():
        raise ValueError("importance matrix contains NaN or infinite values")
    if (r < 0).any():
        raise ValueError("importance matrix must be non-negative (take np.abs first)")
    return r
