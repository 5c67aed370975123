"""Downstream metrics and bounds (Fano inverse, PSNR, MI, IS, checkers) and the SVHN / CIFAR-10 loaders."""

from __future__ import annotations

import math
import pickle

import numpy as np
import pytest
import torch

from hvae_lib.analysis import (
    check_distortion_bound,
    check_fano_bound,
    distortion_lower_bound,
    evaluate_grid,
    evaluate_model,
    evaluate_rates,
    faithful_probe_accuracy,
    fano_f,
    fano_inverse,
    fit_image_classifier,
    gaussian_sse_lower_bound,
    inception_style_score,
    label_distribution,
    label_information,
    measure_distortion_and_rate,
    probe_accuracy,
    psnr,
    reconstruction_psnr,
    sample_quality,
    top_layer_codes,
)
from hvae_lib.data import load_cifar10, load_dataset, load_svhn
from hvae_lib.models import HierarchicalVAE, HierarchicalVAEConfig
from hvae_lib.objectives import hierarchical_loss
from hvae_lib.train import TrainConfig, train

torch.set_num_threads(1)
UNIFORM10 = np.full(10, 0.1)
SVHN_TEST_COUNTS = np.array([1744, 5099, 4149, 2882, 2523, 2384, 1977, 2019, 1660, 1595])


# ---------------------------------------------------------------------------------------------- Fano
@pytest.mark.parametrize(
    "i, expected",
    [
        (0.0, 0.100),
        (0.25, 0.364),
        (0.5, 0.495),
        (1.0, 0.689),
        (1.5, 0.837),
        (1.75, 0.898),
        (2.0, 0.951),
        (2.2, 0.986),
        (2.5, 1.0),
    ],
)
def test_fano_inverse_matches_table_uniform(i, expected):
    assert fano_inverse(i, UNIFORM10) == pytest.approx(expected, abs=5e-4)


def test_fano_inverse_svhn_labels_and_exactness():
    p = SVHN_TEST_COUNTS / SVHN_TEST_COUNTS.sum()
    h = float(-(p * np.log(p)).sum())
    assert h == pytest.approx(2.2226, abs=1e-4)
    for i, expected in [
        (0.0, 0.238),
        (0.25, 0.410),
        (0.5, 0.531),
        (1.0, 0.715),
        (1.5, 0.858),
        (2.0, 0.966),
        (2.2, 0.998),
    ]:
        assert fano_inverse(i, p) == pytest.approx(expected, abs=5e-4)
    # f^-1(0) > 1/M and above the majority-class rate for non-uniform labels
    assert fano_inverse(0.0, p) > max(0.1, p.max())
    # exact inverse on the increasing branch
    for i in np.linspace(0.0, h - 1e-6, 17):
        a = fano_inverse(i, p)
        assert fano_f(a, p) == pytest.approx(i, abs=1e-9) or (i == 0 and fano_f(a, p) >= -1e-9)
    assert fano_inverse(h, p) == 1.0 and fano_inverse(10.0, p) == 1.0


def test_fano_inverse_monotone_vectorised_and_edge_cases():
    grid = np.linspace(-0.5, 3.0, 200)
    vals = fano_inverse(grid, UNIFORM10)
    assert vals.shape == grid.shape and np.all(np.diff(vals) >= -1e-12)
    assert vals[0] == pytest.approx(0.1) and vals[-1] == 1.0  # negative I is treated as 0
    assert fano_inverse(0.0, [0.5, 0.5]) == pytest.approx(0.5)
    assert fano_f(1.0, UNIFORM10) == pytest.approx(math.log(10))
    assert fano_f(0.1, UNIFORM10) == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(ValueError, match="sum to 1"):
        fano_inverse(0.5, [0.5, 0.6])
    with pytest.raises(ValueError, match="M >= 2"):
        fano_inverse(0.5, [1.0])
    with pytest.raises(ValueError, match="NaN"):
        fano_inverse(float("nan"), UNIFORM10)


