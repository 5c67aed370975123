"""Exact information quantities of discrete probability tables (numpy, nats by default).

Every function takes a joint probability table as a numpy array whose axes are the
variables (``p_ab[a, b] = P(A=a, B=b)``), validates it, and returns a Python ``float``.
Pass ``base=2`` for bits (any ``base > 0, != 1`` works; ``None`` means nats).

Conventions
-----------
* ``0 log 0 = 0``: zero cells contribute nothing, so a table may be zero-padded without
  changing any quantity.
* Conditioning is always on the *last* axis: ``conditional_entropy(p_ab) = H(A|B)`` and
  ``conditional_mutual_information(p_abc) = I(A;B|C)``.
* Results are exact up to floating-point rounding (about ``1e-15`` nats); they are not
  clipped, so a mutual information can come out as ``-1e-17``.

The batched helpers at the bottom (names with a leading underscore) work on arrays with
leading batch axes ``[..., A, B, C]``; :mod:`hvae_lib.info.transitive` uses them for its
vectorised checks.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike

__all__ = [
    "SUM_TOL",
    "validate_joint",
    "validate_conditional",
    "entropy",
    "conditional_entropy",
    "mutual_information",
    "conditional_mutual_information",
    "co_information",
    "kl_divergence",
]

#: Largest accepted deviation of a table's total (or a conditional's row sums) from 1.
SUM_TOL: float = 1e-9


# --------------------------------------------------------------------------- validation
def _as_float_array(p: ArrayLike, name: str) -> np.ndarray:
    try:
        arr = np.asarray(p, dtype=np.float64)
    except (TypeError, ValueError) as exc:  # e.g. strings, ragged lists
        raise ValueError(f"{name} must be an array of numbers; got {type(p).__name__}") from exc
    if arr.size == 0:
        raise ValueError(f"{name} is empty (shape {arr.shape}); a probability table needs cells")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or infinite entries")
    if np.any(arr < 0):
        raise ValueError(
            f"{name} has negative entries (min {arr.min():.3g}); probabilities must be >= 0"
        )
    return arr


def validate_joint(
    p: ArrayLike,
    ndim: int | None = None,
    name: str = "p",
    batch_ndim: int = 0,
) -> np.ndarray:
    """Check that ``p`` is a probability table and return it as a float64 array.

    Parameters
    ----------
    p : array_like, shape ``[*batch, n_1, ..., n_k]``
        Non-negative entries; each table (the trailing ``ndim`` axes) sums to 1.
    ndim : int, optional
        Required number of table axes ``k`` (``None``: any, the whole array is one table
        when ``batch_ndim == 0``).
    name : str
        Name used in error messages.
    batch_ndim : int
        Number of leading batch axes; each of the ``prod(batch)`` tables is checked.

    Returns
    -------
    numpy.ndarray
        ``p`` as float64, unchanged otherwise (no renormalisation).

    Raises
    ------
    ValueError
        Wrong number of axes, NaN/inf or negative entries, or a total differing from 1
        by more than ``SUM_TOL = 1e-9``.


    Used in: :ref:`ch-transitive`
    """
    arr = _as_float_array(p, name)
    if ndim is not None and arr.ndim != ndim + batch_ndim:
        want = f"{batch_ndim} batch axes + {ndim} table axes" if batch_ndim else f"{ndim} axes"
        raise ValueError(f"{name} must have {want}; got shape {arr.shape}")
    if arr.ndim <= batch_ndim:
        raise ValueError(
            f"{name} has shape {arr.shape}: no table axes after {batch_ndim} batch axes"
        )
    table_axes = tuple(range(batch_ndim, arr.ndim))
    totals = arr.sum(axis=table_axes)
    dev = np.abs(totals - 1.0)
    if np.any(dev > SUM_TOL):
        worst = float(np.ravel(totals)[np.argmax(np.ravel(dev))])
        what = "a table in the batch" if batch_ndim else name
        raise ValueError(
            f"{what} sums to {worst!r}, not 1 (tolerance {SUM_TOL:g}); normalise it first"
        )
    return arr


def validate_conditional(q: ArrayLike, name: str = "q", ndim: int = 2) -> np.ndarray:
    """Check a conditional probability table whose *last* axis is the outcome.

    Parameters
    ----------
    q : array_like, shape ``[..., num_condition, num_outcome]`` (``ndim`` axes)
        Non-negative, each row ``q[..., i, :]`` sums to 1 within ``SUM_TOL``.
    name : str
        Name used in error messages (e.g. ``"q_z_given_x"``).
    ndim : int
        Required number of axes.

    Returns
    -------
    numpy.ndarray
        ``q`` as float64.


    Used in: :ref:`ch-transitive`
    """
    arr = _as_float_array(q, name)
    if arr.ndim != ndim:
        raise ValueError(
            f"{name} must have {ndim} axes [..., condition, outcome]; got shape {arr.shape}"
        )
    rows = arr.sum(axis=-1)
    dev = np.abs(rows - 1.0)
    if np.any(dev > SUM_TOL):
        worst = float(np.ravel(rows)[np.argmax(np.ravel(dev))])
        raise ValueError(
            f"{name} is a conditional table: every row (last axis) must sum to 1, "
            f"but a row sums to {worst!r} (tolerance {SUM_TOL:g})"
        )
    return arr


def log_base(base: float | None) -> float:
    """The divisor that converts nats to ``base`` units: ``ln(base)``, or 1 (nats) for ``None``."""
    if base is None:
        return 1.0
    if not (base > 0 and base != 1 and math.isfinite(base)):
        raise ValueError(f"base must be positive, finite and != 1 (e.g. 2 for bits); got {base!r}")
    return math.log(base)


# ------------------------------------------------------------------ batched numeric core
def _neg_xlogx_sum(p: np.ndarray, axes: int | Sequence[int] | None) -> np.ndarray:
    """``-sum p log p`` over ``axes`` with ``0 log 0 = 0`` (no validation)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0)), 0.0)
    return -terms.sum(axis=tuple(axes) if isinstance(axes, (list, tuple)) else axes)


