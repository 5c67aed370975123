r"""Transitive information: exact checks of T1–T3 on discrete tables.

T1–T3 are **our formalisation, consistent with the paper's abstract**
(Ngo et al., *The Transitive Information Theory and its Application to Deep Generative
Models*, arXiv:2203.05074); the paper's own theorem statements were not available to us.

* **T1 (transitive lower bound)**, any joint with discrete :math:`B`:
  :math:`I(A;C) \ge I(A;B) + I(B;C) - H(B)`, with slack exactly
  :math:`I(A;C\mid B) + H(B\mid A,C)`.
* **T2 (data-processing ceiling)**, if :math:`A - B - C` is Markov:
  :math:`I(A;C) \le \min\{I(A;B), I(B;C)\}`.
* **T3 (conditional-prior rate identity)**, any joint :math:`q(x,z,u)` and any conditional
  prior :math:`p(z\mid u)`:
  :math:`\mathbb E_q[\log q(z\mid x) - \log p(z\mid u)]
  = I_q(X;Z) - I_q(Z;U) + \mathbb E_{q(u)}\mathrm{KL}(q(z\mid u)\,\|\,p(z\mid u))`.

Also the standard-VAE rate decomposition
:math:`\mathbb E_{p(x)}\mathrm{KL}(q(z\mid x)\|p(z)) = I_q(X;Z) + \mathrm{KL}(q(z)\|p(z))`.

All quantities are in nats unless ``base`` is given. Functions named ``*_batch`` take
arrays with a leading batch axis ``M`` and return arrays of shape ``[M]``.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Union

import numpy as np
from numpy.typing import ArrayLike

from .discrete import (
    SUM_TOL,
    entropy_of_axes,
    kl_sum,
    log_base,
    mi_2,
    validate_conditional,
    validate_joint,
)

__all__ = [
    "TransitiveBounds",
    "transitive_bounds",
    "transitive_bounds_batch",
    "RateIdentity",
    "labelled_joint",
    "chain_joint",
    "conditional_prior_rate_identity",
    "conditional_prior_rate_identity_batch",
    "PriorRateDecomposition",
    "prior_rate_decomposition",
]

FloatOrArray = Union[float, np.ndarray]

#: Default threshold on :math:`I(A;C\mid B)` (nats) below which a chain counts as Markov.
MARKOV_TOL: float = 1e-10


def _scalarise(obj: object) -> None:
    """Turn every 0-d / size-1 array field of a dataclass into a Python scalar (in place)."""
    for f in fields(obj):  # type: ignore[arg-type]
        v = getattr(obj, f.name)
        if isinstance(v, np.ndarray):
            item = v.reshape(-1)[0].item()
            object.__setattr__(obj, f.name, item)


# ============================================================================ T1 and T2
@dataclass
class TransitiveBounds:
    r"""T1/T2 quantities of a joint :math:`p(a,b,c)` (floats, or arrays ``[M]`` for a batch).

    Attributes
    ----------
    i_ab, i_bc, i_ac : float or ndarray
        :math:`I(A;B)`, :math:`I(B;C)`, :math:`I(A;C)`.
    h_b : float or ndarray
        :math:`H(B)`.
    lower : float or ndarray
        T1 lower bound :math:`I(A;B) + I(B;C) - H(B)` (valid for every joint).
    upper : float or ndarray
        T2 ceiling :math:`\min\{I(A;B), I(B;C)\}` (valid only if ``is_markov``).
    i_ac_given_b : float or ndarray
        :math:`I(A;C\mid B)`, zero iff :math:`A - B - C` is Markov.
    h_b_given_ac : float or ndarray
        :math:`H(B\mid A,C)`, zero iff :math:`B` is a function of :math:`(A,C)`.
    is_markov : bool or ndarray of bool
        ``i_ac_given_b <= markov_tol``: whether the ceiling applies.
    markov_tol : float
        Threshold used for ``is_markov`` (in the same units as the other fields).

    Notes
    -----
    ``lower_slack = i_ac - lower = i_ac_given_b + h_b_given_ac >= 0`` (T1 and its equality
    condition); ``upper_slack = upper - i_ac >= 0`` whenever ``is_markov`` (T2).
    """

    i_ab: FloatOrArray
    i_bc: FloatOrArray
    i_ac: FloatOrArray
    h_b: FloatOrArray
    lower: FloatOrArray
    upper: FloatOrArray
    i_ac_given_b: FloatOrArray
    h_b_given_ac: FloatOrArray
    is_markov: bool | np.ndarray
    markov_tol: float

    @property
    def lower_slack(self) -> FloatOrArray:
        """``I(A;C) - [I(A;B) + I(B;C) - H(B)]``; T1 says it is ``>= 0``."""
        return self.i_ac - self.lower

    @property
    def upper_slack(self) -> FloatOrArray:
        """``min(I(A;B), I(B;C)) - I(A;C)``; T2 says it is ``>= 0`` for Markov chains."""
        return self.upper - self.i_ac

    def summary(self) -> dict[str, float]:
        """Worst cases over a batch (also works for a single table).

        Returns
        -------
        dict
            ``n``; ``min_lower_slack`` (T1 holds iff ``>= 0``, up to rounding);
            ``num_markov``; ``min_upper_slack_markov`` (T2 over the Markov members, ``nan``
            if there are none); ``max_slack_identity_error``, the largest
            ``|lower_slack - (I(A;C|B) + H(B|A,C))|``.
        """
        ls = np.atleast_1d(np.asarray(self.lower_slack, dtype=float))
        us = np.atleast_1d(np.asarray(self.upper_slack, dtype=float))
        mk = np.atleast_1d(np.asarray(self.is_markov, dtype=bool))
        ident = ls - (np.atleast_1d(self.i_ac_given_b) + np.atleast_1d(self.h_b_given_ac))
        return {
            "n": float(ls.size),
            "min_lower_slack": float(ls.min()),
            "num_markov": float(mk.sum()),
            "min_upper_slack_markov": float(us[mk].min()) if mk.any() else float("nan"),
            "max_slack_identity_error": float(np.abs(ident).max()),
        }


def _transitive_core(p: np.ndarray, markov_tol: float, scale: float) -> TransitiveBounds:
    """Batched T1/T2 quantities for ``p`` of shape ``[..., A, B, C]`` (already validated)."""
    h_a = entropy_of_axes(p, (0,), 3)
    h_b = entropy_of_axes(p, (1,), 3)
    h_c = entropy_of_axes(p, (2,), 3)
    h_ab = entropy_of_axes(p, (0, 1), 3)
    h_bc = entropy_of_axes(p, (1, 2), 3)
    h_ac = entropy_of_axes(p, (0, 2), 3)
    h_abc = entropy_of_axes(p, (0, 1, 2), 3)
    i_ab = (h_a + h_b - h_ab) / scale
    i_bc = (h_b + h_c - h_bc) / scale
    i_ac = (h_a + h_c - h_ac) / scale
    i_ac_given_b = (h_ab + h_bc - h_b - h_abc) / scale
    h_b_given_ac = (h_abc - h_ac) / scale
    hb = h_b / scale
    return TransitiveBounds(
        i_ab=i_ab,
        i_bc=i_bc,
        i_ac=i_ac,
        h_b=hb,
        lower=i_ab + i_bc - hb,
        upper=np.minimum(i_ab, i_bc),
        i_ac_given_b=i_ac_given_b,
        h_b_given_ac=h_b_given_ac,
        is_markov=i_ac_given_b <= markov_tol,
        markov_tol=markov_tol,
    )


def transitive_bounds(
    p_abc: ArrayLike, markov_tol: float = MARKOV_TOL, base: float | None = None
) -> TransitiveBounds:
    r"""T1 lower bound, :math:`I(A;C)` and T2 ceiling for one joint table ``p[a, b, c]``.

    Our formalisation, consistent with the paper's abstract:

    .. math::
        \underbrace{I(A;B)+I(B;C)-H(B)}_{\text{T1, any joint}}
        \;\le\; I(A;C) \;\le\;
        \underbrace{\min\{I(A;B),\,I(B;C)\}}_{\text{T2, if } A-B-C \text{ Markov}}

    Parameters
    ----------
    p_abc : array_like, shape ``[A, B, C]``
        Joint table; :math:`B` (middle axis) is the "third variable".
    markov_tol : float
        The chain counts as Markov when :math:`I(A;C\mid B)\le` ``markov_tol``
        (in the output units).
    base : float, optional
        Logarithm base; ``None`` gives nats.

    Returns
    -------
    TransitiveBounds
        Float fields; see :class:`TransitiveBounds` (``lower``, ``i_ac``, ``upper``,
        ``is_markov``, slacks).

    Raises
    ------
    ValueError
        If ``p_abc`` is not a valid 3-axis probability table.


    Used in: :ref:`ch-transitive`
    """
    arr = validate_joint(p_abc, ndim=3, name="p_abc")
    out = _transitive_core(arr[None], float(markov_tol), log_base(base))
    _scalarise(out)
    out.is_markov = bool(out.is_markov)
    return out


def transitive_bounds_batch(
    p_abc: ArrayLike, markov_tol: float = MARKOV_TOL, base: float | None = None
) -> TransitiveBounds:
    r"""Vectorised :func:`transitive_bounds` over a batch of joints ``p[m, a, b, c]``.

    Checking T1/T2 on 10,000 random 4×4×4 joints takes a few milliseconds. Tables of
    different alphabet sizes can share a batch by zero padding (see
    :func:`.random_joints` with ``min_shape``). T1–T3 are our formalisation,
    consistent with the paper's abstract.

    Parameters
    ----------
    p_abc : array_like, shape ``[M, A, B, C]``
        ``M`` joint tables, each non-negative and summing to 1 within ``1e-9``.
    markov_tol : float
        Threshold on :math:`I(A;C\mid B)` for ``is_markov``.
    base : float, optional
        Logarithm base; ``None`` gives nats.

    Returns
    -------
    TransitiveBounds
        Fields are arrays of shape ``[M]``; ``.summary()`` gives the worst cases, e.g.
        ``min_lower_slack`` (T1 holds iff it is ``>= 0`` up to rounding).


    Used in: :ref:`ch-transitive`
    """
    arr = validate_joint(p_abc, ndim=3, name="p_abc", batch_ndim=1)
    return _transitive_core(arr, float(markov_tol), log_base(base))


# ===================================================================================== T3
@dataclass
class RateIdentity:
    r"""Terms of the conditional-prior rate identity (T3) (floats, or arrays ``[M]``).

    .. math::
        \underbrace{\mathbb E_q[\log q(z\mid x) - \log p(z\mid u)]}_{\texttt{rate}}
        &= \underbrace{I_q(X;Z)}_{\texttt{i_xz}} - \underbrace{I_q(Z;U)}_{\texttt{i_zu}} \\
        &\quad {}+ \underbrace{\mathbb E_{q(u)}\mathrm{KL}(q(z\mid u)\|p(z\mid u))}_{\texttt{kl_prior}}

    Attributes
    ----------
    rate : float or ndarray
        :math:`R_u`, computed directly as a sum over the joint :math:`q(x,z,u)`. When
        :math:`z \perp u \mid x` (labelled data) it equals
        :math:`\mathbb E_{q(x,u)}\mathrm{KL}(q(z\mid x)\|p(z\mid u))`; on an
        unlabelled chain :math:`X\to Z\to U` it is not an expected KL and can be negative.
    i_xz, i_zu : float or ndarray
        :math:`I_q(X;Z)` and :math:`I_q(Z;U)`.
    kl_prior : float or ndarray
        :math:`\mathbb E_{q(u)}\mathrm{KL}(q(z\mid u)\,\|\,p(z\mid u))\ge 0`, the prior's
        mismatch with the aggregate conditional posterior.
    residual : float or ndarray
        ``rate - (i_xz - i_zu + kl_prior)``; T3 says it is 0 (rounding: ~1e-15). ``nan``
        when ``rate`` and ``kl_prior`` are both infinite (the prior misses the support).
    """

    rate: FloatOrArray
    i_xz: FloatOrArray
    i_zu: FloatOrArray
    kl_prior: FloatOrArray
    residual: FloatOrArray

    @property
    def information_slack(self) -> FloatOrArray:
        r"""``rate + i_zu - i_xz`` (``= kl_prior >= 0``): the bound :math:`I(X;Z)\le R_u + I(Z;U)`."""
        return self.rate + self.i_zu - self.i_xz


def labelled_joint(p_xu: ArrayLike, q_z_given_x: ArrayLike) -> np.ndarray:
    r"""Joint :math:`q(x,z,u) = p(x,u)\,q(z\mid x)` (labelled data: :math:`Z\perp U\mid X`).

    Parameters
    ----------
    p_xu : array_like, shape ``[X, U]``
        Data/label joint (for SemafoVAE: :math:`p_D(x,y)` pushed through :math:`q(u\mid y)`).
    q_z_given_x : array_like, shape ``[X, Z]``
        Encoder table, rows sum to 1.

    Returns
    -------
    numpy.ndarray, shape ``[X, Z, U]``


    Used in: :ref:`ch-transitive`
    """
    pxu = validate_joint(p_xu, ndim=2, name="p_xu")
    qzx = validate_conditional(q_z_given_x, name="q_z_given_x")
    if qzx.shape[0] != pxu.shape[0]:
        raise ValueError(f"q_z_given_x has {qzx.shape[0]} rows but p_xu has |X| = {pxu.shape[0]}")
    return pxu[:, None, :] * qzx[:, :, None]


def chain_joint(p_x: ArrayLike, q_z_given_x: ArrayLike, q_u_given_z: ArrayLike) -> np.ndarray:
    r"""Joint of the chain :math:`X\to Z\to U`: :math:`q(x,z,u) = p(x)\,q(z\mid x)\,q(u\mid z)`.

    Parameters
    ----------
    p_x : array_like, shape ``[X]``
    q_z_given_x : array_like, shape ``[X, Z]``
        Encoder, rows sum to 1.
    q_u_given_z : array_like, shape ``[Z, U]``
        E.g. :math:`\int q(y\mid z)\,q(u\mid y)\,dy` in SemafoVAE; rows sum to 1.

    Returns
    -------
    numpy.ndarray, shape ``[X, Z, U]``


    Used in: :ref:`ch-transitive`
    """
    px = validate_joint(p_x, ndim=1, name="p_x")
    qzx = validate_conditional(q_z_given_x, name="q_z_given_x")
    quz = validate_conditional(q_u_given_z, name="q_u_given_z")
    if qzx.shape[0] != px.shape[0] or quz.shape[0] != qzx.shape[1]:
        raise ValueError(
            f"shapes do not chain: p_x {px.shape}, q_z_given_x {qzx.shape}, q_u_given_z {quz.shape}"
        )
    return px[:, None, None] * qzx[:, :, None] * quz[None, :, :]


def _rate_identity_core(
    q: np.ndarray, p_zu: np.ndarray, q_zx: np.ndarray | None, scale: float
) -> RateIdentity:
    """Batched T3 for ``q [..., X, Z, U]``, ``p_zu [..., U, Z]``, ``q_zx [..., X, Z]``."""
    q_xz = q.sum(axis=-1)  # [..., X, Z]
    q_zu = q.sum(axis=-3)  # [..., Z, U]
    q_x = q_xz.sum(axis=-1)  # [..., X]
    q_u = q_zu.sum(axis=-2)  # [..., U]
    if q_zx is None:
        with np.errstate(divide="ignore", invalid="ignore"):
            q_zx = np.where(q_x[..., :, None] > 0, q_xz / q_x[..., :, None], 0.0)
    p_uz = np.swapaxes(p_zu, -1, -2)  # [..., Z, U]: p(z|u) indexed [z, u]
    with np.errstate(divide="ignore", invalid="ignore"):
        log_enc = np.log(np.where(q > 0, q_zx[..., :, :, None], 1.0))
        log_pri = np.log(np.where(q > 0, p_uz[..., None, :, :], 1.0))
        rate = np.where(q > 0, q * (log_enc - log_pri), 0.0).sum(axis=(-3, -2, -1))
        # E_{q(u)} KL(q(z|u) || p(z|u)) = sum_{z,u} q(z,u) log[q(z,u) / (q(u) p(z|u))]
        # in log space: the product q(u) p(z|u) can underflow to 0 for subnormal q(u)
        pos = q_zu > 0
        log_ratio = (
            np.log(np.where(pos, q_zu, 1.0))
            - np.log(np.where(pos, q_u[..., None, :], 1.0))
            - np.log(np.where(pos, p_uz, 1.0))
        )
        kl_prior = np.where(pos, q_zu * log_ratio, 0.0).sum(axis=(-2, -1))
    i_xz = mi_2(q_xz)
    i_zu = mi_2(q_zu)
    with np.errstate(invalid="ignore"):  # inf - inf = nan when the prior misses the support
        residual = rate - (i_xz - i_zu + kl_prior)
    return RateIdentity(
        rate=rate / scale,
        i_xz=i_xz / scale,
        i_zu=i_zu / scale,
        kl_prior=kl_prior / scale,
        residual=residual / scale,
    )


def _check_t3_inputs(
    q_xzu: ArrayLike, p_z_given_u: ArrayLike, q_z_given_x: ArrayLike | None, batch: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    q = validate_joint(q_xzu, ndim=3, name="q_xzu", batch_ndim=batch)
    p_zu = validate_conditional(p_z_given_u, name="p_z_given_u", ndim=2 + batch)
    nx, nz, nu = q.shape[-3:]
    if p_zu.shape[-2:] != (nu, nz) or p_zu.shape[:-2] != q.shape[:-3]:
        raise ValueError(
            f"p_z_given_u must have shape {q.shape[:-3] + (nu, nz)} ([..., U, Z]) to match "
            f"q_xzu {q.shape}; got {p_zu.shape}"
        )
    q_zx = None
    if q_z_given_x is not None:
        q_zx = validate_conditional(q_z_given_x, name="q_z_given_x", ndim=2 + batch)
        if q_zx.shape != q.shape[:-3] + (nx, nz):
            raise ValueError(
                f"q_z_given_x must have shape {q.shape[:-3] + (nx, nz)}; got {q_zx.shape}"
            )
        q_xz = q.sum(axis=-1)
        q_x = q_xz.sum(axis=-1, keepdims=True)
        if np.max(np.abs(q_xz - q_x * q_zx)) > SUM_TOL:
            raise ValueError(
                "q_z_given_x is not the conditional of z given x in q_xzu "
                "(q(x,z) != q(x) q(z|x)); build q_xzu with labelled_joint or chain_joint"
            )
    return q, p_zu, q_zx


def conditional_prior_rate_identity(
    q_xzu: ArrayLike,
    p_z_given_u: ArrayLike,
    q_z_given_x: ArrayLike | None = None,
    base: float | None = None,
) -> RateIdentity:
    r"""T3, the conditional-prior rate identity, evaluated exactly on a discrete joint.

    Our formalisation, consistent with the paper's abstract. For any
    joint :math:`q(x,z,u)` whose :math:`z`-given-:math:`x` conditional is the encoder and
    any conditional prior :math:`p(z\mid u)`:

    .. math::
        R_u &:= \mathbb E_q\big[\log q(z\mid x) - \log p(z\mid u)\big] \\
        &= I_q(X;Z) - I_q(Z;U) + \mathbb E_{q(u)}\mathrm{KL}\big(q(z\mid u)\,\|\,p(z\mid u)\big),

    hence :math:`I_q(X;Z)\le R_u + I_q(Z;U)`: the information :math:`z` shares with
    :math:`u` is not charged by the rate. ``rate``, the mutual informations and the KL are
    computed independently (the rate as a sum over all cells of the joint), so
    ``residual`` is a genuine numerical check (about ``1e-15``).

    Parameters
    ----------
    q_xzu : array_like, shape ``[X, Z, U]``
        The joint, e.g. ``labelled_joint(p_xu, q_z_given_x)`` (labelled data,
        :math:`p(x,u)q(z\mid x)`) or ``chain_joint(p_x, q_z_given_x, q_u_given_z)``
        (unlabelled chain :math:`X\to Z\to U`).
    p_z_given_u : array_like, shape ``[U, Z]``
        Conditional prior, rows sum to 1. Zeros where :math:`q(z,u)>0` make the rate and
        ``kl_prior`` infinite.
    q_z_given_x : array_like, shape ``[X, Z]``, optional
        The encoder table used in :math:`\log q(z\mid x)`. If given it must agree with
        ``q_xzu`` (:math:`q(x,z) = q(x)\,q(z\mid x)` within ``1e-9``); if omitted it is
        derived from ``q_xzu``.
    base : float, optional
        Logarithm base; ``None`` gives nats.

    Returns
    -------
    RateIdentity
        Float fields ``rate``, ``i_xz``, ``i_zu``, ``kl_prior``, ``residual``.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> from hvae_lib.info import random_joint, random_conditional
    >>> p_xu, q_zx = random_joint(rng, (5, 3)), random_conditional(rng, 5, 4)
    >>> t3 = conditional_prior_rate_identity(labelled_joint(p_xu, q_zx),
    ...                                      random_conditional(rng, 3, 4), q_zx)
    >>> abs(t3.residual) < 1e-12
    True


    Used in: :ref:`ch-transitive`
    """
    q, p_zu, q_zx = _check_t3_inputs(q_xzu, p_z_given_u, q_z_given_x, batch=0)
    out = _rate_identity_core(
        q[None], p_zu[None], None if q_zx is None else q_zx[None], log_base(base)
    )
    _scalarise(out)
    return out


def conditional_prior_rate_identity_batch(
    q_xzu: ArrayLike,
    p_z_given_u: ArrayLike,
    q_z_given_x: ArrayLike | None = None,
    base: float | None = None,
) -> RateIdentity:
    r"""Vectorised :func:`conditional_prior_rate_identity` (T3) over ``M`` joints.

    Parameters
    ----------
    q_xzu : array_like, shape ``[M, X, Z, U]``
    p_z_given_u : array_like, shape ``[M, U, Z]``
    q_z_given_x : array_like, shape ``[M, X, Z]``, optional
    base : float, optional

    Returns
    -------
    RateIdentity
        Fields are arrays ``[M]``; T3 says ``residual`` is 0 and ``information_slack``
        is ``>= 0``.


    Used in: :ref:`ch-transitive`
    """
    q, p_zu, q_zx = _check_t3_inputs(q_xzu, p_z_given_u, q_z_given_x, batch=1)
    return _rate_identity_core(q, p_zu, q_zx, log_base(base))


# ================================================================ standard-VAE decomposition
@dataclass
class PriorRateDecomposition:
    r"""Terms of :math:`\mathbb E_{p(x)}\mathrm{KL}(q(z|x)\|p(z)) = I_q(X;Z) + \mathrm{KL}(q(z)\|p(z))`.

    Attributes
    ----------
    rate : float
        :math:`R = \mathbb E_{p(x)}\mathrm{KL}(q(z\mid x)\,\|\,p(z))`, computed row by row.
    i_xz : float
        :math:`I_q(X;Z)` of the joint :math:`p(x)q(z\mid x)`.
    kl_marginal : float
        :math:`\mathrm{KL}(q(z)\,\|\,p(z))` with the aggregate posterior
        :math:`q(z)=\sum_x p(x)q(z\mid x)`.
    residual : float
        ``rate - (i_xz + kl_marginal)``; 0 up to rounding.
    """

    rate: float
    i_xz: float
    kl_marginal: float
    residual: float


def prior_rate_decomposition(
    p_x: ArrayLike, q_z_given_x: ArrayLike, p_z: ArrayLike, base: float | None = None
) -> PriorRateDecomposition:
    r"""Why the rate caps :math:`I(X;Z)` in a VAE with a fixed prior (exact, discrete).

    .. math::
        \mathbb E_{p(x)}\mathrm{KL}\big(q(z\mid x)\,\|\,p(z)\big)
        = I_q(X;Z) + \mathrm{KL}\big(q(z)\,\|\,p(z)\big) \;\ge\; I_q(X;Z)

    Parameters
    ----------
    p_x : array_like, shape ``[X]``
        Data distribution.
    q_z_given_x : array_like, shape ``[X, Z]``
        Encoder, rows sum to 1.
    p_z : array_like, shape ``[Z]``
        Prior.
    base : float, optional
        Logarithm base; ``None`` gives nats.

    Returns
    -------
    PriorRateDecomposition


    Used in: :ref:`ch-transitive`
    """
    px = validate_joint(p_x, ndim=1, name="p_x")
    qzx = validate_conditional(q_z_given_x, name="q_z_given_x")
    pz = validate_joint(p_z, ndim=1, name="p_z")
    if qzx.shape != (px.shape[0], pz.shape[0]):
        raise ValueError(
            f"q_z_given_x must have shape (|X|, |Z|) = {(px.shape[0], pz.shape[0])}; got {qzx.shape}"
        )
    scale = log_base(base)
    kl_rows = kl_sum(qzx, np.broadcast_to(pz, qzx.shape), (-1,))  # [X]
    kl_rows = np.where(px > 0, kl_rows, 0.0)
    rate = float((px * kl_rows).sum())
    q_xz = px[:, None] * qzx
    i_xz = float(mi_2(q_xz))
    q_z = q_xz.sum(axis=0)
    kl_marg = float(kl_sum(q_z, pz, (0,)))
    return PriorRateDecomposition(
        rate=rate / scale,
        i_xz=i_xz / scale,
        kl_marginal=kl_marg / scale,
        residual=(rate - i_xz - kl_marg) / scale,
    )