def test_check_fano_bound_and_tolerance():
    c = check_fano_bound(0.60, 1.0, UNIFORM10, top_rate=1.5, num_test=400)
    assert c.information_bound == pytest.approx(0.689, abs=5e-4) and c.rate_bound == pytest.approx(
        0.837, abs=5e-4
    )
    assert c.holds and c.chain_holds
    assert c.tolerance == pytest.approx(2 * math.sqrt(0.6 * 0.4 / 400))
    v = check_fano_bound(
        0.81, 0.33, UNIFORM10, top_rate=0.62, num_test=397
    )  # a μ2 classifier (our prototype)
    assert not v.holds
    assert not check_fano_bound(0.5, 1.0, UNIFORM10, top_rate=0.5).chain_holds
    assert check_fano_bound(0.101, 0.0, UNIFORM10, tolerance=0.01).holds
    with pytest.raises(ValueError):
        check_fano_bound(1.2, 0.0, UNIFORM10)


def test_measure_distortion_and_rate_matches_repeated_passes():
    """The helper equals S passes of evaluate_rates drawn from one generator, in order."""
    cfg = HierarchicalVAEConfig(input_shape=(1, 8, 8), latent_dims=(4, 2), hidden=16)
    torch.manual_seed(0)
    model = HierarchicalVAE(cfg)
    x = (torch.rand(12, 1, 8, 8, generator=torch.Generator().manual_seed(1)) > 0.5).float()
    d, r, se = measure_distortion_and_rate(
        model, x, generator=torch.Generator().manual_seed(3), num_samples=4
    )
    g = torch.Generator().manual_seed(3)
    evs = [evaluate_rates(model, x, generator=g) for _ in range(4)]
    total = np.stack([e.distortion + e.rates.sum(1) for e in evs])
    assert d == pytest.approx(np.mean([e.distortion for e in evs]))
    assert r == pytest.approx(np.mean([e.rates.sum(1) for e in evs]))
    assert se == pytest.approx(math.sqrt(total.var(0, ddof=1).sum() / 4) / 12)
    assert se > 0  # the passes differ: the generator is not re-seeded between them
    with pytest.raises(ValueError, match="num_samples"):
        measure_distortion_and_rate(model, x, generator=g, num_samples=1)


def test_distortion_bounds():
    assert distortion_lower_bound(100.0, 30.0) == 70.0
    assert check_distortion_bound(75.0, 30.0, 100.0).holds
    c = check_distortion_bound(60.0, 30.0, 100.0)
    assert not c.holds and c.margin == pytest.approx(-10.0)
    assert check_distortion_bound(69.5, 30.0, 100.0, tolerance=1.0).holds
    s, n = 0.71, 3072
    expected = 2 * s**2 * (5000.0 - 20.0 - n * math.log(s * math.sqrt(2 * math.pi)))
    assert gaussian_sse_lower_bound(5000.0, 20.0, s, n) == pytest.approx(expected)
    assert n * math.log(s * math.sqrt(2 * math.pi)) == pytest.approx(
        1770.8, abs=0.1
    )  # σ = 0.71, 3,072 pixels


# ---------------------------------------------------------------------------------------------- PSNR
def test_psnr_closed_form_and_clamping():
    x = torch.full((4, 1, 3, 3), 0.5)
    assert psnr(x, x + 0.1) == pytest.approx(20.0)  # 10 log10(1 / 0.01)
    assert psnr(x, x + 0.1, data_range=2.0) == pytest.approx(10 * math.log10(4 / 0.01))
    y = torch.zeros(2, 4)
    assert psnr(y, torch.full((2, 4), -3.0)) == math.inf  # clamped to 0: a perfect reconstruction
    assert psnr(y, torch.full((2, 4), -3.0), clamp=False) == pytest.approx(10 * math.log10(1 / 9))
    r = torch.stack([torch.full((4,), 0.1), torch.full((4,), 0.01)])
    per = psnr(y, r, reduction="none")
    np.testing.assert_allclose(per, [20.0, 40.0])
    assert psnr(y, r, reduction="mean") == pytest.approx(30.0)
    assert psnr(y, r) == pytest.approx(10 * math.log10(1 / ((0.01 + 0.0001) / 2)))
    with pytest.raises(ValueError, match="same shape"):
        psnr(y, r[:1])
    with pytest.raises(ValueError, match="reduction"):
        psnr(y, r, reduction="sum")


