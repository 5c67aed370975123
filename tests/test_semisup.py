"""Semi-supervised pieces: labelled subset, batch composition, training loop, generation helpers."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from hvae_lib.analysis import (
    conditional_samples,
    intervene_z1,
    posterior_traversal,
    prior_traversal,
)
from hvae_lib.models.m2 import M2VAE, M2Config
from hvae_lib.models.semafo import SemafoConfig, build_semafo
from hvae_lib.models.vae import VAEConfig
from hvae_lib.objectives import M2LossConfig, SemafoLossConfig
from hvae_lib.train import (
    SemiSupervisedBatches,
    SemiSupervisedConfig,
    TrainConfig,
    batch_composition,
    labelled_subset,
    train_semisupervised,
)

torch.set_num_threads(1)

SIZES = (3, 2, 4)
VAE = VAEConfig(input_shape=(1, 16, 16), latent_dim=4, architecture="conv", hidden=(8, 8), dense=16)


def _factors(n: int = 600, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    shape = rng.choice(3, size=n, p=[0.6, 0.3, 0.1])  # unbalanced strata
    return np.stack([shape, rng.integers(0, 2, n), rng.integers(0, 4, n)], axis=1)


def test_labelled_subset_deterministic_and_stratified() -> None:
    f = _factors()
    a = labelled_subset(f, 0.1, np.random.default_rng(1))
    b = labelled_subset(f, 0.1, np.random.default_rng(1))
    np.testing.assert_array_equal(a, b)
    assert len(a) == 60 and np.all(np.diff(a) > 0)
    assert not np.array_equal(a, labelled_subset(f, 0.1, np.random.default_rng(2)))
    counts = np.bincount(f[:, 0], minlength=3)
    got = np.bincount(f[a, 0], minlength=3)
    assert np.all(np.abs(got - counts * 0.1) <= 1.0), (got, counts)
    # joint strata and a class vector
    ab = labelled_subset(f, 0.2, np.random.default_rng(1), stratify=(0, 1))
    assert len(ab) == 120
    for s in range(3):
        for t in range(2):
            m = (f[:, 0] == s) & (f[:, 1] == t)
            assert abs(np.isin(np.flatnonzero(m), ab).sum() - 0.2 * m.sum()) <= 1.0
    np.testing.assert_array_equal(
        labelled_subset(f[:, 0], 0.1, np.random.default_rng(1)),
        labelled_subset(f, 0.1, np.random.default_rng(1)),
    )
    # every stratum gets at least one when the budget allows; all at fraction 1
    tiny = labelled_subset(f, 3 / 600, np.random.default_rng(0))
    assert len(tiny) == 3 and set(f[tiny, 0]) == {0, 1, 2}
    np.testing.assert_array_equal(labelled_subset(f, 1.0, np.random.default_rng(0)), np.arange(600))
    assert len(labelled_subset(f, 0.1, np.random.default_rng(0), stratify=None)) == 60


@pytest.mark.parametrize("bad", [0.0, -0.1, 1.5, float("nan")])
def test_label_fraction_validation(bad: float) -> None:
    with pytest.raises(ValueError, match="label fraction"):
        labelled_subset(_factors(), bad, np.random.default_rng(0))
    with pytest.raises(ValueError, match="label fraction"):
        batch_composition(bad)
    with pytest.raises(ValueError, match="label fraction"):
        SemiSupervisedConfig(label_fraction=bad)


def test_labelled_subset_needs_a_generator() -> None:
    """Randomness is passed in: an integer seed is refused with a message saying what is valid."""
    with pytest.raises(TypeError, match="numpy.random.Generator"):
        labelled_subset(_factors(), 0.1, 1)  # type: ignore[arg-type]


def test_batch_composition() -> None:
    assert batch_composition(0.1, 64) == (7, 57)
    assert batch_composition(0.004, 64) == (7, 57)
    assert batch_composition(0.5, 64) == (32, 32)
    assert batch_composition(0.2, 64) == (13, 51)
    assert batch_composition(1.0, 64) == (64, 0)


def test_batches_draw_from_the_right_pools() -> None:
    f = _factors()
    lab = labelled_subset(f, 0.05, np.random.default_rng(1))
    bs = SemiSupervisedBatches(600, lab, 64, seed=3)
    bs2 = SemiSupervisedBatches(600, lab, 64, seed=3)
    seen = set()
    for _ in range(10):
        il, iu = bs.next()
        il2, iu2 = bs2.next()
        assert torch.equal(il, il2) and torch.equal(iu, iu2)
        assert len(il) == 7 and len(iu) == 57
        assert np.isin(il.numpy(), lab).all() and not np.isin(iu.numpy(), lab).any()
        seen |= set(il.tolist())
    assert seen == set(lab.tolist())  # 70 draws cover the 30 labelled examples (epoch-wise)
    assert SemiSupervisedBatches(600, np.arange(600), 64).next()[1].numel() == 0


def _images(f: np.ndarray) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    return (torch.rand(len(f), 1, 16, 16, generator=g) > 0.7).to(torch.uint8)


@pytest.mark.parametrize("kind", ["flat", "hierarchical", "m2"])
def test_train_semisupervised_runs(kind: str) -> None:
    f = _factors(200)
    x = _images(f)
    torch.manual_seed(0)
    if kind == "m2":
        model, lc = M2VAE(M2Config(vae=VAE, factor_sizes=SIZES)), M2LossConfig(warmup_steps=4)
    else:
        cfg = SemafoConfig(
            vae=VAE,
            factor_sizes=SIZES,
            label_hidden=(16,),
            prior_hidden=(8,),
            variant=kind,
            z1_channels=2,
            z1_deter_channels=2,
            z1_u_hidden=8,
        )
        model, lc = build_semafo(cfg), SemafoLossConfig(warmup_steps=4)
    sc = SemiSupervisedConfig(
        train=TrainConfig(steps=8, batch_size=16, log_every=4), label_fraction=0.1
    )
    res = train_semisupervised(model, x, f, sc, lc, progress=False)
    assert res.steps_done == 8 and res.skipped_steps == 0
    assert res.history["step"] == [4.0, 8.0]
    assert math.isnan(res.history["uns/objective"][0]) and math.isfinite(
        res.history["uns/objective"][1]
    )
    assert all(math.isfinite(v) for v in res.history["sup/objective"])
    assert not model.training
    with pytest.raises(ValueError, match="loss_config"):
        train_semisupervised(model, x, f, sc, object(), progress=False)


def test_generation_helpers_shapes() -> None:
    torch.manual_seed(0)
    cfg = SemafoConfig(
        vae=VAE,
        factor_sizes=SIZES,
        label_hidden=(16,),
        prior_hidden=(8,),
        variant="hierarchical",
        z1_channels=2,
        z1_deter_channels=2,
        z1_u_hidden=8,
    )
    model = build_semafo(cfg).eval()
    f = _factors(10)
    s1 = conditional_samples(model, f, torch.Generator().manual_seed(0))
    s2 = conditional_samples(model, f, torch.Generator().manual_seed(0))
    assert s1.shape == (10, 1, 16, 16) and torch.equal(s1, s2)
    assert conditional_samples(model, f, mean=True).shape == (10, 1, 16, 16)
    pt = prior_traversal(model, f[0], num_dims=3, num_points=5)
    assert pt["images"].shape == (3, 5, 1, 16, 16) and torch.all(pt["std"][:-1] >= pt["std"][1:])
    assert torch.allclose(pt["offsets"], torch.linspace(-3, 3, 5))
    iv = intervene_z1(model, f[0], num_dims=4, num_points=5)
    assert iv["images"].shape == (4, 5, 1, 16, 16) and iv["base"].shape == (1, 16, 16)
    # the middle point of every z1 traversal is the base image (z0 held fixed)
    assert torch.allclose(iv["images"][:, 2], iv["base"].expand(4, 1, 16, 16), atol=1e-6)
    x = _images(f)[0].float()
    for mode in ("posterior", "prior"):
        post = posterior_traversal(model, x, num_dims=2, num_points=3, z1=mode)
        assert post["images"].shape == (2, 3, 1, 16, 16)
    flat = build_semafo(cfg.replace(variant="flat")).eval()
    with pytest.raises(ValueError, match="hierarchical"):
        intervene_z1(flat, f[0])
    assert posterior_traversal(flat, x)["images"].shape == (4, 11, 1, 16, 16)
    m2 = M2VAE(M2Config(vae=VAE, factor_sizes=SIZES)).eval()
    assert conditional_samples(m2, f, torch.Generator().manual_seed(0)).shape == (10, 1, 16, 16)


def test_fit_semisupervised_uses_the_cache(tmp_path) -> None:
    from hvae_lib.train import ResultCache, fit_semisupervised

    f = _factors(64)
    x = _images(f)
    cfg = SemafoConfig(vae=VAE, factor_sizes=SIZES, label_hidden=(16,), prior_hidden=(8,))
    sc = SemiSupervisedConfig(
        train=TrainConfig(steps=3, batch_size=16, log_every=1), label_fraction=0.25
    )
    cache = ResultCache(tmp_path, enabled=True)
    m1, r1 = fit_semisupervised(
        lambda: build_semafo(cfg),
        x,
        f,
        sc,
        SemafoLossConfig(warmup_steps=1),
        key=cfg,
        cache=cache,
        progress=False,
    )
    m2, r2 = fit_semisupervised(
        lambda: build_semafo(cfg),
        x,
        f,
        sc,
        SemafoLossConfig(warmup_steps=1),
        key=cfg,
        cache=cache,
        progress=False,
    )
    assert not r1.from_cache and r2.from_cache
    for a, b in zip(m1.state_dict().values(), m2.state_dict().values()):
        assert torch.equal(a, b)
    _, r3 = fit_semisupervised(
        lambda: build_semafo(cfg),
        x,
        f,
        sc,
        SemafoLossConfig(warmup_steps=2),
        key=cfg,
        cache=cache,
        progress=False,
    )
    assert not r3.from_cache  # the loss settings are part of the key


def test_training_is_deterministic() -> None:
    from hvae_lib.train import ResultCache, fit_semisupervised

    f = _factors(64)
    x = _images(f)
    cfg = SemafoConfig(
        vae=VAE,
        factor_sizes=SIZES,
        label_hidden=(16,),
        prior_hidden=(8,),
        variant="hierarchical",
        z1_channels=2,
        z1_deter_channels=2,
        z1_u_hidden=8,
    )
    sc = SemiSupervisedConfig(
        train=TrainConfig(steps=4, batch_size=16, log_every=2), label_fraction=0.1
    )
    off = ResultCache(enabled=False)
    runs = [
        fit_semisupervised(
            lambda: build_semafo(cfg),
            x,
            f,
            sc,
            SemafoLossConfig(warmup_steps=1),
            key=cfg,
            cache=off,
            progress=False,
        )
        for _ in range(2)
    ]
    assert runs[0][1].history == runs[1][1].history
    for a, b in zip(runs[0][0].state_dict().values(), runs[1][0].state_dict().values()):
        assert torch.equal(a, b)


def test_train_label_vae_learns_labels_and_touches_only_the_label_vae() -> None:
    from hvae_lib.analysis import evaluate_semisupervised
    from hvae_lib.train import train_label_vae

    torch.manual_seed(0)
    cfg = SemafoConfig(vae=VAE, factor_sizes=SIZES, label_hidden=(32,), prior_hidden=(8,))
    model = build_semafo(cfg)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    grid = np.stack(np.meshgrid(*[np.arange(k) for k in SIZES], indexing="ij"), -1).reshape(
        -1, len(SIZES)
    )
    hist = train_label_vae(
        model, grid, steps=400, batch_size=24, lr=3e-3, seed=0, log_every=100
    ).history
    assert hist["step"] == [100.0, 200.0, 300.0, 400.0]
    assert hist["objective"][-1] > hist["objective"][0]
    assert hist["acc_py"][-1] > 0.9  # 24 label configurations are auto-encoded through u
    after = model.state_dict()
    label_parts = ("label_encoder.", "label_head.", "label_decoder.")
    for k, v in before.items():
        assert torch.equal(v, after[k]) == (not k.startswith(label_parts)), k
    # evaluate_semisupervised reads p(y|u) at the mean of q(u|y): the same labels come back
    f = _factors(60)
    ev = evaluate_semisupervised(model, _images(f), f, generator=torch.Generator().manual_seed(0))
    assert ev.acc_py is not None and ev.acc_py.shape == (3,) and ev.acc_py.min() > 0.9
    with pytest.raises(ValueError, match="steps"):
        train_label_vae(model, grid, steps=0)
    with pytest.raises(ValueError, match="factors"):
        train_label_vae(model, grid[:, 0])


@pytest.mark.parametrize("kind", ["flat", "hierarchical", "m2"])
def test_evaluate_semisupervised_terms(kind: str) -> None:
    from hvae_lib.analysis import evaluate_semisupervised

    torch.manual_seed(0)
    if kind == "m2":
        model = M2VAE(M2Config(vae=VAE, factor_sizes=SIZES))
    else:
        model = build_semafo(
            SemafoConfig(
                vae=VAE,
                factor_sizes=SIZES,
                label_hidden=(16,),
                prior_hidden=(8,),
                variant=kind,
                z1_channels=2,
                z1_deter_channels=2,
                z1_u_hidden=8,
            )
        )
    f = _factors(50)
    x = _images(f)
    a = evaluate_semisupervised(
        model, x, f, batch_size=16, generator=torch.Generator().manual_seed(3)
    )
    b = evaluate_semisupervised(
        model, x, f, batch_size=16, generator=torch.Generator().manual_seed(3)
    )
    assert a.elbo == b.elbo and np.array_equal(a.mu, b.mu)  # the same generator state
    with pytest.raises(TypeError, match=r"torch\.Generator.*got int 3"):
        evaluate_semisupervised(model, x, f, generator=3)  # type: ignore[arg-type]
    assert math.isfinite(a.elbo) and a.log_px < 0
    assert a.rate == pytest.approx(a.log_px - a.elbo, abs=1e-9)
    assert a.acc_qy.shape == (3,) and ((0 <= a.acc_qy) & (a.acc_qy <= 1)).all()
    assert a.mu.shape == (50, 4)
    # the rate of all latents, term by term (hard pseudo-labels: log p(y|u) is a categorical log-probability)
    t = a.terms
    if kind == "m2":
        assert a.acc_py is None
        assert a.rate == pytest.approx(t["kl_z"] - t["log_py"] - t["entropy_qy"], rel=1e-4)
        assert t["log_py"] == pytest.approx(-math.log(3 * 2 * 4), abs=1e-5)
    else:
        assert a.acc_py is not None and a.acc_py.shape == (3,)
        assert a.rate == pytest.approx(
            t["kl_z0"] + t["kl_u"] + t["kl_z1"] - t["log_py_u"] - t["entropy_qy"], rel=1e-4
        )
        assert t["log_py_u"] < 0 and t["kl_u"] > 0 and (t["kl_z1"] > 0) == (kind == "hierarchical")
    g = torch.Generator()
    with pytest.raises(ValueError, match="same N"):
        evaluate_semisupervised(model, x[:10], f, generator=g)
    with pytest.raises(ValueError, match="M2VAE"):
        evaluate_semisupervised(torch.nn.Linear(2, 2), x, f, generator=g)


def test_load_semafo_data_split_and_errors(tmp_path, monkeypatch) -> None:
    from hvae_lib.experiments.ch04_semafovae import DSPRITES_NPZ_ENV, load_semafo_data

    a = load_semafo_data("dsprites_lite", 0.1, np.random.default_rng(0))
    b = load_semafo_data("dsprites_lite", 0.1, np.random.default_rng(0))
    assert a.x_train.shape == (5530, 1, 32, 32) and a.x_test.shape == (614, 1, 32, 32)
    assert a.factor_sizes == (3, 4, 8, 8, 8) and a.factor_names[0] == "shape"
    assert np.array_equal(a.f_test, b.f_test) and torch.equal(a.x_test, b.x_test)
    c = load_semafo_data("dsprites_lite", 0.1, np.random.default_rng(1))
    assert not np.array_equal(a.f_test, c.f_test)
    with pytest.raises(TypeError, match=r"numpy\.random\.Generator.*got int 0"):
        load_semafo_data("dsprites_lite", 0.1, 0)  # type: ignore[arg-type]
    rng = np.random.default_rng(0)
    # train and test are disjoint and cover the grid: every factor combination once
    all_f = np.concatenate([a.f_train, a.f_test])
    assert len(np.unique(all_f, axis=0)) == 6144
    with pytest.raises(ValueError, match="unknown dataset"):
        load_semafo_data("shapes3d", 0.1, rng)
    with pytest.raises(ValueError, match="test_fraction"):
        load_semafo_data("dsprites_lite", 1.0, rng)
    missing = tmp_path / "dsprites.npz"
    monkeypatch.setenv(DSPRITES_NPZ_ENV, str(missing))
    with pytest.raises(FileNotFoundError, match="dsprites.npz"):
        load_semafo_data("dsprites", 0.05, rng)


def test_load_class_digits() -> None:
    from hvae_lib.experiments.ch04_semafovae import load_class_digits

    d = load_class_digits(16, num_test=500, rng=np.random.default_rng(0))
    assert d.x_train.shape == (4500, 1, 16, 16) and d.x_test.shape == (500, 1, 16, 16)
    assert (
        d.x_train.dtype == torch.float32
        and 0.0 <= float(d.x_train.min())
        and float(d.x_train.max()) <= 1.0
    )
    assert d.factor_sizes == (10,) and d.f_train.shape == (4500, 1)
    assert set(np.unique(d.f_test[:, 0])) == set(range(10))
    full = load_class_digits(32, num_test=500, rng=np.random.default_rng(0))  # the same split
    assert full.x_train.shape == (4500, 1, 32, 32)
    # area resizing preserves the mean grey level of the padded 32x32 image
    assert float(d.x_train.mean()) == pytest.approx(float(full.x_train.mean()), rel=1e-5)
    with pytest.raises(ValueError, match="resolution"):
        load_class_digits(40, rng=np.random.default_rng(0))


def test_z1_kl_per_dim_and_chosen_dims() -> None:
    from hvae_lib.analysis import z1_kl_per_dim

    torch.manual_seed(0)
    cfg = SemafoConfig(
        vae=VAE,
        factor_sizes=SIZES,
        label_hidden=(16,),
        prior_hidden=(8,),
        variant="hierarchical",
        z1_channels=2,
        z1_deter_channels=2,
        z1_u_hidden=8,
    )
    model = build_semafo(cfg).eval()
    f = _factors(40)
    x = _images(f).float()
    kl = z1_kl_per_dim(model, x, f, batch_size=16)
    assert kl.shape == (2 * 4 * 4,) and bool((kl >= 0).all())
    # the per-dimension KLs sum to the analytic KL of the whole level at the same z0 and u
    from hvae_lib.distributions import gaussian_kl

    with torch.no_grad():
        z0 = model.encode(x)[0]
        u = model.encode_u(model.as_one_hot(torch.as_tensor(f)))[0]
        mq, lq = model.posterior_z1(x, z0)
        _, mp, lp = model.prior_z1(z0, u, sample=False)
        whole = gaussian_kl(mq, lq, mp, lp).flatten(1).sum(1).mean()
    assert float(kl.sum()) == pytest.approx(float(whole), rel=1e-5)
    iv = intervene_z1(model, f[0], dims=[3, 0], num_points=5)
    assert iv["dims"].tolist() == [3, 0] and iv["images"].shape == (2, 5, 1, 16, 16)
    with pytest.raises(ValueError, match="dims"):
        intervene_z1(model, f[0], dims=[32])
    with pytest.raises(ValueError, match="hierarchical"):
        z1_kl_per_dim(build_semafo(cfg.replace(variant="flat")), x, f)


def test_traversal_smoothness_closed_forms() -> None:
    from hvae_lib.analysis import traversal_smoothness

    ramp = torch.linspace(0, 1, 11).view(11, 1, 1, 1).expand(11, 1, 4, 4)
    assert traversal_smoothness(ramp) == pytest.approx(1.0)  # equal steps
    jump = torch.zeros(11, 1, 4, 4)
    jump[6:] = 1.0
    assert traversal_smoothness(jump) == pytest.approx(10.0)  # all of the change in one of 10 steps
    two = torch.tensor([0.0, 1.0, 1.0, 3.0]).view(4, 1, 1, 1)
    assert traversal_smoothness(two) == pytest.approx(2.0 / 1.0)  # steps 1, 0, 2: max 2, mean 1
    with pytest.raises(ValueError, match="does not change"):
        traversal_smoothness(torch.zeros(5, 1, 2, 2))
    with pytest.raises(ValueError, match="at least 2"):
        traversal_smoothness(torch.zeros(1, 1, 2, 2))
