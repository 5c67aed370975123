"""The inputs of chapter 3's Fano check: the s.e. of the plug-in information, the Bayes
classifier of the plug-in mixture, and accuracies on the same points as the information."""

import math

import numpy as np
import pytest
import torch

from hvae_lib.analysis import check_fano_bound, evaluate_model, fano_inverse, label_information
from hvae_lib.models.hierarchical import HierarchicalVAE, HierarchicalVAEConfig


def test_identical_posteriors_carry_no_information_and_the_bayes_classifier_guesses():
    # all posteriors equal: p(l | z) is the class frequency, so the Bayes classifier always says
    # the majority class; the plug-in terms are exactly 0 at every point (s.e. 0)
    labels = np.array([0] * 5 + [1] * 3 + [2] * 2)
    n = len(labels)
    rng = np.random.default_rng(0)
    z = rng.normal(size=(n, 2))
    info = label_information(np.zeros((n, 2)), np.zeros((n, 2)), labels, samples=z)
    assert info.plug_in == pytest.approx(0.0, abs=1e-12)
    assert info.plug_in_se == pytest.approx(0.0, abs=1e-12)
    assert info.bayes_accuracy == pytest.approx(0.5)  # 5 of 10 in the majority class
    probs = np.bincount(labels) / n
    assert fano_inverse(info.plug_in, probs) >= 0.5 - 1e-9  # Fano allows the majority guess
    # negative control: perfect accuracy at zero information violates the bound
    assert not check_fano_bound(1.0, info.plug_in, probs).holds


def test_separated_classes_full_information_and_a_perfect_bayes_classifier():
    labels = np.repeat(np.arange(4), 6)
    mu = np.repeat(np.eye(4) * 50.0, 6, axis=0)  # four far-apart clusters
    lv = np.full_like(mu, math.log(0.01))
    z = mu + 0.1 * np.random.default_rng(1).normal(size=mu.shape)
    info = label_information(mu, lv, labels, samples=z)
    assert info.plug_in == pytest.approx(math.log(4), abs=1e-9)
    assert info.bayes_accuracy == 1.0 and info.plug_in_se < 1e-9


def test_bayes_accuracy_and_se_match_a_direct_computation():
    rng = np.random.default_rng(2)
    n, d = 40, 3
    labels = rng.integers(0, 3, n)
    mu = rng.normal(size=(n, d)) + labels[:, None] * 0.8
    lv = rng.normal(-0.5, 0.3, size=(n, d))
    z = mu + np.exp(0.5 * lv) * rng.normal(size=(n, d))
    info = label_information(mu, lv, labels, samples=z, max_chunk_elements=30)
    # direct: log q(z_j | x_i) with scipy-free numpy
    sd = np.exp(0.5 * lv)
    logq = (
        -0.5 * (((z[:, None, :] - mu[None]) / sd[None]) ** 2).sum(-1)
        - np.log(sd).sum(1)[None]
        - 0.5 * d * math.log(2 * math.pi)
    )
    q = np.exp(logq)
    per_class = np.stack([q[:, labels == k].sum(1) for k in range(3)], 1)
    assert info.bayes_accuracy == pytest.approx(float((per_class.argmax(1) == labels).mean()))
    counts = np.bincount(labels)
    terms = np.log(per_class[np.arange(n), labels] / counts[labels]) - np.log(q.sum(1) / n)
    assert info.plug_in == pytest.approx(terms.mean())
    assert info.plug_in_se == pytest.approx(terms.std(ddof=1) / math.sqrt(n))


def test_evaluate_model_scores_the_fano_inputs_on_the_mi_points():
    torch.manual_seed(0)
    cfg = HierarchicalVAEConfig(
        input_shape=(1, 8, 8), latent_dims=(4, 2), hidden=16, prior_hidden=8, sigma=0.1
    )
    model = HierarchicalVAE(cfg)
    x = torch.rand(80, 1, 8, 8)
    y = np.arange(80) % 4
    args = (model, x[:40], y[:40], x[40:], y[40:])

    def row(mi_points):
        return evaluate_model(
            *args,
            probes=("knn",),
            mi_points=mi_points,
            generator=torch.Generator().manual_seed(0),
            rng=np.random.default_rng(0),
        )

    full, part = row(40), row(20)
    assert full["fano_num_points"] == 40 and part["fano_num_points"] == 20
    assert full["acc_fano_knn"] == full["acc_z_knn"]  # all test points
    assert part["acc_z_knn"] == full["acc_z_knn"]  # the same predictions
    assert 0 <= part["acc_fano_bayes"] <= 1 and part["mi_plug_in_se"] >= 0
