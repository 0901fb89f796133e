"""What a run is: ``TrainConfig`` (its knobs, with size-scaled defaults), ``TrainResult`` and a memory
recommendation applied to a config.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from ftlab.errors import FtlabError
from ftlab.toymodel import TOY_MODEL_ID, resolve_model

__all__ = [
    "KNOWN_LIMITATIONS",
    "SIZE_CLASSES",
    "STORAGE_DTYPES",
    "TrainConfig",
    "TrainResult",
    "apply_recommendation",
    "lr_scale",
    "lr_scale_for",
    "size_defaults",
    "with_size_defaults",
]


# Storage dtypes of bitsandbytes' packed 4-bit weights: FSDP shards only float tensors, so FSDP + QLoRA stores
# the codes in the model's float dtype (https://huggingface.co/docs/bitsandbytes/main/fsdp_qlora).
STORAGE_DTYPES = ("uint8", "bfloat16", "float16", "float32")
KNOWN_LIMITATIONS = [
    "The toy model is ~1M parameters: its numbers show the mechanics, not the quality of an 8B model.",
    "Accuracy is measured on synthetic data with an exact-match scorer.",
]


@dataclass
class TrainConfig:
    """Hyperparameters of a (Q)LoRA run. Defaults suit the toy model on a CPU; comments give 8B values."""

    model_id: str = TOY_MODEL_ID  # a hub id, a local folder, or the toy model
    output_dir: str = "runs/train"
    quantization: str = "4bit"  # "4bit" (QLoRA, nf4 + double quant), "8bit", or "none"
    lora_r: int = 16  # LoRA rank; 16 is the articles' value for 8B
    lora_alpha: int = 32
    lora_dropout: float = 0.0  # 0.05 for 8B
    target_modules: list[str] | None = None  # None: the 7 projections found in the model's config
    learning_rate: float = 5e-3  # toy; 2e-4 for 8B ("larger models need lower LR")
    num_train_epochs: float = 2.0
    max_steps: int = -1  # > 0 overrides epochs
    per_device_train_batch_size: int = 16  # 4 for 8B on 24 GB
    gradient_accumulation_steps: int = 1
    max_length: int = 128  # 1024-2048 for 8B
    packing: bool = False
    assistant_only_loss: bool = True
    eval_steps: int = 8  # the articles: "monitor validation loss every 50 steps" at 8B scale
    logging_steps: int = 4
    save_steps: int = 16  # a multiple of eval_steps, so the best checkpoint can be kept
    save_total_limit: int = 3
    overfit_patience: int | None = 3  # OverfitDetector: stop after this many rising evals in a row
    lr_scheduler_type: str = "linear"
    warmup_ratio: float = 0.05
    weight_decay: float = 0.0
    seed: int = 0
    toy_seed: int = 0  # which toy base model (its build seed); ignored for other model ids
    report_to: str = "tensorboard"  # "wandb" to opt in, "none" to log nothing
    gradient_checkpointing: bool = False  # True for 8B on 24 GB
    kbit_prep: bool = True  # PEFT's prepare_model_for_kbit_training (fp32 norms/embeddings); the GPU recommendation turns it off
    attn_implementation: str | None = None  # e.g. "sdpa" or "flash_attention_2"; None: the library default
    bnb_4bit_quant_storage: str | None = None  # "bfloat16" for FSDP + QLoRA (FSDP shards float tensors only); None: uint8
    resume_from_checkpoint: str | bool | None = None
    data_version: str = ""  # free text for the run card, e.g. "support v1 (seed 0)"
    extra: dict[str, Any] = field(default_factory=dict)  # other SFTConfig arguments
    device: str = "auto"  # "auto": CUDA when there is one; "cpu": the CPU even on a GPU machine (a CPU reference run)

    def validate(self) -> None:
        if self.quantization not in ("4bit", "8bit", "none"):
            raise FtlabError(f"quantization={self.quantization!r}: use '4bit', '8bit' or 'none'")
        if self.device not in ("auto", "cpu"):
            raise FtlabError(f"device={self.device!r}: use 'auto' (CUDA when there is one) or 'cpu'")
        if self.learning_rate <= 0:
            raise FtlabError(f"learning_rate={self.learning_rate}: must be > 0 (try 2e-4 for 8B, 3e-3 for the toy)")
        if self.eval_steps and self.save_steps % self.eval_steps:
            raise FtlabError(f"save_steps={self.save_steps} must be a multiple of eval_steps={self.eval_steps}")
        if self.bnb_4bit_quant_storage not in (None, *STORAGE_DTYPES):
            raise FtlabError(f"bnb_4bit_quant_storage={self.bnb_4bit_quant_storage!r}: use one of "
                             f"{', '.join(STORAGE_DTYPES)} (bfloat16 for FSDP + QLoRA), or leave it unset")


# Size classes for size_defaults: (upper bound in parameters, name, learning rate, max_length, epochs, GGUF outtype).
# The toy's row is its own tested values (4 epochs: v8's held-out support prompts need them); "larger models need
# lower LR" (the articles).
SIZE_CLASSES = [
    (20e6, "toy", 5e-3, 128, 4.0, "f32"),
    (1e9, "small (< 1B)", 1e-3, 512, 2.0, "f16"),
    (15e9, "medium (1-15B)", 2e-4, 1024, 2.0, "q8_0"),
    (float("inf"), "large (> 15B)", 1e-4, 1024, 1.0, "q8_0"),
]


def lr_scale(model_or_config) -> float:
    """How much to scale a learning rate tuned on the toy for another model: its size-default LR over the toy's.

    Notebooks whose LRs were tuned on the toy (05's pattern runs) multiply them by this, so a real model gets
    LRs of the same strength relative to what suits it. Example: ``lr_scale(smollm2_config) == 0.2`` (1e-3 / 5e-3),
    and ``1.0`` for the toy.
    """
    return size_defaults(model_or_config)["learning_rate"] / SIZE_CLASSES[0][2]


def lr_scale_for(model_id: str, override: float = 0.0) -> float:
    """The factor for LRs tuned on the toy: ``override`` when set (> 0), else ``lr_scale`` of ``model_id``'s config.

    Example: ``lr_scale_for("ftlab/toy-llama") == 1.0``; ``lr_scale_for("HuggingFaceTB/SmolLM2-135M-Instruct") == 0.2``.
    """
    if override > 0:
        return override
    from transformers import AutoConfig

    return lr_scale(AutoConfig.from_pretrained(resolve_model(model_id)))


def _count_params(model_or_config) -> tuple[int, Any]:
    """(number of parameters, dtype or None) of a model, a config, a config dict, or a model id/folder."""
    if hasattr(model_or_config, "parameters") and hasattr(model_or_config, "named_modules"):
        params = list(model_or_config.parameters())
        dtype = getattr(model_or_config, "dtype", None) or (params[0].dtype if params else None)
        config = getattr(model_or_config, "config", None)
        if config is not None and getattr(config, "quantization_config", None) is not None:
            from ftlab.memory import shape_from_config  # packed 4-bit weights count half: use the shape

            try:
                return shape_from_config(config.to_dict()).num_params, dtype
            except Exception:  # not a Llama-like config: count what is there
                pass
        return sum(p.numel() for p in params), dtype
    config = model_or_config
    if isinstance(config, str):
        from transformers import AutoConfig

        config = AutoConfig.from_pretrained(resolve_model(config))
    if hasattr(config, "to_dict"):
        config = config.to_dict()
    from ftlab.memory import shape_from_config

    return shape_from_config(config).num_params, None


def size_defaults(model_or_config) -> dict[str, Any]:
    """Training defaults from the model's size: ``learning_rate``, ``max_length``, ``epochs``, ``merge_atol``,
    ``gguf_outtype`` (plus ``size_class``, ``n_params`` and ``dtype``). Use them where a parameter is unset.

    ``merge_atol`` is the max |Δlogit| accepted between merged and unmerged models, both in float32 (``merge_adapter``
    merges in float32 on CUDA too): 1e-3 for the toy and 1e-2 for deeper real models (30+ layers accumulate more
    rounding). The toy's values are the ones its notebooks use (5e-3, 128, 4 epochs, 1e-3, f32).
    Example: ``size_defaults(AutoConfig.from_pretrained(smollm2_path))["learning_rate"] == 1e-3``.
    """
    import torch

    n, dtype = _count_params(model_or_config)
    if dtype is None:  # a config: the dtype load_base trains in
        dtype = torch.bfloat16 if torch.cuda.is_available() else torch.float32
    _, name, lr, max_length, epochs, outtype = next(c for c in SIZE_CLASSES if n < c[0])
    atol = 1e-3 if name == "toy" else 1e-2  # merges run in float32 (ftlab.merge.MERGE_DTYPE), whatever the training dtype
    return {"learning_rate": lr, "max_length": max_length, "epochs": epochs, "merge_atol": atol,
            "gguf_outtype": outtype, "size_class": name, "n_params": n, "dtype": str(dtype).removeprefix("torch.")}


def with_size_defaults(model_id: str, *, seed: int = 0, **given: Any) -> dict[str, Any]:
    """The notebooks' size-defaulted parameters: ``size_defaults`` of the model, where each of ``given`` that is
    set (not 0 or "") replaces the default of the same name.

    Example: ``with_size_defaults("ftlab/toy-llama", learning_rate=0.0, epochs=3.0)`` gives
    ``{"learning_rate": 5e-3, "epochs": 3.0, "size_class": "toy", ...}``.
    """
    sizes = size_defaults(resolve_model(model_id, seed=seed))
    unknown = sorted(set(given) - set(sizes))
    if unknown:
        raise FtlabError(f"with_size_defaults: no size default for {unknown} (known: {sorted(sizes)})")
    return {**sizes, **{k: v or sizes[k] for k, v in given.items()}}


@dataclass
class TrainResult:
    """What a run produced: the adapter folder, the loss history and why it stopped."""

    output_dir: str
    adapter_dir: str
    run_card: str
    train_loss: list[tuple[int, float]]
    eval_loss: list[tuple[int, float]]
    stop_reason: str
    best_step: int | None
    best_eval_loss: float | None
    global_step: int
    seconds: float
    trainer_state: str
    cached: bool = False  # True when train_cached reused an identical earlier run

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def apply_recommendation(cfg: TrainConfig, rec) -> TrainConfig:
    """Apply ``ftlab.memory.recommend_config``'s choice (batch, packing, checkpointing, attention, kbit prep)."""
    kwargs = rec.sft_config_kwargs()
    cfg.per_device_train_batch_size = kwargs.pop("per_device_train_batch_size")
    cfg.max_length = kwargs.pop("max_length")
    cfg.packing = kwargs.pop("packing")
    cfg.gradient_checkpointing = kwargs.pop("gradient_checkpointing")
    cfg.attn_implementation = kwargs.pop("model_init_kwargs", {}).get("attn_implementation")
    cfg.kbit_prep = rec.kbit_prep
    cfg.extra.update(kwargs)
    return cfg
