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
        out = model(x, generator=gen)
        for k in parts:
            parts[k].append(getattr(out, k).cpu().numpy())
    return VAEEvaluation(**{k: np.concatenate(v) for k, v in parts.items()})


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


def check_rate_distortion_monotone(rates: Sequence[float], distortions: Sequence[float],
                                   betas: Sequence[float], tol: float = 0.0) -> bool:
    """True if, as β grows, the rate does not increase and the distortion does not decrease
    (each within ``tol`` nats): the qualitative shape of a rate–distortion sweep."""
    order = np.argsort(betas)
    r = np.asarray(rates)[order]
    d = np.asarray(distortions)[order]
    return bool(np.all(np.diff(r) <= tol) and np.all(np.diff(d) >= -tol))
