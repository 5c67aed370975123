r"""The M2 objectives (Kingma et al. 2014): coefficients and losses of the semi-supervised baseline.

:class:`hvae_lib.models.M2VAE` returns the terms (:class:`~hvae_lib.models.M2Output`);
:func:`m2_labelled_objective` / :func:`m2_unlabelled_objective` weight them with an
:class:`M2LossConfig` and :func:`m2_loss` is the scalar training loss.

Used in: :ref:`ch-semafovae`
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..config import ConfigBase
from ..models.m2 import M2VAE, M2Output
from .base import semi_supervised_terms

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

    Used in: :ref:`ch-semafovae`
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

    Used in: :ref:`ch-semafovae`
    """
    return out.log_px + out.log_py - cfg.beta * out.kl_z + cfg.alpha * out.log_qy_x


def m2_unlabelled_objective(out: M2Output, cfg: M2LossConfig) -> torch.Tensor:
    r""":math:`\log p(x|\tilde y,z)+\log p(\tilde y)-\beta\mathrm{KL}_z+H[q(y|x)]`, ``[B]``.

    Used in: :ref:`ch-semafovae`
    """
    return out.log_px + out.log_py - cfg.beta * out.kl_z + out.entropy_qy


def m2_loss(
    model: M2VAE,
    x_l: torch.Tensor,
    y_l: torch.Tensor,
    x_u: torch.Tensor | None,
    cfg: M2LossConfig,
    *,
    supervised_only: bool = False,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Scalar loss :math:`-\\overline{\\mathcal L}-\\overline{\\mathcal U}` and logged term means
    (``sup/…``, ``uns/…``, ``sup/acc_qy``), as :func:`~hvae_lib.objectives.semafo_loss`.

    Used in: :ref:`ch-semafovae`
    """
    return semi_supervised_terms(
        model,
        x_l,
        y_l,
        x_u,
        cfg,
        labelled=m2_labelled_objective,
        unlabelled=m2_unlabelled_objective,
        skip_labelled="entropy_qy",
        skip_unlabelled="log_qy_x",
        accuracies={"sup/acc_qy": "qy_logits"},
        supervised_only=supervised_only,
        generator=generator,
    )
