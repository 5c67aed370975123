"""hvae_lib: the library behind *hvae-book*.

A small PyTorch package that the book's chapters import: data (procedural dSprites, digits,
MNIST), models (beta-VAE, hierarchical VAE, SemafoVAE), objectives, training with a result
cache, information-theory tools, disentanglement metrics and the book's execution pipeline.
Randomness has two names throughout the library, and the caller passes both in: ``rng``, a
``numpy.random.Generator``, and ``generator``, a ``torch.Generator``. No library function
takes an integer seed to build its own generator, and none draws from a global RNG;
:func:`hvae_lib.config.check_rng` and :func:`hvae_lib.config.check_generator` are the checks
every layer uses. Per-layer sequences (rates, betas, posterior means) are listed bottom-up:
entry 0 is the layer nearest the data, the top layer is last.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
