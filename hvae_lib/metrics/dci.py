"""DCI: disentanglement, completeness and informativeness (disentanglement_lib definition).

The importance matrix comes from one gradient-boosted tree classifier per factor. The
default, ``importance="gbt"``, is scikit-learn's ``GradientBoostingClassifier()`` with default
hyper-parameters, as in disentanglement_lib; it costs minutes per model at the study budget.
``importance="hist_gbt"`` is the documented fast option: ``HistGradientBoostingClassifier``
with the same number of stages, learning rate and depth, and split-gain importances (see
:func:`importance_matrix`).
"""

from __future__ import annotations

import warnings
from typing import Any, Literal, NamedTuple

import numpy as np

from ..config import check_rng
from ._validation import check_codes, check_factors, check_importance, check_pair

__all__ = ["DCIScores", "dci", "dci_from_importance", "importance_matrix", "IMPORTANCE_METHODS"]

ImportanceMethod = Literal["gbt", "hist_gbt"]
IMPORTANCE_METHODS: tuple[str, ...] = ("gbt", "hist_gbt")

#: Additive constant inside the entropies, as in disentanglement_lib (``R + 1e-11``).
DCI_EPS = 1e-11


class DCIScores(NamedTuple):
    """Disentanglement and completeness computed from an importance matrix."""

    disentanglement: float
    completeness: float


def _entropy_rows(p: np.ndarray, base: int) -> np.ndarray:
    """Entropy (in the given base) of each row of a row-stochastic matrix."""
    with np.errstate(divide="ignore", invalid="ignore"):
        logs = np.where(p > 0, np.log(p), 0.0)
    return -np.sum(p * logs, axis=1) / np.log(base)


def dci_from_importance(importance: Any) -> DCIScores:
    r"""Disentanglement and completeness from an importance matrix (numeric core).

    With :math:`R \in \mathbb R_{\ge 0}^{D\times K}` and :math:`\epsilon = 10^{-11}`:

    .. math::
        P_{jk} = \frac{R_{jk}+\epsilon}{\sum_{k'} (R_{jk'}+\epsilon)},\quad
        D_j = 1 - H_K(P_{j\cdot}),\quad
        \rho_j = \frac{\sum_k R_{jk}}{\sum_{j,k} R_{jk}},\quad
        \mathrm D = \sum_j \rho_j D_j,

    .. math::
        \tilde P_{jk} = \frac{R_{jk}+\epsilon}{\sum_{j'} (R_{j'k}+\epsilon)},\quad
        C_k = 1 - H_D(\tilde P_{\cdot k}),\quad
        \mathrm C = \sum_k \frac{\sum_j R_{jk}}{\sum_{j,k} R_{jk}}\, C_k,

    where :math:`H_b` is the entropy in base :math:`b`. If :math:`\sum R = 0` the weights are
    uniform (disentanglement_lib computes them from an all-ones matrix) and D = C = 0.

    Closed forms: a diagonal ``R`` gives (1, 1); ``vstack(diag, diag)`` (every factor in two
    codes) gives completeness :math:`1 - \ln 2 / \ln D`; ``hstack(diag, diag)`` gives
    disentanglement :math:`1 - \ln 2/\ln K`.

    Parameters
    ----------
    importance : array of shape [D, K], non-negative, D >= 2, K >= 2

    Returns
    -------
    DCIScores
        ``(disentanglement, completeness)``, a named tuple.


    Used in: :ref:`appendix-metrics`
    """
    r = check_importance(importance)
    num_codes, num_factors = r.shape
    weights_src = r if r.sum() > 0 else np.ones_like(r)

    p_code = (r + DCI_EPS) / (r + DCI_EPS).sum(axis=1, keepdims=True)  # [D, K]
    per_code = 1.0 - _entropy_rows(p_code, num_factors)
    rho = weights_src.sum(axis=1) / weights_src.sum()
    disentanglement = float(np.sum(rho * per_code))

    p_factor = (r.T + DCI_EPS) / (r.T + DCI_EPS).sum(axis=1, keepdims=True)  # [K, D]
    per_factor = 1.0 - _entropy_rows(p_factor, num_codes)
    factor_weights = weights_src.sum(axis=0) / weights_src.sum()
    completeness = float(np.sum(factor_weights * per_factor))
    return DCIScores(disentanglement, completeness)


