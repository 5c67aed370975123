"""SemafoVAE / SemafoHVAE / M2: shapes and finiteness of every term, consistency, configs, training."""

from __future__ import annotations

import math

import pytest
import torch

from hvae_lib.distributions import relaxed_one_hot
from hvae_lib.experiments.ch04_semafovae import SemafoSettings, semafo_settings
from hvae_lib.models.m2 import M2VAE, M2Config
from hvae_lib.models.semafo import SemafoConfig, SemafoHVAE, SemafoVAE, build_semafo
from hvae_lib.models.vae import VAEConfig
from hvae_lib.objectives import (
    M2LossConfig,
    SemafoLossConfig,
    labelled_objective,
    m2_loss,
    semafo_loss,
    unlabelled_objective,
)

torch.set_num_threads(1)

SIZES = (3, 2, 4)
VAE = VAEConfig(input_shape=(1, 16, 16), latent_dim=4, architecture="conv", hidden=(8, 8), dense=16)


def _cfg(variant: str = "flat") -> SemafoConfig:
    return SemafoConfig(
        vae=VAE,
        factor_sizes=SIZES,
        label_hidden=(16,),
        prior_hidden=(8,),
        variant=variant,
        z1_attach=8,
        z1_channels=2,
        z1_kernel=4,
        z1_stride=2,
        z1_deter_channels=2,
        z1_u_hidden=8,
    )


