"""Chapter 2 library: the conditional-prior VAE, exact-mixture information estimates,
settings, labels, optimal critics, the binary chain and the two-slider explorer."""

from __future__ import annotations

import math

import ipywidgets as w
import numpy as np
import pytest
import torch
from torch.distributions import Independent, Normal

from hvae_lib.analysis import binary_symmetric_chain, gaussian_pair_log_ratio, optimal_critic_values
from hvae_lib.data import coarse_labels
from hvae_lib.experiments.ch02_transitive import (
    TransitiveSettings,
    compare_priors,
    transitive_settings,
)
from hvae_lib.info import gaussian_pair_sampler, mutual_information, transitive_bounds
from hvae_lib.info.aggregate import (
    aggregate_information,
    diag_gaussian_log_density_matrix,
    mixture_log_density,
)
from hvae_lib.models import (
    BetaVAE,
    ConditionalPriorVAE,
    ConditionalPriorVAEConfig,
    VAEConfig,
    pack_images_labels,
    unpack_images_labels,
)
from hvae_lib.objectives import conditional_prior_loss
from hvae_lib.train import ResultCache, TrainConfig, fit
from hvae_lib.widgets import precomputed_grid_sliders


def small_config(
    arch: str = "mlp", shape=(1, 8, 8), k: int = 3, prior_hidden=()
) -> ConditionalPriorVAEConfig:
    vae = VAEConfig(
        input_shape=shape,
        latent_dim=4,
        architecture=arch,
        hidden=(16,) if arch == "mlp" else (8, 8),
        dense=16,
    )
    return ConditionalPriorVAEConfig(vae=vae, label_dim=k, prior_hidden=prior_hidden)


# ------------------------------------------------------------------------------ the model
@pytest.mark.parametrize(
    "arch, shape, prior_hidden", [("mlp", (1, 8, 8), ()), ("conv", (1, 16, 16), (8,))]
)
def test_forward_shapes_and_terms(arch, shape, prior_hidden):
    torch.manual_seed(0)
    model = ConditionalPriorVAE(small_config(arch, shape, 3, prior_hidden))
    x = torch.rand(5, *shape).round()
    u = torch.eye(3)[torch.tensor([0, 1, 2, 0, 1])]
    out = model(x, u)
    assert (
        out.distortion.shape == (5,) and out.rate.shape == (5,) and out.rate_per_dim.shape == (5, 4)
    )
    assert out.mu.shape == out.logvar.shape == out.z.shape == (5, 4) and out.decoder_out.shape == (
        5,
        *shape,
    )
    assert torch.isfinite(out.elbo).all() and (out.rate >= 0).all()
    torch.testing.assert_close(out.rate_per_dim.sum(-1), out.rate)
    mu_p, logvar_p = model.prior(u)
    assert mu_p.shape == logvar_p.shape == (5, 4)
    assert model.sample(u).shape == (5, *shape)
    with pytest.raises(ValueError, match="u must have shape"):
        model(x, torch.zeros(5, 2))
    with pytest.raises(ValueError):
        ConditionalPriorVAEConfig(label_dim=0)


def test_rate_is_kl_to_the_conditional_prior_analytic_vs_monte_carlo():
    torch.manual_seed(1)
    model = ConditionalPriorVAE(small_config(prior_hidden=(8,)))
    with torch.no_grad():  # move the prior away from N(0, I) so the test is not trivial
        model.prior_head.linear.bias.normal_(0.0, 0.7)
    x = torch.rand(6, 1, 8, 8).round()
    u = torch.eye(3)[torch.tensor([0, 1, 2, 2, 1, 0])]
    with torch.no_grad():
        out = model(x, u)
        mu_p, logvar_p = model.prior(u)
    q = Independent(Normal(out.mu, torch.exp(0.5 * out.logvar)), 1)
    p = Independent(Normal(mu_p, torch.exp(0.5 * logvar_p)), 1)
    z = q.sample((20000,))
    mc = (q.log_prob(z) - p.log_prob(z)).mean(0)
    torch.testing.assert_close(mc, out.rate, atol=0.05, rtol=0.02)


def test_zero_prior_network_gives_the_standard_vae_rate():
    torch.manual_seed(2)
    model = ConditionalPriorVAE(small_config())
    with torch.no_grad():
        model.prior_head.linear.weight.zero_()
        model.prior_head.linear.bias.zero_()
    std = BetaVAE(model.config.vae)
    std.load_state_dict(model.vae.state_dict())
    x = torch.rand(4, 1, 8, 8).round()
    u = torch.eye(3)[torch.tensor([0, 1, 2, 0])]
    gen1, gen2 = torch.Generator().manual_seed(0), torch.Generator().manual_seed(0)
    a, b = model(x, u, generator=gen1), std(x, generator=gen2)
    torch.testing.assert_close(a.rate, b.rate)
    torch.testing.assert_close(a.distortion, b.distortion)


