"""The VRAM estimator and what it is checked against (notebooks 04 and 10, ``ftlab estimate-memory``, ``bench/``).

- ``estimate``: what a QLoRA (or LoRA) training step keeps on the GPU, from first principles, and the articles'
  figures explained (:func:`estimate_memory`, :func:`seed_claims`).
- ``recommend``: the fastest configuration that fits a GPU (:func:`recommend_config`).
- ``results``: the committed GPU results as a table (:func:`bench_table`), shipped inside the package.
- ``measure``: what autograd really saves per layer, measured on the CPU.

Example::

    >>> from ftlab.memory import estimate_memory
    >>> est = estimate_memory("llama-3.1-8b", seq_len=1024, batch_size=4, gradient_checkpointing=True)
    >>> round(est.total_gib, 1) > 8
    True
"""

from __future__ import annotations

from ftlab.memory.estimate import *  # noqa: F403 (the estimator's public names, listed in its __all__)
from ftlab.memory.estimate import __all__ as _estimate_names
from ftlab.memory.estimate import _ceil, _r512  # noqa: F401 (ftlab.scale rounds the way the estimator does)
from ftlab.memory.measure import measure_saved_bytes_per_layer
from ftlab.memory.recommend import ConfigRecommendation, recommend_config
from ftlab.memory.results import BENCH_RESULT_FILES, bench_table, results_dir

__all__ = [*_estimate_names, "BENCH_RESULT_FILES", "ConfigRecommendation", "bench_table", "measure_saved_bytes_per_layer",
           "recommend_config", "results_dir"]
