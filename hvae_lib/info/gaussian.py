r"""Closed forms for jointly Gaussian vectors, Gaussian Markov chains and a test sampler.

For jointly Gaussian :math:`(A, B)` with covariance :math:`\Sigma`,

.. math::
    I(A;B) = \tfrac12\big[\log\det\Sigma_{AA} + \log\det\Sigma_{BB}
             - \log\det\Sigma_{A\cup B}\big],

which for scalars with correlation :math:`\rho` is :math:`-\tfrac12\log(1-\rho^2)`.
These are the reference values for the variational estimators in
:mod:`hvae_lib.info.estimators`. Note that T1 (our formalisation, :mod:`hvae_lib.info.transitive`)
needs a *discrete*
middle variable; for a Gaussian chain :math:`H(B)` is a differential entropy and the
lower bound does not apply, while the T2 ceiling (data processing) does.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from numpy.typing import ArrayLike

from ..config import check_rng
from .discrete import log_base

__all__ = [
    "gaussian_entropy",
    "gaussian_mutual_information",
    "mi_from_correlation",
    "correlation_from_mi",
    "GaussianChain",
    "gaussian_markov_chain",
    "gaussian_pair_sampler",
]

#: Signature of a data sampler for the estimators: ``(n, generator) -> (x [n, d_a], y [n, d_b])``.
PairSampler = Callable[[int, torch.Generator], "tuple[torch.Tensor, torch.Tensor]"]


def _check_cov(cov: ArrayLike) -> np.ndarray:
    c = np.asarray(cov, dtype=np.float64)
    if c.ndim != 2 or c.shape[0] != c.shape[1]:
        raise ValueError(f"cov must be a square matrix; got shape {c.shape}")
    if not np.all(np.isfinite(c)):
        raise ValueError("cov contains NaN or infinite entries")
    if not np.allclose(c, c.T, rtol=1e-10, atol=1e-12):
        raise ValueError("cov must be symmetric")
    return c


def _logdet_pd(c: np.ndarray, what: str) -> float:
    try:
        chol = np.linalg.cholesky(c)
    except np.linalg.LinAlgError as exc:
        raise ValueError(f"{what} is not positive definite; the Gaussian is degenerate") from exc
    return float(2.0 * np.log(np.diag(chol)).sum())


def _check_idx(idx: int | Sequence[int], n: int, name: str) -> list[int]:
    out = [int(idx)] if np.isscalar(idx) else [int(i) for i in idx]  # type: ignore[union-attr]
    if not out:
        raise ValueError(f"{name} is empty")
    if any(i < 0 or i >= n for i in out):
        raise ValueError(f"{name} = {out} has indices outside 0..{n - 1}")
    if len(set(out)) != len(out):
        raise ValueError(f"{name} = {out} has repeated indices")
    return out


def gaussian_entropy(cov: ArrayLike, base: float | None = None) -> float:
    r"""Differential entropy of :math:`\mathcal N(\mu, \Sigma)`.

    .. math:: h = \tfrac12 \log\det(2\pi e\,\Sigma) = \tfrac d2\log(2\pi e) + \tfrac12\log\det\Sigma

    Parameters
    ----------
    cov : array_like, shape ``[d, d]``
        Symmetric positive-definite covariance.
    base : float, optional
        Logarithm base; ``None`` gives nats.

    Returns
    -------
    float
        E.g. ``0.5 * log(2*pi*e) = 1.4189`` nats for a standard normal; this is the known
        :math:`H(Y)` that the Barber–Agakov estimator needs.


    Used in: :ref:`ch-transitive`
    """
    c = _check_cov(cov)
    d = c.shape[0]
    h = 0.5 * d * math.log(2 * math.pi * math.e) + 0.5 * _logdet_pd(c, "cov")
    return h / log_base(base)


def gaussian_mutual_information(
    cov: ArrayLike,
    idx_a: int | Sequence[int],
    idx_b: int | Sequence[int],
    base: float | None = None,
) -> float:
    r"""Mutual information between two disjoint blocks of a jointly Gaussian vector.

    .. math::
        I(A;B) = \tfrac12\big[\log\det\Sigma_{AA} + \log\det\Sigma_{BB}
                 - \log\det\Sigma_{A\cup B,\,A\cup B}\big]

    Parameters
    ----------
    cov : array_like, shape ``[d, d]``
        Covariance of the whole vector (symmetric; the sub-blocks used must be positive
        definite). Other coordinates are marginalised out.
    idx_a, idx_b : int or sequence of int
        Disjoint coordinate indices of :math:`A` and :math:`B`.
    base : float, optional
        Logarithm base; ``None`` gives nats.

    Returns
    -------
    float
        :math:`I(A;B)\ge 0`; ``-0.5 * log(1 - rho**2)`` for two scalars with correlation rho.

    Raises
    ------
    ValueError
        Non-square / asymmetric ``cov``, bad or overlapping indices, or a singular block.


    Used in: :ref:`ch-transitive`
    """
    c = _check_cov(cov)
    a = _check_idx(idx_a, c.shape[0], "idx_a")
    b = _check_idx(idx_b, c.shape[0], "idx_b")
    if set(a) & set(b):
        raise ValueError(f"idx_a {a} and idx_b {b} overlap; they must be disjoint")
    ab = a + b
    mi = 0.5 * (
        _logdet_pd(c[np.ix_(a, a)], "cov[A, A]")
        + _logdet_pd(c[np.ix_(b, b)], "cov[B, B]")
        - _logdet_pd(c[np.ix_(ab, ab)], "cov[A+B, A+B]")
    )
    return mi / log_base(base)


def mi_from_correlation(rho: float | ArrayLike) -> float | np.ndarray:
    r"""Mutual information of a bivariate Gaussian with correlation :math:`\rho`:
    :math:`-\tfrac12\log(1-\rho^2)` (nats).

    Parameters
    ----------
    rho : float or array_like
        Correlation(s) with :math:`|\rho| < 1`.

    Returns
    -------
    float or numpy.ndarray


    Used in: :ref:`ch-transitive`
    """
    r = np.asarray(rho, dtype=np.float64)
    if np.any(np.abs(r) >= 1):
        raise ValueError(f"correlation must satisfy |rho| < 1; got {rho!r}")
    out = -0.5 * np.log1p(-(r**2))
    return float(out) if out.ndim == 0 else out


def correlation_from_mi(mi: float | ArrayLike) -> float | np.ndarray:
    r"""Inverse of :func:`mi_from_correlation`: :math:`\rho = \sqrt{1 - e^{-2I}}`.

    Parameters
    ----------
    mi : float or array_like
        Mutual information(s) in nats, ``>= 0``. ``1`` nat gives ``rho = 0.9299``.

    Returns
    -------
    float or numpy.ndarray


    Used in: :ref:`ch-transitive`
    """
    m = np.asarray(mi, dtype=np.float64)
    if np.any(m < 0) or not np.all(np.isfinite(m)):
        raise ValueError(f"mutual information must be finite and >= 0; got {mi!r}")
    out = np.sqrt(-np.expm1(-2.0 * m))
    return float(out) if out.ndim == 0 else out


@dataclass
class GaussianChain:
    r"""A Gaussian Markov chain :math:`A\to B\to C` of ``dim``-dimensional vectors.

    Component :math:`k` is an independent scalar chain with unit variances,
    :math:`B_k = \rho^{AB}_k A_k + \sqrt{1-(\rho^{AB}_k)^2}\,\varepsilon_k`,
    :math:`C_k = \rho^{BC}_k B_k + \sqrt{1-(\rho^{BC}_k)^2}\,\eta_k`, so
    :math:`\mathrm{corr}(A_k, C_k) = \rho^{AB}_k\rho^{BC}_k`.

    Attributes
    ----------
    cov : numpy.ndarray, shape ``[3 * dim, 3 * dim]``
        Covariance of ``(A, B, C)`` stacked in that order.
    idx_a, idx_b, idx_c : list of int
        Coordinates of each block in ``cov``.
    rho_ab, rho_bc : numpy.ndarray, shape ``[dim]``
        Per-component correlations.
    """

    cov: np.ndarray
    idx_a: list[int]
    idx_b: list[int]
    idx_c: list[int]
    rho_ab: np.ndarray
    rho_bc: np.ndarray

    @property
    def i_ab(self) -> float:
        """:math:`I(A;B)` in nats (closed form)."""
        return gaussian_mutual_information(self.cov, self.idx_a, self.idx_b)

    @property
    def i_bc(self) -> float:
        """:math:`I(B;C)` in nats."""
        return gaussian_mutual_information(self.cov, self.idx_b, self.idx_c)

    @property
    def i_ac(self) -> float:
        r""":math:`I(A;C) = -\tfrac12\sum_k\log(1-(\rho^{AB}_k\rho^{BC}_k)^2)` nats; ``<= min(i_ab, i_bc)`` (T2)."""
        return gaussian_mutual_information(self.cov, self.idx_a, self.idx_c)

    def sample(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Draw ``n`` samples; returns ``(a, b, c)``, each of shape ``[n, dim]`` (float64)."""
        check_rng(rng)
        d = len(self.idx_a)
        a = rng.standard_normal((n, d))
        b = self.rho_ab * a + np.sqrt(1 - self.rho_ab**2) * rng.standard_normal((n, d))
        c = self.rho_bc * b + np.sqrt(1 - self.rho_bc**2) * rng.standard_normal((n, d))
        return a, b, c


