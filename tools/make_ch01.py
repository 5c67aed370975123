"""Generate book/01_rate_distortion.ipynb (chapter 1) from this script.

Run ``.venv/bin/python tools/make_ch01.py`` after editing, then
``.venv/bin/python -m hvae_lib refresh book/01_rate_distortion.ipynb`` to store the reference
outputs of the checked cells.
"""
import sys
from pathlib import Path

from nbformat.v4 import new_code_cell as code
from nbformat.v4 import new_markdown_cell as md

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
from nbtools import add_alt_text, write_notebook  # noqa: E402
OUT = ROOT / "book" / "01_rate_distortion.ipynb"

cells = []
cells.append(md(r"""(ch-rate-distortion)=
# The VAE as a rate–distortion machine

A variational autoencoder {cite}`kingma2014autoencoding,rezende2014stochastic` is usually
introduced as a way to maximise a lower bound on the log-likelihood. In this chapter we read
the same objective as a *trade-off between two quantities measured in nats*: how many nats the
encoder transmits about each image (the **rate**) and how many nats the decoder still needs to
describe the image given that message (the **distortion**) {cite}`alemi2018fixing`. The β-VAE
{cite}`higgins2017betavae` moves along this trade-off with a single knob β, and everything the
later chapters build (rate splitting across layers, and raising information *through* a
label-driven prior) starts from this picture.

**What you will do:** derive ELBO = −(D + R), train one β-VAE per β on procedural dSprites
{cite}`matthey2017dsprites`, draw the rate–distortion curve, look at reconstructions and
samples, and count the latent dimensions that stay active as β grows."""))

p = code("""# Parameters (papermill injects values here; the defaults come from the environment)
import os

PROFILE = os.environ.get("HVAE_PROFILE", "quick")  # "quick" (CPU, minutes) or "paper" (GPU)
DEVICE = os.environ.get("HVAE_DEVICE", "auto")     # "auto", "cpu", "cuda" or "cuda:N"
SEED = int(os.environ.get("HVAE_SEED", "0"))
THREADS = int(os.environ.get("HVAE_THREADS", "0"))  # torch threads, 0 for all cores""")
p.metadata["tags"] = ["parameters"]
cells.append(p)

cells.append(code("""import numpy as np
import pandas as pd
import matplotlib.pyplot as plt
import torch
from myst_nb import glue

from hvae_lib.config import setup_notebook
from hvae_lib.data import load_dataset
from hvae_lib.analysis import (active_units, beta_sweep, check_rate_distortion_monotone, empirical_entropy,
                               evaluate_vae,
                               monte_carlo_rate, rate_distortion_settings, train_test_split)
from hvae_lib.plots import image_grid, png_bytes, rate_distortion_plot, save_figure, use_book_style, beta_colors
from hvae_lib.widgets import precomputed_slider

ctx = setup_notebook(PROFILE, DEVICE, SEED, THREADS)
use_book_style()
settings = rate_distortion_settings(ctx.profile)
print(settings.to_json(indent=1))"""))

