r"""Semi-supervised training of SemafoVAE and M2 on the one loop: labelled subsets and batch sources.

* :func:`labelled_subset`: the fixed labelled subset, chosen once with its own seed (authors:
  seed 1) and stratified by one or more factors (the authors' ``odin/fuel/image_data/_base.py``).
* :func:`batch_composition` and :class:`SemiSupervisedBatches`: at a label fraction
  :math:`\le 0.1` every batch of 64 holds :math:`\lceil 0.1\cdot64\rceil = 7` labelled and 57
  unlabelled examples (fixed oversampling, as the authors' code does); above 0.1 the two are
  mixed at their natural rate. Each pool is drawn epoch-wise from its own seeded generator.
* :class:`LabelledUnlabelledBatches` (images and labels of those indices) and
  :class:`LabelBatches` (factor rows for the label VAE): batch sources of
  :func:`hvae_lib.train.train`, checkpointed with the run.
* :func:`train_semisupervised` / :func:`fit_semisupervised` / :func:`train_label_vae`: the
  loop with these sources and the losses of :mod:`hvae_lib.objectives.semisup` (no loop of
  their own).

Generation, traversals and evaluation of the trained models are in :mod:`hvae_lib.analysis.semisup`;
chapter 4's settings and data in :mod:`hvae_lib.experiments.ch04_semafovae`.

The labelled examples' labels are integer factor indices ``[N, K]``; models turn them into the
concatenated one-hot :math:`y`. Unlabelled examples are the training examples outside the
labelled subset (their labels are never read). [SF:L…] marks cite lines of trungnt13/odin-ai
``examples/vae/semafo_final.py`` at commit ``9c6986a``.

Used in: :ref:`ch-semafovae`
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from ..config import ConfigBase, check_rng
from ..objectives.semisup import LabelVAELoss, SemiSupervisedLoss
from .loop import ResultCache, TrainConfig, TrainResult, fit, train

__all__ = [
    "SemiSupervisedConfig",
    "labelled_subset",
    "batch_composition",
    "IndexPool",
    "SemiSupervisedBatches",
    "LabelledUnlabelledBatches",
    "LabelBatches",
    "semisupervised_batches",
    "train_semisupervised",
    "fit_semisupervised",
    "train_label_vae",
]


def _check_fraction(fraction: float) -> float:
    f = float(fraction)
    if not (0.0 < f <= 1.0):
        raise ValueError(f"label fraction must be in (0, 1], got {fraction}")
    return f


@dataclass(frozen=True)
class SemiSupervisedConfig(ConfigBase):
    """Semi-supervised training settings.

    Attributes
    ----------
    train : optimiser settings (steps, batch size, Adam lr, clip, seed, logging).
    label_fraction : labelled share of the training set, in (0, 1]; authors 10% on dSprites.
    label_seed : seed of the labelled subset (authors 1; independent of ``train.seed``).
    stratify : factor columns whose joint classes stratify the subset (default: shape).

    Used in: :ref:`ch-semafovae`
    """

    train: TrainConfig = field(default_factory=TrainConfig)
    label_fraction: float = 0.1
    label_seed: int = 1
    stratify: tuple[int, ...] = (0,)

    _nested = {"train": TrainConfig}

    def __post_init__(self) -> None:
        _check_fraction(self.label_fraction)
        if int(self.label_seed) < 0:
            raise ValueError(f"label_seed must be >= 0, got {self.label_seed}")


def labelled_subset(
    labels: Any,
    fraction: float,
    rng: np.random.Generator,
    stratify: Sequence[int] | None = (0,),
) -> np.ndarray:
    r"""The fixed labelled subset: sorted indices of :math:`\mathrm{round}(fN)` examples.

    Stratified: the strata are the distinct rows of ``labels[:, stratify]`` (or of a 1-D class
    vector); each stratum gets its proportional share by the largest-remainder method (at least
    one example per stratum when the budget allows), drawn without replacement from ``rng``.
    The same ``rng`` state gives the same subset (the authors' subset seed is 1:
    ``rng=numpy.random.default_rng(1)``).

    Parameters
    ----------
    labels : ``[N]`` class labels or ``[N, K]`` factor indices.
    fraction : :math:`f\in(0,1]`.
    rng : the subset's random stream (a ``numpy.random.Generator``).
    stratify : factor columns defining the strata (``None``: no stratification).

    Returns
    -------
    ``int64 [n_l]`` sorted indices, :math:`n_l=\max(1,\mathrm{round}(fN))`.

    Used in: :ref:`ch-semafovae`
    """
    f = _check_fraction(fraction)
    lab = np.asarray(labels)
    if lab.ndim == 1:
        lab = lab[:, None]
        cols: list[int] = [0] if stratify is not None else []
    else:
        if lab.ndim != 2:
            raise ValueError(f"labels must be [N] or [N, K], got shape {lab.shape}")
        cols = [int(c) for c in stratify] if stratify is not None else []
        for c in cols:
            if not 0 <= c < lab.shape[1]:
                raise ValueError(f"stratify column {c} out of range for {lab.shape[1]} factors")
    n = lab.shape[0]
    if n == 0:
        raise ValueError("labels is empty")
    num_l = max(1, int(round(f * n)))
    check_rng(rng)
    if not cols:
        return np.sort(rng.choice(n, size=num_l, replace=False)).astype(np.int64)
    _, strata = np.unique(lab[:, cols], axis=0, return_inverse=True)
    strata = strata.reshape(-1)
    counts = np.bincount(strata)
    quota = counts * num_l / n
    take = np.floor(quota).astype(np.int64)
    if num_l >= len(counts):
        take = np.maximum(take, 1)
    rest = num_l - int(take.sum())
    if rest > 0:
        order = np.argsort(-(quota - np.floor(quota)), kind="stable")
        for s in order:
            if rest == 0:
                break
            if take[s] < counts[s]:
                take[s] += 1
                rest -= 1
    elif rest < 0:  # too many from the at-least-one rule: trim the largest strata
        for s in np.argsort(-take, kind="stable"):
            while rest < 0 and take[s] > 1:
                take[s] -= 1
                rest += 1
    chosen = [
        rng.choice(np.flatnonzero(strata == s), size=int(take[s]), replace=False)
        for s in range(len(counts))
    ]
    return np.sort(np.concatenate(chosen)).astype(np.int64)


def batch_composition(label_fraction: float, batch_size: int = 64) -> tuple[int, int]:
    r"""``(num_labelled, num_unlabelled)`` per batch [``_base.py:256–380``, ``utils.py:495–520``].

    :math:`f\le0.1`: :math:`n_s=\lceil 0.1B\rceil` (7 of 64); :math:`f>0.1`: :math:`n_s=\mathrm{round}(fB)`
    (natural rate); :math:`f=1`: all labelled.

    Used in: :ref:`ch-semafovae`
    """
    f = _check_fraction(label_fraction)
    b = int(batch_size)
    if b <= 0:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    num_s = math.ceil(0.1 * b) if f <= 0.1 else int(round(f * b))
    num_s = min(max(num_s, 1), b)
    return num_s, b - num_s


class IndexPool:
    """Epoch-wise permutations of an index array from a seeded CPU generator.

    ``take(k)`` returns the next ``k`` indices, continuing into a fresh permutation when an
    epoch runs out (so one call can span two epochs); ``state()`` / ``load()`` checkpoint it.
    """

    def __init__(self, idx: np.ndarray, seed: int) -> None:
        self.idx = torch.as_tensor(np.asarray(idx, dtype=np.int64))
        self.gen = torch.Generator().manual_seed(int(seed))
        self.perm = torch.randperm(len(self.idx), generator=self.gen)
        self.pos = 0

    def take(self, k: int) -> torch.Tensor:
        out = []
        while k > 0:
            if self.pos >= len(self.perm):
                self.perm = torch.randperm(len(self.idx), generator=self.gen)
                self.pos = 0
            m = min(k, len(self.perm) - self.pos)
            out.append(self.idx[self.perm[self.pos : self.pos + m]])
            self.pos += m
            k -= m
        return torch.cat(out) if out else self.idx[:0]

    def state(self) -> dict[str, Any]:
        return {"gen": self.gen.get_state(), "perm": self.perm.clone(), "pos": self.pos}

    def load(self, state: Mapping[str, Any]) -> None:
        self.gen.set_state(state["gen"])
        self.perm = state["perm"].clone()
        self.pos = int(state["pos"])


class SemiSupervisedBatches:
    """Batches of ``n_l`` labelled + ``n_u`` unlabelled indices (see :func:`batch_composition`).

    Parameters
    ----------
    n : number of training examples (indices ``0..n-1``).
    labelled_idx : the fixed labelled subset (:func:`labelled_subset`).
    batch_size : total batch size.
    seed : seeds the two pools (labelled ``seed``, unlabelled ``seed + 1``).
    label_fraction : sets the composition; default ``len(labelled_idx) / n``.

    ``next()`` returns ``(idx_labelled [n_l], idx_unlabelled [n_u])`` int64 tensors.

    Used in: :ref:`ch-semafovae`
    """

    def __init__(
        self,
        n: int,
        labelled_idx: Any,
        batch_size: int = 64,
        seed: int = 0,
        label_fraction: float | None = None,
    ) -> None:
        lab = np.unique(np.asarray(labelled_idx, dtype=np.int64))
        if len(lab) == 0 or lab.min() < 0 or lab.max() >= n:
            raise ValueError(f"labelled_idx must be non-empty indices in [0, {n})")
        unl = np.setdiff1d(np.arange(n, dtype=np.int64), lab)
        frac = len(lab) / n if label_fraction is None else label_fraction
        self.num_labelled, self.num_unlabelled = batch_composition(frac, batch_size)
        if len(unl) == 0:
            self.num_labelled, self.num_unlabelled = int(batch_size), 0
        self.labelled = IndexPool(lab, seed)
        self.unlabelled = IndexPool(unl, seed + 1) if len(unl) else None

    def next(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The next ``(labelled, unlabelled)`` index tensors."""
        il = self.labelled.take(self.num_labelled)
        iu = self.unlabelled.take(self.num_unlabelled) if self.unlabelled is not None else il[:0]
        return il, iu

    def state(self) -> dict[str, Any]:
        """The positions of both pools (for checkpoints)."""
        return {
            "labelled": self.labelled.state(),
            "unlabelled": self.unlabelled.state() if self.unlabelled is not None else None,
        }

    def load(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state`."""
        self.labelled.load(state["labelled"])
        if self.unlabelled is not None:
            self.unlabelled.load(state["unlabelled"])


def _images_and_factors(images: Any, factors: Any) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.as_tensor(images)
    y = torch.as_tensor(np.asarray(factors), dtype=torch.long)
    if x.ndim != 4 or y.ndim != 2 or x.shape[0] != y.shape[0]:
        raise ValueError(
            f"need images [N, C, H, W] and factors [N, K] with the same N; got "
            f"{tuple(x.shape)}, {tuple(y.shape)}"
        )
    return x, y


class LabelledUnlabelledBatches:
    """The semi-supervised :class:`~hvae_lib.train.BatchSource`: ``next()`` is ``(x_l, y_l, x_u)``.

    ``x_l`` ``[n_l, C, H, W]`` (float) and ``y_l`` ``[n_l, K]`` (int64 factor indices) from the
    labelled subset, ``x_u`` ``[n_u, C, H, W]`` from the other training images (``None`` when
    every image is labelled); the composition and the draw are those of
    :class:`SemiSupervisedBatches`. The labels of unlabelled images are never read.

    Parameters
    ----------
    images : ``[N, C, H, W]`` training images (uint8 or float, array or tensor).
    factors : ``[N, K]`` integer factor indices.
    labelled_idx : the labelled subset (:func:`labelled_subset`).
    batch_size, seed, label_fraction : as for :class:`SemiSupervisedBatches`.

    Used in: :ref:`ch-semafovae`
    """

    def __init__(
        self,
        images: Any,
        factors: Any,
        labelled_idx: Any,
        batch_size: int = 64,
        seed: int = 0,
        label_fraction: float | None = None,
    ) -> None:
        self.images, self.factors = _images_and_factors(images, factors)
        self.labelled_idx = np.unique(np.asarray(labelled_idx, dtype=np.int64))
        self.indices = SemiSupervisedBatches(
            int(self.images.shape[0]), self.labelled_idx, batch_size, seed, label_fraction
        )

    def _x(self, idx: torch.Tensor) -> torch.Tensor:
        x = self.images[idx]
        return x if x.is_floating_point() else x.float()

    def next(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        il, iu = self.indices.next()
        return self._x(il), self.factors[il], (self._x(iu) if len(iu) else None)

    def state(self) -> dict[str, Any]:
        return self.indices.state()

    def load(self, state: Mapping[str, Any]) -> None:
        self.indices.load(state)

    def fingerprint_parts(self) -> tuple[Any, ...]:
        return (
            self.images,
            self.factors,
            self.labelled_idx,
            self.indices.num_labelled,
            self.indices.num_unlabelled,
        )


class LabelBatches:
    """Batches of factor rows ``[B, K]`` (int64) for the label VAE: an :class:`IndexPool` over them.

    Each batch holds ``min(batch_size, N)`` rows, drawn epoch-wise from a generator seeded
    ``seed``.

    Used in: :ref:`ch-semafovae`
    """

    def __init__(self, factors: Any, batch_size: int = 64, seed: int = 0) -> None:
        self.factors = torch.as_tensor(np.asarray(factors), dtype=torch.long)
        if self.factors.ndim != 2 or len(self.factors) == 0:
            raise ValueError(
                f"factors must be a non-empty [N, K] array, got shape {tuple(self.factors.shape)}"
            )
        if int(batch_size) <= 0:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        self.batch_size = min(int(batch_size), len(self.factors))
        self.pool = IndexPool(np.arange(len(self.factors)), seed)

    def next(self) -> torch.Tensor:
        return self.factors[self.pool.take(self.batch_size)]

    def state(self) -> dict[str, Any]:
        return self.pool.state()

    def load(self, state: Mapping[str, Any]) -> None:
        self.pool.load(state)

    def fingerprint_parts(self) -> tuple[Any, ...]:
        return (self.factors, self.batch_size)


def semisupervised_batches(
    images: Any, factors: Any, config: SemiSupervisedConfig, labelled_idx: Any | None = None
) -> LabelledUnlabelledBatches:
    """The batch source of a semi-supervised run: the labelled subset of ``config`` (or
    ``labelled_idx``) and batches seeded ``config.train.seed``."""
    x, y = _images_and_factors(images, factors)
    if labelled_idx is None:
        labelled_idx = labelled_subset(
            y.numpy(),
            config.label_fraction,
            np.random.default_rng(int(config.label_seed)),
            config.stratify,
        )
    return LabelledUnlabelledBatches(
        x, y, labelled_idx, config.train.batch_size, config.train.seed, config.label_fraction
    )


def train_semisupervised(
    model: nn.Module,
    images: Any,
    factors: Any,
    config: SemiSupervisedConfig,
    loss_config: Any,
    *,
    labelled_idx: Any | None = None,
    device: str | torch.device | None = None,
    progress: bool = True,
    desc: str = "semi-supervised",
    checkpoint_path: str | None = None,
) -> TrainResult:
    r"""Train a SemafoVAE/SemafoHVAE or M2 model in place with :func:`hvae_lib.train.train`.

    The batches are :func:`semisupervised_batches` and the loss
    :class:`~hvae_lib.objectives.SemiSupervisedLoss`: for global steps
    :math:`s<` ``loss_config.warmup_steps`` the loss is :math:`-\overline{\mathcal L_{\text{sup}}}`
    on the labelled sub-batch alone, afterwards
    :math:`-\overline{\mathcal L_{\text{sup}}}-\overline{\mathcal L_{\text{uns}}}` (the
    authors' schedule, [SF:L663–711]: lines of trungnt13/odin-ai ``examples/vae/semafo_final.py``
    at commit ``9c6986a``). Adam, clipping, the non-finite guard, checkpoints and the history
    are those of the one loop.

    Parameters
    ----------
    model : a :class:`~hvae_lib.models.SemafoVAE` / ``SemafoHVAE`` (with a
        :class:`~hvae_lib.objectives.SemafoLossConfig`) or :class:`~hvae_lib.models.M2VAE` (with an
        :class:`~hvae_lib.objectives.M2LossConfig`).
    images : ``[N, C, H, W]`` training images (uint8 or float, array or tensor).
    factors : ``[N, K]`` integer factor indices (only the labelled rows are read).
    config : :class:`SemiSupervisedConfig`.
    labelled_idx : override the subset (default :func:`labelled_subset` of ``config``).

    Used in: :ref:`ch-semafovae`
    """
    loss = SemiSupervisedLoss(loss_config)
    return train(
        model,
        semisupervised_batches(images, factors, config, labelled_idx),
        loss,
        config.train,
        device=device,
        progress=progress,
        desc=desc,
        checkpoint_path=checkpoint_path,
    )


def fit_semisupervised(
    build: Callable[[], nn.Module],
    images: Any,
    factors: Any,
    config: SemiSupervisedConfig,
    loss_config: Any,
    *,
    key: Any,
    cache: ResultCache | None = None,
    device: str | torch.device = "cpu",
    progress: bool = True,
    desc: str = "semi-supervised",
) -> tuple[nn.Module, TrainResult]:
    """:func:`hvae_lib.train.fit` (load from the cache or train) on a semi-supervised run.

    ``key`` holds what else determines the result (the model config); the cache key also
    covers ``config``, ``loss_config``, the images, the factors, the labelled subset and the
    library version.

    Used in: :ref:`ch-semafovae`
    """
    return fit(
        build,
        semisupervised_batches(images, factors, config),
        SemiSupervisedLoss(loss_config),
        config.train,
        key=(key, config, loss_config),
        cache=cache,
        device=device,
        progress=progress,
        desc=desc,
    )


def train_label_vae(
    model: nn.Module,
    factors: Any,
    *,
    gamma_y: float = 10.0,
    steps: int = 300,
    batch_size: int = 64,
    lr: float = 1e-3,
    seed: int = 0,
    log_every: int = 25,
    progress: bool = False,
) -> TrainResult:
    r"""Train only the label VAE :math:`y\leftrightarrow u` of a SemafoVAE (step 1 of :ref:`ch-semafovae`).

    :func:`hvae_lib.train.train` with :class:`LabelBatches` of ``factors`` and the loss
    :class:`~hvae_lib.objectives.LabelVAELoss` ``(gamma_y)``; Adam(``lr``) without gradient
    clipping. Only :math:`q(u\mid y)` and :math:`p(y\mid u)` get gradients, so the rest of the
    model is left as it was.

    Parameters
    ----------
    model : a :class:`~hvae_lib.models.SemafoVAE` (or ``SemafoHVAE``); trained in place.
    factors : ``[N, K]`` integer factor indices (the labelled examples).

    Returns
    -------
    The :class:`~hvae_lib.train.TrainResult`; its history holds ``step``, ``loss``,
    ``objective``, ``log_py_u``, ``kl_u`` and ``acc_py`` (running means).

    Raises
    ------
    ValueError
        For non-positive ``steps``, ``batch_size``, ``log_every`` or ``lr``, a negative
        ``gamma_y`` or factors that are not a non-empty ``[N, K]`` array.

    Used in: :ref:`ch-semafovae`
    """
    loss = LabelVAELoss(gamma_y)
    config = TrainConfig(
        steps=int(steps),
        batch_size=int(batch_size),
        lr=float(lr),
        max_grad_norm=None,
        seed=int(seed),
        log_every=int(log_every),
    )
    return train(
        model,
        LabelBatches(factors, batch_size, seed),
        loss,
        config,
        progress=progress,
        desc=f"label VAE (gamma_y={gamma_y:g})",
    )