def gaussian_markov_chain(
    rho_ab: float | ArrayLike, rho_bc: float | ArrayLike, dim: int = 1
) -> GaussianChain:
    r"""Build a Gaussian Markov chain :math:`A\to B\to C` with chosen correlations.

    .. math::
        \Sigma = \begin{pmatrix} I & R_{AB} & R_{AB}R_{BC}\\ R_{AB} & I & R_{BC}\\
        R_{AB}R_{BC} & R_{BC} & I\end{pmatrix},\qquad R = \mathrm{diag}(\rho)

    Parameters
    ----------
    rho_ab, rho_bc : float or array_like of shape ``[dim]``
        Correlations :math:`|\rho| < 1`, one per component (a scalar is broadcast).
    dim : int
        Dimension of each of :math:`A, B, C`.

    Returns
    -------
    GaussianChain
        With ``cov``, indices, closed-form ``i_ab``, ``i_bc``, ``i_ac`` and ``sample``.


    Used in: :ref:`ch-transitive`
    """
    dim = int(dim)
    if dim < 1:
        raise ValueError(f"dim must be >= 1; got {dim}")
    r1 = np.broadcast_to(np.asarray(rho_ab, dtype=np.float64), (dim,)).copy()
    r2 = np.broadcast_to(np.asarray(rho_bc, dtype=np.float64), (dim,)).copy()
    if np.any(np.abs(r1) >= 1) or np.any(np.abs(r2) >= 1):
        raise ValueError(
            f"correlations must satisfy |rho| < 1; got rho_ab={rho_ab!r}, rho_bc={rho_bc!r}"
        )
    eye = np.eye(dim)
    rab, rbc = np.diag(r1), np.diag(r2)
    cov = np.block([[eye, rab, rab @ rbc], [rab, eye, rbc], [rab @ rbc, rbc, eye]])
    return GaussianChain(
        cov=cov,
        idx_a=list(range(dim)),
        idx_b=list(range(dim, 2 * dim)),
        idx_c=list(range(2 * dim, 3 * dim)),
        rho_ab=r1,
        rho_bc=r2,
    )