def _hist_gbt_importances(model: Any, num_features: int) -> np.ndarray:
    """Total split gain per feature over all trees of a fitted HistGradientBoostingClassifier.

    scikit-learn exposes no ``feature_importances_`` for histogram GBTs; the fitted trees are
    read from the (private) ``_predictors`` attribute, whose node records carry
    ``feature_idx``, ``gain`` and ``is_leaf``. The sum is normalised to 1 like
    ``GradientBoostingClassifier.feature_importances_`` (all zeros if no split was made).
    """
    imp = np.zeros(num_features)
    try:
        for stage in model._predictors:
            for tree in stage:
                nodes = tree.nodes
                split = nodes["is_leaf"] == 0
                np.add.at(imp, nodes["feature_idx"][split], nodes["gain"][split])
    except (AttributeError, KeyError, ValueError) as err:  # pragma: no cover - version guard
        raise RuntimeError(
            "cannot read split gains from HistGradientBoostingClassifier in this scikit-learn "
            "version; use importance='gbt'"
        ) from err
    total = imp.sum()
    return imp / total if total > 0 else imp


def _make_classifier(method: str, seed: int, num_stages: int = 100) -> Any:
    if method == "gbt":
        from sklearn.ensemble import GradientBoostingClassifier

        # n_estimators=100 is scikit-learn's default (disentanglement_lib's setting)
        return GradientBoostingClassifier(n_estimators=int(num_stages), random_state=seed)
    if method == "hist_gbt":
        from sklearn.ensemble import HistGradientBoostingClassifier

        # Same stages, learning rate and depth as GradientBoostingClassifier(); leaves of one
        # sample allowed (its default); no early stopping, so the result is deterministic.
        return HistGradientBoostingClassifier(
            max_iter=int(num_stages),
            learning_rate=0.1,
            max_depth=3,
            max_leaf_nodes=None,
            min_samples_leaf=1,
            l2_regularization=0.0,
            early_stopping=False,
            random_state=seed,
        )
    raise ValueError(f"unknown importance method {method!r}; choose one of {IMPORTANCE_METHODS}")


def _fit_one_factor(
    method: str,
    seed: int,
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_test: np.ndarray,
    y_test: np.ndarray,
    num_stages: int = 100,
) -> tuple[np.ndarray, float, float]:
    from threadpoolctl import threadpool_limits

    model = _make_classifier(method, seed, num_stages)
    # One OpenMP thread per histogram GBT: on a shared 2-core machine two OpenMP threads
    # were measured 20x slower than one (busy-waiting under contention). Parallelise over
    # factors with ``n_jobs`` instead. (The OpenMP thread count is per calling thread.)
    with threadpool_limits(limits=1, user_api="openmp"), warnings.catch_warnings():
        warnings.simplefilter("ignore", category=UserWarning)
        model.fit(x_train, y_train)
        acc_train = float(np.mean(model.predict(x_train) == y_train))
        acc_test = float(np.mean(model.predict(x_test) == y_test))
    if method == "gbt":
        imp = np.abs(np.asarray(model.feature_importances_, dtype=np.float64))
    else:
        imp = _hist_gbt_importances(model, x_train.shape[1])
    return imp, acc_train, acc_test


