r"""Pieces of the (β-)ELBO, each returned per example.

All quantities are in **nats** and summed over data or latent dimensions, so that for a VAE

.. math::
    \mathrm{ELBO}(x) = -\big(D(x) + R(x)\big),\qquad
    D(x) = \mathbb{E}_{q(z\mid x)}[-\log p(x\mid z)],\qquad
    R(x) = \mathrm{KL}\big(q(z\mid x)\,\|\,p(z)\big),

and the β-VAE loss is :math:`\mathbb{E}_x[D(x) + \beta R(x)]`.

Used in: book/01_rate_distortion.ipynb (and the later model chapters).
"""
from __future__ import annotations

import torch
from torch.distributions import Bernoulli, Independent, Normal, kl_divergence

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


def gaussian_kl(mu_q: torch.Tensor, logvar_q: torch.Tensor,
                mu_p: torch.Tensor | None = None, logvar_p: torch.Tensor | None = None) -> torch.Tensor:
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
    return 0.5 * (logvar_p - logvar_q + (torch.exp(logvar_q) + (mu_q - mu_p) ** 2)
                  * torch.exp(-logvar_p) - 1.0)


def rate(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    r"""Per-example rate :math:`R(x)=\mathrm{KL}(q(z|x)\,\|\,\mathcal N(0,I))`: ``[B, D] -> [B]``.

    Computed with ``torch.distributions.kl_divergence`` (closed form for Normal pairs).
    """
    q = diag_gaussian(mu, logvar)
    return kl_divergence(q, standard_normal_like(mu))


def distortion(x: torch.Tensor, decoder_out: torch.Tensor, likelihood: str = "bernoulli",
               sigma: float = 1.0) -> torch.Tensor:
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
    n_event = x.dim() - 1
    if likelihood == "bernoulli":
        dist = Independent(Bernoulli(logits=decoder_out, validate_args=False), n_event)
    elif likelihood == "gaussian":
        if not sigma > 0:
            raise ValueError(f"sigma must be positive, got {sigma}")
        dist = Independent(Normal(decoder_out, torch.full_like(decoder_out, float(sigma))), n_event)
    else:
        raise ValueError(f"unknown likelihood {likelihood!r}; valid: {', '.join(LIKELIHOODS)}")
    return -dist.log_prob(x)


def reparameterise(mu: torch.Tensor, logvar: torch.Tensor,
                   generator: torch.Generator | None = None) -> torch.Tensor:
    r""":math:`z = \mu + \sigma\odot\varepsilon`, :math:`\varepsilon\sim\mathcal N(0,I)`; ``[B, D]``."""
    eps = torch.randn(mu.shape, dtype=mu.dtype, device=mu.device, generator=generator)
    return mu + torch.exp(0.5 * logvar) * eps
