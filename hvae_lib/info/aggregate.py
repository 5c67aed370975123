r"""Information of a Gaussian encoder on a finite dataset, with exact mixture marginals.

For a dataset :math:`x_1,\dots,x_N` (the empirical distribution, each image weighted
:math:`1/N`), labels :math:`u_n` and a diagonal-Gaussian encoder
:math:`q(z\mid x_n)=\mathcal N(\mu_n,\mathrm{diag}\,\sigma_n^2)`, the aggregate posteriors are
*finite mixtures* that can be evaluated exactly:

.. math::
    q(z) = \frac1N\sum_{m=1}^N q(z\mid x_m),\qquad
    q(z\mid u) = \frac1{N_u}\sum_{m:\,u_m=u} q(z\mid x_m).

The mutual informations of the joint :math:`q(x,z,u)=\tfrac1N\,q(z\mid x)\,[u=u(x)]` are then
expectations that only need Monte Carlo over :math:`z`:

.. math::
    I_q(X;Z) &= \mathbb E_{n}\,\mathbb E_{z\sim q(z|x_n)}\big[\log q(z\mid x_n) - \log q(z)\big],
    \\
    I_q(Z;U) &= \mathbb E_{n}\,\mathbb E_{z\sim q(z|x_n)}\big[\log q(z\mid u_n) - \log q(z)\big].

Both estimates are unbiased (the marginals are exact, only the outer expectation is sampled)
and both obey hard ceilings **sample by sample**: since :math:`q(z)\ge\frac1N q(z\mid x_n)`,
every term of the first is :math:`\le\ln N`; since :math:`q(z)\ge\frac{N_u}{N}q(z\mid u)`, every
term of the second is :math:`\le\ln(N/N_u)`, whose average is the empirical label entropy
:math:`H(U)\le\ln|U|`. (With :math:`c_n` exact copies of image :math:`x_n` in the dataset the
first ceiling tightens to :math:`\ln(N/c_n)`, whose average is the entropy of the empirical
image distribution.)

The mixture log-densities are computed in float64, with
:math:`\sum_d (z_d-\mu_{md})^2/\sigma_{md}^2` expanded into one matrix product, then a
log-sum-exp over the mixture: scoring all :math:`N^2` pairs of 6,144 images takes about half a
second per sample of :math:`z` on one CPU thread. The ceilings hold up to the rounding of this
expansion (about ``1e-9`` nats even for :math:`\sigma^2 = e^{-10}`).

Used in: :ref:`ch-transitive`
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from ..config import check_generator

__all__ = [
    "diag_gaussian_log_density_matrix",
    "mixture_log_density",
    "AggregateInformation",
    "aggregate_information",
]

_LOG_2PI = math.log(2.0 * math.pi)


def _as_float64(t: Tensor | np.ndarray, name: str) -> Tensor:
    out = torch.as_tensor(t).detach().to(device="cpu", dtype=torch.float64)
    if out.ndim != 2:
        raise ValueError(f"{name} must have shape [N, D]; got {tuple(out.shape)}")
    if not torch.isfinite(out).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return out


def _component_matrix(mu: Tensor, logvar: Tensor) -> Tensor:
    """``[2D + 1, M]`` matrix ``W`` with ``[z*z, z, 1] @ W = log N(z; mu_m, diag exp(logvar_m))``."""
    d = mu.shape[1]
    prec = torch.exp(-logvar)
    const = -0.5 * ((mu * mu * prec).sum(-1) + logvar.sum(-1) + d * _LOG_2PI)
    return torch.cat([-0.5 * prec, mu * prec, const[:, None]], 1).T.contiguous()


def _augment(z: Tensor) -> Tensor:
    return torch.cat([z * z, z, torch.ones(z.shape[0], 1, dtype=z.dtype, device=z.device)], 1)


def diag_gaussian_log_density_matrix(z: Tensor, mu: Tensor, logvar: Tensor) -> Tensor:
    r"""All pairwise log-densities :math:`\log\mathcal N(z_b;\mu_m,\mathrm{diag}\,e^{\mathrm{logvar}_m})`.

    .. math::
        \log\mathcal N(z;\mu,\sigma^2) = -\tfrac12\sum_d\Big[\log 2\pi + \log\sigma_d^2
        + \tfrac{z_d^2 - 2 z_d\mu_d + \mu_d^2}{\sigma_d^2}\Big],

    computed as one matrix product :math:`[z^2, z, 1]\,W` with a ``[2D + 1, M]`` matrix
    :math:`W` of the components.

    Parameters
    ----------
    z : Tensor, shape ``[B, D]``
        Points (use float64: the expansion cancels large terms when :math:`\sigma` is small).
    mu, logvar : Tensor, shape ``[M, D]``
        Parameters of ``M`` diagonal Gaussians.

    Returns
    -------
    Tensor, shape ``[B, M]``
        ``out[b, m] = log N(z_b; mu_m, diag exp(logvar_m))``.


    Used in: :ref:`ch-transitive`
    """
    if z.ndim != 2 or mu.ndim != 2 or mu.shape != logvar.shape or z.shape[1] != mu.shape[1]:
        raise ValueError(
            f"need z [B, D], mu and logvar [M, D]; got {tuple(z.shape)}, "
            f"{tuple(mu.shape)}, {tuple(logvar.shape)}"
        )
    return _augment(z) @ _component_matrix(mu, logvar)


class _Mixture:
    """A uniform mixture of diagonal Gaussians with its component matrix precomputed."""

    def __init__(self, mu: Tensor, logvar: Tensor, chunk_size: int) -> None:
        if mu.shape[0] < 1:
            raise ValueError("the mixture needs at least one component")
        self.m = int(mu.shape[0])
        self.chunks = [
            _component_matrix(mu[s : s + chunk_size], logvar[s : s + chunk_size])
            for s in range(0, self.m, int(chunk_size))
        ]

    def log_density(self, z: Tensor) -> Tensor:
        za = _augment(z)
        parts = [torch.logsumexp(za @ w, 1) for w in self.chunks]
        out = parts[0] if len(parts) == 1 else torch.logsumexp(torch.stack(parts, 1), 1)
        return out - math.log(self.m)


def mixture_log_density(z: Tensor, mu: Tensor, logvar: Tensor, *, chunk_size: int = 8192) -> Tensor:
    r"""Log-density of the uniform mixture :math:`\frac1M\sum_m\mathcal N(z;\mu_m,\mathrm{diag}\,\sigma_m^2)`.

    Parameters
    ----------
    z : Tensor, shape ``[B, D]``
    mu, logvar : Tensor, shape ``[M, D]``
        Mixture components (e.g. the encoder's posteriors of all ``M`` images).
    chunk_size : int
        Components processed at once (memory ``B × chunk_size``); chunks are combined
        with a log-sum-exp.

    Returns
    -------
    Tensor, shape ``[B]``
        :math:`\log q(z_b)` with :math:`q=\frac1M\sum_m q_m`, in the dtype of ``z``.


    Used in: :ref:`ch-transitive`
    """
    if z.ndim != 2 or mu.ndim != 2 or mu.shape != logvar.shape or z.shape[1] != mu.shape[1]:
        raise ValueError(
            f"need z [B, D], mu and logvar [M, D]; got {tuple(z.shape)}, "
            f"{tuple(mu.shape)}, {tuple(logvar.shape)}"
        )
    return _Mixture(mu.to(z.dtype), logvar.to(z.dtype), chunk_size).log_density(z)


@dataclass
class AggregateInformation:
    r"""Monte-Carlo terms of :func:`aggregate_information` (``N`` examples, ``S`` samples each).

    Attributes
    ----------
    log_q_z_given_x : numpy.ndarray, shape ``[N, S]``
        :math:`\log q(z_{ns}\mid x_n)` at :math:`z_{ns}\sim q(z\mid x_n)`.
    log_q_z : numpy.ndarray, shape ``[N, S]``
        :math:`\log q(z_{ns})`, the exact mixture over all ``N`` posteriors.
    log_q_z_given_u : numpy.ndarray, shape ``[N, S]``, or None
        :math:`\log q(z_{ns}\mid u_n)`, the mixture over the posteriors with label
        :math:`u_n` (``None`` without labels).
    label_counts : numpy.ndarray, shape ``[N]``, or None
        :math:`N_{u_n}`, the number of examples sharing example ``n``'s label.
    num_labels : int
        Number of distinct labels :math:`|U|` present (0 without labels).
    """

    log_q_z_given_x: np.ndarray
    log_q_z: np.ndarray
    log_q_z_given_u: np.ndarray | None = None
    label_counts: np.ndarray | None = None
    num_labels: int = 0

    @property
    def n(self) -> int:
        """Number of examples ``N``."""
        return int(self.log_q_z.shape[0])

    @staticmethod
    def _mean_se(per_sample: np.ndarray) -> tuple[float, float]:
        per_example = per_sample.mean(1)
        se = (
            float(per_example.std(ddof=1) / math.sqrt(len(per_example)))
            if len(per_example) > 1
            else 0.0
        )
        return float(per_example.mean()), se

    @property
    def pointwise_i_xz(self) -> np.ndarray:
        r"""``[N, S]``: :math:`\log q(z\mid x) - \log q(z)`, each :math:`\le\ln N`."""
        return self.log_q_z_given_x - self.log_q_z

    @property
    def pointwise_i_zu(self) -> np.ndarray:
        r"""``[N, S]``: :math:`\log q(z\mid u) - \log q(z)`, each :math:`\le\ln(N/N_u)`."""
        if self.log_q_z_given_u is None:
            raise ValueError("no labels were given, so I(Z;U) is not available")
        return self.log_q_z_given_u - self.log_q_z

    @property
    def i_xz(self) -> float:
        r""":math:`\hat I_q(X;Z)` in nats."""
        return self._mean_se(self.pointwise_i_xz)[0]

    @property
    def i_xz_se(self) -> float:
        """Monte-Carlo standard error of :attr:`i_xz` (across examples)."""
        return self._mean_se(self.pointwise_i_xz)[1]

    @property
    def i_zu(self) -> float:
        r""":math:`\hat I_q(Z;U)` in nats."""
        return self._mean_se(self.pointwise_i_zu)[0]

    @property
    def i_zu_se(self) -> float:
        """Monte-Carlo standard error of :attr:`i_zu`."""
        return self._mean_se(self.pointwise_i_zu)[1]

    @property
    def ceiling_xz(self) -> float:
        r""":math:`\ln N`, a hard ceiling of :attr:`i_xz`."""
        return math.log(self.n)

    @property
    def label_entropy(self) -> float:
        r"""Empirical :math:`H(U)=\frac1N\sum_n\ln(N/N_{u_n})`, a hard ceiling of :attr:`i_zu`."""
        if self.label_counts is None:
            raise ValueError("no labels were given")
        return float(np.mean(np.log(self.n / self.label_counts)))

    @property
    def ceiling_zu(self) -> float:
        r""":math:`\ln|U|\ge H(U)`, the label-alphabet ceiling of :attr:`i_zu`."""
        if self.label_counts is None:
            raise ValueError("no labels were given")
        return math.log(self.num_labels)

    def rate_gap(self, rate: np.ndarray | Tensor) -> tuple[float, float]:
        r"""Estimate of :math:`R - I_q(X;Z)` and its standard error, paired per example.

        For a standard VAE (``rate`` = :math:`\mathrm{KL}(q(z|x_n)\|\mathcal N(0,I))`, ``[N]``)
        this is :math:`\mathrm{KL}(q(z)\,\|\,p(z))\ge0`; for a conditional prior
        (``rate`` = :math:`\mathrm{KL}(q(z|x_n)\|p(z|u_n))`) it is
        :math:`\mathbb E_{q(u)}\mathrm{KL}(q(z|u)\|p(z|u)) - I_q(Z;U)` (T3).
        """
        r = np.asarray(torch.as_tensor(rate).detach().cpu(), dtype=np.float64).reshape(-1)
        if r.shape[0] != self.n:
            raise ValueError(f"rate must have one value per example ({self.n}); got {r.shape[0]}")
        return self._mean_se(r[:, None] - self.pointwise_i_xz)

    def t3_slack(self, rate: np.ndarray | Tensor) -> tuple[float, float]:
        r"""Estimate of :math:`R_u + I_q(Z;U) - I_q(X;Z)` and its standard error (paired).

        By T3 (our formalisation) this equals
        :math:`\mathbb E_{q(u)}\mathrm{KL}(q(z\mid u)\,\|\,p(z\mid u))\ge 0` when ``rate``
        ``[N]`` holds :math:`\mathrm{KL}(q(z\mid x_n)\,\|\,p(z\mid u_n))`. Per sample it is
        :math:`R_u(x_n) - \log q(z\mid x_n) + \log q(z\mid u_n)`.
        """
        r = np.asarray(torch.as_tensor(rate).detach().cpu(), dtype=np.float64).reshape(-1)
        if r.shape[0] != self.n:
            raise ValueError(f"rate must have one value per example ({self.n}); got {r.shape[0]}")
        return self._mean_se(r[:, None] - self.pointwise_i_xz + self.pointwise_i_zu)


@torch.no_grad()
def aggregate_information(
    mu: Tensor | np.ndarray,
    logvar: Tensor | np.ndarray,
    labels: Tensor | np.ndarray | None = None,
    *,
    num_samples: int = 4,
    batch_size: int = 512,
    chunk_size: int = 8192,
    generator: torch.Generator,
) -> AggregateInformation:
    r""":math:`I_q(X;Z)` and :math:`I_q(Z;U)` of a Gaussian encoder on a finite dataset.

    .. math::
        \hat I(X;Z) &= \frac1{NS}\sum_{n,s}\Big[\log q(z_{ns}\mid x_n)
          - \log\tfrac1N\sum_m q(z_{ns}\mid x_m)\Big], \\
        \hat I(Z;U) &= \frac1{NS}\sum_{n,s}\Big[\log\tfrac1{N_{u_n}}\sum_{m:u_m=u_n} q(z_{ns}\mid x_m)
          - \log\tfrac1N\sum_m q(z_{ns}\mid x_m)\Big]

    with :math:`z_{ns}\sim q(z\mid x_n)` (the same samples for both, so differences such as the
    T3 slack have small paired errors). Hard ceilings: :math:`\hat I(X;Z)\le\ln N` and
    :math:`\hat I(Z;U)\le H(U)\le\ln|U|`, sample by sample (see the module docstring).

    Parameters
    ----------
    mu, logvar : Tensor or array, shape ``[N, D]``
        Posterior parameters of every example of the dataset (e.g. ``model.encode(x)``).
    labels : Tensor or array of int, shape ``[N]``, optional
        Discrete label :math:`u_n` of every example (any integers); enables :math:`I(Z;U)`.
    num_samples : int
        Samples ``S`` of :math:`z` per example.
    batch_size : int
        Examples whose samples are scored at once (memory ``batch_size·S × chunk_size``).
    chunk_size : int
        Mixture components per chunk (see :func:`mixture_log_density`).
    generator : torch.Generator
        Draws the samples of :math:`z`, batch after batch (on the generator's device, e.g. the
        one that evaluated the encoder; the samples are then moved to the CPU).

    Returns
    -------
    AggregateInformation
        Per-sample log-densities with ``i_xz``, ``i_zu`` (nats), standard errors, ceilings
        and the paired :meth:`~AggregateInformation.t3_slack`.


    Used in: :ref:`ch-transitive`
    """
    check_generator(generator)
    mu64, lv64 = _as_float64(mu, "mu"), _as_float64(logvar, "logvar")
    if mu64.shape != lv64.shape:
        raise ValueError(f"mu {tuple(mu64.shape)} and logvar {tuple(lv64.shape)} differ")
    n, d = mu64.shape
    if n < 2:
        raise ValueError(f"need at least 2 examples, got {n}")
    if int(num_samples) < 1 or int(batch_size) < 1:
        raise ValueError("num_samples and batch_size must be positive")
    s = int(num_samples)
    groups: list[Tensor] = []
    group_mix: list[_Mixture] = []
    inverse = None
    counts_np = None
    if labels is not None:
        lab = torch.as_tensor(np.asarray(labels)).reshape(-1)
        if lab.shape[0] != n or lab.dtype.is_floating_point:
            raise ValueError(
                f"labels must be {n} integers, got shape {tuple(lab.shape)} dtype {lab.dtype}"
            )
        values, inverse, counts = torch.unique(lab, return_inverse=True, return_counts=True)
        groups = [torch.nonzero(inverse == k).squeeze(1) for k in range(len(values))]
        group_mix = [_Mixture(mu64[g], lv64[g], chunk_size) for g in groups]
        counts_np = counts[inverse].numpy().astype(np.float64)
    full = _Mixture(mu64, lv64, chunk_size)
    std = torch.exp(0.5 * lv64)
    lq_x, lq, lq_u = [], [], []
    for start in range(0, n, int(batch_size)):
        sl = slice(start, min(start + int(batch_size), n))
        m_b, s_b = mu64[sl], std[sl]
        b = m_b.shape[0]
        eps = torch.randn(
            (b, s, d), generator=generator, dtype=torch.float64, device=generator.device
        ).cpu()
        z = (m_b[:, None, :] + s_b[:, None, :] * eps).reshape(b * s, d)
        # log q(z|x_n) at its own sample: -1/2 sum (eps^2 + log 2 pi + logvar)
        lq_x.append((-0.5 * (eps.pow(2) + _LOG_2PI + lv64[sl][:, None, :])).sum(-1))
        lq.append(full.log_density(z).reshape(b, s))
        if inverse is not None:
            own = inverse[sl]
            out = torch.empty(b, s, dtype=torch.float64)
            zb = z.reshape(b, s, d)
            for k in torch.unique(own).tolist():
                rows = torch.nonzero(own == k).squeeze(1)
                out[rows] = group_mix[k].log_density(zb[rows].reshape(-1, d)).reshape(len(rows), s)
            lq_u.append(out)
    return AggregateInformation(
        log_q_z_given_x=torch.cat(lq_x).numpy(),
        log_q_z=torch.cat(lq).numpy(),
        log_q_z_given_u=torch.cat(lq_u).numpy() if inverse is not None else None,
        label_counts=counts_np,
        num_labels=len(groups),
    )
