"""The model side: which modules LoRA targets, the quantization config, device placement, and loading a base
model or a trained adapter.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ftlab.core import tune_cpu_threads
from ftlab.errors import FtlabError
from ftlab.toymodel import TOY_MODEL_ID, resolve_model

__all__ = [
    "EXPERT_LINEAR_NAMES",
    "FUSED_TARGET_MODULES",
    "LLAMA_TARGET_MODULES",
    "ROUTER_NAMES",
    "LoraTargets",
    "default_device_map",
    "distributed_env",
    "first_lora_module",
    "load_adapter",
    "load_base",
    "lora_targets",
    "quantization_config",
    "target_modules_for",
    "use_cuda",
]


# The articles' seven projection modules of a Llama block.
LLAMA_TARGET_MODULES = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


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

    - Llama, Qwen2, Mistral, Gemma: the articles' seven projections ``q k v o gate up down``;
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
        family, note = "dense (Llama layout)", "the seven projections of each block (article 001)"
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


def load_adapter(adapter_dir: str | os.PathLike[str], model_id: str | None = None, *, quantization: str = "none",
                 seed: int = 0, merge: bool = False):
    """Load base + LoRA adapter for inference. Returns ``(peft_model, tokenizer)``.

    ``model_id`` defaults to the base recorded in the adapter's config. ``merge=True`` (full-precision base only)
    folds the adapter into the weights and returns the plain model: the same function (notebook 06 measures
    the merge at ~1e-4 logits from the unmerged adapter in float32), without the LoRA layers' extra work per
    token, so generation and scoring run faster (1.7x per request on the toy, notebook 06's latency figure).
    On a bfloat16 base (CUDA) the adapter stays unmerged: bfloat16 rounding would lose much of the update.
    Example: ``model, tok = load_adapter(result.adapter_dir, merge=True)`` to evaluate a trained adapter.
    """
    from peft import PeftModel

    adapter_dir = Path(adapter_dir)
    if model_id is None:
        model_id = json.loads((adapter_dir / "adapter_config.json").read_text())["base_model_name_or_path"]
    if merge and quantization != "none":
        raise FtlabError(f"load_adapter(merge=True) needs a full-precision base, not quantization={quantization!r} "
                         "(merging into a quantized base rounds the update away: see ftlab.merge.merge_adapter)")
    model, tokenizer, _ = load_base(model_id, quantization, seed=seed)
    peft_model = PeftModel.from_pretrained(model, str(adapter_dir))
    import torch

    if merge and model.dtype == torch.float32:  # a bfloat16 base (CUDA) stays unmerged: its rounding loses the update
        return peft_model.merge_and_unload(), tokenizer
    return peft_model, tokenizer
