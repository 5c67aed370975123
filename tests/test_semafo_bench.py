"""Chapter 4's bench and the statistics behind its verdicts (issue 13, item 4).

Closed-form intervals, interval verdicts with their failing cases, linear probes against a
shuffled-label control, the rows files the verdict page reads, and the bench itself on a tiny
cut of the quick profile: replicates differ, the same replicate does not, and each row kind
has the columns the pages read.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from hvae_lib.analysis import (
    FactorClassifierConfig,
    fit_factor_classifier,
    mean_interval,
)
from hvae_lib.book.ledger import VERDICTS, verdict_from_interval
from hvae_lib.config import RunContext
from hvae_lib.experiments.ch04_bench import (
    TABLE_METRICS,
    TABLE_MODELS,
    SemafoBench,
    read_rows,
    replicate_frame,
    seed_summary,
    write_rows,
)
from hvae_lib.experiments.ch04_semafovae import semafo_settings
from hvae_lib.metrics import linear_probe_accuracy
from hvae_lib.train import TrainConfig
from hvae_lib.train.loop import ResultCache

# ----------------------------------------------------------------------------- intervals


def test_mean_interval_closed_form() -> None:
    s = mean_interval([1.0, 2.0, 3.0])
    half = 4.302652729911275 / math.sqrt(3)  # t_{0.975, 2} * s / sqrt(n), s = 1
    assert s.mean == pytest.approx(2.0)
    assert (s.low, s.high) == pytest.approx((2 - half, 2 + half))
    assert s.n == 3 and s.values == (1.0, 2.0, 3.0)
    assert s.format(1) == f"2.0 [{2 - half:.1f}, {2 + half:.1f}]"
    # a 50% interval is narrower; constant values have none
    assert mean_interval([1.0, 2.0, 3.0], level=0.5).half_width < s.half_width
    assert mean_interval([5.0, 5.0]).half_width == 0.0


def test_mean_interval_one_value_and_errors() -> None:
    one = mean_interval([0.3])
    assert one.mean == 0.3 and math.isnan(one.low) and math.isnan(one.high)
    assert one.format(2) == "0.30"
    for bad in ([], [1.0, float("nan")], [1.0, float("inf")]):
        with pytest.raises(ValueError, match="mean_interval"):
            mean_interval(bad)
    with pytest.raises(ValueError, match="level"):
        mean_interval([1.0, 2.0], level=1.0)


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.floats(-1e3, 1e3, allow_nan=False), min_size=2, max_size=8),
    st.floats(-10, 10),
    st.floats(0.1, 10),
)
def test_mean_interval_is_affine_equivariant(values, shift, scale) -> None:
    a = mean_interval(values)
    b = mean_interval([scale * v + shift for v in values])
    assert a.low <= a.mean <= a.high
    assert b.mean == pytest.approx(scale * a.mean + shift, abs=1e-6)
    assert b.half_width == pytest.approx(scale * a.half_width, rel=1e-6, abs=1e-6)


def test_verdict_from_interval_each_case() -> None:
    assert verdict_from_interval(0.4, 0.6, 0.3) == "reproduced"
    assert verdict_from_interval(0.1, 0.3, 0.3) == "not reproduced"  # at the threshold: fails
    assert verdict_from_interval(0.2, 0.4, 0.3) == "inconclusive"
    assert verdict_from_interval(math.nan, math.nan, 0.3) == "not tested"
    assert verdict_from_interval(0.4, 0.6, 0.3, tested=False) == "not tested"
    assert "inconclusive" in VERDICTS
    with pytest.raises(ValueError, match="low <= high"):
        verdict_from_interval(0.6, 0.4, 0.3)


# ----------------------------------------------------------------------------- probes


def test_linear_probes_read_a_linear_code_and_not_shuffled_labels() -> None:
    rng = np.random.default_rng(0)
    f = np.stack([rng.integers(0, 3, 600), rng.integers(0, 4, 600)], 1)
    z = np.concatenate([np.eye(3)[f[:, 0]], np.eye(4)[f[:, 1]]], 1)
    z = z + 0.1 * rng.standard_normal(z.shape)
    acc = linear_probe_accuracy(z[:400], f[:400], z[400:], f[400:])
    assert acc.shape == (2,) and (acc > 0.97).all()
    # negative control: labels that the code does not hold are read at chance
    shuffled = f[rng.permutation(len(f))]
    ctrl = linear_probe_accuracy(z[:400], shuffled[:400], z[400:], shuffled[400:])
    assert ctrl[0] < 1 / 3 + 0.12 and ctrl[1] < 1 / 4 + 0.12
    with pytest.raises(ValueError, match="width"):
        linear_probe_accuracy(z[:400], f[:400], z[400:, :3], f[400:])


# ----------------------------------------------------------------------------- rows files


def _row(elbo: float) -> dict:
    return {
        "elbo": elbo,
        "control_mean": float("nan"),
        "control_per_factor": [0.5, 0.25],
        "_ev": object(),  # private keys are not written
        "active": np.int64(3),
    }


def test_rows_round_trip_and_errors(tmp_path: Path) -> None:
    write_rows(tmp_path, "04_x", {"A": {0: _row(-1.0)}, "B": {0: _row(-2.0)}})
    write_rows(tmp_path, "06_x", {"A": {1: _row(-1.5), 2: _row(-1.25)}})
    rows = read_rows(tmp_path)
    assert sorted(rows) == ["A", "B"] and sorted(rows["A"]) == [0, 1, 2]
    assert rows["A"][1]["elbo"] == -1.5 and math.isnan(rows["A"][0]["control_mean"])
    assert rows["B"][0]["control_per_factor"] == [0.5, 0.25] and "_ev" not in rows["B"][0]
    s = seed_summary({"A": [rows["A"][r] for r in (0, 1, 2)]}, "elbo")["A"]
    assert s.mean == pytest.approx(-1.25) and s.n == 3
    assert seed_summary({"A": [rows["A"][0]]}, "control_mean")["A"] is None  # NaN: no interval
    # the same row written twice with another value is refused
    write_rows(tmp_path, "07_x", {"A": {1: _row(-9.0)}})
    with pytest.raises(ValueError, match="disagrees"):
        read_rows(tmp_path)
    (tmp_path / "semafo_rows_07_x.json").write_text(json.dumps({"nope": []}))
    with pytest.raises(ValueError, match="semafo_rows_07_x.json is not a rows file"):
        read_rows(tmp_path)


# ----------------------------------------------------------------------------- the bench


def _tiny_settings():
    s = semafo_settings("quick")
    return s.replace(
        num_images=768,
        loss=s.loss.replace(warmup_steps=3),
        train=s.train.replace(steps=6, log_every=3, checkpoint_every=1000),
        classifier_steps=5,
        num_generated=64,
        metric_codes=200,
        dci_stages=3,
    )


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HVAE_CACHE_DIR", str(tmp_path_factory.mktemp("bench-cache")))
        mp.setenv("HVAE_CACHE", "1")
        ctx = RunContext(profile="quick", device="cpu", seed=0, threads=1)
        yield SemafoBench.prepare(_tiny_settings(), ctx, progress=False)


def test_replicates_differ_and_a_replicate_repeats(bench: SemafoBench) -> None:
    a0 = bench.semisup(0)
    a1 = bench.semisup(1)
    assert (a0.train.seed, a0.label_seed) == (0, 1) and (a1.train.seed, a1.label_seed) == (1, 2)
    with pytest.raises(ValueError, match="replicate"):
        bench.semisup(-1)
    with pytest.raises(ValueError, match="unknown table model"):
        bench.table_spec("GAN")
    r0 = bench.table_row("SemafoVAE", 0)
    r0_again = bench.table_row("SemafoVAE", 0)
    r1 = bench.table_row("SemafoVAE", 1)
    assert r0["elbo"] == r0_again["elbo"]  # the control: the same replicate gives the same row
    assert r0["elbo"] != r1["elbo"]
    for key in (*TABLE_METRICS, "kl_z0", "kl_u", "nll_y", "entropy", "control_ignore"):
        assert np.isfinite(r0[key]), key
    assert len(r0["probe"]) == len(bench.sizes) and len(r0["control_per_factor"]) == len(
        bench.sizes
    )


def test_row_kinds(bench: SemafoBench) -> None:
    vae = bench.table_row("VAE", 0)
    assert math.isnan(vae["control_mean"]) and np.isfinite(vae["fd_cls"])
    m2 = bench.table_row("M2", 0)
    assert np.isfinite(m2["dci_zy_d"]) and math.isnan(m2["kl_u"])
    frame = replicate_frame({"VAE": {0: vae}, "M2": {0: m2}})
    assert list(frame.columns) == [*TABLE_METRICS.values(), "train s"]
    assert set(TABLE_MODELS) >= {"VAE", "M2"}


def test_named_generators_repeat_per_offset() -> None:
    ctx = RunContext(profile="quick", device="cpu", seed=3, threads=1)
    a = torch.rand(4, generator=ctx.generator(5))
    assert torch.equal(a, torch.rand(4, generator=ctx.generator(5)))
    assert not torch.equal(a, torch.rand(4, generator=ctx.generator(6)))


def test_fit_factor_classifier_is_cached(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.random((64, 1, 16, 16)).astype(np.float32))
    f = rng.integers(0, 2, (64, 1))
    cfg = FactorClassifierConfig(
        input_shape=(1, 16, 16),
        factor_sizes=(2,),
        train=TrainConfig(steps=3, batch_size=16, lr=1e-3, seed=0, log_every=1),
    )
    cache = ResultCache(tmp_path, enabled=True, write_only=False)
    m1, r1 = fit_factor_classifier(x, f, cfg, key="t", cache=cache, progress=False)
    m2, r2 = fit_factor_classifier(x, f, cfg, key="t", cache=cache, progress=False)
    assert not r1.from_cache and r2.from_cache
    for p, q in zip(m1.parameters(), m2.parameters()):
        assert torch.equal(p, q)
    with pytest.raises(ValueError, match="need images"):
        fit_factor_classifier(x[:, 0], f, cfg, key="t", cache=cache, progress=False)


def _same_row(a: dict, b: dict) -> bool:
    def same(x, y) -> bool:
        if isinstance(x, list) or isinstance(y, list):
            return len(x) == len(y) and all(same(u, v) for u, v in zip(x, y))
        if isinstance(x, float) and isinstance(y, float) and math.isnan(x) and math.isnan(y):
            return True
        return x == y

    return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)


def test_rows_without_figures_go_through_the_cache(
    bench: SemafoBench, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A replicate's row is scored once per (weights, settings, code): the second call reads
    it back equal key for key, without scoring; other weights, or the cache off, score again."""
    monkeypatch.setenv("HVAE_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("HVAE_CACHE", "1")
    model, res = bench.fit_table_model("SemafoVAE", 1)
    first = bench.evaluate("SemafoVAE", model, res, extras=False, figures=False)
    assert not any(k.startswith("_") for k in first)
    assert len(list((tmp_path / "rows").glob("*.json"))) == 1
    fresh = bench.evaluate("SemafoVAE", model, res, extras=False)  # computed, figure keys too
    public = {k: v for k, v in fresh.items() if not k.startswith("_")}
    assert first["elbo"] == public["elbo"] and first["control_mean"] == public["control_mean"]
    calls: list[int] = []
    original = SemafoBench.controls

    def counting(self, *args, **kwargs):
        calls.append(1)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(SemafoBench, "controls", counting)
    again = bench.evaluate("SemafoVAE", model, res, extras=False, figures=False)
    assert not calls and _same_row(first, again)  # read back, not scored
    # the negative controls: other weights, or the cache switched off, score again
    with torch.no_grad():
        next(model.parameters()).add_(1e-3)
    other = bench.evaluate("SemafoVAE", model, res, extras=False, figures=False)
    assert calls and other["elbo"] != first["elbo"]
    calls.clear()
    monkeypatch.setenv("HVAE_CACHE", "0")
    bench.evaluate("SemafoVAE", model, res, extras=False, figures=False)
    assert calls and len(list((tmp_path / "rows").glob("*.json"))) == 2
    # a damaged entry is recomputed and overwritten
    monkeypatch.setenv("HVAE_CACHE", "1")
    for f in (tmp_path / "rows").glob("*.json"):
        f.write_text("{not json")
    calls.clear()
    bench.evaluate("SemafoVAE", model, res, extras=False, figures=False)
    assert calls
