"""Chapter 1 (rate–distortion): the settings of the ``quick`` and ``paper`` profiles.

Used in: :ref:`ch-rate-distortion`
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..analysis.evaluation import BetaSweepConfig
from ..config import ConfigBase, check_profile, check_smoke
from ..models.vae import VAEConfig
from ..train.loop import TrainConfig

__all__ = ["RateDistortionSettings", "rate_distortion_settings", "smoke_cuts"]


@dataclass(frozen=True)
class RateDistortionSettings(ConfigBase):
    """Everything chapter 1 needs for one profile.

    Attributes
    ----------
    dataset : ``"dsprites_lite"`` (quick: 6,144 images of 32×32), ``"dsprites"`` (paper:
        the full 737,280-image grid at 64×64) or ``"dsprites_smoke"`` (its smoke form: a
        1,536-image subgrid at 64×64, :func:`.dsprites_smoke`).
    test_fraction : held-out share of the images for evaluation.
    sweep : the β sweep (architecture, optimiser, β values).
    """

    dataset: str = "dsprites_lite"
    test_fraction: float = 0.1
    sweep: BetaSweepConfig = field(default_factory=BetaSweepConfig)

    _nested = {"sweep": BetaSweepConfig}


def smoke_cuts(paper: RateDistortionSettings) -> RateDistortionSettings:
    """The smoke form of the paper settings: the same model, β values, batch and learning rate;
    the 64×64 dSprites cut to a 1,536-image subgrid (``"dsprites_smoke"``) and 30 steps per β
    (logs every 10, a checkpoint every 20). The only place where chapter 1's cuts are made.

    Used in: :ref:`ch-rate-distortion` (smoke runs)
    """
    train = paper.sweep.train.replace(steps=30, log_every=10, checkpoint_every=20)
    return paper.replace(dataset="dsprites_smoke", sweep=paper.sweep.replace(train=train))


def rate_distortion_settings(profile: str, smoke: bool = False) -> RateDistortionSettings:
    """Settings of chapter 1 for ``profile`` (``"quick"`` or ``"paper"``); ``smoke=True``
    (paper only) returns the paper settings with :func:`smoke_cuts` applied.

    quick: an MLP β-VAE (1024-256-10) on dSprites-lite, 7 values of β, 1,200 Adam steps each
    (about 2 minutes on 2 CPU cores). paper: the convolutional β-VAE of the β-VAE literature
    (4 stride-2 convolutions 32-32-64-64, dense 256, 10 latents, Bernoulli decoder;
    Higgins et al. 2017, Burgess et al. 2018) on the full procedural dSprites grid, batch 64,
    Adam 5e-4, 100,000 steps per β; the step budget and learning rate are our choice at the
    scale of those papers, not values the book reproduces from them.
    """
    check_profile(profile)
    if check_smoke(profile, smoke):
        return smoke_cuts(rate_distortion_settings(profile))
    betas = (0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0)
    if profile == "quick":
        return RateDistortionSettings(
            dataset="dsprites_lite",
            test_fraction=0.1,
            sweep=BetaSweepConfig(
                betas=betas,
                model=VAEConfig(
                    input_shape=(1, 32, 32), latent_dim=10, architecture="mlp", hidden=(256,)
                ),
                train=TrainConfig(steps=1200, batch_size=64, lr=1e-3, log_every=50),
            ),
        )
    return RateDistortionSettings(
        dataset="dsprites",
        test_fraction=0.05,
        sweep=BetaSweepConfig(
            betas=(0.25, *betas, 64.0),
            model=VAEConfig(
                input_shape=(1, 64, 64),
                latent_dim=10,
                architecture="conv",
                hidden=(32, 32, 64, 64),
                dense=256,
            ),
            train=TrainConfig(
                steps=100_000, batch_size=64, lr=5e-4, log_every=500, checkpoint_every=10_000
            ),
        ),
    )