def test_pack_unpack_and_loss_and_cached_fit(tmp_path):
    imgs = (torch.rand(40, 1, 8, 8) > 0.5).to(torch.uint8)
    lab = torch.arange(40) % 3
    u = torch.eye(3, dtype=torch.uint8)[lab]
    packed = pack_images_labels(imgs, u)
    assert packed.dtype == torch.uint8 and packed.shape == (40, 64 + 3)
    x, uu = unpack_images_labels(packed, (1, 8, 8))
    assert torch.equal(x, imgs.float()) and torch.equal(uu, u.float())
    assert pack_images_labels(imgs.float() * 0.5, u).dtype == torch.float32
    with pytest.raises(ValueError):
        pack_images_labels(imgs, u[:3])
    with pytest.raises(ValueError):
        unpack_images_labels(packed[:, :10], (1, 8, 8))
    cfg = small_config()
    loss, logs = conditional_prior_loss(2.0)(ConditionalPriorVAE(cfg), packed.float())
    assert loss.shape == () and set(logs) == {"loss", "distortion", "rate"}
    tc = TrainConfig(steps=30, batch_size=16, lr=3e-3, log_every=10)
    cache = ResultCache(tmp_path, enabled=True)
    m1, r1 = fit(
        lambda: ConditionalPriorVAE(cfg),
        packed,
        conditional_prior_loss(1.0),
        tc,
        key=("c", cfg),
        cache=cache,
        progress=False,
    )
    m2, r2 = fit(
        lambda: ConditionalPriorVAE(cfg),
        packed,
        conditional_prior_loss(1.0),
        tc,
        key=("c", cfg),
        cache=cache,
        progress=False,
    )
    assert not r1.from_cache and r2.from_cache and r1.skipped_steps == 0
    for a, b in zip(m1.state_dict().values(), m2.state_dict().values()):
        torch.testing.assert_close(a.cpu(), b.cpu())


# --------------------------------------------------------------- exact-mixture estimators
def test_log_density_matrix_and_mixture_match_torch():
    g = torch.Generator().manual_seed(0)
    z = torch.randn(7, 3, generator=g, dtype=torch.float64)
    mu = torch.randn(5, 3, generator=g, dtype=torch.float64)
    logvar = torch.randn(5, 3, generator=g, dtype=torch.float64) * 0.5
    ref = Independent(Normal(mu, torch.exp(0.5 * logvar)), 1).log_prob(z[:, None, :])
    torch.testing.assert_close(diag_gaussian_log_density_matrix(z, mu, logvar), ref)
    mix = torch.logsumexp(ref, 1) - math.log(5)
    torch.testing.assert_close(mixture_log_density(z, mu, logvar, chunk_size=2), mix)
    with pytest.raises(ValueError):
        mixture_log_density(z, mu[:, :2], logvar[:, :2])


def test_well_separated_deterministic_posteriors_reach_log_n_and_label_entropy():
    n = 60
    g = torch.Generator().manual_seed(0)
    mu = torch.randn(n, 3, generator=g) * 20.0
    logvar = torch.full((n, 3), -10.0)
    labels = np.arange(n) % 4
    ai = aggregate_information(mu, logvar, labels, num_samples=3, generator=g)
    # the ceiling holds up to float64 rounding of the expanded quadratic form (sigma^2 = e^-10 here)
    assert ai.i_xz == pytest.approx(math.log(n), abs=1e-6) and ai.i_xz <= ai.ceiling_xz + 1e-6
    assert ai.i_zu == pytest.approx(math.log(4), abs=1e-6)
    assert ai.label_entropy == pytest.approx(math.log(4)) and ai.ceiling_zu == pytest.approx(
        math.log(4)
    )
    assert ai.log_q_z.shape == (n, 3) and ai.num_labels == 4


def test_identical_posteriors_carry_no_information():
    mu = torch.ones(30, 2) * 0.3
    logvar = torch.zeros(30, 2)
    ai = aggregate_information(
        mu, logvar, np.arange(30) % 3, num_samples=2, generator=torch.Generator().manual_seed(0)
    )
    assert abs(ai.i_xz) < 1e-12 and abs(ai.i_zu) < 1e-12
    # R - I(X;Z) = KL(q(z) || N(0, I)) = KL(N(0.3, 1) || N(0, 1)) per dimension
    rate = np.full(30, 2 * 0.5 * 0.3**2)
    gap, se = ai.rate_gap(rate)
    assert gap == pytest.approx(0.09, abs=1e-9)


