"""Experiments: one module per chapter with its ``quick`` and ``paper`` settings and its data loading.

This is the only package that knows the profiles.

* :mod:`.ch01_rate_distortion` — book/01_rate_distortion.md
* :mod:`.ch02_transitive` — book/02_transitive_information.md (also :func:`compare_priors`)
* :mod:`.ch03_rate_splitting` — book/03_rate_splitting.md
* :mod:`.ch04_semafovae` — book/04_semafovae.md

Import the chapter's module, e.g. ``from hvae_lib.experiments.ch03_rate_splitting import
rate_splitting_settings``.
"""
