"""hvae_lib: the library behind *hvae-book*.

A small PyTorch package that the book's chapters import: data (procedural dSprites, digits,
MNIST), models (beta-VAE, hierarchical VAE, SemafoVAE), objectives, training with a result
cache, information-theory tools, disentanglement metrics and the book's execution pipeline.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
