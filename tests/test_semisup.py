"""Semi-supervised pieces: labelled subset, batch composition, training loop, generation helpers."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from hvae_lib.models.m2 import M2Config, M2LossConfig, M2VAE
from hvae_lib.models.semafo import SemafoConfig, SemafoLossConfig, build_semafo
from hvae_lib.models.vae import VAEConfig
from hvae_lib.semisup import (
    SemiSupervisedBatches, SemiSupervisedConfig, batch_composition, conditional_samples, intervene_z1,
    labelled_subset, posterior_traversal, prior_traversal, train_semisupervised,
)
from hvae_lib.train import TrainConfig

torch.set_num_threads(1)

SIZES = (3, 2, 4)
VAE = VAEConfig(input_shape=(1, 16, 16), latent_dim=4, architecture="conv", hidden=(8, 8), dense=16)


def _factors(n: int = 600, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    shape = rng.choice(3, size=n, p=[0.6, 0.3, 0.1])  # unbalanced strata
    return np.stack([shape, rng.integers(0, 2, n), rng.integers(0, 4, n)], axis=1)


def test_labelled_subset_deterministic_and_stratified() -> None:
    f = _factors()
    a = labelled_subset(f, 0.1, seed=1)
    b = labelled_subset(f, 0.1, seed=1)
    np.testing.assert_array_equal(a, b)
    assert len(a) == 60 and np.all(np.diff(a) > 0)
    assert not np.array_equal(a, labelled_subset(f, 0.1, seed=2))
    counts = np.bincount(f[:, 0], minlength=3)
    got = np.bincount(f[a, 0], minlength=3)
    assert np.all(np.abs(got - counts * 0.1) <= 1.0), (got, counts)
    # joint strata and a class vector
    ab = labelled_subset(f, 0.2, seed=1, stratify=(0, 1))
    assert len(ab) == 120
    for s in range(3):
        for t in range(2):
            m = (f[:, 0] == s) & (f[:, 1] == t)
            assert abs(np.isin(np.flatnonzero(m), ab).sum() - 0.2 * m.sum()) <= 1.0
    np.testing.assert_array_equal(labelled_subset(f[:, 0], 0.1, seed=1), labelled_subset(f, 0.1, seed=1))
    # every stratum gets at least one when the budget allows; all at fraction 1
    tiny = labelled_subset(f, 3 / 600, seed=0)
    assert len(tiny) == 3 and set(f[tiny, 0]) == {0, 1, 2}
    np.testing.assert_array_equal(labelled_subset(f, 1.0), np.arange(600))
    assert len(labelled_subset(f, 0.1, stratify=None)) == 60


@pytest.mark.parametrize("bad", [0.0, -0.1, 1.5, float("nan")])
def test_label_fraction_validation(bad: float) -> None:
    with pytest.raises(ValueError, match="label fraction"):
        labelled_subset(_factors(), bad)
    with pytest.raises(ValueError, match="label fraction"):
        batch_composition(bad)
    with pytest.raises(ValueError, match="label fraction"):
        SemiSupervisedConfig(label_fraction=bad)


def test_batch_composition() -> None:
    assert batch_composition(0.1, 64) == (7, 57)
    assert batch_composition(0.004, 64) == (7, 57)
    assert batch_composition(0.5, 64) == (32, 32)
    assert batch_composition(0.2, 64) == (13, 51)
    assert batch_composition(1.0, 64) == (64, 0)


def test_batches_draw_from_the_right_pools() -> None:
    f = _factors()
    lab = labelled_subset(f, 0.05, seed=1)
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
        cfg = SemafoConfig(vae=VAE, factor_sizes=SIZES, label_hidden=(16,), prior_hidden=(8,), variant=kind,
                           z1_channels=2, z1_deter_channels=2, z1_u_hidden=8)
        model, lc = build_semafo(cfg), SemafoLossConfig(warmup_steps=4)
    sc = SemiSupervisedConfig(train=TrainConfig(steps=8, batch_size=16, log_every=4), label_fraction=0.1)
    res = train_semisupervised(model, x, f, sc, lc, progress=False)
    assert res.steps_done == 8 and res.skipped_steps == 0
    assert res.history["step"] == [4.0, 8.0]
    assert math.isnan(res.history["uns/objective"][0]) and math.isfinite(res.history["uns/objective"][1])
    assert all(math.isfinite(v) for v in res.history["sup/objective"])
    assert not model.training
    with pytest.raises(ValueError, match="loss_config"):
        train_semisupervised(model, x, f, sc, object(), progress=False)


def test_generation_helpers_shapes() -> None:
    torch.manual_seed(0)
    cfg = SemafoConfig(vae=VAE, factor_sizes=SIZES, label_hidden=(16,), prior_hidden=(8,), variant="hierarchical",
                       z1_channels=2, z1_deter_channels=2, z1_u_hidden=8)
    model = build_semafo(cfg).eval()
    f = _factors(10)
    s1 = conditional_samples(model, f, torch.Generator().manual_seed(0))
    s2 = conditional_samples(model, f, torch.Generator().manual_seed(0))
    assert s1.shape == (10, 1, 16, 16) and torch.equal(s1, s2)
    assert conditional_samples(model, f, mean=True).shape == (10, 1, 16, 16)
    pt = prior_traversal(model, f[0], n_dims=3, n_points=5)
    assert pt["images"].shape == (3, 5, 1, 16, 16) and torch.all(pt["std"][:-1] >= pt["std"][1:])
    assert torch.allclose(pt["offsets"], torch.linspace(-3, 3, 5))
    iv = intervene_z1(model, f[0], n_dims=4, n_points=5)
    assert iv["images"].shape == (4, 5, 1, 16, 16) and iv["base"].shape == (1, 16, 16)
    # the middle point of every z1 traversal is the base image (z0 held fixed)
    assert torch.allclose(iv["images"][:, 2], iv["base"].expand(4, 1, 16, 16), atol=1e-6)
    x = _images(f)[0].float()
    for mode in ("posterior", "prior"):
        post = posterior_traversal(model, x, n_dims=2, n_points=3, z1=mode)
        assert post["images"].shape == (2, 3, 1, 16, 16)
    flat = build_semafo(cfg.replace(variant="flat")).eval()
    with pytest.raises(ValueError, match="hierarchical"):
        intervene_z1(flat, f[0])
    assert posterior_traversal(flat, x)["images"].shape == (4, 11, 1, 16, 16)
    m2 = M2VAE(M2Config(vae=VAE, factor_sizes=SIZES)).eval()
    assert conditional_samples(m2, f, torch.Generator().manual_seed(0)).shape == (10, 1, 16, 16)


def test_fit_semisupervised_uses_the_cache(tmp_path) -> None:
    from hvae_lib.semisup import fit_semisupervised
    from hvae_lib.train import ResultCache

    f = _factors(64)
    x = _images(f)
    cfg = SemafoConfig(vae=VAE, factor_sizes=SIZES, label_hidden=(16,), prior_hidden=(8,))
    sc = SemiSupervisedConfig(train=TrainConfig(steps=3, batch_size=16, log_every=1), label_fraction=0.25)
    cache = ResultCache(tmp_path, enabled=True)
    m1, r1 = fit_semisupervised(lambda: build_semafo(cfg), x, f, sc, SemafoLossConfig(warmup_steps=1), key=cfg,
                                cache=cache, progress=False)
    m2, r2 = fit_semisupervised(lambda: build_semafo(cfg), x, f, sc, SemafoLossConfig(warmup_steps=1), key=cfg,
                                cache=cache, progress=False)
    assert not r1.from_cache and r2.from_cache
    for a, b in zip(m1.state_dict().values(), m2.state_dict().values()):
        assert torch.equal(a, b)
    _, r3 = fit_semisupervised(lambda: build_semafo(cfg), x, f, sc, SemafoLossConfig(warmup_steps=2), key=cfg,
                               cache=cache, progress=False)
    assert not r3.from_cache  # the loss settings are part of the key


def test_training_is_deterministic() -> None:
    from hvae_lib.semisup import fit_semisupervised
    from hvae_lib.train import ResultCache

    f = _factors(64)
    x = _images(f)
    cfg = SemafoConfig(vae=VAE, factor_sizes=SIZES, label_hidden=(16,), prior_hidden=(8,), variant="hierarchical",
                       z1_channels=2, z1_deter_channels=2, z1_u_hidden=8)
    sc = SemiSupervisedConfig(train=TrainConfig(steps=4, batch_size=16, log_every=2), label_fraction=0.1)
    off = ResultCache(enabled=False)
    runs = [fit_semisupervised(lambda: build_semafo(cfg), x, f, sc, SemafoLossConfig(warmup_steps=1), key=cfg,
                               cache=off, progress=False) for _ in range(2)]
    assert runs[0][1].history == runs[1][1].history
    for a, b in zip(runs[0][0].state_dict().values(), runs[1][0].state_dict().values()):
        assert torch.equal(a, b)
