"""Chapter 3's criteria for T1 (two prices steer two rates) and N1 (no one VAE fits all)."""

import numpy as np
import pytest

from hvae_lib.analysis.downstream import check_rate_control, optima_separation


def _separable_grid(k: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """R(z2) = 8 / beta2 - pushed up by beta1; R(z1|z2) = 20 / beta1; rows beta1, cols beta2."""
    b = np.logspace(-1, 1, k)
    b1, b2 = np.meshgrid(b, b, indexing="ij")
    r2 = np.clip(8.0 * np.log10(10.0 / b2) * (1.0 + 0.1 * np.log10(b1 * 10)) - 4.0, 0, None)
    r1 = 20.0 * np.log10(10.0 / b1) + 0.5
    return r2, r1


def test_rate_control_holds_on_a_separable_grid_and_fails_with_swapped_axes():
    r2, r1 = _separable_grid()
    check = check_rate_control(r2, r1)
    assert check.holds and all(check.as_dict().values())
    # negative control: each rate against the other price; R(z2) rises with beta1
    swapped = check_rate_control(r2.T, r1.T)
    assert not swapped.top_falls and not swapped.bottom_responds and not swapped.holds


def test_rate_control_fails_when_a_rate_ignores_its_price_or_never_collapses():
    r2, r1 = _separable_grid()
    flat = check_rate_control(np.full_like(r2, 3.0), r1)  # R(z2) ignores beta2
    assert flat.top_falls and not flat.top_responds and not flat.holds
    assert not flat.collapse_somewhere  # never below 0.5 nats
    rising = r2.copy()
    rising[0, 3] = rising[0, 2] + 0.6  # one step up by more than the 0.5-nat tolerance
    assert not check_rate_control(rising, r1).top_falls
    assert check_rate_control(rising, r1, tolerance=1.0).top_falls
    with pytest.raises(ValueError, match="K, K"):
        check_rate_control(r2[:, :3], r1)


def _three_tasks():
    # 4 members; member 0 best at task 0, member 1 at task 1, member 2 at task 2, member 3
    # mediocre everywhere
    first = np.array(
        [
            [10.0, 8.0, 7.0, 9.0],
            [0.60, 0.90, 0.70, 0.80],
            [2.0, 2.5, 4.0, 3.0],
        ]
    )
    cand = [0, 1, 2]
    second = first[:, cand] + np.array([[0.1, -0.1, 0.0], [0.0, 0.02, -0.02], [0.1, 0.0, -0.2]])
    return first, second, cand


def test_optima_separation_closed_form():
    first, second, cand = _three_tasks()
    sep = optima_separation(first, second, cand)
    np.testing.assert_array_equal(sep.optimum, [0, 1, 2])
    np.testing.assert_allclose(sep.spread, [0.1, 0.02, 0.2])
    np.testing.assert_allclose(sep.best, [10.1, 0.92, 3.8])
    # member 3: shortfalls 1.1 dB, 0.12, 0.8 against spreads 0.1, 0.02, 0.2
    np.testing.assert_allclose(sep.shortfall[:, 3], [1.1, 0.12, 0.8])
    assert not sep.fits_all.any() and sep.distinct and sep.holds
    np.testing.assert_allclose(sep.min_excess[3], 1.0)
    # margin[0, 1] = task 0 at its optimum (10.1) minus at task 1's optimum (7.9)
    np.testing.assert_allclose(sep.margin[0, 1], 2.2)
    assert sep.pairwise_separated


def test_optima_separation_negative_controls():
    first, second, cand = _three_tasks()
    # the same task three times: its optimum fits all
    same = optima_separation(np.stack([first[0]] * 3), np.stack([second[0]] * 3)[:, :1], [0])
    assert not same.distinct and same.fits_all[0] and not same.holds
    # a member within the spread of the best everywhere fits all
    near = first.copy()
    near[:, 3] = [10.0, 0.90, 3.7]  # ties go to the first member
    sep = optima_separation(near, second, cand)
    assert sep.fits_all[3] and not sep.holds
    # a spread as large as the differences (a noisy second seed, away from the optima):
    # the mediocre member fits all
    noisy = second + np.array([[0.0, 0.0, 3.0], [0.3, 0.0, 0.0], [0.0, 2.0, 0.0]])
    sep = optima_separation(first, noisy, cand)
    assert sep.fits_all[3] and not sep.holds and not sep.pairwise_separated
    with pytest.raises(ValueError, match="distinct optima"):
        optima_separation(first, second, [0, 1, 3])
