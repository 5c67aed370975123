"""Evaluation helpers, the β sweep, figures and widgets of chapter 1."""

from __future__ import annotations

import math

import ipywidgets as w
import matplotlib
import numpy as np
import pytest
import torch

from hvae_lib.analysis import (
    BetaSweepConfig,
    active_units,
    beta_sweep,
    check_rate_distortion_monotone,
    empirical_entropy,
    evaluate_vae,
    monte_carlo_rate,
)
from hvae_lib.data import train_test_split
from hvae_lib.experiments.ch01_rate_distortion import (
    RateDistortionSettings,
    rate_distortion_settings,
)
from hvae_lib.models import BetaVAE, VAEConfig
from hvae_lib.plots import image_grid, png_bytes, rate_distortion_plot, save_figure
from hvae_lib.train import ResultCache, TrainConfig
from hvae_lib.widgets import precomputed_slider

matplotlib.use("Agg")


def test_empirical_entropy_closed_forms():
    x = np.array([[0, 1], [0, 1], [1, 1], [0, 0]])
    h, n = empirical_entropy(x)
    assert n == 3 and h == pytest.approx(-(0.5 * math.log(0.5) + 2 * 0.25 * math.log(0.25)))
    distinct = torch.eye(16, dtype=torch.uint8).reshape(16, 1, 4, 4)
    assert empirical_entropy(distinct) == pytest.approx((math.log(16), 16))
    with pytest.raises(ValueError, match="binary"):
        empirical_entropy(np.full((3, 2), 0.5))


def test_active_units():
    rng = np.random.default_rng(0)
    mu = np.concatenate([rng.normal(size=(500, 2)), 0.05 * rng.normal(size=(500, 2))], axis=1)
    assert active_units(mu).tolist() == [True, True, False, False]
    with pytest.raises(ValueError):
        active_units(np.zeros(5))


def test_monte_carlo_rate_agrees_with_analytic():
    torch.manual_seed(0)
    model = BetaVAE(VAEConfig(input_shape=(1, 4, 4), latent_dim=3, hidden=(16,)))
    x = torch.rand(200, 1, 4, 4).round()
    gen = torch.Generator().manual_seed(0)
    est, se = monte_carlo_rate(model, x, num_samples=256, generator=gen)
    analytic = evaluate_vae(model, x, generator=gen).mean_rate
    assert abs(est - analytic) < 4 * se + 1e-3
    assert se < 0.05


def test_evaluate_vae_same_generator_state_same_result_and_refuses_a_seed():
    torch.manual_seed(0)
    model = BetaVAE(VAEConfig(input_shape=(1, 4, 4), latent_dim=3, hidden=(16,)))
    x = torch.rand(50, 1, 4, 4).round()
    a = evaluate_vae(model, x, generator=torch.Generator().manual_seed(3))
    b = evaluate_vae(model, x, generator=torch.Generator().manual_seed(3))
    np.testing.assert_array_equal(a.distortion, b.distortion)  # sampled: same state, same draws
    g = torch.Generator().manual_seed(3)
    evaluate_vae(model, x, generator=g)
    c = evaluate_vae(model, x, generator=g)  # the stream continues: other posterior samples
    assert not np.array_equal(a.distortion, c.distortion)
    with pytest.raises(TypeError, match=r"generator must be a torch\.Generator.*got int 0"):
        evaluate_vae(model, x, generator=0)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="unexpected keyword argument 'seed'"):
        evaluate_vae(model, x, seed=0)  # type: ignore[call-arg]
    if torch.cuda.is_available():  # a generator on another device than the model
        with pytest.raises(ValueError, match="must be on cpu"):
            evaluate_vae(model, x, generator=torch.Generator(device="cuda"))


def test_train_test_split_is_a_random_partition():
    tr, te = train_test_split(100, 0.2, np.random.default_rng(1))
    assert len(te) == 20 and len(tr) == 80
    assert sorted(np.concatenate([tr, te]).tolist()) == list(range(100))
    assert np.array_equal(te, train_test_split(100, 0.2, np.random.default_rng(1))[1])
    assert not np.array_equal(te, train_test_split(100, 0.2, np.random.default_rng(2))[1])
    with pytest.raises(ValueError):
        train_test_split(10, 1.5, np.random.default_rng(0))
    with pytest.raises(TypeError, match=r"numpy\.random\.Generator.*got int 1"):
        train_test_split(100, 0.2, 1)  # type: ignore[arg-type]


