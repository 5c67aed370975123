"""The key and the store of executed notebooks (hvae_lib.book.reuse)."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest

from hvae_lib.book import reuse

VERSIONS = {"python": "3.11", "torch": "2.13.0"}
HARDWARE = {"cpu": "some CPU (2 cores)", "gpu": "none", "os": "Linux"}
PARAMS = {"PROFILE": "quick", "DEVICE": "cpu", "SEED": 0, "THREADS": 1, "SMOKE": False}


def notebook(path: Path, source: str = "print(1)", output: str | None = None) -> Path:
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell(source)
    if output is not None:
        cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=output)]
        cell.execution_count = 7
    nb.cells = [nbformat.v4.new_markdown_cell("# T"), cell]
    nbformat.write(nb, path)
    return path


def key(path: Path, params=PARAMS, env=None, needs=(), versions=VERSIONS, hardware=HARDWARE):
    return reuse.notebook_key(
        path, params, env or {}, list(needs), versions=versions, hardware=hardware
    )


def test_the_key_follows_what_decides_the_outputs(tmp_path):
    """Same inputs, same key, whatever the outputs; each ingredient changes it; where the
    cache and the claims live does not."""
    base = key(notebook(tmp_path / "a.ipynb"))
    assert len(base) == 32
    assert key(notebook(tmp_path / "b.ipynb", output="1\n")) == base  # outputs do not count
    assert key(notebook(tmp_path / "c.ipynb", "print(2)")) != base
    assert key(tmp_path / "a.ipynb", params={**PARAMS, "SEED": 1}) != base
    assert key(tmp_path / "a.ipynb", env={"HVAE_SVHN_DIR": "/nowhere"}) != base
    assert key(tmp_path / "a.ipynb", env={"HVAE_CACHE_DIR": "/x", "HVAE_CLAIMS_DIR": "/y"}) == base
    assert key(tmp_path / "a.ipynb", env={"HVAE_BROWSER_HTML": "/z", "PATH": "/bin"}) == base
    assert key(tmp_path / "a.ipynb", needs=["0" * 32]) != base
    assert key(tmp_path / "a.ipynb", versions={**VERSIONS, "torch": "2.14.1"}) != base
    assert key(tmp_path / "a.ipynb", hardware={**HARDWARE, "gpu": "H200"}) != base
    nb = nbformat.read(tmp_path / "a.ipynb", as_version=4)
    nb.cells[1].metadata["tags"] = ["remove-cell"]  # how the page renders it
    nbformat.write(nb, tmp_path / "d.ipynb")
    assert key(tmp_path / "d.ipynb") != base


def test_a_path_valued_variable_is_fingerprinted(tmp_path):
    folder = tmp_path / "svhn"
    folder.mkdir()
    (folder / "train.mat").write_bytes(b"12345")
    env = {"HVAE_SVHN_DIR": str(folder)}
    nb = notebook(tmp_path / "a.ipynb")
    before = key(nb, env=env)
    assert reuse.path_fingerprint(str(folder))[0][:2] == ["train.mat", 5]
    (folder / "test.mat").write_bytes(b"1")
    assert key(nb, env=env) != before
    assert reuse.path_fingerprint("") is None
    assert reuse.path_fingerprint(str(tmp_path / "missing")) is None


def test_side_outputs_are_the_files_named_after_the_notebook(tmp_path):
    claims = tmp_path / "claims"
    (claims / "rows").mkdir(parents=True)
    for name in ["03_x.json", "rows/rows_03_x.json", "03_x_2.json", "rows/rows_03_x_2.json"]:
        (claims / name).write_text("{}")
    (claims / "03_x.txt").write_text("")
    got = [p.relative_to(claims).as_posix() for p in reuse.side_outputs(claims, "03_x")]
    assert got == ["03_x.json", "rows/rows_03_x.json"]
    assert reuse.side_outputs(tmp_path / "none", "03_x") == []


def test_save_lookup_restore_round_trip_and_pruning(tmp_path):
    store, claims = tmp_path / "store", tmp_path / "claims"
    claims.mkdir()
    (claims / "nb.json").write_text('{"claims": 1}')
    executed = notebook(tmp_path / "nb.ipynb", output="hello\n")
    assert reuse.lookup(store, "nb", "k" * 32) is None
    folder = reuse.save(store, "nb", "k" * 32, executed, claims, {"seconds": 2.5, "ok": True})
    entry = reuse.lookup(store, "nb", "k" * 32)
    assert entry is not None and entry.folder == folder and entry.run["seconds"] == 2.5
    dst_claims = tmp_path / "fresh" / "claims"
    written = reuse.restore(entry, tmp_path / "fresh" / "nb.ipynb", dst_claims)
    assert written == [dst_claims / "nb.json"]
    assert (dst_claims / "nb.json").read_text() == '{"claims": 1}'
    shown = nbformat.read(tmp_path / "fresh" / "nb.ipynb", as_version=4)
    assert shown.cells[1].outputs[0]["text"] == "hello\n"
    # only the newest KEEP_PER_NOTEBOOK runs of a notebook stay
    for i in range(reuse.KEEP_PER_NOTEBOOK + 2):
        reuse.save(store, "nb", f"{i:032d}", executed, claims, {"ok": True})
    assert len(list(store.glob("nb-*"))) == reuse.KEEP_PER_NOTEBOOK
    assert reuse.lookup(store, "nb", f"{reuse.KEEP_PER_NOTEBOOK + 1:032d}") is not None


@pytest.mark.parametrize("damage", ["run.json", "notebook.ipynb", "corrupt", "other key"])
def test_an_incomplete_or_corrupt_entry_is_not_reused(tmp_path, damage):
    store, claims = tmp_path / "store", tmp_path / "claims"
    claims.mkdir()
    folder = reuse.save(store, "nb", "k" * 32, notebook(tmp_path / "nb.ipynb"), claims, {})
    if damage in ("run.json", "notebook.ipynb"):
        (folder / damage).unlink()
    elif damage == "corrupt":
        (folder / "run.json").write_text("{not json")
    else:
        meta = json.loads((folder / "run.json").read_text())
        (folder / "run.json").write_text(json.dumps({**meta, "key": "j" * 32}))
    assert reuse.lookup(store, "nb", "k" * 32) is None
