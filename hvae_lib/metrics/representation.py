"""Encode observations to the representation the metrics score (posterior means).

For a hierarchical VAE the representation must be chosen:

* ``layers="top"`` (the primary choice): the top layer :math:`\\bar z_0 = \\mathbb E\\,q(z_0\\mid x)`.
  Comparable with flat VAEs, the layer SemafoVAE's prior :math:`p(z_0\\mid u)` acts on, and
  small ``D`` (cheap DCI).
* ``layers="concat"``: every layer's flattened means side by side, the SemafoVAE authors'
  ``concat_mean`` representation, needed to compare with their numbers (the order of the
  columns does not change MIG, DCI or SAP).
* ``layers="per_layer"``: one array per layer, to score each layer separately.
* an ``int``: that layer only.

Per-layer sequences are **bottom-up** here as everywhere in the library: entry 0 is the layer
nearest the data, the top layer is last (``posterior_means`` of every hierarchical model
returns them in that order).

Lower layers must be computed from means propagated top-down,
:math:`\\bar z_1 = \\mathbb E\\,q(z_1 \\mid x, \\bar z_0)`, never from samples; that is the job of
the model's ``posterior_means`` (or of the callable passed here). Name the representation
next to every reported score, e.g. ``MIG(z0)`` versus ``MIG(z0+z1)``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Literal, Union

import numpy as np

__all__ = ["representation", "LAYER_CHOICES"]

LayerChoice = Union[Literal["top", "concat", "per_layer"], int]
LAYER_CHOICES: tuple[str, ...] = ("top", "concat", "per_layer")


def _as_layers(out: Any) -> list[Any]:
    if isinstance(out, (list, tuple)):
        if len(out) == 0:
            raise ValueError("the model returned an empty list of layer means")
        return list(out)
    return [out]


def representation(
    model: Any,
    observations: Any,
    *,
    layers: LayerChoice = "top",
    batch_size: int = 256,
    device: Any = None,
    progress: bool = False,
) -> np.ndarray | list[np.ndarray]:
    """Encode observations to posterior means, chosen per layer for hierarchical models.

    Parameters
    ----------
    model : object with ``posterior_means(x)``, or a callable ``x -> means``
        Called on a float32 ``torch.Tensor`` batch ``[B, ...]``; returns either one tensor
        ``[B, ...]`` (flat model) or a sequence of per-layer posterior means, **top layer
        first**, computed with means propagated top-down. Each layer is flattened to
        ``[B, D_l]``. A ``torch.nn.Module`` is put in ``eval()`` mode for the call and restored.
    observations : array or tensor of shape [N, ...]
        Converted with ``torch.as_tensor(..., dtype=torch.float32)`` (no rescaling).
    layers : "top", "concat", "per_layer" or int
        Which representation to return (see the module docstring).
    batch_size : int
        Observations per forward pass.
    device : torch device or None
        Device of the forward passes (default: the model's parameters' device, else CPU).
    progress : bool
        Show a ``tqdm.auto`` progress bar.

    Returns
    -------
    numpy.ndarray of float64, shape [N, D]
        For ``"top"``, ``"concat"`` or an int.
    list of numpy.ndarray
        For ``"per_layer"``: one ``[N, D_l]`` array per layer, bottom-up (top last).

    Use ``functools.partial(representation, model, layers="top")`` as the ``encode``
    function of :class:`~hvae_lib.metrics.sampling.GridEncoder`.


    Used in: :ref:`appendix-metrics`
    """
    import torch

    if not (isinstance(layers, (int, np.integer)) or layers in LAYER_CHOICES):
        raise ValueError(f"layers must be one of {LAYER_CHOICES} or an int; got {layers!r}")
    fn: Callable[[Any], Any]
    if hasattr(model, "posterior_means"):
        fn = model.posterior_means
    elif callable(model):
        fn = model
    else:
        raise ValueError("model must have a posterior_means method or be callable")
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive; got {batch_size}")

    x_all = torch.as_tensor(
        np.asarray(observations) if not torch.is_tensor(observations) else observations
    )
    if x_all.ndim < 2 or x_all.shape[0] == 0:
        raise ValueError(
            f"observations must have shape [N, ...] with N > 0; got {tuple(x_all.shape)}"
        )
    x_all = x_all.to(torch.float32)
    module = model if isinstance(model, torch.nn.Module) else getattr(fn, "__self__", None)
    if device is None:
        params = list(module.parameters()) if isinstance(module, torch.nn.Module) else []
        device = params[0].device if params else torch.device("cpu")
    was_training = isinstance(module, torch.nn.Module) and module.training
    if isinstance(module, torch.nn.Module):
        module.eval()

    chunks: list[list[np.ndarray]] = []
    starts: Sequence[int] = range(0, x_all.shape[0], batch_size)
    if progress:
        from tqdm.auto import tqdm

        starts = tqdm(starts, desc="encoding", unit="batch")
    try:
        with torch.inference_mode():
            for start in starts:
                xb = x_all[start : start + batch_size].to(device)
                outs = _as_layers(fn(xb))
                chunks.append(
                    [
                        torch.as_tensor(o)
                        .detach()
                        .reshape(xb.shape[0], -1)
                        .to("cpu", torch.float64)
                        .numpy()
                        for o in outs
                    ]
                )
    finally:
        if was_training and isinstance(module, torch.nn.Module):
            module.train()

    num_layers = len(chunks[0])
    if any(len(c) != num_layers for c in chunks):
        raise ValueError("the model returned a different number of layers for different batches")
    per_layer = [np.concatenate([c[i] for c in chunks]) for i in range(num_layers)]
    for i, arr in enumerate(per_layer):
        if not np.isfinite(arr).all():
            raise ValueError(f"posterior means of layer {i} contain NaN or infinite values")
    if layers == "per_layer":
        return per_layer
    if layers == "concat":
        return np.concatenate(per_layer, axis=1)
    if layers == "top":
        return per_layer[-1]
    idx = int(layers)
    if not -num_layers <= idx < num_layers:
        raise ValueError(f"layer {idx} out of range: the model has {num_layers} layer(s)")
    return per_layer[idx]