def _batch(n: int = 5, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = (torch.rand(n, 1, 16, 16, generator=g) > 0.7).float()
    y = torch.stack([torch.randint(0, k, (n,), generator=g) for k in SIZES], dim=1)
    return x, y


@pytest.mark.parametrize("variant", ["flat", "hierarchical"])
@pytest.mark.parametrize("labelled", [True, False])
def test_terms_shapes_and_finite(variant: str, labelled: bool) -> None:
    torch.manual_seed(0)
    model = build_semafo(_cfg(variant))
    assert isinstance(model, SemafoHVAE if variant == "hierarchical" else SemafoVAE)
    x, y = _batch()
    out = model(x, y if labelled else None, generator=torch.Generator().manual_seed(1))
    assert out.labelled == labelled
    for name, t in out.terms().items():
        assert t.shape == (5,), name
        assert torch.isfinite(t).all(), name
    assert out.y.shape == (5, sum(SIZES)) and out.qy_logits.shape == (5, sum(SIZES))
    assert out.decoder_out.shape == x.shape
    assert (out.kl_u >= 0).all() and (out.kl_z0 >= 0).all() and (out.kl_z1 >= 0).all()
    if variant == "hierarchical":
        assert out.z1 is not None and out.z1.shape == (5, 2, 4, 4) and (out.kl_z1 > 0).all()
    else:
        assert out.z1 is None and (out.kl_z1 == 0).all()
    if labelled:
        assert (out.entropy_qy == 0).all() and (out.log_qy_z < 0).all()
    else:
        assert (out.log_qy_z == 0).all()
        ent_max = sum(math.log(k) for k in SIZES)
        assert ((out.entropy_qy > 0) & (out.entropy_qy <= ent_max + 1e-5)).all()
        blocks = torch.split(out.y, list(SIZES), dim=-1)
        assert all(
            torch.allclose(b.sum(-1), torch.ones(5)) for b in blocks
        )  # relaxed one-hot per factor


@pytest.mark.parametrize("variant", ["flat", "hierarchical"])
def test_estimator_options_finite(variant: str) -> None:
    torch.manual_seed(0)
    model = build_semafo(_cfg(variant))
    x, y = _batch()
    lc = SemafoLossConfig(
        concrete_logprob=True, pseudo_labels="straight_through", entropy="mc", mc_kl=True
    )
    for yy in (y, None):
        out = model(x, yy, generator=torch.Generator().manual_seed(2), loss_config=lc)
        for name, t in out.terms().items():
            assert torch.isfinite(t).all(), name
    loss, logs = semafo_loss(model, x, y, x, lc, generator=torch.Generator().manual_seed(3))
    loss.backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


@pytest.mark.parametrize(
    ("mode", "flows"), [("relaxed", True), ("straight_through", True), ("stop_gradient", False)]
)
def test_pseudo_label_gradient_reaches_the_classifier_only_when_reparameterised(
    mode: str, flows: bool
) -> None:
    """log p(y~|u) depends on q(y|z0) only through the pseudo-label y~: its gradient reaches the
    classifier for the relaxed and straight-through samples and is exactly zero for the authors'
    NoReparams (stop-gradient); the zero is the control that the gradient test can fail."""
    torch.manual_seed(0)
    model = build_semafo(_cfg("flat"))
    x, _ = _batch()
    lc = SemafoLossConfig(pseudo_labels=mode)
    out = model(x, generator=torch.Generator().manual_seed(1), loss_config=lc)
    out.log_py_u.sum().backward()
    grad = sum(
        float(p.grad.abs().sum()) for p in model.classifier.parameters() if p.grad is not None
    )
    assert (grad > 0) == flows, (mode, grad)
    if mode == "straight_through":  # one-hot forward
        assert set(torch.unique(out.y).tolist()) <= {0.0, 1.0}
    with pytest.raises(ValueError, match="pseudo_labels"):
        SemafoLossConfig(pseudo_labels="hard")


@pytest.mark.parametrize("variant", ["flat", "hierarchical"])
def test_unlabelled_equals_labelled_with_true_pseudo_label(variant: str) -> None:
    """γ_s = γ_u, ỹ := y, q(y|z) and entropy terms off: L_uns == L_sup on the same seed."""
    torch.manual_seed(0)
    model = build_semafo(_cfg(variant))
    x, y = _batch()
    cfg = SemafoLossConfig(
        gamma_sup=3.0, gamma_uns=3.0, gamma_qy=0.0, lambda_h=0.0, beta_sup=0.7, beta_uns=0.7
    )
    sup = model(x, y, generator=torch.Generator().manual_seed(7), loss_config=cfg)
    uns = model(x, pseudo_label=y, generator=torch.Generator().manual_seed(7), loss_config=cfg)
    torch.testing.assert_close(labelled_objective(sup, cfg), unlabelled_objective(uns, cfg))
    torch.testing.assert_close(sup.kl_z1, uns.kl_z1)
    # with the authors' defaults the two differ (γ_u = 10, classifier and entropy terms on)
    d = SemafoLossConfig()
    assert not torch.allclose(labelled_objective(sup, d), unlabelled_objective(uns, d))


def test_objectives_combine_terms_as_documented() -> None:
    torch.manual_seed(0)
    model = build_semafo(_cfg("hierarchical"))
    x, y = _batch()
    c = SemafoLossConfig()
    o = model(x, y, generator=torch.Generator().manual_seed(0))
    want = 1.0 * (o.log_px + 10 * o.log_py_u + 10 * o.log_qy_z) - (o.kl_z0 + o.kl_u) - o.kl_z1
    torch.testing.assert_close(labelled_objective(o, c), want)
    o = model(x, generator=torch.Generator().manual_seed(0))
    want = 10.0 * (o.log_px + 10 * o.log_py_u) - (o.kl_z0 + o.kl_u) + o.entropy_qy - o.kl_z1
    torch.testing.assert_close(unlabelled_objective(o, c), want)


def test_semafo_loss_warmup_and_logs() -> None:
    torch.manual_seed(0)
    model = build_semafo(_cfg())
    x, y = _batch()
    loss_w, logs_w = semafo_loss(
        model,
        x,
        y,
        x,
        SemafoLossConfig(),
        supervised_only=True,
        generator=torch.Generator().manual_seed(0),
    )
    assert not any(k.startswith("uns/") for k in logs_w)
    torch.testing.assert_close(loss_w, -logs_w["sup/objective"])
    loss, logs = semafo_loss(
        model, x, y, x, SemafoLossConfig(), generator=torch.Generator().manual_seed(0)
    )
    for k in (
        "sup/log_px",
        "sup/log_py_u",
        "sup/log_qy_z",
        "sup/kl_z0",
        "sup/kl_u",
        "sup/kl_z1",
        "uns/log_px",
        "uns/log_py_u",
        "uns/entropy_qy",
        "uns/kl_z0",
        "uns/kl_u",
        "uns/kl_z1",
        "sup/acc_qy",
        "sup/acc_py",
    ):
        assert k in logs and math.isfinite(float(logs[k])), k
    torch.testing.assert_close(loss, -(logs["sup/objective"] + logs["uns/objective"]))


def test_relaxed_one_hot() -> None:
    logits = torch.randn(6, sum(SIZES))
    y = relaxed_one_hot(logits, SIZES, 0.5, torch.Generator().manual_seed(0))
    y2 = relaxed_one_hot(logits, SIZES, 0.5, torch.Generator().manual_seed(0))
    torch.testing.assert_close(y, y2)
    h = relaxed_one_hot(logits, SIZES, 0.5, torch.Generator().manual_seed(0), hard=True)
    assert set(h.unique().tolist()) <= {0.0, 1.0} and torch.equal(h.sum(-1), torch.full((6,), 3.0))
    with pytest.raises(ValueError, match="temperature"):
        relaxed_one_hot(logits, SIZES, 0.0)


def test_bad_parameters() -> None:
    with pytest.raises(ValueError, match="temperature"):
        SemafoConfig(temperature=0.0)
    with pytest.raises(ValueError, match="unknown variant"):
        SemafoConfig(variant="deep")
    with pytest.raises(ValueError, match="entropy"):
        SemafoLossConfig(entropy="exact")
    with pytest.raises(ValueError, match="gamma_uns"):
        SemafoLossConfig(gamma_uns=-1.0)
    with pytest.raises(ValueError, match="variant"):
        SemafoHVAE(_cfg("flat"))
    with pytest.raises(ValueError, match="temperature"):
        M2Config(temperature=-1.0)
    model = build_semafo(_cfg())
    with pytest.raises(ValueError, match="factor 1"):
        model.as_one_hot(torch.tensor([[0, 2, 0]]))
    with pytest.raises(ValueError, match="shape"):
        model.as_one_hot(torch.zeros(2, 4))


def test_configs_round_trip_and_settings() -> None:
    for variant in ("flat", "hierarchical"):
        c = _cfg(variant)
        assert SemafoConfig.from_json(c.to_json()) == c
    for profile in ("quick", "paper"):
        s = semafo_settings(profile)
        assert SemafoSettings.from_json(s.to_json()) == s
        assert (s.loss.gamma_sup, s.loss.gamma_y, s.loss.beta_sup, s.loss.lambda_h) == (1, 10, 1, 1)
        assert s.authors_gamma_uns == 10
        assert s.flat.temperature == 0.5 and s.train.batch_size == 64
    paper = semafo_settings("paper")
    assert (
        paper.train.lr == 1e-3 and semafo_settings("quick").train.lr == 3e-3
    )  # authors' dSprites rate / quick
    assert (
        paper.loss.gamma_uns == paper.authors_gamma_uns == 10
    )  # the authors' coefficients at their scale
    assert semafo_settings("quick").loss.gamma_uns == 1  # the quick profile's documented deviation
    with pytest.raises(ValueError, match="dci_importance"):
        semafo_settings("quick").replace(dci_importance="lasso")
    with pytest.raises(ValueError, match="label fractions"):
        semafo_settings("quick").replace(label_fractions=(0.0, 0.1))
    assert paper.flat.vae.input_shape == (1, 64, 64) and paper.train.steps == 200_000
    assert paper.loss.warmup_steps == 800 and paper.hierarchical.z1_shape == (32, 2, 2)
    assert semafo_settings("quick").hierarchical.z1_shape == (8, 4, 4)
    with pytest.raises(ValueError, match="profile"):
        semafo_settings("huge")


def test_generate_and_posterior_means() -> None:
    torch.manual_seed(0)
    for variant in ("flat", "hierarchical"):
        model = build_semafo(_cfg(variant)).eval()
        _, y = _batch(4)
        g1 = model.generate(y, torch.Generator().manual_seed(0))
        g2 = model.generate(y, torch.Generator().manual_seed(0))
        assert g1["images"].shape == (4, 1, 16, 16)
        torch.testing.assert_close(g1["images"], g2["images"])
        assert ((g1["images"] >= 0) & (g1["images"] <= 1)).all()
        pm = model.posterior_means(_batch(4)[0])
        if variant == "hierarchical":
            # bottom-up: z1 first, the top layer z0 last
            assert isinstance(pm, list) and pm[0].shape == (4, 2, 4, 4) and pm[1].shape == (4, 4)
        else:
            assert pm.shape == (4, 4)


def test_m2_terms_and_loss() -> None:
    torch.manual_seed(0)
    model = M2VAE(M2Config(vae=VAE, factor_sizes=SIZES))
    x, y = _batch()
    for yy in (y, None):
        out = model(x, yy, generator=torch.Generator().manual_seed(0))
        for name, t in out.terms().items():
            assert t.shape == (5,) and torch.isfinite(t).all(), name
        torch.testing.assert_close(out.log_py, torch.full((5,), -math.log(24.0)))
    loss, logs = m2_loss(model, x, y, x, M2LossConfig(), generator=torch.Generator().manual_seed(0))
    loss.backward()
    assert math.isfinite(float(loss.detach())) and "uns/entropy_qy" in logs
    assert model.generate(y, torch.Generator().manual_seed(0))["images"].shape == (5, 1, 16, 16)
    assert model.posterior_means(x).shape == (5, 4)
