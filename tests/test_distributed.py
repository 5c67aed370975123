"""The β-grid beyond one process: shards, grid directories, torchrun with gloo ranks, resume.

The acceptance check of issue 15: ``torchrun --standalone --nproc-per-node 2 -m hvae_lib grid
--profile quick --side 3 --steps 20 --seed 0 --out DIR`` writes the same 9 members (≤ 1e-4 in
every parameter) as the one-process command; the control is a grid with another seed, which
the same comparison tells apart.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from hvae_lib.book import pipeline
from hvae_lib.experiments.ch03_rate_splitting import load_grid_data, rate_splitting_settings
from hvae_lib.models import HierarchicalVAE, HierarchicalVAEConfig
from hvae_lib.train import TrainConfig, beta_grid, train_grid
from hvae_lib.train.distributed import (
    DistributedContext,
    init_distributed,
    load_grid_dir,
    shard_range,
    train_grid_to_dir,
)

torch.set_num_threads(1)

CFG = HierarchicalVAEConfig(
    input_shape=(1, 8, 8), latent_dims=(6, 4), hidden=16, prior_hidden=8, sigma=0.1
)
BETAS = beta_grid([0.1, 1.0, 10.0], [0.5, 2.0])
TC = TrainConfig(steps=12, batch_size=32, lr=3e-3, seed=1, log_every=4, checkpoint_every=4)
GRID_ARGS = ["grid", "--profile", "quick", "--side", "3", "--steps", "20", "--no-progress"]


def _data() -> torch.Tensor:
    return torch.rand(80, 1, 8, 8, generator=torch.Generator().manual_seed(0))


def _max_member_diff(a: Path, b: Path, num: int) -> float:
    diff = 0.0
    for k in range(num):
        sa = torch.load(a / f"member_{k}.pt", weights_only=True)
        sb = torch.load(b / f"member_{k}.pt", weights_only=True)
        assert sa.keys() == sb.keys()
        diff = max(diff, max(float((sa[n] - sb[n]).abs().max()) for n in sa))
    return diff


@given(st.integers(0, 500), st.integers(1, 40))
def test_shards_partition_the_members_contiguously(num, world):
    shards = [shard_range(num, world, r) for r in range(world)]
    assert [k for s in shards for k in s] == list(range(num))
    assert max(map(len, shards)) - min(map(len, shards)) <= 1


def test_shard_range_rejects_bad_ranks():
    with pytest.raises(ValueError, match="rank"):
        shard_range(9, 2, 2)


def test_grid_directory_round_trip_and_two_shards_equal_one_process(tmp_path):
    """Two shards written by hand (rank 0 and 1 of 2, without a process group: each rank only
    writes its own members) equal one process; load_grid_dir gives the members of train_grid."""
    data = _data()
    one = train_grid_to_dir(CFG, BETAS, data, TC, tmp_path / "one", progress=False)
    assert [m["index"] for m in one["members"]] == list(range(len(BETAS)))
    ref = train_grid(CFG, BETAS, data, TC, progress=False)
    loaded = load_grid_dir(tmp_path / "one", CFG, BETAS, data)
    for a, b in zip(ref.state_dicts, loaded.state_dicts):
        assert all(torch.equal(a[n], b[n]) for n in a)
    assert [r.history for r in ref.results] == [r.history for r in loaded.results]
    assert not (tmp_path / "one" / "checkpoints").exists()  # nothing left mid-way

    class OneRankAtATime(DistributedContext):
        """Rank r of 2 run alone: no process group to wait for or gather from."""

        def barrier(self) -> None:
            pass

        def gather(self, obj):
            return [obj]

    two = tmp_path / "two"
    train_grid_to_dir(CFG, BETAS, data, TC, two, ctx=OneRankAtATime(1, 2), progress=False)
    assert sorted(p.name for p in two.glob("member_*.pt")) == [
        f"member_{k}.pt" for k in shard_range(len(BETAS), 2, 1)
    ]
    with pytest.raises(FileNotFoundError, match="grid.json"):
        load_grid_dir(two)  # rank 0 writes grid.json
    train_grid_to_dir(CFG, BETAS, data, TC, two, ctx=OneRankAtATime(0, 2), progress=False)
    assert _max_member_diff(tmp_path / "one", two, len(BETAS)) <= 1e-4


def test_rerun_finishes_an_interrupted_grid_and_refuses_another(tmp_path):
    data = _data()
    out = tmp_path / "grid"
    train_grid_to_dir(CFG, BETAS, data, TC, out, chunk_size=2, progress=False)
    reference = tmp_path / "reference"
    shutil.copytree(out, reference)
    for k in (4, 5):  # the last chunk never got written
        (out / f"member_{k}.pt").unlink()
    meta = train_grid_to_dir(CFG, BETAS, data, TC, out, chunk_size=2, progress=False)
    assert meta["ranks"][0]["members"] == [4, 5]  # only the missing ones were trained
    assert _max_member_diff(reference, out, len(BETAS)) == 0.0
    with pytest.raises(ValueError, match="another grid"):
        train_grid_to_dir(CFG, BETAS, data, TC.replace(steps=13), out, progress=False)
    with pytest.raises(ValueError, match="other betas"):
        load_grid_dir(out, betas=BETAS[:-1])
    with pytest.raises(ValueError, match="other data"):
        load_grid_dir(out, data=data + 1)
    with pytest.raises(ValueError, match="another architecture"):
        load_grid_dir(out, config=CFG.replace(hidden=17))
    index = json.loads((out / "grid.json").read_text())
    del index["members"][2]["result"]
    (tmp_path / "partial").mkdir()
    (tmp_path / "partial" / "grid.json").write_text(json.dumps(index))
    with pytest.raises(ValueError, match="incomplete: member 2"):
        load_grid_dir(tmp_path / "partial")
    (out / "member_3.pt").unlink()
    with pytest.raises(FileNotFoundError, match="member_3.pt"):
        load_grid_dir(out)
    with pytest.raises(FileNotFoundError, match="grid.json"):
        load_grid_dir(tmp_path)


def test_torchrun_two_gloo_ranks_equal_one_process(tmp_path):
    """The acceptance check, run as a user would: the same 9 members from 2 gloo ranks as from
    one process; a grid with another seed is the control the comparison detects."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    single, sharded, other = tmp_path / "single", tmp_path / "sharded", tmp_path / "other"
    for out, seed in ((single, 0), (other, 1)):
        subprocess.run(
            [sys.executable, "-m", "hvae_lib", *GRID_ARGS, "--seed", str(seed), "--out", str(out)],
            check=True,
            env=env,
            timeout=300,
        )
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc-per-node",
            "2",
            "-m",
            "hvae_lib",
            *GRID_ARGS,
            "--seed",
            "0",
            "--out",
            str(sharded),
        ],
        env=env,
        timeout=300,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    meta = json.loads((sharded / "grid.json").read_text())
    assert [r["members"] for r in meta["ranks"]] == [[0, 1, 2, 3, 4], [5, 6, 7, 8]]
    assert len(meta["members"]) == 9
    assert _max_member_diff(single, sharded, 9) <= 1e-4
    assert _max_member_diff(single, other, 9) > 1e-4  # the comparison can fail


