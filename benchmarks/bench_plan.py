"""Benchmark of the compute plan of the paper profile on this machine's CPU.

Times a few optimiser steps of every model the ``paper`` profile trains (chapters 1-4, their
architectures, input shapes and batch sizes, random data) through the library's training
entry points with :func:`hvae_lib.book.plan.compute_plan`, and prints the table of
:func:`hvae_lib.book.plan.format_plan`: seconds per step, the profile's steps and counts, the
estimated hours per model, notebook and in total, and the peak memory. The wall and CPU time
of the whole measurement are printed last.

Target: a few minutes on 2 CPU cores with the defaults (the 21-member SVHN grid chunk at
batch 256 alone takes about 15 s a step on one thread, so it is timed for one step).

Usage::

    .venv/bin/python benchmarks/bench_plan.py [--profile paper] [--device cpu] [--threads 1]
        [--steps 3] [--warmup 1] [--max-seconds 10] [--only 03] [--json plan.json]

Used in: README ("How much compute a profile needs"), ``python -m hvae_lib plan``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hvae_lib.book.plan import compute_plan, format_plan  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    """Measure the plan and print it (returns 1 when a model could not be timed)."""
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--profile", default="paper")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--max-seconds", type=float, default=10.0)
    ap.add_argument("--only", nargs="+", default=None)
    ap.add_argument("--json", default=None, help="also write the plan as JSON here")
    args = ap.parse_args(argv)
    wall, cpu = time.perf_counter(), time.process_time()
    plan = compute_plan(
        args.profile,
        args.device,
        steps=args.steps,
        warmup=args.warmup,
        max_seconds=args.max_seconds,
        only=args.only,
        threads=args.threads,
        log=lambda line: print(line, file=sys.stderr, flush=True),
    )
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    print(format_plan(plan))
    print(f"\nmeasured in {wall:.0f} s wall, {cpu:.0f} s CPU")
    if args.json:
        Path(args.json).write_text(json.dumps(plan.to_dict(), indent=1, ensure_ascii=False))
    return 1 if plan.failed else 0


if __name__ == "__main__":
    sys.exit(main())
