r"""Objectives: how the terms that the models return are weighted into a training loss.

The models (:mod:`hvae_lib.models`) return distortions, per-layer rates and label terms per
example; this package holds the weights (β per layer, γ's, warm-up as a pure function of the
step) and the loss functions, all with the signature ``loss_fn(model, batch, *, step, generator)``
(:data:`LossFn`) that :func:`hvae_lib.train.train`, the book's one training loop, calls.

* :mod:`.vae` — :func:`vae_loss`, :func:`conditional_prior_loss` (:ref:`ch-rate-distortion`,
  :ref:`ch-transitive`).
* :mod:`.hierarchical` — :func:`hierarchical_loss`, :class:`HierarchicalLoss`, :func:`kl_warmup`,
  :func:`check_betas`, :func:`betas_from_authors` (:ref:`ch-rate-splitting`).
* :mod:`.semafo` — :class:`SemafoLossConfig`, :func:`labelled_objective`,
  :func:`unlabelled_objective`, :func:`semafo_loss` (:ref:`ch-semafovae`).
* :mod:`.m2` — :class:`M2LossConfig`, :func:`m2_labelled_objective`,
  :func:`m2_unlabelled_objective`, :func:`m2_loss` (:ref:`ch-semafovae`).
* :mod:`.semisup` — :class:`SemiSupervisedLoss` (SemafoVAE/HVAE and M2 on labelled +
  unlabelled batches, with the warm-up) and :class:`LabelVAELoss` (:ref:`ch-semafovae`).
"""

from .base import LossFn, semi_supervised_terms
from .hierarchical import (
    HierarchicalLoss,
    betas_from_authors,
    check_betas,
    hierarchical_loss,
    kl_warmup,
)
from .m2 import M2LossConfig, m2_labelled_objective, m2_loss, m2_unlabelled_objective
from .semafo import SemafoLossConfig, labelled_objective, semafo_loss, unlabelled_objective
from .semisup import LabelVAELoss, SemiSupervisedLoss
from .vae import conditional_prior_loss, vae_loss

__all__ = [
    "LossFn",
    "semi_supervised_terms",
    "SemiSupervisedLoss",
    "LabelVAELoss",
    "vae_loss",
    "conditional_prior_loss",
    "HierarchicalLoss",
    "betas_from_authors",
    "check_betas",
    "hierarchical_loss",
    "kl_warmup",
    "SemafoLossConfig",
    "labelled_objective",
    "semafo_loss",
    "unlabelled_objective",
    "M2LossConfig",
    "m2_labelled_objective",
    "m2_loss",
    "m2_unlabelled_objective",
]
