"""HierarchicalVAE: rate decomposition, analytic vs MC KL, gradients, presets, ladder merge, σ, errors."""

from __future__ import annotations

import io
import math

import pytest
import torch

from hvae_lib.distributions import diag_gaussian, gaussian_kl
from hvae_lib.experiments.ch03_rate_splitting import paper_train_config
from hvae_lib.models import (
    HierarchicalVAE,
    HierarchicalVAEConfig,
    paper_preset,
    precision_weighted_merge,
    prototype_preset,
)
from hvae_lib.models.hierarchical import conv_resolutions
from hvae_lib.objectives import betas_from_authors, hierarchical_loss, kl_warmup
from hvae_lib.train import ResultCache, TrainConfig, fit

torch.set_num_threads(1)


def _cfg(**kw):
    base = dict(
        input_shape=(1, 8, 8), latent_dims=(6, 4), hidden=16, prior_hidden=8, channels=8, sigma=0.3
    )
    base.update(kw)
    return HierarchicalVAEConfig(**base)


VARIANTS = [
    ("mlp", "separate", (1, 8, 8)),
    ("mlp", "ladder", (1, 8, 8)),
    ("conv", "separate", (1, 8, 8)),
    ("conv", "ladder", (3, 16, 16)),
    ("conv", "separate", (1, 28, 28)),
]


@pytest.mark.parametrize("arch, inference, shape", VARIANTS)
@pytest.mark.parametrize("latent_dims", [(6, 4), (6, 5, 3)])
@pytest.mark.parametrize("likelihood", ["gaussian", "bernoulli"])
def test_forward_shapes_finite_and_nonnegative_rates(
    arch, inference, shape, latent_dims, likelihood
):
    torch.manual_seed(0)
    cfg = _cfg(
        architecture=arch,
        inference=inference,
        input_shape=shape,
        latent_dims=latent_dims,
        likelihood=likelihood,
    )
    model = HierarchicalVAE(cfg)
    x = torch.rand(5, *shape).round()
    out = model(x, generator=torch.Generator().manual_seed(1))
    L = len(latent_dims)
    assert out.distortion.shape == (5,) and out.rates.shape == (5, L)
    assert len(out.means) == len(out.samples) == L
    for z, s in zip(out.samples, cfg.latent_shapes):
        assert z.shape == (5, *s)
    assert torch.isfinite(out.distortion).all() and torch.isfinite(out.rates).all()
    assert (out.rates >= 0).all()
    torch.testing.assert_close(out.elbo, -(out.distortion + out.rates.sum(-1)))
    means = model.posterior_means(x)  # bottom-up, like cfg.latent_shapes
    assert [tuple(m.shape[1:]) for m in means] == list(cfg.latent_shapes)
    assert model.reconstruct(x).shape == x.shape
    assert model.sample(3, generator=torch.Generator().manual_seed(0)).shape == (3, *shape)
    mu, logvar = model.top_posterior(x)  # (mu, logvar), like every model
    torch.testing.assert_close(mu, out.means[-1])
    torch.testing.assert_close(logvar, out.logvars[-1])
    loss, logs = hierarchical_loss([1.0] * L)(model, x)
    assert loss.shape == () and set(logs) == {
        "loss",
        "distortion",
        "rate",
        *(f"rate_{i + 1}" for i in range(L)),
    }
    assert model.rate_per_layer(x).shape == (5, L)


def test_noise_argument_reproduces_generator_draws():
    torch.manual_seed(0)
    model = HierarchicalVAE(_cfg(latent_dims=(6, 5, 3)))
    x = torch.rand(4, 1, 8, 8)
    a = model(x, generator=torch.Generator().manual_seed(7))
    noise = model.draw_noise(4, generator=torch.Generator().manual_seed(7))
    b = model(x, noise=noise)
    torch.testing.assert_close(a.rates, b.rates, rtol=0, atol=0)
    torch.testing.assert_close(a.distortion, b.distortion, rtol=0, atol=0)


