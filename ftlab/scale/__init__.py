"""Scaling out past one GPU with Hugging Face accelerate: one training entry point, three launchers.

The training code is :func:`ftlab.train.train`, the same code notebook 04 runs. This module reads it a
config file and launches it:

- plainly: ``ftlab train --config run.yaml`` (one process);
- under accelerate: ``accelerate launch --config_file ftlab/accelerate/ddp.yaml -m ftlab train --config run.yaml``
  (DDP, FSDP + QLoRA, or 2 CPU processes over gloo with ``cpu_ddp.yaml``);
- from a notebook: ``launch_notebook(train_from_config, ("run.yaml",), num_processes=2)``
  (``accelerate.notebook_launcher``).

TRL's ``SFTTrainer`` is a transformers ``Trainer``, which asks accelerate how it was launched: the same
code becomes data parallel (every process a whole model, gradients averaged) or fully sharded (FSDP:
every process 1/N of the weights, gradients and optimizer states). Only rank 0 writes the adapter, the
run card and ``summary.json``.

How much memory each GPU needs is :func:`per_gpu_memory`: ftlab's estimator divided over the shards, plus
what does not shard. Example::

    >>> m = per_gpu_memory("llama-3.1-70b", 1024, 1, n_gpus=2, strategy="fsdp", gradient_checkpointing=True,
    ...                    kbit_prep=False, optim="adamw")
    >>> m.total_gib < m.single_gpu_gib
    True

The package, by step:

- ``runspec``: the config file (``load_run_spec``, ``load_rows``), ``train_from_config``, ``summarize``,
  ``compare_runs``.
- ``launch``: ``accelerate_config``, ``launch_command``, ``run_launch``, ``launch_notebook``.
- ``per_gpu``: ``per_gpu_memory``, ``split_per_gpu``, ``gpus_needed``, ``gpu_plan``.
"""

from __future__ import annotations

from ftlab.scale.launch import (
    ACCELERATE_CONFIGS,
    ACCELERATE_DIR,
    accelerate_config,
    free_port,
    launch_command,
    launch_notebook,
    run_launch,
)
from ftlab.scale.per_gpu import (
    GPU_SIZES,
    STRATEGIES,
    PerGPUMemory,
    gpu_plan,
    gpus_needed,
    per_gpu_memory,
    split_per_gpu,
)
from ftlab.scale.runspec import (
    DATA_KEYS,
    PREFERENCE_KEYS,
    TOY_DATA,
    RunSpec,
    compare_runs,
    load_rows,
    load_run_spec,
    relative_difference,
    summarize,
    train_from_config,
)

__all__ = ["ACCELERATE_CONFIGS", "ACCELERATE_DIR", "DATA_KEYS", "GPU_SIZES", "PREFERENCE_KEYS", "STRATEGIES",
           "TOY_DATA", "PerGPUMemory", "RunSpec", "accelerate_config", "compare_runs", "free_port",
           "gpu_plan", "gpus_needed", "launch_command", "launch_notebook", "load_rows", "load_run_spec",
           "per_gpu_memory", "relative_difference", "run_launch", "split_per_gpu", "summarize",
           "train_from_config"]
