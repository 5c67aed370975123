"""The figure of the HVAE's generative and inference models (``plot_hvae_graphs``).

Inspects the drawn ``FancyArrowPatch`` objects (count and line style per panel) and the node
patches, with a negative control of the inspection helper, and renders the figure to PNG.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
from matplotlib.patches import Circle, FancyArrowPatch  # noqa: E402

from hvae_lib.plots import plot_hvae_graphs  # noqa: E402

EXPECTED = {  # panel -> (solid arrows, dashed arrows, non-circular nodes)
    0: (2, 0, 0),
    1: (0, 3, 0),
    2: (0, 4, 1),
}


def arrow_styles(ax: matplotlib.axes.Axes) -> list[str]:
    """``"solid"`` or ``"dashed"`` for every arrow of ``ax``."""
    out = []
    for p in ax.patches:
        if isinstance(p, FancyArrowPatch):
            ls = p.get_linestyle()
            out.append(
                "solid" if ls in ("-", "solid") else "dashed" if ls in ("--", "dashed") else ls
            )
    return out


def panel_mismatches(ax: matplotlib.axes.Axes, solid: int, dashed: int, square: int) -> list[str]:
    """What differs from the expected arrow counts and number of non-circular nodes."""
    styles = arrow_styles(ax)
    nodes = [p for p in ax.patches if not isinstance(p, FancyArrowPatch)]
    found = {
        "solid": styles.count("solid"),
        "dashed": styles.count("dashed"),
        "other": len(styles) - styles.count("solid") - styles.count("dashed"),
        "square": sum(not isinstance(p, Circle) for p in nodes),
    }
    want = {"solid": solid, "dashed": dashed, "other": 0, "square": square}
    return [f"{k}: {found[k]} != {want[k]}" for k in want if found[k] != want[k]]


@pytest.fixture()
def fig():
    f = plot_hvae_graphs()
    yield f
    plt.close(f)


def test_three_panels_with_the_right_arrows_and_nodes(fig) -> None:
    axes = [ax for ax in fig.axes if ax.patches]
    assert len(axes) == 3
    for i, ax in enumerate(axes):
        assert panel_mismatches(ax, *EXPECTED[i]) == [], (i, ax.get_title())
        circles = [p for p in ax.patches if isinstance(p, Circle)]
        assert len(circles) == 3  # z2, z1, x
        shaded = [c for c in circles if c.get_facecolor()[:3] != (1.0, 1.0, 1.0)]
        assert len(shaded) == 1  # the observed x
    assert [ax.get_title().split(")")[0] for ax in axes] == ["(a", "(b", "(c"]
    assert fig.hvae_edges == {
        "generative": ["z2->z1", "z1->x"],
        "separate": ["x->z2", "x->z1", "z2->z1"],
        "ladder": ["x->d(x)", "d(x)->z2", "d(x)->z1", "z2->z1"],
    }
    for ax, names in zip(axes, fig.hvae_edges.values()):
        assert [p.get_gid() for p in ax.patches if isinstance(p, FancyArrowPatch)] == names


def test_arrows_end_at_the_node_borders(fig) -> None:
    fig.canvas.draw()
    ax = [a for a in fig.axes if a.patches][0]
    circles = {round(c.center[1], 2): c for c in ax.patches if isinstance(c, Circle)}
    arrow = next(
        p for p in ax.patches if isinstance(p, FancyArrowPatch) and p.get_gid() == "z2->z1"
    )
    path = arrow.get_path().vertices  # data coordinates: the shaft, then the head
    start, tip = path[0], path[2]
    for point, node in ((start, circles[2.2]), (tip, circles[1.25])):
        dist = ((point[0] - node.center[0]) ** 2 + (point[1] - node.center[1]) ** 2) ** 0.5
        # at the border (a point or two outside it), neither at the centre nor far away
        assert node.radius * 0.95 < dist < node.radius * 1.4, (point, node.center)


def test_helper_reports_a_panel_drawn_with_the_wrong_style(fig) -> None:
    """Negative control: restyle one inference arrow as solid and drop a node's shape."""
    axes = [ax for ax in fig.axes if ax.patches]
    arrow = next(p for p in axes[1].patches if isinstance(p, FancyArrowPatch))
    arrow.set_linestyle("-")
    assert panel_mismatches(axes[1], *EXPECTED[1]) == ["solid: 1 != 0", "dashed: 2 != 3"]
    assert panel_mismatches(axes[2], 0, 4, 0) == ["square: 1 != 0"]
    assert panel_mismatches(axes[0], 0, 2, 0) == ["solid: 2 != 0", "dashed: 0 != 2"]


def test_draws_into_given_axes_and_renders_to_png(tmp_path) -> None:
    f, axs = plt.subplots(1, 3, figsize=(9, 3.6))
    out = plot_hvae_graphs(axs)
    assert out is f
    path = tmp_path / "graph.png"
    out.savefig(path)
    assert path.stat().st_size > 10_000 and path.read_bytes()[:4] == b"\x89PNG"
    plt.close(f)
    with pytest.raises(ValueError, match="3 axes"):
        plot_hvae_graphs(list(axs)[:2])