@pytest.mark.parametrize(
    "latent_dims, inference", [((5, 3), "separate"), ((5, 4, 3), "separate"), ((5, 4, 3), "ladder")]
)
def test_rate_decomposition_by_monte_carlo(latent_dims, inference):
    """E_q[log q(z_1..L|x) - log p(z_1..L)] = R(z_L) + sum_l E[KL_l] per x (chain rule of KL)."""
    torch.manual_seed(1)
    model = HierarchicalVAE(_cfg(latent_dims=latent_dims, inference=inference)).double()
    with torch.no_grad():  # make the conditional priors input-dependent and not ~N(0, I)
        for p in model.parameters():
            p.mul_(3.0)
    S = 20000
    for k in range(2):
        x = torch.rand(
            1, 1, 8, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(k)
        ).expand(S, 1, 8, 8)
        with torch.no_grad():
            out = model(x, generator=torch.Generator().manual_seed(10 + k))
        log_ratio = out.log_ratio()
        total_analytic = out.rates.sum(-1)
        # the top rate is deterministic given x; the lower ones vary with the sampled higher layers
        assert out.rates[:, -1].std() < 1e-9
        assert out.rates[:, 0].std() > 1e-3
        diff = log_ratio - total_analytic  # zero-mean by the decomposition
        se = diff.std() / math.sqrt(S)
        assert abs(float(diff.mean())) < 4 * float(se) + 1e-9
        # and the MC total rate matches the sum of per-layer rate estimates within MC error
        se_total = log_ratio.std() / math.sqrt(S)
        assert abs(float(log_ratio.mean() - total_analytic.mean())) < 4 * float(se_total)


def test_analytic_lower_kl_matches_monte_carlo_at_fixed_higher_layer():
    torch.manual_seed(2)
    model = HierarchicalVAE(_cfg()).double()
    S = 40000
    x = torch.rand(1, 1, 8, 8, dtype=torch.float64).expand(S, 1, 8, 8)
    gen = torch.Generator().manual_seed(3)
    eps2 = torch.randn(1, 4, generator=gen, dtype=torch.float64).expand(S, 4)  # one fixed z2
    eps1 = torch.randn(S, 6, generator=gen, dtype=torch.float64)
    with torch.no_grad():
        out = model(x, noise=[eps1, eps2])
    kl = out.rates[:, 0]
    assert float(kl.std()) < 1e-9  # same z2 everywhere
    q = diag_gaussian(out.means[0], out.logvars[0])
    p = diag_gaussian(out.prior_means[0], out.prior_logvars[0])
    mc = q.log_prob(out.samples[0]) - p.log_prob(out.samples[0])
    assert abs(float(mc.mean() - kl[0])) < 4 * float(mc.std()) / math.sqrt(S)
    # closed form against torch.distributions, and KL(q||q) = 0
    mu, lv = torch.randn(3, 5, dtype=torch.float64), torch.randn(3, 5, dtype=torch.float64)
    mu2, lv2 = torch.randn(3, 5, dtype=torch.float64), torch.randn(3, 5, dtype=torch.float64)
    ref = torch.distributions.kl_divergence(diag_gaussian(mu, lv), diag_gaussian(mu2, lv2))
    torch.testing.assert_close(gaussian_kl(mu, lv, mu2, lv2).sum(-1), ref)
    assert float(gaussian_kl(mu, lv, mu, lv).abs().max()) < 1e-15  # zero up to rounding


def test_every_rate_has_gradients_through_reparameterised_samples():
    torch.manual_seed(3)
    model = HierarchicalVAE(_cfg())
    x = torch.rand(8, 1, 8, 8)
    out = model(x)
    top_params = list(model.posteriors[1].parameters())  # q(z2 | x)
    g_lower = torch.autograd.grad(out.rates[:, 0].sum(), top_params, retain_graph=True)
    # R(z1|z2) reaches q(z2|x) through the sampled z2 (not detached)
    assert sum(float(g.abs().sum()) for g in g_lower) > 0
    g_top = torch.autograd.grad(out.rates[:, 1].sum(), top_params, retain_graph=True)
    assert sum(float(g.abs().sum()) for g in g_top) > 0
    g_prior = torch.autograd.grad(
        out.rates[:, 0].sum(), list(model.priors[0].parameters()), retain_graph=True
    )
    assert sum(float(g.abs().sum()) for g in g_prior) > 0
    g_dec = torch.autograd.grad(out.distortion.sum(), top_params)
    assert sum(float(g.abs().sum()) for g in g_dec) > 0


