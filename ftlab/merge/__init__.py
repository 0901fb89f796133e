"""Merging a LoRA adapter into its base, checking the merge, saving and exporting it (notebook 06).

The articles: "merge LoRA adapters before serving to eliminate adapter overhead at inference", and
"convert to optimized format: GGUF for llama.cpp, GPTQ or AWQ for vLLM/TGI deployment". Everything
here takes a model id or folder and works the same for the toy model and a hub model::

    merged, tok, info = merge_adapter("runs/train/adapter")          # base reloaded in full precision
    report = logit_parity(adapter_model, merged, tok, conversations)   # max |Δlogit|, greedy identical?
    save_merged(merged, tok, "runs/merged")                           # safetensors + tokenizer
    export = convert_to_gguf("runs/merged", "runs/merged.gguf")       # llama.cpp's own converter

**Merging into a quantized base.** PEFT's ``merge_and_unload`` on a bitsandbytes 4-bit model
dequantizes each layer, adds the LoRA update and quantizes the sum again: the small update is
rounded into the nf4 grid and partly lost (PEFT warns "may get different generations due to
rounding errors"). ``merge_adapter`` refuses a quantized base with a one-line message and either
reloads the base in full precision (the default) or, with ``dequantize=True``, dequantizes the
4-bit base on purpose: the merged weights are then exactly the weights the QLoRA adapter was
trained against, in full precision.

The package, by step:

- ``adapter``: ``merge_adapter``, ``load_unmerged``, ``quantization_of``.
- ``parity``: ``logits_diff``, ``logit_parity``, ``default_tolerance``.
- ``serve``: ``save_merged``, ``serve_commands``, ``generation_latency``, ``lora_flop_overhead``.
- ``gguf``: the converter (``fetch_llama_cpp_converter``, ``convert_to_gguf``) and ``gguf_status``.
- ``runtime``: ``llama_server``, ``gguf_parity``, ``server_reply``.
"""

from __future__ import annotations

from ftlab.merge.adapter import MERGE_DTYPE, MergeInfo, load_unmerged, merge_adapter, quantization_of
from ftlab.merge.gguf import (
    LLAMA_CPP_PYTHON_VERSION,
    GGUFExport,
    check_converter,
    convert_to_gguf,
    fetch_llama_cpp_converter,
    gguf_status,
    llama_cpp_bindings,
    llama_cpp_converter_dir,
    llama_cpp_pre_tokenizer,
    xllamacpp_version,
)
from ftlab.merge.parity import Parity, default_tolerance, logit_parity, logits_diff
from ftlab.merge.runtime import GGUFParity, LlamaServer, gguf_parity, llama_server, server_reply
from ftlab.merge.serve import Latency, generation_latency, lora_flop_overhead, save_merged, serve_commands

__all__ = ["LLAMA_CPP_PYTHON_VERSION", "MERGE_DTYPE", "GGUFExport", "GGUFParity", "Latency", "LlamaServer",
           "MergeInfo", "Parity", "check_converter", "convert_to_gguf", "default_tolerance",
           "fetch_llama_cpp_converter", "generation_latency", "gguf_parity", "gguf_status",
           "llama_cpp_bindings", "llama_cpp_converter_dir", "llama_cpp_pre_tokenizer", "llama_server",
           "load_unmerged", "logit_parity", "logits_diff", "lora_flop_overhead", "merge_adapter",
           "quantization_of", "save_merged", "serve_commands", "server_reply", "xllamacpp_version"]