# ---------------------------------------------------------------------------------------------- MI
def test_label_information_independent_and_separated():
    rng = np.random.default_rng(0)
    n = 400
    labels = rng.integers(0, 4, n)
    mu = rng.normal(size=(n, 2))
    g = torch.Generator().manual_seed(1)
    info = label_information(mu, np.zeros((n, 2)), labels, generator=g)  # broad (σ = 1)
    assert abs(info.leave_one_out) < 0.05 and 0 <= info.plug_in < 0.1
    assert info.leave_one_out <= info.plug_in
    h = float(-(label_distribution(labels) * np.log(label_distribution(labels))).sum())
    assert info.label_entropy == pytest.approx(h)
    centers = 10.0 * np.eye(4)[labels]
    sep = label_information(
        centers + 0.1 * rng.normal(size=(n, 4)),
        np.full((n, 4), 2 * np.log(0.3)),
        labels,
        generator=g,
    )
    assert sep.plug_in == pytest.approx(h, abs=1e-6)  # saturates at the empirical label entropy
    assert sep.leave_one_out == pytest.approx(h, abs=0.02)
    # explicit samples give the same as the seeded draw
    z = mu + rng.normal(size=mu.shape)
    a = label_information(mu, np.zeros((n, 2)), labels, samples=z)
    b = label_information(mu, np.zeros((n, 2)), labels, samples=z, max_chunk_elements=50)
    assert a.plug_in == pytest.approx(b.plug_in) and a.leave_one_out == pytest.approx(
        b.leave_one_out
    )
    with pytest.raises(ValueError, match="finite"):
        label_information(mu, np.full((n, 2), -np.inf), labels, generator=g)  # σ = 0
    with pytest.raises(TypeError, match="needed when samples is None"):
        label_information(mu, np.zeros((n, 2)), labels)  # no samples and no generator


# ---------------------------------------------------------------------------------------------- IS
def test_inception_style_score_closed_forms():
    uniform = np.full((50, 10), 0.1)
    s = inception_style_score(uniform)
    assert (
        s.score == pytest.approx(1.0)
        and s.diversity == pytest.approx(10.0)
        and s.sharpness == pytest.approx(0.1)
    )
    onehot = np.eye(10)[np.arange(100) % 10]
    s = inception_style_score(onehot, splits=2)
    assert (
        s.score == pytest.approx(10.0) and s.sharpness == pytest.approx(1.0) and s.score_std == 0.0
    )
    single = np.eye(10)[np.zeros(20, dtype=int)]
    assert inception_style_score(single).score == pytest.approx(1.0)
    with pytest.raises(ValueError, match="probability"):
        inception_style_score(np.ones((3, 2)))


# ---------------------------------------------------------------------------------------------- probes
def test_probes_on_separable_and_random_codes():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 300)
    x = np.eye(3)[y] * 5 + rng.normal(size=(300, 3)) * 0.3
    acc = probe_accuracy(x[:200], y[:200], x[200:], y[200:], rng=np.random.default_rng(0))
    assert set(acc) == {"logistic", "knn", "rbf_svm"} and min(acc.values()) > 0.95
    acc = faithful_probe_accuracy(x, y, probes=("knn",), rng=np.random.default_rng(42))
    assert acc["knn"] > 0.95
    with pytest.raises(ValueError, match="unknown probe"):
        probe_accuracy(
            x[:200], y[:200], x[200:], y[200:], probes=("mlp",), rng=np.random.default_rng(0)
        )
    with pytest.raises(ValueError, match="single class"):
        probe_accuracy(
            x[:10], np.zeros(10, dtype=int), x[10:20], y[10:20], rng=np.random.default_rng(0)
        )


