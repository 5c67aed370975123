r"""The rate-splitting loss: one β per layer and the linear KL warm-up.

:class:`hvae_lib.models.HierarchicalVAE` returns the distortion and the per-layer rates
:math:`R(z_l\mid z_{>l})`; :class:`HierarchicalLoss` weights them,
:math:`D + w(s)\sum_l\beta_l R_l`, with the warm-up :func:`kl_warmup` a pure function of the step.

Used in: :ref:`ch-rate-splitting`
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from ..models.hierarchical import HierarchicalVAE

__all__ = [
    "check_betas",
    "kl_warmup",
    "HierarchicalLoss",
    "hierarchical_loss",
    "betas_from_authors",
]


def check_betas(betas: Sequence[float], num_layers: int | None = None) -> tuple[float, ...]:
    """Validate rate weights: positive, finite, and ``num_layers`` of them when given.

    Raises
    ------
    ValueError
        For a non-positive or non-finite β or the wrong count.

    Used in: :ref:`ch-rate-splitting`
    """
    try:
        out = tuple(float(b) for b in betas)
    except TypeError as exc:
        raise ValueError(
            f"betas must be a sequence of numbers (beta1, ..., betaL), got {betas!r}"
        ) from exc
    if len(out) < 2:
        raise ValueError(f"need one beta per layer (L >= 2), got {out}")
    if num_layers is not None and len(out) != num_layers:
        raise ValueError(
            f"need {num_layers} betas (one per layer, bottom-up), got {len(out)}: {out}"
        )
    for b in out:
        if not (b > 0 and math.isfinite(b)):
            raise ValueError(f"every beta must be positive and finite, got {out}")
    return out


def kl_warmup(step: int, warmup_steps: int) -> float:
    r"""Linear KL warm-up factor multiplying every β at (0-based) optimiser step ``step``.

    .. math:: w(s) = \min\big(1, (s + 1)/S_{\rm warm}\big),\qquad w \equiv 1 \text{ if } S_{\rm warm}=0.

    Starts at :math:`1/S_{\rm warm}` (never at 0: the authors' LVAE schedule trains its first
    step with weight 0 even when warm-up is switched off). The authors warm up over the
    first fifth of training (stepped per epoch) for the ladder variant only.

    Used in: :ref:`ch-rate-splitting`
    """
    if int(warmup_steps) < 0 or int(step) < 0:
        raise ValueError(f"step and warmup_steps must be non-negative, got {step}, {warmup_steps}")
    if int(warmup_steps) == 0:
        return 1.0
    return min(1.0, (int(step) + 1) / int(warmup_steps))


class HierarchicalLoss:
    r"""The rate-splitting loss for :func:`hvae_lib.train.train`: ``(model, x, *, step, generator) -> (loss, logs)``.

    ``loss`` is the scalar batch mean of :math:`D + w(s)\sum_l \beta_l R_l` with the warm-up
    factor :math:`w(s)` of :func:`kl_warmup` at the global step ``s`` (a pure function of the
    step, so a resumed run continues the schedule where it stopped; no warm-up by default).
    ``logs`` holds batch means of ``loss``, ``distortion``, ``rate`` (total) and
    ``rate_1 ... rate_L`` (nats).

    Used in: :ref:`ch-rate-splitting`
    """

    def __init__(self, betas: Sequence[float], warmup_steps: int = 0) -> None:
        self.betas = check_betas(betas)
        if int(warmup_steps) < 0:
            raise ValueError(f"warmup_steps must be non-negative, got {warmup_steps}")
        self.warmup_steps = int(warmup_steps)

    def __call__(
        self,
        model: HierarchicalVAE,
        x: torch.Tensor,
        *,
        step: int = 0,
        generator: torch.Generator | None = None,
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        check_betas(self.betas, model.num_layers)
        w = kl_warmup(step, self.warmup_steps)
        out = model(x, generator)
        b = torch.tensor(self.betas, dtype=out.rates.dtype, device=out.rates.device)
        if w != 1.0:
            b = b * w
        loss = out.loss(b)
        logs = {
            "loss": loss.detach(),
            "distortion": out.distortion.mean().detach(),
            "rate": out.rate.mean().detach(),
        }
        for l in range(model.num_layers):
            logs[f"rate_{l + 1}"] = out.rates[:, l].mean().detach()
        return loss, logs


def hierarchical_loss(betas: Sequence[float], *, warmup_steps: int = 0) -> HierarchicalLoss:
    """The rate-splitting loss :math:`\\mathbb E[D + \\sum_l \\beta_l R_l]` for ``train``/``fit``.

    ``betas = (beta1, ..., betaL)`` bottom-up: ``beta1`` weights :math:`R(z_1\\mid z_2)`,
    ``beta2`` weights :math:`R(z_2)` (for L = 2). ``betas = (1, ..., 1)`` is the negative ELBO,
    equal β's the β-VAE. See :class:`HierarchicalLoss`.

    Raises
    ------
    ValueError
        β ≤ 0 or non-finite; the wrong number of β's is reported at the first call.

    Used in: :ref:`ch-rate-splitting`
    """
    return HierarchicalLoss(betas, warmup_steps=warmup_steps)


def betas_from_authors(beta_y: float, beta_z: float) -> tuple[float, float]:
    """Convert the authors' flags ``--beta_y``, ``--beta_z`` to ``(beta1, beta2)``.

    Their ``y`` is our :math:`z_1` and their ``z`` our :math:`z_2`, so
    ``(beta1, beta2) = (beta_y, beta_z)``.

    Used in: :ref:`ch-rate-splitting`
    """
    return check_betas((beta_y, beta_z), 2)  # type: ignore[return-value]
