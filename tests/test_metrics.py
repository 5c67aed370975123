"""Tests of hvae_lib.metrics against the closed forms and known values of the spec.

Definitions: google-research/disentanglement_lib at commit ``86a644d``. Ground truth comes from
``SyntheticFactors`` (identity observations), the analogue of disentanglement_lib's
``IdentityObservationsData``; tests assert ranges except for the closed forms. The full-size
DCI cases of disentanglement_lib (10 factors, GBT) are marked slow.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from hvae_lib.metrics import (
    DCIScores,
    GridEncoder,
    GroundTruthData,
    GroundTruthSampler,
    SyntheticFactors,
    beta_vae_features,
    beta_vae_score,
    dci,
    dci_from_importance,
    discrete_entropy,
    discrete_mutual_info,
    evaluate_metrics,
    factor_vae_from_votes,
    factor_vae_score,
    factor_vae_votes,
    histogram_discretize,
    importance_matrix,
    mig,
    mig_from_mutual_info,
    plugin_mutual_info,
    prune_dims,
    representation,
    sample_codes_and_factors,
    sap,
    sap_from_score_matrix,
    sap_score_matrix,
)

LN2_LN10 = math.log(2) / math.log(10)


# ---------------------------------------------------------------- fixtures / helpers
def identity_data(n: int, seed: int = 0, sizes: tuple[int, ...] = (10,) * 10) -> np.ndarray:
    """Factors of the spec's identity data (values 0..9 instead of 1..10)."""
    return SyntheticFactors(sizes).sample_factors(n, np.random.default_rng(seed))


@pytest.fixture(scope="module")
def identity_3000() -> tuple[np.ndarray, np.ndarray]:
    return identity_data(3000, 0), identity_data(3000, 1)


# ---------------------------------------------------------------- discretiser, MI, entropy
def test_histogram_discretize_spec_case() -> None:
    # spec: _histogram_discretize([[.1,...,.6],[.6,...,.1]], 3) -> [[1,1,2,2,3,3],[3,3,2,2,1,1]]
    # (disentanglement_lib's arrays are [D, N]; ours are [N, D], hence the transposes)
    z = np.array([[0.1, 0.2, 0.3, 0.4, 0.5, 0.6], [0.6, 0.5, 0.4, 0.3, 0.2, 0.1]]).T
    expected = np.array([[1, 1, 2, 2, 3, 3], [3, 3, 2, 2, 1, 1]]).T
    np.testing.assert_array_equal(histogram_discretize(z, 3), expected)


def test_discrete_entropy_spec_case() -> None:
    f = np.array([[1, 1, 2, 2, 3, 3], [3, 3, 2, 2, 1, 1]]).T
    np.testing.assert_allclose(discrete_entropy(f), [math.log(3)] * 2, rtol=1e-12)


def test_discrete_mutual_info_spec_case() -> None:
    mus = np.array([[1, 2, 1, 2], [1, 1, 2, 2]]).T
    ys = np.array([[1, 2, 1, 2], [2, 2, 1, 1]]).T
    np.testing.assert_allclose(
        discrete_mutual_info(mus, ys), [[math.log(2), 0.0], [0.0, math.log(2)]], atol=1e-12
    )


def test_histogram_constant_code_is_one_bin() -> None:
    z = np.c_[np.full(50, 3.0), np.linspace(0, 1, 50)]
    out = histogram_discretize(z, 20)
    assert np.unique(out[:, 0]).size == 1
    assert out[:, 1].min() == 1 and out[:, 1].max() == 20


@settings(max_examples=40, deadline=None)
@given(
    arrays(
        np.float64,
        st.tuples(st.integers(2, 60), st.integers(1, 3)),
        elements=st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False),
    ),
    st.integers(1, 25),
)
def test_histogram_discretize_properties(z: np.ndarray, bins: int) -> None:
    out = histogram_discretize(z, bins)
    assert out.shape == z.shape and out.dtype == np.int64
    assert out.min() >= 1 and out.max() <= bins
    for j in range(z.shape[1]):
        order = np.argsort(z[:, j], kind="stable")
        assert np.all(np.diff(out[order, j]) >= 0)  # order-preserving
        if z[:, j].max() > z[:, j].min():
            assert out[np.argmax(z[:, j]), j] == bins and out[np.argmin(z[:, j]), j] == 1


