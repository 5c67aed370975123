"""β-VAE: shapes, finite terms, ELBO = -(D + R), analytic vs Monte-Carlo KL."""

from __future__ import annotations

import math

import pytest
import torch
from torch.distributions import Normal, kl_divergence

from hvae_lib.distributions import distortion, gaussian_kl, rate, reparameterise
from hvae_lib.models import BetaVAE, VAEConfig
from hvae_lib.objectives import vae_loss


@pytest.mark.parametrize(
    "arch, hidden, shape",
    [
        ("mlp", (32,), (1, 8, 8)),
        ("conv", (8, 8), (1, 16, 16)),
        ("conv", (8,), (3, 8, 8)),
        ("mlp", (16, 8), (3, 4, 4)),
    ],
)
@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian"])
def test_forward_shapes_and_finite_terms(arch, hidden, shape, likelihood):
    torch.manual_seed(0)
    cfg = VAEConfig(
        input_shape=shape,
        latent_dim=5,
        architecture=arch,
        hidden=hidden,
        dense=16,
        likelihood=likelihood,
        sigma=0.3,
    )
    model = BetaVAE(cfg)
    x = torch.rand(7, *shape).round()
    out = model(x)
    assert out.distortion.shape == (7,) and out.rate.shape == (7,)
    assert out.rate_per_dim.shape == (7, 5) and out.mu.shape == (7, 5) and out.z.shape == (7, 5)
    assert out.decoder_out.shape == (7, *shape)
    for t in (out.distortion, out.rate, out.elbo):
        assert torch.isfinite(t).all()
    assert (out.rate >= 0).all()
    torch.testing.assert_close(out.elbo, -(out.distortion + out.rate))
    torch.testing.assert_close(out.rate_per_dim.sum(-1), out.rate)
    assert model.sample(4).shape == (4, *shape)
    loss, logs = vae_loss(2.0)(model, x)
    assert loss.shape == () and set(logs) == {"loss", "distortion", "rate"}


def test_bernoulli_distortion_closed_form():
    x = torch.tensor([[1.0, 0.0, 1.0]])
    logits = torch.tensor([[0.0, 0.0, math.log(3.0)]])  # p = 0.5, 0.5, 0.75
    expected = -(math.log(0.5) + math.log(0.5) + math.log(0.75))
    assert distortion(x, logits, "bernoulli").item() == pytest.approx(expected, rel=1e-6)


def test_gaussian_distortion_closed_form():
    x = torch.zeros(2, 4)
    mean = torch.ones(2, 4)
    sigma = 0.5
    per_dim = 0.5 * math.log(2 * math.pi * sigma**2) + 0.5 / sigma**2
    torch.testing.assert_close(
        distortion(x, mean, "gaussian", sigma), torch.full((2,), 4 * per_dim)
    )
    with pytest.raises(ValueError, match="bernoulli, gaussian"):
        distortion(x, mean, "laplace")
    with pytest.raises(ValueError, match="differ"):
        distortion(x, mean[:, :3])


def test_analytic_kl_matches_torch_and_monte_carlo():
    g = torch.Generator().manual_seed(0)
    mu = torch.randn(4, 3, generator=g)
    logvar = torch.randn(4, 3, generator=g) * 0.5
    mu_p = torch.randn(4, 3, generator=g)
    logvar_p = torch.randn(4, 3, generator=g) * 0.5
    ours = gaussian_kl(mu, logvar, mu_p, logvar_p)
    ref = kl_divergence(Normal(mu, (0.5 * logvar).exp()), Normal(mu_p, (0.5 * logvar_p).exp()))
    torch.testing.assert_close(ours, ref)
    # Monte-Carlo: E_q[log q - log p] with 200k samples, within 4 standard errors
    n = 200_000
    z = mu + (0.5 * logvar).exp() * torch.randn(n, 4, 3, generator=g)
    q = Normal(mu, (0.5 * logvar).exp())
    p = Normal(torch.zeros(()), torch.ones(()))
    log_ratio = (q.log_prob(z) - p.log_prob(z)).sum(-1)
    mc, se = log_ratio.mean(0), log_ratio.std(0) / math.sqrt(n)
    assert torch.all((mc - rate(mu, logvar)).abs() < 4 * se + 1e-3)


def test_reparameterise_statistics():
    mu = torch.full((100_000, 1), 2.0)
    logvar = torch.full((100_000, 1), math.log(0.25))
    z = reparameterise(mu, logvar, torch.Generator().manual_seed(1))
    assert z.mean().item() == pytest.approx(2.0, abs=0.01)
    assert z.std().item() == pytest.approx(0.5, abs=0.01)


def test_model_is_device_agnostic_on_cpu():
    model = BetaVAE(VAEConfig(input_shape=(1, 4, 4), latent_dim=2, hidden=(8,))).to("cpu")
    out = model(torch.rand(3, 1, 4, 4).round())
    assert out.z.device.type == "cpu" and model.sample(2).device.type == "cpu"
