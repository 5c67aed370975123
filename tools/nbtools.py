"""Shared helpers of the chapter generators (tools/make_ch*.py)."""
from __future__ import annotations

import re
from typing import Any, Iterable, Mapping

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
