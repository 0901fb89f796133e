"""Saving the merged model, the commands that serve it, and what an unmerged adapter costs at inference."""

from __future__ import annotations

import json
import os
import shutil
import statistics
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ftlab.errors import FtlabError
from ftlab.generation import _messages_for_prompt
from ftlab.memory import SHAPES, ModelShape, lora_param_count, shape_from_config

__all__ = ["Latency", "generation_latency", "lora_flop_overhead", "save_merged", "serve_commands"]


# ---------------------------------------------------------------------------------------------
# Saving and serving
# ---------------------------------------------------------------------------------------------
def save_merged(model, tokenizer, out_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """Save a merged model as safetensors plus its tokenizer (and chat template), ready for ``from_pretrained``.

    Returns ``{"path", "files", "size_mb"}``. The folder is what vLLM and TGI serve (``serve_commands``).
    """
    out = Path(out_dir)
    if out.exists():
        shutil.rmtree(out)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    files = sorted(p.name for p in out.iterdir())
    if not any(f.endswith(".safetensors") for f in files):
        raise FtlabError(f"{out}: save_pretrained wrote no .safetensors file ({files})")
    size = sum(p.stat().st_size for p in out.iterdir()) / 2**20
    return {"path": str(out), "files": files, "size_mb": round(size, 2)}


def serve_commands(model_dir: str | os.PathLike[str], gguf_file: str | os.PathLike[str] | None = None, *,
                   base: str = "BASE_MODEL", adapter: str | os.PathLike[str] = "ADAPTER_DIR") -> dict[str, str]:
    """Shell commands that serve a merged folder (vLLM, TGI) or a GGUF file (llama.cpp), each OpenAI-compatible.

    vLLM and TGI want a GPU and a real architecture; the toy model's folder has the same layout as
    Llama 3.1 8B's, so the same commands apply to the 8B merge.
    """
    path = Path(model_dir).resolve()
    cmds = {
        "vllm": f"vllm serve {path} --dtype bfloat16 --max-model-len 4096  # OpenAI API on :8000/v1",
        "vllm_unmerged_lora": (f"vllm serve {base} --enable-lora --lora-modules support={adapter}  "
                               "# the alternative: the adapter served unmerged"),
        "tgi": (f"docker run --gpus all -p 8080:80 -v {path.parent}:/data "
                f"ghcr.io/huggingface/text-generation-inference --model-id /data/{path.name}"),
    }
    if gguf_file:
        cmds["llama.cpp"] = f"llama-server -m {Path(gguf_file).resolve()} --port 8081  # OpenAI API on :8081/v1"
    return cmds


# ---------------------------------------------------------------------------------------------
# The overhead claim: latency and FLOPs of an unmerged adapter
# ---------------------------------------------------------------------------------------------
@dataclass
class Latency:
    """Batch-1 greedy generation time over the same prompts, forced to the same number of new tokens."""

    median_ms_per_request: float
    ms_per_token: float
    new_tokens: int
    n_prompts: int
    repeats: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def generation_latency(model, tokenizer, conversations: Sequence[Sequence[dict[str, Any]]], *,
                       new_tokens: int = 24, repeats: int = 3) -> Latency:
    """Time greedy generation one request at a time (as a chat endpoint serves them).

    Every request generates exactly ``new_tokens`` tokens (``min_new_tokens``), so two models are
    compared on the same work. Each prompt is timed ``repeats`` times and the fastest is kept (the
    least disturbed by other processes); the median over prompts is reported.
    """
    import torch

    model.eval()
    device = next(model.parameters()).device
    prompts = [tokenizer.apply_chat_template(_messages_for_prompt(c), tokenize=False, add_generation_prompt=True)
               for c in conversations]
    kwargs = {"max_new_tokens": new_tokens, "min_new_tokens": new_tokens, "do_sample": False,
              "pad_token_id": tokenizer.pad_token_id, "temperature": None, "top_p": None, "top_k": None}
    per_request = []
    with torch.no_grad():
        enc0 = tokenizer(prompts[0], return_tensors="pt", add_special_tokens=False).to(device)
        model.generate(**enc0, **kwargs)  # warm-up
        for text in prompts:
            enc = tokenizer(text, return_tensors="pt", add_special_tokens=False).to(device)
            best = float("inf")
            for _ in range(repeats):
                if device.type == "cuda":
                    torch.cuda.synchronize()
                t = time.perf_counter()
                model.generate(**enc, **kwargs)
                if device.type == "cuda":
                    torch.cuda.synchronize()
                best = min(best, time.perf_counter() - t)
            per_request.append(best)
    med = statistics.median(per_request) * 1000
    return Latency(round(med, 3), round(med / new_tokens, 4), new_tokens, len(prompts), repeats)


def lora_flop_overhead(model: str | ModelShape | dict, r: int = 16) -> float:
    """Extra matmul FLOPs per token of an unmerged LoRA on the seven projections, as a fraction of the base's.

    The base counts every linear layer and the LM head. Example: ``lora_flop_overhead("llama-3.1-8b", 16)``
    is about 0.0056 (0.56 %); the toy model's is about 17 %.
    """
    if isinstance(model, str):
        shape = SHAPES.get(model) or shape_from_config(json.loads((Path(model) / "config.json").read_text()))
    elif isinstance(model, dict):
        shape = shape_from_config(model)
    else:
        shape = model
    linear = sum(a * b for a, b in shape.linear_shapes().values()) * shape.num_layers
    linear += shape.hidden_size * shape.vocab_size  # the LM head
    return lora_param_count(shape, r) / linear