def test_faithful_probe_same_rng_state_same_split_and_refuses_a_seed():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 120)
    x = np.eye(3)[y] + rng.normal(size=(120, 3))  # overlapping classes: the split matters
    probes = ("logistic", "rbf_svm")
    a = faithful_probe_accuracy(x, y, probes=probes, rng=np.random.default_rng(42))
    b = faithful_probe_accuracy(x, y, probes=probes, rng=np.random.default_rng(42))
    assert a == b
    others = [
        faithful_probe_accuracy(x, y, probes=probes, rng=np.random.default_rng(s)) for s in range(5)
    ]
    assert any(o != a for o in others)  # other states draw other splits
    with pytest.raises(TypeError, match=r"rng must be a numpy\.random\.Generator.*got int 42"):
        faithful_probe_accuracy(x, y, probes=probes, rng=42)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="unexpected keyword argument 'seed'"):
        faithful_probe_accuracy(x, y, probes=probes, seed=42)  # type: ignore[call-arg]


# ---------------------------------------------------------------------------------------------- a model
def test_evaluate_model_end_to_end_on_digits():
    from hvae_lib.data import load_digits_dataset

    d = load_digits_dataset()
    x, y = torch.from_numpy(d.images), d.labels
    xtr, ytr, xte, yte = x[:600], y[:600], x[600:900], y[600:900]
    cfg = HierarchicalVAEConfig(
        input_shape=(1, 8, 8), latent_dims=(8, 4), hidden=32, prior_hidden=16, sigma=0.1
    )
    torch.manual_seed(0)
    model = HierarchicalVAE(cfg)
    train(
        model,
        xtr,
        hierarchical_loss((0.5, 0.5)),
        TrainConfig(steps=150, batch_size=64, lr=3e-3, log_every=50),
        progress=False,
    )
    gen, rng = torch.Generator().manual_seed(0), np.random.default_rng(0)
    ev = evaluate_rates(model, xte, generator=gen)
    assert ev.rates.shape == (300, 2) and ev.total_rate > 0 and np.isfinite(ev.elbo)
    assert ev.mean_rates.shape == (2,)
    p = reconstruction_psnr(model, xte)
    assert 5 < p < 60
    codes = top_layer_codes(model, xte, generator=gen)
    assert codes.mean.shape == codes.sample.shape == (300, 4)
    again = top_layer_codes(model, xte, generator=torch.Generator().manual_seed(7))
    same = top_layer_codes(model, xte, generator=torch.Generator().manual_seed(7))
    np.testing.assert_array_equal(again.sample, same.sample)  # same generator state
    assert not np.array_equal(again.sample, codes.sample)
    with pytest.raises(TypeError, match=r"generator must be a torch\.Generator.*got int 7"):
        top_layer_codes(model, xte, generator=7)  # type: ignore[arg-type]
    clf = fit_image_classifier(xtr, ytr, rng=rng)
    assert (clf.predict(xte.reshape(300, -1).numpy()) == yte).mean() > 0.85
    sq = sample_quality(model, clf, num_samples=200, splits=2, generator=gen)
    assert 1.0 <= sq.score <= 10.0 and sq.sharpness <= 1.0 and sq.diversity <= 10.0
    row = evaluate_model(
        model,
        xtr,
        ytr,
        xte,
        yte,
        classifier=clf,
        probes=("knn",),
        mi_points=300,
        num_samples=200,
        generator=gen,
        rng=rng,
    )
    for key in (
        "rate_1",
        "rate_2",
        "total_rate",
        "psnr",
        "acc_mu_knn",
        "acc_z_knn",
        "mi_plug_in",
        "mi_loo",
        "fano_info",
        "fano_rate",
        "is_score",
    ):
        assert np.isfinite(row[key]), key
    assert row["mi_plug_in"] <= row["label_entropy"] + 1e-9
    assert row["fano_info"] <= row["fano_rate"] + 1e-9 or row["mi_plug_in"] > row["rate_2"]
    # the Fano bound holds for the classifier of a sampled z2 (plug-in MI on the same points)
    assert check_fano_bound(
        row["acc_z_knn"], row["mi_plug_in"], label_distribution(yte, 10), num_test=300
    ).holds
    with pytest.raises(ValueError, match="expected images"):
        evaluate_rates(model, torch.rand(3, 64), generator=gen)
    cols = evaluate_grid(
        [model, model],
        [(0.5, 0.5), (1.0, 2.0)],
        xtr[:200],
        ytr[:200],
        xte[:100],
        yte[:100],
        probes=("knn",),
        mi_points=100,
        progress=False,
        generator=gen,
        rng=rng,
    )
    assert cols["beta_2"].tolist() == [0.5, 2.0] and cols["psnr"].shape == (2,)
    assert cols["psnr"][0] == cols["psnr"][1]  # same model
    # common random numbers: every member is evaluated from the same generator state
    assert cols["distortion"][0] == cols["distortion"][1]
    assert cols["acc_z_knn"][0] == cols["acc_z_knn"][1]


