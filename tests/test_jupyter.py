"""The interactive path: README's ``jupyter lab book/`` opens each chapter's ``.md`` as a notebook.

A Jupyter server (the one JupyterLab runs on) is started on loopback with the jupytext
contents manager that the requirements install; its contents API must return the MyST source
of chapter 1 as a notebook with the chapter's cells. Without the jupytext extension the same
request fails (the negative control).
"""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.error
from collections.abc import Iterator
from pathlib import Path

import pytest
from jupyter_util import get_json, jupyter_server

from hvae_lib.book import REPO_ROOT, read_inputs


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with jupyter_server(REPO_ROOT, tmp_path_factory.mktemp("jupyter")) as base:
        yield base


def test_chapter_md_opens_as_a_notebook(server: str) -> None:
    model = get_json(f"{server}/api/contents/book/01_rate_distortion.md?type=notebook&content=1")
    assert model["type"] == "notebook"
    cells = model["content"]["cells"]
    expected = read_inputs(REPO_ROOT / "book" / "01_rate_distortion.ipynb").cells
    assert [c["cell_type"] for c in cells] == [c.cell_type for c in expected]
    assert [c["source"] for c in cells] == [c.source for c in expected]
    assert any("parameters" in c.get("metadata", {}).get("tags", []) for c in cells)


def test_without_jupytext_the_md_is_no_notebook(tmp_path: Path) -> None:
    """Negative control: the same request to a server without the jupytext extension fails."""
    with jupyter_server(
        REPO_ROOT, tmp_path, "--ServerApp.jpserver_extensions=jupyterlab_jupytext=False"
    ) as base:
        with pytest.raises(urllib.error.HTTPError) as err:
            get_json(f"{base}/api/contents/book/01_rate_distortion.md?type=notebook&content=1")
        assert err.value.code == 400


@pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() != 0, reason="only root needs the setting"
)
def test_jupyter_lab_starts_as_root_without_flags(tmp_path: Path) -> None:
    """README's ``.venv/bin/jupyter lab book/`` as root: ``make setup`` allows root in the venv's
    ``etc/jupyter/jupyter_server_config.json``; the control forbids it again and must fail."""
    config = Path(sys.prefix) / "etc" / "jupyter" / "jupyter_server_config.json"
    assert config.is_file(), f"{config} missing: run `make setup`"
    env = {"JUPYTER_CONFIG_DIR": str(tmp_path / "user-config")}
    with jupyter_server(REPO_ROOT / "book", tmp_path, lab=True, env=env, allow_root=False) as base:
        model = get_json(f"{base}/api/contents/01_rate_distortion.md?type=notebook&content=0")
        assert model["type"] == "notebook"
    control = [
        sys.executable,
        "-m",
        "jupyterlab",
        "--no-browser",
        "--port=0",
        "--ServerApp.allow_root=False",
    ]
    out = subprocess.run(
        control, capture_output=True, text=True, timeout=120, env={**os.environ, **env}
    )
    assert out.returncode != 0 and "as root" in out.stderr + out.stdout


def test_jupyterlab_is_installed() -> None:
    """README's command: ``.venv/bin/jupyter lab`` needs the ``jupyter-lab`` entry point."""
    lab = Path(sys.executable).with_name("jupyter-lab")
    assert lab.is_file(), f"{lab} missing: install jupyterlab (requirements.txt)"
    out = subprocess.run([str(lab), "--version"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.strip()[0].isdigit()
