"""Configs round-trip to JSON; profile, device, thread and seed handling."""

from __future__ import annotations

from unittest import mock

import numpy as np
import pytest
import torch

from hvae_lib.analysis import BetaSweepConfig
from hvae_lib.config import (
    PROFILES,
    RunContext,
    check_profile,
    resolve_device,
    seed_everything,
    set_threads,
    setup_notebook,
)
from hvae_lib.models import VAEConfig
from hvae_lib.train import TrainConfig


@pytest.mark.parametrize(
    "cfg",
    [
        VAEConfig(),
        VAEConfig(architecture="conv", hidden=(8, 16), likelihood="gaussian", sigma=0.5),
        TrainConfig(steps=7, max_grad_norm=None),
        BetaSweepConfig(
            betas=(0.5, 2.0), model=VAEConfig(latent_dim=3), train=TrainConfig(steps=3)
        ),
        RunContext("quick", "cpu", 3, 1),
    ],
)
def test_config_json_round_trip(cfg):
    again = type(cfg).from_json(cfg.to_json())
    assert again == cfg
    assert again.to_json() == cfg.to_json()


def test_from_dict_rejects_unknown_fields():
    with pytest.raises(ValueError, match="valid fields"):
        VAEConfig.from_dict({"latent_dim": 3, "latnet_dim": 4})


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"architecture": "resnet"}, "mlp, conv"),
        ({"likelihood": "poisson"}, "bernoulli, gaussian"),
        ({"latent_dim": 0}, "latent_dim"),
        ({"sigma": 0.0}, "sigma"),
    ],
)
def test_vae_config_validation(kwargs, match):
    with pytest.raises(ValueError, match=match):
        VAEConfig(**kwargs)


def test_train_config_validation():
    with pytest.raises(ValueError, match="steps"):
        TrainConfig(steps=0)
    with pytest.raises(ValueError, match="lr"):
        TrainConfig(lr=-1.0)


def test_unknown_profile_lists_valid_ones():
    assert check_profile("quick") == "quick"
    with pytest.raises(ValueError) as err:
        check_profile("bogus")
    for p in PROFILES:
        assert p in str(err.value)


def test_resolve_device_auto_without_gpu():
    with mock.patch("torch.cuda.is_available", return_value=False):
        assert resolve_device("auto") == torch.device("cpu")
        with pytest.raises(RuntimeError, match="auto"):
            resolve_device("cuda")
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(torch.device("cpu")) == torch.device("cpu")


def test_resolve_device_auto_with_mocked_gpu():
    with (
        mock.patch("torch.cuda.is_available", return_value=True),
        mock.patch("torch.cuda.device_count", return_value=2),
    ):
        assert resolve_device("auto") == torch.device("cuda")
        assert resolve_device("cuda:1") == torch.device("cuda:1")
        with pytest.raises(ValueError, match="2 CUDA"):
            resolve_device("cuda:2")


@pytest.mark.parametrize("bad", ["tpu", "gpu", "cuda:x", ""])
def test_unknown_device_lists_valid_ones(bad):
    with pytest.raises(ValueError, match="auto, cpu, cuda"):
        resolve_device(bad)


def test_threads_and_seed():
    before = torch.get_num_threads()
    try:
        assert set_threads(1) == 1 and torch.get_num_threads() == 1
        with pytest.raises(ValueError):
            set_threads("two")  # type: ignore[arg-type]
    finally:
        torch.set_num_threads(before)
    g1 = seed_everything(5)
    a = (torch.rand(3), np.random.rand(), g1.random())
    g2 = seed_everything(5)
    b = (torch.rand(3), np.random.rand(), g2.random())
    assert torch.equal(a[0], b[0]) and a[1] == b[1] and a[2] == b[2]
    with pytest.raises(ValueError):
        seed_everything(-1)


def test_setup_notebook(capsys):
    ctx = setup_notebook("quick", "auto", 3, 1)
    assert ctx.profile == "quick" and ctx.seed == 3 and ctx.threads == 1
    assert ctx.device in ("cpu", "cuda")
    assert "profile=quick" in capsys.readouterr().out
    assert ctx.rng(1).random() == ctx.rng(1).random() != ctx.rng(2).random()
    with pytest.raises(ValueError, match="quick, paper"):
        setup_notebook("huge")


def test_build_seeded_initialises_reproducibly_and_leaves_the_global_rng():
    from hvae_lib.config import build_seeded

    torch.manual_seed(123)
    state = torch.get_rng_state()
    a = build_seeded(lambda: torch.nn.Linear(4, 3), 7)
    assert torch.equal(torch.get_rng_state(), state)  # the caller's stream is untouched
    b = build_seeded(lambda: torch.nn.Linear(4, 3), 7)
    c = build_seeded(lambda: torch.nn.Linear(4, 3), 8)
    assert torch.equal(a.weight, b.weight)
    assert not torch.equal(a.weight, c.weight)  # control: another seed, other weights