label_arrays = st.integers(2, 80).flatmap(
    lambda n: st.tuples(
        arrays(np.int64, n, elements=st.integers(0, 5)),
        arrays(np.int64, n, elements=st.integers(0, 7)),
    )
)


@settings(max_examples=60, deadline=None)
@given(label_arrays)
def test_plugin_mutual_info_matches_sklearn_and_bounds(ab: tuple[np.ndarray, np.ndarray]) -> None:
    from sklearn.metrics import mutual_info_score

    a, b = ab
    mi = plugin_mutual_info(a, b)
    assert mi == pytest.approx(mutual_info_score(a, b), abs=1e-10)
    assert mi == pytest.approx(plugin_mutual_info(b, a), abs=1e-12)
    h = discrete_entropy(np.c_[a, b])
    assert -1e-12 <= mi <= min(h) + 1e-10


# ---------------------------------------------------------------- DCI closed forms
DIAG = np.diag(5.0 * np.ones(5))


@pytest.mark.parametrize(
    ("matrix", "expected"),
    [
        (DIAG, (1.0, 1.0)),
        (np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]]), (1.0, 1.0)),  # empty code
        (np.vstack([DIAG, DIAG]), (1.0, 1.0 - LN2_LN10)),  # redundant codes
        (np.hstack([DIAG, DIAG]), (1.0 - LN2_LN10, 1.0)),  # one code, two factors
        (DIAG[:2, :], (1.0, 1.0)),  # missed factors
        (np.zeros((10, 10)), (0.0, 0.0)),
    ],
    ids=[
        "diagonal",
        "empty-code",
        "duplicated-codes",
        "duplicated-factors",
        "missed-factors",
        "zeros",
    ],
)
def test_dci_from_importance_closed_forms(
    matrix: np.ndarray, expected: tuple[float, float]
) -> None:
    scores = dci_from_importance(matrix)
    assert isinstance(scores, DCIScores)
    np.testing.assert_allclose(tuple(scores), expected, atol=1e-7)


@settings(max_examples=50, deadline=None)
@given(
    arrays(
        np.float64,
        st.tuples(st.integers(2, 6), st.integers(2, 6)),
        elements=st.one_of(st.just(0.0), st.floats(0.01, 10)),
    ),
    st.floats(0.1, 100),
    st.randoms(use_true_random=False),
)
def test_dci_from_importance_properties(r: np.ndarray, scale: float, rnd) -> None:
    d, c = dci_from_importance(r)
    assert -1e-9 <= d <= 1 + 1e-9 and -1e-9 <= c <= 1 + 1e-9
    rows = list(range(r.shape[0]))
    cols = list(range(r.shape[1]))
    rnd.shuffle(rows)
    rnd.shuffle(cols)
    d2, c2 = dci_from_importance(r[np.ix_(rows, cols)])
    assert d2 == pytest.approx(d, abs=1e-9) and c2 == pytest.approx(c, abs=1e-9)
    # scale invariance, up to the eps = 1e-11 added inside the entropies
    d3, c3 = dci_from_importance(scale * r)
    assert d3 == pytest.approx(d, abs=1e-5) and c3 == pytest.approx(c, abs=1e-5)


# ---------------------------------------------------------------- DCI on codes (small, fast)
SMALL = (4, 4, 4)


@pytest.fixture(scope="module")
def small_factors() -> tuple[np.ndarray, np.ndarray]:
    return identity_data(400, 2, SMALL), identity_data(400, 3, SMALL)


def test_dci_identity_gbt(small_factors) -> None:
    f_tr, f_te = small_factors
    res = dci(f_tr.astype(float), f_tr, f_te.astype(float), f_te, rng=np.random.default_rng(0))
    assert set(res) == {
        "disentanglement",
        "completeness",
        "informativeness_train",
        "informativeness_test",
    }
    assert res["disentanglement"] >= 0.9 and res["completeness"] >= 0.9
    assert res["informativeness_train"] == pytest.approx(1.0)
    assert res["informativeness_test"] == pytest.approx(1.0)


