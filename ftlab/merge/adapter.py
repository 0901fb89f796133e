"""Merging a LoRA adapter into its base (refusing a quantized base unless asked to dequantize it), and
loading the adapter unmerged to compare against.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ftlab.errors import FtlabError
from ftlab.train import load_base, quantization_config

__all__ = ["MERGE_DTYPE", "MergeInfo", "load_unmerged", "merge_adapter", "quantization_of"]


# ---------------------------------------------------------------------------------------------
# Merging
# ---------------------------------------------------------------------------------------------
def quantization_of(model) -> str | None:
    """A short description of how ``model``'s weights are quantized, or ``None`` for plain float weights.

    Detects bitsandbytes 4-bit/8-bit parameters and any transformers quantizer (GPTQ, AWQ, ...), also
    under a PEFT wrapper. Example: ``quantization_of(load_base(TOY_MODEL_ID, "4bit")[0]) == "bitsandbytes 4-bit (nf4)"``.
    """
    for p in model.parameters():
        kind = type(p).__name__
        if kind == "Params4bit":
            qs = getattr(p, "quant_state", None)
            return f"bitsandbytes 4-bit ({getattr(qs, 'quant_type', 'nf4') if qs else 'nf4'})"
        if kind == "Int8Params":
            return "bitsandbytes 8-bit"
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    qc = getattr(getattr(base, "config", None), "quantization_config", None)
    if qc is not None or getattr(base, "is_quantized", False):
        method = qc.get("quant_method") if isinstance(qc, dict) else getattr(qc, "quant_method", None)
        return f"{getattr(method, 'value', method) or 'quantized'}"
    return None


@dataclass
class MergeInfo:
    """How a merge was done."""

    base: str  # the base model id or folder
    precision: str  # e.g. "float32 (full-precision reload)" or "float32, dequantized from bitsandbytes 4-bit (nf4)"
    dequantized: bool
    lora_modules: int  # how many LoRA-wrapped layers were folded into their base weights
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _refuse_quantized(kind: str) -> FtlabError:
    return FtlabError(
        f"refusing to merge into a quantized base ({kind}): merge_and_unload would dequantize, add the LoRA "
        "update and re-quantize, rounding the update away. Reload the base in full precision with "
        "merge_adapter(adapter_dir), or pass dequantize=True to merge into the dequantized 4-bit weights on purpose"
    )


def merge_adapter(adapter, model_id: str | None = None, *, dequantize: bool = False, seed: int = 0):
    """Fold a LoRA adapter into its base with PEFT's ``merge_and_unload``. Returns ``(merged, tokenizer, MergeInfo)``.

    ``adapter`` is an adapter folder (``adapter_config.json`` + weights) or an already loaded
    ``PeftModel``. From a folder, the base (``model_id``, default: the one recorded in the adapter) is
    reloaded in float32 (``MERGE_DTYPE``), on CUDA too: merged into bfloat16 weights, a LoRA update smaller than
    a weight's rounding step is partly rounded away (measured on SmolLM2 on an H200: the bf16 merge differed from
    the adapter by 3.0 logits, the float32 merge by ~1e-5); cast the merged model to bf16 for serving afterwards.
    With ``dequantize=True`` the base is loaded in 4-bit as in QLoRA training and then dequantized to float32, so
    the merged model reproduces the adapter-on-4-bit-base model that training evaluated. A loaded ``PeftModel`` on a quantized base
    is refused (``FtlabError``) rather than merged with rounding.

    Example: ``merged, tok, info = merge_adapter("runs/04_qlora/adapter")``; ``info.precision == "float32 (full-precision reload)"``.
    """
    from peft import PeftModel

    started = time.perf_counter()
    if isinstance(adapter, PeftModel):
        kind = quantization_of(adapter)
        if kind:
            raise _refuse_quantized(kind)
        peft_model, tokenizer = adapter, None
        base_name = str(getattr(adapter.peft_config.get("default"), "base_model_name_or_path", "") or "")
        dtype = next(adapter.parameters()).dtype
        precision = f"{str(dtype).removeprefix('torch.')} (the loaded model)"
    else:
        cfg_file = Path(adapter) / "adapter_config.json"
        base_name = model_id or (json.loads(cfg_file.read_text())["base_model_name_or_path"] if cfg_file.exists() else "")
        peft_model, tokenizer = load_unmerged(adapter, base_name or None, dequantize=dequantize, seed=seed)
        dtype = str(next(peft_model.parameters()).dtype).removeprefix("torch.")
        precision = (f"{dtype}, dequantized from bitsandbytes 4-bit ({quantization_config('4bit').bnb_4bit_quant_type})" if dequantize
                     else f"{dtype} (full-precision reload)")
    n_lora = sum(1 for _, m in peft_model.named_modules() if hasattr(m, "lora_A") and len(m.lora_A))
    merged = peft_model.merge_and_unload()
    merged.eval()
    info = MergeInfo(base=base_name, precision=precision, dequantized=dequantize, lora_modules=n_lora,
                     seconds=round(time.perf_counter() - started, 2))
    return merged, tokenizer, info


MERGE_DTYPE = "float32"  # the dtype merges happen in, on the CPU and on CUDA alike (see merge_adapter)


def load_unmerged(adapter_dir: str | os.PathLike[str], model_id: str | None = None, *, dequantize: bool = False,
                  seed: int = 0):
    """The adapter on the very base weights ``merge_adapter`` merges into, unmerged: the reference of the merge check.

    Returns ``(peft_model, tokenizer)``. Without ``dequantize`` the base is reloaded in full precision.
    """
    from peft import PeftModel

    cfg_file = Path(adapter_dir) / "adapter_config.json"
    if not cfg_file.exists():
        raise FtlabError(f"{adapter_dir}: no adapter_config.json (give the adapter folder that training saved)")
    base_name = model_id or json.loads(cfg_file.read_text())["base_model_name_or_path"]
    base, tokenizer, _ = load_base(base_name, "4bit" if dequantize else "none", seed=seed,
                                   dtype=None if dequantize else MERGE_DTYPE)
    if dequantize:
        import torch

        base = base.dequantize().to(getattr(torch, MERGE_DTYPE))
    model = PeftModel.from_pretrained(base, str(adapter_dir))
    model.eval()
    return model, tokenizer
