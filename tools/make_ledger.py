"""Generate book/ledger.ipynb, the reproduction ledger page.

The page reads the claim files that the chapters write with ``hvae_lib.ledger.record_claims``
when they are executed (``python -m hvae_lib build`` executes the ledger last), so none of its
numbers is typed by hand.
"""
from __future__ import annotations

import sys
from pathlib import Path

from nbformat.v4 import new_code_cell, new_markdown_cell

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
from nbtools import write_notebook  # noqa: E402
OUT = ROOT / "book" / "ledger.ipynb"

cells = [
    new_markdown_cell(r"""(ledger)=
# Reproduction ledger

Every claim of the two papers that the book tests, with the value this build obtained, the
paper's own value or trend, and a verdict. Each chapter records its claims in a
machine-readable file when it runs (`hvae_lib.ledger.record_claims`); this page reads those
files, so every entry below comes from an executed cell of the same build.

Verdicts: **reproduced** (the paper's value or trend is obtained at this scale),
**consistent** (a check of our own formalisation holds; the paper states no number),
**partially**, **not reproduced** (the trend does not hold at this scale), **not tested**
(out of reach in this profile). Where the papers' texts were not available to us, the
"paper" column says so and quotes the digest we worked from: see
{cite}`ngo2022transitive,xiao2023trading`."""),
]
p = new_code_cell("""# Parameters (papermill injects values here; the defaults come from the environment)
import os

PROFILE = os.environ.get("HVAE_PROFILE", "quick")
DEVICE = os.environ.get("HVAE_DEVICE", "auto")
SEED = int(os.environ.get("HVAE_SEED", "0"))
THREADS = int(os.environ.get("HVAE_THREADS", "1"))""")
p.metadata["tags"] = ["parameters", "remove-cell"]
cells.append(p)
cells.append(new_code_cell("""import pandas as pd
from IPython.display import Markdown, display
from myst_nb import glue

from hvae_lib.book import toc_files
from hvae_lib.ledger import PAPERS, VERDICTS, claims_dir, load_claims

chapters = [f.stem for f in toc_files() if f.suffix == ".ipynb" and f.stem != "ledger"]
claims = load_claims(chapters=chapters)
recorded = sorted({c.chapter for c in claims}, key=chapters.index)
missing = [ch for ch in chapters if ch not in recorded]
print(f"claims read from {claims_dir()}")
print(f"chapters with claims: {', '.join(recorded) or 'none'}")
print(f"chapters without a claims file (no claims, or not executed in this build): {', '.join(missing) or 'none'}")
glue("n_claims", len(claims), display=False)
glue("n_chapters_with_claims", len(recorded), display=False)
for v in VERDICTS:
    glue(f"n_{v.replace(' ', '_')}", sum(c.verdict == v for c in claims), display=False)"""))
cells.append(new_markdown_cell(r"""Claims recorded by this build: {glue:text}`n_claims`
(chapters with claims: {glue:text}`n_chapters_with_claims`); {glue:text}`n_reproduced` reproduced,
{glue:text}`n_consistent` consistent, {glue:text}`n_partially` partially reproduced,
{glue:text}`n_not_reproduced` not reproduced and {glue:text}`n_not_tested` not tested."""))
cells.append(new_code_cell("""if not claims:
    display(Markdown("*No chapter recorded a claim in this build.*"))
for key, title in PAPERS.items():
    rows = [c for c in claims if c.paper == key]
    if not rows:
        continue
    display(Markdown(f"### {title}"))
    table = pd.DataFrame([{
        "chapter": c.chapter.split("_", 1)[0], "id": c.id, "claim": c.claim, "paper": c.paper_value,
        "obtained": c.obtained, "profile": c.profile, "verdict": c.verdict} for c in rows])
    display(table.style.hide(axis="index").set_properties(**{"text-align": "left", "vertical-align": "top"}))"""))
for cell in cells[2:]:
    if cell.cell_type == "code":
        cell.metadata["tags"] = ["remove-input"]  # the page shows the table, not the code
write_notebook(cells, OUT)
