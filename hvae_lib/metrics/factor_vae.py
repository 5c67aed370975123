"""FactorVAE score (disentanglement_lib's ``factor_vae`` definition)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ..config import check_rng
from .sampling import DEFAULT_CHUNK, check_encoded

__all__ = ["factor_vae_score", "factor_vae_votes", "factor_vae_from_votes", "prune_dims"]


def prune_dims(variances: Any, threshold: float = 0.0) -> np.ndarray:
    r"""Active dimensions: :math:`A = \{ j : \sqrt{s_j^2} \ge t \}` (threshold on the std).

    Parameters
    ----------
    variances : array of shape [D]
    threshold : float

    Returns
    -------
    numpy.ndarray of bool, shape [D]


    Used in: :ref:`appendix-metrics`
    """
    v = np.asarray(variances, dtype=np.float64)
    return np.sqrt(v) >= threshold


def factor_vae_votes(
    batch_variances: Any,
    factor_index: Any,
    global_variances: Any,
    active: Any,
    num_factors: int,
) -> np.ndarray:
    r"""Vote matrix from per-batch code variances (numeric core).

    For vote :math:`i` with fixed factor :math:`k_i` and batch variances :math:`\ell^2_{ij}`,

    .. math:: d^*_i = \arg\min_{j \in A} \ell^2_{ij} / s^2_j,\qquad V_{k_i d^*_i} \mathrel{+}= 1.

    Columns of ``V`` are code indices (disentanglement_lib numbers them within the active
    subset; accuracy is the same). As in disentanglement_lib, ``0/0`` (a dead code kept by a
    zero threshold) is NaN and ``argmin`` returns the first NaN, so that code gets the vote.

    Parameters
    ----------
    batch_variances : array of shape [V, D]
    factor_index : int array of shape [V]
    global_variances : array of shape [D]
    active : bool array of shape [D], at least one True
    num_factors : int

    Returns
    -------
    numpy.ndarray of int64, shape [K, D]


    Used in: :ref:`appendix-metrics`
    """
    lv = np.asarray(batch_variances, dtype=np.float64)
    ks = np.asarray(factor_index, dtype=np.int64).reshape(-1)
    gv = np.asarray(global_variances, dtype=np.float64)
    act = np.flatnonzero(np.asarray(active, dtype=bool))
    if act.size == 0:
        raise ValueError("no active dimension")
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = lv[:, act] / gv[act]
    best = act[np.argmin(ratio, axis=1)]
    votes = np.zeros((num_factors, gv.shape[0]), dtype=np.int64)
    np.add.at(votes, (ks, best), 1)
    return votes


def factor_vae_from_votes(train_votes: Any, eval_votes: Any) -> dict[str, float]:
    r"""Majority-vote classifier accuracy (numeric core).

    :math:`c(d) = \arg\max_k V^{\text{train}}_{kd}` (ties to the lowest factor index);
    accuracy :math:`= \sum_d V_{c(d) d} / \sum V` on the training and the evaluation votes.

    Parameters
    ----------
    train_votes, eval_votes : int arrays of shape [K, D]

    Returns
    -------
    dict with ``train_accuracy``, ``eval_accuracy``


    Used in: :ref:`appendix-metrics`
    """
    tv = np.asarray(train_votes)
    ev = np.asarray(eval_votes)
    if tv.shape != ev.shape or tv.ndim != 2:
        raise ValueError(f"vote matrices must both be [K, D]; got {tv.shape} and {ev.shape}")
    cls = np.argmax(tv, axis=0)
    cols = np.arange(tv.shape[1])
    train_acc = float(tv[cls, cols].sum() / max(tv.sum(), 1))
    eval_acc = float(ev[cls, cols].sum() / max(ev.sum(), 1))
    return {"train_accuracy": train_acc, "eval_accuracy": eval_acc}


def _collect_votes(
    sample_factors: Callable[[int, np.random.Generator], np.ndarray],
    observe: Callable[[np.ndarray, np.random.Generator], Any],
    encode: Callable[[Any], np.ndarray],
    rng: np.random.Generator,
    num_votes: int,
    batch_size: int,
    global_variances: np.ndarray,
    active: np.ndarray,
    num_factors: int,
    chunk_size: int,
) -> np.ndarray:
    votes = np.zeros((num_factors, global_variances.shape[0]), dtype=np.int64)
    per_chunk = max(1, chunk_size // batch_size)
    for start in range(0, num_votes, per_chunk):
        m = min(per_chunk, num_votes - start)
        ks = rng.integers(0, num_factors, size=m)
        f = np.asarray(sample_factors(m * batch_size, rng), dtype=np.int64)
        f = f.reshape(m, batch_size, num_factors)
        rows = np.arange(m)
        f[rows[:, None], np.arange(batch_size)[None, :], ks[:, None]] = f[rows, 0, ks][:, None]
        codes = check_encoded(
            encode(observe(f.reshape(m * batch_size, num_factors), rng)), m * batch_size
        )
        lv = codes.reshape(m, batch_size, -1).var(axis=1, ddof=1)
        votes += factor_vae_votes(lv, ks, global_variances, active, num_factors)
    return votes


def factor_vae_score(
    sample_factors: Callable[[int, np.random.Generator], np.ndarray],
    observe: Callable[[np.ndarray, np.random.Generator], Any],
    encode: Callable[[Any], np.ndarray],
    *,
    rng: np.random.Generator,
    batch_size: int = 64,
    num_train: int = 10_000,
    num_eval: int = 5_000,
    num_variance_estimate: int = 10_000,
    prune_threshold: float = 0.05,
    chunk_size: int = DEFAULT_CHUNK,
) -> dict[str, float]:
    r"""FactorVAE score: accuracy of a majority-vote classifier of the fixed factor.

    1. Global variances :math:`s_j^2` (``ddof=1``) of ``num_variance_estimate`` codes; active
       dimensions :math:`A = \{j : s_j \ge t\}` with ``t = prune_threshold`` (study: 0.05).
    2. One vote: draw :math:`k` uniformly, ``batch_size`` factor vectors sharing the value of
       factor :math:`k`; encode; :math:`\ell_j^2` = batch variance;
       :math:`d^* = \arg\min_{j\in A} \ell_j^2 / s_j^2`; ``votes[k, d*] += 1``.
    3. Classifier :math:`c(d) = \arg\max_k V^{\text{train}}_{kd}`; accuracy
       :math:`\sum_d V_{c(d)d} / \sum V` on ``num_train`` and on ``num_eval`` fresh votes.

    If no dimension is active all scores are 0. With ``prune_threshold=0`` a constant code
    gives ``0/0`` and receives every vote (disentanglement_lib's behaviour), so an all-zero
    representation scores chance level, about :math:`1/K`.

    Votes are drawn in chunks of ``chunk_size // batch_size`` (factor indices first, then the
    batches' factors); disentanglement_lib draws vote by vote from ``RandomState(0)``. The
    distribution is the same, the samples are not.

    Parameters
    ----------
    sample_factors : callable ``(n, rng) -> int array [n, K]``
    observe : callable ``(factors, rng) -> observations``
    encode : callable ``(observations) -> codes [n, D]``
        Use :meth:`.GridEncoder.sampler` for table lookups instead of encoder calls.
    rng : numpy.random.Generator
        Draws every factor vector and the observations' noise; a ``TypeError`` for anything
        else (an integer seed included).
    batch_size, num_train, num_eval, num_variance_estimate : int
        Study budgets: 64, 10,000, 5,000, 10,000 (about a million codes).
    prune_threshold : float
        Minimum global standard deviation of an active code (study: 0.05).
    chunk_size : int
        Observations per ``encode`` call.

    Returns
    -------
    dict
        ``train_accuracy``, ``eval_accuracy`` (report this), ``num_active_dims`` (the number
        of active codes; disentanglement_lib stores D here, see the appendix).


    Used in: :ref:`appendix-metrics`
    """
    if batch_size < 2:
        raise ValueError("batch_size must be at least 2 (a variance needs two samples)")
    if min(num_train, num_eval) < 1 or num_variance_estimate < 2:
        raise ValueError("num_train and num_eval must be positive and num_variance_estimate >= 2")
    check_rng(rng)
    f0 = np.asarray(sample_factors(num_variance_estimate, rng), dtype=np.int64)
    if f0.ndim != 2:
        raise ValueError(f"sample_factors must return [n, K]; got shape {f0.shape}")
    num_factors = f0.shape[1]
    codes0 = check_encoded(encode(observe(f0, rng)), num_variance_estimate)
    global_var = codes0.var(axis=0, ddof=1)
    active = prune_dims(global_var, prune_threshold)
    if not active.any():
        return {"train_accuracy": 0.0, "eval_accuracy": 0.0, "num_active_dims": 0}
    args = (sample_factors, observe, encode, rng)
    rest = (batch_size, global_var, active, num_factors, chunk_size)
    train_votes = _collect_votes(*args, num_train, *rest)
    eval_votes = _collect_votes(*args, num_eval, *rest)
    out: dict[str, float] = dict(factor_vae_from_votes(train_votes, eval_votes))
    out["num_active_dims"] = int(active.sum())
    return out
