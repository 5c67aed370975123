r"""Losses of the β-VAE and the conditional-prior VAE: :math:`\mathbb E[D + \beta R]` for
:func:`hvae_lib.train.train` / :func:`hvae_lib.train.fit`.

The models (:class:`hvae_lib.models.BetaVAE`, :class:`hvae_lib.models.ConditionalPriorVAE`)
return the per-example distortion and rate; these functions weight them with β.

Used in: book/01_rate_distortion.md, book/02_transitive_information.md, book/04_semafovae.md.
"""
from __future__ import annotations

import math

import torch

from ..models.conditional_prior import ConditionalPriorVAE, unpack_images_labels
from ..models.vae import BetaVAE

__all__ = ["vae_loss", "conditional_prior_loss"]


def vae_loss(beta: float = 1.0):
    """Loss function for :func:`hvae_lib.train.train`: ``(model, x) -> (loss, logs)``.

    ``loss`` is the scalar :math:`\\mathbb E[D + \\beta R]`; ``logs`` holds the batch means of
    ``loss``, ``distortion``, ``rate`` and ``elbo`` (floats, nats).
    """
    if not (beta >= 0 and math.isfinite(beta)):
        raise ValueError(f"beta must be a finite non-negative number, got {beta}")

    def loss_fn(model: BetaVAE, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        out = model(x)
        loss = out.loss(beta)
        logs = {"loss": loss.detach(), "distortion": out.distortion.mean().detach(),
                "rate": out.rate.mean().detach()}
        return loss, logs

    return loss_fn


def conditional_prior_loss(beta: float = 1.0):
    r"""Loss for :func:`hvae_lib.train.train` on packed batches: :math:`\mathbb E[D + \beta R_u]`.

    ``(model, batch [B, C*H*W + K]) -> (loss, logs)``; ``logs`` holds the batch means of
    ``loss``, ``distortion`` and ``rate`` (nats), like :func:`hvae_lib.objectives.vae_loss`.

    Used in: book/02_transitive_information.md
    """
    if not (beta >= 0 and math.isfinite(beta)):
        raise ValueError(f"beta must be a finite non-negative number, got {beta}")

    def loss_fn(model: ConditionalPriorVAE, batch: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        x, u = unpack_images_labels(batch, model.config.vae.input_shape)
        out = model(x, u)
        loss = out.loss(beta)
        logs = {"loss": loss.detach(), "distortion": out.distortion.mean().detach(),
                "rate": out.rate.mean().detach()}
        return loss, logs

    return loss_fn
