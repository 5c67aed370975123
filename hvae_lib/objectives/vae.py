r"""Losses of the β-VAE and the conditional-prior VAE: :math:`\mathbb E[D + \beta R]` for
:func:`hvae_lib.train.train` / :func:`hvae_lib.train.fit`.

The models (:class:`hvae_lib.models.BetaVAE`, :class:`hvae_lib.models.ConditionalPriorVAE`)
return the per-example distortion and rate; these functions weight them with β.

Used in: :ref:`ch-rate-distortion`, :ref:`ch-transitive`, :ref:`ch-semafovae`.
"""

from __future__ import annotations

import math

import torch

from ..models.conditional_prior import ConditionalPriorVAE, unpack_images_labels
from ..models.vae import BetaVAE, VAEOutput
from .base import LossFn

__all__ = ["vae_loss", "conditional_prior_loss"]


def _check_beta(beta: float) -> None:
    if not (beta >= 0 and math.isfinite(beta)):
        raise ValueError(f"beta must be a finite non-negative number, got {beta}")


def _weighted_loss_and_logs(
    out: VAEOutput, beta: float
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """``(loss, logs)`` of a model output: the scalar ``E[D + beta R]`` and the detached batch
    means of ``loss``, ``distortion`` and ``rate`` (nats)."""
    loss = out.loss(beta)
    logs = {
        "loss": loss.detach(),
        "distortion": out.distortion.mean().detach(),
        "rate": out.rate.mean().detach(),
    }
    return loss, logs


def vae_loss(beta: float = 1.0) -> LossFn:
    """The β-VAE loss for :func:`hvae_lib.train.train`: ``(model, x, *, step, generator) -> (loss, logs)``.

    ``loss`` is the scalar :math:`\\mathbb E[D + \\beta R]` at one reparameterised sample drawn
    from ``generator``; ``logs`` holds the batch means of ``loss``, ``distortion`` and ``rate``
    (nats). ``step`` is not used (no schedule).

    Used in: :ref:`ch-rate-distortion`
    """
    _check_beta(beta)

    def loss_fn(
        model: BetaVAE, x: torch.Tensor, *, step: int = 0, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        out = model(x, generator)
        return _weighted_loss_and_logs(out, beta)

    return loss_fn


def conditional_prior_loss(beta: float = 1.0) -> LossFn:
    r"""Loss for :func:`hvae_lib.train.train` on packed batches: :math:`\mathbb E[D + \beta R_u]`.

    ``(model, batch [B, C*H*W + K], *, step, generator) -> (loss, logs)``; ``logs`` holds the
    batch means of ``loss``, ``distortion`` and ``rate`` (nats), like
    :func:`hvae_lib.objectives.vae_loss`.

    Used in: :ref:`ch-transitive`
    """
    _check_beta(beta)

    def loss_fn(
        model: ConditionalPriorVAE,
        batch: torch.Tensor,
        *,
        step: int = 0,
        generator: torch.Generator | None = None,
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        x, u = unpack_images_labels(batch, model.config.vae.input_shape)
        out = model(x, u, generator)
        return _weighted_loss_and_logs(out, beta)

    return loss_fn
