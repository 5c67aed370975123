r"""A β-grid on disk, trained by one process or sharded over many with ``torch.distributed``.

A **grid directory** holds one trained grid of :class:`~hvae_lib.models.HierarchicalVAE` s:

* ``grid.json`` — what was trained: the architecture, the training config, the warm-up, the
  data's fingerprint, and the members in order, ``k = 0 .. G-1``, each with its
  :math:`(\beta_1, \dots, \beta_L)` (for an :math:`S\times S` grid from
  :func:`~hvae_lib.train.beta_grid`, row-major: ``k = i S + j`` holds
  ``(values[i], values[j])``), and, once trained, its :class:`~hvae_lib.train.TrainResult`;
* ``member_<k>.pt`` — member ``k``'s ``state_dict`` (load with ``weights_only=True``);
* ``member_<k>.json`` — its :class:`~hvae_lib.train.TrainResult`, written with the weights;
* ``checkpoints/`` — in-chunk checkpoints while a chunk trains (see
  :func:`~hvae_lib.train.train_grid`); empty when the grid is complete.

:func:`train_grid_to_dir` trains the members of one **shard** — rank ``r`` of ``P`` takes the
contiguous block :func:`shard_range` ``(G, P, r)`` — as a batched ensemble
(:func:`~hvae_lib.train.train_grid`), writing each chunk's members as soon as the chunk
finishes. Under ``torchrun`` every rank runs it on its own shard (gloo on the CPU, NCCL on
GPUs, one GPU per rank); the ranks only synchronise at the end, after which rank 0 writes the
complete ``grid.json``. A member depends only on its own β, the shared initialisation, the
minibatch order and the noise stream (all seeded by the training config), never on which
other members share its batch, so a sharded grid equals the one-process grid up to the
rounding of batched kernels of another size (``tests/test_distributed.py``: ≤ 1e-4 in every
parameter with 2 gloo ranks). A re-run in the same directory skips the members already
written and resumes an interrupted chunk from its checkpoint.

:func:`load_grid_dir` reads a complete directory back as a :class:`~hvae_lib.train.GridResult`
(chapter 3 can use it instead of training).

Used in: :ref:`ch-rate-splitting` (and ``python -m hvae_lib grid``)
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from .. import __version__
from ..config import resolve_device
from ..models.hierarchical import HierarchicalVAE, HierarchicalVAEConfig
from ..objectives.hierarchical import check_betas
from .ensemble import GridResult, train_grid
from .loop import TensorBatches, TrainConfig, TrainResult, source_digest

__all__ = [
    "GRID_FORMAT",
    "DistributedContext",
    "shard_range",
    "grid_plan",
    "train_grid_to_dir",
    "load_grid_dir",
    "init_distributed",
    "finish_distributed",
]

#: version of the grid-directory layout written to ``grid.json``
GRID_FORMAT = 1


@dataclass(frozen=True)
class DistributedContext:
    """Where this process sits in a (possibly one-process) run.

    Attributes
    ----------
    rank, world_size : this process's rank and the number of processes.
    local_rank : the rank on this node (picks the GPU).
    device : the device this rank trains on.
    initialised : whether this call created a ``torch.distributed`` process group (then
        :func:`finish_distributed` destroys it).
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")
    initialised: bool = False

    def barrier(self) -> None:
        """Wait for every rank (a no-op in one process)."""
        if self.world_size > 1:
            torch.distributed.barrier()

    def gather(self, obj: Any) -> list[Any]:
        """Every rank's ``obj``, in rank order (``[obj]`` in one process)."""
        if self.world_size == 1:
            return [obj]
        out: list[Any] = [None] * self.world_size
        torch.distributed.all_gather_object(out, obj)
        return out


def init_distributed(device: str = "auto") -> DistributedContext:
    """Join the ``torchrun`` process group if there is one.

    Reads ``WORLD_SIZE``, ``RANK`` and ``LOCAL_RANK`` (set by ``torchrun``; absent: one
    process). With more than one process it initialises ``torch.distributed`` with NCCL when
    the ranks train on CUDA and gloo otherwise; rank ``r`` on a node uses GPU ``LOCAL_RANK``.

    Parameters
    ----------
    device : ``"auto"`` (CUDA if available, else the CPU), ``"cpu"`` or ``"cuda"``; a fixed
        ``"cuda:N"`` is refused with several ranks (each rank picks its own GPU).

    Raises
    ------
    ValueError
        Bad environment values or a device that cannot be split across ranks.
    """
    try:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        rank = int(os.environ.get("RANK", "0"))
        local = int(os.environ.get("LOCAL_RANK", str(rank)))
    except ValueError as exc:
        raise ValueError(f"WORLD_SIZE, RANK and LOCAL_RANK must be integers: {exc}") from exc
    if world < 1 or not 0 <= rank < world:
        raise ValueError(f"need WORLD_SIZE >= 1 and 0 <= RANK < WORLD_SIZE, got {world}, {rank}")
    dev = resolve_device(device)
    if world > 1 and dev.type == "cuda":
        if device not in ("auto", "cuda"):
            raise ValueError(
                f"--device {device} under torchrun: use auto or cuda (rank r uses GPU LOCAL_RANK)"
            )
        dev = torch.device("cuda", local)
        torch.cuda.set_device(dev)
    initialised = False
    if world > 1 and not torch.distributed.is_initialized():
        backend = "nccl" if dev.type == "cuda" else "gloo"
        torch.distributed.init_process_group(backend=backend)
        initialised = True
    return DistributedContext(rank, world, local, dev, initialised)