def test_dci_duplicated_gbt(small_factors) -> None:
    # disentanglement_lib: D in [0.9, 1], C = 0.699 +- 0.1 with 10 factors. Closed form for an
    # even split over the two copies is 1 - ln2/ln(2K); random tie-breaking is uneven (higher).
    f_tr, f_te = small_factors
    z_tr, z_te = np.hstack([f_tr, f_tr]).astype(float), np.hstack([f_te, f_te]).astype(float)
    res = dci(z_tr, f_tr, z_te, f_te, rng=np.random.default_rng(0))
    even = 1 - math.log(2) / math.log(2 * len(SMALL))
    assert res["disentanglement"] >= 0.9
    assert even - 0.05 <= res["completeness"] <= even + 0.25


def test_dci_permuted_rows_is_low(small_factors) -> None:
    # each sample's factors are shuffled across the codes: no code-factor alignment
    f_tr, f_te = small_factors
    rng = np.random.default_rng(0)
    z_tr = rng.permuted(f_tr, axis=1).astype(float)
    z_te = rng.permuted(f_te, axis=1).astype(float)
    res = dci(z_tr, f_tr, z_te, f_te, importance="hist_gbt", rng=rng)
    assert res["disentanglement"] <= 0.2 and res["completeness"] <= 0.2


def test_dci_identity_hist_gbt(small_factors) -> None:
    f_tr, f_te = small_factors
    res = dci(
        f_tr.astype(float),
        f_tr,
        f_te.astype(float),
        f_te,
        importance="hist_gbt",
        rng=np.random.default_rng(0),
    )
    assert res["disentanglement"] >= 0.9 and res["completeness"] >= 0.9
    assert res["informativeness_test"] == pytest.approx(1.0)


@pytest.mark.parametrize("importance", ["gbt", "hist_gbt"])
def test_dci_deterministic(small_factors, importance: str) -> None:
    f_tr, f_te = small_factors
    rng = np.random.default_rng(5)
    z_tr = np.hstack([f_tr, f_tr]) + 0.3 * rng.normal(size=(f_tr.shape[0], 6))
    z_te = np.hstack([f_te, f_te]) + 0.3 * rng.normal(size=(f_te.shape[0], 6))
    a = dci(z_tr, f_tr, z_te, f_te, rng=np.random.default_rng(7), importance=importance)
    b = dci(z_tr, f_tr, z_te, f_te, rng=np.random.default_rng(7), importance=importance, n_jobs=2)
    assert a == b  # the same rng state (and threads do not change the result)
    with pytest.raises(TypeError, match=r"rng must be a numpy\.random\.Generator.*got int 7"):
        dci(z_tr, f_tr, z_te, f_te, rng=7, importance=importance)  # type: ignore[arg-type]


def test_importance_matrix_columns_sum_to_one(small_factors) -> None:
    f_tr, f_te = small_factors
    z = np.hstack([f_tr, np.random.default_rng(0).normal(size=(len(f_tr), 2))])
    zt = np.hstack([f_te, np.random.default_rng(1).normal(size=(len(f_te), 2))])
    for method in ("gbt", "hist_gbt"):
        r, acc_tr, acc_te = importance_matrix(
            z, f_tr, zt, f_te, importance=method, rng=np.random.default_rng(0)
        )
        assert r.shape == (5, 3) and acc_tr.shape == acc_te.shape == (3,)
        np.testing.assert_allclose(r.sum(axis=0), 1.0, rtol=1e-9)
        assert np.argmax(r, axis=0).tolist() == [0, 1, 2]


@pytest.mark.slow
def test_dci_spec_cases_full_size() -> None:
    # disentanglement_lib's DCITest: 10 factors of 10 values, 1000 / 1000, GBT.
    f_tr, f_te = identity_data(1000, 10), identity_data(1000, 11)
    rng = np.random.default_rng(0)
    ident = dci(f_tr.astype(float), f_tr, f_te.astype(float), f_te, n_jobs=2, rng=rng)
    assert ident["disentanglement"] >= 0.9 and ident["completeness"] >= 0.9
    dup = dci(
        np.hstack([f_tr, f_tr]).astype(float),
        f_tr,
        np.hstack([f_te, f_te]).astype(float),
        f_te,
        n_jobs=2,
        rng=rng,
    )
    assert dup["disentanglement"] >= 0.9
    assert abs(dup["completeness"] - (1 - LN2_LN10)) <= 0.1


