r"""Evaluating trained VAEs: rate, distortion, active units, and the β sweep of chapter 1.

Used in: book/01_rate_distortion.ipynb.
"""
from __future__ import annotations

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
