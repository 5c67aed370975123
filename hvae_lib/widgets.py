"""Explorers over precomputed results that also work in the static HTML book.

Each explorer is a slider whose position is linked on the JavaScript side (``jslink``) to the
page shown by an ``ipywidgets.Stack`` of precomputed PNG images, so moving the slider works
without a running kernel once the widget state is saved with the notebook. Chapters always
show a static figure beside an explorer.

Used in: :ref:`ch-rate-distortion`, :ref:`ch-transitive`.
"""

from __future__ import annotations

from collections.abc import Sequence

import ipywidgets as w


def precomputed_slider(
    labels: Sequence[str], pngs: Sequence[bytes], *, description: str = "", width: str = "520px"
) -> w.VBox:
    """A ``SelectionSlider`` over ``labels`` showing the matching PNG from ``pngs``.

    Parameters
    ----------
    labels : one label per view (e.g. ``"β=1"``).
    pngs : one PNG image (bytes) per view, e.g. from :func:`hvae_lib.plots.png_bytes`.
    description : the slider's description.

    Returns a ``VBox(slider, stack)``; the slider's ``index`` is ``jslink``-ed to the stack's
    ``selected_index``, so the link lives in the browser.
    """
    if len(labels) != len(pngs) or not labels:
        raise ValueError(
            f"need as many labels as images (got {len(labels)} and {len(pngs)}), at least one"
        )
    if len(set(labels)) != len(labels):
        raise ValueError("labels must be distinct")
    images = [w.Image(value=p, format="png", layout=w.Layout(width=width)) for p in pngs]
    stack = w.Stack(images, selected_index=0)
    slider = w.SelectionSlider(
        options=list(labels),
        index=0,
        description=description,
        continuous_update=True,
        layout=w.Layout(width=width),
    )
    w.jslink((slider, "index"), (stack, "selected_index"))
    return w.VBox([slider, stack])


def precomputed_grid_sliders(
    row_labels: Sequence[str],
    col_labels: Sequence[str],
    pngs: Sequence[Sequence[bytes]],
    *,
    row_description: str = "",
    col_description: str = "",
    width: str = "620px",
) -> w.VBox:
    """Two ``SelectionSlider`` s over a grid of precomputed PNGs, linked in the browser.

    ``pngs[i][j]`` is the view for ``row_labels[i]`` and ``col_labels[j]``. The views sit in
    nested ``Stack`` s: the outer stack (one page per row) follows the first slider and every
    inner stack (one page per column) follows the second, all through ``jslink``, so both
    sliders work without a kernel in the static HTML book, like :func:`precomputed_slider`.

    Returns ``VBox(row slider, column slider, outer stack)``.

    Used in: :ref:`ch-transitive`.
    """
    num_rows, num_cols = len(row_labels), len(col_labels)
    if num_rows == 0 or num_cols == 0:
        raise ValueError("need at least one row label and one column label")
    if len(pngs) != num_rows or any(len(row) != num_cols for row in pngs):
        raise ValueError(
            f"pngs must be a {num_rows} x {num_cols} grid (rows x columns) of PNG images"
        )
    for labels, what in ((row_labels, "row"), (col_labels, "column")):
        if len(set(labels)) != len(labels):
            raise ValueError(f"{what} labels must be distinct")
    row_slider = w.SelectionSlider(
        options=list(row_labels),
        index=0,
        description=row_description,
        continuous_update=True,
        layout=w.Layout(width=width),
    )
    col_slider = w.SelectionSlider(
        options=list(col_labels),
        index=0,
        description=col_description,
        continuous_update=True,
        layout=w.Layout(width=width),
    )
    inner = []
    for row in pngs:
        stack = w.Stack(
            [w.Image(value=p, format="png", layout=w.Layout(width=width)) for p in row],
            selected_index=0,
        )
        w.jslink((col_slider, "index"), (stack, "selected_index"))
        inner.append(stack)
    outer = w.Stack(inner, selected_index=0)
    w.jslink((row_slider, "index"), (outer, "selected_index"))
    return w.VBox([row_slider, col_slider, outer])