# ---------------------------------------------------------------- MIG
def test_mig_identity_identity_discretizer(identity_3000) -> None:
    f, _ = identity_3000
    assert 0.9 <= mig(f.astype(float), f, num_bins=None) <= 1.0


def test_mig_identity_histogram_20_bins() -> None:
    f = identity_data(10_000, 4)
    assert 0.9 <= mig(f.astype(float), f) <= 1.0  # spec reimplementation: 0.9978


def test_mig_zeros_and_duplicated(identity_3000) -> None:
    f, _ = identity_3000
    assert 0.0 <= mig(np.zeros(f.shape), f, num_bins=None) <= 0.2
    assert 0.0 <= mig(np.hstack([f, f]).astype(float), f, num_bins=None) <= 0.1
    assert 0.0 <= mig(np.zeros(f.shape), f) <= 0.2
    assert 0.0 <= mig(np.hstack([f, f]).astype(float), f) <= 0.1


def test_mig_invariant_to_code_order_and_monotone_maps(identity_3000) -> None:
    f, _ = identity_3000
    z = f.astype(float) + np.random.default_rng(0).normal(scale=0.5, size=f.shape)
    base = mig(z, f)
    perm = np.random.default_rng(1).permutation(z.shape[1])
    assert mig(z[:, perm], f) == pytest.approx(base, abs=1e-12)
    assert mig(3.0 * z - 7.0, f) == pytest.approx(base, abs=0.02)  # bin edges move by rounding only


def test_mig_from_mutual_info_closed_form() -> None:
    m = np.array([[1.0, 0.2], [0.4, 0.6], [0.0, 0.1]])
    h = np.array([2.0, 1.0])
    assert mig_from_mutual_info(m, h) == pytest.approx(((1.0 - 0.4) / 2.0 + (0.6 - 0.2) / 1.0) / 2)


# ---------------------------------------------------------------- SAP
def test_sap_continuous_spec_cases(identity_3000) -> None:
    f, ft = identity_3000
    assert 0.9 <= sap(f.astype(float), f, ft.astype(float), ft, continuous=True) <= 1.0
    assert 0.0 <= sap(np.zeros(f.shape), f, np.zeros(ft.shape), ft, continuous=True) <= 0.2
    dup = np.hstack([f, f]).astype(float)
    assert 0.0 <= sap(dup, f, continuous=True) <= 0.2


def test_sap_discrete_identity_is_low() -> None:
    # the study setting: even a perfect code scores about 0.188 with 10-valued factors
    sizes = (10,) * 4
    f, ft = identity_data(2000, 5, sizes), identity_data(2000, 6, sizes)
    score = sap(f.astype(float), f, ft.astype(float), ft, rng=np.random.default_rng(0))
    assert abs(score - 0.188) <= 0.04


def test_sap_score_matrix_continuous_is_squared_correlation() -> None:
    rng = np.random.default_rng(0)
    f = rng.integers(0, 5, size=(500, 2))
    z = np.c_[f[:, 0] + rng.normal(size=500), rng.normal(size=500), np.zeros(500)]
    s = sap_score_matrix(z, f, continuous=True)
    assert s[0, 0] == pytest.approx(np.corrcoef(z[:, 0], f[:, 0])[0, 1] ** 2, rel=1e-10)
    assert s[2].tolist() == [0.0, 0.0]  # constant code scores 0
    assert sap_from_score_matrix(np.array([[0.9, 0.1], [0.5, 0.3], [0.0, 0.2]])) == pytest.approx(
        ((0.9 - 0.5) + (0.3 - 0.2)) / 2
    )


# ---------------------------------------------------------------- FactorVAE
ID10 = SyntheticFactors((10,) * 10)
FVAE_TEST = dict(batch_size=5, num_train=3000, num_eval=2000, num_variance_estimate=2500)


