"""The execution pipeline: parameters are injected, failures are reported, the book builds."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from hvae_lib import book
from hvae_lib.book import (
    REPO_ROOT,
    execute_notebook,
    kernel_env,
    parameters_for,
    pipeline,
    strip_unchecked_outputs,
    toc_files,
)


def make_notebook(path: Path, body: str, params: str | None = None) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    if params is None:
        params = (
            "import os\nPROFILE = os.environ.get('HVAE_PROFILE', 'quick')\nDEVICE = 'auto'\n"
            "SEED = 0\nTHREADS = 1"
        )
    cell = nbformat.v4.new_code_cell(params)
    cell.metadata["tags"] = ["parameters"]
    nb.cells = [nbformat.v4.new_markdown_cell("# Tiny"), cell, nbformat.v4.new_code_cell(body)]
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


def outputs_text(nb) -> str:
    return "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)


def test_parameters_are_injected(tmp_path):
    src = make_notebook(
        tmp_path / "nb.ipynb",
        "print(PROFILE, DEVICE, SEED, THREADS)\n"
        "import os; print('env', os.environ['HVAE_SEED'], os.environ['OMP_NUM_THREADS'])",
    )
    params = parameters_for("paper", "cpu", 7, 2)
    run = execute_notebook(
        src, tmp_path / "out" / "nb.ipynb", params, env=kernel_env(params), progress=False
    )
    assert run.ok, run.error
    text = outputs_text(nbformat.read(tmp_path / "out" / "nb.ipynb", as_version=4))
    assert "paper cpu 7 2" in text and "env 7 2" in text


def test_failing_cell_is_reported(tmp_path):
    src = make_notebook(tmp_path / "bad.ipynb", "raise RuntimeError('boom')")
    run = execute_notebook(
        src, tmp_path / "out.ipynb", parameters_for("quick", "cpu", 0, 1), progress=False
    )
    assert not run.ok and "boom" in run.error


@pytest.mark.parametrize(
    "args, message",
    [
        (["build", "--profile", "bogus"], "valid profiles are: quick, paper"),
        (["build", "--device", "tpu"], "valid devices are"),
        (["run", "missing.ipynb"], "no notebook at"),
    ],
)
def test_cli_rejects_bad_input(args, message, capsys):
    assert book.main(args) == 2
    assert message in capsys.readouterr().err


def test_cli_run_with_parameter_override(tmp_path):
    src = make_notebook(tmp_path / "nb.ipynb", "print('seed', SEED, 'profile', PROFILE)")
    out = tmp_path / "executed.ipynb"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "hvae_lib",
            "run",
            str(src),
            "-p",
            "SEED",
            "11",
            "--device",
            "cpu",
            "-o",
            str(out),
            "--no-progress",
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    assert "seed 11 profile quick" in outputs_text(nbformat.read(out, as_version=4))


def test_toc_lists_existing_files_in_order():
    files = toc_files(REPO_ROOT)
    names = [f.name for f in files]
    assert (
        names[0] == "intro.md" and "01_rate_distortion.ipynb" in names and names[-1] == "status.md"
    )


def test_strip_keeps_only_checked_outputs():
    nb = nbformat.v4.new_notebook()
    keep = nbformat.v4.new_code_cell(
        "# NBVAL_CHECK_OUTPUT\nprint(1)",
        execution_count=3,
        outputs=[nbformat.v4.new_output("stream", text="1\n")],
    )
    drop = nbformat.v4.new_code_cell(
        "print(2)", execution_count=4, outputs=[nbformat.v4.new_output("stream", text="2\n")]
    )
    nb.cells = [keep, drop]
    strip_unchecked_outputs(nb)
    assert keep.outputs and not drop.outputs
    assert keep.execution_count == 3 and drop.execution_count is None


def test_tiny_book_builds_with_status_page(tmp_path):
    """End to end on a one-notebook book: papermill, glue, status page, jupyter-book -W -n."""
    root = tmp_path / "repo"
    (root / "book").mkdir(parents=True)
    shutil.copy2(REPO_ROOT / "_config.yml", root / "_config.yml")
    shutil.copy2(REPO_ROOT / "book" / "references.bib", root / "book" / "references.bib")
    shutil.copy2(REPO_ROOT / "book" / "favicon.svg", root / "book" / "favicon.svg")
    shutil.copytree(REPO_ROOT / "book" / "_static", root / "book" / "_static")
    (root / "_toc.yml").write_text(
        "format: jb-book\nroot: book/intro\nchapters:\n  - file: book/tiny\n  - file: book/status\n"
    )
    (root / "book" / "intro.md").write_text(
        "# Intro\n\nSee {ref}`status` and {cite}`kingma2014autoencoding`.\n\n"
        "```{bibliography}\n```\n"
    )
    (root / "book" / "status.md").write_text("(status)=\n# Status\n")
    nb = make_notebook(
        root / "book" / "tiny.ipynb", "from myst_nb import glue\nglue('answer', 6 * 7)"
    )
    nb_obj = nbformat.read(nb, as_version=4)
    nb_obj.cells.append(nbformat.v4.new_markdown_cell("The answer is {glue:}`answer`."))
    nbformat.write(nb_obj, nb)
    out = tmp_path / "elsewhere"  # --output outside the repository
    code = book.build("quick", "cpu", 0, 1, root=root, output=out, progress=False)
    assert code == 0
    html = (out / "_build" / "html" / "book" / "tiny.html").read_text()
    assert "42" in html
    status = (out / "_build" / "html" / "book" / "status.html").read_text()
    assert "book/tiny.ipynb" in status and "quick" in status and str(tmp_path) not in status
    meta = json.loads((out / "_build" / "status.json").read_text())
    assert meta["runs"][0]["ok"] and meta["parameters"]["THREADS"] == 1
    # a broken cross-reference makes the build fail (-W -n)
    (root / "book" / "intro.md").write_text("# Intro\n\nSee {ref}`no-such-label`.\n")
    assert book.build("quick", "cpu", 0, 1, root=root, progress=False) != 0


def test_offline_assets_config_and_copy(tmp_path):
    """--offline-assets: the staged config points at _assets/, and the files land there."""
    import yaml

    staging = tmp_path / "staging"
    staging.mkdir()
    shutil.copy2(REPO_ROOT / "_config.yml", staging / "_config.yml")
    book.use_offline_assets(staging)
    cfg = yaml.safe_load((staging / "_config.yml").read_text())["sphinx"]["config"]
    assert cfg["mathjax_path"] == "../_assets/mathjax/tex-mml-chtml.js"
    assert list(cfg["nb_ipywidgets_js"]) == [
        "../_assets/require.js",
        "../_assets/jupyter-widgets/html-manager/dist/embed-amd.js",
    ]
    assert cfg["bibtex_reference_style"] == "author_year"  # the rest of the config is kept
    modules = tmp_path / "node_modules"
    for src, _ in book.OFFLINE_ASSETS:
        p = modules / src
        if p.suffix == ".js":
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text("// js")
        else:
            p.mkdir(parents=True)
            (p / "x.js").write_text("// js")
    out = book.copy_offline_assets(modules, tmp_path / "html")
    assert (out / "require.js").is_file()
    assert (out / "mathjax" / "x.js").is_file()
    assert (out / "jupyter-widgets" / "html-manager" / "dist" / "x.js").is_file()
    assert "_static" not in str(out)
    shutil.rmtree(modules / "mathjax")
    with pytest.raises(FileNotFoundError, match="offline asset"):
        book.copy_offline_assets(modules, tmp_path / "html2")


def test_offline_assets_need_lockfile_and_npm(tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError, match="no lockfile"):
        book.install_offline_assets(tmp_path)
    (tmp_path / "package-lock.json").write_text("{}")
    monkeypatch.setattr(pipeline.shutil, "which", lambda name: None)
    with pytest.raises(RuntimeError, match="needs npm"):
        book.install_offline_assets(tmp_path)
    # an installed tree with a matching stamp is reused without npm
    (tmp_path / "node_modules").mkdir()
    (tmp_path / "node_modules" / ".hvae-installed").write_text("{}")
    assert book.install_offline_assets(tmp_path) == tmp_path / "node_modules"


def test_sphinx_ext_removes_duplicate_scripts():
    from sphinx.builders.html._assets import _JavaScript

    from hvae_lib.book.sphinx_ext import dedupe_scripts

    scripts = [
        _JavaScript(None, body="const A = 1"),
        _JavaScript("a.js"),
        _JavaScript("", body="const A = 1"),
        _JavaScript("a.js", defer="defer"),
        _JavaScript("a.js"),
    ]
    ctx = {"script_files": scripts}
    dedupe_scripts(None, "p", "page.html", ctx, None)
    assert ctx["script_files"] is scripts and len(scripts) == 3
    assert [s.filename for s in scripts] == [None, "a.js", "a.js"]


def test_field_lists_keep_names_and_descriptions_apart():
    """The API page's docstring hook: ``name : description`` becomes a name and a description;
    prose and ``Used in`` after the fields close the section. Without the hook napoleon would
    read the description as a type (the negative control: the raw lines still have the colon)."""
    from hvae_lib.book.sphinx_ext import split_field_descriptions

    raw = [
        "Train it.",
        "",
        "Parameters",
        "----------",
        "model : the module; moved to",
        "    ``device``.",
        "a, b : two things",
        "x",
        "    described below its name",
        "",
        "The guard: skips NaN steps.",
        "",
        "Used in: :ref:`ch-x`",
    ]
    out = split_field_descriptions(raw)
    assert out[4:7] == ["model", "    the module; moved to", "    ``device``."]
    assert out[7:9] == ["a, b", "    two things"]
    assert out[9:11] == ["x", "    described below its name"]
    guard = out.index("The guard: skips NaN steps.")
    assert out[guard - 2 : guard] == ["", ""]  # the section is closed before the paragraph
    assert split_field_descriptions(["Returns", "-------", "model : the module"]) == [
        "Returns",
        "-------",
        "model : the module",
    ]  # other sections are left alone
    assert "model : the module; moved to" in raw


def test_reexported_names_resolve_to_their_module():
    from hvae_lib.book.sphinx_ext import canonical_name

    assert canonical_name("hvae_lib.train.train") == "hvae_lib.train.loop.train"
    assert canonical_name("hvae_lib.models.BetaVAE") == "hvae_lib.models.vae.BetaVAE"
    assert canonical_name("hvae_lib.train") == "hvae_lib.train"
    assert canonical_name("hvae_lib.train.no_such_name") is None


def test_injected_parameters_cell_is_removed_from_the_page(tmp_path):
    """papermill's injected cell gets ``remove-cell``; before the call it has no such tag (the
    control: the rendered page would show it)."""
    src = make_notebook(tmp_path / "nb.ipynb", "print(SEED)")
    out = tmp_path / "out.ipynb"
    params = parameters_for("quick", "cpu", 5, 1)
    assert execute_notebook(src, out, params, progress=False).ok

    def injected(nb):
        return [c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", [])]

    before = injected(nbformat.read(out, as_version=4))
    assert len(before) == 1 and "remove-cell" not in before[0].metadata["tags"]
    book.hide_injected_parameters(out)
    after = injected(nbformat.read(out, as_version=4))
    assert len(after) == 1 and "remove-cell" in after[0].metadata["tags"]
