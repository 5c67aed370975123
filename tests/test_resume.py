"""One training loop for every model family: an interrupted, resumed run equals an uninterrupted one.

For each family (β-VAE, hierarchical VAE with a KL warm-up, SemafoVAE, SemafoHVAE and M2 with
a supervised-only warm-up, the label VAE alone) the same run is trained twice with
:func:`hvae_lib.train.train`: once straight through, once stopped by an exception after a
checkpoint, between two checkpoints, and resumed from that checkpoint in a fresh model with
the global RNG scrambled. Weights and histories must agree exactly. The negative control: a
loss whose warm-up counts its own calls (as the hierarchical loss once did) restarts its
schedule on resume, and the same comparison fails.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch

from hvae_lib.models import M2VAE, BetaVAE, HierarchicalVAE, VAEConfig
from hvae_lib.models.hierarchical import prototype_preset
from hvae_lib.models.m2 import M2Config
from hvae_lib.models.semafo import SemafoConfig, build_semafo
from hvae_lib.objectives import (
    LabelVAELoss,
    M2LossConfig,
    SemafoLossConfig,
    SemiSupervisedLoss,
    hierarchical_loss,
    kl_warmup,
    vae_loss,
)
from hvae_lib.train import (
    LabelBatches,
    LabelledUnlabelledBatches,
    TensorBatches,
    TrainConfig,
    build_seeded,
    labelled_subset,
    load_checkpoint,
    train,
)

torch.set_num_threads(1)

SIZES = (3, 2, 4)
CONV = VAEConfig(
    input_shape=(1, 16, 16), latent_dim=4, architecture="conv", hidden=(8, 8), dense=16
)
CFG = TrainConfig(steps=24, batch_size=16, lr=3e-3, log_every=4, checkpoint_every=8, seed=5)
STOP_AT_CALL = 13  # after the checkpoint at step 8, before the one at step 16


def _images(n: int, shape: tuple[int, ...]) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    return (torch.rand(n, *shape, generator=g) > 0.7).to(torch.uint8)


def _factors(n: int) -> np.ndarray:
    rng = np.random.default_rng(0)
    return np.stack([rng.integers(0, k, n) for k in SIZES], axis=1)


def _semi_source(n: int = 160) -> Callable[[], LabelledUnlabelledBatches]:
    f = _factors(n)
    x = _images(n, (1, 16, 16))
    lab = labelled_subset(f, 0.1, np.random.default_rng(1))
    return lambda: LabelledUnlabelledBatches(x, f, lab, CFG.batch_size, CFG.seed, 0.1)


def _semafo(variant: str) -> Callable[[], Any]:
    cfg = SemafoConfig(
        vae=CONV,
        factor_sizes=SIZES,
        label_hidden=(16,),
        prior_hidden=(8,),
        variant=variant,
        z1_channels=2,
        z1_deter_channels=2,
        z1_u_hidden=8,
    )
    return lambda: build_semafo(cfg)


FAMILIES: dict[str, tuple[Callable[[], Any], Callable[[], Any], Any]] = {
    "vae": (
        lambda: BetaVAE(VAEConfig(input_shape=(1, 8, 8), latent_dim=3, hidden=(16,))),
        lambda: TensorBatches(_images(64, (1, 8, 8)), CFG.batch_size, CFG.seed),
        vae_loss(0.5),
    ),
    "hierarchical": (
        lambda: HierarchicalVAE(prototype_preset((1, 8, 8))),
        lambda: TensorBatches(_images(64, (1, 8, 8)), CFG.batch_size, CFG.seed),
        hierarchical_loss((0.5, 2.0), warmup_steps=20),
    ),
    "semafo": (
        _semafo("flat"),
        _semi_source(),
        SemiSupervisedLoss(SemafoLossConfig(warmup_steps=10)),
    ),
    "semafo_hierarchical": (
        _semafo("hierarchical"),
        _semi_source(),
        SemiSupervisedLoss(SemafoLossConfig(warmup_steps=10)),
    ),
    "m2": (
        lambda: M2VAE(M2Config(vae=CONV, factor_sizes=SIZES)),
        _semi_source(),
        SemiSupervisedLoss(M2LossConfig(warmup_steps=10)),
    ),
    "label_vae": (
        _semafo("flat"),
        lambda: LabelBatches(_factors(40), 12, CFG.seed),
        LabelVAELoss(10.0),
    ),
}


class Stop(Exception):
    pass


def _interrupt(loss: Any, at_call: int) -> Callable[..., Any]:
    calls = {"n": 0}

    def interrupted(model: Any, batch: Any, *, step: int, generator: torch.Generator) -> Any:
        calls["n"] += 1
        if calls["n"] == at_call:
            raise Stop
        return loss(model, batch, step=step, generator=generator)

    return interrupted


def _run_twice(
    build: Callable[[], Any], source: Callable[[], Any], loss: Any, fresh_loss: Any, tmp_path
) -> tuple:
    reference = build_seeded(build, 0)
    ref = train(reference, source(), loss, CFG, progress=False)
    ckpt = tmp_path / "run.pt"
    with pytest.raises(Stop):
        train(
            build_seeded(build, 0),
            source(),
            _interrupt(loss, STOP_AT_CALL),
            CFG,
            checkpoint_path=ckpt,
            progress=False,
        )
    assert load_checkpoint(ckpt)["step"] == CFG.checkpoint_every
    torch.manual_seed(1234)  # the global RNG of a new process must not matter
    resumed = build_seeded(build, 0)
    res = train(resumed, source(), fresh_loss, CFG, checkpoint_path=ckpt, progress=False)
    same = all(
        torch.equal(a, b)
        for a, b in zip(reference.state_dict().values(), resumed.state_dict().values())
    )
    return same, ref, res


@pytest.mark.parametrize("family", list(FAMILIES))
def test_resumed_run_equals_uninterrupted(family: str, tmp_path) -> None:
    build, source, loss = FAMILIES[family]
    same, ref, res = _run_twice(build, source, loss, loss, tmp_path)
    assert same, f"{family}: resumed weights differ from the uninterrupted run"
    assert res.steps_done == ref.steps_done == CFG.steps
    np.testing.assert_equal(res.history, ref.history)


class CallCountingWarmup:
    """The old hierarchical loss: its warm-up counts its own calls, so it restarts on resume."""

    def __init__(self, betas: tuple[float, float], warmup_steps: int) -> None:
        self.betas, self.warmup_steps, self.calls = betas, warmup_steps, 0

    def __call__(
        self, model: Any, x: torch.Tensor, *, step: int, generator: torch.Generator
    ) -> Any:
        w = kl_warmup(self.calls, self.warmup_steps)
        self.calls += 1
        out = model(x, generator)
        loss = out.loss(torch.tensor(self.betas) * w)
        return loss, {"loss": loss.detach()}


def test_call_counting_schedule_breaks_resume(tmp_path) -> None:
    """Negative control: the comparison above detects a schedule that is not a function of the step."""
    build, source, _ = FAMILIES["hierarchical"]
    same, _, _ = _run_twice(
        build,
        source,
        CallCountingWarmup((0.5, 2.0), 20),
        CallCountingWarmup((0.5, 2.0), 20),
        tmp_path,
    )
    assert not same


def test_train_rejects_a_non_source() -> None:
    with pytest.raises(TypeError, match="BatchSource"):
        train(
            BetaVAE(VAEConfig(input_shape=(1, 8, 8), latent_dim=2, hidden=(8,))),
            [1, 2, 3],
            vae_loss(1.0),
            CFG,
            progress=False,
        )
