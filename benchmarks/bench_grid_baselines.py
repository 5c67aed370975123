"""The batched β-grid against its strongest CPU baselines, on the same cores.

For G grid members of one preset (the quick MLP prototype, 35,184 parameters, batch 64 on 8×8
digits-shaped data; or the authors' SVHN conv preset, 475,811 parameters, batch 256 on
3×32×32 data), it times N optimiser steps of each member four ways, every process with one
torch thread:

1. ``one at a time``: the G models trained one after another with ``train`` (1 process);
2. ``two processes, one at a time``: two processes side by side, each training half of the
   models one after another (the strongest baseline on 2 cores: no batching, both cores busy);
3. ``batched grid``: the G members as one ``train_grid`` ensemble (1 process);
4. ``batched grid, two processes``: each process trains its half as an ensemble (what
   ``torchrun --nproc-per-node 2 -m hvae_lib grid`` does, without the final gather).

It prints the wall time, the model-steps per second and each mode's speed-up over mode 2.
Random data: the cost of a step does not depend on the pixel values.

Usage::

    .venv/bin/python benchmarks/bench_grid_baselines.py --preset mlp --members 8 --steps 200
    .venv/bin/python benchmarks/bench_grid_baselines.py --preset conv --members 4 --steps 4

Used in: issue 14 item 6 (the fair speed-up of the batched grid), README (benchmarks).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from hvae_lib.models import HierarchicalVAE, paper_preset, prototype_preset  # noqa: E402
from hvae_lib.objectives import hierarchical_loss  # noqa: E402
from hvae_lib.train import (  # noqa: E402
    TrainConfig,
    beta_grid,
    build_seeded,
    log_spaced_betas,
    train,
    train_grid,
)

PRESETS = {
    "mlp": (prototype_preset, (1, 8, 8), 64, 1400),
    "conv": (lambda: paper_preset("svhn"), (3, 32, 32), 256, 1024),
}


def _setup(preset: str, members: int, steps: int):
    build, shape, batch, num = PRESETS[preset]
    config = build()
    data = torch.rand(num, *shape, generator=torch.Generator().manual_seed(0))
    side = max(1, round(members**0.5))
    values = log_spaced_betas(side)
    betas = (beta_grid(values, values) * members)[:members]
    tc = TrainConfig(
        steps=steps, batch_size=batch, lr=1e-3, max_grad_norm=None, seed=0, log_every=steps
    )
    return config, data, betas, tc


def _train_part(
    preset: str, members: int, steps: int, mode: str, start: int, stop: int, barrier=None
) -> float:
    """Train members [start, stop) in this process with one thread; return the wall seconds
    of the training alone (after the setup, and after ``barrier`` when given)."""
    torch.set_num_threads(1)
    config, data, betas, tc = _setup(preset, members, steps)
    part = betas[start:stop]
    # one untimed step first: the first calls of a process (autograd, Adam, vmap) cost more
    if mode == "grid":
        train_grid(config, part, data, tc.replace(steps=1), progress=False)
    else:
        model = build_seeded(lambda: HierarchicalVAE(config), tc.seed)
        train(model, data, hierarchical_loss(part[0]), tc.replace(steps=1), progress=False)
    if barrier is not None:
        barrier.wait()
    t0 = time.perf_counter()
    if mode == "single":
        for b in part:
            model = build_seeded(lambda: HierarchicalVAE(config), tc.seed)
            train(model, data, hierarchical_loss(b), tc, progress=False)
    else:
        train_grid(config, part, data, tc, progress=False)
    return time.perf_counter() - t0


def _worker(args: tuple, barrier, out) -> None:
    out.put(_train_part(*args, barrier=barrier))


def _side_by_side(preset: str, members: int, steps: int, mode: str) -> float:
    """Two processes, each with half the members, started together (a barrier after their
    setup); the wall time is the slower one's."""
    ctx = mp.get_context("spawn")
    barrier, out = ctx.Barrier(2), ctx.Queue()
    half = (members + 1) // 2
    procs = [
        ctx.Process(target=_worker, args=((preset, members, steps, mode, a, b), barrier, out))
        for a, b in ((0, half), (half, members))
    ]
    for proc in procs:
        proc.start()
    seconds = [out.get() for _ in procs]
    for proc in procs:
        proc.join()
    return max(seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", choices=sorted(PRESETS), default="mlp")
    parser.add_argument("--members", type=int, default=8)
    parser.add_argument("--steps", type=int, default=200)
    args = parser.parse_args()
    if args.members < 2 or args.steps < 1:
        parser.error("need --members >= 2 and --steps >= 1")
    os.environ["OMP_NUM_THREADS"] = "1"
    cpu = platform.processor() or platform.machine()
    print(
        f"preset {args.preset}, {args.members} members x {args.steps} steps; "
        f"{os.cpu_count()} cores ({cpu}), 1 torch thread per process, torch {torch.__version__}"
    )
    rows = [
        ("one at a time", _train_part(args.preset, args.members, args.steps, "single", 0, 99)),
        (
            "two processes, one at a time",
            _side_by_side(args.preset, args.members, args.steps, "single"),
        ),
        ("batched grid", _train_part(args.preset, args.members, args.steps, "grid", 0, 99)),
        (
            "batched grid, two processes",
            _side_by_side(args.preset, args.members, args.steps, "grid"),
        ),
    ]
    baseline = rows[1][1]
    model_steps = args.members * args.steps
    print(f"{'mode':32s} {'wall s':>9s} {'model-steps/s':>14s} {'vs two processes':>17s}")
    for name, sec in rows:
        print(f"{name:32s} {sec:9.2f} {model_steps / sec:14.1f} {baseline / sec:16.2f}x")


if __name__ == "__main__":
    main()