def entropy_of_axes(p: np.ndarray, keep: Sequence[int], num_table: int) -> np.ndarray:
    """Entropy of the marginal on table axes ``keep`` (0-based within the table).

    ``p`` has shape ``[*batch, n_1, ..., n_{num_table}]``; returns shape ``batch``.
    """
    nb = p.ndim - num_table
    drop = tuple(nb + i for i in range(num_table) if i not in keep)
    marg = p.sum(axis=drop) if drop else p
    return _neg_xlogx_sum(marg, tuple(range(nb, marg.ndim)))


def mi_2(p_ab: np.ndarray) -> np.ndarray:
    """``I(A;B) = H(A) + H(B) - H(A,B)`` for ``[..., A, B]`` (batched, no validation)."""
    return (
        entropy_of_axes(p_ab, (0,), 2)
        + entropy_of_axes(p_ab, (1,), 2)
        - entropy_of_axes(p_ab, (0, 1), 2)
    )


def _cmi_3(p_abc: np.ndarray) -> np.ndarray:
    """``I(A;B|C) = H(A,C) + H(B,C) - H(C) - H(A,B,C)`` for ``[..., A, B, C]``."""
    return (
        entropy_of_axes(p_abc, (0, 2), 3)
        + entropy_of_axes(p_abc, (1, 2), 3)
        - entropy_of_axes(p_abc, (2,), 3)
        - entropy_of_axes(p_abc, (0, 1, 2), 3)
    )


# ---------------------------------------------------------------------------- public API
def entropy(p: ArrayLike, base: float | None = None) -> float:
    r"""Shannon entropy of a (joint) probability table.

    .. math:: H(p) = -\sum_{i} p_i \log p_i \qquad (0 \log 0 = 0)

    Parameters
    ----------
    p : array_like, any shape ``[n_1, ..., n_k]``
        A joint table over ``k`` variables (all axes are treated jointly, so
        ``entropy(p_ab)`` is :math:`H(A,B)`). Must be non-negative and sum to 1.
    base : float, optional
        Logarithm base (``2`` for bits); ``None`` gives nats.

    Returns
    -------
    float
        :math:`H` in nats (or in the requested base).

    Raises
    ------
    ValueError
        Negative entries or a total not within ``1e-9`` of 1.


    Used in: :ref:`ch-transitive`
    """
    arr = validate_joint(p, name="p")
    return float(_neg_xlogx_sum(arr.ravel(), 0)) / log_base(base)


def conditional_entropy(p_ab: ArrayLike, base: float | None = None) -> float:
    r"""Conditional entropy :math:`H(A\mid B)` of a table indexed ``[a, b]``.

    .. math:: H(A\mid B) = H(A,B) - H(B)

    Parameters
    ----------
    p_ab : array_like, shape ``[A, B]``
        Joint table; the conditioning variable is the *last* axis.
    base : float, optional
        Logarithm base; ``None`` gives nats.

    Returns
    -------
    float


    Used in: :ref:`ch-transitive`
    """
    arr = validate_joint(p_ab, ndim=2, name="p_ab")
    h = entropy_of_axes(arr, (0, 1), 2) - entropy_of_axes(arr, (1,), 2)
    return float(h) / log_base(base)


