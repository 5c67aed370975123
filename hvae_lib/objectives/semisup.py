r"""Semi-supervised losses on the one training loop: SemafoVAE / SemafoHVAE, M2 and the label VAE.

A semi-supervised batch is ``(x_l, y_l, x_u)``: labelled images ``[Bs, C, H, W]``, their factor
indices ``[Bs, K]`` and unlabelled images ``[Bu, C, H, W]`` (or ``None``), as drawn by
:class:`hvae_lib.train.LabelledUnlabelledBatches`. The loss is
:math:`-\overline{\mathcal L_{\text{sup}}}-\overline{\mathcal L_{\text{uns}}}`, each part averaged
over its own sub-batch; during the warm-up (global step ``< warmup_steps``) only the labelled
part. The warm-up is a pure function of the step, so a resumed run continues it exactly.

Used in: :ref:`ch-semafovae`
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..distributions import gaussian_kl, one_hot_accuracy, reparameterise, soft_log_likelihood
from .m2 import M2LossConfig, m2_loss
from .semafo import SemafoLossConfig, semafo_loss

__all__ = ["SemiSupervisedLoss", "LabelVAELoss"]


class SemiSupervisedLoss:
    """``(model, (x_l, y_l, x_u), *, step, generator) -> (loss, logs)`` for :func:`hvae_lib.train.train`.

    ``config`` is a :class:`~hvae_lib.objectives.SemafoLossConfig` (SemafoVAE, SemafoHVAE:
    :func:`~hvae_lib.objectives.semafo_loss`) or a :class:`~hvae_lib.objectives.M2LossConfig`
    (M2: :func:`~hvae_lib.objectives.m2_loss`); the first ``config.warmup_steps`` global steps
    train the labelled objective alone.

    Raises
    ------
    ValueError
        For any other ``config`` (the message names the two valid types).

    Used in: :ref:`ch-semafovae`
    """

    def __init__(self, config: SemafoLossConfig | M2LossConfig) -> None:
        if isinstance(config, SemafoLossConfig):
            self.loss = semafo_loss
        elif isinstance(config, M2LossConfig):
            self.loss = m2_loss
        else:
            raise ValueError(
                f"loss_config must be a SemafoLossConfig or M2LossConfig, got {type(config).__name__}"
            )
        self.config = config
        self.warmup_steps = int(getattr(config, "warmup_steps", 0))

    def __call__(
        self,
        model: nn.Module,
        batch: tuple[torch.Tensor, torch.Tensor, torch.Tensor | None],
        *,
        step: int = 0,
        generator: torch.Generator | None = None,
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        x_l, y_l, x_u = batch
        return self.loss(
            model,
            x_l,
            y_l,
            x_u,
            self.config,
            supervised_only=int(step) < self.warmup_steps,
            generator=generator,
        )


class LabelVAELoss:
    r"""The label VAE :math:`y\leftrightarrow u` of a SemafoVAE alone (step 1 of :ref:`ch-semafovae`).

    ``(model, y [B, K] factor indices, *, step, generator) -> (loss, logs)`` with the loss
    :math:`-\frac1B\sum_b\big[\gamma_y\log p(y_b\mid u_b) - \mathrm{KL}(q(u\mid y_b)\,\|\,\mathcal N(0,I))\big]`,
    :math:`u_b\sim q(u\mid y_b)` reparameterised with ``generator``: the label terms of the
    labelled objective. Only :math:`q(u\mid y)` and :math:`p(y\mid u)` receive gradients.
    ``gamma_y=10`` is the authors' weight [SF: ``DefaultGammaPy``] (lines of trungnt13/odin-ai
    ``examples/vae/semafo_final.py`` at commit ``9c6986a``); ``gamma_y=1`` is the label VAE's own
    ELBO of :math:`\log p(y)`, which can ignore :math:`u` when the factors are independent
    (then :math:`p(y)` needs no latent, and encoding :math:`y` costs as many nats as it saves).
    ``logs``: ``loss``, ``objective``, ``log_py_u``, ``kl_u`` and ``acc_py`` (mean per-factor
    accuracy of :math:`\arg\max p(y\mid u)`).

    Used in: :ref:`ch-semafovae`
    """

    def __init__(self, gamma_y: float = 10.0) -> None:
        if not (gamma_y >= 0 and math.isfinite(gamma_y)):
            raise ValueError(f"gamma_y must be a finite number >= 0, got {gamma_y}")
        self.gamma_y = float(gamma_y)

    def __call__(
        self,
        model: nn.Module,
        y: torch.Tensor,
        *,
        step: int = 0,
        generator: torch.Generator | None = None,
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        y1 = model.as_one_hot(y)
        mu, lv = model.encode_u(y1)
        u = reparameterise(mu, lv, generator)
        logits = model.py_logits(u)
        log_py = soft_log_likelihood(logits, y1, model.factor_sizes)
        kl = gaussian_kl(mu, lv).sum(-1)
        objective = (self.gamma_y * log_py - kl).mean()
        logs = {
            "loss": -objective.detach(),
            "objective": objective.detach(),
            "log_py_u": log_py.detach().mean(),
            "kl_u": kl.detach().mean(),
            "acc_py": one_hot_accuracy(logits.detach(), y1, model.factor_sizes),
        }
        return -objective, logs
