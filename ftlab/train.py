"""QLoRA training with the current stack: transformers 5 + TRL 1.x (``SFTConfig``) + PEFT + bitsandbytes.

The same code trains the toy model on a CPU and Llama 3.1 8B on a GPU::

    cfg = TrainConfig(model_id="meta-llama/Llama-3.1-8B-Instruct", output_dir="runs/llama")
    result = train(cfg, train_rows, eval_rows)

On CUDA it picks bf16 compute and paged 8-bit AdamW; on CPU fp32 compute and AdamW.
bitsandbytes' 4-bit layers also run on the CPU, so the toy run is real QLoRA too.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ftlab.core import cache_dir, file_sha256, folder_lock, seed_everything, stable_hash, tune_cpu_threads
from ftlab.errors import FtlabError
from ftlab.runcard import hardware, library_versions, write_run_card
from ftlab.toymodel import TOY_MODEL_ID, resolve_model

__all__ = ["EXPERT_LINEAR_NAMES", "FTLAB_TRAINING_TEMPLATES", "FUSED_TARGET_MODULES", "KNOWN_LIMITATIONS",
           "LLAMA_TARGET_MODULES", "LOSS_MODES", "ROUTER_NAMES", "SIZE_CLASSES", "STORAGE_DTYPES",
           "TRAINING_RECIPES", "LoraTargets", "LossMask", "TrainConfig", "TrainResult", "apply_recommendation",
           "choose_loss_mask", "data_fingerprint", "default_device_map", "distributed_env", "first_lora_module",
           "heldout_loss", "heldout_metrics", "last_complete_checkpoint", "load_adapter", "load_base",
           "lora_targets", "lr_scale", "lr_scale_for", "preflight_loss_mask", "quantization_config", "recipe_rows",
           "sft_config", "size_defaults", "target_modules_for", "train", "train_cached", "train_own", "train_recipe",
           "training_key", "use_cuda", "with_size_defaults"]
__all__ += ["DivergenceGuard", "OverfitDetector"]  # noqa: F822 (classes made on first use, see __getattr__)

# The seeds' seven projection modules of a Llama block.
LLAMA_TARGET_MODULES = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
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
    lora_r: int = 16  # LoRA rank; 16 is the seeds' value for 8B
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
    eval_steps: int = 8  # the seeds: "monitor validation loss every 50 steps" at 8B scale
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
# The toy's row is its own tested values (4 epochs: v8's held-out support prompts need them); "larger models need lower LR".
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


# Fused projections (Phi-3: one qkv_proj and one gate_up_proj per block).
FUSED_TARGET_MODULES = ["qkv_proj", "o_proj", "gate_up_proj", "down_proj"]
# Mixture-of-experts experts stored as nn.Linear modules per expert (Mixtral's w1/w3 gate/up, w2 down; older layouts).
EXPERT_LINEAR_NAMES = ["w1", "w2", "w3"]
# Linear layers that are routers, not projections: left out on purpose (training them destabilizes routing).
ROUTER_NAMES = {"gate", "router", "shared_expert_gate"}


@dataclass
class LoraTargets:
    """What LoRA trains in a model: ``modules`` (PEFT ``target_modules``), ``parameters`` (PEFT
    ``target_parameters``: mixture-of-experts expert tensors stored as 3-D parameters) and why."""

    family: str
    modules: list[str]
    parameters: list[str] = field(default_factory=list)
    note: str = ""

    def lora_kwargs(self) -> dict[str, Any]:
        """The ``LoraConfig`` arguments: ``target_modules`` and, for MoE experts, ``target_parameters``."""
        return {"target_modules": self.modules, **({"target_parameters": self.parameters} if self.parameters else {})}


def _linear_leaf_names(model) -> dict[str, str]:
    """Leaf name -> one full name, for every linear layer inside the transformer blocks (``lm_head`` excluded)."""
    import torch

    out: dict[str, str] = {}
    for name, module in model.named_modules():
        leaf = name.rsplit(".", 1)[-1]
        if ".lora_" in name or leaf == "base_layer":  # inside a PEFT LoRA wrapper: the wrapper stands for it
            continue
        is_linear = (isinstance(module, torch.nn.Linear) or hasattr(module, "base_layer")
                     or type(module).__name__ in ("Linear4bit", "Linear8bitLt"))
        if is_linear and ".layers." in f".{name}" and leaf not in ("lm_head",) and not leaf.isdigit():
            out.setdefault(leaf, name)
    return out


def lora_targets(model) -> LoraTargets:
    """Every projection of the model's blocks, by family, and never a silent subset.

    - Llama, Qwen2, Mistral, Gemma: the seeds' seven projections ``q k v o gate up down``;
    - fused layouts (Phi-3): ``qkv_proj o_proj gate_up_proj down_proj``;
    - mixture of experts: the attention projections, any shared-expert/dense MLP projections, and the experts:
      as modules (``w1 w2 w3``) when each expert is a linear layer, or as PEFT ``target_parameters`` when
      transformers stores them as 3-D tensors (Mixtral and Qwen2-MoE in transformers 5: ``experts.gate_up_proj``,
      ``experts.down_proj``). Routers (``gate``) are left out on purpose, and the note says so.

    A linear layer in the blocks that none of these names covers is an error naming it (pass ``target_modules``).
    Example: ``lora_targets(llama).modules == LLAMA_TARGET_MODULES``.
    """
    import torch

    linears = _linear_leaf_names(model)
    wanted = LLAMA_TARGET_MODULES + [m for m in FUSED_TARGET_MODULES if m not in LLAMA_TARGET_MODULES]
    modules = [m for m in wanted + EXPERT_LINEAR_NAMES if m in linears]
    expert_params: list[str] = []
    for name, module in model.named_modules():
        if name.rsplit(".", 1)[-1] == "experts" and not isinstance(module, torch.nn.ModuleList):
            for pname, param in module.named_parameters(recurse=False):
                if param.dim() == 3:
                    entry = f"experts.{pname}"
                    if entry not in expert_params:
                        expert_params.append(entry)
    uncovered = sorted(set(linears) - set(modules) - ROUTER_NAMES)
    if not modules and not expert_params:
        raise FtlabError(
            f"{type(model).__name__}: none of the known projections ({', '.join(wanted + EXPERT_LINEAR_NAMES)}) "
            "exist in this model; pass target_modules=[...] with names from model.named_modules() "
            "(MoE models name experts differently)")
    if uncovered:
        raise FtlabError(
            f"{type(model).__name__}: these linear layers would not get LoRA: {', '.join(uncovered)} "
            f"(ftlab knows {', '.join(modules)}); pass target_modules=[...] naming every projection you want "
            "trained, from model.named_modules()")
    routers = sorted(set(linears) & ROUTER_NAMES)
    moe = bool(expert_params) or any(m in modules for m in EXPERT_LINEAR_NAMES)
    if moe:
        family = "mixture of experts"
        note = ("MoE: LoRA on the attention projections and on every expert"
                + (f" (3-D expert tensors through PEFT target_parameters: {', '.join(expert_params)})" if expert_params else "")
                + "; the router stays frozen on purpose (training it destabilizes routing)")
    elif "qkv_proj" in modules:
        family, note = "fused projections", "fused q/k/v and gate/up projections (Phi-3 layout)"
    else:
        family, note = "dense (Llama layout)", "the seven projections of each block (seed 001)"
    if routers and not moe:
        note += f"; routers left frozen: {', '.join(routers)}"
    return LoraTargets(family=family, modules=modules, parameters=expert_params, note=note)


def target_modules_for(model) -> list[str]:
    """The LoRA ``target_modules`` of ``model`` (see :func:`lora_targets`, which also gives MoE expert tensors).

    Example: ``target_modules_for(llama) == ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj",
    "down_proj"]``; Phi-3 gives ``["qkv_proj", "o_proj", "gate_up_proj", "down_proj"]``.
    """
    return lora_targets(model).modules


def first_lora_module(model) -> tuple[str, Any]:
    """The first module LoRA targets, as ``(full name, module)``: shows what a projection became (``Linear4bit``,
    ``lora.Linear``) without hard-coding a model's module path.

    Example: ``first_lora_module(llama)[0] == "model.layers.0.self_attn.q_proj"``.
    """
    targets = lora_targets(model)
    for name, module in model.named_modules():
        leaf = name.rsplit(".", 1)[-1]
        if leaf in targets.modules and "." in name:
            return name, module
    raise FtlabError(f"{type(model).__name__}: no module named {targets.modules[0]!r} (found by lora_targets)")


def quantization_config(kind: str, quant_storage: str | None = None):
    """A ``BitsAndBytesConfig`` for ``"4bit"`` (nf4, double quant) or ``"8bit"``; ``None`` for ``"none"``.

    The compute dtype is bf16 on CUDA and fp32 on the CPU. ``quant_storage="bfloat16"`` stores the packed
    4-bit codes as bf16 tensors (four codes per element) so that FSDP can shard them, the FSDP + QLoRA
    recipe of https://huggingface.co/docs/bitsandbytes/main/fsdp_qlora; the model must then be loaded in
    the same dtype (``load_base`` does).
    """
    if kind == "none":
        return None
    import torch
    from transformers import BitsAndBytesConfig

    compute = torch.bfloat16 if torch.cuda.is_available() else torch.float32
    if kind == "8bit":
        return BitsAndBytesConfig(load_in_8bit=True)
    extra: dict[str, Any] = {}
    if quant_storage:
        extra["bnb_4bit_quant_storage"] = getattr(torch, quant_storage)
    return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                              bnb_4bit_compute_dtype=compute, **extra)


def distributed_env() -> dict[str, Any]:
    """How this process was launched: ``{"world_size", "rank", "local_rank", "fsdp"}`` from the variables that
    ``accelerate launch`` / ``torchrun`` set (``WORLD_SIZE``, ``RANK``, ``LOCAL_RANK``, ``ACCELERATE_USE_FSDP``).

    A plain ``python`` run is ``{"world_size": 1, "rank": 0, "local_rank": 0, "fsdp": False}``.
    """
    return {"world_size": int(os.environ.get("WORLD_SIZE", "1")), "rank": int(os.environ.get("RANK", "0")),
            "local_rank": int(os.environ.get("LOCAL_RANK", "0")),
            "fsdp": os.environ.get("ACCELERATE_USE_FSDP", "").lower() in ("1", "true")}


def use_cuda(device: str = "auto") -> bool:
    """Whether training runs on CUDA: ``device="auto"`` when a GPU is visible, never for ``device="cpu"``.

    Example: ``use_cuda("cpu") is False`` on any machine.
    """
    if device == "cpu":
        return False
    import torch

    return torch.cuda.is_available()


def default_device_map(quantized: bool, cuda: bool | None = None) -> Any:
    """Where ``from_pretrained`` puts a model. On the CPU: ``"cpu"`` for a quantized model, None (the CPU) otherwise.
    On CUDA, one process: ``"auto"`` for a quantized model, the first visible GPU (``{"": 0}``) for an unquantized one
    (a small model is not worth splitting across GPUs, and the trainer then keeps it where it is). Under DDP each
    process holds a whole copy on its own GPU, ``{"": local_rank}`` (transformers refuses to train a
    ``device_map="auto"`` model in a distributed run). Under FSDP none: FSDP places the shards, and with
    ``fsdp_cpu_ram_efficient_loading`` only rank 0 reads the weights (the PEFT FSDP + QLoRA guide,
    https://huggingface.co/docs/peft/accelerate/fsdp).

    Example: ``default_device_map(False, cuda=True) == {"": 0}`` on a one-GPU machine.
    """
    if cuda is None:
        import torch

        cuda = torch.cuda.is_available()
    if not cuda:
        return "cpu" if quantized else None
    env = distributed_env()
    if env["fsdp"]:
        return None
    if env["world_size"] > 1 or not quantized:
        return {"": env["local_rank"]}
    return "auto"


_device_map = default_device_map  # the old private name


def load_base(model_id: str, quantization: str = "4bit", *, seed: int = 0, attn_implementation: str | None = None,
              quant_storage: str | None = None, device: str = "auto", dtype: str | None = None):
    """Load a base model and tokenizer through ``from_pretrained``, quantized for QLoRA.

    Returns ``(model, tokenizer, resolved_path)``; the toy model id resolves to its cached folder.
    ``quant_storage`` (e.g. ``"bfloat16"`` for FSDP) also sets the model's dtype, as FSDP needs one float
    dtype throughout a wrapped unit. ``device="cpu"`` keeps the model on the CPU in float32 on a GPU machine too.
    ``dtype`` (e.g. ``"float32"``) overrides the float dtype: bf16 on CUDA and float32 on the CPU otherwise.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = resolve_model(model_id, seed=seed)
    cuda = use_cuda(device)
    try:
        tokenizer = AutoTokenizer.from_pretrained(path)
        kwargs: dict[str, Any] = {}
        q = quantization_config(quantization, quant_storage)
        device_map = default_device_map(q is not None, cuda)
        if q is not None:
            kwargs["quantization_config"] = q
        if device_map is not None:
            kwargs["device_map"] = device_map
        kwargs["dtype"] = getattr(torch, dtype) if dtype else torch.bfloat16 if cuda else torch.float32
        if q is not None and quant_storage and quant_storage != "uint8":
            kwargs["dtype"] = getattr(torch, quant_storage)
        if attn_implementation:
            kwargs["attn_implementation"] = attn_implementation
        model = AutoModelForCausalLM.from_pretrained(path, **kwargs)
    except OSError as exc:
        raise FtlabError(
            f"cannot load model {model_id!r}: {str(exc).splitlines()[0]} "
            f"(give a local folder, a hub id with network access, or {TOY_MODEL_ID!r})"
        ) from None
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tune_cpu_threads(sum(p.numel() for p in model.parameters()))
    return model, tokenizer, path


# Generation-tagged ChatML training templates, for ChatML families whose templates TRL does not patch. Each renders
# exactly like the model's own template (checked on the data before use) and marks the assistant's reply + <|im_end|>.
def _chatml_training_template(default_system: str | None) -> str:
    first = ("{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\\n"
             + default_system + "<|im_end|>\\n' }}{% endif %}") if default_system else ""
    return ("{% for message in messages %}" + first
            + "{% if message['role'] == 'assistant' %}{{ '<|im_start|>assistant\\n' }}"
            "{% generation %}{{ message['content'] + '<|im_end|>' }}{% endgeneration %}{{ '\\n' }}"
            "{% else %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
            "{% endif %}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}")


FTLAB_TRAINING_TEMPLATES = {
    "SmolLM2 (ChatML)": _chatml_training_template("You are a helpful AI assistant named SmolLM, trained by Hugging Face"),
    "Qwen2 (ChatML)": _chatml_training_template("You are a helpful assistant."),
    "ChatML": _chatml_training_template(None),
}
LOSS_MODES = ("auto", "assistant_only", "completion_only", "all")


@dataclass
class LossMask:
    """Which tokens the loss sees. ``mode``: ``assistant_only`` (every assistant turn, through a template with
    ``{% generation %}``), ``completion_only`` (the last assistant message of each conversation: the fallback
    for templates ftlab has no generation-tagged version of), or ``all``. ``template``: the chat template to
    train with (None: the tokenizer's own); ``source`` says where it came from."""

    mode: str
    template: str | None
    source: str

    def describe(self) -> str:
        what = {"assistant_only": "assistant-only loss (every assistant turn)",
                "completion_only": "completion-only loss (the last assistant message of each conversation)",
                "all": "loss on every token"}[self.mode]
        return f"{what}; {self.source}"

    def to_dict(self) -> dict[str, Any]:
        return {"mode": self.mode, "source": self.source, "description": self.describe()}


def _has_generation(template: str | None) -> bool:
    import re

    return bool(template) and re.search(r"\{%-?\s*generation\s*-?%\}", template) is not None


def _renders_like(tokenizer, template: str, rows: Sequence[dict[str, Any]]) -> bool:
    """True when ``template`` renders the rows (and their prompts) exactly as the tokenizer's own template does."""
    try:
        for row in list(rows)[:8]:
            msgs = row["messages"]
            for m, gen in ((msgs, False), (msgs[:-1], True)):
                if not m:
                    continue
                own = tokenizer.apply_chat_template(m, tokenize=False, add_generation_prompt=gen)
                other = tokenizer.apply_chat_template(m, tokenize=False, add_generation_prompt=gen, chat_template=template)
                if own != other:
                    return False
    except Exception:  # a template that cannot render these rows
        return False
    return True


def choose_loss_mask(tokenizer, rows: Sequence[dict[str, Any]], loss: str = "auto") -> LossMask:
    """Pick how to mask the loss, as TRL 1.x does for known families, and say which was used.

    ``auto``: the tokenizer's template if it has ``{% generation %}``; else TRL's training template for its family
    (Llama 3, Qwen2.5/3, Gemma, Phi-3, ...; ``trl.chat_template_utils.get_training_chat_template``); else ftlab's
    generation-tagged ChatML variants (SmolLM2, Qwen2, plain ChatML); any of them only if it renders the data
    exactly like the model's own template. Otherwise completion-only loss on the last assistant message.
    ``assistant_only`` forces the tokenizer's own template (every label masked if it has no markers: the
    pre-flight then stops); ``completion_only`` and ``all`` are taken as given.
    Example: ``choose_loss_mask(smollm2_tokenizer, rows).source`` names ftlab's SmolLM2 (ChatML) template.
    """
    if loss not in LOSS_MODES:
        raise FtlabError(f"loss={loss!r}: use one of {', '.join(LOSS_MODES)}")
    if loss == "all":
        return LossMask("all", None, "every token of the conversation is trained")
    if loss == "completion_only":
        return LossMask("completion_only", None, "asked for (loss='completion_only')")
    own = tokenizer.chat_template if isinstance(tokenizer.chat_template, str) else None
    if loss == "assistant_only" or _has_generation(own):
        return LossMask("assistant_only", None, "the model's own chat template marks assistant turns "
                        "with {% generation %}" if _has_generation(own) else "the model's own chat template (forced)")
    rows = [rows[i] for i in range(len(rows))] if hasattr(rows, "column_names") else list(rows)
    try:
        from trl.chat_template_utils import get_training_chat_template

        trl_template = get_training_chat_template(tokenizer)
    except Exception:  # TRL could not inspect this template
        trl_template = None
    if trl_template and _renders_like(tokenizer, trl_template, rows):
        return LossMask("assistant_only", trl_template, "TRL's generation-tagged training template for this family")
    for name, template in FTLAB_TRAINING_TEMPLATES.items():
        if _renders_like(tokenizer, template, rows):
            return LossMask("assistant_only", template, f"ftlab's generation-tagged {name} training template "
                            "(renders exactly like the model's own)")
    if rows and all(r["messages"] and r["messages"][-1]["role"] == "assistant" for r in rows):
        return LossMask("completion_only", None, "no generation-tagged version of this chat template is known, "
                        "so only the last assistant message of each conversation is trained")
    raise FtlabError("pre-flight: this chat template has no {% generation %} markers and no known training version, "
                     "and some conversations do not end with an assistant message (completion-only loss needs that): "
                     "end every example with the assistant reply, or pass a template with {% generation %}")


def _masked_ids(tokenizer, messages, mask: LossMask) -> tuple[list[int], list[int]]:
    """Token ids of a conversation and which of them the loss sees (1) under ``mask``."""
    if mask.mode == "completion_only":
        prompt = list(tokenizer.apply_chat_template(messages[:-1], tokenize=True, return_dict=True,
                                                    add_generation_prompt=True)["input_ids"])
        ids = list(tokenizer.apply_chat_template(messages, tokenize=True, return_dict=True)["input_ids"])
        n = 0
        while n < min(len(prompt), len(ids)) and prompt[n] == ids[n]:
            n += 1
        return ids, [0] * n + [1] * (len(ids) - n)
    if mask.mode == "all":
        ids = list(tokenizer.apply_chat_template(messages, tokenize=True, return_dict=True)["input_ids"])
        return ids, [1] * len(ids)
    kwargs = {"chat_template": mask.template} if mask.template else {}
    enc = tokenizer.apply_chat_template(messages, tokenize=True, return_dict=True, return_assistant_tokens_mask=True,
                                        **kwargs)
    return list(enc["input_ids"]), list(enc["assistant_masks"])


def preflight_loss_mask(tokenizer, rows: Sequence[dict[str, Any]], *, assistant_only_loss: bool = True,
                        max_length: int = 128, show: int = 1, loss: str = "auto") -> dict[str, Any]:
    """Check which tokens will be trained on, before training. Fails loudly on the two silent killers.

    - every label masked (the chat template has no ``{% generation %}`` block, or max_length cuts the reply);
    - no EOS trained (the model never learns to stop).

    ``loss`` picks the masking (:func:`choose_loss_mask`; ``assistant_only_loss=False`` means ``"all"``).
    Returns ``{"trained_tokens", "total_tokens", "eos_trained", "example", "loss_mask"}`` where ``example``
    shows the first conversation with trained tokens in ``[[...]]`` and ``loss_mask`` is the :class:`LossMask`.
    """
    mask_kind = choose_loss_mask(tokenizer, rows, loss if assistant_only_loss else "all")
    trained = total = 0
    eos_trained = False
    example = ""
    for i, row in enumerate(rows[: max(8, show)]):
        ids, mask = _masked_ids(tokenizer, row["messages"], mask_kind)
        ids, mask = ids[:max_length], mask[:max_length]
        trained += sum(mask)
        total += len(ids)
        eos_trained |= any(m and t == tokenizer.eos_token_id for t, m in zip(ids, mask, strict=True))
        if i < show:
            parts, cur, cur_m = [], [], None
            for t, m in zip(ids, mask, strict=True):
                if cur and m != cur_m:
                    text = tokenizer.decode(cur)
                    parts.append(f"[[{text}]]" if cur_m else text)
                    cur = []
                cur.append(t)
                cur_m = m
            if cur:
                text = tokenizer.decode(cur)
                parts.append(f"[[{text}]]" if cur_m else text)
            example = "".join(parts)
    if trained == 0:
        raise FtlabError(
            "pre-flight: every label is masked, so training would learn nothing. The chat template must mark "
            "assistant turns with {% generation %} for assistant_only_loss=True, and max_length must not cut the replies."
        )
    if not eos_trained:
        raise FtlabError(
            "pre-flight: no EOS token is trained, so the model would never learn to stop. Make the chat template "
            "emit eos_token inside the {% generation %} block of assistant turns."
        )
    return {"trained_tokens": trained, "total_tokens": total, "eos_trained": eos_trained, "example": example,
            "loss_mask": mask_kind}


def heldout_loss(model, tokenizer, rows: Sequence[dict[str, Any]], *, max_length: int = 128, loss: str = "auto",
                 batch_size: int = 8) -> float:
    """Mean cross-entropy per trained token on held-out rows, masked exactly as training masks them
    (:func:`choose_loss_mask`): the same quantity as the trainer's ``eval_loss``, for a model before or after.

    Example: ``heldout_loss(base, tok, eval_rows) > heldout_loss(tuned, tok, eval_rows)`` after a good run.
    """
    import torch

    rows = list(rows)
    kind = choose_loss_mask(tokenizer, rows, loss)
    device = next(model.parameters()).device
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    total, count = 0.0, 0
    was_training = model.training
    model.eval()
    try:
        for start in range(0, len(rows), batch_size):
            encoded = [_masked_ids(tokenizer, r["messages"], kind) for r in rows[start:start + batch_size]]
            encoded = [(ids[:max_length], mask[:max_length]) for ids, mask in encoded]
            width = max(len(ids) for ids, _ in encoded)
            ids = torch.tensor([i + [pad] * (width - len(i)) for i, _ in encoded], device=device)
            att = torch.tensor([[1] * len(i) + [0] * (width - len(i)) for i, _ in encoded], device=device)
            keep = torch.tensor([m + [0] * (width - len(m)) for _, m in encoded], device=device).bool()
            with torch.no_grad():
                logits = model(input_ids=ids, attention_mask=att).logits[:, :-1].float()
            sel = keep[:, 1:]
            total += torch.nn.functional.cross_entropy(logits[sel], ids[:, 1:][sel], reduction="sum").item()
            count += int(sel.sum())
    finally:
        model.train(was_training)
    return total / max(count, 1)


def heldout_metrics(model, tokenizer, rows: Sequence[dict[str, Any]], *, loss_rows: Sequence[dict[str, Any]] | None = None,
                    max_length: int = 128, support_score: bool = False, max_new_tokens: int | None = None
                    ) -> dict[str, Any]:
    """Scores of one model on held-out rows: ``eval_loss`` (:func:`heldout_loss` on ``loss_rows``, default
    ``rows``), ``exact_match`` (normalized reply == the held-out assistant message, ``ftlab.userdata``),
    ``target_accuracy`` (the toy support-reply score, with ``support_score``; else None) and the ``replies``.

    Example: ``heldout_metrics(tuned, tok, test, support_score=True)["target_accuracy"]`` is notebook 04's
    ``target_accuracy_after``.
    """
    from ftlab.generation import chat_generate
    from ftlab.probes import target_accuracy
    from ftlab.userdata import exact_match, reference_reply

    rows = list(rows)
    target = None
    if support_score:
        target, replies = target_accuracy(model, tokenizer, rows, max_new_tokens=max_new_tokens or 32)
    else:
        longest = max(len(tokenizer(reference_reply(r), add_special_tokens=False)["input_ids"]) for r in rows)
        replies = chat_generate(model, tokenizer, [r["messages"] for r in rows], max_new_tokens=max_new_tokens or longest + 8)
    return {"eval_loss": heldout_loss(model, tokenizer, loss_rows if loss_rows is not None else rows, max_length=max_length),
            "exact_match": exact_match(replies, rows), "target_accuracy": target, "replies": replies}


@functools.cache
def _overfit_detector_cls():
    from transformers import TrainerCallback

    class OverfitDetector(TrainerCallback):
        """Stop when validation loss has risen for ``patience`` evaluations in a row (seed 001: patience=3).

        Training keeps the best checkpoint through transformers' own ``load_best_model_at_end``;
        this callback adds the stopping rule and the diagnosis text.
        """

        def __init__(self, patience: int = 3, min_delta: float = 0.0):
            self.patience = patience
            self.min_delta = min_delta
            self.history: list[tuple[int, float]] = []
            self.rises = 0
            self.triggered_at: int | None = None
            self.message = ""

        def update(self, step: int, eval_loss: float) -> bool:
            """Feed one evaluation; returns True when training should stop."""
            if self.history and eval_loss > self.history[-1][1] + self.min_delta:
                self.rises += 1
            else:
                self.rises = 0
            self.history.append((step, eval_loss))
            if self.rises >= self.patience and self.triggered_at is None:
                best_step, best = min(self.history, key=lambda x: x[1])
                self.triggered_at = step
                self.message = (
                    f"OVERFITTING: validation loss rose {self.rises} evaluations in a row (now {eval_loss:.4f}, "
                    f"best {best:.4f} at step {best_step}). Stop; keep the step-{best_step} checkpoint; "
                    "reduce epochs or add more diverse data."
                )
                return True
            return False

        def on_evaluate(self, args, state, control, metrics=None, **kwargs):
            if metrics and "eval_loss" in metrics and self.update(state.global_step, float(metrics["eval_loss"])):
                control.should_training_stop = True
            return control

    return OverfitDetector


@functools.cache
def _divergence_guard_cls():
    from transformers import TrainerCallback

    class DivergenceGuard(TrainerCallback):
        def __init__(self) -> None:
            self.diverged_at: int | None = None
            self.last_log: dict[str, Any] = {}

        def on_log(self, args, state, control, logs=None, **kwargs):
            self.last_log = dict(logs or {})

        def on_step_end(self, args, state, control, model=None, **kwargs):
            if model is None or self.diverged_at is not None:
                return control
            if any(p.requires_grad and not p.detach().isfinite().all() for p in model.parameters()):
                self.diverged_at = state.global_step
                control.should_training_stop = True
            return control

        def check(self, what: str, lr_param: str, learning_rate: float) -> None:
            """Raise a clear ``FtlabError`` if training left non-finite weights (nothing is saved then)."""
            if self.diverged_at is None:
                return
            seen = {k: self.last_log[k] for k in ("loss", "grad_norm") if k in self.last_log}
            if self.diverged_at <= 1:  # one update of a sane LR cannot overflow: the gradient itself was NaN/inf
                raise FtlabError(f"{what}: the first update left NaN/inf weights (last log {seen}), so the gradient "
                                 "itself was not finite: a numerical problem (attention kernel, dtype), not the LR. "
                                 "Nothing was saved. Train in float32 or with attn_implementation='eager' to check.")
            raise FtlabError(f"{what} diverged at step {self.diverged_at}: the trainable weights became NaN/inf "
                             f"(last log {seen}); the run was stopped and nothing was saved. Lower {lr_param} "
                             f"(now {learning_rate:g}; try {learning_rate / 10:g}) and run the cell again.")

    return DivergenceGuard


# OverfitDetector and DivergenceGuard are TrainerCallback classes, created on first use (module __getattr__), so
# that importing ftlab.train does not import transformers' Trainer.
_LAZY_CLASSES = {"OverfitDetector": "_overfit_detector_cls", "DivergenceGuard": "_divergence_guard_cls"}


def __getattr__(name: str):
    """``OverfitDetector(patience=3, min_delta=0.0)``: stops training when validation loss rises ``patience`` evals
    in a row (``d.update(step, loss)`` feeds one by hand). ``DivergenceGuard()``: stops at the first step that leaves
    a trainable weight NaN or inf; ``guard.check(what, lr_param, lr)`` then raises a clear error.

    Example::

        d = OverfitDetector(patience=3)
        [d.update(s, l) for s, l in [(1, 1.0), (2, 0.9), (3, 0.95), (4, 1.0), (5, 1.1)]][-1]  # -> True
    """
    if name in _LAZY_CLASSES:
        cls = globals()[_LAZY_CLASSES[name]]()
        globals()[name] = cls
        return cls
    raise AttributeError(f"module 'ftlab.train' has no attribute {name!r}")


def _as_dataset(rows):
    from datasets import Dataset

    if rows is None:
        return None
    if hasattr(rows, "column_names"):
        return rows.select_columns(["messages"])
    return Dataset.from_list([{"messages": r["messages"]} for r in rows])


def _as_prompt_completion(ds):
    """``{"messages"}`` rows as TRL's conversational prompt-completion rows (the last message is the completion)."""
    if ds is None:
        return None
    return ds.map(lambda r: {"prompt": r["messages"][:-1], "completion": r["messages"][-1:]},
                  remove_columns=["messages"])


def data_fingerprint(rows: Sequence[dict[str, Any]] | None, data_file: str | None = None) -> str:
    """sha256 of the training file if given, else a hash of the examples' messages."""
    if data_file and Path(data_file).exists():
        return "sha256:" + file_sha256(data_file)
    if rows is None:
        return ""
    return "hash:" + stable_hash([r["messages"] for r in rows], 16)


def sft_config(cfg: TrainConfig, *, has_eval: bool, extra: dict[str, Any] | None = None):
    """The TRL ``SFTConfig`` for a ``TrainConfig`` (bf16 + paged 8-bit AdamW on CUDA, fp32 AdamW on CPU)."""
    from trl import SFTConfig

    cuda = use_cuda(cfg.device)
    kwargs: dict[str, Any] = dict(
        output_dir=cfg.output_dir,
        learning_rate=cfg.learning_rate,
        num_train_epochs=cfg.num_train_epochs,
        max_steps=cfg.max_steps,
        per_device_train_batch_size=cfg.per_device_train_batch_size,
        per_device_eval_batch_size=max(cfg.per_device_train_batch_size, 32),
        gradient_accumulation_steps=cfg.gradient_accumulation_steps,
        max_length=cfg.max_length,
        packing=cfg.packing,
        assistant_only_loss=cfg.assistant_only_loss,
        logging_steps=cfg.logging_steps,
        save_strategy="steps",
        save_steps=cfg.save_steps,
        save_total_limit=cfg.save_total_limit,
        lr_scheduler_type=cfg.lr_scheduler_type,
        warmup_steps=cfg.warmup_ratio,
        weight_decay=cfg.weight_decay,
        seed=cfg.seed,
        data_seed=cfg.seed,
        report_to=[] if cfg.report_to == "none" else [cfg.report_to],
        bf16=cuda,
        optim="paged_adamw_8bit" if cuda else "adamw_torch",
        gradient_checkpointing=cfg.gradient_checkpointing,
        use_cpu=not cuda,
        dataloader_num_workers=0,
        disable_tqdm=False,
        logging_first_step=True,
        logging_nan_inf_filter=False,  # a diverged run logs NaN, not a misleading 0.0 (the diagnoser needs it)
    )
    if has_eval and cfg.eval_steps:
        kwargs.update(eval_strategy="steps", eval_steps=cfg.eval_steps, load_best_model_at_end=True,
                      metric_for_best_model="eval_loss", greater_is_better=False)
    kwargs.update(cfg.extra if extra is None else extra)
    kwargs.pop("model_init_kwargs", None)  # the model is loaded by load_base, which takes attn_implementation
    return SFTConfig(**kwargs)


def last_complete_checkpoint(output_dir: str | os.PathLike[str]) -> Path | None:
    """The newest ``checkpoint-N`` folder that was written to the end, or ``None``.

    The Trainer writes ``trainer_state.json`` last, so a checkpoint is complete when that file parses
    and names step N. A run killed while saving leaves a newer, partial folder that the Trainer's own
    ``resume_from_checkpoint=True`` would pick (it takes the highest number); this skips it.
    Example: with ``checkpoint-8`` complete and ``checkpoint-16`` cut short, returns ``…/checkpoint-8``.
    """
    found = []
    for d in Path(output_dir).glob("checkpoint-*"):
        step = d.name.removeprefix("checkpoint-")
        if not (d.is_dir() and step.isdigit()):
            continue
        try:
            state = json.loads((d / "trainer_state.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if state.get("global_step") == int(step) and any(d.glob("*.safetensors")):
            found.append((int(step), d))
    return max(found)[1] if found else None


def train(cfg: TrainConfig, train_rows, eval_rows=None, *, callbacks: Sequence[Any] = (),
          data_file: str | None = None) -> TrainResult:
    """Train a (Q)LoRA adapter with TRL's ``SFTTrainer`` and write a run card.

    ``train_rows``/``eval_rows`` are lists of ``{"messages": [...]}`` (or ``datasets.Dataset``).
    Returns a ``TrainResult``; the adapter (the best checkpoint when validation data is given)
    is saved in ``<output_dir>/adapter``.
    """
    from peft import LoraConfig, prepare_model_for_kbit_training
    from trl import SFTTrainer

    cfg.validate()
    seed_everything(cfg.seed)
    started = time.perf_counter()
    extra = dict(cfg.extra)
    attn = cfg.attn_implementation or extra.pop("model_init_kwargs", {}).get("attn_implementation")
    model, tokenizer, path = load_base(cfg.model_id, cfg.quantization, seed=cfg.toy_seed, attn_implementation=attn,
                                       quant_storage=cfg.bnb_4bit_quant_storage, device=cfg.device)
    rows_list = list(train_rows) if not hasattr(train_rows, "column_names") else train_rows
    preflight = preflight_loss_mask(tokenizer, rows_list, assistant_only_loss=cfg.assistant_only_loss,
                                    max_length=cfg.max_length)
    loss_mask = preflight.pop("loss_mask")
    print(f"loss mask: {loss_mask.describe()}")
    own_template = tokenizer.chat_template
    train_ds, eval_ds = _as_dataset(rows_list), _as_dataset(eval_rows)
    if loss_mask.template:  # a generation-tagged version of the model's template: TRL masks with it
        tokenizer.chat_template = loss_mask.template
    if loss_mask.mode == "completion_only":  # TRL's prompt-completion format: the loss sees the completion only
        train_ds, eval_ds = _as_prompt_completion(train_ds), _as_prompt_completion(eval_ds)
        extra.update(assistant_only_loss=False, completion_only_loss=True)
    if cfg.quantization != "none" and cfg.kbit_prep:
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=cfg.gradient_checkpointing)
    elif cfg.gradient_checkpointing:
        model.enable_input_require_grads()
    targets = LoraTargets("given", list(cfg.target_modules), note="target_modules given") if cfg.target_modules \
        else lora_targets(model)
    lora = LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout, task_type="CAUSAL_LM",
                      **targets.lora_kwargs())
    detector = _overfit_detector_cls()(cfg.overfit_patience) if (eval_rows is not None and cfg.overfit_patience) else None
    all_callbacks = list(callbacks) + ([detector] if detector else [])
    args = sft_config(cfg, has_eval=eval_rows is not None, extra=extra)
    trainer = SFTTrainer(model=model, args=args, train_dataset=train_ds, eval_dataset=eval_ds,
                         processing_class=tokenizer, peft_config=lora, callbacks=all_callbacks)
    resume = cfg.resume_from_checkpoint
    if resume is True:  # the newest complete checkpoint (None: start from scratch)
        last = last_complete_checkpoint(cfg.output_dir)
        resume = str(last) if last else None
    trainer.train(resume_from_checkpoint=resume)
    tokenizer.chat_template = own_template  # the saved tokenizer keeps the model's own template
    state = trainer.state
    history = state.log_history
    train_loss = [(h["step"], h["loss"]) for h in history if "loss" in h]
    eval_loss = [(h["step"], h["eval_loss"]) for h in history if "eval_loss" in h]
    if detector and detector.triggered_at is not None:
        stop_reason = "overfitting: " + detector.message
    elif args.max_steps > 0 and state.global_step >= args.max_steps:
        stop_reason = f"completed max_steps={args.max_steps}"
    else:
        stop_reason = f"completed {cfg.num_train_epochs:g} epoch(s)"
    best_step = best = None
    if eval_loss:
        best_step, best = min(eval_loss, key=lambda x: x[1])
    out = Path(cfg.output_dir)
    adapter_dir = out / "adapter"
    if trainer.is_fsdp_enabled:  # gather the sharded adapter into one file (the PEFT FSDP guide's last step)
        trainer.accelerator.state.fsdp_plugin.set_state_dict_type("FULL_STATE_DICT")
    trainer.save_model(str(adapter_dir))  # the best model when load_best_model_at_end; rank 0 writes
    state_path = out / "trainer_state.json"
    main_process = trainer.is_world_process_zero()
    if main_process:  # under accelerate launch every rank gets here; one of them writes
        tokenizer.save_pretrained(str(adapter_dir))
        state.save_to_json(str(state_path))
    seconds = time.perf_counter() - started
    world = trainer.accelerator.num_processes
    card = {
        "run_name": out.name,
        "model": {"model_id": cfg.model_id, "resolved": str(path), "quantization": cfg.quantization},
        "data": {"fingerprint": data_fingerprint(rows_list if isinstance(rows_list, list) else None, data_file),
                 "version": cfg.data_version, "n_train": len(rows_list),
                 "n_eval": len(eval_rows) if eval_rows is not None else 0, "file": data_file},
        "hyperparameters": {k: v for k, v in asdict(cfg).items() if k not in ("output_dir",)},
        "preflight": {k: v for k, v in preflight.items() if k != "example"},
        "loss_mask": loss_mask.to_dict(),
        "lora_targets": {"family": targets.family, "modules": targets.modules, "parameters": targets.parameters,
                         "note": targets.note},
        "libraries": library_versions(),
        "hardware": hardware(),
        "distributed": {"processes": world, "distributed_type": getattr(trainer.accelerator.distributed_type, "value",
                                                          str(trainer.accelerator.distributed_type)),
                        "effective_batch": cfg.per_device_train_batch_size * cfg.gradient_accumulation_steps * world},
        "seed": cfg.seed,
        "results": {"final_train_loss": train_loss[-1][1] if train_loss else None,
                    "final_eval_loss": eval_loss[-1][1] if eval_loss else None,
                    "best_eval_loss": best, "best_step": best_step, "global_step": state.global_step,
                    "stop_reason": stop_reason, "seconds": round(seconds, 1)},
        "known_limitations": KNOWN_LIMITATIONS if cfg.model_id == TOY_MODEL_ID else [],
    }
    card_path = write_run_card(out, card) if main_process else out / "run_card.json"
    return TrainResult(str(out), str(adapter_dir), str(card_path), train_loss, eval_loss, stop_reason,
                       best_step, best, state.global_step, round(seconds, 2), str(state_path))


# Fields of TrainConfig that do not change the trained weights: left out of the cache key.
_NOT_IN_KEY = ("output_dir", "report_to", "resume_from_checkpoint")
_KEY_LIBRARIES = ("torch", "transformers", "trl", "peft", "bitsandbytes", "accelerate")


def training_key(cfg: TrainConfig, train_rows, eval_rows=None) -> str:
    """The cache key of a run: a hash of the config, the data, the base model and the library versions.

    Two calls with the same key train the same adapter, so ``train_cached`` reuses it. The toy
    model's resolved folder name carries the hash of its recipe and corpus, so a rebuilt toy base
    never reuses a stale adapter. Example: ``training_key(cfg, rows) == training_key(cfg, list(rows))``.
    """
    rows = list(train_rows) if not hasattr(train_rows, "column_names") else train_rows.to_list()
    evals = None if eval_rows is None else (list(eval_rows) if not hasattr(eval_rows, "column_names")
                                            else eval_rows.to_list())
    libs = library_versions()
    return stable_hash({
        # device "auto" stays out of the key, so adapters cached before the field existed are still found
        "config": {k: v for k, v in asdict(cfg).items() if k not in _NOT_IN_KEY and (k, v) != ("device", "auto")},
        "base": str(resolve_model(cfg.model_id, seed=cfg.toy_seed)),
        "train": data_fingerprint(rows), "eval": data_fingerprint(evals),
        "libraries": {k: libs.get(k) for k in _KEY_LIBRARIES},
    }, 16)


def train_cached(cfg: TrainConfig, train_rows, eval_rows=None, *, force: bool = False,
                 cache: str | os.PathLike[str] | None = None) -> TrainResult:
    """``train()``, but reuse the adapter of an identical earlier run (same ``training_key``).

    Runs live in ``$FTLAB_CACHE/adapters/<key>`` (``cfg.output_dir`` is ignored). A lock file makes a
    second process wait for the first one's training and then reuse it; a run killed halfway leaves no
    ``train_result.json`` and is trained again. Notebooks 06 and 07 use it to share one adapter::

        result = train_cached(TrainConfig(report_to="none"), data.support_splits(0)["train"])
        result.cached  # False the first time, True afterwards
    """
    key = training_key(cfg, train_rows, eval_rows)
    root = Path(cache) if cache else cache_dir("adapters")
    root.mkdir(parents=True, exist_ok=True)
    folder = root / key
    with folder_lock(folder):
        done = folder / "train_result.json"
        if done.exists() and not force:
            info = json.loads(done.read_text())
            if Path(info["adapter_dir"]).is_dir():
                info.update(cached=True, train_loss=[tuple(x) for x in info["train_loss"]],
                            eval_loss=[tuple(x) for x in info["eval_loss"]])
                return TrainResult(**info)
        shutil.rmtree(folder, ignore_errors=True)  # a half-written run, or force
        run_cfg = TrainConfig(**{**asdict(cfg), "output_dir": str(folder), "resume_from_checkpoint": None})
        result = train(run_cfg, train_rows, eval_rows)
        for ckpt in folder.glob("checkpoint-*"):  # the adapter is saved; checkpoints only cost disk
            shutil.rmtree(ckpt, ignore_errors=True)
        tmp = done.with_suffix(".tmp")
        tmp.write_text(json.dumps(result.to_dict(), indent=2))
        tmp.replace(done)
        return result


TRAINING_RECIPES = {
    "support": "the support training split only (notebook 04's narrow data)",
    "mixed": "the support split + 100 general-skill examples + 60 refusals, shuffled (ftlab.data.support_mix)",
}


def recipe_rows(recipe: str, toy_seed: int = 0) -> list[dict[str, Any]]:
    """The training rows of a named toy recipe (``TRAINING_RECIPES``)."""
    from ftlab.data import support_mix, support_splits

    if recipe == "support":
        return support_splits(toy_seed)["train"]
    if recipe == "mixed":
        return support_mix(toy_seed)
    raise FtlabError(f"recipe={recipe!r}: use one of {sorted(TRAINING_RECIPES)}")


def train_recipe(recipe: str = "mixed", *, toy_seed: int = 0, **config: Any) -> TrainResult:
    """Train (or reuse from the cache) an adapter on a named toy recipe, with the support validation split.

    ``config`` overrides ``TrainConfig`` fields. Notebooks 06 and 07 call it with the same arguments
    and so share one adapter. Example: ``train_recipe("support").adapter_dir``.
    """
    from ftlab.data import support_splits

    config.setdefault("report_to", "none")
    config.setdefault("eval_steps", 16)  # notebook 04's evaluation rhythm
    config.setdefault("save_steps", 32)
    config.setdefault("data_version", f"toy support v1, recipe {recipe!r} (seed {toy_seed})")
    cfg = TrainConfig(toy_seed=toy_seed, **config)
    return train_cached(cfg, recipe_rows(recipe, toy_seed), support_splits(toy_seed)["validation"])


def train_own(rows: Sequence[dict[str, Any]], *, data_file: str = "", toy_seed: int = 0, **config: Any) -> TrainResult:
    """Train (or reuse from the cache) an adapter on the learner's own rows, with no validation set: their
    held-out rows stay out of training entirely. ``config`` overrides ``TrainConfig`` fields.
    Example: ``train_own(load_user_data("my.jsonl")[0], data_file="my.jsonl", max_steps=10)``."""
    config.setdefault("report_to", "none")
    config.setdefault("data_version", f"your data: {Path(data_file).name} ({len(rows)} training rows)")
    return train_cached(TrainConfig(toy_seed=toy_seed, **config), list(rows), None)


def load_adapter(adapter_dir: str | os.PathLike[str], model_id: str | None = None, *, quantization: str = "none",
                 seed: int = 0):
    """Load base + LoRA adapter for inference. Returns ``(peft_model, tokenizer)``.

    ``model_id`` defaults to the base recorded in the adapter's config.
    """
    from peft import PeftModel

    adapter_dir = Path(adapter_dir)
    if model_id is None:
        model_id = json.loads((adapter_dir / "adapter_config.json").read_text())["base_model_name_or_path"]
    model, tokenizer, _ = load_base(model_id, quantization, seed=seed)
    return PeftModel.from_pretrained(model, str(adapter_dir)), tokenizer


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
