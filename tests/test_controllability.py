"""Factor classifier, controllability accuracy, classifier-feature Fréchet distance."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hvae_lib.analysis import (
    ControllabilityResult,
    FactorClassifier,
    FactorClassifierConfig,
    classifier_frechet_distance,
    controllability,
    factor_accuracy,
    factor_consistency,
    frechet_distance,
    train_factor_classifier,
)
from hvae_lib.analysis.controllability import ImageFactorBatches
from hvae_lib.data import dsprites_lite
from hvae_lib.train import TensorBatches, TrainConfig

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def big_sprites() -> tuple[np.ndarray, np.ndarray]:
    """dSprites-lite at the largest scale and orientation 0: 3 shapes × 8 × 8 positions (192 images)."""
    ds = dsprites_lite().select({"scale": [3], "orientation": [0]})
    return ds.render_all(), ds.all_factors()


@pytest.fixture(scope="module")
def classifier(big_sprites: tuple[np.ndarray, np.ndarray]) -> FactorClassifier:
    imgs, f = big_sprites
    cfg = FactorClassifierConfig(
        factor_sizes=(3, 1, 1, 8, 8),
        channels=(8, 16, 16),
        hidden=32,
        train=TrainConfig(steps=300, batch_size=64, log_every=50),
    )
    clf, res = train_factor_classifier(imgs, f, cfg, progress=False)
    assert res.skipped_steps == 0
    return clf


def test_frechet_distance_closed_forms() -> None:
    assert frechet_distance(np.zeros(1), np.eye(1), np.ones(1), 4 * np.eye(1)) == pytest.approx(2.0)
    rng = np.random.default_rng(0)
    a = rng.normal(size=(5, 5))
    cov = a @ a.T + np.eye(5)
    mu = rng.normal(size=5)
    assert frechet_distance(mu, cov, mu, cov) == pytest.approx(0.0, abs=1e-6)
    # diagonal covariances: sum (mu diff)^2 + sum (sqrt(s1) - sqrt(s2))^2
    s1, s2 = np.array([1.0, 2.0, 3.0]), np.array([4.0, 1.0, 0.5])
    want = 1.0 + np.sum((np.sqrt(s1) - np.sqrt(s2)) ** 2)
    assert frechet_distance(
        np.zeros(3), np.diag(s1), np.array([1.0, 0, 0]), np.diag(s2)
    ) == pytest.approx(want)
    with pytest.raises(ValueError):
        frechet_distance(np.zeros(2), np.eye(2), np.zeros(3), np.eye(3))


def test_classifier_learns_and_scores(
    big_sprites: tuple[np.ndarray, np.ndarray], classifier: FactorClassifier
) -> None:
    imgs, f = big_sprites
    logits = classifier(torch.as_tensor(imgs[:4]).float())
    assert logits.shape == (4, 3 + 1 + 1 + 8 + 8) and classifier.features(
        torch.as_tensor(imgs[:4]).float()
    ).shape == (4, 32)
    acc = factor_accuracy(classifier, imgs, f)
    assert acc.shape == (5,) and acc[0] > 0.9 and acc[3] > 0.9 and acc[4] > 0.9, acc
    res = controllability(
        classifier, imgs, f, names=("shape", "scale", "orientation", "posX", "posY")
    )
    assert isinstance(res, ControllabilityResult) and res.n == len(f)
    np.testing.assert_allclose(res.per_factor, acc)
    np.testing.assert_allclose(res.chance, [1 / 3, 1, 1, 1 / 8, 1 / 8])
    assert set(res.as_dict()) == {"shape", "scale", "orientation", "posX", "posY", "mean"}
    # images that ignore the request score near chance on shape
    wrong = f.copy()
    wrong[:, 0] = (wrong[:, 0] + 1) % 3
    assert controllability(classifier, imgs, wrong).per_factor[0] < 0.1
    with pytest.raises(ValueError, match="names"):
        controllability(classifier, imgs, f, names=("a",))


def test_classifier_frechet_distance(
    big_sprites: tuple[np.ndarray, np.ndarray], classifier: FactorClassifier
) -> None:
    imgs, f = big_sprites
    same = classifier_frechet_distance(classifier, imgs, imgs)
    assert same == pytest.approx(0.0, abs=1e-4)
    squares = imgs[f[:, 0] == 0]
    other = classifier_frechet_distance(classifier, imgs, squares)
    noise = classifier_frechet_distance(
        classifier, imgs, np.random.default_rng(0).random((64, 1, 32, 32))
    )
    assert 0 < other < noise


def test_bad_inputs() -> None:
    with pytest.raises(ValueError, match="factor_sizes"):
        FactorClassifierConfig(factor_sizes=())
    with pytest.raises(ValueError, match="need images"):
        train_factor_classifier(
            np.zeros((4, 1, 32, 32)),
            np.zeros((4, 2), dtype=np.int64),
            FactorClassifierConfig(),
            progress=False,
        )
    cfg = FactorClassifierConfig()
    assert FactorClassifierConfig.from_json(cfg.to_json()) == cfg


def test_tiny_trained_semafo_generates_requested_shapes(classifier: FactorClassifier) -> None:
    """Conditional samples y -> u -> z0 -> x of a SemafoVAE trained for ~10 s obey the requested shape.

    48 images (3 shapes × 4 × 4 central positions, largest scale); labels shape, posX, posY;
    every example labelled (label fraction 1: the labelled objective and the generation path).
    Chance is 1/3; the trained model reaches about 0.7 per shape on this machine.
    """
    from hvae_lib.analysis import conditional_samples
    from hvae_lib.models import SemafoConfig, VAEConfig, build_semafo
    from hvae_lib.objectives import SemafoLossConfig
    from hvae_lib.train import SemiSupervisedConfig, train_semisupervised

    ds = dsprites_lite().select(
        {"scale": [3], "orientation": [0], "posX": [2, 3, 4, 5], "posY": [2, 3, 4, 5]}
    )
    imgs, f = ds.render_all(), ds.all_factors()
    fy = f[:, [0, 3, 4]]
    vae = VAEConfig(
        input_shape=(1, 32, 32), latent_dim=6, architecture="conv", hidden=(16, 32, 32), dense=64
    )
    torch.manual_seed(0)
    model = build_semafo(
        SemafoConfig(vae=vae, factor_sizes=(3, 4, 4), label_hidden=(32,), prior_hidden=(32,))
    )
    sc = SemiSupervisedConfig(
        train=TrainConfig(steps=600, batch_size=32, lr=3e-3, seed=0, log_every=100),
        label_fraction=1.0,
    )
    res = train_semisupervised(
        model, imgs, fy, sc, SemafoLossConfig(warmup_steps=0), progress=False
    )
    assert res.skipped_steps == 0
    req = np.concatenate(
        [np.repeat(np.arange(3), 100)[:, None], np.random.default_rng(0).integers(0, 4, (300, 2))],
        axis=1,
    )
    gen = conditional_samples(model, req, torch.Generator().manual_seed(0))
    pred = classifier.predict(gen)[:, 0]
    per_shape = np.array([(pred[req[:, 0] == s] == s).mean() for s in range(3)])
    print("per-shape accuracy of conditional samples:", per_shape)
    assert per_shape.mean() >= 0.55 and per_shape.min() >= 0.4, per_shape


def test_factor_consistency(
    big_sprites: tuple[np.ndarray, np.ndarray], classifier: FactorClassifier
) -> None:
    imgs, f = big_sprites
    x = torch.as_tensor(imgs[:6]).float()
    # traversals that never change the image keep every reading and change no pixel
    still = x[:, None].expand(6, 5, *x.shape[1:])
    assert factor_consistency(classifier, still) == (1.0, 0.0)
    # a traversal through six different real images: readings change where the factors do
    moving = x[None]
    kept, change = factor_consistency(classifier, moving)
    pred = classifier.predict(x)
    assert kept == pytest.approx(float((pred == pred[3]).mean()))
    assert change == pytest.approx(float((x - x[3]).abs().mean()), rel=1e-6)
    with pytest.raises(ValueError, match="traversals"):
        factor_consistency(classifier, x)


def test_factor_classifier_batches_equal_the_packed_tensor_without_copying_images():
    """ImageFactorBatches draws the rows TensorBatches draws from the packed float tensor (so
    training is unchanged), while the uint8 images are kept, not copied as float32."""
    g = torch.Generator().manual_seed(0)
    images = (torch.rand(50, 1, 4, 4, generator=g) > 0.5).to(torch.uint8)
    factors = torch.randint(0, 3, (50, 2), generator=g)
    packed = torch.cat([images.reshape(50, -1).float(), factors.float()], dim=1)
    ours, ref = ImageFactorBatches(images, factors, 16, 3), TensorBatches(packed, 16, 3)
    for _ in range(7):  # across an epoch boundary
        assert torch.equal(ours.next(), ref.next())
    assert ours.images.dtype == torch.uint8 and ours.images.data_ptr() == images.data_ptr()
    state = ours.state()
    first = ours.next()
    ours.load(state)
    assert torch.equal(ours.next(), first)
