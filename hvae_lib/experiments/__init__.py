"""Experiments: one module per chapter with its ``quick`` and ``paper`` settings and its data loading.

This is the only package that knows the profiles.

* :mod:`.ch01_rate_distortion` — :ref:`ch-rate-distortion`
* :mod:`.ch02_transitive` — :ref:`ch-transitive` (also :func:`.compare_priors`)
* :mod:`.ch03_rate_splitting` — :ref:`ch-rate-splitting`
* :mod:`.ch04_semafovae` — :ref:`ch-semafovae`
* :mod:`.ch04_bench` — the bench shared by chapter 4's six pages (:ref:`ch-semafovae` to
  :ref:`ch-semafovae-verdicts`)

Import the chapter's module, e.g. ``from hvae_lib.experiments.ch03_rate_splitting import
rate_splitting_settings``.
"""
