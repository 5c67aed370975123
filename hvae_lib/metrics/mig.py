"""Mutual Information Gap (MIG), disentanglement_lib's ``discrete_mig`` definition."""

from __future__ import annotations

from typing import Any

import numpy as np

from ._validation import check_pair
from .discrete import discrete_entropy, discrete_mutual_info, histogram_discretize

__all__ = ["mig", "mig_from_mutual_info"]


def mig_from_mutual_info(mutual_info: Any, entropy: Any) -> float:
    r"""MIG from a mutual-information matrix and the factor entropies (numeric core).

    .. math::
        \mathrm{MIG} = \frac1K \sum_{k=1}^K
        \frac{m_{(1)k} - m_{(2)k}}{\hat H(v_k)},

    where :math:`m_{(1)k} \ge m_{(2)k}` are the largest and second-largest entries of column
    :math:`k` of ``mutual_info``.

    Parameters
    ----------
    mutual_info : array of shape [D, K], D >= 2
        Mutual information between each code and each factor (nats).
    entropy : array of shape [K]
        Entropy of each factor (nats), all positive.

    Returns
    -------
    float


    Used in: :ref:`appendix-metrics`
    """
    m = np.asarray(mutual_info, dtype=np.float64)
    h = np.asarray(entropy, dtype=np.float64).reshape(-1)
    if m.ndim != 2 or m.shape[0] < 2:
        raise ValueError(f"MIG needs a [D, K] mutual-information matrix with D >= 2; got {m.shape}")
    if h.shape[0] != m.shape[1]:
        raise ValueError(
            f"entropy has {h.shape[0]} entries but mutual_info has {m.shape[1]} factors"
        )
    if not (h > 0).all():
        raise ValueError("every factor entropy must be positive (constant factors are not allowed)")
    top2 = -np.sort(-m, axis=0)[:2]
    return float(np.mean((top2[0] - top2[1]) / h))


def mig(codes: Any, factors: Any, *, num_bins: int | None = 20) -> float:
    r"""Mutual Information Gap with histogram discretisation (``discrete_mig``).

    Each code is discretised into ``num_bins`` equal-width bins over its observed range
    (:func:`~hvae_lib.metrics.discrete.histogram_discretize`); then, with plug-in estimates in nats,

    .. math::
        \mathrm{MIG} = \frac1K \sum_{k=1}^K
        \frac{\hat I(\tilde z_{j^{(1)}_k}; v_k) - \hat I(\tilde z_{j^{(2)}_k}; v_k)}{\hat H(v_k)},

    where :math:`j^{(1)}_k, j^{(2)}_k` are the codes with the largest and second-largest
    mutual information with factor :math:`v_k`. The normaliser is the **empirical** entropy of
    the sampled factor, not :math:`\ln |V_k|`. With 20 bins a factor with more than 20 values
    cannot reach :math:`\hat I = \hat H`, so MIG < 1 even for a perfect code.

    Parameters
    ----------
    codes : array of shape [N, D], D >= 2
        Representation (posterior means), samples first.
    factors : array of shape [N, K]
        Integer factor classes; every factor must vary.
    num_bins : int or None
        Number of bins per code (study setting: 20). ``None`` uses the identity discretiser
        (each distinct code value is its own bin), as in disentanglement_lib's unit tests.

    Returns
    -------
    float
        MIG in [0, 1].


    Used in: :ref:`appendix-metrics`
    """
    z, v = check_pair(codes, factors, min_dims=2)
    if num_bins is None:
        discrete = z
    else:
        discrete = histogram_discretize(z, num_bins)
    m = discrete_mutual_info(discrete, v)
    h = discrete_entropy(v)
    return mig_from_mutual_info(m, h)
