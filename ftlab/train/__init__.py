"""QLoRA training with the current stack: transformers 5 + TRL 1.x (``SFTConfig``) + PEFT + bitsandbytes.

The same code trains the toy model on a CPU and Llama 3.1 8B on a GPU::

    cfg = TrainConfig(model_id="meta-llama/Llama-3.1-8B-Instruct", output_dir="runs/llama")
    result = train(cfg, train_rows, eval_rows)

On CUDA it picks bf16 compute and paged 8-bit AdamW; on CPU fp32 compute and AdamW.
bitsandbytes' 4-bit layers also run on the CPU, so the toy run is real QLoRA too.

The package, by stage:

- ``config``: ``TrainConfig``, ``TrainResult``, size-scaled defaults (``size_defaults``, ``lr_scale``).
- ``model``: LoRA targets, quantization, device placement, ``load_base`` and ``load_adapter``.
- ``loss``: the loss mask (``choose_loss_mask``, ``preflight_loss_mask``) and ``heldout_loss``/``heldout_metrics``.
- ``callbacks``: ``OverfitDetector`` and ``DivergenceGuard``, made on first use.
- ``sft``: the SFT loop (``sft_config``, ``train``) and resuming (``last_complete_checkpoint``).
- ``cache``: ``training_key``, ``train_cached`` and the toy recipes (``train_recipe``, ``train_own``).
"""

from __future__ import annotations

from typing import Any

from ftlab.train import callbacks as _callbacks
from ftlab.train.cache import (
    TRAINING_RECIPES,
    recipe_rows,
    train_cached,
    train_own,
    train_recipe,
    training_key,
)
from ftlab.train.config import (
    KNOWN_LIMITATIONS,
    SIZE_CLASSES,
    STORAGE_DTYPES,
    TrainConfig,
    TrainResult,
    apply_recommendation,
    lr_scale,
    lr_scale_for,
    size_defaults,
    with_size_defaults,
)
from ftlab.train.loss import (
    FTLAB_TRAINING_TEMPLATES,
    LOSS_MODES,
    LossMask,
    choose_loss_mask,
    heldout_loss,
    heldout_metrics,
    preflight_loss_mask,
)
from ftlab.train.model import (
    EXPERT_LINEAR_NAMES,
    FUSED_TARGET_MODULES,
    LLAMA_TARGET_MODULES,
    ROUTER_NAMES,
    LoraTargets,
    _device_map,  # noqa: F401 (used outside the package)
    default_device_map,
    distributed_env,
    first_lora_module,
    load_adapter,
    load_base,
    lora_targets,
    quantization_config,
    target_modules_for,
    use_cuda,
)
from ftlab.train.sft import data_fingerprint, last_complete_checkpoint, sft_config, train

__all__ = ["EXPERT_LINEAR_NAMES", "FTLAB_TRAINING_TEMPLATES", "FUSED_TARGET_MODULES", "KNOWN_LIMITATIONS",
           "LLAMA_TARGET_MODULES", "LOSS_MODES", "ROUTER_NAMES", "SIZE_CLASSES", "STORAGE_DTYPES",
           "TRAINING_RECIPES", "LoraTargets", "LossMask", "TrainConfig", "TrainResult",
           "apply_recommendation", "choose_loss_mask", "data_fingerprint", "default_device_map",
           "distributed_env", "first_lora_module", "heldout_loss", "heldout_metrics",
           "last_complete_checkpoint", "load_adapter", "load_base", "lora_targets", "lr_scale",
           "lr_scale_for", "preflight_loss_mask", "quantization_config", "recipe_rows", "sft_config",
           "size_defaults", "target_modules_for", "train", "train_cached", "train_own", "train_recipe",
           "training_key", "use_cuda", "with_size_defaults"]
__all__ += ["DivergenceGuard", "OverfitDetector"]


def __getattr__(name: str) -> Any:
    """``OverfitDetector`` and ``DivergenceGuard`` (``ftlab.train.callbacks``), made on first use, so that importing
    ``ftlab.train`` does not import transformers' Trainer."""
    if name in _callbacks._LAZY_CLASSES:
        cls = getattr(_callbacks, name)
        globals()[name] = cls
        return cls
    raise AttributeError(f"module 'ftlab.train' has no attribute {name!r}")
