"""BetaVAE score (disentanglement_lib's ``beta_vae_sklearn`` definition)."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from ..config import check_rng
from .sampling import DEFAULT_CHUNK, check_encoded

__all__ = ["beta_vae_score", "beta_vae_features", "beta_vae_from_features"]


def beta_vae_features(codes_1: Any, codes_2: Any) -> np.ndarray:
    r"""BetaVAE feature of paired batches (numeric core).

    .. math:: f = \frac1L \sum_{l=1}^L \big| r(x^{(1)}_l) - r(x^{(2)}_l) \big|

    Parameters
    ----------
    codes_1, codes_2 : arrays of shape [P, L, D]
        Codes of ``P`` pairs of batches of size ``L``.

    Returns
    -------
    numpy.ndarray of shape [P, D]


    Used in: :ref:`appendix-metrics`
    """
    a = np.asarray(codes_1, dtype=np.float64)
    b = np.asarray(codes_2, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 3:
        raise ValueError(f"codes must both be [P, L, D]; got {a.shape} and {b.shape}")
    return np.mean(np.abs(a - b), axis=1)


def beta_vae_from_features(
    train_features: Any,
    train_labels: Any,
    eval_features: Any,
    eval_labels: Any,
    *,
    rng: np.random.Generator,
    solver: str = "lbfgs",
    max_iter: int = 1000,
) -> dict[str, float]:
    """Fit the logistic regression on BetaVAE features and score it (numeric core).

    ``LogisticRegression(solver=solver, max_iter=max_iter, random_state=s)``, otherwise
    scikit-learn defaults, on unscaled features, with ``s = rng.integers(2**31 - 1)`` (one
    draw from ``rng``, a ``numpy.random.Generator``).

    Returns
    -------
    dict with ``train_accuracy``, ``eval_accuracy``


    Used in: :ref:`appendix-metrics`
    """
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression

    check_rng(rng)
    x_tr = np.asarray(train_features, dtype=np.float64)
    y_tr = np.asarray(train_labels).reshape(-1)
    if np.unique(y_tr).size < 2:
        raise ValueError(
            "BetaVAE training labels take a single value; need K >= 2 factors and more points"
        )
    model = LogisticRegression(
        solver=solver, max_iter=max_iter, random_state=int(rng.integers(2**31 - 1))
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=ConvergenceWarning)
        model.fit(x_tr, y_tr)
    train_acc = float(np.mean(model.predict(x_tr) == y_tr))
    eval_acc = float(
        model.score(
            np.asarray(eval_features, dtype=np.float64), np.asarray(eval_labels).reshape(-1)
        )
    )
    return {"train_accuracy": train_acc, "eval_accuracy": eval_acc}


def _collect_points(
    sample_factors: Callable[[int, np.random.Generator], np.ndarray],
    observe: Callable[[np.ndarray, np.random.Generator], Any],
    encode: Callable[[Any], np.ndarray],
    rng: np.random.Generator,
    num_points: int,
    batch_size: int,
    num_factors: int,
    chunk_size: int,
) -> tuple[np.ndarray, np.ndarray]:
    feats, labels = [], []
    per_chunk = max(1, chunk_size // (2 * batch_size))
    for start in range(0, num_points, per_chunk):
        m = min(per_chunk, num_points - start)
        ks = rng.integers(0, num_factors, size=m)
        f1 = np.asarray(sample_factors(m * batch_size, rng), dtype=np.int64).reshape(
            m, batch_size, num_factors
        )
        f2 = np.asarray(sample_factors(m * batch_size, rng), dtype=np.int64).reshape(
            m, batch_size, num_factors
        )
        rows = np.arange(m)[:, None]
        cols = np.arange(batch_size)[None, :]
        f2[rows, cols, ks[:, None]] = f1[rows, cols, ks[:, None]]
        both = np.concatenate([f1, f2]).reshape(2 * m * batch_size, num_factors)
        codes = check_encoded(encode(observe(both, rng)), 2 * m * batch_size)
        codes = codes.reshape(2, m, batch_size, -1)
        feats.append(beta_vae_features(codes[0], codes[1]))
        labels.append(ks)
    return np.concatenate(feats), np.concatenate(labels)


def beta_vae_score(
    sample_factors: Callable[[int, np.random.Generator], np.ndarray],
    observe: Callable[[np.ndarray, np.random.Generator], Any],
    encode: Callable[[Any], np.ndarray],
    *,
    rng: np.random.Generator,
    batch_size: int = 64,
    num_train: int = 10_000,
    num_eval: int = 5_000,
    solver: str = "lbfgs",
    max_iter: int = 1000,
    chunk_size: int = DEFAULT_CHUNK,
) -> dict[str, float]:
    r"""BetaVAE score: accuracy of a linear classifier of the factor shared within pairs.

    One point: draw :math:`k` uniformly and two independent batches of ``batch_size`` factor
    vectors; copy factor :math:`k` of the first batch into the second; encode both;

    .. math:: f = \frac1L \sum_l \big|r(x^{(1)}_l) - r(x^{(2)}_l)\big| \in \mathbb R^D,
              \qquad \text{label} = k.

    A ``LogisticRegression`` is fitted on ``num_train`` points; ``eval_accuracy`` is its
    accuracy on ``num_eval`` fresh points. The solver and iteration limit are set explicitly
    (scikit-learn's defaults changed between versions; disentanglement_lib relied on them).

    Parameters
    ----------
    sample_factors, observe, encode : callables
        As in :func:`.factor_vae_score`; use :meth:`.GridEncoder.sampler`
        for table lookups (the study budget needs about two million codes).
    rng : numpy.random.Generator
        Draws the points (training, then evaluation), then the logistic regression's seed.
        A ``TypeError`` for anything else (an integer seed included).
    batch_size, num_train, num_eval : int
        Study budgets: 64, 10,000, 5,000.
    solver : str
        ``LogisticRegression`` solver (``"lbfgs"``, multinomial).
    max_iter : int
        Iteration limit (scikit-learn's default of 100 may stop early on unscaled features).
    chunk_size : int
        Observations per ``encode`` call.

    Returns
    -------
    dict
        ``train_accuracy``, ``eval_accuracy`` (report this).


    Used in: :ref:`appendix-metrics`
    """
    if batch_size < 1 or min(num_train, num_eval) < 1:
        raise ValueError("batch_size, num_train and num_eval must be positive")
    check_rng(rng)
    probe = np.asarray(sample_factors(1, rng))
    if probe.ndim != 2:
        raise ValueError(f"sample_factors must return [n, K]; got shape {probe.shape}")
    num_factors = probe.shape[1]
    if num_factors < 2:
        raise ValueError("the BetaVAE score needs at least two factors")
    args = (sample_factors, observe, encode, rng)
    x_tr, y_tr = _collect_points(*args, num_train, batch_size, num_factors, chunk_size)
    x_ev, y_ev = _collect_points(*args, num_eval, batch_size, num_factors, chunk_size)
    return beta_vae_from_features(x_tr, y_tr, x_ev, y_ev, rng=rng, solver=solver, max_iter=max_iter)
