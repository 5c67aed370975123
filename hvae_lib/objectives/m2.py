r"""The M2 objectives (Kingma et al. 2014): coefficients and losses of the semi-supervised baseline.

:class:`hvae_lib.models.M2VAE` returns the terms (:class:`~hvae_lib.models.M2Output`);
:func:`m2_labelled_objective` / :func:`m2_unlabelled_objective` weight them with an
:class:`M2LossConfig` and :func:`m2_loss` is the scalar training loss.

Used in: book/04_semafovae.md
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..config import ConfigBase
from ..distributions import one_hot_accuracy
from ..models.m2 import M2Output, M2VAE

__all__ = ["M2LossConfig", "m2_labelled_objective", "m2_unlabelled_objective", "m2_loss"]


@dataclass(frozen=True)
class M2LossConfig(ConfigBase):
    """Coefficients of the M2 objectives.

    Attributes
    ----------
    alpha : weight of :math:`\\log q(y|x)` on labelled data (Kingma et al. use :math:`0.1N`; we
        use 10, SemafoVAE's :math:`\\gamma_y` [ours]).
    beta : weight of :math:`\\mathrm{KL}(q(z|x,y)\\|p(z))` (1 = the ELBO).
    warmup_steps : supervised-only steps (as SemafoVAE, for an equal schedule).
    hard : straight-through one-hot pseudo-labels.

    Used in: book/04_semafovae.md
    """

    alpha: float = 10.0
    beta: float = 1.0
    warmup_steps: int = 800
    hard: bool = False

    def __post_init__(self) -> None:
        for name in ("alpha", "beta"):
            v = getattr(self, name)
            if not (v >= 0 and math.isfinite(v)):
                raise ValueError(f"{name} must be finite and >= 0, got {v}")
        if int(self.warmup_steps) < 0:
            raise ValueError(f"warmup_steps must be >= 0, got {self.warmup_steps}")


def m2_labelled_objective(out: M2Output, cfg: M2LossConfig) -> torch.Tensor:
    r""":math:`\log p(x|y,z)+\log p(y)-\beta\mathrm{KL}_z+\alpha\log q(y|x)`, ``[B]``.

    Used in: book/04_semafovae.md
    """
    return out.log_px + out.log_py - cfg.beta * out.kl_z + cfg.alpha * out.log_qy_x


def m2_unlabelled_objective(out: M2Output, cfg: M2LossConfig) -> torch.Tensor:
    r""":math:`\log p(x|\tilde y,z)+\log p(\tilde y)-\beta\mathrm{KL}_z+H[q(y|x)]`, ``[B]``.

    Used in: book/04_semafovae.md
    """
    return out.log_px + out.log_py - cfg.beta * out.kl_z + out.entropy_qy


def m2_loss(model: M2VAE, x_l: torch.Tensor, y_l: torch.Tensor, x_u: torch.Tensor | None, cfg: M2LossConfig, *,
            supervised_only: bool = False,
            generator: torch.Generator | None = None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Scalar loss :math:`-\\overline{\\mathcal L}-\\overline{\\mathcal U}` and logged term means
    (``sup/…``, ``uns/…``, ``sup/acc_qy``), as :func:`~hvae_lib.objectives.semafo_loss`.

    Used in: book/04_semafovae.md
    """
    logs: dict[str, torch.Tensor] = {}
    loss = x_l.new_zeros(())
    if x_l.shape[0] > 0:
        o = model(x_l, y_l, generator=generator, loss_config=cfg)
        obj = m2_labelled_objective(o, cfg).mean()
        loss = loss - obj
        logs["sup/objective"] = obj.detach()
        for k, v in o.terms().items():
            if k != "entropy_qy":
                logs[f"sup/{k}"] = v.mean().detach()
        logs["sup/acc_qy"] = one_hot_accuracy(o.qy_logits.detach(), o.y, model.factor_sizes)
    if not supervised_only and x_u is not None and x_u.shape[0] > 0:
        o = model(x_u, generator=generator, loss_config=cfg)
        obj = m2_unlabelled_objective(o, cfg).mean()
        loss = loss - obj
        logs["uns/objective"] = obj.detach()
        for k, v in o.terms().items():
            if k != "log_qy_x":
                logs[f"uns/{k}"] = v.mean().detach()
    logs["loss"] = loss.detach()
    return loss, logs