# ---------------------------------------------------------------------------------------------- loaders
def _write_svhn(path, n=5, labels=None):
    from scipy.io import savemat

    rng = np.random.default_rng(0)
    X = rng.integers(0, 256, size=(32, 32, 3, n), dtype=np.uint8)
    y = np.array(labels if labels is not None else [10, 1, 2, 10, 9][:n], dtype=np.uint8).reshape(
        n, 1
    )
    savemat(str(path), {"X": X, "y": y})
    return X, y


def test_svhn_loader(tmp_path):
    X, _ = _write_svhn(tmp_path / "test_32x32.mat")
    data = load_svhn(tmp_path / "test_32x32.mat")
    assert data.images.shape == (5, 3, 32, 32) and data.images.dtype == np.float32
    np.testing.assert_array_equal(data.labels, [0, 1, 2, 0, 9])  # label 10 means digit 0
    np.testing.assert_allclose(data.images[1, 2, 3, 4], X[3, 4, 2, 1] / 255.0)
    raw = load_svhn(tmp_path, split="test", dtype="uint8", limit=2)
    assert raw.images.dtype == np.uint8 and raw.images.shape == (2, 3, 32, 32)
    assert load_dataset("svhn", path=tmp_path / "test_32x32.mat").images.shape[0] == 5
    with pytest.raises(FileNotFoundError, match="train_32x32.mat"):
        load_svhn(tmp_path, split="train")
    with pytest.raises(ValueError, match="split"):
        load_svhn(tmp_path)
    from scipy.io import savemat

    savemat(
        str(tmp_path / "bad.mat"), {"X": np.zeros((28, 28, 1, 2), np.uint8), "y": np.ones((2, 1))}
    )
    with pytest.raises(ValueError, match=r"\[32, 32, 3, N\]"):
        load_svhn(tmp_path / "bad.mat")
    (tmp_path / "junk.mat").write_bytes(b"not a mat file at all")
    with pytest.raises(ValueError, match="not a readable"):
        load_svhn(tmp_path / "junk.mat")
    _write_svhn(tmp_path / "lab.mat", n=2, labels=[3, 11])
    with pytest.raises(ValueError, match="0..10"):
        load_svhn(tmp_path / "lab.mat")


