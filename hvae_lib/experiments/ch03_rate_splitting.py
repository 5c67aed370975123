r"""Chapter 3 (rate splitting): settings per profile, data, and helpers for the bound checks.

* :class:`RateSplittingSettings` / :func:`rate_splitting_settings` — the scale of the chapter
  in the ``quick`` profile (7×7 grid of the CPU prototype on scikit-learn digits) and the
  ``paper`` profile (the authors' 21×21 grid, their SVHN architecture, σ = 0.71, Adam 3e-4,
  batch 256, 500 epochs; on SVHN by default, on CIFAR-10 with ``dataset="cifar10"``).
* :func:`load_grid_data` — the labelled train/test split of the grid experiment.
* :func:`bound_images` — a finite set of **distinct** binary dSprites images, on which the
  data entropy is known exactly, :math:`H[p_{\rm data}] = \ln N`, so the paper's distortion
  bound :math:`\mathbb E[D]\ge H[p_{\rm data}]-\mathbb E[\sum_l R_l]` can be checked exactly.
* :func:`paper_train_config` — the authors' optimisation (Adam 3e-4, batch 256, epochs).

The generic helpers of the chapter's checks, :func:`.binomial_lower_limit`
and :func:`.best_per_budget`, are in :mod:`hvae_lib.analysis.downstream`.

Used in: :ref:`ch-rate-splitting`
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ..analysis.downstream import FAITHFUL_PROBES, PROBES
from ..config import ConfigBase, check_profile, check_rng, check_smoke, note_stand_in
from ..data import DSprites, load_cifar10, load_digits_dataset, load_svhn, synthetic_svhn
from ..models.hierarchical import HierarchicalVAEConfig, paper_preset, prototype_preset
from ..train.ensemble import log_spaced_betas
from ..train.loop import TrainConfig

__all__ = [
    "RateSplittingSettings",
    "rate_splitting_settings",
    "smoke_cuts",
    "GridData",
    "load_grid_data",
    "BoundImages",
    "bound_images",
    "paper_train_config",
    "SVHN_DIR_ENV",
    "CIFAR10_DIR_ENV",
    "DATASET_ENV",
    "PAPER_DATASETS",
    "GRID_DIR_ENV",
]

GRID_DIR_ENV = "HVAE_GRID_DIR"
"""Environment variable naming a grid directory written by ``python -m hvae_lib grid``: the
chapter then reads its β-grid from there instead of training it
(:func:`hvae_lib.train.distributed.load_grid_dir`)."""

SVHN_DIR_ENV = "HVAE_SVHN_DIR"
"""Environment variable naming the folder with ``train_32x32.mat`` and ``test_32x32.mat``
(paper profile)."""

CIFAR10_DIR_ENV = "HVAE_CIFAR10_DIR"
"""Environment variable naming the ``cifar-10-batches-py`` folder (or one that contains it) of
the CIFAR-10 python batches (paper profile with ``dataset="cifar10"``)."""

DATASET_ENV = "HVAE_RATE_DATASET"
"""Environment variable that chapter 3's parameters cell reads for the dataset of the paper
profile's grid, one of :data:`PAPER_DATASETS` (empty means SVHN)."""

PAPER_DATASETS: tuple[str, ...] = ("svhn", "cifar10")
"""The datasets of the paper's grid experiment (Xiao & Bamler 2023 train on both), in the
order of the authors' code; the paper profile runs one of them per build."""

_NATURAL = {
    # name: (env var of its folder, training images, what the folder must hold, label)
    "svhn": (SVHN_DIR_ENV, 73_257, "train_32x32.mat and test_32x32.mat", "SVHN"),
    "cifar10": (CIFAR10_DIR_ENV, 50_000, "the cifar-10-batches-py python batches", "CIFAR-10"),
}


def _bound_model() -> HierarchicalVAEConfig:
    return HierarchicalVAEConfig(
        input_shape=(1, 16, 16),
        latent_dims=(16, 8),
        architecture="mlp",
        inference="separate",
        hidden=64,
        prior_hidden=32,
        likelihood="bernoulli",
    )