def test_ceilings_hold_sample_by_sample_for_random_posteriors():
    g = torch.Generator().manual_seed(3)
    mu = torch.randn(50, 2, generator=g)
    logvar = torch.randn(50, 2, generator=g) - 1.0
    labels = np.random.default_rng(0).integers(0, 5, 50)
    ai = aggregate_information(
        mu, logvar, labels, num_samples=5, batch_size=7, chunk_size=9, generator=g
    )
    assert (ai.pointwise_i_xz <= math.log(50) + 1e-9).all()
    assert (ai.pointwise_i_zu <= np.log(50 / ai.label_counts)[:, None] + 1e-9).all()
    assert ai.i_zu <= ai.label_entropy + 1e-9 <= ai.ceiling_zu + 1e-9
    with pytest.raises(ValueError, match="labels"):
        aggregate_information(mu, logvar, labels[:10], generator=g)
    with pytest.raises(ValueError, match="no labels"):
        _ = aggregate_information(mu, logvar, generator=g).i_zu
    with pytest.raises(TypeError, match=r"torch\.Generator.*got int 3"):
        aggregate_information(mu, logvar, labels, generator=3)  # type: ignore[arg-type]


def test_one_dimensional_information_matches_quadrature():
    mu = torch.tensor([[-1.0], [0.0], [1.5]])
    logvar = torch.tensor([[0.0], [-1.0], [-0.5]])
    grid = torch.linspace(-12, 12, 200001, dtype=torch.float64)[:, None]
    dens = torch.exp(diag_gaussian_log_density_matrix(grid, mu.double(), logvar.double()))  # [G, 3]
    q = dens.mean(1, keepdim=True)
    dz = float(grid[1, 0] - grid[0, 0])
    i_true = float((dens * torch.log(dens / q)).sum() * dz / 3)
    ai = aggregate_information(
        mu, logvar, num_samples=20000, generator=torch.Generator().manual_seed(1)
    )
    assert abs(ai.i_xz - i_true) < 4 * ai.i_xz_se + 1e-3
    # R - I(X;Z) = KL(q(z) || N(0, 1))
    p = torch.exp(-0.5 * grid**2) / math.sqrt(2 * math.pi)
    kl_true = float((q * torch.log(q / p)).sum() * dz)
    var = torch.exp(logvar)
    rate = (0.5 * (var + mu**2 - 1 - logvar)).squeeze(1).numpy()
    gap, se = ai.rate_gap(rate)
    assert abs(gap - kl_true) < 4 * se + 1e-3


def test_t3_slack_is_zero_when_the_prior_copies_each_posterior():
    # u = x (every example its own label) and p(z|u) = q(z|x): R_u = 0, I(Z;U) = I(X;Z)
    g = torch.Generator().manual_seed(4)
    mu, logvar = torch.randn(20, 2, generator=g), torch.randn(20, 2, generator=g) * 0.3
    ai = aggregate_information(mu, logvar, np.arange(20), num_samples=4, generator=g)
    slack, se = ai.t3_slack(np.zeros(20))
    assert abs(slack) < 1e-9 and ai.i_zu == pytest.approx(ai.i_xz)


# ------------------------------------------------------------- settings, labels, helpers
def test_settings_round_trip_and_profiles():
    for profile in ("quick", "paper"):
        s = transitive_settings(profile)
        assert TransitiveSettings.from_json(s.to_json()) == s
        assert len(s.mi_values) >= 5 and max(s.mi_values) == pytest.approx(5.0)
    assert transitive_settings("quick").dataset == "dsprites_lite"
    with pytest.raises(ValueError, match="valid profiles"):
        transitive_settings("huge")


