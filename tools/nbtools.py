"""Shared helpers of the chapter generators (tools/make_ch*.py)."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

import nbformat

_SAVE = re.compile(r'save_figure\(\s*fig\s*,\s*"([^"]+)"')


def add_alt_text(cells: Iterable[Any], alt: Mapping[str, str]) -> None:
    """Give every code cell that saves a figure ``save_figure(fig, "NAME")`` the alt text
    ``alt[NAME]`` (cell metadata ``mystnb.image.alt``, which myst-nb puts on the ``<img>``).

    Raises ``KeyError`` for a saved figure without alt text, so none is forgotten.
    """
    for cell in cells:
        if cell.cell_type != "code":
            continue
        names = _SAVE.findall(cell.source)
        if not names:
            continue
        missing = [n for n in names if n not in alt]
        if missing:
            raise KeyError(f"no alt text for figure(s) {missing}")
        text = " ".join(alt[n].strip() for n in names)
        cell.metadata.setdefault("mystnb", {}).setdefault("image", {})["alt"] = text


def notebook_builder() -> tuple[list[Any], Callable[[str], None], Callable[..., None]]:
    """``(cells, md, code)``: ``md(text)`` and ``code(text, tags=None)`` append a markdown or a
    code cell (text stripped of surrounding newlines; ``tags`` go to the cell metadata)."""
    cells: list[Any] = []

    def md(text: str) -> None:
        cells.append(nbformat.v4.new_markdown_cell(text.strip("\n")))

    def code(text: str, tags: list[str] | None = None) -> None:
        cell = nbformat.v4.new_code_cell(text.strip("\n"))
        if tags:
            cell.metadata["tags"] = tags
        cells.append(cell)

    return cells, md, code


def write_notebook(cells: list[Any], out: Path, *, id_prefix: str | None = None) -> None:
    """Validate and write ``cells`` as a Python 3 notebook at ``out``.

    ``id_prefix`` gives the cells stable ids (``<prefix>-000``, ...), so that regenerating the
    notebook yields a readable diff; without it nbformat's random ids are kept.
    """
    nb = nbformat.v4.new_notebook()
    nb.cells = cells
    if id_prefix is not None:
        for i, cell in enumerate(nb.cells):
            cell.id = f"{id_prefix}-{i:03d}"
    nb.metadata["kernelspec"] = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}
    nb.metadata["language_info"] = {"name": "python"}
    nbformat.validate(nb)
    nbformat.write(nb, out)
    root = Path(__file__).resolve().parent.parent
    print(f"wrote {Path(out).resolve().relative_to(root)} ({len(cells)} cells)")