cells.append(md(r"""## Two terms of one bound

For data $x$, a prior $p(z)=\mathcal N(0, I)$, a decoder $p_\theta(x\mid z)$ and an encoder
$q_\phi(z\mid x)$, the evidence decomposes exactly as

$$
\log p_\theta(x) \;=\; \underbrace{\mathbb E_{q_\phi(z\mid x)}\big[\log p_\theta(x\mid z)\big]
 - \mathrm{KL}\big(q_\phi(z\mid x)\,\|\,p(z)\big)}_{\mathrm{ELBO}(x)}
 \;+\; \mathrm{KL}\big(q_\phi(z\mid x)\,\|\,p_\theta(z\mid x)\big),
$$

and the last term is non-negative, so $\mathrm{ELBO}(x)\le\log p_\theta(x)$. Name the two
terms of the ELBO:

$$
D(x) = \mathbb E_{q_\phi(z\mid x)}\big[-\log p_\theta(x\mid z)\big] \quad\text{(distortion)},\qquad
R(x) = \mathrm{KL}\big(q_\phi(z\mid x)\,\|\,p(z)\big) \quad\text{(rate)},
$$

so that $\mathrm{ELBO}(x) = -\big(D(x) + R(x)\big)$. The rate is the expected number of nats
needed to encode a sample of $q_\phi(z\mid x)$ with a code built for $p(z)$; averaged over the
data it is an upper bound on the mutual information the encoder creates
{cite}`hoffman2016elbo,alemi2018fixing`:

$$
\mathbb E_{p(x)}\big[R(x)\big] \;=\; I_q(X;Z) + \mathrm{KL}\big(q(z)\,\|\,p(z)\big) \;\ge\; I_q(X;Z),
\qquad q(z) = \mathbb E_{p(x)} q_\phi(z\mid x).
$$

The β-VAE {cite}`higgins2017betavae` minimises $\mathbb E_{p(x)}[D(x) + \beta R(x)]$. At
$\beta = 1$ this is the negative ELBO; $\beta > 1$ buys a smaller rate with a larger
distortion, $\beta < 1$ the opposite. Each β picks one point of the model's rate–distortion
curve. A last inequality fixes where the curve can lie: for a data distribution with entropy
$H[p_\text{data}]$ (for a finite training set of binary images: the entropy of its empirical
distribution, $\ln N$ when all $N$ images are distinct), the cross-entropy
$\mathbb E[-\log p_\theta(x)]$ is at least $H$, hence $D + R \ge H[p_\text{data}]$ on the
training set.

`hvae_lib.models.BetaVAE` returns $D(x)$ and $R(x)$ per example as separate tensors
(`hvae_lib.objectives` holds the formulas), so both can be logged and plotted, not only the loss."""))

cells.append(md(r"""## Data: procedural dSprites

dSprites {cite}`matthey2017dsprites` are binary images of a square, an ellipse or a heart at
every combination of scale, orientation and position. `hvae_lib.data` renders them
deterministically (no download); the quick profile uses *dSprites-lite*, a 32×32 resampling
of the same factor ranges, and the paper profile the full 64×64 grid of 737,280 images."""))

cells.append(code("""# NBVAL_CHECK_OUTPUT
dataset = load_dataset(settings.dataset)
images = torch.from_numpy(dataset.render_all())  # uint8 {0, 1}, [N, 1, R, R]
train_idx, test_idx = train_test_split(len(images), settings.test_fraction, seed=ctx.seed)
x_train, x_test = images[train_idx], images[test_idx]
h_data, n_distinct = empirical_entropy(x_train)  # entropy of the empirical training distribution
print(f"{len(images)} images of {tuple(images.shape[1:])}, factors {dict(zip(dataset.factor_names, dataset.factor_sizes))}")
print(f"train {len(x_train)}, test {len(x_test)}, distinct training images {n_distinct}")
glue("n_images", len(images), display=False)
glue("n_train", len(x_train), display=False)
glue("n_test", len(x_test), display=False)
glue("n_distinct", n_distinct, display=False)
glue("resolution", int(images.shape[-1]), display=False)"""))

cells.append(code("""fig = image_grid([images[np.random.default_rng(ctx.seed).choice(len(images), 12, replace=False)].float()],
                 title="Random procedural dSprites")
save_figure(fig, "ch01_data")
plt.show()"""))

cells.append(md(r"""## A β sweep

We train one β-VAE per β with the same architecture, initialisation, minibatch order and
step budget (the settings printed above), and evaluate distortion and rate on the held-out
images. Trained weights go to a result cache keyed by the configuration, so rebuilding the
book does not retrain (the tests run with the cache off)."""))

cells.append(code("""sweep = beta_sweep(settings.sweep, x_train, x_test, device=ctx.device)
table = pd.DataFrame(sweep.table()).set_index("beta")
table"""))

cells.append(md(r"""Before reading the table, check what the theory promises. The analytic rate must agree with
a Monte-Carlo estimate of $\mathbb E_{q}[\log q(z\mid x) - \log p(z)]$; the rate must fall and the distortion rise as β grows (each
model minimises its own trade-off); and $D + R \ge H[p_\text{data}]$ on the training images."""))

