"""Models of the book: ``nn.Module`` s that return their terms (distortion, per-layer rates,
label terms); the weighting of those terms into a loss is in :mod:`!hvae_lib.objectives`.

* :class:`~hvae_lib.models.vae.BetaVAE` — the β-VAE (:ref:`ch-rate-distortion`).
* :class:`.ConditionalPriorVAE` — a VAE with a conditional prior p(z|u)
  (:ref:`ch-transitive`).
* :class:`.HierarchicalVAE` — two-layer VAE with top-down inference and one rate per layer
  (:ref:`ch-rate-splitting`).
* :class:`.SemafoVAE`, :class:`.SemafoHVAE` and the M2 baseline :class:`.M2VAE`
  (:ref:`ch-semafovae`).
* :mod:`.blocks` — the shared building blocks (MLPs, conv bodies, Gaussian heads).
"""

from .blocks import ConvDecoderBody, ConvEncoderBody, GaussianHead, mlp
from .conditional_prior import (
    ConditionalPriorVAE,
    ConditionalPriorVAEConfig,
    pack_images_labels,
    unpack_images_labels,
)
from .hierarchical import (
    INFERENCE_VARIANTS,
    PAPER_PRESETS,
    HierarchicalOutput,
    HierarchicalVAE,
    HierarchicalVAEConfig,
    conv_resolutions,
    paper_preset,
    precision_weighted_merge,
    prototype_preset,
)
from .m2 import M2VAE, M2Config, M2Output
from .semafo import (
    ENTROPY_ESTIMATORS,
    PSEUDO_LABELS,
    SEMAFO_VARIANTS,
    SemafoConfig,
    SemafoHVAE,
    SemafoOutput,
    SemafoVAE,
    build_semafo,
    estimator_choices,
)
from .vae import ARCHITECTURES, BetaVAE, VAEConfig, VAEOutput

__all__ = [
    "ConvDecoderBody",
    "ConvEncoderBody",
    "GaussianHead",
    "mlp",
    "ARCHITECTURES",
    "BetaVAE",
    "VAEConfig",
    "VAEOutput",
    "ConditionalPriorVAE",
    "ConditionalPriorVAEConfig",
    "pack_images_labels",
    "unpack_images_labels",
    "INFERENCE_VARIANTS",
    "PAPER_PRESETS",
    "HierarchicalOutput",
    "HierarchicalVAE",
    "HierarchicalVAEConfig",
    "conv_resolutions",
    "paper_preset",
    "precision_weighted_merge",
    "prototype_preset",
    "ENTROPY_ESTIMATORS",
    "PSEUDO_LABELS",
    "SEMAFO_VARIANTS",
    "SemafoConfig",
    "SemafoHVAE",
    "SemafoOutput",
    "SemafoVAE",
    "build_semafo",
    "estimator_choices",
    "M2Config",
    "M2Output",
    "M2VAE",
]
