"""Models of the book.

* :class:`BetaVAE` — the β-VAE (book/01_rate_distortion.ipynb).
* :class:`ConditionalPriorVAE` — a VAE with a conditional prior p(z|u)
  (book/02_transitive_information.ipynb).
* :class:`HierarchicalVAE` — two-layer VAE with top-down inference and one β per layer
  (book/03_rate_splitting.ipynb).
* :class:`SemafoVAE`, :class:`SemafoHVAE` and the M2 baseline :class:`M2VAE`
  (book/04_semafovae.ipynb).
"""
from .conditional_prior import (
    ConditionalPriorVAE,
    ConditionalPriorVAEConfig,
    conditional_prior_loss,
    pack_images_labels,
    unpack_images_labels,
)
from .hierarchical import (
    INFERENCE_VARIANTS,
    PAPER_PRESETS,
    HierarchicalLoss,
    HierarchicalOutput,
    HierarchicalVAE,
    HierarchicalVAEConfig,
    betas_from_authors,
    hierarchical_loss,
    kl_warmup,
    paper_preset,
    paper_train_config,
    precision_weighted_merge,
    prototype_preset,
)
from .m2 import (
    M2Config,
    M2LossConfig,
    M2Output,
    M2VAE,
    m2_labelled_objective,
    m2_loss,
    m2_unlabelled_objective,
)
from .semafo import (
    ENTROPY_ESTIMATORS,
    SEMAFO_VARIANTS,
    SemafoConfig,
    SemafoHVAE,
    SemafoLossConfig,
    SemafoOutput,
    SemafoSettings,
    SemafoVAE,
    build_semafo,
    labelled_objective,
    relaxed_one_hot,
    semafo_loss,
    semafo_settings,
    unlabelled_objective,
)
from .vae import ARCHITECTURES, BetaVAE, VAEConfig, VAEOutput, vae_loss

__all__ = [
    "ARCHITECTURES", "BetaVAE", "VAEConfig", "VAEOutput", "vae_loss",
    "ConditionalPriorVAE", "ConditionalPriorVAEConfig", "conditional_prior_loss", "pack_images_labels",
    "unpack_images_labels",
    "INFERENCE_VARIANTS", "PAPER_PRESETS", "HierarchicalLoss", "HierarchicalOutput", "HierarchicalVAE",
    "HierarchicalVAEConfig", "betas_from_authors", "hierarchical_loss", "kl_warmup", "paper_preset",
    "paper_train_config", "precision_weighted_merge", "prototype_preset",
    "ENTROPY_ESTIMATORS", "SEMAFO_VARIANTS", "SemafoConfig", "SemafoHVAE", "SemafoLossConfig", "SemafoOutput",
    "SemafoSettings", "SemafoVAE", "build_semafo", "labelled_objective", "relaxed_one_hot", "semafo_loss",
    "semafo_settings", "unlabelled_objective",
    "M2Config", "M2LossConfig", "M2Output", "M2VAE", "m2_labelled_objective", "m2_loss", "m2_unlabelled_objective",
]
