"""Training: the loop, checkpoints, the result cache, the batched β-grid and the semi-supervised trainers.

* :mod:`.loop` — :class:`TrainConfig`, :func:`train`, the one training loop
  ``train(model, batches, loss_fn, config)`` with ``loss_fn(model, batch, *, step, generator)``
  (Adam, seeded batch sources, non-finite guard, checkpoints and exact resume),
  :class:`ResultCache` and :func:`fit`, the one load-or-train (every chapter that trains).
* :mod:`.ensemble` — :func:`train_grid` / :func:`fit_grid`: a whole grid of rate weights as one
  batched model (:ref:`ch-rate-splitting`).
* :mod:`.distributed` — a β-grid on disk (``grid.json`` + one ``member_<k>.pt`` per member),
  trained by one process or sharded over ``torchrun`` ranks (``python -m hvae_lib grid``).
* :mod:`.semisup` — labelled subsets, batch composition and the semi-supervised batch
  sources on which SemafoVAE, M2 and the label VAE train (:ref:`ch-semafovae`).
"""

from ..config import build_seeded  # re-exported: the chapters build models with it
from .ensemble import (
    GridResult,
    beta_grid,
    chunk_checkpoint_name,
    fit_grid,
    log_spaced_betas,
    member_key,
    train_grid,
)
from .loop import (
    BatchSampler,
    BatchSource,
    ImageFactorBatches,
    LossFn,
    ResultCache,
    TensorBatches,
    TrainConfig,
    TrainResult,
    cache_enabled_by_env,
    cache_write_only_by_env,
    default_cache_dir,
    fingerprint,
    fit,
    load_checkpoint,
    noise_generator,
    save_checkpoint,
    source_digest,
    to_device,
    train,
)
from .semisup import (
    IndexPool,
    LabelBatches,
    LabelledUnlabelledBatches,
    SemiSupervisedBatches,
    SemiSupervisedConfig,
    batch_composition,
    fit_semisupervised,
    labelled_subset,
    semisupervised_batches,
    train_label_vae,
    train_semisupervised,
)

__all__ = [
    "BatchSampler",
    "BatchSource",
    "ImageFactorBatches",
    "LossFn",
    "TensorBatches",
    "build_seeded",
    "noise_generator",
    "to_device",
    "ResultCache",
    "TrainConfig",
    "TrainResult",
    "cache_enabled_by_env",
    "cache_write_only_by_env",
    "default_cache_dir",
    "fingerprint",
    "fit",
    "load_checkpoint",
    "save_checkpoint",
    "source_digest",
    "train",
    "GridResult",
    "beta_grid",
    "chunk_checkpoint_name",
    "fit_grid",
    "log_spaced_betas",
    "member_key",
    "train_grid",
    "IndexPool",
    "LabelBatches",
    "LabelledUnlabelledBatches",
    "semisupervised_batches",
    "SemiSupervisedBatches",
    "SemiSupervisedConfig",
    "batch_composition",
    "fit_semisupervised",
    "labelled_subset",
    "train_label_vae",
    "train_semisupervised",
]