def test_paper_preset_parameter_counts():
    model = HierarchicalVAE(paper_preset("svhn"))
    assert model.num_parameters() == 475_811
    assert model.block_parameter_counts() == {
        "q(z2|x)": 67_232,
        "q(z1|z2,x)": 102_592,
        "p(z1|z2)": 271_616,
        "p(x|z1)": 34_371,
    }
    assert paper_preset("cifar10") == paper_preset("svhn")
    cfg = paper_preset("svhn")
    assert cfg.latent_shapes == ((32, 4, 4), (32,)) and cfg.sigma == 0.71
    out = model(torch.rand(2, 3, 32, 32))
    assert out.samples[0].shape == (2, 32, 4, 4) and out.rates.shape == (2, 2)
    assert HierarchicalVAE(paper_preset("mnist")).num_parameters() == 122_713
    assert HierarchicalVAE(prototype_preset()).num_parameters() == 35_184
    assert HierarchicalVAE(paper_preset("svhn", inference="ladder")).num_parameters() > 0
    with pytest.raises(ValueError, match="svhn, cifar10, mnist"):
        paper_preset("imagenet")
    tc = paper_train_config(73_257)
    assert tc.batch_size == 256 and tc.lr == 3e-4 and tc.max_grad_norm is None
    assert tc.steps == 500 * (73_257 // 256)


def test_conv_resolutions():
    assert conv_resolutions(32) == [32, 16, 8, 4]
    assert conv_resolutions(28) == [28, 14, 7, 4]
    assert conv_resolutions(8) == [8, 4]
    with pytest.raises(ValueError, match="28"):
        conv_resolutions(24)


def test_precision_weighted_merge_formula_and_density_product():
    g = torch.Generator().manual_seed(0)
    mu_h, mu_p = (
        torch.randn(4, 3, generator=g, dtype=torch.float64),
        torch.randn(4, 3, generator=g, dtype=torch.float64),
    )
    s_h = torch.rand(4, 3, generator=g, dtype=torch.float64) + 0.2
    s_p = torch.rand(4, 3, generator=g, dtype=torch.float64) + 0.2
    mu, s = precision_weighted_merge(mu_h, s_h, mu_p, s_p)
    v_h, v_p = s_h**2, s_p**2
    torch.testing.assert_close(s**2, v_h * v_p / (v_h + v_p))
    torch.testing.assert_close(mu, (mu_h * v_p + mu_p * v_h) / (v_h + v_p))
    # N(z; mu_h, s_h) N(z; mu_p, s_p) / N(z; mu, s) does not depend on z
    n = torch.distributions.Normal
    zs = torch.randn(5, 4, 3, generator=g, dtype=torch.float64)
    r = n(mu_h, s_h).log_prob(zs) + n(mu_p, s_p).log_prob(zs) - n(mu, s).log_prob(zs)
    torch.testing.assert_close(r - r[0], torch.zeros_like(r))


def test_ladder_posterior_is_the_merge_of_bottom_up_and_prior():
    torch.manual_seed(4)
    model = HierarchicalVAE(_cfg(inference="ladder"))
    x = torch.rand(6, 1, 8, 8)
    out = model(x)
    d = model.shared(x)
    mu_h, s_h = model.posteriors[0](d)
    mu_p, s_p = model.priors[0](out.samples[1])
    mu, s = precision_weighted_merge(mu_h, s_h, mu_p, s_p)
    torch.testing.assert_close(out.means[0], mu)
    std0 = torch.exp(0.5 * out.logvars[0])
    torch.testing.assert_close(std0, s)
    assert (std0 <= torch.minimum(s_h, s_p) + 1e-6).all()


def test_sigma_rescales_beta():
    """(σ, β) and (σ', β σ²/σ'²): losses are affine in each other, gradients scale by σ²/σ'²."""
    torch.manual_seed(5)
    s1, s2 = 0.3, 0.6
    m1 = HierarchicalVAE(_cfg(sigma=s1)).double()
    m2 = HierarchicalVAE(_cfg(sigma=s2)).double()
    state = {k: v for k, v in m1.state_dict().items() if k != "sigma"}
    m2.load_state_dict({**state, "sigma": m2.sigma}, strict=True)
    x = torch.rand(16, 1, 8, 8, dtype=torch.float64)
    betas = torch.tensor([0.7, 2.0], dtype=torch.float64)
    noise = m1.draw_noise(16, generator=torch.Generator().manual_seed(0))
    l1 = m1(x, noise=noise).loss(betas)
    l2 = m2(x, noise=noise).loss(betas * s1**2 / s2**2)
    g1 = torch.autograd.grad(l1, list(m1.parameters()))
    g2 = torch.autograd.grad(l2, list(m2.parameters()))
    ratio = s1**2 / s2**2
    for a, b in zip(g1, g2):
        torch.testing.assert_close(b, a * ratio)
    n = 64
    const = lambda s: n * math.log(s * math.sqrt(2 * math.pi))  # noqa: E731
    assert (l2.item() - const(s2)) == pytest.approx((l1.item() - const(s1)) * ratio, rel=1e-10)


def test_save_load_round_trip_keeps_sigma_and_betas(tmp_path):
    cfg = prototype_preset(sigma=0.25)
    assert HierarchicalVAEConfig.from_json(cfg.to_json()) == cfg
    torch.manual_seed(0)
    model = HierarchicalVAE(cfg)
    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    buf.seek(0)
    state = torch.load(buf, weights_only=True)
    assert float(state["sigma"]) == pytest.approx(0.25)
    HierarchicalVAE(cfg).load_state_dict(state)
    with pytest.raises(ValueError, match="sigma"):
        HierarchicalVAE(prototype_preset(sigma=0.71)).load_state_dict(state)
    # through fit() and the result cache: the reloaded model keeps sigma, the key keeps the betas
    data = torch.rand(64, 1, 8, 8)
    tc = TrainConfig(steps=3, batch_size=16, log_every=1)
    cache = ResultCache(tmp_path, enabled=True)
    key = {"config": cfg.to_dict(), "betas": [0.5, 2.0]}
    m1, r1 = fit(
        lambda: HierarchicalVAE(cfg),
        data,
        hierarchical_loss((0.5, 2.0)),
        tc,
        key=key,
        cache=cache,
        progress=False,
    )
    m2, r2 = fit(
        lambda: HierarchicalVAE(cfg),
        data,
        hierarchical_loss((0.5, 2.0)),
        tc,
        key=key,
        cache=cache,
        progress=False,
    )
    assert r2.from_cache and float(m2.sigma) == pytest.approx(0.25)
    for k, v in m1.state_dict().items():
        torch.testing.assert_close(m2.state_dict()[k], v)
    assert cache.key(key, tc, data) != cache.key({**key, "betas": [2.0, 0.5]}, tc, data)


def test_bad_parameters_raise_clear_errors():
    with pytest.raises(ValueError, match="inference variant"):
        _cfg(inference="bottom_up")
    with pytest.raises(ValueError, match="architecture"):
        _cfg(architecture="resnet")
    with pytest.raises(ValueError, match="likelihood"):
        _cfg(likelihood="laplace")
    with pytest.raises(ValueError, match="L >= 2"):
        _cfg(latent_dims=(4,))
    with pytest.raises(ValueError, match="sigma"):
        _cfg(sigma=0.0)
    with pytest.raises(ValueError, match="square"):
        _cfg(architecture="conv", input_shape=(1, 8, 16))
    with pytest.raises(ValueError, match="positive"):
        hierarchical_loss((1.0, 0.0))
    with pytest.raises(ValueError, match="positive"):
        hierarchical_loss((-1.0, 1.0))
    model = HierarchicalVAE(_cfg())
    with pytest.raises(ValueError, match="expected input"):
        model(torch.rand(2, 64))
    with pytest.raises(ValueError, match="expected input"):
        model(torch.rand(2, 1, 8, 9))
    with pytest.raises(ValueError, match="need 2 betas"):
        hierarchical_loss((1.0, 1.0, 1.0))(model, torch.rand(2, 1, 8, 8))


def test_warmup_and_author_conversion():
    assert kl_warmup(0, 0) == 1.0
    assert kl_warmup(0, 4) == 0.25 and kl_warmup(3, 4) == 1.0 and kl_warmup(10, 4) == 1.0
    with pytest.raises(ValueError):
        kl_warmup(-1, 4)
    assert betas_from_authors(beta_y=0.1, beta_z=3.0) == (0.1, 3.0)
    loss = hierarchical_loss((2.0, 2.0), warmup_steps=2)
    torch.manual_seed(0)
    model = HierarchicalVAE(_cfg())
    x = torch.rand(4, 1, 8, 8)
    torch.manual_seed(1)
    l0, logs0 = loss(model, x)  # weight 1/2
    torch.manual_seed(1)
    ref = model(x).loss((1.0, 1.0))
    torch.testing.assert_close(l0, ref)
