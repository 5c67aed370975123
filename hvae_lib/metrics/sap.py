"""Separated Attribute Predictability (SAP), disentanglement_lib's ``sap_score`` definition."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from ..config import check_rng
from ._validation import check_codes, check_factors, check_pair

__all__ = ["sap", "sap_score_matrix", "sap_from_score_matrix"]

#: Codes with a training variance at or below this value score 0 (continuous variant).
SAP_MIN_VARIANCE = 1e-12


def sap_from_score_matrix(scores: Any) -> float:
    r"""Mean gap between the two best codes of each factor (numeric core).

    .. math:: \mathrm{SAP} = \frac1K \sum_k \big(S_{(1)k} - S_{(2)k}\big)

    Parameters
    ----------
    scores : array of shape [D, K], D >= 2

    Returns
    -------
    float


    Used in: :ref:`appendix-metrics`
    """
    s = np.asarray(scores, dtype=np.float64)
    if s.ndim != 2 or s.shape[0] < 2:
        raise ValueError(f"SAP needs a [D, K] score matrix with D >= 2; got shape {s.shape}")
    top2 = -np.sort(-s, axis=0)[:2]
    return float(np.mean(top2[0] - top2[1]))


def sap_score_matrix(
    codes_train: Any,
    factors_train: Any,
    codes_test: Any = None,
    factors_test: Any = None,
    *,
    continuous: bool = False,
    rng: np.random.Generator | None = None,
) -> np.ndarray:
    r"""Predictability of each factor from each single code.

    * ``continuous=False`` (study setting): :math:`S_{jk}` is the **test** accuracy of
      ``LinearSVC(C=0.01, class_weight="balanced")`` trained on the single code
      :math:`z_j` (shape [N, 1]) to predict the class :math:`v_k`.
    * ``continuous=True``: on the training set only,

      .. math:: S_{jk} = \frac{\mathrm{Cov}(z_j, v_k)^2}{\mathrm{Var}(z_j)\,\mathrm{Var}(v_k)}
                \quad\text{if } \mathrm{Var}(z_j) > 10^{-12},\ \text{else } 0

      (squared Pearson correlation, ``ddof=1``); the test arrays are not used.

    Parameters
    ----------
    codes_train, codes_test : arrays of shape [N_train, D], [N_test, D]
    factors_train, factors_test : integer arrays of shape [N_train, K], [N_test, K]
    continuous : bool
    rng : numpy.random.Generator
        Required by the discrete variant (a ``TypeError`` otherwise): one draw
        ``rng.integers(2**31 - 1)`` seeds liblinear's coordinate descent of each of the
        ``D × K`` SVMs, in the order ``(j, k)``. Unused by the continuous variant.

    Returns
    -------
    numpy.ndarray of shape [D, K]


    Used in: :ref:`appendix-metrics`
    """
    z, v = check_pair(codes_train, factors_train, suffix="_train", min_dims=2)
    num_codes, num_factors = z.shape[1], v.shape[1]
    s = np.zeros((num_codes, num_factors))
    if continuous:
        zc = z - z.mean(axis=0)
        vc = v - v.mean(axis=0)
        n = z.shape[0]
        cov = zc.T @ vc / (n - 1)  # [D, K]
        var_z = np.sum(zc**2, axis=0) / (n - 1)
        var_v = np.sum(vc**2, axis=0) / (n - 1)
        live = var_z > SAP_MIN_VARIANCE
        s[live] = cov[live] ** 2 / (var_z[live, None] * var_v[None, :])
        return s

    if codes_test is None or factors_test is None:
        raise ValueError("the discrete SAP variant needs codes_test and factors_test")
    check_rng(rng, "rng (needed by the discrete SAP variant)")
    zt = check_codes(codes_test, "codes_test")
    vt = check_factors(factors_test, "factors_test", require_variation=False)
    if zt.shape[0] != vt.shape[0]:
        raise ValueError(
            f"codes_test and factors_test must have the same number of samples: "
            f"{zt.shape[0]} != {vt.shape[0]}"
        )
    if zt.shape[1] != num_codes or vt.shape[1] != num_factors:
        raise ValueError(
            f"train and test shapes disagree: codes D {num_codes} vs {zt.shape[1]}, "
            f"factors K {num_factors} vs {vt.shape[1]}"
        )
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.svm import LinearSVC

    for j in range(num_codes):
        for k in range(num_factors):
            clf = LinearSVC(
                C=0.01, class_weight="balanced", random_state=int(rng.integers(2**31 - 1))
            )
            with warnings.catch_warnings():
                # C = 0.01 on unscaled codes often hits liblinear's iteration limit (as in
                # disentanglement_lib); the score is used as is.
                warnings.simplefilter("ignore", category=ConvergenceWarning)
                clf.fit(z[:, j : j + 1], v[:, k])
            s[j, k] = float(np.mean(clf.predict(zt[:, j : j + 1]) == vt[:, k]))
    return s


def sap(
    codes_train: Any,
    factors_train: Any,
    codes_test: Any = None,
    factors_test: Any = None,
    *,
    continuous: bool = False,
    rng: np.random.Generator | None = None,
) -> float:
    r"""SAP score: the mean gap in predictability between the two best single codes.

    .. math:: \mathrm{SAP} = \frac1K \sum_k \big(S_{(1)k} - S_{(2)k}\big),

    with :math:`S` from :func:`sap_score_matrix`. With discrete factors (the study setting,
    ``continuous=False``), a one-dimensional linear classifier cannot separate many ordered
    classes, so SAP is low even for a perfect code (about 0.19 for an identity code with
    10-valued factors): compare models relatively.

    Parameters
    ----------
    codes_train : array of shape [N_train, D], D >= 2
    factors_train : integer array of shape [N_train, K]
    codes_test, factors_test : arrays of shape [N_test, D], [N_test, K]
        Required for the discrete variant, ignored by the continuous one.
    continuous : bool
        Squared correlation on the training set instead of linear-SVM test accuracy.
    rng : numpy.random.Generator
        Seeds the linear SVMs, one draw each (required by the discrete variant, unused by
        the continuous one).

    Returns
    -------
    float


    Used in: :ref:`appendix-metrics`
    """
    s = sap_score_matrix(
        codes_train,
        factors_train,
        codes_test,
        factors_test,
        continuous=continuous,
        rng=rng,
    )
    return sap_from_score_matrix(s)
