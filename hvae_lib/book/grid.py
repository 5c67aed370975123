r"""``python -m hvae_lib grid``: chapter 3's β-grid, trained outside the book, on one or many processes.

::

    python -m hvae_lib grid --profile quick --side 3 --steps 20 --seed 0 --out DIR
    torchrun --standalone --nproc-per-node 2 -m hvae_lib grid --profile quick --side 3 \
        --steps 20 --seed 0 --out DIR

trains an ``S``×``S`` log-spaced :math:`(\beta_1,\beta_2)` grid in
``[settings.beta_low, settings.beta_high]`` of the chapter's model for the profile
(:func:`hvae_lib.experiments.ch03_rate_splitting.rate_splitting_settings`), on the chapter's
training data, with the chapter's optimiser cut to ``--steps`` steps and seeded ``--seed``,
and writes a grid directory (:mod:`hvae_lib.train.distributed`): ``DIR/grid.json`` and one
``DIR/member_<k>.pt`` per member, ``k`` in row-major β order. Under ``torchrun`` the members
are sharded over the ranks (gloo on the CPU, NCCL with one GPU per rank). Re-running the same
command in the same directory finishes an interrupted grid.

Chapter 3 reads such a directory instead of training when ``$HVAE_GRID_DIR`` names it.

Used in: README (the β-grid on several processes), :ref:`ch-rate-splitting`
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

from ..config import PROFILES, check_profile, set_threads
from ..experiments.ch03_rate_splitting import load_grid_data, rate_splitting_settings
from ..train.distributed import finish_distributed, init_distributed, train_grid_to_dir
from ..train.ensemble import beta_grid, log_spaced_betas

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``python -m hvae_lib grid``."""
    parser.add_argument(
        "--profile",
        default=os.environ.get("HVAE_PROFILE", "quick"),
        help=f"whose model, data and optimiser: one of {', '.join(PROFILES)}",
    )
    parser.add_argument(
        "--side", type=int, default=None, help="S: an S x S grid (default: the profile's)"
    )
    parser.add_argument(
        "--steps", type=int, default=None, help="optimiser steps (default: the profile's)"
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=None,
        help="training seed: initialisation, minibatches, noise (default: the profile's)",
    )
    parser.add_argument(
        "--data-seed",
        type=int,
        default=0,
        help="the notebook SEED whose train/test split is used (default 0, the book's)",
    )
    parser.add_argument("--out", type=Path, required=True, help="the grid directory to write")
    parser.add_argument(
        "--device",
        default=os.environ.get("HVAE_DEVICE", "auto"),
        help="auto, cpu or cuda (under torchrun rank r uses GPU LOCAL_RANK)",
    )
    parser.add_argument(
        "--threads", type=int, default=1, help="torch threads per process (default 1; 0 = all)"
    )
    parser.add_argument(
        "--chunk-size",
        type=int,
        default=None,
        help="members trained at once per process (default: the profile's, 0 = whole shard)",
    )
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")


def run(args: argparse.Namespace) -> int:
    """Run the command; return the exit code (2 for bad input, with a message on stderr)."""
    try:
        check_profile(args.profile)
        settings = rate_splitting_settings(args.profile)
        side = settings.grid_side if args.side is None else int(args.side)
        if side < 1:
            raise ValueError(f"--side must be at least 1, got {side}")
        changes = {}
        if args.steps is not None:
            if int(args.steps) < 1:
                raise ValueError(f"--steps must be at least 1, got {args.steps}")
            changes["steps"] = int(args.steps)
        if args.seed is not None:
            changes["seed"] = int(args.seed)
        train_config = settings.train.replace(**changes)
        chunk = settings.chunk_size if args.chunk_size is None else int(args.chunk_size)
        if chunk < 0:
            raise ValueError(f"--chunk-size must be >= 0 (0: the whole shard), got {chunk}")
        if int(args.threads) < 0:
            raise ValueError(f"--threads must be >= 0 (0 = all cores), got {args.threads}")
        ctx = init_distributed(args.device)
    except (ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        set_threads(int(args.threads))
        data = load_grid_data(settings, np.random.default_rng(int(args.data_seed)))
        values = log_spaced_betas(side, settings.beta_low, settings.beta_high)
        meta = train_grid_to_dir(
            settings.model,
            beta_grid(values, values),
            data.x_train,
            train_config,
            args.out,
            chunk_size=chunk or None,
            ctx=ctx,
            progress=not args.no_progress,
            extra={
                "profile": args.profile,
                "side": side,
                "beta_values": [float(v) for v in values],
                "data": data.name,
                "data_seed": int(args.data_seed),
            },
        )
    except (ValueError, FileNotFoundError) as exc:
        print(f"error (rank {ctx.rank}): {exc}", file=sys.stderr)
        return 2
    finally:
        finish_distributed(ctx)
    if ctx.rank == 0:
        trained = sum(len(r["members"]) for r in meta["ranks"])
        print(
            f"{len(meta['members'])} members ({side}x{side}, {train_config.steps} steps, seed "
            f"{train_config.seed}, {data.name}) in {Path(args.out).resolve()}; trained now: "
            f"{trained} on {ctx.world_size} process(es) ({ctx.device})"
        )
    return 0
