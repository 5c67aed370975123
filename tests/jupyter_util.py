"""A Jupyter server (or JupyterLab) on loopback for the interactive-path tests."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

TOKEN = "hvae-test-token"


def get_json(url: str) -> Any:
    """GET a Jupyter REST endpoint with the test token."""
    req = urllib.request.Request(url, headers={"Authorization": f"token {TOKEN}"})
    with urllib.request.urlopen(req, timeout=30) as resp:  # noqa: S310 - loopback only
        return json.loads(resp.read())


@contextlib.contextmanager
def jupyter_server(
    root: Path,
    state: Path,
    *extra: str,
    lab: bool = False,
    env: dict[str, str] | None = None,
    allow_root: bool = True,
) -> Iterator[str]:
    """Start ``jupyter server`` (``lab=True``: ``jupyter lab``) serving ``root`` on 127.0.0.1;
    yield its base URL; stop it on exit. ``state`` receives its runtime and config folders;
    ``allow_root=False`` leaves out ``--allow-root`` (the venv's own setting must allow it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    full_env = {
        **os.environ,
        "JUPYTER_RUNTIME_DIR": str(state / "runtime"),
        "JUPYTER_CONFIG_DIR": str(state / "config"),
        **(env or {}),
    }
    cmd = [
        sys.executable,
        "-m",
        "jupyterlab" if lab else "jupyter_server",
        "--no-browser",
        "--ip=127.0.0.1",
        f"--port={port}",
        f"--IdentityProvider.token={TOKEN}",
        f"--ServerApp.root_dir={root}",
        *(["--allow-root"] if allow_root else []),
        *extra,
    ]
    proc = subprocess.Popen(
        cmd, env=full_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    try:
        while True:
            try:
                get_json(f"{base}/api/status")
                break
            except (urllib.error.URLError, ConnectionError):
                if proc.poll() is not None or time.monotonic() > deadline:
                    out = proc.stdout.read() if proc.stdout and proc.poll() is not None else ""
                    pytest.fail(f"the Jupyter server did not start: {out[-2000:]}")
                time.sleep(0.5)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
