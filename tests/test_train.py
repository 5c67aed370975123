"""Training loop: loss falls, the non-finite guard, checkpoints and exact resume, the cache."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import hvae_lib
from hvae_lib.models import BetaVAE, VAEConfig
from hvae_lib.objectives import vae_loss
from hvae_lib.train import (
    ResultCache,
    TrainConfig,
    fingerprint,
    fit,
    load_checkpoint,
    save_checkpoint,
    train,
)

CFG = VAEConfig(input_shape=(1, 6, 6), latent_dim=3, hidden=(32,))


def tiny_data(n: int = 96) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    protos = (torch.rand(4, 1, 6, 6, generator=g) > 0.5).float()
    return protos[torch.arange(n) % 4]


def build() -> BetaVAE:
    torch.manual_seed(0)
    return BetaVAE(CFG)


def test_loss_falls_on_tiny_data():
    res = train(
        build(),
        tiny_data(),
        vae_loss(1.0),
        TrainConfig(steps=300, batch_size=32, lr=3e-3, log_every=20),
        progress=False,
    )
    loss = res.history["loss"]
    assert res.steps_done == 300 and res.skipped_steps == 0
    assert loss[-1] < 0.5 * loss[0]
    assert len(res.history["step"]) == len(loss) == 15


def test_non_finite_updates_are_skipped_and_counted():
    calls = {"n": 0}
    base = vae_loss(1.0)

    def flaky(model, x, *, step, generator):
        calls["n"] += 1
        loss, logs = base(model, x, step=step, generator=generator)
        if calls["n"] % 3 == 0:
            loss = loss * float("nan")
        return loss, logs

    model = build()
    res = train(
        model,
        tiny_data(),
        flaky,
        TrainConfig(steps=30, batch_size=16, log_every=10),
        progress=False,
    )
    assert res.skipped_steps == 10 and res.steps_done == 30
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_infinite_gradient_is_skipped():
    class Exploding(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.ones(1))

    def loss_fn(model, x, *, step, generator):
        return (model.w * torch.tensor(float("inf"))).clamp(max=1.0).sum() + 0 * x.sum(), {}

    m = Exploding()
    res = train(
        m,
        torch.zeros(4, 1),
        loss_fn,
        TrainConfig(steps=5, batch_size=2, log_every=5),
        progress=False,
    )
    assert res.skipped_steps == 5 and m.w.item() == 1.0


class Interrupt(Exception):
    pass


def test_resume_from_checkpoint_equals_uninterrupted_run(tmp_path):
    data = tiny_data()
    cfg = TrainConfig(steps=40, batch_size=24, lr=3e-3, log_every=5, checkpoint_every=15, seed=3)
    reference = build()
    ref_res = train(reference, data, vae_loss(0.5), cfg, progress=False)

    base = vae_loss(0.5)
    calls = {"n": 0}

    def interrupted(model, x, *, step, generator):
        calls["n"] += 1
        if calls["n"] == 23:  # after the checkpoint at step 15, mid-way to the next one
            raise Interrupt
        return base(model, x, step=step, generator=generator)

    ckpt = tmp_path / "run.pt"
    with pytest.raises(Interrupt):
        train(build(), data, interrupted, cfg, checkpoint_path=ckpt, progress=False)
    assert load_checkpoint(ckpt)["step"] == 15
    torch.manual_seed(1234)  # global RNG state of the new process must not matter
    resumed = build()
    res = train(resumed, data, vae_loss(0.5), cfg, checkpoint_path=ckpt, progress=False)
    for a, b in zip(reference.state_dict().values(), resumed.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert res.history == ref_res.history


def test_checkpoint_round_trip_and_errors(tmp_path):
    model = build()
    path = tmp_path / "m.pt"
    save_checkpoint(path, model, step=3, note="x")
    ckpt = load_checkpoint(path)
    assert ckpt["step"] == 3 and ckpt["note"] == "x"
    fresh = BetaVAE(CFG)
    fresh.load_state_dict(ckpt["model"])
    with pytest.raises(FileNotFoundError, match=str(tmp_path)):
        load_checkpoint(tmp_path / "missing.pt")
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="not a readable"):
        load_checkpoint(tmp_path / "bad.pt")


def test_result_cache_hits_and_misses(tmp_path, monkeypatch):
    data = tiny_data()
    cfg = TrainConfig(steps=20, batch_size=16, log_every=10)
    cache = ResultCache(tmp_path, enabled=True)
    m1, r1 = fit(
        lambda: BetaVAE(CFG),
        data,
        vae_loss(1.0),
        cfg,
        key=("vae", CFG, 1.0),
        cache=cache,
        progress=False,
    )
    assert not r1.from_cache
    m2, r2 = fit(
        lambda: BetaVAE(CFG),
        data,
        vae_loss(1.0),
        cfg,
        key=("vae", CFG, 1.0),
        cache=cache,
        progress=False,
    )
    assert r2.from_cache and r2.history == r1.history
    for a, b in zip(m1.state_dict().values(), m2.state_dict().values()):
        torch.testing.assert_close(a, b)
    # a different beta, config, data or library version is a different entry
    k = cache.key(("vae", CFG, 1.0), cfg, data)
    assert k != cache.key(("vae", CFG, 2.0), cfg, data)
    assert k != cache.key(("vae", CFG, 1.0), cfg.replace(steps=21), data)
    assert k != cache.key(("vae", CFG, 1.0), cfg, data[:-1])
    monkeypatch.setattr(hvae_lib.train.loop, "__version__", "9.9.9")
    assert k != cache.key(("vae", CFG, 1.0), cfg, data)


def test_cache_off_by_env(tmp_path, monkeypatch):
    monkeypatch.setenv("HVAE_CACHE", "0")
    cache = ResultCache(tmp_path)
    assert not cache.enabled
    fit(
        build,
        tiny_data(),
        vae_loss(1.0),
        TrainConfig(steps=2, batch_size=8, log_every=1),
        key="k",
        cache=cache,
        progress=False,
    )
    assert not any(tmp_path.iterdir())


def test_damaged_cache_entry_retrains(tmp_path):
    cache = ResultCache(tmp_path, enabled=True)
    data, cfg = tiny_data(), TrainConfig(steps=2, batch_size=8, log_every=1)
    fit(build, data, vae_loss(1.0), cfg, key="k", cache=cache, progress=False)
    for f in tmp_path.rglob("weights.pt"):
        f.write_bytes(b"garbage")
    _, res = fit(build, data, vae_loss(1.0), cfg, key="k", cache=cache, progress=False)
    assert not res.from_cache


def test_fingerprint_is_content_based():
    a = torch.arange(6.0)
    assert fingerprint(a) == fingerprint(a.clone()) != fingerprint(a + 1)
    assert fingerprint(a) != fingerprint(a.to(torch.float64))


def test_cache_write_only_by_env(tmp_path, monkeypatch):
    monkeypatch.setenv("HVAE_CACHE", "write")
    cache = ResultCache(tmp_path)
    assert cache.enabled and cache.write_only
    data, cfg = tiny_data(), TrainConfig(steps=2, batch_size=8, log_every=1)
    _, r1 = fit(build, data, vae_loss(1.0), cfg, key="k", cache=cache, progress=False)
    assert not r1.from_cache and any(tmp_path.rglob("weights.pt"))
    _, r2 = fit(build, data, vae_loss(1.0), cfg, key="k", cache=cache, progress=False)
    assert not r2.from_cache  # never read
    monkeypatch.setenv("HVAE_CACHE", "1")
    _, r3 = fit(
        build, data, vae_loss(1.0), cfg, key="k", cache=ResultCache(tmp_path), progress=False
    )
    assert r3.from_cache and r3.history == r2.history


def test_interrupted_fit_resumes_from_its_checkpoint(tmp_path):
    """A fit interrupted between two checkpoints continues from the last one on the next call
    (only the remaining steps run) and ends with the weights of an uninterrupted fit; the
    checkpoint is removed once the result is cached. In write-only mode nothing is resumed."""
    data = tiny_data()
    cfg = TrainConfig(steps=30, batch_size=16, lr=3e-3, log_every=5, checkpoint_every=10)
    straight, r_straight = fit(
        build, data, vae_loss(1.0), cfg, key="k", cache=ResultCache(tmp_path / "a"), progress=False
    )
    calls = {"n": 0, "stop": 25}
    base = vae_loss(1.0)

    def loss(model, batch, *, step, generator):
        calls["n"] += 1
        if calls["n"] == calls["stop"]:
            raise KeyboardInterrupt  # a user stopping the notebook
        return base(model, batch, step=step, generator=generator)

    cache = ResultCache(tmp_path / "b", enabled=True)
    with pytest.raises(KeyboardInterrupt):
        fit(build, data, loss, cfg, key="k", cache=cache, progress=False)
    (ckpt,) = (tmp_path / "b" / "checkpoints").glob("*.pt")
    assert load_checkpoint(ckpt)["step"] == 20
    calls["n"], calls["stop"] = 0, -1
    resumed, r_resumed = fit(build, data, loss, cfg, key="k", cache=cache, progress=False)
    assert calls["n"] == 10 and not r_resumed.from_cache
    sa, sb = straight.state_dict(), resumed.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert r_resumed.history == r_straight.history
    assert not list((tmp_path / "b" / "checkpoints").glob("*.pt"))
    assert ResultCache(tmp_path / "c", write_only=True).checkpoint_path("k") is None