def test_coarse_labels_on_a_grid():
    sizes = (3, 8, 8)
    f = np.stack(np.meshgrid(*[np.arange(s) for s in sizes], indexing="ij"), -1).reshape(-1, 3)
    labels, k = coarse_labels(f, ["shape", "posX", "posY"], sizes, ["posX", "posY"], 4)
    assert k == 16 and labels.min() == 0 and labels.max() == 15
    assert np.all(np.bincount(labels) == len(f) // 16)
    labels2, k2 = coarse_labels(f, ["shape", "posX", "posY"], sizes, ["shape"], 10)
    assert k2 == 3 and np.array_equal(labels2, f[:, 0])
    with pytest.raises(ValueError, match="unknown factor"):
        coarse_labels(f, ["shape", "posX", "posY"], sizes, ["hue"], 4)


def test_optimal_critic_matches_densities_and_infonce_cap():
    mi, d = 1.5, 3
    x, y = gaussian_pair_sampler(mi, d)(6, torch.Generator().manual_seed(0))
    rho = math.sqrt(1 - math.exp(-2 * mi / d))
    cov = torch.tensor([[1.0, rho], [rho, 1.0]], dtype=torch.float64)
    joint = torch.distributions.MultivariateNormal(torch.zeros(2, dtype=torch.float64), cov)
    pairs = torch.stack(
        [x.double()[:, None, :].expand(6, 6, d), y.double()[None, :, :].expand(6, 6, d)], -1
    )
    ref = (joint.log_prob(pairs) - Normal(0.0, 1.0).log_prob(pairs).sum(-1)).sum(-1)
    torch.testing.assert_close(gaussian_pair_log_ratio(x, y, mi), ref)
    g = torch.Generator().manual_seed(0)
    v = optimal_critic_values(4.0, 2, 16, 30, generator=g)
    assert (v["infonce"] <= math.log(16) + 1e-12).all() and v["nwj"].shape == (30,)
    zero = optimal_critic_values(0.0, 2, 16, 5, generator=g)
    assert np.allclose(zero["infonce"], 0.0) and np.allclose(zero["nwj"], 0.0)


def test_binary_symmetric_chain():
    p = binary_symmetric_chain(0.1, 0.2)
    assert p.shape == (2, 2, 2) and p.sum() == pytest.approx(1.0)
    tb = transitive_bounds(p)
    h = lambda e: -(e * math.log(e) + (1 - e) * math.log(1 - e))  # noqa: E731
    assert tb.is_markov and tb.i_ab == pytest.approx(math.log(2) - h(0.1))
    assert tb.i_ac == pytest.approx(math.log(2) - h(0.1 * 0.8 + 0.2 * 0.9))
    assert mutual_information(p.sum(1)) == pytest.approx(tb.i_ac)
    with pytest.raises(ValueError):
        binary_symmetric_chain(1.5, 0.1)


def test_grid_sliders_structure():
    png = b"\x89PNG\r\n\x1a\n" + b"0" * 10
    box = precomputed_grid_sliders(
        ["a", "b"], ["x", "y", "z"], [[png] * 3, [png] * 3], row_description="r"
    )
    rows, cols, outer = box.children
    assert isinstance(outer, w.Stack) and len(outer.children) == 2
    assert all(isinstance(s, w.Stack) and len(s.children) == 3 for s in outer.children)
    assert rows.options == ("a", "b") and cols.options == ("x", "y", "z")
    with pytest.raises(ValueError, match="grid"):
        precomputed_grid_sliders(["a"], ["x", "y"], [[png]])
    with pytest.raises(ValueError, match="distinct"):
        precomputed_grid_sliders(["a", "a"], ["x"], [[png], [png]])


def test_compare_priors_plumbing():
    g = torch.Generator().manual_seed(0)
    imgs = (torch.rand(48, 1, 8, 8, generator=g) > 0.5).to(torch.uint8)
    labels = np.arange(48) % 4
    s = TransitiveSettings(
        model=VAEConfig(input_shape=(1, 8, 8), latent_dim=3, hidden=(16,)),
        train=TrainConfig(steps=40, batch_size=16, lr=3e-3, log_every=20),
        info_samples=2,
        info_examples=30,
    )
    res = compare_priors(
        s,
        imgs,
        labels,
        4,
        cache=ResultCache(enabled=False),
        progress=False,
        rng=np.random.default_rng(0),
        generator=torch.Generator().manual_seed(0),
    )
    rows = {r.model: r for r in res.rows()}
    assert set(rows) == {"standard", "conditional"}
    for r in rows.values():
        assert 0.0 <= r.i_xz <= math.log(30) + 1e-9 and r.i_zu <= math.log(4) + 1e-9
        assert r.t3_slack > -4 * r.t3_slack_se - 1e-6
    assert rows["standard"].rate_minus_i_xz > -4 * rows["standard"].rate_minus_i_xz_se - 1e-6
    assert len(res.table()) == 2 and res.num_labels == 4
    assert res.info["standard"].n == 30 and res.labels.shape == (
        30,
    )  # evaluated on a random subset drawn from rng
