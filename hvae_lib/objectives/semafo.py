r"""The SemafoVAE objectives: the coefficients (γ's, β's, λ_H, warm-up) and the losses.

:class:`hvae_lib.models.SemafoVAE` / :class:`~hvae_lib.models.SemafoHVAE` return every term of one
pass (:class:`~hvae_lib.models.SemafoOutput`); :func:`labelled_objective` and
:func:`unlabelled_objective` weight them with a :class:`SemafoLossConfig`, and
:func:`semafo_loss` is the scalar training loss (see the model module's docstring for the formulas).
[SF:L…] marks cite lines of trungnt13/odin-ai ``examples/vae/semafo_final.py`` at commit
``9c6986a``.

Used in: :ref:`ch-semafovae`
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..config import ConfigBase
from ..models.semafo import ENTROPY_ESTIMATORS, PSEUDO_LABELS, SemafoOutput, SemafoVAE
from .base import semi_supervised_terms

__all__ = ["SemafoLossConfig", "labelled_objective", "unlabelled_objective", "semafo_loss"]


@dataclass(frozen=True)
class SemafoLossConfig(ConfigBase):
    r"""Coefficients and estimator choices of the SemafoVAE objectives (see the module docstring).

    Attributes
    ----------
    gamma_sup, gamma_uns : :math:`\gamma_s=1`, :math:`\gamma_u=10` [SF:L307–345]. [ours] At CPU
        scale (quick profile, 3,000 steps, one seed) :math:`\gamma_u=10` left conditional samples
        barely controlled (the unlabelled branch has an effective β of 0.1 and confident,
        self-consistent pseudo-labels); :math:`\gamma_u=1` was clearly better [ours].
    gamma_y : :math:`\gamma_y=10` on :math:`\log p(y\mid u)` [SF: ``DefaultGammaPy``].
    gamma_qy : weight of :math:`\log q(y\mid z_0)` on labels; ``None`` = ``gamma_y`` (authors).
    beta_sup, beta_uns : :math:`\beta_s=\beta_u=1`.
    beta_z1 : :math:`\beta_1=1` (``LatentConfig.beta``) for the :math:`z_1` level.
    lambda_h : :math:`\lambda_H=1` on the entropy of :math:`q(y\mid z_0)`.
    warmup_steps : supervised-only steps; authors 800 of 200k on dSprites [SF:L663–711];
        ~5% at CPU scale [ours].
    concrete_logprob : Concrete density instead of cross-entropy for labelled
        :math:`\log q(y\mid z_0)`.
    pseudo_labels : ``"relaxed"`` (reparameterised Concrete sample) [SF], ``"stop_gradient"``
        (the same sample, gradient stopped: the authors' ``NoReparams``) or
        ``"straight_through"`` (one-hot forward, relaxed gradient) [ours].
    entropy : ``"analytic"`` [ours] or ``"mc"`` (one-sample relaxed entropy) [SF].
    mc_kl : one-sample :math:`\log q(z_0|x)-\log p(z_0|u)` [SF] instead of the analytic KL.

    Used in: :ref:`ch-semafovae`
    """

    gamma_sup: float = 1.0
    gamma_uns: float = 10.0
    gamma_y: float = 10.0
    gamma_qy: float | None = None
    beta_sup: float = 1.0
    beta_uns: float = 1.0
    beta_z1: float = 1.0
    lambda_h: float = 1.0
    warmup_steps: int = 800
    concrete_logprob: bool = False
    pseudo_labels: str = "relaxed"
    entropy: str = "analytic"
    mc_kl: bool = False

    def __post_init__(self) -> None:
        for name in (
            "gamma_sup",
            "gamma_uns",
            "gamma_y",
            "beta_sup",
            "beta_uns",
            "beta_z1",
            "lambda_h",
        ):
            v = getattr(self, name)
            if not (v >= 0 and math.isfinite(v)):
                raise ValueError(f"{name} must be finite and >= 0, got {v}")
        if self.gamma_qy is not None and not (self.gamma_qy >= 0 and math.isfinite(self.gamma_qy)):
            raise ValueError(f"gamma_qy must be finite and >= 0 or None, got {self.gamma_qy}")
        if int(self.warmup_steps) < 0:
            raise ValueError(f"warmup_steps must be >= 0, got {self.warmup_steps}")
        if self.pseudo_labels not in PSEUDO_LABELS:
            raise ValueError(
                f"unknown pseudo_labels {self.pseudo_labels!r}; valid: {', '.join(PSEUDO_LABELS)}"
            )
        if self.entropy not in ENTROPY_ESTIMATORS:
            raise ValueError(
                f"unknown entropy estimator {self.entropy!r}; valid: {', '.join(ENTROPY_ESTIMATORS)}"
            )

    @property
    def qy_weight(self) -> float:
        """The effective weight of the labelled :math:`\\log q(y\\mid z_0)`."""
        return float(self.gamma_y if self.gamma_qy is None else self.gamma_qy)


def labelled_objective(out: SemafoOutput, cfg: SemafoLossConfig) -> torch.Tensor:
    r""":math:`\mathcal L_{\text{sup}}` per example ``[B]`` (to be maximised) [SF:L603–697]:

    .. math::
        \gamma_s[\log p(x|z)+\gamma_y\log p(y|u)+\gamma_{qy}\log q(y|z_0)]
        -\beta_s[\mathrm{KL}_{z_0}+\mathrm{KL}_u]-\beta_1\mathrm{KL}_{z_1}

    Used in: :ref:`ch-semafovae`
    """
    return (
        cfg.gamma_sup * (out.log_px + cfg.gamma_y * out.log_py_u + cfg.qy_weight * out.log_qy_z)
        - cfg.beta_sup * (out.kl_z0 + out.kl_u)
        - cfg.beta_z1 * out.kl_z1
    )


def unlabelled_objective(out: SemafoOutput, cfg: SemafoLossConfig) -> torch.Tensor:
    r""":math:`\mathcal L_{\text{uns}}` per example ``[B]`` (to be maximised) [SF:L603–697]:

    .. math::
        \gamma_u[\log p(x|z)+\gamma_y\log p(\tilde y|u)]-\beta_u[\mathrm{KL}_{z_0}+\mathrm{KL}_u]
        +\lambda_H H[q(y|z_0)]-\beta_1\mathrm{KL}_{z_1}

    Used in: :ref:`ch-semafovae`
    """
    return (
        cfg.gamma_uns * (out.log_px + cfg.gamma_y * out.log_py_u)
        - cfg.beta_uns * (out.kl_z0 + out.kl_u)
        + cfg.lambda_h * out.entropy_qy
        - cfg.beta_z1 * out.kl_z1
    )


def semafo_loss(
    model: SemafoVAE,
    x_l: torch.Tensor,
    y_l: torch.Tensor,
    x_u: torch.Tensor | None,
    cfg: SemafoLossConfig,
    *,
    supervised_only: bool = False,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    r"""The scalar training loss :math:`-\overline{\mathcal L_{\text{sup}}}-\overline{\mathcal L_{\text{uns}}}`.

    Each part is averaged over its own sub-batch and the two are summed, so a labelled example
    weighs about 8× an unlabelled one at 7 + 57 per batch (kept as the authors do [SF:L603–697]).
    During the warm-up (``supervised_only``) only :math:`-\overline{\mathcal L_{\text{sup}}}`.

    Parameters
    ----------
    x_l, y_l : labelled images ``[Bs, C, H, W]`` and labels (``[Bs, K]`` indices or ``[Bs, d_y]``).
    x_u : unlabelled images ``[Bu, C, H, W]`` or ``None``.

    Returns
    -------
    ``(loss, logs)``: ``logs`` holds detached batch means of every term, prefixed ``sup/`` and
    ``uns/``, the two objectives, and the accuracies ``sup/acc_qy`` and ``sup/acc_py`` of
    :math:`q(y|z_0)` and :math:`p(y|u)` on the labelled sub-batch.

    Used in: :ref:`ch-semafovae`
    """
    return semi_supervised_terms(
        model,
        x_l,
        y_l,
        x_u,
        cfg,
        labelled=labelled_objective,
        unlabelled=unlabelled_objective,
        skip_labelled="entropy_qy",
        skip_unlabelled="log_qy_z",
        accuracies={"sup/acc_qy": "qy_logits", "sup/acc_py": "py_logits"},
        supervised_only=supervised_only,
        generator=generator,
    )
