"""Explorers over precomputed results that also work in the static HTML book.

Each explorer is a slider whose position is linked on the JavaScript side (``jslink``) to the
page shown by an ``ipywidgets.Stack`` of precomputed PNG images, so moving the slider works
without a running kernel once the widget state is saved with the notebook. Chapters always
show a static figure beside an explorer.

Used in: book/01_rate_distortion.ipynb.
"""
from __future__ import annotations

from typing import Sequence

import ipywidgets as w


def precomputed_slider(labels: Sequence[str], pngs: Sequence[bytes], *, description: str = "",
                       width: str = "520px") -> w.VBox:
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
        raise ValueError(f"need as many labels as images (got {len(labels)} and {len(pngs)}), at least one")
    if len(set(labels)) != len(labels):
        raise ValueError("labels must be distinct")
    images = [w.Image(value=p, format="png", layout=w.Layout(width=width)) for p in pngs]
    stack = w.Stack(images, selected_index=0)
    slider = w.SelectionSlider(options=list(labels), index=0, description=description,
                               continuous_update=True, layout=w.Layout(width=width))
    w.jslink((slider, "index"), (stack, "selected_index"))
    return w.VBox([slider, stack])
