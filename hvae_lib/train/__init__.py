"""Training: the loop, checkpoints, the result cache, the batched β-grid and the semi-supervised trainers.

* :mod:`.loop` — :class:`TrainConfig`, :func:`train` (Adam, seeded minibatches, non-finite
  guard, checkpoints and exact resume), :class:`ResultCache`, :func:`fit`
  (book/01_rate_distortion.md and every chapter that trains a model).
* :mod:`.ensemble` — :func:`train_grid` / :func:`fit_grid`: a whole grid of rate weights as one
  batched model (book/03_rate_splitting.md).
* :mod:`.semisup` — labelled subsets, batch composition and the SemafoVAE / M2 trainers
  (book/04_semafovae.md).
"""
from .ensemble import GridResult, beta_grid, fit_grid, log_spaced_betas, member_key, train_grid
from .loop import (
    BatchSampler,
    LossFn,
    ResultCache,
    TrainConfig,
    TrainResult,
    cache_enabled_by_env,
    cache_write_only_by_env,
    default_cache_dir,
    fingerprint,
    fit,
    load_checkpoint,
    save_checkpoint,
    train,
)
from .semisup import (
    SemiSupervisedBatches,
    SemiSupervisedConfig,
    batch_composition,
    fit_semisupervised,
    labelled_subset,
    train_label_vae,
    train_semisupervised,
)

__all__ = [
    "BatchSampler", "LossFn", "ResultCache", "TrainConfig", "TrainResult", "cache_enabled_by_env",
    "cache_write_only_by_env", "default_cache_dir", "fingerprint", "fit", "load_checkpoint", "save_checkpoint",
    "train",
    "GridResult", "beta_grid", "fit_grid", "log_spaced_betas", "member_key", "train_grid",
    "SemiSupervisedBatches", "SemiSupervisedConfig", "batch_composition", "fit_semisupervised", "labelled_subset",
    "train_label_vae", "train_semisupervised",
]