def importance_matrix(
    codes_train: Any,
    factors_train: Any,
    codes_test: Any,
    factors_test: Any,
    *,
    rng: np.random.Generator,
    importance: ImportanceMethod = "gbt",
    n_jobs: int = 1,
    num_stages: int = 100,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r"""Fit one gradient-boosted classifier per factor; return importances and accuracies.

    For each factor :math:`k` a classifier predicts :math:`v_k` from the raw codes;
    :math:`R_{\cdot k}` is its normalised feature importance (sums to 1 unless no tree split).

    * ``"gbt"`` (default, as disentanglement_lib): ``GradientBoostingClassifier()`` with default
      hyper-parameters (100 stages, learning rate 0.1, depth 3); importance = mean impurity
      decrease (``feature_importances_``).
    * ``"hist_gbt"`` (fast): ``HistGradientBoostingClassifier`` with 100 iterations, learning
      rate 0.1, depth 3, ``min_samples_leaf=1``, no early stopping; codes binned into at most
      255 quantile bins; importance = total split gain (loss reduction) per code, normalised;
      one OpenMP thread per classifier. Ties between exactly equal codes go to the first
      copy (no random feature permutation), so duplicated codes keep completeness near 1
      where ``"gbt"`` gives about 0.77 (see the appendix).

    Parameters
    ----------
    codes_train, codes_test : arrays of shape [N_train, D], [N_test, D]
    factors_train, factors_test : integer arrays of shape [N_train, K], [N_test, K]
    rng : numpy.random.Generator
        Seeds the classifiers: one draw ``rng.integers(2**31 - 1)`` per factor, in factor
        order. disentanglement_lib passes no seed, so its results vary slightly between runs
        (a documented deviation).
    importance : {"gbt", "hist_gbt"}
    n_jobs : int
        Number of factors fitted in parallel (threads).
    num_stages : int
        Boosting stages of each classifier (default 100, the setting above; fewer only to
        cut the cost of a smoke run, whose numbers mean nothing).

    Returns
    -------
    importance : numpy.ndarray, shape [D, K]
    accuracy_train, accuracy_test : numpy.ndarray, shape [K]


    Used in: :ref:`appendix-metrics`
    """
    check_rng(rng)
    x_tr, y_tr = check_pair(codes_train, factors_train, suffix="_train", min_dims=2, min_factors=2)
    x_te = check_codes(codes_test, "codes_test", min_dims=2)
    y_te = check_factors(factors_test, "factors_test", require_variation=False, min_factors=2)
    if x_te.shape[0] != y_te.shape[0]:
        raise ValueError(
            f"codes_test and factors_test must have the same number of samples: "
            f"{x_te.shape[0]} != {y_te.shape[0]}"
        )
    if x_te.shape[1] != x_tr.shape[1]:
        raise ValueError(
            f"codes_train has D = {x_tr.shape[1]} but codes_test has D = {x_te.shape[1]}"
        )
    if y_te.shape[1] != y_tr.shape[1]:
        raise ValueError(
            f"factors_train has K = {y_tr.shape[1]} but factors_test has K = {y_te.shape[1]}"
        )
    if importance not in IMPORTANCE_METHODS:
        raise ValueError(
            f"unknown importance method {importance!r}; choose one of {IMPORTANCE_METHODS}"
        )
    if isinstance(num_stages, bool) or int(num_stages) != num_stages or int(num_stages) < 1:
        raise ValueError(f"num_stages must be a whole number >= 1, got {num_stages!r}")
    num_factors = y_tr.shape[1]
    seeds = [int(s) for s in rng.integers(0, 2**31 - 1, size=num_factors)]
    jobs = [
        (importance, seeds[k], x_tr, y_tr[:, k], x_te, y_te[:, k], int(num_stages))
        for k in range(num_factors)
    ]
    if n_jobs == 1:
        results = [_fit_one_factor(*job) for job in jobs]
    else:
        from joblib import Parallel, delayed

        results = Parallel(n_jobs=n_jobs, prefer="threads")(
            delayed(_fit_one_factor)(*job) for job in jobs
        )
    r = np.stack([res[0] for res in results], axis=1)
    acc_train = np.array([res[1] for res in results])
    acc_test = np.array([res[2] for res in results])
    return r, acc_train, acc_test


def dci(
    codes_train: Any,
    factors_train: Any,
    codes_test: Any,
    factors_test: Any,
    *,
    rng: np.random.Generator,
    importance: ImportanceMethod = "gbt",
    n_jobs: int = 1,
    num_stages: int = 100,
) -> dict[str, float]:
    r"""DCI scores of a representation (disentanglement_lib's ``dci`` definition).

    Builds the importance matrix :math:`R` with :func:`importance_matrix` and returns
    :func:`dci_from_importance` plus the informativeness, which in disentanglement_lib is the
    mean classification **accuracy** over factors (not Eastwood & Williams' prediction error):

    .. math:: I_{\text{train}} = \frac1K\sum_k \mathrm{acc}_k(\text{train}),\qquad
              I_{\text{test}} = \frac1K\sum_k \mathrm{acc}_k(\text{test}).

    Parameters
    ----------
    codes_train : array of shape [N_train, D], D >= 2
    factors_train : integer array of shape [N_train, K], K >= 2, every factor varying
    codes_test : array of shape [N_test, D]
    factors_test : integer array of shape [N_test, K]
    rng : numpy.random.Generator
        Seeds the classifiers, one draw per factor (a documented deviation:
        disentanglement_lib passes no seed).
    importance : {"gbt", "hist_gbt"}
        ``"gbt"``: the faithful default (minutes per model at 10,000 training codes).
        ``"hist_gbt"``: fast histogram GBT; see the benchmark for its deviation.
    n_jobs : int
        Factors fitted in parallel (threads).
    num_stages : int
        Boosting stages per classifier (default 100; see :func:`importance_matrix`).

    Returns
    -------
    dict
        Keys ``disentanglement``, ``completeness``, ``informativeness_train``,
        ``informativeness_test``.


    Used in: :ref:`appendix-metrics`
    """
    r, acc_train, acc_test = importance_matrix(
        codes_train,
        factors_train,
        codes_test,
        factors_test,
        rng=rng,
        importance=importance,
        n_jobs=n_jobs,
        num_stages=num_stages,
    )
    scores = dci_from_importance(r)
    return {
        "disentanglement": scores.disentanglement,
        "completeness": scores.completeness,
        "informativeness_train": float(np.mean(acc_train)),
        "informativeness_test": float(np.mean(acc_test)),
    }