def paper_train_config(num_train: int, *, epochs: int = 500, seed: int = 2) -> TrainConfig:
    """The authors' optimisation: Adam lr 3e-4, batch 256, no clipping, ``epochs`` epochs.

    ``steps = epochs * (num_train // 256)``. 500 epochs is the README example (the argparse
    default is 200; which one the paper's grid used is unverified). Seed 2 as in their code.

    Used in: :ref:`ch-rate-splitting`
    """
    if int(num_train) < 256 or int(epochs) <= 0:
        raise ValueError(f"need num_train >= 256 and epochs > 0, got {num_train}, {epochs}")
    return TrainConfig(
        steps=int(epochs) * (int(num_train) // 256),
        batch_size=256,
        lr=3e-4,
        max_grad_norm=None,
        seed=int(seed),
        log_every=max(1, int(num_train) // 256),
        checkpoint_every=int(num_train) // 256,
    )


@dataclass(frozen=True)
class RateSplittingSettings(ConfigBase):
    """Everything chapter 3 needs for one profile.

    Attributes
    ----------
    dataset : ``"digits"`` (quick: scikit-learn's 1,797 8×8 digits), ``"svhn"`` or
        ``"cifar10"`` (paper).
    data_dir : folder of the SVHN ``.mat`` files or of the CIFAR-10 batches (paper; empty:
        ``$HVAE_SVHN_DIR`` or ``$HVAE_CIFAR10_DIR``).
    num_test : held-out digits (quick); for SVHN and CIFAR-10, which have their own test
        splits, at most this many of the test images (0: all).
    num_train : for SVHN and CIFAR-10, at most this many of the training images (0: all).
    synthetic_data : when the data files are absent, use :func:`.synthetic_svhn`
        stand-ins of ``num_train`` / ``num_test`` images (32×32×3, labels 0..9, the shapes of
        both datasets) instead of failing (the smoke form of the paper profile only;
        otherwise a missing file is an error).
    probe_train : training codes the classifier probes are fitted on (0: all).
    grid_side : K, the grid has K×K members; β values ``log_spaced_betas(K, beta_low, beta_high)``
        for both :math:`\\beta_1` and :math:`\\beta_2`.
    beta_low, beta_high : ends of the β range (the authors': 0.1 and 10).
    model : the architecture of every grid member.
    train : optimiser settings shared by the grid (one batched ensemble).
    chunk_size : train at most this many members at once (0: the whole grid).
    probes : classifier probes on :math:`z_2` (scikit-learn): ours
        (:data:`.PROBES`) in the quick profile, the authors' (:data:`.FAITHFUL_PROBES`) in the
        paper profile.
    faithful : the authors' evaluation protocol (the paper profile): the probes of
        :math:`\\mu_2` fitted on 80 % of the **test** codes and scored on the other 20 %, the
        sample score from a small CNN classifier (:func:`.fit_cnn_classifier`) over 5 splits;
        otherwise (quick) probes fitted on training codes and scored on test codes, a
        pixel-space logistic regression and one split. The Fano check's probes of the sampled
        :math:`z_2` are fitted on training codes in both (:func:`.evaluate_model`).
    classifier_steps : Adam steps of that CNN classifier (faithful protocol only).
    mi_points : test points of the Monte-Carlo estimate of :math:`I(\\text{label}; z_2)`;
        the Fano check measures the accuracies and :math:`H(\\text{label})` on the same points.
    num_samples : generated images per model for the sample metric.
    confidence : family-wise confidence of the Fano check (Bonferroni over all checks).
    bound_resolution : image side of the binary dSprites set of the distortion-bound check.
    bound_side : the distortion-bound grid has ``bound_side`` × ``bound_side`` members.
    bound_model, bound_train : architecture (Bernoulli decoder) and optimiser of that grid.
    bound_samples : posterior samples per image when measuring :math:`D + R` on it.
    tight_bound_images : size :math:`N` of the small distinct set on which the distortion bound
        can fail (drawn from the bound images): near :math:`\\beta=1` a model memorises it, so
        the distortion alone falls below :math:`\\ln N` and only the rate keeps
        :math:`D+R\\ge\\ln N`.
    tight_bound_betas, tight_bound_train : the β values of each axis of its grid and its
        optimiser (full-batch Adam).
    ladder_side : the Ladder-VAE-style grid beside the main one has ``ladder_side`` ×
        ``ladder_side`` members (odd, so that β = 1 is on it; 0: no ladder grid), β values
        ``log_spaced_betas(ladder_side, beta_low, beta_high)``, the main grid's architecture
        with ``inference="ladder"`` and its optimiser. The authors ran it on SVHN at 21×21.
    ladder_warmup_fraction : KL warm-up of the ladder grid, a fraction of its steps (the
        authors': the first fifth of training).
    explorer_images : test images shown per view of the explorer.
    bench_steps : timed steps of the benchmark of one model against the batched grid.
    bench_conv_members, bench_conv_steps : members and timed steps of the same benchmark on the
        paper's convolutional preset (quick profile only; the paper profile's main benchmark
        is that preset already).


    Used in: :ref:`ch-rate-splitting`
    """

    dataset: str = "digits"
    data_dir: str = ""
    num_test: int = 397
    num_train: int = 0
    synthetic_data: bool = False
    probe_train: int = 0
    grid_side: int = 7
    beta_low: float = 0.1
    beta_high: float = 10.0
    model: HierarchicalVAEConfig = field(default_factory=prototype_preset)
    train: TrainConfig = field(default_factory=TrainConfig)
    chunk_size: int = 0
    probes: tuple[str, ...] = PROBES
    faithful: bool = False
    classifier_steps: int = 3000
    mi_points: int = 397
    num_samples: int = 2000
    confidence: float = 0.95
    bound_resolution: int = 16
    bound_side: int = 5
    bound_model: HierarchicalVAEConfig = field(default_factory=_bound_model)
    bound_train: TrainConfig = field(default_factory=TrainConfig)
    bound_samples: int = 8
    tight_bound_images: int = 32
    tight_bound_betas: tuple[float, ...] = (0.5, 1.0, 2.0)
    tight_bound_train: TrainConfig = field(
        default_factory=lambda: TrainConfig(
            steps=5000, batch_size=32, lr=2e-3, max_grad_norm=None, seed=0, log_every=500
        )
    )
    ladder_side: int = 5
    ladder_warmup_fraction: float = 0.2
    explorer_images: int = 8
    bench_steps: int = 50
    bench_conv_members: int = 3
    bench_conv_steps: int = 3

    _nested = {
        "model": HierarchicalVAEConfig,
        "train": TrainConfig,
        "bound_model": HierarchicalVAEConfig,
        "bound_train": TrainConfig,
        "tight_bound_train": TrainConfig,
    }

    def __post_init__(self) -> None:
        side = int(self.ladder_side)
        if side < 0 or side == 1 or (side and side % 2 == 0):
            raise ValueError(
                "ladder_side must be 0 (no ladder grid) or odd and at least 3 (so that the "
                f"ELBO point β1 = β2 = 1 is on the grid), got {self.ladder_side}"
            )
        if not 0.0 <= float(self.ladder_warmup_fraction) < 1.0:
            raise ValueError(
                f"ladder_warmup_fraction must be in [0, 1), got {self.ladder_warmup_fraction}"
            )
        if int(self.tight_bound_images) < 2:
            raise ValueError(
                f"tight_bound_images must be at least 2 images, got {self.tight_bound_images}"
            )
        if not self.tight_bound_betas or any(
            not (float(b) > 0 and math.isfinite(float(b))) for b in self.tight_bound_betas
        ):
            raise ValueError(
                f"tight_bound_betas must be positive and finite, got {self.tight_bound_betas}"
            )

    @property
    def beta_values(self) -> np.ndarray:
        """``[K]`` the β values of each axis of the grid."""
        return log_spaced_betas(self.grid_side, self.beta_low, self.beta_high)

    @property
    def ladder_beta_values(self) -> np.ndarray:
        """``[ladder_side]`` the β values of each axis of the ladder grid (empty without one)."""
        if int(self.ladder_side) <= 0:
            return np.zeros(0)
        return log_spaced_betas(self.ladder_side, self.beta_low, self.beta_high)

    @property
    def ladder_model(self) -> HierarchicalVAEConfig:
        """The main grid's architecture with Ladder-VAE-style inference."""
        return self.model.replace(inference="ladder")

    @property
    def ladder_warmup_steps(self) -> int:
        """The KL warm-up of the ladder grid, in steps (``ladder_warmup_fraction`` of its steps)."""
        return int(round(float(self.ladder_warmup_fraction) * int(self.train.steps)))

    @property
    def bound_beta_values(self) -> np.ndarray:
        """``[bound_side]`` the β values of each axis of the distortion-bound grid."""
        return log_spaced_betas(self.bound_side, self.beta_low, self.beta_high)


def smoke_cuts(paper: RateSplittingSettings) -> RateSplittingSettings:
    """The smoke form of the paper settings, the only place where chapter 3's cuts are made.

    Kept: the authors' architecture (``paper_preset(dataset)``, 32×32×3 inputs), β range,
    batch 256, learning rate, seed, probes and evaluation protocol (``faithful``), the
    Bernoulli bound models and their batches.
    Cut: SVHN (or CIFAR-10) to 1,024 training and 256 test images (synthetic stand-ins when
    its folder variable is unset: ``synthetic_data``), probes on 512 codes, the grid to 3×3
    (β in {0.1, 1, 10}) in chunks of 3 members, 4 steps (one epoch; logs every step, a
    checkpoint every 2), the MI on 128 test points, 256 samples per model, the bound grid to
    3×3 with 20 steps, the small-set bound grid to 50 steps, the ladder grid to 3×3 (the
    main grid's steps), the CNN classifier of the sample score to 20 steps, the benchmark to
    2 steps.

    Used in: :ref:`ch-rate-splitting` (smoke runs)
    """
    return paper.replace(
        num_train=1024,
        num_test=256,
        synthetic_data=True,
        probe_train=512,
        grid_side=3,
        ladder_side=3,
        classifier_steps=20,
        chunk_size=3,
        train=paper.train.replace(steps=4, log_every=1, checkpoint_every=2),
        mi_points=128,
        num_samples=256,
        bound_side=3,
        bound_train=paper.bound_train.replace(steps=20, log_every=10),
        tight_bound_train=paper.tight_bound_train.replace(steps=50, log_every=10),
        bench_steps=2,
    )


def rate_splitting_settings(
    profile: str, smoke: bool = False, dataset: str | None = None
) -> RateSplittingSettings:
    r"""Settings of chapter 3 for ``profile`` (``"quick"`` or ``"paper"``); ``smoke=True``
    (paper only) returns the paper settings with :func:`smoke_cuts` applied. ``dataset``
    (paper only; ``None`` or ``""``: ``"svhn"``) picks the grid's data among
    :data:`PAPER_DATASETS`: the authors train the same grid on SVHN and on CIFAR-10, with the
    same architecture (:func:`.paper_preset`) and optimiser, epochs counted on each dataset's
    training set (73,257 and 50,000 images).

    quick: our CPU prototype (MLP, ``dim z_2 = 8``,
    ``dim z_1 = 16``, 35,184 parameters, Gaussian σ = 0.1) on 1,400 / 397 digits; a 7×7 grid
    of β in [0.1, 10] trained as one ensemble, 1,500 Adam steps (lr 1e-3, batch 64); the
    distortion bound on a 5×5 grid of Bernoulli models of distinct 16×16 dSprites, 400 steps,
    and on 32 of those images a 3×3 grid around β = 1, 3,000 full-batch steps (5,000 in paper);
    a 5×5 Ladder-VAE-style grid beside the main one (the same steps, KL warm-up over the first
    fifth).
    paper: the authors' setting as far as their code (timxzz/HIT at commit ``10b83e9``) shows
    it — SVHN, their ``HVAE_Fixed_z``
    architecture (475,811 parameters, σ = 0.71), the 21×21 grid in [0.1, 10] (and a 21×21
    grid of their Ladder-VAE-style variant, which they ran on SVHN), Adam 3e-4,
    batch 256, 500 epochs (the README example; 200 is their argparse default — unverified
    which one the paper used), seed 2; the authors' evaluation protocol (``faithful``: their
    probes of :math:`\mu_2` on an 80/20 split of the test codes, logistic regression over 5
    seeds, RBF-SVM, linear SVM and 5-NN; the sample score over 5 splits of 10,000 samples
    from a CNN classifier, smaller than their ResNet-18 / DenseNet-121); the Fano check's
    probes of sampled codes fitted on 10,000 training codes, the MI on 2,000 test points.
    The distortion-bound grid at 32×32 is our choice (the paper does not run it).

    Raises
    ------
    ValueError
        For an unknown profile, an unknown dataset, or a dataset with the quick profile.


    Used in: :ref:`ch-rate-splitting`
    """
    check_profile(profile)
    name = dataset or None
    if name is not None and name not in PAPER_DATASETS:
        raise ValueError(f"unknown dataset {dataset!r}; valid: {', '.join(PAPER_DATASETS)}")
    if name is not None and profile != "paper":
        raise ValueError(
            f"dataset={dataset!r} needs the paper profile; the {profile} profile runs on "
            "scikit-learn's digits"
        )
    if check_smoke(profile, smoke):
        return smoke_cuts(rate_splitting_settings(profile, dataset=name))
    if profile == "quick":
        return RateSplittingSettings(
            train=TrainConfig(
                steps=1500, batch_size=64, lr=1e-3, max_grad_norm=None, seed=0, log_every=100
            ),
            bound_train=TrainConfig(
                steps=400, batch_size=64, lr=2e-3, max_grad_norm=None, seed=0, log_every=100
            ),
            # 3,000 full-batch steps reach a slack of about 2.3 nats (5,000: 2.0), and keep
            # the notebook within its budget of 4 minutes on one core
            tight_bound_train=TrainConfig(
                steps=3000, batch_size=32, lr=2e-3, max_grad_norm=None, seed=0, log_every=500
            ),
        )
    name = name or "svhn"
    return RateSplittingSettings(
        dataset=name,
        num_test=0,
        probe_train=10_000,
        grid_side=21,
        ladder_side=21,
        probes=FAITHFUL_PROBES,
        faithful=True,
        model=paper_preset(name),
        train=paper_train_config(_NATURAL[name][1], epochs=500, seed=2),
        chunk_size=21,
        mi_points=2000,
        num_samples=10_000,
        bound_resolution=32,
        bound_side=7,
        bound_model=_bound_model().replace(input_shape=(1, 32, 32), hidden=256),
        bound_train=TrainConfig(
            steps=20_000, batch_size=64, lr=1e-3, max_grad_norm=None, seed=0, log_every=500
        ),
        explorer_images=8,
    )


@dataclass
class GridData:
    """The labelled data of the grid experiment.

    Attributes
    ----------
    x_train, x_test : float32 tensors ``[N, C, H, W]`` in ``[0, 1]``.
    y_train, y_test : int64 arrays ``[N]``.
    name : a short description for the prose.


    Used in: :ref:`ch-rate-splitting`
    """

    x_train: torch.Tensor
    y_train: np.ndarray
    x_test: torch.Tensor
    y_test: np.ndarray
    name: str


def load_grid_data(settings: RateSplittingSettings, rng: np.random.Generator) -> GridData:
    """Load the train/test split of the grid experiment.

    ``"digits"``: a permutation of scikit-learn's 1,797 digits drawn from ``rng`` (a
    ``numpy.random.Generator``), the first ``settings.num_test`` held out. ``"svhn"``: the files
    ``train_32x32.mat`` and ``test_32x32.mat`` in ``settings.data_dir`` (or
    ``$HVAE_SVHN_DIR``); ``"cifar10"``: the python batches in ``settings.data_dir`` (or
    ``$HVAE_CIFAR10_DIR``, :func:`.load_cifar10`). Their splits are fixed (``rng`` is not
    drawn from); the first ``settings.num_train`` / ``settings.num_test`` images of each are
    kept when those are positive.
    With ``settings.synthetic_data`` (the smoke form) and no folder set, synthetic stand-ins
    (:func:`.synthetic_svhn`, training images then test images drawn from
    ``rng``) replace the files, and the page's smoke banner names them.

    Raises
    ------
    TypeError
        ``rng`` is not a ``numpy.random.Generator`` (an integer seed, say).
    ValueError
        Unknown dataset, or ``"svhn"`` / ``"cifar10"`` without a folder.
    FileNotFoundError
        The data files are missing (the message gives the path looked at).


    Used in: :ref:`ch-rate-splitting`
    """
    check_rng(rng)
    if settings.dataset == "digits":
        d = load_digits_dataset()
        num_test = int(settings.num_test)
        if not 0 < num_test < len(d.labels):
            raise ValueError(f"num_test must be in (0, {len(d.labels)}), got {num_test}")
        perm = rng.permutation(len(d.labels))
        te, tr = perm[:num_test], perm[num_test:]
        x = torch.from_numpy(d.images)
        return GridData(
            x[tr],
            d.labels[tr],
            x[te],
            d.labels[te],
            f"scikit-learn digits, 8×8, {len(tr)} train / {len(te)} test",
        )
    if settings.dataset in _NATURAL:
        env, _, holds, label = _NATURAL[settings.dataset]
        folder = settings.data_dir or os.environ.get(env, "")
        if not folder and settings.synthetic_data:
            num_train, num_test = int(settings.num_train), int(settings.num_test)
            if num_train <= 0 or num_test <= 0:
                raise ValueError(
                    f"synthetic {label} stand-ins need num_train and num_test > 0, got "
                    f"{num_train} and {num_test}"
                )
            tr, te = synthetic_svhn(num_train, rng), synthetic_svhn(num_test, rng)
            name = f"synthetic {label} stand-in, 32×32×3, {num_train} train / {num_test} test"
            note_stand_in(
                f"{label} (${env} unset: {num_train:,} + {num_test:,} procedural colour "
                "digits of the same shape, dtype and label range)"
            )
            return GridData(
                torch.from_numpy(tr.images), tr.labels, torch.from_numpy(te.images), te.labels, name
            )
        if not folder:
            raise ValueError(
                f"the {settings.dataset} dataset needs a folder with {holds}: set "
                f"settings.data_dir or ${env}"
            )
        load = load_svhn if settings.dataset == "svhn" else load_cifar10
        tr = load(folder, "train", limit=int(settings.num_train) or None)
        te = load(folder, "test", limit=int(settings.num_test) or None)
        return GridData(
            torch.from_numpy(tr.images),
            tr.labels,
            torch.from_numpy(te.images),
            te.labels,
            f"{label}, 32×32×3, {len(tr.labels)} train / {len(te.labels)} test",
        )
    raise ValueError(
        f"unknown dataset {settings.dataset!r}; valid: digits, {', '.join(PAPER_DATASETS)}"
    )


@dataclass
class BoundImages:
    r"""A finite set of distinct binary images and its exact entropy.

    Attributes
    ----------
    images : uint8 ``[N, 1, R, R]`` in {0, 1}, all distinct.
    rendered : how many images the dSprites subgrid rendered before removing duplicates.
    entropy : :math:`H[p_{\rm data}] = \ln N` (nats) of the uniform distribution on them.


    Used in: :ref:`ch-rate-splitting`
    """

    images: np.ndarray
    rendered: int
    entropy: float

    def __len__(self) -> int:
        return int(self.images.shape[0])


def bound_images(resolution: int = 16, levels: dict[str, Any] | None = None) -> BoundImages:
    r"""Distinct binary images of a procedural dSprites subgrid.

    The default subgrid keeps all 3 shapes, scales 3 and 6 of 6, orientations 1 and 6 of 40,
    and every 4th x and y position (8 × 8): 768 renderings. Symmetric shapes make some of them
    coincide at low resolution; the duplicates are removed, so the uniform distribution on
    the :math:`N` remaining images has :math:`H[p_{\rm data}] = \ln N` exactly.

    Parameters
    ----------
    resolution : image side (8 to 256).
    levels : factor indices to keep, as in :meth:`~hvae_lib.data.dsprites.DSprites.select`.


    Used in: :ref:`ch-rate-splitting`
    """
    if levels is None:
        levels = {
            "scale": [2, 5],
            "orientation": [0, 5],
            "posX": list(range(0, 32, 4)),
            "posY": list(range(0, 32, 4)),
        }
    ds = DSprites(resolution=int(resolution)).select(levels)
    imgs = ds.render_all()
    flat = imgs.reshape(len(imgs), -1)
    _, first = np.unique(flat, axis=0, return_index=True)
    distinct = imgs[np.sort(first)]
    return BoundImages(
        images=np.ascontiguousarray(distinct),
        rendered=int(len(imgs)),
        entropy=float(np.log(len(distinct))),
    )