def test_factor_vae_identity() -> None:
    res = factor_vae_score(
        *GroundTruthSampler.from_dataset(ID10, lambda x: x),
        rng=np.random.default_rng(0),
        prune_threshold=0.0,
        **FVAE_TEST,
    )
    assert 0.9 <= res["train_accuracy"] <= 1.0 and 0.9 <= res["eval_accuracy"] <= 1.0
    assert res["num_active_dims"] == 10


def test_factor_vae_zeros_is_chance_or_zero() -> None:
    zeros = GroundTruthSampler.from_dataset(ID10, lambda x: np.zeros_like(x))
    # threshold 0 (disentanglement_lib's test): 0/0 votes, chance level about 1/K
    res = factor_vae_score(*zeros, rng=np.random.default_rng(0), prune_threshold=0.0, **FVAE_TEST)
    assert 0.0 <= res["eval_accuracy"] <= 0.2 and 0.0 <= res["train_accuracy"] <= 0.2
    # study threshold 0.05: no active dimension, every score 0
    res = factor_vae_score(*zeros, rng=np.random.default_rng(0), **FVAE_TEST)
    assert res == {"train_accuracy": 0.0, "eval_accuracy": 0.0, "num_active_dims": 0}


def test_factor_vae_duplicated_codes() -> None:
    dup = GroundTruthSampler.from_dataset(ID10, lambda x: np.hstack([x, x]))
    res = factor_vae_score(*dup, rng=np.random.default_rng(0), **FVAE_TEST)
    assert res["eval_accuracy"] >= 0.9 and res["num_active_dims"] == 20


def test_factor_vae_cores() -> None:
    assert prune_dims([0.0, 0.01, 1.0], 0.05).tolist() == [False, True, True]  # std 0.1 >= 0.05
    # NaN quirk: a dead code (0/0) kept by threshold 0 takes the vote
    votes = factor_vae_votes([[0.0, 0.5, 0.1]], [1], [0.0, 1.0, 1.0], [True, True, True], 2)
    assert votes.tolist() == [[0, 0, 0], [1, 0, 0]]
    votes = factor_vae_votes([[0.0, 0.5, 0.1]], [1], [0.0, 1.0, 1.0], [False, True, True], 2)
    assert votes.tolist() == [[0, 0, 0], [0, 0, 1]]
    train = np.array([[5, 0, 1], [1, 4, 1]])
    ev = np.array([[3, 1, 0], [0, 2, 2]])
    res = factor_vae_from_votes(train, ev)
    assert res["train_accuracy"] == pytest.approx((5 + 4 + 1) / 12)  # tie in column 2 -> factor 0
    assert res["eval_accuracy"] == pytest.approx((3 + 2 + 0) / 8)


# ---------------------------------------------------------------- BetaVAE
def test_beta_vae_identity() -> None:
    res = beta_vae_score(
        *GroundTruthSampler.from_dataset(ID10, lambda x: x),
        rng=np.random.default_rng(0),
        batch_size=5,
        num_train=2000,
        num_eval=2000,
    )
    assert 0.9 <= res["train_accuracy"] <= 1.0 and 0.9 <= res["eval_accuracy"] <= 1.0


def test_beta_vae_zeros_is_chance() -> None:
    res = beta_vae_score(
        *GroundTruthSampler.from_dataset(ID10, lambda x: np.zeros_like(x)),
        rng=np.random.default_rng(0),
        batch_size=5,
        num_train=1000,
        num_eval=1000,
    )
    assert res["eval_accuracy"] <= 0.2


def test_beta_vae_features() -> None:
    a = np.zeros((1, 2, 3))
    b = np.array([[[1.0, -2.0, 0.0], [3.0, 0.0, 0.0]]])
    np.testing.assert_allclose(beta_vae_features(a, b), [[2.0, 1.0, 0.0]])


# ---------------------------------------------------------------- samplers and the grid cache
def warped(x: np.ndarray) -> np.ndarray:
    """A deterministic, entangled representation of factor observations [n, 3] -> [n, 4]."""
    return np.c_[
        np.tanh(x[:, 0] - 1.5) + 0.1 * x[:, 1], x[:, 1] ** 2, np.sin(x[:, 2]), x.sum(axis=1)
    ]


