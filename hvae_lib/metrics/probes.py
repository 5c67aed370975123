r"""Per-factor linear probes: can a linear classifier read each factor from a code?

For every factor :math:`f`, a multinomial logistic regression on standardised codes is fitted
on training codes and scored on test codes; the accuracy answers "is factor :math:`f` in the
code at all, linearly?" (e.g. shape in SemafoVAE's :math:`z_0`).

Used in: :ref:`ch-semafovae-evaluation`
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from ._validation import check_pair

__all__ = ["linear_probe_accuracy"]


def linear_probe_accuracy(
    codes_train: Any,
    factors_train: Any,
    codes_test: Any,
    factors_test: Any,
    *,
    max_iter: int = 500,
) -> np.ndarray:
    r"""Test accuracy ``float64 [K]`` of one linear probe per factor.

    Parameters
    ----------
    codes_train : ``[N, D]`` codes; factors_train : ``[N, K]`` integer factor indices;
    codes_test, factors_test : the same for the held-out codes (``[M, D]``, ``[M, K]``).
    max_iter : L-BFGS iterations of each (deterministic) logistic regression.

    A factor with one value in the training codes is read perfectly by a constant (accuracy
    of that value on the test codes).

    Used in: :ref:`ch-semafovae-evaluation`
    """
    z_tr, f_tr = check_pair(codes_train, factors_train, suffix="_train", require_variation=False)
    z_te, f_te = check_pair(codes_test, factors_test, suffix="_test", require_variation=False)
    if z_tr.shape[1] != z_te.shape[1] or f_tr.shape[1] != f_te.shape[1]:
        raise ValueError(
            f"train and test codes/factors disagree in width: {z_tr.shape}/{f_tr.shape} vs "
            f"{z_te.shape}/{f_te.shape}"
        )
    out = np.zeros(f_tr.shape[1])
    for k in range(f_tr.shape[1]):
        classes = np.unique(f_tr[:, k])
        if classes.size < 2:
            out[k] = float(np.mean(f_te[:, k] == classes[0]))
            continue
        probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=int(max_iter)))
        probe.fit(z_tr, f_tr[:, k])
        out[k] = float(np.mean(probe.predict(z_te) == f_te[:, k]))
    return out
