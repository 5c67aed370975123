"""Discretisation and plug-in information quantities used by MIG.

All quantities are in **nats** (natural logarithm), as in disentanglement_lib's
``discrete_mutual_info`` / ``discrete_entropy`` (which call scikit-learn's
``mutual_info_score``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._validation import check_codes, check_factors

__all__ = [
    "histogram_discretize",
    "discrete_mutual_info",
    "discrete_entropy",
    "plugin_mutual_info",
]


def histogram_discretize(codes: Any, num_bins: int = 20) -> np.ndarray:
    r"""Discretise each code into ``num_bins`` equal-width bins over its observed range.

    For every column :math:`z_j` of ``codes``

    .. math:: \tilde z_j = \mathrm{digitize}\big(z_j,\ e_{0..B-1}\big) \in \{1, \dots, B\},

    where :math:`e_0 < \dots < e_B` are the ``B + 1`` equal-width edges between the column's
    minimum and maximum (``numpy.histogram_bin_edges``). The maximum falls in bin ``B``; a
    constant column falls into a single bin. One outlier stretches the range and squeezes
    the other values into few bins.

    Parameters
    ----------
    codes : array of shape [N, D]
        Continuous codes, samples first.
    num_bins : int
        Number of bins ``B`` (disentanglement_lib's study uses 20).

    Returns
    -------
    numpy.ndarray of int64, shape [N, D]
        Bin indices in ``1..B``.


    Used in: :ref:`appendix-metrics`
    """
    z = check_codes(codes)
    if int(num_bins) != num_bins or num_bins < 1:
        raise ValueError(f"num_bins must be a positive integer; got {num_bins!r}")
    out = np.empty(z.shape, dtype=np.int64)
    for j in range(z.shape[1]):
        edges = np.histogram_bin_edges(z[:, j], bins=int(num_bins))
        out[:, j] = np.digitize(z[:, j], edges[:-1])
    return out


def _labels(x: np.ndarray) -> tuple[np.ndarray, int]:
    """Map arbitrary values to consecutive labels ``0..n-1``."""
    uniq, inv = np.unique(x, return_inverse=True)
    return inv.reshape(-1), len(uniq)


def plugin_mutual_info(a: np.ndarray, b: np.ndarray) -> float:
    r"""Plug-in mutual information of two discrete sequences of equal length, in nats.

    .. math:: \hat I(a; b) = \sum_{u,v} \hat p(u, v)\,\ln\frac{\hat p(u, v)}{\hat p(u)\,\hat p(v)}

    with empirical frequencies :math:`\hat p`. Equal to scikit-learn's ``mutual_info_score``.

    Used in: :ref:`appendix-metrics`
    """
    a = np.asarray(a).reshape(-1)
    b = np.asarray(b).reshape(-1)
    if a.shape != b.shape:
        raise ValueError(f"sequences must have the same length; got {a.shape[0]} and {b.shape[0]}")
    n = a.shape[0]
    if n == 0:
        raise ValueError("sequences are empty")
    la, na = _labels(a)
    lb, nb = _labels(b)
    joint = np.bincount(la * nb + lb, minlength=na * nb).reshape(na, nb).astype(np.float64)
    pa = joint.sum(axis=1) / n
    pb = joint.sum(axis=0) / n
    nz = joint > 0
    pj = joint[nz] / n
    outer = np.outer(pa, pb)[nz]
    mi = float(np.sum(pj * (np.log(pj) - np.log(outer))))
    return max(mi, 0.0)


def discrete_mutual_info(discrete_codes: Any, factors: Any) -> np.ndarray:
    r"""Matrix of plug-in mutual informations between discrete codes and factors (nats).

    .. math:: m_{jk} = \hat I(\tilde z_j; v_k)

    Parameters
    ----------
    discrete_codes : array of shape [N, D]
        Discrete codes (e.g. the output of :func:`histogram_discretize`); any values, they
        are treated as labels.
    factors : array of shape [N, K]
        Integer factor classes.

    Returns
    -------
    numpy.ndarray of shape [D, K]


    Used in: :ref:`appendix-metrics`
    """
    z = np.asarray(discrete_codes)
    v = check_factors(factors, require_variation=False)
    if z.ndim != 2:
        raise ValueError(f"discrete_codes must be 2-D [N, D]; got shape {z.shape}")
    if z.shape[0] != v.shape[0]:
        raise ValueError(
            f"discrete_codes and factors must have the same number of samples: "
            f"{z.shape[0]} != {v.shape[0]}"
        )
    m = np.empty((z.shape[1], v.shape[1]))
    for j in range(z.shape[1]):
        for k in range(v.shape[1]):
            m[j, k] = plugin_mutual_info(z[:, j], v[:, k])
    return m


def discrete_entropy(factors: Any) -> np.ndarray:
    r"""Plug-in entropy of each factor, in nats.

    .. math:: \hat H(v_k) = -\sum_u \hat p_k(u)\,\ln \hat p_k(u) = \hat I(v_k; v_k)

    Parameters
    ----------
    factors : array of shape [N, K]

    Returns
    -------
    numpy.ndarray of shape [K]


    Used in: :ref:`appendix-metrics`
    """
    v = check_factors(factors, require_variation=False)
    h = np.empty(v.shape[1])
    for k in range(v.shape[1]):
        _, counts = np.unique(v[:, k], return_counts=True)
        p = counts / counts.sum()
        h[k] = float(-np.sum(p * np.log(p)))
    return h
