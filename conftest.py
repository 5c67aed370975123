"""Shared test setup: one torch thread, the result cache off, the quick profile on the CPU.

The environment variables are set before any kernel starts, so nbval's notebook kernels run
in the same test setting (quick profile, CPU, one thread, no cache).
"""
from __future__ import annotations

import os

os.environ["HVAE_CACHE"] = "0"
os.environ["HVAE_PROFILE"] = "quick"
os.environ["HVAE_DEVICE"] = "cpu"
os.environ["HVAE_THREADS"] = "1"
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MPLBACKEND", "Agg")

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--run-slow", action="store_true", default=False,
                     help="also run tests marked slow (or set HVAE_SLOW=1)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--run-slow") or os.environ.get("HVAE_SLOW") == "1" or config.getoption("-m"):
        return
    skip = pytest.mark.skip(reason="slow: run with --run-slow or HVAE_SLOW=1")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)
