"""The signature every loss of :mod:`hvae_lib.objectives` has, as :func:`hvae_lib.train.train` calls it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from ..distributions import one_hot_accuracy

#: ``loss_fn(model, batch, *, step, generator) -> (scalar loss, {name: scalar tensor})``: the
#: loss to minimise and the values to log (detached batch means, nats). ``step`` is the 0-based
#: global optimiser step (schedules such as warm-up are pure functions of it, so a resumed run
#: equals an uninterrupted one); ``generator`` is the run's ``torch.Generator`` for every
#: reparameterised or Gumbel sample. Both are keyword arguments with defaults (``step=0``,
#: ``generator=None``), so a loss can also be called directly on one batch.
LossFn = Callable[..., Any]

__all__ = ["LossFn", "semi_supervised_terms"]


def semi_supervised_terms(
    model: nn.Module,
    x_l: torch.Tensor,
    y_l: torch.Tensor,
    x_u: torch.Tensor | None,
    cfg: Any,
    *,
    labelled: Callable[[Any, Any], torch.Tensor],
    unlabelled: Callable[[Any, Any], torch.Tensor],
    skip_labelled: str,
    skip_unlabelled: str,
    accuracies: dict[str, str],
    supervised_only: bool,
    generator: torch.Generator | None,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    r"""The shared body of :func:`~hvae_lib.objectives.semafo_loss` and :func:`~hvae_lib.objectives.m2_loss`.

    One forward pass per sub-batch (``model(x, y, generator=..., loss_config=cfg)``), the
    objectives ``labelled(out, cfg)`` / ``unlabelled(out, cfg)`` averaged over their sub-batch,
    and the logs: detached means of every term of the pass (``sup/…``, ``uns/…``; the term named
    ``skip_labelled`` / ``skip_unlabelled`` is left out, being undefined there), the two
    objectives, ``accuracies`` (log name → logits attribute of the output) on the labelled
    sub-batch, and ``loss``.
    """
    logs: dict[str, torch.Tensor] = {}
    loss = x_l.new_zeros(())
    if x_l.shape[0] > 0:
        out = model(x_l, y_l, generator=generator, loss_config=cfg)
        objective = labelled(out, cfg).mean()
        loss = loss - objective
        logs["sup/objective"] = objective.detach()
        logs.update(
            {f"sup/{k}": v.mean().detach() for k, v in out.terms().items() if k != skip_labelled}
        )
        for name, attr in accuracies.items():
            logs[name] = one_hot_accuracy(getattr(out, attr).detach(), out.y, model.factor_sizes)
    if not supervised_only and x_u is not None and x_u.shape[0] > 0:
        out = model(x_u, generator=generator, loss_config=cfg)
        objective = unlabelled(out, cfg).mean()
        loss = loss - objective
        logs["uns/objective"] = objective.detach()
        logs.update(
            {f"uns/{k}": v.mean().detach() for k, v in out.terms().items() if k != skip_unlabelled}
        )
    logs["loss"] = loss.detach()
    return loss, logs