cells.append(code("""# NBVAL_CHECK_OUTPUT
train_evals = [evaluate_vae(m, x_train, seed=ctx.seed) for m in sweep.models]
i1 = sweep.betas.index(1.0)
mc_rate, mc_se = monte_carlo_rate(sweep.models[i1], x_test, num_samples=64, seed=ctx.seed)
checks = {
    "analytic rate = Monte-Carlo E_q[log q(z|x) - log p(z)] (beta=1, 3 s.e.)":
        abs(mc_rate - sweep.evaluations[i1].mean_rate) < 3 * mc_se + 1e-3,
    "rate falls and distortion rises with beta": check_rate_distortion_monotone(
        table["rate"], table["distortion"], table.index),
    "D + R >= H[p_data] on the training set": all(e.mean_distortion + e.mean_rate >= h_data for e in train_evals),
    "no skipped (non-finite) updates": all(r.skipped_steps == 0 for r in sweep.results),
}
for name, ok in checks.items():
    print(f"{name}: {ok}")
assert all(checks.values()), checks"""))

cells.append(code("""glue("h_data", h_data, display=False)
glue("mc_rate_beta1", mc_rate, display=False)
glue("mc_se_beta1", mc_se, display=False)
print(f"beta=1: analytic rate {sweep.evaluations[i1].mean_rate:.3f} nats, Monte-Carlo {mc_rate:.3f} +- {mc_se:.3f}")"""))

cells.append(code("""fig, ax = plt.subplots(figsize=(5.6, 4.2))
rate_distortion_plot(table.index, table["rate"], table["distortion"], ax=ax,
                     title=f"β-VAE on {settings.dataset} (held-out images)")
save_figure(fig, "ch01_rate_distortion")
plt.show()

beta1 = table.loc[1.0]
glue("rate_beta1", float(beta1["rate"]), display=False)
glue("dist_beta1", float(beta1["distortion"]), display=False)
glue("elbo_beta1", float(beta1["elbo"]), display=False)
glue("beta_min", float(table.index.min()), display=False)
glue("beta_max", float(table.index.max()), display=False)
glue("rate_beta_min", float(table["rate"].iloc[0]), display=False)
glue("rate_beta_max", float(table["rate"].iloc[-1]), display=False)
glue("dist_beta_min", float(table["distortion"].iloc[0]), display=False)
glue("dist_beta_max", float(table["distortion"].iloc[-1]), display=False)
glue("best_elbo_beta", float(table["elbo"].idxmax()), display=False)"""))

cells.append(md(r"""At β = 1 the model transmits {glue:text}`rate_beta1:.1f` nats per image and leaves a
distortion of {glue:text}`dist_beta1:.1f` nats, an ELBO of {glue:text}`elbo_beta1:.1f` nats on
held-out images. Sweeping β from {glue:text}`beta_min:g` to {glue:text}`beta_max:g` moves the
rate from {glue:text}`rate_beta_min:.1f` down to {glue:text}`rate_beta_max:.1f` nats while the
distortion grows from {glue:text}`dist_beta_min:.1f` to {glue:text}`dist_beta_max:.1f` nats.
The dotted lines have slope −1: along them $D + R$, and so the ELBO, is constant. The best
held-out ELBO in this sweep is reached at β = {glue:text}`best_elbo_beta:g`: only β = 1 trains
the ELBO itself, but a finite budget and a finite test set make the maximum approximate.

The bound $D + R \ge H[p_\text{data}]$ ({glue:text}`h_data:.1f` nats here: the
{glue:text}`n_train` training images contain only {glue:text}`n_distinct` distinct ones,
because the square's 90° and the ellipse's 180° symmetries make some orientations coincide)
holds but is far from tight: the models do not memorise the training images, they generalise
across them."""))

cells.append(md(r"""## What the rate buys: reconstructions and samples

Low β: the sharpest reconstructions, but nothing forces the aggregate posterior $q(z)$ to
match the prior, so samples from $p(z)$ may land where no training image was encoded. High β:
the encoder sends few nats and the reconstructions blur towards an average sprite. In the
quick profile (small MLP, 32×32 images, a short budget) even the low-β models keep mostly
position and size and draw every shape as a blob: a few nats more, the paper profile's
convolutional model and a longer budget are what it takes to tell a heart from a square."""))