def test_monotone_check():
    assert check_rate_distortion_monotone([5, 3, 1], [1, 2, 4], [1, 2, 4])
    assert check_rate_distortion_monotone([1, 3, 5], [4, 2, 1], [4, 2, 1])  # any β order
    assert not check_rate_distortion_monotone([5, 6, 1], [1, 2, 4], [1, 2, 4])


def test_profiles_settings_round_trip():
    for profile in ("quick", "paper"):
        s = rate_distortion_settings(profile)
        assert RateDistortionSettings.from_json(s.to_json()) == s
        assert 1.0 in s.sweep.betas
    with pytest.raises(ValueError, match="quick, paper"):
        rate_distortion_settings("fast")


def test_tiny_beta_sweep_orders_rates_and_uses_cache(tmp_path):
    g = torch.Generator().manual_seed(0)
    protos = (torch.rand(8, 1, 6, 6, generator=g) > 0.5).to(torch.uint8)
    data = protos[torch.arange(128) % 8]
    cfg = BetaSweepConfig(
        betas=(0.5, 8.0),
        model=VAEConfig(input_shape=(1, 6, 6), latent_dim=4, hidden=(32,)),
        train=TrainConfig(steps=300, batch_size=32, lr=3e-3, log_every=50),
    )
    cache = ResultCache(tmp_path, enabled=True)
    gen = torch.Generator().manual_seed(0)
    res = beta_sweep(cfg, data, data, cache=cache, progress=False, generator=gen)
    t = res.table()
    assert t[0]["rate"] > t[1]["rate"] and t[0]["distortion"] < t[1]["distortion"]
    again = beta_sweep(cfg, data, data, cache=cache, progress=False, generator=gen)
    assert all(r.from_cache for r in again.results)
    assert [row["rate"] for row in again.table()] == pytest.approx([row["rate"] for row in t])


def test_figures_and_widget(tmp_path):
    imgs = torch.rand(3, 1, 5, 5)
    fig = image_grid([imgs, imgs[:2]], row_labels=["a", "b"], title="t")
    path = save_figure(fig, "grid", tmp_path)
    assert path.is_file() and path.stat().st_size > 0
    ax = rate_distortion_plot([1, 2], [3.0, 1.0], [10.0, 20.0])
    assert "rate" in ax.get_xlabel() and "distortion" in ax.get_ylabel()
    png = png_bytes(fig)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    box = precomputed_slider(["β=1", "β=2"], [png, png], description="β")
    slider, stack = box.children
    assert isinstance(stack, w.Stack) and len(stack.children) == 2 and stack.selected_index == 0
    with pytest.raises(ValueError):
        precomputed_slider(["a"], [png, png])
    with pytest.raises(ValueError):
        image_grid([np.zeros((2, 2))])


def test_image_mosaic_places_every_image_and_image_grid_falls_back():
    from hvae_lib.plots import image_mosaic, to_numpy_images

    a = to_numpy_images(torch.rand(3, 1, 4, 5))
    b = to_numpy_images(torch.rand(2, 1, 4, 5))
    m = image_mosaic([a, b], gap=1, fill=1.0)
    assert m.shape == (2 * 4 + 1, 3 * 5 + 2)
    assert np.array_equal(m[0:4, 6:11], a[1]) and np.array_equal(m[5:9, 6:11], b[1])
    assert (m[4] == 1.0).all() and (m[5:9, 12:] == 1.0).all()  # the gap, and the padding
    colour = image_mosaic([to_numpy_images(torch.rand(2, 3, 4, 4))], gap=2)
    assert colour.shape == (4, 10, 3)
    with pytest.raises(ValueError, match="same shape"):
        image_mosaic([a, to_numpy_images(torch.rand(2, 1, 6, 6))], gap=1)
    with pytest.raises(ValueError, match="at least one"):
        image_mosaic([], gap=1)
    # one Axes for a mosaic; one per image when the sizes differ
    assert len(image_grid([torch.rand(3, 1, 4, 4)] * 2).axes) == 1
    mixed = image_grid([torch.rand(3, 1, 4, 4), torch.rand(3, 1, 6, 6)], row_labels=["a", "b"])
    assert len(mixed.axes) == 6
