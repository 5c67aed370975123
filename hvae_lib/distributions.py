r"""Distributions and their terms: pieces of the (β-)ELBO per example, and one-hot labels.

All quantities are in **nats** and summed over data or latent dimensions, so that for a VAE

.. math::
    \mathrm{ELBO}(x) &= -\big(D(x) + R(x)\big),\\
    D(x) &= \mathbb{E}_{q(z\mid x)}[-\log p(x\mid z)],\\
    R(x) &= \mathrm{KL}\big(q(z\mid x)\,\|\,p(z)\big),

and the β-VAE loss is :math:`\mathbb{E}_x[D(x) + \beta R(x)]`.

Also the per-factor (relaxed) one-hot label helpers of SemafoVAE and M2: :func:`relaxed_one_hot`,
:func:`split_blocks`, :func:`soft_log_likelihood`, :func:`categorical_entropy`,
:func:`concrete_log_prob`, :func:`one_hot_accuracy`. [SF:L…] are lines of
``examples/vae/semafo_final.py`` in the SemafoVAE authors' repository trungnt13/odin-ai at
commit ``9c6986a``.

Used in: :ref:`ch-rate-distortion` (and the later model chapters), :ref:`ch-semafovae`.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch.distributions import (
    Bernoulli,
    Independent,
    Normal,
    RelaxedOneHotCategorical,
    kl_divergence,
)

LIKELIHOODS: tuple[str, ...] = ("bernoulli", "gaussian")


def diag_gaussian(mu: torch.Tensor, logvar: torch.Tensor) -> Independent:
    """A diagonal Gaussian over the last dimension: ``N(mu, diag(exp(logvar)))``.

    ``mu``, ``logvar``: ``[B, D]`` -> a distribution with batch shape ``[B]``, event ``[D]``.
    """
    return Independent(Normal(mu, torch.exp(0.5 * logvar)), 1)


def standard_normal_like(mu: torch.Tensor) -> Independent:
    """The prior ``N(0, I)`` with the shape, dtype and device of ``mu`` ``[B, D]``."""
    zeros = torch.zeros_like(mu)
    return Independent(Normal(zeros, torch.ones_like(mu)), 1)


def gaussian_kl(
    mu_q: torch.Tensor,
    logvar_q: torch.Tensor,
    mu_p: torch.Tensor | None = None,
    logvar_p: torch.Tensor | None = None,
) -> torch.Tensor:
    r"""Analytic KL between diagonal Gaussians, per dimension.

    .. math::
        \mathrm{KL}(\mathcal N(\mu_q,\sigma_q^2)\,\|\,\mathcal N(\mu_p,\sigma_p^2))
        = \tfrac12\Big(\log\tfrac{\sigma_p^2}{\sigma_q^2}
          + \tfrac{\sigma_q^2 + (\mu_q-\mu_p)^2}{\sigma_p^2} - 1\Big)

    With ``mu_p = logvar_p = None`` the prior is ``N(0, 1)``. Shapes broadcast; the result has
    the broadcast shape (sum over the last dimension for the rate of a vector latent).
    """
    if mu_p is None:
        mu_p = torch.zeros_like(mu_q)
    if logvar_p is None:
        logvar_p = torch.zeros_like(logvar_q)
    return 0.5 * (
        logvar_p
        - logvar_q
        + (torch.exp(logvar_q) + (mu_q - mu_p) ** 2) * torch.exp(-logvar_p)
        - 1.0
    )


def rate(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    r"""Per-example rate :math:`R(x)=\mathrm{KL}(q(z|x)\,\|\,\mathcal N(0,I))`: ``[B, D] -> [B]``.

    Computed with ``torch.distributions.kl_divergence`` (closed form for Normal pairs).
    """
    q = diag_gaussian(mu, logvar)
    return kl_divergence(q, standard_normal_like(mu))


def distortion(
    x: torch.Tensor, decoder_out: torch.Tensor, likelihood: str = "bernoulli", sigma: float = 1.0
) -> torch.Tensor:
    r"""Per-example distortion :math:`-\log p(x\mid z)` in nats: ``[B, ...] -> [B]``.

    Parameters
    ----------
    x : data ``[B, ...]`` (in ``[0, 1]`` for Bernoulli; a non-binary ``x`` gives the
        continuous-Bernoulli-free cross-entropy, which is the usual practice for grey images).
    decoder_out : logits (Bernoulli) or means (Gaussian), same shape as ``x``.
    likelihood : ``"bernoulli"`` or ``"gaussian"`` (fixed ``sigma``).
    sigma : the Gaussian likelihood's standard deviation.
    """
    if x.shape != decoder_out.shape:
        raise ValueError(f"x {tuple(x.shape)} and decoder output {tuple(decoder_out.shape)} differ")
    num_event = x.dim() - 1
    if likelihood == "bernoulli":
        dist = Independent(Bernoulli(logits=decoder_out, validate_args=False), num_event)
    elif likelihood == "gaussian":
        if not sigma > 0:
            raise ValueError(f"sigma must be positive, got {sigma}")
        dist = Independent(
            Normal(decoder_out, torch.full_like(decoder_out, float(sigma))), num_event
        )
    else:
        raise ValueError(f"unknown likelihood {likelihood!r}; valid: {', '.join(LIKELIHOODS)}")
    return -dist.log_prob(x)


def reparameterise(
    mu: torch.Tensor, logvar: torch.Tensor, generator: torch.Generator | None = None
) -> torch.Tensor:
    r""":math:`z = \mu + \sigma\odot\varepsilon`, :math:`\varepsilon\sim\mathcal N(0,I)`; ``[B, D]``."""
    eps = torch.randn(mu.shape, dtype=mu.dtype, device=mu.device, generator=generator)
    return mu + torch.exp(0.5 * logvar) * eps


# ----------------------------------------------------------------------------- one-hot labels
def split_blocks(t: torch.Tensor, sizes: tuple[int, ...]) -> tuple[torch.Tensor, ...]:
    """Split the last dimension into the per-factor blocks of sizes ``sizes``."""
    return torch.split(t, list(sizes), dim=-1)


def relaxed_one_hot(
    logits: torch.Tensor,
    factor_sizes: tuple[int, ...],
    temperature: float,
    generator: torch.Generator | None = None,
    hard: bool = False,
) -> torch.Tensor:
    r"""A Gumbel-softmax (Concrete) sample per factor block, reparameterised.

    .. math::
        \tilde y_f=\mathrm{softmax}\big((\ell_f+g_f)/\tau\big),\qquad
        g_{fk}=-\log(-\log U_{fk}),\ U\sim\mathcal U(0,1)

    Parameters
    ----------
    logits : ``[B, d_y]`` concatenated per-factor logits.
    factor_sizes : block sizes :math:`K_f` (sum ``d_y``).
    temperature : :math:`\tau>0` (authors 0.5).
    generator : seeded ``torch.Generator`` for the Gumbel noise.
    hard : straight-through: the forward value is the one-hot argmax, the gradient the relaxed one's.

    Returns
    -------
    ``[B, d_y]`` with each block on the simplex.


    Used in: :ref:`ch-semafovae`
    """
    if not temperature > 0:
        raise ValueError(f"temperature (tau) must be positive, got {temperature}")
    u = torch.rand(logits.shape, generator=generator, dtype=logits.dtype, device=logits.device)
    g = -torch.log(-torch.log(u.clamp(1e-10, 1.0 - 1e-7)))
    blocks = [
        torch.softmax((lb + gb) / temperature, dim=-1)
        for lb, gb in zip(split_blocks(logits, factor_sizes), split_blocks(g, factor_sizes))
    ]
    y = torch.cat(blocks, dim=-1)
    if hard:
        idx = [b.argmax(-1) for b in blocks]
        y_hard = torch.cat([F.one_hot(i, k).to(y.dtype) for i, k in zip(idx, factor_sizes)], dim=-1)
        y = y_hard + (y - y.detach())  # exact one-hot forward, relaxed gradient
    return y


def soft_log_likelihood(
    logits: torch.Tensor, target: torch.Tensor, sizes: tuple[int, ...]
) -> torch.Tensor:
    """``sum_f sum_k target_fk log softmax_fk(logits)``: ``[B, d_y] x [B, d_y] -> [B]``."""
    return sum(
        (tb * torch.log_softmax(lb, dim=-1)).sum(-1)
        for lb, tb in zip(split_blocks(logits, sizes), split_blocks(target, sizes))
    )  # type: ignore[return-value]


def categorical_entropy(logits: torch.Tensor, sizes: tuple[int, ...]) -> torch.Tensor:
    """``sum_f H[softmax(logits_f)]``: ``[B, d_y] -> [B]``."""
    out = 0.0
    for lb in split_blocks(logits, sizes):
        lp = torch.log_softmax(lb, dim=-1)
        out = out - (lp.exp() * lp).sum(-1)
    return out  # type: ignore[return-value]


def concrete_log_prob(
    logits: torch.Tensor, value: torch.Tensor, sizes: tuple[int, ...], tau: float
) -> torch.Tensor:
    """``sum_f log Concrete_tau(value_f; logits_f)`` (value clipped to [1e-6, 1-1e-6] as [SF:L188–193])."""
    value = value.clamp(1e-6, 1.0 - 1e-6)
    temp = torch.tensor(float(tau), dtype=logits.dtype, device=logits.device)
    return sum(
        RelaxedOneHotCategorical(temp, logits=lb, validate_args=False).log_prob(vb)
        for lb, vb in zip(split_blocks(logits, sizes), split_blocks(value, sizes))
    )  # type: ignore[return-value]


def diag_log_prob(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """``log N(z; mu, diag(exp(logvar)))`` summed over all but the batch dimension: ``[B, ...] -> [B]``."""
    return -0.5 * (((z - mu) ** 2) * torch.exp(-logvar) + logvar + math.log(2 * math.pi)).flatten(
        1
    ).sum(-1)


def one_hot_accuracy(
    logits: torch.Tensor, y_onehot: torch.Tensor, sizes: tuple[int, ...]
) -> torch.Tensor:
    """Mean over factors of the accuracy of the per-block argmax of ``logits`` against ``y_onehot``."""
    accs = [
        (lb.argmax(-1) == tb.argmax(-1)).float().mean()
        for lb, tb in zip(split_blocks(logits, sizes), split_blocks(y_onehot, sizes))
    ]
    return torch.stack(accs).mean()