def gaussian_pair_sampler(mi: float, dim: int = 1) -> PairSampler:
    r"""Sampler of a Gaussian pair with known mutual information, for testing estimators.

    :math:`X\sim\mathcal N(0, I_d)`, :math:`Y = \rho X + \sqrt{1-\rho^2}\,\varepsilon` with
    :math:`\rho = \sqrt{1-e^{-2I/d}}` in every component, so :math:`I(X;Y) =` ``mi`` nats
    exactly and each :math:`Y_k` is standard normal (:math:`h(Y) = \tfrac d2\log 2\pi e`).

    Parameters
    ----------
    mi : float
        Total mutual information in nats (split evenly over the ``dim`` components).
    dim : int
        Dimension of :math:`X` and :math:`Y`.

    Returns
    -------
    callable
        ``sampler(n, generator) -> (x, y)``: float32 CPU tensors of shape ``[n, dim]``
        drawn with the given ``torch.Generator``.


    Used in: :ref:`ch-transitive`
    """
    dim = int(dim)
    if dim < 1:
        raise ValueError(f"dim must be >= 1; got {dim}")
    rho = float(correlation_from_mi(float(mi) / dim))
    noise = math.sqrt(1.0 - rho * rho)

    def sampler(n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.randn(int(n), dim, generator=generator)
        y = rho * x + noise * torch.randn(int(n), dim, generator=generator)
        return x, y

    return sampler