def test_synthetic_factors_interface() -> None:
    ds = SyntheticFactors((3, 4, 5))
    assert isinstance(ds, GroundTruthData)
    assert len(ds) == 60 and ds.all_factors().shape == (60, 3)
    np.testing.assert_array_equal(ds.factors_to_index(ds.all_factors()), np.arange(60))
    f = ds.sample_factors(1000, np.random.default_rng(0))
    assert f.dtype == np.int64 and (f.min(axis=0) == 0).all() and (f.max(axis=0) == [2, 3, 4]).all()
    np.testing.assert_array_equal(ds.index_to_factors(ds.factors_to_index(f)), f)


def test_grid_encoder_encodes_each_point_once() -> None:
    ds = SyntheticFactors((3, 4, 5))
    calls: list[int] = []

    def enc(obs: np.ndarray) -> np.ndarray:
        calls.append(len(obs))
        return warped(obs)

    grid = GridEncoder(ds, enc, batch_size=16)
    assert sum(calls) == 60 and grid.num_encoded == 60 and grid.codes.shape == (60, 4)
    f = ds.sample_factors(500, np.random.default_rng(1))
    np.testing.assert_allclose(grid.codes_for_factors(f), warped(f.astype(float)), rtol=1e-6)
    assert sum(calls) == 60  # lookups only

    lazy = GridEncoder(ds, warped, lazy=True, dtype=np.float64)
    assert lazy.num_encoded == 0
    lazy.codes_for_indices([3, 3, 7])
    assert lazy.num_encoded == 2
    with pytest.raises(ValueError, match="out of range"):
        lazy.codes_for_indices([60])


def test_cached_grid_equals_on_the_fly() -> None:
    # for deterministic codes, the cached grid gives the same result as
    # encoding on the fly for the same factor draws
    ds = SyntheticFactors((3, 4, 5))
    grid = GridEncoder(ds, warped, dtype=np.float64)
    fly = GroundTruthSampler.from_dataset(ds, warped)
    kw = dict(batch_size=8, num_train=300, num_eval=200, num_variance_estimate=500)
    a = factor_vae_score(*grid.sampler(), rng=np.random.default_rng(3), **kw)
    b = factor_vae_score(*fly, rng=np.random.default_rng(3), **kw)
    assert a == b
    kw = dict(batch_size=8, num_train=300, num_eval=200)
    assert beta_vae_score(*grid.sampler(), rng=np.random.default_rng(4), **kw) == beta_vae_score(
        *fly, rng=np.random.default_rng(4), **kw
    )
    z1, f1 = sample_codes_and_factors(grid.sampler(), 100, np.random.default_rng(5))
    z2, f2 = sample_codes_and_factors(fly, 100, np.random.default_rng(5), chunk_size=7)
    np.testing.assert_array_equal(f1, f2)
    np.testing.assert_allclose(z1, z2)


def test_evaluate_metrics_small() -> None:
    ds = SyntheticFactors((4, 4, 4))
    grid = GridEncoder(ds, lambda x: x + 0.0)
    res = evaluate_metrics(
        grid.sampler(),
        rng=np.random.default_rng(0),
        num_train=400,
        num_test=200,
        dci_importance="hist_gbt",
        sap_continuous=True,
        factor_vae_kwargs=dict(
            batch_size=8, num_train=200, num_eval=100, num_variance_estimate=400
        ),
        beta_vae_kwargs=dict(batch_size=8, num_train=200, num_eval=100),
    )
    assert res["mig"]["discrete_mig"] >= 0.9
    assert res["dci"]["disentanglement"] >= 0.9
    assert res["sap"]["SAP_score"] >= 0.9
    assert res["factor_vae"]["eval_accuracy"] >= 0.9
    assert res["beta_vae"]["eval_accuracy"] >= 0.9
    assert set(res["seconds"]) >= {"mig", "dci", "sap", "factor_vae", "beta_vae"}


