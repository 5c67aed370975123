r"""Evaluating trained VAEs: rate, distortion, active units, and the β sweep of chapter 1;
the settings, prior comparison and optimal-critic experiments of chapter 2.

Used in: book/01_rate_distortion.ipynb, book/02_transitive_information.ipynb.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import torch

from .config import ConfigBase
from .models.vae import BetaVAE, VAEConfig, vae_loss
from .train import ResultCache, TrainConfig, TrainResult, fit


@dataclass
class VAEEvaluation:
    """Per-example terms of a VAE on a dataset of ``N`` examples with ``D`` latent dimensions.

    Attributes
    ----------
    distortion, rate : ``[N]`` nats (distortion at one posterior sample, rate analytic).
    rate_per_dim : ``[N, D]`` nats.
    mu : ``[N, D]`` posterior means.
    """

    distortion: np.ndarray
    rate: np.ndarray
    rate_per_dim: np.ndarray
    mu: np.ndarray

    @property
    def mean_distortion(self) -> float:
        """:math:`\\mathbb E_x[D(x)]` in nats."""
        return float(self.distortion.mean())

    @property
    def mean_rate(self) -> float:
        """:math:`\\mathbb E_x[R(x)]` in nats."""
        return float(self.rate.mean())

    @property
    def elbo(self) -> float:
        """:math:`\\mathbb E_x[\\mathrm{ELBO}(x)] = -(D + R)` in nats."""
        return -(self.mean_distortion + self.mean_rate)


@torch.no_grad()
def evaluate_vae(model: BetaVAE, data: torch.Tensor, *, batch_size: int = 512, seed: int = 0) -> VAEEvaluation:
    """Run ``model`` over ``data`` ``[N, C, H, W]`` in batches and collect per-example terms.

    The posterior sample of each example is drawn from a ``torch.Generator`` seeded with
    ``seed`` (on the model's device), so evaluation is reproducible.
    """
    model.eval()
    device = next(model.parameters()).device
    gen = torch.Generator(device=device).manual_seed(seed)
    parts: dict[str, list[np.ndarray]] = {"distortion": [], "rate": [], "rate_per_dim": [], "mu": []}
    for start in range(0, data.shape[0], batch_size):
        x = data[start:start + batch_size].to(device)
        x = x if x.is_floating_point() else x.float()
        out = model(x, generator=gen)
        for k in parts:
            parts[k].append(getattr(out, k).cpu().numpy())
    return VAEEvaluation(**{k: np.concatenate(v) for k, v in parts.items()})


@torch.no_grad()
def monte_carlo_rate(model: BetaVAE, data: torch.Tensor, *, num_samples: int = 64, batch_size: int = 256,
                     seed: int = 0) -> tuple[float, float]:
    r"""Monte-Carlo estimate of the mean rate and its standard error.

    .. math::
        \hat R = \frac1N\sum_{n}\frac1S\sum_{s}\big[\log q(z_{ns}\mid x_n) - \log p(z_{ns})\big],
        \quad z_{ns}\sim q(z\mid x_n),

    a check of the analytic KL that :class:`~hvae_lib.models.BetaVAE` reports. ``data``:
    ``[N, C, H, W]``. Returns ``(estimate, standard error)`` in nats.
    """
    from .objectives import diag_gaussian, standard_normal_like

    model.eval()
    device = next(model.parameters()).device
    gen = torch.Generator(device=device).manual_seed(seed)
    per_example = []
    for start in range(0, data.shape[0], batch_size):
        x = data[start:start + batch_size].to(device)
        mu, logvar = model.encode(x if x.is_floating_point() else x.float())
        q, p = diag_gaussian(mu, logvar), standard_normal_like(mu)
        eps = torch.randn((num_samples, *mu.shape), generator=gen, device=device, dtype=mu.dtype)
        z = mu + torch.exp(0.5 * logvar) * eps
        per_example.append((q.log_prob(z) - p.log_prob(z)).mean(0).cpu())
    values = torch.cat(per_example).double()
    return float(values.mean()), float(values.std() / np.sqrt(len(values)))


def empirical_entropy(images: torch.Tensor | np.ndarray) -> tuple[float, int]:
    r"""Entropy of the empirical distribution of a set of binary images, and its support size.

    .. math:: H[p_\text{data}] = -\sum_{x} \tfrac{c_x}{N}\ln\tfrac{c_x}{N},

    where :math:`c_x` counts the copies of image :math:`x` among the :math:`N` (``ln N`` when
    all are distinct). ``images``: ``[N, ...]`` with values in {0, 1}; rows are bit-packed
    before counting, so the full dSprites grid (737,280 × 64 × 64) takes seconds.
    Returns ``(entropy in nats, number of distinct images)``.
    """
    arr = images.detach().cpu().numpy() if isinstance(images, torch.Tensor) else np.asarray(images)
    if arr.ndim < 2 or arr.shape[0] == 0:
        raise ValueError(f"images must be [N, ...] with N >= 1, got shape {arr.shape}")
    flat = arr.reshape(arr.shape[0], -1)
    if not np.isin(flat, (0, 1)).all():
        raise ValueError("empirical_entropy expects binary images (values 0 and 1)")
    packed = np.packbits(flat.astype(np.uint8), axis=1)
    rows = np.ascontiguousarray(packed).view(np.dtype((np.void, packed.shape[1]))).ravel()
    _, counts = np.unique(rows, return_counts=True)
    p = counts / counts.sum()
    return float(-(p * np.log(p)).sum()), int(len(counts))


def active_units(mu: np.ndarray, threshold: float = 0.01) -> np.ndarray:
    r"""Active units (Burda et al. 2016): dimension d is active if
    :math:`\mathrm{Var}_x\big(\mathbb E_{q(z|x)}[z_d]\big) > \delta` (default :math:`\delta = 0.01`).

    ``mu``: ``[N, D]`` posterior means -> boolean mask ``[D]``.
    """
    mu = np.asarray(mu, dtype=np.float64)
    if mu.ndim != 2 or mu.shape[0] < 2:
        raise ValueError(f"mu must be [N, D] with N >= 2, got shape {mu.shape}")
    return mu.var(axis=0) > threshold


@dataclass(frozen=True)
class BetaSweepConfig(ConfigBase):
    """A β sweep: one :class:`BetaVAE` per β, same architecture, data and optimiser.

    Attributes
    ----------
    betas : the β values (weights of the rate in the loss).
    model : the architecture.
    train : the optimiser settings (shared; every β starts from the same initialisation).
    """

    betas: tuple[float, ...] = (0.1, 0.3, 1.0, 3.0, 10.0)
    model: VAEConfig = field(default_factory=VAEConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    _nested = {"model": VAEConfig, "train": TrainConfig}


@dataclass
class BetaSweepResult:
    """Models, training histories and evaluations of a β sweep (index-aligned with ``betas``)."""

    betas: list[float]
    models: list[BetaVAE]
    results: list[TrainResult]
    evaluations: list[VAEEvaluation]

    def table(self) -> list[dict[str, float]]:
        """One row per β: mean distortion, rate, ELBO and number of active units."""
        return [{"beta": b, "distortion": e.mean_distortion, "rate": e.mean_rate, "elbo": e.elbo,
                 "active_units": int(active_units(e.mu).sum())}
                for b, e in zip(self.betas, self.evaluations)]


def beta_sweep(config: BetaSweepConfig, train_data: torch.Tensor, eval_data: torch.Tensor, *,
               device: str | torch.device = "cpu", cache: ResultCache | None = None,
               progress: bool = True) -> BetaSweepResult:
    """Train one β-VAE per β (or load it from the cache) and evaluate it on ``eval_data``.

    ``train_data`` / ``eval_data``: ``[N, C, H, W]`` float tensors in ``[0, 1]``.
    """
    models, results, evals = [], [], []
    for beta in config.betas:
        model, res = fit(lambda: BetaVAE(config.model), train_data, config.train, vae_loss(beta),
                         key=("beta_vae", config.model, float(beta)), cache=cache, device=device,
                         progress=progress, desc=f"beta={beta:g}")
        models.append(model)
        results.append(res)
        evals.append(evaluate_vae(model, eval_data, seed=config.train.seed))
    return BetaSweepResult(list(map(float, config.betas)), models, results, evals)


@dataclass(frozen=True)
class RateDistortionSettings(ConfigBase):
    """Everything chapter 1 needs for one profile.

    Attributes
    ----------
    dataset : ``"dsprites_lite"`` (quick: 6,144 images of 32×32) or ``"dsprites"`` (paper:
        the full 737,280-image grid at 64×64).
    test_fraction : held-out share of the images for evaluation.
    sweep : the β sweep (architecture, optimiser, β values).
    """

    dataset: str = "dsprites_lite"
    test_fraction: float = 0.1
    sweep: BetaSweepConfig = field(default_factory=BetaSweepConfig)

    _nested = {"sweep": BetaSweepConfig}


def rate_distortion_settings(profile: str) -> RateDistortionSettings:
    """Settings of chapter 1 for ``profile`` (``"quick"`` or ``"paper"``).

    quick: an MLP β-VAE (1024-256-10) on dSprites-lite, 7 values of β, 1,200 Adam steps each
    (about 2 minutes on 2 CPU cores). paper: the convolutional β-VAE of the β-VAE literature
    (4 stride-2 convolutions 32-32-64-64, dense 256, 10 latents, Bernoulli decoder;
    Higgins et al. 2017, Burgess et al. 2018) on the full procedural dSprites grid, batch 64,
    Adam 5e-4, 100,000 steps per β; the step budget and learning rate are our choice at the
    scale of those papers, not values the book reproduces from them.
    """
    from .config import check_profile

    check_profile(profile)
    betas = (0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0)
    if profile == "quick":
        return RateDistortionSettings(
            dataset="dsprites_lite", test_fraction=0.1,
            sweep=BetaSweepConfig(betas=betas,
                                  model=VAEConfig(input_shape=(1, 32, 32), latent_dim=10, architecture="mlp",
                                                  hidden=(256,)),
                                  train=TrainConfig(steps=1200, batch_size=64, lr=1e-3, log_every=50)))
    return RateDistortionSettings(
        dataset="dsprites", test_fraction=0.05,
        sweep=BetaSweepConfig(betas=(0.25, *betas, 64.0),
                              model=VAEConfig(input_shape=(1, 64, 64), latent_dim=10, architecture="conv",
                                              hidden=(32, 32, 64, 64), dense=256),
                              train=TrainConfig(steps=100_000, batch_size=64, lr=5e-4, log_every=500,
                                                checkpoint_every=10_000)))


def train_test_split(n: int, test_fraction: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A seeded random split of ``range(n)`` into sorted train and test index arrays."""
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    perm = np.random.default_rng(seed).permutation(n)
    n_test = max(1, int(round(n * test_fraction)))
    return np.sort(perm[n_test:]), np.sort(perm[:n_test])


def check_rate_distortion_monotone(rates: Sequence[float], distortions: Sequence[float],
                                   betas: Sequence[float], tol: float = 0.0) -> bool:
    """True if, as β grows, the rate does not increase and the distortion does not decrease
    (each within ``tol`` nats): the qualitative shape of a rate–distortion sweep."""
    order = np.argsort(betas)
    r = np.asarray(rates)[order]
    d = np.asarray(distortions)[order]
    return bool(np.all(np.diff(r) <= tol) and np.all(np.diff(d) >= -tol))


# ============================================================================================
# Chapter 2: transitive information (settings, labels, the prior comparison, optimal critics)
# ============================================================================================
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
    n_chains : random Markov chains (T2) and random discrete chains / labelled joints (T3).
    dataset : ``"dsprites_lite"`` (quick) or ``"dsprites"`` (paper).
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
    n_chains: int = 2000
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


def transitive_settings(profile: str) -> TransitiveSettings:
    """Settings of chapter 2 for ``profile`` (``"quick"`` or ``"paper"``).

    quick (45-60 s on one thread of a shared 2-core CPU, cache off): 20,000 random joints, the MLP VAE of chapter 1
    (1024-256-10) and its conditional-prior twin on all 6,144 dSprites-lite images, β = 4,
    1,200 Adam steps each; InfoNCE and NWJ at 5 values of the true MI with 400 steps each.
    paper: 200,000 joints; the convolutional β-VAE of chapter 1's paper profile on the full
    procedural dSprites grid, 50,000 steps per model, informations on 20,000 random images;
    11 MI values with 3,000 critic steps each. The paper does not report these experiments
    (semafovae.md §0): the scale is our choice.

    Used in: book/02_transitive_information.ipynb
    """
    from .config import check_profile

    check_profile(profile)
    if profile == "quick":
        return TransitiveSettings(
            model=VAEConfig(input_shape=(1, 32, 32), latent_dim=10, architecture="mlp", hidden=(256,)),
            train=TrainConfig(steps=1200, batch_size=64, lr=1e-3, log_every=50))
    return TransitiveSettings(
        joints_per_alpha=50_000, n_chains=20_000, dataset="dsprites",
        model=VAEConfig(input_shape=(1, 64, 64), latent_dim=10, architecture="conv", hidden=(32, 32, 64, 64),
                        dense=256),
        train=TrainConfig(steps=50_000, batch_size=64, lr=5e-4, log_every=500, checkpoint_every=10_000),
        info_examples=20_000, info_samples=2,
        mi_values=tuple(float(v) for v in np.linspace(0.0, 5.0, 11)),
        estimator_steps=3000, estimator_eval_batches=50, optimal_critic_batches=2000,
        explorer_rhos=(0.0, 0.3, 0.5, 0.7, 0.8, 0.9, 0.95, 0.99))


def coarse_labels(factors: np.ndarray, factor_names: Sequence[str], factor_sizes: Sequence[int],
                  chosen: Sequence[str], bins: int) -> tuple[np.ndarray, int]:
    """A discrete label from coarsened factor indices, e.g. a 4 × 4 grid of positions.

    Each chosen factor index :math:`f\\in\\{0,\\dots,S-1\\}` becomes the bin
    :math:`\\lfloor f\\cdot b/S\\rfloor\\in\\{0,\\dots,b-1\\}` (``b = min(bins, S)``) and the bins are
    combined in mixed radix.

    Parameters
    ----------
    factors : int ``[N, K]`` factor indices (``DSprites.all_factors()``).
    factor_names, factor_sizes : names and sizes of the ``K`` factors.
    chosen : names of the factors that make the label.
    bins : bins per chosen factor.

    Returns
    -------
    ``(labels int64 [N], number of label values)``.

    Used in: book/02_transitive_information.ipynb
    """
    f = np.asarray(factors)
    names = list(factor_names)
    if f.ndim != 2 or f.shape[1] != len(names):
        raise ValueError(f"factors must be [N, {len(names)}], got {f.shape}")
    if int(bins) < 1 or not chosen:
        raise ValueError("need at least one chosen factor and bins >= 1")
    labels = np.zeros(len(f), dtype=np.int64)
    n_values = 1
    for name in chosen:
        if name not in names:
            raise ValueError(f"unknown factor {name!r}; valid: {', '.join(names)}")
        k = names.index(name)
        size = int(factor_sizes[k])
        b = min(int(bins), size)
        labels = labels * b + (f[:, k].astype(np.int64) * b) // size
        n_values *= b
    return labels, n_values


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
            out.append(PriorComparisonRow(name, ev.mean_rate, ev.mean_distortion, ai.i_xz, ai.i_xz_se, ai.i_zu,
                                          ai.i_zu_se, gap, gap_se, sl, sl_se))
        return out

    def table(self) -> list[dict[str, float | str]]:
        """``rows()`` as dictionaries (for a ``pandas.DataFrame``)."""
        return [r.__dict__.copy() for r in self.rows()]


@torch.no_grad()
def _evaluate_with_labels(model, x: torch.Tensor, u: torch.Tensor | None, batch_size: int = 512,
                          seed: int = 0) -> tuple[VAEEvaluation, np.ndarray]:
    device = next(model.parameters()).device
    gen = torch.Generator(device=device).manual_seed(seed)
    parts: dict[str, list[np.ndarray]] = {"distortion": [], "rate": [], "rate_per_dim": [], "mu": [], "logvar": []}
    model.eval()
    for s in range(0, x.shape[0], batch_size):
        xb = x[s:s + batch_size].to(device).float()
        out = model(xb, generator=gen) if u is None else model(xb, u[s:s + batch_size].to(device).float(), generator=gen)
        for k in parts:
            parts[k].append(getattr(out, k).cpu().numpy())
    cat = {k: np.concatenate(v) for k, v in parts.items()}
    logvar = cat.pop("logvar")
    return VAEEvaluation(**cat), logvar


def compare_priors(settings: TransitiveSettings, images: torch.Tensor, labels: np.ndarray, num_labels: int, *,
                   device: str | torch.device = "cpu", cache: ResultCache | None = None, progress: bool = True,
                   seed: int = 0) -> PriorComparison:
    r"""Train a standard VAE and a conditional-prior VAE with the same β and budget, and
    measure rate, distortion, :math:`I_q(X;Z)` and :math:`I_q(Z;U)` of both.

    Both models share the encoder/decoder architecture, the initialisation seed, the minibatch
    order and the step budget; they differ only in the prior: :math:`\mathcal N(0,I)` versus
    the learned :math:`p(z\mid u)` with :math:`u` the one-hot of ``labels``. Both train on all
    ``images`` (the finite dataset whose empirical distribution defines :math:`I_q`); the
    evaluation uses ``settings.info_examples`` of them (all if 0, else a seeded subset), and
    the informations use the exact mixtures of :func:`hvae_lib.info.aggregate.aggregate_information`.

    Parameters
    ----------
    settings : :class:`TransitiveSettings` (``model``, ``train``, ``beta``, ``prior_hidden``,
        ``info_examples``, ``info_samples``).
    images : ``[N, C, H, W]`` binary images (``uint8`` or float).
    labels : int ``[N]`` in ``0 .. num_labels - 1`` (e.g. from :func:`coarse_labels`).
    num_labels : size of the one-hot code of :math:`u`.

    Used in: book/02_transitive_information.ipynb
    """
    from .info.aggregate import aggregate_information
    from .models.conditional_prior import (ConditionalPriorVAE, ConditionalPriorVAEConfig, conditional_prior_loss,
                                           pack_images_labels)

    labels = np.asarray(labels, dtype=np.int64)
    if labels.shape != (images.shape[0],) or labels.min() < 0 or labels.max() >= num_labels:
        raise ValueError(f"labels must be {images.shape[0]} integers in [0, {num_labels}); got shape {labels.shape}")
    u = torch.from_numpy(np.eye(num_labels, dtype=np.uint8)[labels])
    beta = float(settings.beta)
    std, std_res = fit(lambda: BetaVAE(settings.model), images, settings.train, vae_loss(beta),
                       key=("beta_vae", settings.model, beta), cache=cache, device=device, progress=progress,
                       desc="standard prior")
    ccfg = ConditionalPriorVAEConfig(vae=settings.model, label_dim=num_labels, prior_hidden=settings.prior_hidden)
    cond, cond_res = fit(lambda: ConditionalPriorVAE(ccfg), pack_images_labels(images, u), settings.train,
                         conditional_prior_loss(beta), key=("conditional_prior_vae", ccfg, beta), cache=cache,
                         device=device, progress=progress, desc="conditional prior")
    n = images.shape[0]
    idx = (np.arange(n) if settings.info_examples <= 0 or settings.info_examples >= n
           else np.sort(np.random.default_rng(seed).choice(n, settings.info_examples, replace=False)))
    x_eval, u_eval, lab_eval = images[idx], u[idx], labels[idx]
    evaluations, info = {}, {}
    for name, model, uu in (("standard", std, None), ("conditional", cond, u_eval)):
        ev, logvar = _evaluate_with_labels(model, x_eval, uu, seed=seed)
        evaluations[name] = ev
        info[name] = aggregate_information(ev.mu, logvar, lab_eval, num_samples=settings.info_samples, seed=seed)
    return PriorComparison(models={"standard": std, "conditional": cond},
                           results={"standard": std_res, "conditional": cond_res},
                           evaluations=evaluations, info=info, labels=lab_eval, num_labels=int(num_labels))


def gaussian_pair_log_ratio(x: torch.Tensor, y: torch.Tensor, mi: float) -> torch.Tensor:
    r"""The optimal critic's log density ratio on all pairs of a batch of Gaussian pairs.

    For the pairs of :func:`hvae_lib.info.gaussian_pair_sampler` (``d`` components with
    correlation :math:`\rho=\sqrt{1-e^{-2I/d}}` each),

    .. math::
        \log\frac{p(x_i,y_j)}{p(x_i)p(y_j)} = -\tfrac d2\log(1-\rho^2)
        - \frac{\rho^2(\lVert x_i\rVert^2 + \lVert y_j\rVert^2) - 2\rho\,x_i^\top y_j}{2(1-\rho^2)}.

    ``x, y``: ``[N, d]`` -> ``[N, N]`` (float64). InfoNCE's optimal critic is this ratio; NWJ's
    is the ratio plus 1 (Poole et al. 2019).

    Used in: book/02_transitive_information.ipynb
    """
    from .info.gaussian import correlation_from_mi

    x, y = x.double(), y.double()
    d = x.shape[1]
    rho = float(correlation_from_mi(float(mi) / d))
    one_m = 1.0 - rho * rho
    sq = (x * x).sum(1)[:, None] + (y * y).sum(1)[None, :]
    return -0.5 * d * math.log(one_m) - (rho * rho * sq - 2.0 * rho * x @ y.T) / (2.0 * one_m)


def optimal_critic_values(mi: float, dim: int, batch_size: int, n_batches: int, seed: int = 0) -> dict[str, np.ndarray]:
    r"""Per-batch InfoNCE and NWJ values of the *analytic optimal critic* on Gaussian pairs.

    With the critic fixed at its optimum the estimators' own bias and variance show without
    any training noise: InfoNCE stays below :math:`\log N` (batch size :math:`N`), NWJ is
    unbiased for :math:`I` but its variance grows quickly with :math:`I` (the density ratio it
    averages over the negative pairs has variance :math:`e^{2I}-1` under :math:`p(x)p(y)`).

    Returns ``{"infonce": [n_batches], "nwj": [n_batches]}`` in nats.

    Used in: book/02_transitive_information.ipynb
    """
    from .info.estimators import infonce_lower_bound, nwj_lower_bound
    from .info.gaussian import gaussian_pair_sampler

    sampler = gaussian_pair_sampler(float(mi), int(dim))
    gen = torch.Generator().manual_seed(int(seed))
    nce, nwj = np.empty(n_batches), np.empty(n_batches)
    for b in range(int(n_batches)):
        x, y = sampler(int(batch_size), gen)
        r = gaussian_pair_log_ratio(x, y, mi)
        nce[b] = float(infonce_lower_bound(r))
        nwj[b] = float(nwj_lower_bound(r + 1.0))
    return {"infonce": nce, "nwj": nwj}


def binary_symmetric_chain(eps_ab: float, eps_bc: float) -> np.ndarray:
    r"""Joint table ``p[a, b, c]`` (2×2×2) of a binary symmetric Markov chain :math:`A\to B\to C`.

    :math:`A` is a fair bit, :math:`B` flips it with probability :math:`\varepsilon_{AB}` and
    :math:`C` flips :math:`B` with probability :math:`\varepsilon_{BC}`. With values
    :math:`\pm1` the correlations are :math:`1-2\varepsilon`, and
    :math:`\mathrm{corr}(A,C)=(1-2\varepsilon_{AB})(1-2\varepsilon_{BC})`, as in the Gaussian
    chain with :math:`\rho = 1-2\varepsilon`.

    Used in: book/02_transitive_information.ipynb
    """
    for e in (eps_ab, eps_bc):
        if not 0.0 <= e <= 1.0:
            raise ValueError(f"flip probabilities must be in [0, 1], got {e}")
    flip1 = np.array([[1 - eps_ab, eps_ab], [eps_ab, 1 - eps_ab]])
    flip2 = np.array([[1 - eps_bc, eps_bc], [eps_bc, 1 - eps_bc]])
    return 0.5 * flip1[:, :, None] * flip2[None, :, :]
