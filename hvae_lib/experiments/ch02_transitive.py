r"""Chapter 2 (transitive information): the settings of the profiles and the prior comparison.

* :class:`TransitiveSettings` / :func:`transitive_settings` — the scale of the chapter.
* :func:`compare_priors` — a standard VAE and a conditional-prior VAE trained with the same β
  and budget, with rate, distortion, :math:`I_q(X;Z)` and :math:`I_q(Z;U)` of both.

Used in: :ref:`ch-transitive`
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from ..analysis.evaluation import evaluate_with_labels
from ..config import ConfigBase, check_generator, check_profile, check_rng, check_smoke
from ..info.aggregate import aggregate_information
from ..models.conditional_prior import (
    ConditionalPriorVAE,
    ConditionalPriorVAEConfig,
    pack_images_labels,
)
from ..models.vae import BetaVAE, VAEConfig
from ..objectives.vae import conditional_prior_loss, vae_loss
from ..train.loop import ResultCache, TrainConfig, fit

__all__ = [
    "TransitiveSettings",
    "transitive_settings",
    "smoke_cuts",
    "PriorComparisonRow",
    "PriorComparison",
    "compare_priors",
]


@dataclass(frozen=True)
class TransitiveSettings(ConfigBase):
    """Everything chapter 2 needs for one profile.

    Attributes
    ----------
    alphas : Dirichlet concentrations of the random joints of the T1 check (small alpha gives
        sparse, nearly deterministic tables, which come closest to the equality cases).
    joints_per_alpha : random joints :math:`p(a,b,c)` per alpha, alphabet sizes 2 to
        ``max_alphabet`` on every axis.
    max_alphabet : largest alphabet size of the random tables.
    num_chains : random Markov chains (T2) and random discrete chains / labelled joints (T3).
    dataset : ``"dsprites_lite"`` (quick), ``"dsprites"`` (paper) or ``"dsprites_smoke"`` (the
        smoke form's 1,536-image 64×64 subgrid, :func:`.dsprites_smoke`).
    label_factors : dSprites factors that make the label :math:`u` of the conditional prior.
    label_bins : each label factor is coarsened to this many equal bins (4 × 4 = 16 labels
        for a coarse position).
    beta : the β shared by the standard VAE and the conditional-prior VAE.
    model : encoder/decoder of both models.
    prior_hidden : hidden widths of the prior network (``()``: a table of Gaussians).
    train : optimiser settings shared by both models.
    info_examples : images on which rate, distortion and the informations are evaluated
        (``0``: all images; the mixtures :math:`q(z)` run over exactly these images).
    info_samples : samples of :math:`z` per image for the information estimates.
    mi_values : true mutual informations (nats) of the Gaussian pairs for the estimators.
    estimator_dim : dimension of each side of the Gaussian pairs.
    estimator_batch : batch size ``N`` of InfoNCE and NWJ (InfoNCE is capped at ``log N``).
    estimator_steps : Adam steps per trained critic.
    estimator_eval_batches : held-out batches averaged per estimate.
    optimal_critic_batches : batches scored with the analytic optimal critic.
    explorer_rhos : correlations on each slider of the chain explorer.
    """

    alphas: tuple[float, ...] = (0.05, 0.1, 0.3, 1.0)
    joints_per_alpha: int = 5000
    max_alphabet: int = 4
    num_chains: int = 2000
    dataset: str = "dsprites_lite"
    label_factors: tuple[str, ...] = ("posX", "posY")
    label_bins: int = 4
    beta: float = 4.0
    model: VAEConfig = field(default_factory=VAEConfig)
    prior_hidden: tuple[int, ...] = ()
    train: TrainConfig = field(default_factory=TrainConfig)
    info_examples: int = 0
    info_samples: int = 2
    mi_values: tuple[float, ...] = (0.0, 1.25, 2.5, 3.75, 5.0)
    estimator_dim: int = 5
    estimator_batch: int = 64
    estimator_steps: int = 400
    estimator_eval_batches: int = 10
    optimal_critic_batches: int = 200
    explorer_rhos: tuple[float, ...] = (0.0, 0.3, 0.6, 0.8, 0.9, 0.99)

    _nested = {"model": VAEConfig, "train": TrainConfig}


def smoke_cuts(paper: TransitiveSettings) -> TransitiveSettings:
    """The smoke form of the paper settings, the only place where chapter 2's cuts are made:
    the same models, β, batch, learning rate, alphabets, α values, MI values and estimators;
    200 random joints per α and 200 chains, the 64×64 dSprites cut to a 1,536-image subgrid
    (``"dsprites_smoke"``; informations on all of it), 30 steps per VAE (logs every 10, a
    checkpoint every 20), 20 steps per critic, 2 evaluation batches and 10 batches of the
    optimal critic.

    Used in: :ref:`ch-transitive` (smoke runs)
    """
    return paper.replace(
        joints_per_alpha=200,
        num_chains=200,
        dataset="dsprites_smoke",
        train=paper.train.replace(steps=30, log_every=10, checkpoint_every=20),
        info_examples=0,
        estimator_steps=20,
        estimator_eval_batches=2,
        optimal_critic_batches=10,
    )


def transitive_settings(profile: str, smoke: bool = False) -> TransitiveSettings:
    """Settings of chapter 2 for ``profile`` (``"quick"`` or ``"paper"``); ``smoke=True``
    (paper only) returns the paper settings with :func:`smoke_cuts` applied.

    quick (45-60 s on one thread of a shared 2-core CPU, cache off): 20,000 random joints, the MLP VAE of chapter 1
    (1024-256-10) and its conditional-prior twin on all 6,144 dSprites-lite images, β = 4,
    1,200 Adam steps each; InfoNCE and NWJ at 5 values of the true MI with 400 steps each.
    paper: 200,000 joints; the convolutional β-VAE of chapter 1's paper profile on the full
    procedural dSprites grid, 50,000 steps per model, informations on 20,000 random images;
    11 MI values with 3,000 critic steps each. These experiments are ours (the
    paper's text was not available to us), and so is their scale.

    Used in: :ref:`ch-transitive`
    """
    check_profile(profile)
    if check_smoke(profile, smoke):
        return smoke_cuts(transitive_settings(profile))
    if profile == "quick":
        return TransitiveSettings(
            model=VAEConfig(
                input_shape=(1, 32, 32), latent_dim=10, architecture="mlp", hidden=(256,)
            ),
            train=TrainConfig(steps=1200, batch_size=64, lr=1e-3, log_every=50),
        )
    return TransitiveSettings(
        joints_per_alpha=50_000,
        num_chains=20_000,
        dataset="dsprites",
        model=VAEConfig(
            input_shape=(1, 64, 64),
            latent_dim=10,
            architecture="conv",
            hidden=(32, 32, 64, 64),
            dense=256,
        ),
        train=TrainConfig(
            steps=50_000, batch_size=64, lr=5e-4, log_every=500, checkpoint_every=10_000
        ),
        info_examples=20_000,
        info_samples=2,
        mi_values=tuple(float(v) for v in np.linspace(0.0, 5.0, 11)),
        estimator_steps=3000,
        estimator_eval_batches=50,
        optimal_critic_batches=2000,
        explorer_rhos=(0.0, 0.3, 0.5, 0.7, 0.8, 0.9, 0.95, 0.99),
    )


@dataclass
class PriorComparisonRow:
    """Evaluation of one model of :func:`compare_priors` (nats; ``*_se``: Monte-Carlo s.e.)."""

    model: str
    rate: float
    distortion: float
    i_xz: float
    i_xz_se: float
    i_zu: float
    i_zu_se: float
    rate_minus_i_xz: float
    rate_minus_i_xz_se: float
    t3_slack: float
    t3_slack_se: float


@dataclass
class PriorComparison:
    """Result of :func:`compare_priors`: the two models, their training and evaluations.

    ``info[name]`` is the :class:`~hvae_lib.info.aggregate.AggregateInformation` of each model,
    ``evaluations[name]`` its per-example terms (rate against its own prior).
    """

    models: dict
    results: dict
    evaluations: dict
    info: dict
    labels: np.ndarray
    num_labels: int

    def rows(self) -> list[PriorComparisonRow]:
        """One row per model (``"standard"``, ``"conditional"``)."""
        out = []
        for name, ev in self.evaluations.items():
            ai = self.info[name]
            gap, gap_se = ai.rate_gap(ev.rate)
            sl, sl_se = ai.t3_slack(ev.rate)
            out.append(
                PriorComparisonRow(
                    name,
                    ev.mean_rate,
                    ev.mean_distortion,
                    ai.i_xz,
                    ai.i_xz_se,
                    ai.i_zu,
                    ai.i_zu_se,
                    gap,
                    gap_se,
                    sl,
                    sl_se,
                )
            )
        return out

    def table(self) -> list[dict[str, float | str]]:
        """``rows()`` as dictionaries (for a ``pandas.DataFrame``)."""
        return [r.__dict__.copy() for r in self.rows()]


def compare_priors(
    settings: TransitiveSettings,
    images: torch.Tensor,
    labels: np.ndarray,
    num_labels: int,
    *,
    rng: np.random.Generator,
    generator: torch.Generator,
    device: str | torch.device = "cpu",
    cache: ResultCache | None = None,
    progress: bool = True,
) -> PriorComparison:
    r"""Train a standard VAE and a conditional-prior VAE with the same β and budget, and
    measure rate, distortion, :math:`I_q(X;Z)` and :math:`I_q(Z;U)` of both.

    Both models share the encoder/decoder architecture, the initialisation seed, the minibatch
    order and the step budget; they differ only in the prior: :math:`\mathcal N(0,I)` versus
    the learned :math:`p(z\mid u)` with :math:`u` the one-hot of ``labels``. Both train on all
    ``images`` (the finite dataset whose empirical distribution defines :math:`I_q`); the
    evaluation uses ``settings.info_examples`` of them (all if 0, else a random subset drawn
    from ``rng``), and the informations use the exact mixtures of
    :func:`hvae_lib.info.aggregate.aggregate_information`.

    Parameters
    ----------
    settings : :class:`TransitiveSettings` (``model``, ``train``, ``beta``, ``prior_hidden``,
        ``info_examples``, ``info_samples``).
    images : ``[N, C, H, W]`` binary images (``uint8`` or float).
    labels : int ``[N]`` in ``0 .. num_labels - 1`` (e.g. from :func:`.coarse_labels`).
    num_labels : size of the one-hot code of :math:`u`.
    rng : ``numpy.random.Generator`` of the evaluation subset (training is seeded by
        ``settings.train.seed``).
    generator : ``torch.Generator`` on ``device``; the posterior samples of the evaluations
        and the samples of :math:`z` of the informations are drawn from it, standard model
        first.


    Used in: :ref:`ch-transitive`
    """
    check_rng(rng)
    check_generator(generator, device)
    labels = np.asarray(labels, dtype=np.int64)
    if labels.shape != (images.shape[0],) or labels.min() < 0 or labels.max() >= num_labels:
        raise ValueError(
            f"labels must be {images.shape[0]} integers in [0, {num_labels}); got shape {labels.shape}"
        )
    u = torch.from_numpy(np.eye(num_labels, dtype=np.uint8)[labels])
    beta = float(settings.beta)
    std, std_res = fit(
        lambda: BetaVAE(settings.model),
        images,
        vae_loss(beta),
        settings.train,
        key=("beta_vae", settings.model, beta),
        cache=cache,
        device=device,
        progress=progress,
        desc="standard prior",
    )
    ccfg = ConditionalPriorVAEConfig(
        vae=settings.model, label_dim=num_labels, prior_hidden=settings.prior_hidden
    )
    cond, cond_res = fit(
        lambda: ConditionalPriorVAE(ccfg),
        pack_images_labels(images, u),
        conditional_prior_loss(beta),
        settings.train,
        key=("conditional_prior_vae", ccfg, beta),
        cache=cache,
        device=device,
        progress=progress,
        desc="conditional prior",
    )
    n = images.shape[0]
    idx = (
        np.arange(n)
        if settings.info_examples <= 0 or settings.info_examples >= n
        else np.sort(rng.choice(n, settings.info_examples, replace=False))
    )
    x_eval, u_eval, lab_eval = images[idx], u[idx], labels[idx]
    evaluations, info = {}, {}
    for name, model, uu in (("standard", std, None), ("conditional", cond, u_eval)):
        ev, logvar = evaluate_with_labels(model, x_eval, uu, generator=generator)
        evaluations[name] = ev
        info[name] = aggregate_information(
            ev.mu, logvar, lab_eval, num_samples=settings.info_samples, generator=generator
        )
    return PriorComparison(
        models={"standard": std, "conditional": cond},
        results={"standard": std_res, "conditional": cond_res},
        evaluations=evaluations,
        info=info,
        labels=lab_eval,
        num_labels=int(num_labels),
    )
