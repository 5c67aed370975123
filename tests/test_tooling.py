"""Tooling that keeps the code base uniform: ruff (lint and format, line length 100) and the
library's independence from the book's optional packages. Each check is shown to fail on a
broken input."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from hvae_lib.book import REPO_ROOT

RUFF = Path(sys.executable).with_name("ruff")
#: the layers a plain ``pip install hvae_lib`` must import (everything below plots/widgets/book)
LIBRARY = [
    "hvae_lib.config",
    "hvae_lib.data",
    "hvae_lib.info",
    "hvae_lib.metrics",
    "hvae_lib.distributions",
    "hvae_lib.models",
    "hvae_lib.objectives",
    "hvae_lib.train",
    "hvae_lib.analysis",
    "hvae_lib.experiments.ch01_rate_distortion",
    "hvae_lib.experiments.ch02_transitive",
    "hvae_lib.experiments.ch03_rate_splitting",
    "hvae_lib.experiments.ch04_semafovae",
    "hvae_lib.experiments.ch04_bench",
]
#: what the ``book`` extra adds (pyproject.toml)
BOOK_EXTRA = [
    "seaborn",
    "matplotlib",
    "ipywidgets",
    "papermill",
    "jupyter_book",
    "myst_nb",
    "sphinx",
    "jupytext",
    "nbformat",
    "yaml",
    "pandas",
    "mlxtend",
    "IPython",
]


def _ruff(*args: str, cwd: Path = REPO_ROOT) -> subprocess.CompletedProcess[str]:
    if not RUFF.is_file():
        pytest.fail(f"{RUFF} missing: install ruff (requirements.txt)")
    return subprocess.run([str(RUFF), *args], cwd=cwd, capture_output=True, text=True, timeout=300)


def test_ruff_lint_passes() -> None:
    out = _ruff("check", ".", "--output-format", "concise")
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]


def test_ruff_format_is_applied() -> None:
    out = _ruff("format", "--check", ".")
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]


def test_ruff_catches_a_bad_file(tmp_path: Path) -> None:
    """Negative control: the same configuration rejects an unused import and unformatted code."""
    shutil_copy = (REPO_ROOT / "pyproject.toml").read_text()
    (tmp_path / "pyproject.toml").write_text(shutil_copy)
    (tmp_path / "bad.py").write_text("import os\nx=[1,\n 2]\n")
    assert _ruff("check", "bad.py", cwd=tmp_path).returncode != 0
    assert _ruff("format", "--check", "bad.py", cwd=tmp_path).returncode != 0


def _import_without(modules: list[str], blocked: list[str]) -> subprocess.CompletedProcess[str]:
    code = textwrap.dedent(f"""
        import importlib, importlib.abc, sys
        BLOCKED = {blocked!r}
        class Block(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in BLOCKED:
                    raise ImportError(f"{{name}} is not installed (blocked by the test)")
                return None
        sys.meta_path.insert(0, Block())
        for m in {modules!r}:
            importlib.import_module(m)
        print("ok")
    """)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)


def test_library_imports_without_the_book_extra() -> None:
    out = _import_without(LIBRARY, BOOK_EXTRA)
    assert out.returncode == 0 and "ok" in out.stdout, out.stderr[-3000:]


def test_blocked_imports_are_noticed() -> None:
    """Negative control: the figures need seaborn, so blocking it must break ``hvae_lib.plots``."""
    out = _import_without(["hvae_lib.plots"], ["seaborn"])
    assert out.returncode != 0 and "blocked by the test" in out.stderr