@pytest.mark.parametrize(
    "argv, message",
    [
        (["grid", "--profile", "huge", "--out", "x"], "unknown profile"),
        (["grid", "--side", "0", "--out", "x"], "--side must be at least 1"),
        (["grid", "--steps", "0", "--out", "x"], "--steps must be at least 1"),
        (["grid", "--chunk-size", "-1", "--out", "x"], "--chunk-size"),
    ],
)
def test_grid_command_rejects_bad_input(argv, message, capsys):
    assert pipeline.main(argv) == 2
    assert message in capsys.readouterr().err


def test_under_torchrun_each_rank_takes_its_gpu_and_nccl(monkeypatch):
    """With CUDA (mocked) and WORLD_SIZE=2, rank 1 trains on cuda:1 and joins with NCCL; on
    the CPU it would be gloo."""
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("LOCAL_RANK", "1")
    calls = {}
    with (
        mock.patch("torch.cuda.is_available", return_value=True),
        mock.patch("torch.cuda.device_count", return_value=2),
        mock.patch("torch.cuda.set_device") as set_device,
        mock.patch("torch.distributed.is_initialized", return_value=False),
        mock.patch(
            "torch.distributed.init_process_group",
            side_effect=lambda backend: calls.setdefault("backend", backend),
        ),
    ):
        ctx = init_distributed("auto")
        with pytest.raises(ValueError, match="LOCAL_RANK"):
            init_distributed("cuda:0")
    assert ctx.device == torch.device("cuda", 1) and ctx.rank == 1 and ctx.world_size == 2
    set_device.assert_called_with(torch.device("cuda", 1))
    assert calls["backend"] == "nccl"
    with (
        mock.patch("torch.cuda.is_available", return_value=False),
        mock.patch("torch.distributed.is_initialized", return_value=False),
        mock.patch(
            "torch.distributed.init_process_group",
            side_effect=lambda backend: calls.__setitem__("backend", backend),
        ),
    ):
        cpu = init_distributed("auto")
    assert cpu.device == torch.device("cpu") and calls["backend"] == "gloo"


def test_grid_member_file_is_a_plain_state_dict(tmp_path):
    train_grid_to_dir(CFG, BETAS[:1], _data(), TC, tmp_path, progress=False)
    state = torch.load(tmp_path / "member_0.pt", weights_only=True)
    HierarchicalVAE(CFG).load_state_dict(state)


def test_chapter_reads_the_grid_command_directory(tmp_path):
    """What chapter 3 does with ``$HVAE_GRID_DIR``: the command's directory for the quick
    profile (its 7x7 grid, cut to 3 steps) matches the chapter's architecture, betas and
    data; a directory for another data split is refused."""
    out = tmp_path / "grid"
    argv = ["grid", "--profile", "quick", "--steps", "3", "--no-progress", "--out", str(out)]
    assert pipeline.main(argv) == 0
    settings = rate_splitting_settings("quick")
    data = load_grid_data(settings, np.random.default_rng(0))
    betas = beta_grid(settings.beta_values, settings.beta_values)
    grid = load_grid_dir(out, settings.model, betas, data.x_train)
    assert len(grid) == settings.grid_side**2 and grid.train_config.steps == 3
    assert grid.train_config.replace(steps=settings.train.steps) == settings.train
    other = load_grid_data(settings, np.random.default_rng(1))
    with pytest.raises(ValueError, match="other data"):
        load_grid_dir(out, settings.model, betas, other.x_train)