# ---------------------------------------------------------------- representation
class TwoLayer:
    """Stand-in for a hierarchical model: posterior means of z0 [B, 2] and z1 [B, 3, 2]."""

    def __init__(self) -> None:
        import torch

        self.net = torch.nn.Linear(4, 2)
        self.net.train()
        self.seen_training: list[bool] = []

    def posterior_means(self, x):
        import torch

        self.seen_training.append(self.net.training)
        top = x[:, :2] * 2.0
        low = torch.stack([x[:, :2], x[:, 2:], -x[:, 2:]], dim=1)
        return [low, top]  # bottom-up: the top layer last


def test_representation_layer_choices() -> None:
    x = np.arange(40, dtype=np.float32).reshape(10, 4)
    model = TwoLayer()
    top = representation(model, x, layers="top", batch_size=3)
    assert top.shape == (10, 2) and top.dtype == np.float64
    np.testing.assert_allclose(top, 2 * x[:, :2])
    cat = representation(model, x, layers="concat")
    assert cat.shape == (10, 8)
    np.testing.assert_allclose(cat[:, -2:], top)
    per = representation(model, x, layers="per_layer")
    assert [p.shape for p in per] == [(10, 6), (10, 2)]
    np.testing.assert_allclose(representation(model, x, layers=1), per[1])
    np.testing.assert_allclose(representation(model, x, layers=-1), per[1])


def test_representation_module_eval_mode_restored() -> None:
    import torch

    net = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Dropout(0.5))
    net.train()
    x = np.random.default_rng(0).normal(size=(64, 4))
    a = representation(net, x)
    b = representation(net, x)
    np.testing.assert_allclose(a, b)  # eval mode: dropout off, deterministic
    assert net.training


def test_representation_bad_input() -> None:
    x = np.zeros((5, 4))
    with pytest.raises(ValueError, match="layers"):
        representation(TwoLayer(), x, layers="middle")
    with pytest.raises(ValueError, match="out of range"):
        representation(TwoLayer(), x, layers=2)
    with pytest.raises(ValueError, match="posterior_means"):
        representation(42, x)


# ---------------------------------------------------------------- bad input
def test_bad_input_raises_value_error(identity_3000) -> None:
    f, ft = identity_3000
    z = f.astype(float)
    with pytest.raises(ValueError, match="same number of samples"):
        mig(z[:-1], f)
    with pytest.raises(ValueError, match="NaN"):
        zn = z.copy()
        zn[5, 2] = np.nan
        mig(zn, f)
    with pytest.raises(ValueError, match="single value"):
        fc = f.copy()
        fc[:, 3] = 1
        mig(z, fc)
    with pytest.raises(ValueError, match="2-D"):
        mig(z[:, 0], f)
    with pytest.raises(ValueError, match="D >= 2|at least 2"):
        mig(z[:, :1], f)
    with pytest.raises(ValueError, match="integer"):
        mig(z, f + 0.5)
    r0 = np.random.default_rng(0)
    with pytest.raises(ValueError, match="K = 1|at least 2 factors"):
        dci(z, f[:, :1], z, ft[:, :1], rng=r0)
    with pytest.raises(ValueError, match="unknown importance"):
        dci(z, f, z, ft, importance="xgboost", rng=r0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="NaN"):
        zn = z.copy()
        zn[0, 0] = np.inf
        dci(zn, f, z, ft, rng=r0)
    with pytest.raises(ValueError, match="single value"):
        fc = f.copy()
        fc[:, 0] = 0
        sap(z, fc, z, ft)
    with pytest.raises(ValueError, match="needs codes_test"):
        sap(z, f)
    with pytest.raises(ValueError, match="non-negative"):
        dci_from_importance(-np.eye(3))
    with pytest.raises(ValueError, match="D >= 2"):
        dci_from_importance(np.ones((1, 3)))
    with pytest.raises(ValueError, match="encode must return"):
        factor_vae_score(
            *GroundTruthSampler.from_dataset(ID10, lambda x: x[:-1]),
            rng=np.random.default_rng(0),
            **FVAE_TEST,
        )
    with pytest.raises(TypeError, match="Generator"):
        factor_vae_score(*GroundTruthSampler.from_dataset(ID10, lambda x: x), rng=0)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="needed by the discrete SAP variant"):
        sap(z, f, z, ft)  # the discrete variant without an rng
