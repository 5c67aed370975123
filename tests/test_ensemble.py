"""Batched β-grid training equals independent ``train`` runs (same init, minibatches, noise)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from hvae_lib.models import HierarchicalVAE, HierarchicalVAEConfig, prototype_preset
from hvae_lib.objectives import hierarchical_loss
from hvae_lib.train import (
    ResultCache,
    TensorBatches,
    TrainConfig,
    beta_grid,
    chunk_checkpoint_name,
    fit,
    fit_grid,
    log_spaced_betas,
    member_key,
    source_digest,
    train,
    train_grid,
)

torch.set_num_threads(1)

CFG = HierarchicalVAEConfig(
    input_shape=(1, 8, 8), latent_dims=(6, 4), hidden=16, prior_hidden=8, sigma=0.1
)
BETAS = beta_grid([0.1, 3.0], [0.5, 2.0])


def _data(n: int = 96, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    return torch.rand(n, 1, 8, 8, generator=torch.Generator().manual_seed(0)).to(dtype)


def _independent(cfg, betas, data, tc, *, warmup_steps=0, dtype=torch.float32, init=None):
    torch.manual_seed(tc.seed)
    model = HierarchicalVAE(cfg).to(dtype)  # the initialisation fit() builds
    if init is not None:
        model.load_state_dict(init)
    result = train(
        model, data, hierarchical_loss(betas, warmup_steps=warmup_steps), tc, progress=False
    )
    return model, result


def _max_diff(a: dict, b: dict) -> float:
    assert a.keys() == b.keys()
    return max(float((a[k].double() - b[k].double()).abs().max()) for k in a)


@pytest.mark.parametrize("dtype, atol", [(torch.float64, 1e-10), (torch.float32, 2e-5)])
def test_grid_equals_independent_runs(dtype, atol):
    """2×2 grid vs 4 independent train() runs, 20 steps, with per-member clipping active."""
    data = _data(dtype=dtype)
    tc = TrainConfig(steps=20, batch_size=32, lr=3e-3, max_grad_norm=5.0, seed=4, log_every=5)
    init = None
    if dtype == torch.float64:
        torch.manual_seed(tc.seed)
        init = HierarchicalVAE(CFG).double().state_dict()
    grid = train_grid(CFG, BETAS, data, tc, init=init, progress=False)
    assert len(grid) == 4 and grid.betas == [tuple(b) for b in BETAS]
    for g, b in enumerate(BETAS):
        model, result = _independent(CFG, b, data, tc, dtype=dtype)
        assert _max_diff(model.state_dict(), grid.state_dicts[g]) < atol
        assert grid.results[g].history["step"] == result.history["step"]
        for name in ("loss", "distortion", "rate", "rate_1", "rate_2"):
            np.testing.assert_allclose(
                grid.results[g].history[name], result.history[name], rtol=1e-5
            )
        assert grid.results[g].skipped_steps == result.skipped_steps == 0
    # the members really differ (the grid is not trivially one model)
    assert _max_diff(grid.state_dicts[0], grid.state_dicts[3]) > 1e-3
    m = grid.model(grid.index((3.0, 2.0)))
    assert isinstance(m, HierarchicalVAE) and not m.training


def test_clipping_is_per_member_and_warmup_matches():
    data = _data()
    tc = TrainConfig(steps=12, batch_size=32, lr=1e-2, max_grad_norm=0.5, seed=1, log_every=4)
    torch.manual_seed(tc.seed)
    probe = HierarchicalVAE(CFG)
    loss, _ = hierarchical_loss(BETAS[0])(probe, data[:32])
    grads = torch.autograd.grad(loss, list(probe.parameters()))
    assert (
        float(torch.linalg.vector_norm(torch.cat([g.flatten() for g in grads])))
        > 10 * tc.max_grad_norm
    )
    grid = train_grid(CFG, BETAS[:2], data, tc, warmup_steps=6, progress=False)
    for g, b in enumerate(BETAS[:2]):
        model, _ = _independent(CFG, b, data, tc, warmup_steps=6)
        assert _max_diff(model.state_dict(), grid.state_dicts[g]) < 2e-5
    tc_none = tc.replace(max_grad_norm=None)
    grid2 = train_grid(CFG, BETAS[:1], data, tc_none, progress=False)
    model, _ = _independent(CFG, BETAS[0], data, tc_none)
    assert _max_diff(model.state_dict(), grid2.state_dicts[0]) < 2e-5


def test_non_finite_member_is_skipped_without_affecting_others():
    data = _data()
    tc = TrainConfig(steps=8, batch_size=32, lr=1e-3, seed=2, log_every=4)
    torch.manual_seed(tc.seed)
    good = HierarchicalVAE(CFG).state_dict()
    bad = {k: v.clone() for k, v in good.items()}
    bad["decoder.0.0.weight"][0, 0] = float("nan")
    grid = train_grid(CFG, BETAS[:2], data, tc, init=[good, bad], progress=False)
    assert grid.results[0].skipped_steps == 0 and grid.results[1].skipped_steps == 8
    assert grid.results[1].history["step"] == []  # nothing logged for a member that never stepped
    for k in good:  # the skipped member keeps its initial weights
        torch.testing.assert_close(grid.state_dicts[1][k], bad[k], equal_nan=True)
    model, result = _independent(CFG, BETAS[0], data, tc)
    assert _max_diff(model.state_dict(), grid.state_dicts[0]) < 2e-5
    model_bad, result_bad = _independent(CFG, BETAS[1], data, tc, init=bad)
    assert result_bad.skipped_steps == 8


def test_conv_ladder_three_layer_members_match():
    cfg = HierarchicalVAEConfig(
        input_shape=(1, 8, 8),
        latent_dims=(3, 4, 2),
        architecture="conv",
        inference="ladder",
        channels=4,
        hidden=8,
        prior_hidden=8,
        likelihood="bernoulli",
    )
    data = _data(64).round()
    tc = TrainConfig(steps=6, batch_size=16, lr=3e-3, seed=0, log_every=3)
    betas = [(1.0, 0.5, 2.0), (0.2, 4.0, 1.0)]
    grid = train_grid(cfg, betas, data, tc, progress=False, chunk_size=1)
    for g, b in enumerate(betas):
        model, _ = _independent(cfg, b, data, tc)
        assert _max_diff(model.state_dict(), grid.state_dicts[g]) < 2e-5


def test_fit_grid_uses_the_cache_per_member(tmp_path):
    data = _data(64)
    tc = TrainConfig(steps=4, batch_size=16, seed=0, log_every=2)
    cache = ResultCache(tmp_path, enabled=True)
    first = fit_grid(CFG, BETAS[:2], data, tc, cache=cache, progress=False)
    assert not any(r.from_cache for r in first.results)
    again = fit_grid(CFG, BETAS, data, tc, cache=cache, progress=False)  # two cached, two new
    assert [r.from_cache for r in again.results] == [True, True, False, False]
    for g in range(2):
        assert _max_diff(first.state_dicts[g], again.state_dicts[g]) == 0.0
    # fit() with the same key finds the member the grid stored
    model, result = fit(
        lambda: HierarchicalVAE(CFG),
        data,
        hierarchical_loss(BETAS[2]),
        tc,
        key=member_key(CFG, BETAS[2]),
        cache=cache,
        progress=False,
    )
    assert result.from_cache
    assert _max_diff(model.state_dict(), again.state_dicts[2]) == 0.0


def test_grid_helpers_and_errors():
    v = log_spaced_betas(5)
    np.testing.assert_allclose(v, [0.1, 10**-0.5, 1.0, 10**0.5, 10.0])
    assert len(log_spaced_betas(21)) == 21 and math.isclose(log_spaced_betas(21)[16], 10**0.6)
    pairs = beta_grid([1.0, 2.0], [3.0, 4.0, 5.0])
    assert pairs[1] == (1.0, 4.0) and pairs[3] == (2.0, 3.0)
    with pytest.raises(ValueError, match="positive"):
        beta_grid([0.0], [1.0])
    data = _data(32)
    tc = TrainConfig(steps=1, batch_size=8)
    with pytest.raises(ValueError, match="empty"):
        train_grid(CFG, [], data, tc, progress=False)
    with pytest.raises(ValueError, match="need 2 betas"):
        train_grid(CFG, [(1.0, 1.0, 1.0)], data, tc, progress=False)
    with pytest.raises(ValueError, match="data must be"):
        train_grid(CFG, [(1.0, 1.0)], torch.rand(8, 64), tc, progress=False)
    with pytest.raises(ValueError, match="init has"):
        train_grid(CFG, BETAS, data, tc, init=[HierarchicalVAE(CFG).state_dict()], progress=False)


@pytest.mark.slow
def test_prototype_grid_reproduces_independent_rate_control():
    """Our CPU prototype: a large β2 empties the top layer, a large β1 empties the lower one (digits, 1,500 steps)."""
    from hvae_lib.data import load_digits_dataset

    d = load_digits_dataset()
    x = torch.from_numpy(d.images)
    tc = TrainConfig(steps=1500, batch_size=128, lr=1e-3, seed=0, log_every=100)
    grid = train_grid(
        prototype_preset(), [(0.1, 10.0), (10.0, 0.1), (1.0, 1.0)], x, tc, progress=False
    )
    top_collapsed, lower_collapsed, elbo = (
        grid.last("rate_2"),
        grid.last("rate_1"),
        grid.last("rate"),
    )
    assert top_collapsed[0] < 0.5 and grid.last("rate_1")[0] > 5.0
    assert lower_collapsed[1] < 2.0 and grid.last("rate_2")[1] > 5.0
    assert elbo[2] > 1.0
    # the Fano bound holds for classifiers of a sampled z2 on every member (plug-in MI, 2 s.e.)
    from hvae_lib.analysis import check_fano_bound, evaluate_model, label_distribution

    perm = np.random.default_rng(0).permutation(len(d.labels))
    te = perm[:397]
    for m in grid.models():
        row = evaluate_model(
            m,
            x[perm[397:]],
            d.labels[perm[397:]],
            x[te],
            d.labels[te],
            probes=("rbf_svm",),
            mi_points=397,
            generator=torch.Generator().manual_seed(0),
            rng=np.random.default_rng(0),
        )
        check = check_fano_bound(
            row["acc_z_rbf_svm"],
            row["mi_plug_in"],
            label_distribution(d.labels[te], 10),
            top_rate=row["rate_2"],
            num_test=397,
        )
        assert check.holds, row


# ------------------------------------------------------------------ resumable grids (issue 15)
RESUME_BETAS = beta_grid([0.1, 1.0], [0.5, 2.0])  # 4 members, 2 chunks of 2
RESUME_TC = TrainConfig(steps=20, batch_size=32, lr=3e-3, seed=2, log_every=5, checkpoint_every=5)


class _Interrupt(Exception):
    pass


def _interrupt_at(monkeypatch, call: int) -> None:
    """Raise at the ``call``-th grid step (counted over all chunks; each step calls the KL
    warm-up schedule once): a crash in the middle of a long grid run."""
    from hvae_lib.train import ensemble

    calls = {"n": 0}
    real = ensemble.kl_warmup

    def counting(step: int, warmup_steps: int) -> float:
        calls["n"] += 1
        if calls["n"] == call:
            raise _Interrupt(f"interrupted at grid step call {call}")
        return real(step, warmup_steps)

    monkeypatch.setattr(ensemble, "kl_warmup", counting)


def _fit(cache_root, data):
    return fit_grid(
        CFG,
        RESUME_BETAS,
        data,
        RESUME_TC,
        cache=ResultCache(cache_root, enabled=True),
        chunk_size=2,
        progress=False,
    )


def _assert_same_grid(a, b) -> None:
    for sa, sb, ra, rb in zip(a.state_dicts, b.state_dicts, a.results, b.results):
        assert sa.keys() == sb.keys()
        assert all(torch.equal(sa[k], sb[k]) for k in sa)
        assert ra.history == rb.history and ra.skipped_steps == rb.skipped_steps


@pytest.mark.parametrize(
    "stop_call, cached_before",
    [(21, 2), (33, 2), (13, 0)],
    ids=["after-first-chunk", "mid-second-chunk", "mid-first-chunk"],
)
def test_interrupted_grid_resumes_to_the_uninterrupted_result(
    tmp_path, monkeypatch, stop_call, cached_before
):
    """A grid interrupted after its first chunk, or in a chunk between two of its checkpoints,
    resumes (finished chunks from the cache, the interrupted one from its last checkpoint) to
    exactly the weights and histories of an uninterrupted run."""
    data = _data()
    straight = _fit(tmp_path / "straight", data)
    assert not list((tmp_path / "straight" / "grid-checkpoints").glob("*.pt"))  # cleaned up

    with monkeypatch.context() as m:
        _interrupt_at(m, stop_call)
        with pytest.raises(_Interrupt):
            _fit(tmp_path / "resumed", data)
    cache = ResultCache(tmp_path / "resumed", enabled=True)
    digest = source_digest(TensorBatches(data, RESUME_TC.batch_size, RESUME_TC.seed))
    keys = [cache.key(member_key(CFG, b), RESUME_TC, digest) for b in RESUME_BETAS]
    cached = sum(cache.load(k, HierarchicalVAE(CFG)) is not None for k in keys)
    assert cached == cached_before  # the finished chunk was stored before the crash
    ckpts = list((tmp_path / "resumed" / "grid-checkpoints").glob("*.pt"))
    assert len(ckpts) == (0 if stop_call == 21 else 1)  # a mid-chunk crash left a checkpoint
    if ckpts:
        assert torch.load(ckpts[0], weights_only=True)["step"] == 10  # the last one before it

    calls = {"n": 0}
    from hvae_lib.train import ensemble

    real = ensemble.kl_warmup

    def counting(step: int, warmup_steps: int) -> float:
        calls["n"] += 1
        return real(step, warmup_steps)

    monkeypatch.setattr(ensemble, "kl_warmup", counting)
    resumed = _fit(tmp_path / "resumed", data)
    # only the steps not done before the crash (and not checkpointed) are trained again
    assert calls["n"] == {21: 20, 33: 10, 13: 30}[stop_call]
    _assert_same_grid(straight, resumed)
    assert not list((tmp_path / "resumed" / "grid-checkpoints").glob("*.pt"))


def test_resume_check_fails_when_the_checkpoint_loses_optimizer_state(tmp_path, monkeypatch):
    """Negative control: a checkpoint whose Adam moments are zeroed resumes to other weights,
    and the comparison of the test above reports it."""
    data = _data()
    straight = _fit(tmp_path / "straight", data)
    with monkeypatch.context() as m:
        _interrupt_at(m, 33)
        with pytest.raises(_Interrupt):
            _fit(tmp_path / "broken", data)
    (ckpt,) = (tmp_path / "broken" / "grid-checkpoints").glob("*.pt")
    payload = torch.load(ckpt, weights_only=True)
    payload["optimizer"]["m"].zero_()
    payload["optimizer"]["v"].zero_()
    torch.save(payload, ckpt)
    resumed = _fit(tmp_path / "broken", data)
    with pytest.raises(AssertionError):
        _assert_same_grid(straight, resumed)


def test_grid_checkpoint_errors(tmp_path):
    """A corrupt chunk checkpoint, or one written for other betas, is refused by name."""
    data = _data()
    digest = source_digest(TensorBatches(data, RESUME_TC.batch_size, RESUME_TC.seed))
    name = chunk_checkpoint_name(CFG, RESUME_BETAS[:2], RESUME_TC, 0, digest)
    assert name != chunk_checkpoint_name(CFG, RESUME_BETAS[2:], RESUME_TC, 0, digest)
    assert name != chunk_checkpoint_name(
        CFG, RESUME_BETAS[:2], RESUME_TC.replace(steps=21), 0, digest
    )
    folder = tmp_path / "ckpt"
    folder.mkdir()
    (folder / name).write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="not a readable grid checkpoint"):
        train_grid(CFG, RESUME_BETAS[:2], data, RESUME_TC, checkpoint_dir=folder, progress=False)
    torch.save({"betas": [[9.0, 9.0]], "train_config": RESUME_TC.to_json()}, folder / name)
    with pytest.raises(ValueError, match="another grid chunk"):
        train_grid(CFG, RESUME_BETAS[:2], data, RESUME_TC, checkpoint_dir=folder, progress=False)


def test_finished_chunk_checkpoint_is_reused_by_train_grid(tmp_path, monkeypatch):
    """Without a callback, train_grid keeps each finished chunk's final checkpoint, and a second
    call returns the same members without training (no grid step runs: counted)."""
    from hvae_lib.train import ensemble

    data = _data()
    first = train_grid(
        CFG, RESUME_BETAS, data, RESUME_TC, chunk_size=2, checkpoint_dir=tmp_path, progress=False
    )
    assert len(list(tmp_path.glob("*.pt"))) == 2
    calls = {"n": 0}
    real = ensemble.kl_warmup

    def counting(step: int, warmup_steps: int) -> float:
        calls["n"] += 1
        return real(step, warmup_steps)

    monkeypatch.setattr(ensemble, "kl_warmup", counting)
    second = train_grid(
        CFG, RESUME_BETAS, data, RESUME_TC, chunk_size=2, checkpoint_dir=tmp_path, progress=False
    )
    assert calls["n"] == 0  # a retrained grid would run 2 x 20 steps (and give the same weights)
    _assert_same_grid(first, second)
    for f in tmp_path.glob("*.pt"):  # the control: without the checkpoints it trains again
        f.unlink()
    train_grid(CFG, RESUME_BETAS, data, RESUME_TC, chunk_size=2, progress=False)
    assert calls["n"] == 40
