"""Tests of hvae_lib.experiments.ch03_rate_splitting (chapter 3 settings and data), the bound
helpers and plots.rate_plane."""

from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from hvae_lib.analysis import best_per_budget, binomial_lower_limit  # noqa: E402
from hvae_lib.experiments.ch03_rate_splitting import (
    RateSplittingSettings,
    bound_images,
    load_grid_data,  # noqa: E402
    rate_splitting_settings,
)
from hvae_lib.models import HierarchicalVAE, paper_preset  # noqa: E402
from hvae_lib.plots import rate_plane  # noqa: E402


def test_settings_profiles_and_round_trip():
    quick, paper = rate_splitting_settings("quick"), rate_splitting_settings("paper")
    for s in (quick, paper):
        assert RateSplittingSettings.from_json(s.to_json()) == s
    assert quick.grid_side >= 7 and quick.dataset == "digits"
    assert np.isclose(quick.beta_values[0], 0.1) and np.isclose(quick.beta_values[-1], 10.0)
    assert np.isclose(quick.beta_values, 1.0).any()  # the ELBO point is on the grid
    # the authors' setting: 21x21 grid, SVHN architecture, sigma 0.71, Adam 3e-4, batch 256
    assert paper.grid_side == 21 and paper.dataset == "svhn"
    assert np.allclose(paper.beta_values, 10 ** (np.arange(-10, 11) / 10))
    assert paper.model.sigma == 0.71 and HierarchicalVAE(paper.model).num_parameters() == 475_811
    assert (
        paper.train.lr == 3e-4
        and paper.train.batch_size == 256
        and paper.train.max_grad_norm is None
    )
    assert paper.train.steps == 500 * (73_257 // 256)
    with pytest.raises(ValueError, match="unknown profile"):
        rate_splitting_settings("huge")


def test_load_grid_data_digits_and_svhn_errors(monkeypatch):
    s = rate_splitting_settings("quick")
    d = load_grid_data(s, np.random.default_rng(0))
    assert d.x_test.shape == (397, 1, 8, 8) and d.x_train.shape == (1400, 1, 8, 8)
    assert len(d.y_train) == 1400 and set(np.unique(d.y_test)) <= set(range(10))
    d2 = load_grid_data(s, np.random.default_rng(0))
    assert np.array_equal(d.y_test, d2.y_test)
    with pytest.raises(TypeError, match=r"numpy\.random\.Generator.*got int 0"):
        load_grid_data(s, 0)  # type: ignore[arg-type]
    rng = np.random.default_rng(0)
    monkeypatch.delenv("HVAE_SVHN_DIR", raising=False)
    with pytest.raises(ValueError, match="HVAE_SVHN_DIR"):
        load_grid_data(rate_splitting_settings("paper"), rng)
    with pytest.raises(FileNotFoundError, match="SVHN file not found"):
        load_grid_data(rate_splitting_settings("paper").replace(data_dir="/nonexistent/svhn"), rng)
    with pytest.raises(ValueError, match="unknown dataset"):
        load_grid_data(s.replace(dataset="imagenet"), rng)


def test_ladder_grid_settings():
    """The ladder grid beside the main one: its β values, architecture and warm-up; bad
    values are refused with the valid range."""
    quick, paper = rate_splitting_settings("quick"), rate_splitting_settings("paper")
    assert quick.ladder_model.inference == "ladder" and quick.model.inference == "separate"
    assert quick.ladder_model.replace(inference="separate") == quick.model
    assert np.allclose(quick.ladder_beta_values, [0.1, 10**-0.5, 1.0, 10**0.5, 10.0])
    assert quick.ladder_warmup_steps == quick.train.steps // 5  # the authors' first fifth
    assert paper.ladder_side == 21  # the authors' LVAE grid on SVHN
    smoke = rate_splitting_settings("paper", smoke=True)
    assert smoke.ladder_side == 3 and smoke.ladder_model.architecture == "conv"
    assert quick.replace(ladder_side=0).ladder_beta_values.size == 0
    for bad in (1, 4, -3):  # an even side misses beta = 1, the ELBO point
        with pytest.raises(ValueError, match="ladder_side must be 0 .* odd and at least 3"):
            quick.replace(ladder_side=bad)
    with pytest.raises(ValueError, match=r"ladder_warmup_fraction must be in \[0, 1\)"):
        quick.replace(ladder_warmup_fraction=1.0)


def test_paper_profile_on_cifar10(monkeypatch, tmp_path):
    """The paper's second dataset: same architecture and optimiser, epochs of 50,000 images;
    files from $HVAE_CIFAR10_DIR, stand-ins in the smoke form, clear errors otherwise."""
    import pickle

    cifar = rate_splitting_settings("paper", dataset="cifar10")
    svhn = rate_splitting_settings("paper", dataset="")  # empty: the default, SVHN
    assert svhn == rate_splitting_settings("paper") and svhn.dataset == "svhn"
    assert cifar.dataset == "cifar10" and cifar.model == paper_preset("cifar10")
    assert HierarchicalVAE(cifar.model).num_parameters() == 475_811
    assert cifar.train.steps == 500 * (50_000 // 256) and cifar.grid_side == 21
    assert RateSplittingSettings.from_json(cifar.to_json()) == cifar
    with pytest.raises(ValueError, match="unknown dataset 'imagenet'; valid: svhn, cifar10"):
        rate_splitting_settings("paper", dataset="imagenet")
    with pytest.raises(ValueError, match="needs the paper profile"):
        rate_splitting_settings("quick", dataset="cifar10")
    rng = np.random.default_rng(0)
    monkeypatch.delenv("HVAE_CIFAR10_DIR", raising=False)
    with pytest.raises(ValueError, match="HVAE_CIFAR10_DIR"):
        load_grid_data(cifar, rng)
    with pytest.raises(FileNotFoundError, match="CIFAR-10 directory not found"):
        load_grid_data(cifar.replace(data_dir=str(tmp_path / "absent")), rng)
    # the smoke form: stand-ins of CIFAR-10's shape, named as CIFAR-10's
    smoke = rate_splitting_settings("paper", smoke=True, dataset="cifar10")
    assert smoke.dataset == "cifar10" and smoke.synthetic_data
    d = load_grid_data(smoke, np.random.default_rng(0))
    assert d.x_train.shape == (1024, 3, 32, 32) and "CIFAR-10 stand-in" in d.name
    # real python batches (written here), read through $HVAE_CIFAR10_DIR
    root = tmp_path / "cifar-10-batches-py"
    root.mkdir()
    gen = np.random.default_rng(1)
    for i, name in enumerate([*(f"data_batch_{k}" for k in range(1, 6)), "test_batch"]):
        batch = {
            b"data": gen.integers(0, 256, size=(3, 3072), dtype=np.uint8),
            b"labels": [(i + j) % 10 for j in range(3)],
        }
        (root / name).write_bytes(pickle.dumps(batch, protocol=2))
    monkeypatch.setenv("HVAE_CIFAR10_DIR", str(tmp_path))
    d = load_grid_data(cifar, rng)
    assert d.x_train.shape == (15, 3, 32, 32) and d.x_test.shape == (3, 3, 32, 32)
    assert d.name.startswith("CIFAR-10, 32×32×3, 15 train / 3 test")
    assert float(d.x_train.max()) <= 1.0 and d.y_test.tolist() == [5, 6, 7]


def test_bound_images_are_distinct_binary_with_exact_entropy():
    b = bound_images(16)
    flat = b.images.reshape(len(b), -1)
    assert set(np.unique(flat)) <= {0, 1}
    assert len(np.unique(flat, axis=0)) == len(b) <= b.rendered == 768
    assert math.isclose(b.entropy, math.log(len(b)))


def test_binomial_lower_limit():
    n = 50
    # closed forms: k = n gives (1 - c)^(1/n); k = 0 gives 0
    assert math.isclose(binomial_lower_limit(n, n, 0.95), 0.05 ** (1 / n), rel_tol=1e-9)
    assert binomial_lower_limit(0, n, 0.95) == 0.0
    ks = np.arange(n + 1)
    lo = binomial_lower_limit(ks, n, 0.99)
    assert np.all(np.diff(lo) > 0) and np.all(lo <= ks / n + 1e-12)
    # coverage: P(Bin(n, p_L) >= k) = 1 - confidence
    from scipy.stats import binom

    k = 30
    p = binomial_lower_limit(k, n, 0.9)
    assert math.isclose(binom.sf(k - 1, n, p), 0.1, rel_tol=1e-6)
    assert binomial_lower_limit(k, n, 0.99) < binomial_lower_limit(k, n, 0.9)
    with pytest.raises(ValueError):
        binomial_lower_limit(5, 3, 0.9)
    with pytest.raises(ValueError):
        binomial_lower_limit(1, 3, 1.0)


def test_best_per_budget():
    cost = np.array([1.0, 2.0, 3.0, 2.5, 0.5])
    value = np.array([1.0, 3.0, 2.0, 3.0, 0.2])
    # 2 (cost 3, value 2) is dominated by 1 (cost 2, value 3); 3 ties with 1 in value at a higher cost
    assert best_per_budget(cost, value).tolist() == [True, True, False, True, True]
    with pytest.raises(ValueError):
        best_per_budget(cost, value[:3])


def test_rate_plane_draws_rings_and_validates():
    betas = [(b1, b2) for b1 in (0.1, 1.0, 10.0) for b2 in (0.1, 1.0, 10.0)]
    r2 = np.arange(9.0)
    r1 = 9.0 - r2
    fig, ax = plt.subplots()
    rate_plane(ax, r2, r1, r2 * 2, betas, label="metric", best=best_per_budget(r1 + r2, r2))
    labels = ax.get_legend_handles_labels()[1]
    assert "β1 = β2 = 1 (ELBO)" in labels and "constant total rate" in labels
    with pytest.raises(ValueError):
        rate_plane(ax, r2, r1[:3], r2, betas, label="x")
    plt.close(fig)