def mutual_information(p_ab: ArrayLike, base: float | None = None) -> float:
    r"""Mutual information :math:`I(A;B)` of a table indexed ``[a, b]``.

    .. math::
        I(A;B) = \sum_{a,b} p(a,b)\log\frac{p(a,b)}{p(a)\,p(b)} = H(A) + H(B) - H(A,B)

    Parameters
    ----------
    p_ab : array_like, shape ``[A, B]``
        Joint table (non-negative, sums to 1).
    base : float, optional
        Logarithm base; ``None`` gives nats.

    Returns
    -------
    float
        :math:`I(A;B)\ge 0` up to rounding (``~1e-16``); not clipped.

    Examples
    --------
    A binary symmetric channel with crossover 0.1 and a uniform input carries
    ``1 - h_2(0.1) = 0.531`` bits:

    >>> mutual_information([[0.45, 0.05], [0.05, 0.45]], base=2)  # doctest: +ELLIPSIS
    0.531...


    Used in: :ref:`ch-transitive`
    """
    arr = validate_joint(p_ab, ndim=2, name="p_ab")
    return float(mi_2(arr)) / log_base(base)


def conditional_mutual_information(p_abc: ArrayLike, base: float | None = None) -> float:
    r"""Conditional mutual information :math:`I(A;B\mid C)` of a table indexed ``[a, b, c]``.

    .. math::
        I(A;B\mid C) &= \sum_{a,b,c} p(a,b,c)\log\frac{p(a,b,c)\,p(c)}{p(a,c)\,p(b,c)} \\
                     &= H(A,C) + H(B,C) - H(C) - H(A,B,C)

    Parameters
    ----------
    p_abc : array_like, shape ``[A, B, C]``
        Joint table; the conditioning variable is the *last* axis. To get
        :math:`I(A;C\mid B)` pass ``p_abc.transpose(0, 2, 1)``.
    base : float, optional
        Logarithm base; ``None`` gives nats.

    Returns
    -------
    float
        Zero (up to rounding) iff :math:`A - C - B` is a Markov chain.


    Used in: :ref:`ch-transitive`
    """
    arr = validate_joint(p_abc, ndim=3, name="p_abc")
    return float(_cmi_3(arr)) / log_base(base)


def co_information(p_abc: ArrayLike, base: float | None = None) -> float:
    r"""Co-information (McGill's interaction information) :math:`I(A;B;C)`.

    .. math::
        I(A;B;C) &= I(A;B) - I(A;B\mid C) \\
                 &= H(A)+H(B)+H(C) \\
                 &\quad {}-H(A,B)-H(A,C)-H(B,C)+H(A,B,C)

    Symmetric in the three variables. Sign convention: positive means redundancy
    (``A = B = C`` a fair bit gives ``+log 2``), negative means synergy
    (``C = A xor B`` gives ``-log 2``).

    Parameters
    ----------
    p_abc : array_like, shape ``[A, B, C]``
        Joint table.
    base : float, optional
        Logarithm base; ``None`` gives nats.

    Returns
    -------
    float


    Used in: :ref:`ch-transitive`
    """
    arr = validate_joint(p_abc, ndim=3, name="p_abc")
    i_ab = mi_2(arr.sum(axis=2))
    return float(i_ab - _cmi_3(arr)) / log_base(base)


def kl_divergence(p: ArrayLike, q: ArrayLike, base: float | None = None) -> float:
    r"""Kullback–Leibler divergence :math:`\mathrm{KL}(p\,\|\,q)` of two tables of one shape.

    .. math:: \mathrm{KL}(p\|q) = \sum_i p_i \log\frac{p_i}{q_i}

    Parameters
    ----------
    p, q : array_like, same shape
        Probability tables (each non-negative, summing to 1).
    base : float, optional
        Logarithm base; ``None`` gives nats.

    Returns
    -------
    float
        ``inf`` if ``q_i = 0`` where ``p_i > 0``.


    Used in: :ref:`ch-transitive`
    """
    pa = validate_joint(p, name="p")
    qa = validate_joint(q, name="q")
    if pa.shape != qa.shape:
        raise ValueError(f"p and q must have the same shape; got {pa.shape} and {qa.shape}")
    return float(kl_sum(pa, qa, tuple(range(pa.ndim)))) / log_base(base)


def kl_sum(p: np.ndarray, q: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
    """``sum p log(p/q)`` over ``axes`` (0 log 0 = 0; inf where q = 0 < p); no validation."""
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(
            p > 0, np.log(np.where(p > 0, p, 1.0)) - np.log(np.where(p > 0, q, 1.0)), 0.0
        )
        terms = np.where(p > 0, p * ratio, 0.0)
    return terms.sum(axis=axes)
