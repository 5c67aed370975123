"""Small neural-network building blocks shared by the book's models.

Image tensors are ``[B, C, H, W]`` with square ``H = W``; flat tensors are ``[B, F]``.

Used in: :ref:`ch-rate-distortion` and every later model chapter.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn


def mlp(
    sizes: Sequence[int], *, activation: type[nn.Module] = nn.ReLU, final_activation: bool = False
) -> nn.Sequential:
    """A multilayer perceptron ``sizes[0] -> sizes[1] -> ... -> sizes[-1]``.

    Parameters
    ----------
    sizes : layer widths, at least two (input and output).
    activation : activation class placed between layers.
    final_activation : also apply the activation after the last layer.
    """
    if len(sizes) < 2 or any(int(s) <= 0 for s in sizes):
        raise ValueError(f"mlp needs at least two positive sizes, got {list(sizes)}")
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(int(a), int(b)))
        if i < len(sizes) - 2 or final_activation:
            layers.append(activation())
    return nn.Sequential(*layers)


def _num_halvings(resolution: int, bottom: int) -> int:
    if resolution < bottom or resolution & (resolution - 1) or bottom & (bottom - 1):
        raise ValueError(
            f"conv bodies need a power-of-two resolution >= {bottom}, got {resolution}"
        )
    return int(math.log2(resolution // bottom))


class ConvEncoderBody(nn.Module):
    """Stride-2 convolutions (kernel 4, padding 1) from ``resolution`` down to ``bottom``.

    Input ``[B, C, R, R]`` -> output ``[B, F]`` with ``F = channels[-1] * bottom**2``.
    The number of convolutions is ``log2(R / bottom)``; ``channels`` gives their widths
    (repeated with its last value if shorter).
    """

    def __init__(
        self,
        in_channels: int,
        resolution: int,
        channels: Sequence[int] = (32, 32, 64, 64),
        bottom: int = 4,
    ) -> None:
        super().__init__()
        n = _num_halvings(resolution, bottom)
        widths = [int(c) for c in channels] or [32]
        widths = (widths + [widths[-1]] * n)[:n] if n > 0 else []
        layers: list[nn.Module] = []
        c_in = in_channels
        for w in widths:
            layers += [nn.Conv2d(c_in, w, kernel_size=4, stride=2, padding=1), nn.ReLU()]
            c_in = w
        self.net = nn.Sequential(*layers, nn.Flatten())
        self.out_features = c_in * bottom * bottom

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, C, R, R] -> [B, F]``."""
        return self.net(x)


class ConvDecoderBody(nn.Module):
    """Mirror of :class:`ConvEncoderBody`: features ``[B, F]`` -> image logits ``[B, C, R, R]``.

    A linear layer maps the input to ``[B, channels[0], bottom, bottom]``, then stride-2
    transposed convolutions (kernel 4, padding 1) double the resolution up to ``R``; the last
    one outputs ``out_channels`` maps with no activation.
    """

    def __init__(
        self,
        in_features: int,
        out_channels: int,
        resolution: int,
        channels: Sequence[int] = (64, 64, 32, 32),
        bottom: int = 4,
    ) -> None:
        super().__init__()
        n = _num_halvings(resolution, bottom)
        widths = [int(c) for c in channels] or [32]
        widths = (widths + [widths[-1]] * n)[: max(n, 1)]
        self.bottom = bottom
        self.c0 = widths[0]
        self.fc = nn.Sequential(nn.Linear(in_features, self.c0 * bottom * bottom), nn.ReLU())
        layers: list[nn.Module] = []
        c_in = self.c0
        for i in range(n):
            last = i == n - 1
            c_out = out_channels if last else widths[min(i + 1, len(widths) - 1)]
            layers.append(nn.ConvTranspose2d(c_in, c_out, kernel_size=4, stride=2, padding=1))
            if not last:
                layers.append(nn.ReLU())
            c_in = c_out
        if n == 0:
            layers.append(nn.Conv2d(c_in, out_channels, kernel_size=3, padding=1))
        self.net = nn.Sequential(*layers)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        """``[B, F] -> [B, C, R, R]`` (unnormalised: logits or means)."""
        x = self.fc(h).view(h.shape[0], self.c0, self.bottom, self.bottom)
        return self.net(x)


class GaussianHead(nn.Module):
    """Linear map from features to the mean and log-variance of a diagonal Gaussian.

    ``[B, F] -> (mu [B, D], logvar [B, D])``; ``logvar`` is clamped to ``[-12, 8]`` so that a
    diverging layer cannot produce infinities (the clamp is inactive in normal training).
    """

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__()
        self.linear = nn.Linear(in_features, 2 * out_features)

    def forward(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return ``(mu, logvar)``, each ``[B, D]``."""
        mu, logvar = self.linear(h).chunk(2, dim=-1)
        return mu, logvar.clamp(-12.0, 8.0)