def finish_distributed(ctx: DistributedContext) -> None:
    """Destroy the process group :func:`init_distributed` created (no-op otherwise)."""
    if ctx.initialised and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


def shard_range(num_members: int, world_size: int, rank: int) -> range:
    """The members rank ``rank`` of ``world_size`` trains: a contiguous block, the first
    ``num_members % world_size`` ranks taking one extra.

    >>> [list(shard_range(9, 2, r)) for r in range(2)]
    [[0, 1, 2, 3, 4], [5, 6, 7, 8]]
    """
    if num_members < 0 or world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(
            f"need num_members >= 0, world_size >= 1, 0 <= rank < world_size; got "
            f"{num_members}, {world_size}, {rank}"
        )
    base, extra = divmod(num_members, world_size)
    start = rank * base + min(rank, extra)
    return range(start, start + base + (1 if rank < extra else 0))


def grid_plan(
    config: HierarchicalVAEConfig,
    betas: Sequence[Sequence[float]],
    train_config: TrainConfig,
    data_digest: str,
    *,
    warmup_steps: int = 0,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The ``grid.json`` of a grid before training: what determines every member.

    ``extra`` adds descriptive entries (profile, side, data description) that are stored but
    not compared when a directory is reused.
    """
    members = [
        {"index": k, "betas": [float(b) for b in check_betas(bs, config.num_layers)]}
        for k, bs in enumerate(betas)
    ]
    plan = {
        "format": GRID_FORMAT,
        "hvae_lib": __version__,
        "model": config.to_dict(),
        "train": train_config.to_dict(),
        "warmup_steps": int(warmup_steps),
        "data_digest": data_digest,
        "order": "member k holds betas[k]; an S x S grid is row-major: k = i * S + j",
        "members": members,
        **(extra or {}),
    }
    return json.loads(json.dumps(plan))  # as read back from the file (tuples become lists)


_COMPARED = ("format", "model", "train", "warmup_steps", "data_digest")


def _same_grid(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return all(a.get(k) == b.get(k) for k in _COMPARED) and [m["betas"] for m in a["members"]] == [
        m["betas"] for m in b["members"]
    ]


def _write_json(path: Path, payload: dict[str, Any]) -> None:
    tmp = path.with_suffix(f"{path.suffix}.{os.getpid()}.tmp")  # one per writer
    tmp.write_text(json.dumps(payload, indent=1))
    os.replace(tmp, path)


def train_grid_to_dir(
    config: HierarchicalVAEConfig,
    betas: Sequence[Sequence[float]],
    data: torch.Tensor,
    train_config: TrainConfig,
    out: str | os.PathLike,
    *,
    warmup_steps: int = 0,
    chunk_size: int | None = None,
    ctx: DistributedContext | None = None,
    progress: bool = True,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Train this rank's shard of a grid into the directory ``out``; return the ``grid.json``.

    Every rank computes the data fingerprint once and checks an existing ``grid.json`` in
    ``out`` against its plan (:func:`grid_plan`); then rank ``r`` trains the members of
    :func:`shard_range` that have no ``member_<k>.pt`` yet, ``chunk_size`` at a time (default:
    the whole shard), with in-chunk checkpoints in ``out/checkpoints``, writing each member's
    weights and result when its chunk finishes. After a barrier rank 0 writes the complete
    ``grid.json``, which every rank returns.

    Parameters
    ----------
    config, betas, data, train_config, warmup_steps : as for
        :func:`~hvae_lib.train.train_grid` (``data`` ``[N, C, H, W]``).
    out : the grid directory (created).
    chunk_size : members trained at once per rank.
    ctx : from :func:`init_distributed`; ``None``: one process on the CPU.
    extra : descriptive entries for ``grid.json`` (see :func:`grid_plan`).

    Raises
    ------
    ValueError
        ``out`` holds another grid (other model, training config, warm-up, data or betas).
    """
    ctx = ctx if ctx is not None else DistributedContext()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    digest = source_digest(TensorBatches(data, train_config.batch_size, train_config.seed))
    plan = grid_plan(config, betas, train_config, digest, warmup_steps=warmup_steps, extra=extra)
    index = out / "grid.json"
    if index.is_file():
        try:
            old = json.loads(index.read_text())
        except json.JSONDecodeError as exc:
            raise ValueError(f"{index.resolve()} is not valid JSON ({exc}); delete it") from exc
        if not _same_grid(old, plan):
            raise ValueError(
                f"{out.resolve()} holds another grid (model, training config, warm-up, data or "
                "betas differ); choose an empty --out"
            )
    ctx.barrier()  # every rank has checked before rank 0 writes
    if ctx.rank == 0 and not index.is_file():
        _write_json(index, plan)
    mine = [
        k
        for k in shard_range(len(plan["members"]), ctx.world_size, ctx.rank)
        if not (out / f"member_{k}.pt").is_file() or not (out / f"member_{k}.json").is_file()
    ]

    def write(positions: list[int], states: list, results: list[TrainResult]) -> None:
        for j, state, result in zip(positions, states, results):
            k = mine[j]
            tmp = out / f"member_{k}.pt.{os.getpid()}.tmp"
            torch.save(state, tmp)
            os.replace(tmp, out / f"member_{k}.pt")
            _write_json(out / f"member_{k}.json", result.to_dict())

    seconds = 0.0
    if mine:
        trained = train_grid(
            config,
            [plan["members"][k]["betas"] for k in mine],
            data,
            train_config,
            warmup_steps=warmup_steps,
            chunk_size=chunk_size,
            device=ctx.device,
            progress=progress,
            desc=f"grid rank {ctx.rank}/{ctx.world_size}",
            checkpoint_dir=out / "checkpoints",
            data_digest=digest,
            on_chunk=write,
        )
        seconds = trained.seconds
    timings = ctx.gather({"rank": ctx.rank, "members": mine, "seconds": seconds})
    if ctx.rank == 0:
        complete = dict(plan)
        complete["members"] = [
            {**m, "result": json.loads((out / f"member_{m['index']}.json").read_text())}
            for m in plan["members"]
        ]
        complete["ranks"] = timings
        _write_json(index, complete)
        ckpts = out / "checkpoints"
        if ckpts.is_dir() and not any(ckpts.iterdir()):
            ckpts.rmdir()
    ctx.barrier()
    return json.loads(index.read_text()) if index.is_file() else plan


def load_grid_dir(
    path: str | os.PathLike,
    config: HierarchicalVAEConfig | None = None,
    betas: Sequence[Sequence[float]] | None = None,
    data: torch.Tensor | None = None,
) -> GridResult:
    """Read a complete grid directory (see the module docstring) as a ``GridResult``.

    Parameters
    ----------
    path : the directory.
    config, betas, data : if given, the directory must hold this architecture, these members
        (in this order) and a grid trained on these data (compared by fingerprint).

    Raises
    ------
    FileNotFoundError
        No ``grid.json`` or a missing member file (the message names it).
    ValueError
        An incomplete or unreadable directory, or one that does not match ``config``,
        ``betas`` or ``data`` (the message says which).
    """
    path = Path(path)
    index = path / "grid.json"
    if not index.is_file():
        raise FileNotFoundError(
            f"no grid.json in {path.resolve()}: not a grid directory (python -m hvae_lib grid)"
        )
    try:
        meta = json.loads(index.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{index.resolve()} is not valid JSON: {exc}") from exc
    if meta.get("format") != GRID_FORMAT:
        raise ValueError(f"{index} has format {meta.get('format')!r}; this reads {GRID_FORMAT}")
    grid_config = HierarchicalVAEConfig.from_dict(meta["model"])
    train_config = TrainConfig.from_dict(meta["train"])
    if config is not None and grid_config != config:
        raise ValueError(f"{path} holds another architecture than the chapter's: {grid_config}")
    member_betas = [tuple(float(b) for b in m["betas"]) for m in meta["members"]]
    if betas is not None and [tuple(map(float, b)) for b in betas] != member_betas:
        raise ValueError(f"{path} holds other betas than expected: {member_betas}")
    if data is not None:
        digest = source_digest(TensorBatches(data, train_config.batch_size, train_config.seed))
        if digest != meta["data_digest"]:
            raise ValueError(f"{path} was trained on other data than the data given")
    unfinished = [m["index"] for m in meta["members"] if "result" not in m]
    if unfinished:
        raise ValueError(
            f"{path} is incomplete: member {unfinished[0]} (and {len(unfinished) - 1} more) has "
            "no result; re-run the grid command with the same arguments to finish it"
        )
    states, results = [], []
    for m in meta["members"]:
        file = path / f"member_{m['index']}.pt"
        if not file.is_file():
            raise FileNotFoundError(f"member file {file.resolve()} is missing")
        state = torch.load(file, map_location="cpu", weights_only=True)
        HierarchicalVAE(grid_config).load_state_dict(state)  # validates the shapes
        states.append(state)
        results.append(TrainResult.from_dict(m["result"], from_cache=True))
    return GridResult(
        config=grid_config,
        train_config=train_config,
        betas=member_betas,
        state_dicts=states,
        results=results,
        seconds=0.0,
        warmup_steps=int(meta["warmup_steps"]),
    )