cells.append(code("""show = [b for b in (0.5, 1.0, 4.0, 16.0) if b in sweep.betas] or sweep.betas[:4]
x_show = x_test[:10].float()
gen = torch.Generator(device=ctx.device)
rows, labels = [x_show], ["data"]
for b in show:
    model = sweep.models[sweep.betas.index(b)]
    with torch.no_grad():
        mu, _ = model.encode(x_show.to(ctx.device))
        rows.append(model.mean_image(mu).cpu())
    labels.append(f"recon β={b:g}")
fig = image_grid(rows, row_labels=labels, title="Posterior-mean reconstructions of held-out images")
save_figure(fig, "ch01_reconstructions")
plt.show()

rows, labels = [], []
for b in show:
    model = sweep.models[sweep.betas.index(b)]
    gen.manual_seed(ctx.seed)
    rows.append(model.sample(10, generator=gen).cpu())
    labels.append(f"β={b:g}")
fig = image_grid(rows, row_labels=labels, title="Samples: mean images of z ~ N(0, I)")
save_figure(fig, "ch01_samples")
plt.show()"""))

cells.append(md(r"""## Active units

A latent dimension $d$ is *active* {cite}`burda2016importance` when its posterior mean varies
across the data, $\mathrm{Var}_{x}\big(\mathbb E_{q(z\mid x)}[z_d]\big) > 0.01$; an inactive
dimension has collapsed to the prior and carries no information. The rate decomposes over
dimensions too: $R(x) = \sum_d \mathrm{KL}\big(q(z_d\mid x)\,\|\,\mathcal N(0,1)\big)$ for a
diagonal posterior, so we can see where the nats go."""))

cells.append(code("""au = [int(active_units(e.mu).sum()) for e in sweep.evaluations]
kl_dims = np.stack([np.sort(e.rate_per_dim.mean(0))[::-1] for e in sweep.evaluations])  # [n_beta, D]

fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.8))
ax1.plot(sweep.betas, au, marker="o")
ax1.set_xscale("log", base=2)
ax1.set_xlabel("β")
ax1.set_ylabel("active units (of %d)" % kl_dims.shape[1])
ax1.set_ylim(0, kl_dims.shape[1] + 0.5)
ax1.set_title("Active units vs β")
for row, b, c in zip(kl_dims, sweep.betas, beta_colors(len(sweep.betas))):
    ax2.plot(np.arange(1, len(row) + 1), row, marker=".", color=c, label=f"β={b:g}")
ax2.set_xlabel("latent dimension (sorted by its rate)")
ax2.set_ylabel("mean KL of the dimension [nats]")
ax2.axhline(0.1, ls=":", color="0.4", lw=0.8, label="0.1 nats")
ax2.set_title("Where the rate goes")
ax2.legend(fontsize=7, ncol=2)
fig.tight_layout()
save_figure(fig, "ch01_active_units")
plt.show()
informative = (kl_dims > 0.1).sum(1)  # dimensions that carry more than 0.1 nats on average
glue("au_beta_min", au[0], display=False)
glue("au_beta_max", au[-1], display=False)
glue("inf_beta_min", int(informative[0]), display=False)
glue("inf_beta_max", int(informative[-1]), display=False)
glue("top_dim_share_beta_max", float(kl_dims[-1, 0] / kl_dims[-1].sum()), display=False)
assert informative[-1] < informative[0], "the rate should concentrate on fewer dimensions at the largest beta"
assert all(np.isclose(k.sum(), e.mean_rate) for k, e in zip(kl_dims, sweep.evaluations))"""))

cells.append(md(r"""With β = {glue:text}`beta_min:g`, {glue:text}`inf_beta_min` latent dimensions carry more
than 0.1 nats each; at β = {glue:text}`beta_max:g` only {glue:text}`inf_beta_max` do, and the
single most informative dimension carries {glue:text}`top_dim_share_beta_max:.0%` of the rate.
The variance criterion of active units ({glue:text}`au_beta_min` at β = {glue:text}`beta_min:g`,
{glue:text}`au_beta_max` at β = {glue:text}`beta_max:g`) is cruder: its threshold of 0.01
counts dimensions whose means wiggle a little even when they carry almost no nats, so read it
together with the per-dimension rates on the right. As the price
of a nat rises, the encoder concentrates its budget on fewer dimensions and switches the rest
off; this is the pressure that the β-VAE uses to encourage disentangled codes, and it is also
why a single β cannot give a model both a small rate and a sharp, informative code."""))

