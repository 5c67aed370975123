r"""Train a whole grid of rate weights :math:`(\beta_1,\beta_2)` as one batched model.

All ``G`` members of a grid share the architecture but not their parameters. Their weights are
stacked along a new leading dimension and one member's forward pass is vectorised over it with
``torch.func.functional_call`` + ``torch.func.vmap``, so a grid step costs a few batched
matrix products instead of ``G`` small ones.

Why this equals independent training (our derivation):

* every member sees the **same minibatch** (the same seeded sampler as
  :func:`hvae_lib.train.train`) and the **same reparameterisation noise** (drawn once per step
  from torch's global RNG seeded with ``seed + 1``, exactly as ``train`` does; members share it);
* the loss is the **sum over members** of each member's batch-mean objective
  :math:`\frac1B\sum_b D_b + \sum_l \beta_{g,l} R_{b,l}`; members share no parameters, so the
  gradient for member ``g`` is exactly the gradient of its own loss;
* gradient clipping and the non-finite guard act **per member** (a global norm would couple
  members), and Adam is element-wise with a per-member step count, so a skipped member keeps
  its weights and moments untouched — as ``train`` skips a whole update.

So, from the same initialisation (by default the one :func:`hvae_lib.train.fit` builds:
``torch.manual_seed(seed)`` then the model constructor), member ``g`` ends with the weights an
independent ``train(model, data, config, hierarchical_loss(betas[g]))`` run gives, up to
floating-point rounding of batched kernels. ``tests/test_ensemble.py`` checks this.

Results are per member (``state_dict`` + :class:`~hvae_lib.train.TrainResult`), and
:func:`fit_grid` stores each member in a :class:`~hvae_lib.train.ResultCache` under the key
:func:`fit` would use for the same run, so grids and single runs share one cache.

Used in: :ref:`ch-rate-splitting`
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.func import functional_call, vmap
from tqdm.auto import tqdm

from ..config import build_seeded, resolve_device
from ..models.hierarchical import HierarchicalVAE, HierarchicalVAEConfig
from ..objectives.hierarchical import check_betas, kl_warmup
from .loop import (
    BatchSampler,
    ResultCache,
    TensorBatches,
    TrainConfig,
    TrainResult,
    fingerprint,
    noise_generator,
    source_digest,
)

__all__ = [
    "GridResult",
    "log_spaced_betas",
    "beta_grid",
    "member_key",
    "chunk_checkpoint_name",
    "train_grid",
    "fit_grid",
]

#: ``on_chunk(indices, state_dicts, results)`` of :func:`train_grid`
ChunkCallback = Callable[[list[int], list[dict[str, torch.Tensor]], list[TrainResult]], None]

_ADAM_BETAS = (0.9, 0.999)
_ADAM_EPS = 1e-8


def log_spaced_betas(k: int, low: float = 0.1, high: float = 10.0) -> np.ndarray:
    r"""``k`` log-spaced values :math:`10^{\mathrm{linspace}(\log_{10} low,\,\log_{10} high,\,k)}`.

    ``k = 21`` in ``[0.1, 10]`` is the authors' grid side (timxzz/HIT at commit ``10b83e9``,
    ``plot_eval.py``); 5 and 7 are the quick and full CPU profiles.

    Used in: :ref:`ch-rate-splitting`
    """
    if int(k) < 1 or not (0 < low <= high) or not math.isfinite(high):
        raise ValueError(f"need k >= 1 and 0 < low <= high, got k={k}, low={low}, high={high}")
    return np.logspace(math.log10(low), math.log10(high), int(k))


def beta_grid(
    beta1_values: Sequence[float], beta2_values: Sequence[float]
) -> list[tuple[float, float]]:
    r"""All pairs ``(beta1, beta2)``, ``beta1`` varying slowest.

    Index ``i * len(beta2_values) + j`` holds ``(beta1_values[i], beta2_values[j])``, so
    ``np.reshape(values, (len(beta1_values), len(beta2_values)))`` gives a matrix with
    :math:`\beta_1` in rows and :math:`\beta_2` in columns (the authors flip the rows to put
    large :math:`\beta_1` on top).

    Used in: :ref:`ch-rate-splitting`
    """
    pairs = [(float(b1), float(b2)) for b1 in beta1_values for b2 in beta2_values]
    for p in pairs:
        check_betas(p, 2)
    return pairs


def member_key(
    config: HierarchicalVAEConfig, betas: Sequence[float], warmup_steps: int = 0
) -> dict[str, Any]:
    """What determines one grid member besides the training config and data.

    Pass it as ``key=`` to :func:`hvae_lib.train.fit` (with ``hierarchical_loss(betas,
    warmup_steps=...)``) to share cache entries with :func:`fit_grid`.

    Used in: :ref:`ch-rate-splitting`
    """
    return {
        "model": "HierarchicalVAE",
        "config": config.to_dict(),
        "betas": [float(b) for b in check_betas(betas, config.num_layers)],
        "warmup_steps": int(warmup_steps),
    }


@dataclass
class GridResult:
    """A trained grid: per-member weights and training results.

    Attributes
    ----------
    config : the shared :class:`HierarchicalVAEConfig`.
    train_config : the shared :class:`~hvae_lib.train.TrainConfig`.
    betas : ``G`` tuples ``(beta1, ..., betaL)``.
    state_dicts : ``G`` CPU ``state_dict`` s (load with :meth:`model`).
    results : ``G`` :class:`~hvae_lib.train.TrainResult` (``seconds`` is the grid's wall time
        divided by ``G``; ``from_cache`` marks members loaded from a cache).
    seconds : wall time of the training call (0 when everything came from the cache).
    warmup_steps : the KL warm-up used.

    Used in: :ref:`ch-rate-splitting`
    """

    config: HierarchicalVAEConfig
    train_config: TrainConfig
    betas: list[tuple[float, ...]]
    state_dicts: list[dict[str, torch.Tensor]]
    results: list[TrainResult]
    seconds: float = 0.0
    warmup_steps: int = 0

    def __len__(self) -> int:
        return len(self.betas)

    def index(self, betas: Sequence[float]) -> int:
        """Position of the member trained with ``betas`` (matched to 1e-9 relative)."""
        target = tuple(float(b) for b in betas)
        for i, b in enumerate(self.betas):
            if len(b) == len(target) and all(
                math.isclose(u, v, rel_tol=1e-9) for u, v in zip(b, target)
            ):
                return i
        raise KeyError(f"no member with betas {target}")

    def model(self, index: int, device: str | torch.device = "cpu") -> HierarchicalVAE:
        """Member ``index`` as a :class:`HierarchicalVAE` in eval mode on ``device``."""
        torch_device = resolve_device(device) if isinstance(device, str) else device
        m = HierarchicalVAE(self.config)
        m.load_state_dict(self.state_dicts[index])
        return m.to(torch_device).eval()

    def models(self, device: str | torch.device = "cpu") -> list[HierarchicalVAE]:
        """All members (see :meth:`model`)."""
        return [self.model(i, device) for i in range(len(self))]

    def last(self, name: str) -> np.ndarray:
        """``[G]`` the last logged running mean of ``name`` (e.g. ``"rate_2"``) per member."""
        return np.array([r.last(name) for r in self.results])


def _stack_init(
    config: HierarchicalVAEConfig,
    g: int,
    seed: int,
    init: Mapping[str, torch.Tensor] | Sequence[Mapping[str, torch.Tensor]] | None,
) -> tuple[HierarchicalVAE, list[dict[str, torch.Tensor]]]:
    template = build_seeded(
        lambda: HierarchicalVAE(config), seed
    )  # the initialisation fit() would build
    if init is None:
        states = [template.state_dict()] * g
    elif isinstance(init, Mapping):
        states = [dict(init)] * g
    else:
        states = [dict(s) for s in init]
        if len(states) != g:
            raise ValueError(f"init has {len(states)} state dicts for {g} members")
    for s in states:  # validate every initial state against the architecture
        HierarchicalVAE(config).load_state_dict(s)
    return template, states


class _MaskedAdam:
    """Adam (torch defaults: β=(0.9, 0.999), ε=1e-8, no weight decay) on a ``[G, P]`` tensor,
    with per-member step counts and a per-member skip mask. Same update as ``torch.optim.Adam``:
    :math:`m \\leftarrow \\mathrm{lerp}(m, g, 1-\\beta_1)`, :math:`v \\leftarrow \\beta_2 v +
    (1-\\beta_2) g^2`, :math:`\\theta \\leftarrow \\theta - \\frac{lr}{1-\\beta_1^t}\\,
    m / (\\sqrt{v}/\\sqrt{1-\\beta_2^t} + \\varepsilon)`."""

    def __init__(self, flat: torch.Tensor, lr: float) -> None:
        self.lr = float(lr)
        self.m = torch.zeros_like(flat)
        self.v = torch.zeros_like(flat)
        self.t = torch.zeros(flat.shape[0], dtype=torch.float64, device=flat.device)
        # While no member has skipped a step, all members share one step count and the whole
        # [G, P] update is torch's fused Adam kernel: one pass over memory (measured on one CPU
        # thread for a 7x7 prototype grid, 49 x 35,184 parameters: about 7 ms -> 1.1 ms).
        self.uniform = hasattr(torch, "_fused_adam_")
        self.step_t = torch.zeros((), dtype=torch.float32, device=flat.device)

    def state(self) -> dict[str, Any]:
        """The optimiser's state (CPU tensors and a flag) for a checkpoint."""
        return {
            "m": self.m.cpu(),
            "v": self.v.cpu(),
            "t": self.t.cpu(),
            "step_t": self.step_t.cpu(),
            "uniform": bool(self.uniform),
        }

    def load_state(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state` (in place, on the optimiser's device)."""
        for name in ("m", "v", "t", "step_t"):
            getattr(self, name).copy_(state[name])
        self.uniform = bool(state["uniform"]) and hasattr(torch, "_fused_adam_")

    @torch.no_grad()
    def step(self, flat: torch.Tensor, grad: torch.Tensor, ok: torch.Tensor, all_ok: bool) -> None:
        b1, b2 = _ADAM_BETAS
        self.t += ok.to(torch.float64)
        self.uniform = self.uniform and all_ok
        if self.uniform:
            self.step_t += 1
            torch._fused_adam_(
                [flat],
                [grad],
                [self.m],
                [self.v],
                [],
                [self.step_t],
                lr=self.lr,
                beta1=b1,
                beta2=b2,
                weight_decay=0.0,
                eps=_ADAM_EPS,
                amsgrad=False,
                maximize=False,
            )
            return
        t = self.t.clamp(min=1.0)
        step_size = (self.lr / (1.0 - b1**t)).to(flat.dtype).unsqueeze(1)
        bc2_sqrt = torch.sqrt(1.0 - b2**t).to(flat.dtype).unsqueeze(1)
        if all_ok:  # the common case, in place: no [G, P] temporaries but one
            self.m.lerp_(grad, 1.0 - b1)
            self.v.mul_(b2).addcmul_(grad, grad, value=1.0 - b2)
            update = self.v.sqrt().div_(bc2_sqrt).add_(_ADAM_EPS)  # denominator
            torch.div(self.m, update, out=update).mul_(step_size)
            flat.sub_(update)
            return
        okc = ok.unsqueeze(1)
        grad = torch.where(okc, grad, torch.zeros_like(grad))
        m_new = self.m.lerp(grad, 1.0 - b1)
        v_new = (self.v * b2).addcmul_(grad, grad, value=1.0 - b2)
        denom = (v_new.sqrt() / bc2_sqrt).add_(_ADAM_EPS)
        p_new = flat - step_size * (m_new / denom)
        self.m.copy_(torch.where(okc, m_new, self.m))
        self.v.copy_(torch.where(okc, v_new, self.v))
        flat.copy_(torch.where(okc, p_new, flat))


def _save_atomic(path: Path, payload: dict[str, Any]) -> None:
    """``torch.save`` to a temporary name, then rename: an interrupted save leaves the previous
    checkpoint intact."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f"{path.suffix}.{os.getpid()}.tmp")  # one per writer
    torch.save(payload, tmp)
    os.replace(tmp, path)


def _load_chunk_checkpoint(
    path: Path, device: torch.device, betas: list[tuple[float, ...]], tc: TrainConfig
) -> dict[str, Any]:
    """Read a chunk checkpoint (``weights_only``) and check that it belongs to this chunk.

    Raises
    ------
    ValueError
        The file is unreadable, or was written for other betas or another training config
        (the message names the file, to be deleted).
    """
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - re-raised with context
        raise ValueError(
            f"{path.resolve()} is not a readable grid checkpoint ({exc}); delete it to retrain "
            "this chunk from the start"
        ) from exc
    if ckpt.get("betas") != [list(b) for b in betas] or ckpt.get("train_config") != tc.to_json():
        raise ValueError(
            f"{path.resolve()} holds a checkpoint of another grid chunk (other betas or "
            "training config); delete it"
        )
    return ckpt


def chunk_checkpoint_name(
    config: HierarchicalVAEConfig,
    betas: Sequence[Sequence[float]],
    train_config: TrainConfig,
    warmup_steps: int,
    data_digest: str,
    init: Any = None,
) -> str:
    """File name of the in-chunk checkpoint of one grid chunk: a fingerprint of everything
    that determines the chunk's training (architecture, betas, training config, warm-up,
    data, initialisation).

    Used in: :ref:`ch-rate-splitting`
    """
    init_parts: list[Any] = []
    if init is not None:  # state dicts are fingerprinted tensor by tensor (a repr truncates)
        for state in [init] if isinstance(init, Mapping) else list(init):
            for name in sorted(state):
                init_parts += [name, state[name]]
    key = fingerprint(
        "grid-chunk",
        config,
        [list(map(float, b)) for b in betas],
        train_config,
        int(warmup_steps),
        data_digest,
        *init_parts,
    )
    return f"grid-chunk-{key[:32]}.pt"


def _train_members(
    config: HierarchicalVAEConfig,
    betas: list[tuple[float, ...]],
    data: torch.Tensor,
    tc: TrainConfig,
    *,
    warmup_steps: int,
    init: Any,
    device: torch.device,
    progress: bool,
    desc: str,
    checkpoint_path: Path | None = None,
) -> tuple[list[dict[str, torch.Tensor]], list[TrainResult], float]:
    g_count = len(betas)
    template, states = _stack_init(config, g_count, tc.seed, init)
    names = [n for n, _ in template.named_parameters()]
    dtype = states[0][
        names[0]
    ].dtype  # the initial weights' dtype (float32 unless init says otherwise)
    template = template.to(device=device, dtype=dtype).train()
    shapes = [tuple(p.shape) for _, p in template.named_parameters()]
    sizes = [math.prod(s) for s in shapes]
    offsets = np.cumsum([0, *sizes]).tolist()
    flat = torch.stack(
        [torch.cat([s[n].detach().reshape(-1).to(device, dtype) for n in names]) for s in states]
    )
    # One leaf per parameter, each a view into ``flat`` (shared storage): the optimiser updates
    # ``flat`` in place, and autograd returns per-parameter gradients. (Slicing a single leaf
    # ``flat`` inside the graph instead makes the backward pass of every slice fill a zero
    # tensor of the whole [G, P] size: measured, that was 44 % of a 7×7 grid step.)
    leaves = [
        flat[:, offsets[i] : offsets[i + 1]].view(g_count, *shapes[i]).requires_grad_(True)
        for i in range(len(names))
    ]
    params = dict(zip(names, leaves))
    buffers = {
        n: torch.stack([s[n].to(device, b.dtype) for s in states])
        for n, b in template.named_buffers()
    }
    beta_t = torch.tensor(betas, dtype=dtype, device=device)  # [G, L]
    opt = _MaskedAdam(flat.detach(), tc.lr)
    max_norm = float(tc.max_grad_norm) if tc.max_grad_norm is not None else float("inf")
    L = config.num_layers

    def member(
        params: dict[str, torch.Tensor],
        bufs: dict[str, torch.Tensor],
        beta: torch.Tensor,
        x: torch.Tensor,
        noise: list[torch.Tensor],
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        out = functional_call(template, (params, bufs), (x,), {"noise": noise})
        return out.loss(beta), out.distortion.mean(), out.rates.mean(0)

    batched = vmap(member, in_dims=(0, 0, 0, None, None))
    sampler = BatchSampler(int(data.shape[0]), tc.batch_size, tc.seed)
    generator = noise_generator(device, tc.seed)  # the reparameterisation-noise stream of train()
    log_names = ["loss", "distortion", "rate", *(f"rate_{l + 1}" for l in range(L))]
    sums = torch.zeros(len(log_names), g_count, dtype=torch.float64, device=device)
    counts = torch.zeros(g_count, dtype=torch.float64, device=device)
    skipped = torch.zeros(g_count, dtype=torch.int64, device=device)
    histories: list[dict[str, list[float]]] = [{"step": []} for _ in range(g_count)]
    start, elapsed = 0, 0.0
    if checkpoint_path is not None and checkpoint_path.is_file():
        ckpt = _load_chunk_checkpoint(checkpoint_path, device, betas, tc)
        with torch.no_grad():
            flat.copy_(ckpt["flat"].to(device, dtype))
            for n, b in buffers.items():
                b.copy_(ckpt["buffers"][n].to(device, b.dtype))
        opt.load_state(ckpt["optimizer"])
        sampler.load(ckpt["sampler"])
        generator.set_state(ckpt["generator"].cpu())
        sums.copy_(ckpt["sums"].to(device))
        counts.copy_(ckpt["counts"].to(device))
        skipped.copy_(ckpt["skipped"].to(device))
        histories = [{k: list(v) for k, v in h.items()} for h in ckpt["histories"]]
        start, elapsed = int(ckpt["step"]), float(ckpt["seconds"])
    t0 = time.perf_counter()

    def checkpoint(done: int) -> None:
        assert checkpoint_path is not None
        _save_atomic(
            checkpoint_path,
            {
                "betas": [list(b) for b in betas],
                "train_config": tc.to_json(),
                "step": done,
                "seconds": elapsed + time.perf_counter() - t0,
                "flat": flat.detach().cpu(),
                "buffers": {n: b.detach().cpu() for n, b in buffers.items()},
                "optimizer": opt.state(),
                "sampler": sampler.state(),
                "generator": generator.get_state(),
                "sums": sums.cpu(),
                "counts": counts.cpu(),
                "skipped": skipped.cpu(),
                "histories": histories,
            },
        )

    bar = tqdm(
        total=tc.steps,
        initial=start,
        desc=desc,
        disable=not progress,
        leave=False,
        mininterval=1.0,
    )
    for step in range(start, tc.steps):
        batch = data[sampler.next()]
        batch = batch if batch.device == device else batch.to(device, non_blocking=True)
        if not batch.is_floating_point():
            batch = batch.float()
        noise = template.draw_noise(batch.shape[0], generator, device=device, dtype=batch.dtype)
        w = kl_warmup(step, warmup_steps)
        beta_eff = beta_t * w if w != 1.0 else beta_t
        loss, dist, rates = batched(params, buffers, beta_eff, batch, noise)
        grads = torch.autograd.grad(loss.sum(), leaves)
        with torch.no_grad():
            # per-member global-norm clipping, as torch.nn.utils.clip_grad_norm_ does per model
            norms = torch.stack(
                [torch.linalg.vector_norm(gr.reshape(g_count, -1), 2, dim=1) for gr in grads]
            )
            grad = torch.cat([gr.reshape(g_count, -1) for gr in grads], dim=1)
            norm = torch.linalg.vector_norm(norms, 2, dim=0)
            coef = torch.clamp(max_norm / (norm + 1e-6), max=1.0)
            grad.mul_(coef.unsqueeze(1))
            ok = torch.isfinite(loss) & torch.isfinite(norm)
            all_ok = bool(ok.all())
            opt.step(flat, grad, ok, all_ok)
            vals = torch.cat([torch.stack([loss, dist, rates.sum(-1)]), rates.T]).to(torch.float64)
            okf = ok.to(torch.float64)
            sums += torch.where(ok, vals, torch.zeros_like(vals))
            counts += okf
            skipped += (~ok).to(torch.int64)
        bar.update(1)
        done = step + 1
        if done % tc.log_every == 0 or done == tc.steps:
            s_cpu, c_cpu = sums.cpu().numpy(), counts.cpu().numpy()
            for gi in range(g_count):
                if c_cpu[gi] > 0:
                    histories[gi]["step"].append(float(done))
                    for k, name in enumerate(log_names):
                        histories[gi].setdefault(name, []).append(float(s_cpu[k, gi] / c_cpu[gi]))
            if c_cpu.sum() > 0:
                bar.set_postfix(loss=f"{float(s_cpu[0].sum() / c_cpu.sum()):.2f}", refresh=False)
            sums.zero_()
            counts.zero_()
        if checkpoint_path is not None and (done % tc.checkpoint_every == 0 or done == tc.steps):
            checkpoint(done)
    bar.close()
    seconds = elapsed + time.perf_counter() - t0
    flat_cpu = flat.detach().cpu()
    buf_cpu = {n: b.detach().cpu() for n, b in buffers.items()}
    order = list(template.state_dict().keys())
    state_dicts: list[dict[str, torch.Tensor]] = []
    for gi in range(g_count):
        member_state: dict[str, torch.Tensor] = {}
        for i, n in enumerate(names):
            member_state[n] = flat_cpu[gi, offsets[i] : offsets[i + 1]].reshape(shapes[i]).clone()
        for n, b in buf_cpu.items():
            member_state[n] = b[gi].clone()
        state_dicts.append({k: member_state[k] for k in order})
    skipped_cpu = skipped.cpu().tolist()
    results = [
        TrainResult(
            history=histories[gi],
            steps_done=tc.steps,
            skipped_steps=int(skipped_cpu[gi]),
            seconds=seconds / g_count,
        )
        for gi in range(g_count)
    ]
    return state_dicts, results, seconds


def train_grid(
    config: HierarchicalVAEConfig,
    betas: Sequence[Sequence[float]],
    data: torch.Tensor,
    train_config: TrainConfig,
    *,
    warmup_steps: int = 0,
    init: Mapping[str, torch.Tensor] | Sequence[Mapping[str, torch.Tensor]] | None = None,
    chunk_size: int | None = None,
    device: str | torch.device = "cpu",
    progress: bool = True,
    desc: str = "beta grid",
    checkpoint_dir: str | os.PathLike | None = None,
    data_digest: str | None = None,
    on_chunk: ChunkCallback | None = None,
) -> GridResult:
    r"""Train one :class:`HierarchicalVAE` per entry of ``betas``, all at once.

    Member ``g`` minimises :math:`\frac1B\sum_b\big[D_b + w(s)\sum_l \beta_{g,l} R_{b,l}\big]`
    with Adam (``train_config.lr``), on the minibatches and noise an independent
    :func:`hvae_lib.train.train` run with ``train_config`` would use, with per-member gradient
    clipping at ``train_config.max_grad_norm`` and a per-member non-finite guard (a member
    whose loss or gradient norm is NaN/inf skips that update; counted in its
    ``skipped_steps``).

    Parameters
    ----------
    config : the shared architecture.
    betas : ``G`` sequences ``(beta1, ..., betaL)`` (e.g. from :func:`beta_grid`).
    data : ``[N, C, H, W]`` training images (integer data are cast to float per minibatch).
    train_config : steps, batch size, lr, clipping, seed (init, minibatches, noise), log_every.
    warmup_steps : linear KL warm-up (:func:`~hvae_lib.objectives.kl_warmup`).
    init : ``None`` — every member starts from the model ``torch.manual_seed(seed)`` +
        ``HierarchicalVAE(config)`` builds (what :func:`~hvae_lib.train.fit` does); a state
        dict — every member starts from it; ``G`` state dicts — one per member.
    chunk_size : train at most this many members at a time (memory); results are the same.
    device : where to train (``"auto"``, ``"cpu"``, ``"cuda"``...); data stay where they are
        and minibatches are moved.
    progress : ``tqdm.auto`` progress bar.
    checkpoint_dir : if given, each chunk writes its whole training state (weights, Adam
        moments and step counts, minibatch order, noise generator, pending logs) to
        ``checkpoint_dir / chunk_checkpoint_name(...)`` every ``train_config.checkpoint_every``
        steps and when it finishes; a call that finds such a file continues from it, so an
        interrupted grid resumes to the result of an uninterrupted one (a finished chunk is
        not retrained).
    data_digest : :func:`~hvae_lib.train.source_digest` of the data, if already computed
        (names the checkpoints; computed once here otherwise).
    on_chunk : called as ``on_chunk(indices, state_dicts, results)`` after each chunk, with the
        positions of its members in ``betas``; once it returns, the chunk's checkpoint is
        deleted (the callback has persisted the chunk, e.g. :func:`fit_grid` caches it).

    Returns
    -------
    GridResult
        Per-member CPU state dicts and :class:`~hvae_lib.train.TrainResult` s (histories of
        ``loss``, ``distortion``, ``rate``, ``rate_1 ... rate_L``).

    Raises
    ------
    ValueError
        β ≤ 0, the wrong number of β's per member, an empty grid or a bad ``init``.

    Used in: :ref:`ch-rate-splitting`
    """
    grid = [check_betas(b, config.num_layers) for b in betas]
    if not grid:
        raise ValueError("betas is empty: need at least one member")
    if int(warmup_steps) < 0:
        raise ValueError(f"warmup_steps must be non-negative, got {warmup_steps}")
    if data.dim() != 4 or tuple(data.shape[1:]) != tuple(int(s) for s in config.input_shape):
        raise ValueError(
            f"data must be [N, {', '.join(str(int(s)) for s in config.input_shape)}], "
            f"got {tuple(data.shape)}"
        )
    dev = resolve_device(device) if isinstance(device, str) else torch.device(device)
    if init is not None and not isinstance(init, Mapping) and len(init) != len(grid):
        raise ValueError(f"init has {len(init)} state dicts for {len(grid)} members")
    size = len(grid) if chunk_size is None else int(chunk_size)
    if size <= 0:
        raise ValueError(f"chunk_size must be positive, got {chunk_size}")
    folder = Path(checkpoint_dir) if checkpoint_dir is not None else None
    if folder is not None and data_digest is None:
        data_digest = source_digest(
            TensorBatches(data, train_config.batch_size, train_config.seed)
        )  # once per grid
    states: list[dict[str, torch.Tensor]] = []
    results: list[TrainResult] = []
    total = 0.0
    for start in range(0, len(grid), size):
        part = grid[start : start + size]
        part_init = (
            init if init is None or isinstance(init, Mapping) else list(init)[start : start + size]
        )
        label = (
            desc if size >= len(grid) else f"{desc} [{start + 1}-{start + len(part)}/{len(grid)}]"
        )
        path = None
        if folder is not None:
            assert data_digest is not None
            path = folder / chunk_checkpoint_name(
                config, part, train_config, int(warmup_steps), data_digest, part_init
            )
        s, r, sec = _train_members(
            config,
            part,
            data,
            train_config,
            warmup_steps=int(warmup_steps),
            init=part_init,
            device=dev,
            progress=progress,
            desc=label,
            checkpoint_path=path,
        )
        if on_chunk is not None:
            on_chunk(list(range(start, start + len(part))), s, r)
            if path is not None:
                path.unlink(missing_ok=True)
        states += s
        results += r
        total += sec
    return GridResult(
        config=config,
        train_config=train_config,
        betas=grid,
        state_dicts=states,
        results=results,
        seconds=total,
        warmup_steps=int(warmup_steps),
    )


def fit_grid(
    config: HierarchicalVAEConfig,
    betas: Sequence[Sequence[float]],
    data: torch.Tensor,
    train_config: TrainConfig,
    *,
    warmup_steps: int = 0,
    cache: ResultCache | None = None,
    chunk_size: int | None = None,
    device: str | torch.device = "cpu",
    progress: bool = True,
    desc: str = "beta grid",
) -> GridResult:
    """:func:`train_grid` with a per-member :class:`~hvae_lib.train.ResultCache`; resumable.

    Each member is looked up under ``cache.key(member_key(config, betas, warmup_steps),
    train_config, source_digest(TensorBatches(data, ...)))`` — the key :func:`hvae_lib.train.fit`
    uses with ``key=member_key(...)`` on the same data, whose fingerprint is computed once for
    the whole grid — and only missing members are trained (as one batched model,
    from the default initialisation, ``chunk_size`` members at a time). Each chunk is stored
    as soon as it finishes, and while it trains it checkpoints every
    ``train_config.checkpoint_every`` steps under ``cache.root / "grid-checkpoints"``, so a
    re-run after an interruption skips the finished chunks, continues the interrupted one from
    its last checkpoint and ends with the members an uninterrupted run gives
    (``tests/test_ensemble.py`` checks it). ``cache=None`` makes one from the environment
    (``HVAE_CACHE=0`` disables it; ``HVAE_CACHE=write`` stores but neither loads nor resumes).

    Used in: :ref:`ch-rate-splitting`
    """
    grid = [check_betas(b, config.num_layers) for b in betas]
    cache = cache if cache is not None else ResultCache()
    digest = source_digest(TensorBatches(data, train_config.batch_size, train_config.seed))
    keys = [cache.key(member_key(config, b, warmup_steps), train_config, digest) for b in grid]
    states: list[dict[str, torch.Tensor] | None] = [None] * len(grid)
    results: list[TrainResult | None] = [None] * len(grid)
    for i, k in enumerate(keys):
        probe = HierarchicalVAE(config)
        hit = cache.load(k, probe)
        if hit is not None:
            states[i], results[i] = probe.state_dict(), hit
    missing = [i for i in range(len(grid)) if states[i] is None]
    seconds = 0.0
    if missing:

        def store(positions: list[int], chunk_states: list, chunk_results: list) -> None:
            for j, s, r in zip(positions, chunk_states, chunk_results):
                i = missing[j]
                states[i], results[i] = s, r
                m = HierarchicalVAE(config)
                m.load_state_dict(s)
                cache.store(keys[i], m, r)

        resumable = cache.enabled and not cache.write_only
        trained = train_grid(
            config,
            [grid[i] for i in missing],
            data,
            train_config,
            warmup_steps=warmup_steps,
            chunk_size=chunk_size,
            device=device,
            progress=progress,
            desc=desc,
            checkpoint_dir=cache.root / "grid-checkpoints" if resumable else None,
            data_digest=digest,
            on_chunk=store,
        )
        seconds = trained.seconds
    return GridResult(
        config=config,
        train_config=train_config,
        betas=grid,
        state_dicts=[s for s in states if s is not None],
        results=[r for r in results if r is not None],
        seconds=seconds,
        warmup_steps=int(warmup_steps),
    )