def _write_cifar(root, n=4, protocol=2, str_keys=False):
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)
    for i, name in enumerate([*(f"data_batch_{k}" for k in range(1, 6)), "test_batch"]):
        data = rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)
        labels = [(i + j) % 10 for j in range(n)]
        d = (
            {"data": data, "labels": labels}
            if str_keys
            else {b"data": data, b"labels": labels, b"batch_label": b"x"}
        )
        with open(root / name, "wb") as fh:
            pickle.dump(d, fh, protocol=protocol)


class _Evil:
    def __reduce__(self):
        import os

        return (os.system, ("echo pwned > /dev/null",))


def test_cifar10_loader_safe_unpickling(tmp_path):
    root = tmp_path / "cifar-10-batches-py"
    _write_cifar(root)
    train_set = load_cifar10(tmp_path)  # the parent directory is accepted too
    assert train_set.images.shape == (20, 3, 32, 32) and train_set.labels.dtype == np.int64
    test_set = load_cifar10(root, split="test", dtype="uint8")
    with open(root / "test_batch", "rb") as fh:
        raw = pickle.load(fh)
    np.testing.assert_array_equal(test_set.images.reshape(4, -1), raw[b"data"])
    other = tmp_path / "v4"
    _write_cifar(other, protocol=4, str_keys=True)
    assert load_cifar10(other, split="test").images.shape == (4, 3, 32, 32)
    assert load_dataset("cifar10", root=other, split="test").labels.shape == (4,)
    with open(root / "test_batch", "wb") as fh:
        pickle.dump({b"data": _Evil(), b"labels": [0]}, fh, protocol=2)
    with pytest.raises(ValueError, match="refus"):
        load_cifar10(root, split="test")
    with open(root / "test_batch", "wb") as fh:
        pickle.dump({b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]}, fh)
    with pytest.raises(ValueError, match="3072"):
        load_cifar10(root, split="test")
    (root / "test_batch").write_bytes(b"garbage")
    with pytest.raises(ValueError, match="not a CIFAR-10"):
        load_cifar10(root, split="test")
    (root / "data_batch_3").unlink()
    with pytest.raises(FileNotFoundError, match="data_batch_3"):
        load_cifar10(root)
    with pytest.raises(FileNotFoundError, match="CIFAR-10 directory"):
        load_cifar10(tmp_path / "nowhere")
    with pytest.raises(ValueError, match="split"):
        load_cifar10(root, split="valid")


# ---------------------------------------------------------------------------------------------- glyphs
def test_glyphs_are_seeded_labelled_and_class_informative():
    from hvae_lib.data import GLYPH_NUISANCES, glyphs

    a, b = glyphs(300, rng=np.random.default_rng(3)), glyphs(300, rng=np.random.default_rng(3))
    np.testing.assert_array_equal(a.images, b.images)
    assert not np.array_equal(a.images, glyphs(300, rng=np.random.default_rng(4)).images)
    with pytest.raises(TypeError, match=r"rng must be a numpy\.random\.Generator.*got int 3"):
        glyphs(300, rng=3)  # type: ignore[arg-type]
    assert a.images.shape == (300, 1, 16, 16) and a.images.dtype == np.float32
    assert 0.0 <= a.images.min() and a.images.max() <= 1.0
    assert set(a.factors) == set(GLYPH_NUISANCES) and all(
        v.shape == (300,) for v in a.factors.values()
    )
    assert set(np.unique(a.labels)) == set(range(10))
    assert glyphs(5, resolution=32, rng=np.random.default_rng(0)).images.shape == (5, 1, 32, 32)
    acc = probe_accuracy(
        a.images[:200].reshape(200, -1),
        a.labels[:200],
        a.images[200:].reshape(100, -1),
        a.labels[200:],
        probes=("logistic",),
        rng=np.random.default_rng(0),
    )
    assert acc["logistic"] > 0.6  # the class is visible through the nuisances
    with pytest.raises(ValueError):
        glyphs(0, rng=np.random.default_rng(0))