cells.append(md(r"""## Explore the sweep

Move the slider to see, for each β, reconstructions of the same held-out images (top) and
samples from the prior (bottom). The views are precomputed, so the slider also works in the
static HTML page; the static figure below shows all of them at once."""))

cells.append(code("""views, view_rows, view_labels = [], [], []
for b, model in zip(sweep.betas, sweep.models):
    with torch.no_grad():
        mu, _ = model.encode(x_show.to(ctx.device))
        recon = model.mean_image(mu).cpu()
        gen.manual_seed(ctx.seed)
        samples = model.sample(10, generator=gen).cpu()
    r, d = table.loc[b, "rate"], table.loc[b, "distortion"]
    views.append(png_bytes(image_grid([x_show, recon, samples], row_labels=["data", "recon", "samples"],
                                      title=f"β={b:g}: R={r:.1f} nats, D={d:.1f} nats", size=0.7)))
    view_rows.append(recon)
    view_labels.append(f"β={b:g}")
fig = image_grid([x_show, *view_rows], row_labels=["data", *view_labels],
                 title="Reconstructions for every β of the sweep (static view)", size=0.7)
save_figure(fig, "ch01_sweep_static")
plt.show()
precomputed_slider(view_labels, views, description="β")"""))

cells.append(md(r"""## Summary

- The negative ELBO is a sum of two per-example quantities in nats: distortion
  $D = \mathbb E_q[-\log p(x\mid z)]$ and rate $R = \mathrm{KL}(q(z\mid x)\,\|\,p(z))$.
- The average rate upper-bounds the information $I_q(X;Z)$ the encoder creates; β prices it.
- Raising β lowers the rate, raises the distortion, blurs reconstructions and switches latent
  dimensions off; all models of the sweep lie above the line $D + R = H$.
- One β sets one number for the whole code. The next chapters split the rate over the layers
  of a hierarchy, each with its own β {cite}`xiao2023trading`, and raise the information of a
  code *through* a learned prior instead of paying for it in rate {cite}`ngo2022transitive`.

## Exercises

1. Replace the Bernoulli likelihood by a Gaussian one with a fixed σ
   (`VAEConfig(likelihood="gaussian", sigma=...)`). Show that changing σ acts like changing β,
   and find the β that matches σ = 0.5.
2. Train with `latent_dim=2` and plot the posterior means of the test images coloured by
   `posX`. Which factors survive at β = 8?
3. Estimate $I_q(X;Z)$ for the β = 1 model with the minibatch estimator of the aggregate
   posterior and compare it with the rate: how large is $\mathrm{KL}(q(z)\,\|\,p(z))$?
4. Prove that $\mathbb E_{p(x)}[R(x)] = I_q(X;Z) + \mathrm{KL}(q(z)\,\|\,p(z))$."""))

add_alt_text(cells, {
    "ch01_data": "Twelve random procedural dSprites images: white squares, ellipses and hearts of "
                 "different sizes, orientations and positions on a black background.",
    "ch01_rate_distortion": "Rate-distortion curve of the beta sweep: distortion in nats against rate in "
                            "nats, one labelled point per beta; larger beta moves left (less rate) and up "
                            "(more distortion).",
    "ch01_reconstructions": "Grid of held-out images (top row) and their posterior-mean reconstructions, "
                            "one row per beta; reconstructions blur as beta grows.",
    "ch01_samples": "Grid of generated samples, one row per beta: mean images decoded from z drawn from "
                    "the standard normal prior.",
    "ch01_active_units": "Left: number of active latent units against beta, falling as beta grows. Right: "
                         "per-dimension rate sorted in decreasing order, one line per beta.",
    "ch01_sweep_static": "Static overview of the sweep: held-out images in the top row, then one row of "
                         "reconstructions per beta.",
})
write_notebook(cells, OUT)
