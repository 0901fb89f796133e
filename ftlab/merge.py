"""Merging a LoRA adapter into its base, checking the merge, saving and exporting it (notebook 06).

The seeds: "merge LoRA adapters before serving to eliminate adapter overhead at inference", and
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
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ftlab.core import cache_dir
from ftlab.errors import FtlabError
from ftlab.generation import _messages_for_prompt
from ftlab.memory import SHAPES, ModelShape, lora_param_count, shape_from_config
from ftlab.train import load_base, quantization_config

__all__ = ["LLAMA_CPP_PYTHON_VERSION", "MERGE_DTYPE", "GGUFExport", "GGUFParity", "Latency", "LlamaServer",
           "MergeInfo", "Parity", "check_converter", "convert_to_gguf", "default_tolerance",
           "fetch_llama_cpp_converter", "generation_latency", "gguf_parity", "gguf_status",
           "llama_cpp_bindings", "llama_cpp_converter_dir", "llama_cpp_pre_tokenizer", "llama_server",
           "load_unmerged", "logit_parity", "logits_diff", "lora_flop_overhead", "merge_adapter",
           "quantization_of", "save_merged", "serve_commands", "server_reply", "xllamacpp_version"]


# llama-cpp-python's source package vendors llama.cpp, including convert_hf_to_gguf.py.
LLAMA_CPP_PYTHON_VERSION = "0.3.36"


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


# ---------------------------------------------------------------------------------------------
# Checking the merge: logits and greedy generations
# ---------------------------------------------------------------------------------------------
def default_tolerance(dtype) -> float:
    """The max |Δlogit| accepted between two computations of the same function in ``dtype``.

    float32: 1e-3 (merging reorders a few additions; differences are ~1e-5). bfloat16/float16:
    0.1 (a merged bf16 weight is rounded to 8 bits of mantissa, the unmerged path rounds elsewhere).
    """
    return 1e-3 if "32" in str(dtype) or "64" in str(dtype) else 0.1


@dataclass
class Parity:
    """How closely two models agree on the same inputs."""

    max_abs_logit_diff: float
    mean_abs_logit_diff: float
    tolerance: float
    logits_within_tolerance: bool
    greedy_identical: bool
    n_prompts: int
    n_positions: int
    n_mismatches: int = 0  # prompts whose greedy replies differ
    mismatches: list[dict[str, Any]] = field(default_factory=list)  # the first ten of them

    @property
    def ok(self) -> bool:
        return self.logits_within_tolerance and self.greedy_identical

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}


def _conversation_batches(tokenizer, conversations, batch_size: int, *, generation_prompt: bool):
    import torch

    for start in range(0, len(conversations), batch_size):
        chunk = conversations[start : start + batch_size]
        if generation_prompt:
            texts = [tokenizer.apply_chat_template(_messages_for_prompt(c), tokenize=False, add_generation_prompt=True)
                     for c in chunk]
        else:
            texts = [tokenizer.apply_chat_template(list(c), tokenize=False) for c in chunk]
        ids = [tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts]
        width = max(map(len, ids))
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        inp = torch.full((len(ids), width), pad)
        att = torch.zeros((len(ids), width), dtype=torch.long)
        for i, row in enumerate(ids):
            inp[i, : len(row)] = torch.tensor(row)
            att[i, : len(row)] = 1
        yield inp, att


def logits_diff(model_a, model_b, tokenizer, conversations: Sequence[Sequence[dict[str, Any]]], *,
                batch_size: int = 16) -> tuple[float, float, int]:
    """``(max, mean, n)`` of |logit_a − logit_b| over every real (unpadded) position of the full conversations."""
    import torch

    mx, total, n = 0.0, 0.0, 0
    dev_a, dev_b = next(model_a.parameters()).device, next(model_b.parameters()).device
    model_a.eval()
    model_b.eval()
    with torch.no_grad():
        for inp, att in _conversation_batches(tokenizer, list(conversations), batch_size, generation_prompt=False):
            la = model_a(input_ids=inp.to(dev_a), attention_mask=att.to(dev_a)).logits.float().cpu()
            lb = model_b(input_ids=inp.to(dev_b), attention_mask=att.to(dev_b)).logits.float().cpu()
            d = (la - lb).abs()[att.bool()]
            mx = max(mx, float(d.max()))
            total += float(d.sum())
            n += d.shape[0]
    return mx, total / max(n * (d.shape[-1] if n else 1), 1), n


def logit_parity(model_a, model_b, tokenizer, conversations: Sequence[Sequence[dict[str, Any]]], *,
                 tolerance: float | None = None, max_new_tokens: int = 32) -> Parity:
    """Compare two models on the same conversations: teacher-forced logits and greedy replies.

    ``tolerance`` defaults to ``default_tolerance`` of ``model_b``'s dtype. Example::

        p = logit_parity(adapter_model, merged, tok, data.support_splits(0)["test"][:32])
        p.max_abs_logit_diff < p.tolerance and p.greedy_identical
    """
    from ftlab.generation import chat_generate

    convs = [list(c) for c in conversations]
    mx, mean, n = logits_diff(model_a, model_b, tokenizer, convs)
    tol = default_tolerance(next(model_b.parameters()).dtype) if tolerance is None else tolerance
    ra = chat_generate(model_a, tokenizer, convs, max_new_tokens=max_new_tokens)
    rb = chat_generate(model_b, tokenizer, convs, max_new_tokens=max_new_tokens)
    mism = [{"index": i, "a": a, "b": b} for i, (a, b) in enumerate(zip(ra, rb, strict=True)) if a != b]
    return Parity(max_abs_logit_diff=mx, mean_abs_logit_diff=mean, tolerance=tol, logits_within_tolerance=mx <= tol,
                  greedy_identical=not mism, n_prompts=len(convs), n_positions=n, n_mismatches=len(mism),
                  mismatches=mism[:10])


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


# ---------------------------------------------------------------------------------------------
# GGUF for llama.cpp, with llama.cpp's own converter
# ---------------------------------------------------------------------------------------------
_CONVERTER_PARTS = ("convert_hf_to_gguf.py", "conversion", "gguf-py", "LICENSE")


def _installed_llama_cpp_version() -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("llama-cpp-python")
    except PackageNotFoundError:
        return None


def llama_cpp_converter_dir(version: str | None = None) -> Path | None:
    """The folder holding llama.cpp's ``convert_hf_to_gguf.py``, or ``None`` when there is none yet.

    ``$FTLAB_LLAMA_CPP`` (a llama.cpp checkout) wins; otherwise the copy that ``fetch_llama_cpp_converter``
    extracted from llama-cpp-python's source package (the installed version, else the pinned one).
    """
    env = os.environ.get("FTLAB_LLAMA_CPP")
    if env:
        return Path(env) if (Path(env) / "convert_hf_to_gguf.py").exists() else None
    version = version or _installed_llama_cpp_version() or LLAMA_CPP_PYTHON_VERSION
    folder = cache_dir("llama.cpp") / f"llama-cpp-python-{version}"
    return folder if (folder / "convert_hf_to_gguf.py").exists() else None


def fetch_llama_cpp_converter(sdist: str | os.PathLike[str] | None = None, version: str | None = None) -> Path:
    """Extract llama.cpp's converter (``convert_hf_to_gguf.py``, ``conversion/``, ``gguf-py/``) from llama-cpp-python's sdist.

    Without ``sdist``, pip downloads the source package of ``version`` (default: the installed
    llama-cpp-python, else the pinned one) from the package index: run it once at setup time
    (``ftlab gguf-setup``), since notebooks run offline. Returns the converter folder.
    """
    version = version or _installed_llama_cpp_version() or LLAMA_CPP_PYTHON_VERSION
    target = cache_dir("llama.cpp") / f"llama-cpp-python-{version}"
    if (target / "convert_hf_to_gguf.py").exists():
        return target
    if sdist is not None and not Path(sdist).is_file():
        raise FtlabError(f"--sdist {sdist}: no such file (give a llama_cpp_python-*.tar.gz, or omit it to download one)")
    with tempfile.TemporaryDirectory() as tmp:
        if sdist is None:
            cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
                   f"llama-cpp-python=={version}", "-d", tmp]
            proc = subprocess.run(cmd, capture_output=True, text=True)
            found = sorted(Path(tmp).glob("llama_cpp_python-*.tar.gz"))
            if proc.returncode or not found:
                last = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
                raise FtlabError(f"pip could not download llama-cpp-python=={version}'s source package: {last[0]}")
            sdist = found[0]
        prefix_marker = "/vendor/llama.cpp/"
        partial = target.with_name(target.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        with tarfile.open(sdist) as tar:
            members = []
            for m in tar.getmembers():
                if prefix_marker not in m.name:
                    continue
                rel = m.name.split(prefix_marker, 1)[1]
                if rel.split("/", 1)[0] in _CONVERTER_PARTS and (m.isfile() or m.isdir()):
                    m.name = rel
                    members.append(m)
            if not any(m.name == "convert_hf_to_gguf.py" for m in members):
                raise FtlabError(f"{sdist}: no vendor/llama.cpp/convert_hf_to_gguf.py in this source package")
            if hasattr(tarfile, "data_filter"):  # Python >= 3.11.4: refuse links and paths outside the folder
                tar.extractall(partial, members=members, filter="data")
            else:  # pragma: no cover
                tar.extractall(partial, members=members)
        shutil.rmtree(target, ignore_errors=True)
        partial.rename(target)
    return target


# The pre-tokenizer of StarCoder 2 and SmolLM (and of the toy model): single digits, then GPT-2's byte-level regex.
_STARCODER_PRE = {"type": "Sequence", "pretokenizers": [
    {"type": "Digits", "individual_digits": True},
    {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}]}


def llama_cpp_pre_tokenizer(model_dir: str | os.PathLike[str]) -> str | None:
    """The llama.cpp pre-tokenizer that splits text exactly as this tokenizer's ``tokenizer.json`` declares, if one is known.

    llama.cpp's converter recognizes a tokenizer by hashing the token ids of a test string. A
    tokenizer trained from scratch (the toy's) has its own vocabulary, so its hash is in no table,
    although its *pre-tokenizer* is StarCoder 2's and SmolLM's: split digits one by one, then GPT-2's
    byte-level regex. llama.cpp implements that split as ``"smollm"`` (no space clean-up on decoding,
    like this tokenizer) and ``"starcoder"`` (with clean-up). Returns ``None`` for any other declaration.
    """
    path = Path(model_dir) / "tokenizer.json"
    if not path.exists():
        return None
    tok = json.loads(path.read_text(encoding="utf-8"))
    if tok.get("normalizer") is not None or tok.get("model", {}).get("type") != "BPE":
        return None
    if tok.get("pre_tokenizer") != _STARCODER_PRE or (tok.get("decoder") or {}).get("type") != "ByteLevel":
        return None
    cfg_path = Path(model_dir) / "tokenizer_config.json"
    cfg = json.loads(cfg_path.read_text(encoding="utf-8")) if cfg_path.exists() else {}
    return "starcoder" if cfg.get("clean_up_tokenization_spaces") else "smollm"


# Runs llama.cpp's convert_hf_to_gguf.py unchanged. When the converter's hash table does not know the
# tokenizer (NotImplementedError), it answers with the pre-tokenizer that ftlab matched from tokenizer.json,
# which is what adding the model to convert_hf_to_gguf_update.py would do upstream.
_DRIVER = r"""
import runpy, sys
conv, pre = sys.argv[1], sys.argv[2]
sys.argv = [conv + "/convert_hf_to_gguf.py"] + sys.argv[3:]
sys.path[:0] = [conv, conv + "/gguf-py"]
if pre:
    from conversion import base
    original = base.TextModel.get_vocab_base_pre
    def get_vocab_base_pre(self, tokenizer):
        try:
            return original(self, tokenizer)
        except NotImplementedError:
            print(f"ftlab: tokenizer hash not in llama.cpp's table; its tokenizer.json declares the {pre!r} "
                  "pre-tokenizer, so tokenizer.ggml.pre = " + repr(pre), file=sys.stderr)
            return pre
    base.TextModel.get_vocab_base_pre = get_vocab_base_pre
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def check_converter(folder: str | os.PathLike[str]) -> None:
    """Run the extracted converter's ``--help`` offline (no network, no hub): it must import and start.

    ``ftlab gguf-setup`` calls it, so a broken or incomplete extraction fails at setup time, not in notebook 06.
    """
    env = {**{k: v for k, v in os.environ.items() if k != "NO_LOCAL_GGUF"},
           "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "FTLAB_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, "-c", _DRIVER, str(folder), "", "--help"], capture_output=True, text=True,
                          env=env, timeout=300)
    if proc.returncode or "usage" not in proc.stdout.lower():
        last = [ln for ln in (proc.stderr or proc.stdout).splitlines() if ln.strip()][-1:] or ["no output"]
        raise FtlabError(f"llama.cpp's converter in {folder} does not start offline: {last[0]} "
                         "(delete the folder and run `ftlab gguf-setup` again)")


@dataclass
class GGUFExport:
    """A GGUF file written by llama.cpp's converter."""

    path: str
    outtype: str
    size_mb: float
    pre_tokenizer: str | None  # the pre-tokenizer matched from tokenizer.json when the hash was unknown
    pre_tokenizer_from_declaration: bool  # True when the converter's hash table did not know the tokenizer
    converter: str
    seconds: float
    log_tail: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def convert_to_gguf(model_dir: str | os.PathLike[str], out_file: str | os.PathLike[str] | None = None, *,
                    outtype: str = "f32", converter: str | os.PathLike[str] | None = None) -> GGUFExport:
    """Convert a merged Hugging Face folder to GGUF with llama.cpp's ``convert_hf_to_gguf.py``.

    ``outtype``: ``f32``, ``f16``, ``bf16`` or ``q8_0`` (the converter's own choices; k-quants such as
    Q4_K_M come from llama.cpp's ``llama-quantize`` tool afterwards). Example::

        convert_to_gguf("runs/06/merged", "runs/06/merged-f32.gguf").size_mb
    """
    model_dir = Path(model_dir)
    conv = Path(converter) if converter else llama_cpp_converter_dir()
    if conv is None or not (conv / "convert_hf_to_gguf.py").exists():
        raise FtlabError("llama.cpp's converter is not here: run `ftlab gguf-setup` once (it extracts "
                         "convert_hf_to_gguf.py from llama-cpp-python's source package), or set FTLAB_LLAMA_CPP "
                         "to a llama.cpp checkout")
    out = Path(out_file) if out_file else model_dir.with_suffix(f".{outtype}.gguf")
    out.parent.mkdir(parents=True, exist_ok=True)
    pre = llama_cpp_pre_tokenizer(model_dir)
    started = time.perf_counter()
    env = {k: v for k, v in os.environ.items() if k != "NO_LOCAL_GGUF"}
    proc = subprocess.run([sys.executable, "-c", _DRIVER, str(conv), pre or "", str(model_dir), "--outfile", str(out),
                           "--outtype", outtype], capture_output=True, text=True, env=env)
    log = (proc.stdout + proc.stderr).strip()
    if proc.returncode or not out.exists():
        last = [ln for ln in log.splitlines() if ln.strip()][-1:] or ["no output"]
        raise FtlabError(f"llama.cpp's converter failed on {model_dir}: {last[0]}")
    return GGUFExport(path=str(out), outtype=outtype, size_mb=round(out.stat().st_size / 2**20, 2), pre_tokenizer=pre,
                      pre_tokenizer_from_declaration="ftlab: tokenizer hash not in" in log, converter=str(conv),
                      seconds=round(time.perf_counter() - started, 2), log_tail="\n".join(log.splitlines()[-8:]))


def llama_cpp_bindings() -> str | None:
    """The installed llama-cpp-python version when its compiled library loads, else ``None``."""
    try:
        import llama_cpp
    except Exception:  # not installed, or the shared library failed to load
        return None
    return getattr(llama_cpp, "__version__", None) or _installed_llama_cpp_version()


def xllamacpp_version() -> str | None:
    """The installed ``xllamacpp`` (llama.cpp and its server, prebuilt CPU wheels) when it loads, else ``None``."""
    try:
        import xllamacpp
    except Exception:
        return None
    return getattr(xllamacpp, "__version__", None) or "unknown"


class LlamaServer:
    """llama.cpp's own HTTP server (``llama-server``'s code, through ``xllamacpp``) on 127.0.0.1, one GGUF loaded.

    It speaks the OpenAI API under ``base_url + "/v1"`` and llama.cpp's native routes (``/tokenize``,
    ``/completion``) under ``base_url``. Start and stop it with ``llama_server``.
    """

    def __init__(self, base_url: str, model: str, gguf_file: str) -> None:
        self.base_url, self.model, self.gguf_file = base_url, model, gguf_file
        self.stopped = False

    def request(self, path: str, body: dict[str, Any] | None = None, *, timeout: float = 300) -> Any:
        """GET (no body) or POST JSON to a native route; llama.cpp's error message on failure."""
        import urllib.error
        import urllib.request

        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base_url + path, data=data, headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            raise FtlabError(f"llama.cpp server {path}: HTTP {exc.code}: {exc.read()[:300]!r}") from None

    def is_up(self) -> bool:
        try:
            return self.request("/health", timeout=2).get("status") == "ok"
        except Exception:
            return False

    def __repr__(self) -> str:
        return f"LlamaServer({self.base_url!r}, model={self.model!r}, stopped={self.stopped})"


@contextmanager
def llama_server(gguf_file: str | os.PathLike[str], *, n_ctx: int = 2048, threads: int = 1) -> Iterator[LlamaServer]:
    """Serve a GGUF with llama.cpp's OpenAI-compatible server on 127.0.0.1 (a free port); stopped on exit.

    ``xllamacpp`` (a default dependency: prebuilt wheels, no compile) runs llama.cpp's server code in
    this process. Example::

        with llama_server("runs/06_merge/merged-f32.gguf") as srv:
            OpenAI(base_url=srv.base_url + "/v1", api_key="local").chat.completions.create(
                model=srv.model, messages=[{"role": "user", "content": "hi"}], max_tokens=16)
    """
    import gc

    try:
        import xllamacpp as xlc
    except Exception as exc:
        raise FtlabError(f"xllamacpp is not usable here ({type(exc).__name__}: {exc}); it is one of ftlab's "
                         "dependencies: pip install -c constraints.txt xllamacpp") from None
    path = Path(gguf_file)
    if not path.is_file():
        raise FtlabError(f"gguf_file {path}: no such file (convert one with ftlab.merge.convert_to_gguf)")
    params = xlc.CommonParams()
    params.model.path = str(path)
    params.hostnames = ["127.0.0.1"]
    params.port = 0  # a free port, chosen by the server
    params.n_parallel = 1
    params.n_ctx = n_ctx
    params.cpuparams.n_threads = threads
    params.cpuparams_batch.n_threads = threads
    params.verbosity = 0  # errors only
    params.warmup = False
    params.use_jinja = True  # the GGUF's own chat template, rendered as Hugging Face renders it
    server = xlc.Server(params)
    handle = None
    try:
        handle = LlamaServer(server.listening_address.rstrip("/"), "", str(path))
        deadline = time.monotonic() + 60
        while not handle.is_up():
            if time.monotonic() > deadline:
                raise FtlabError(f"llama.cpp's server on {handle.base_url} did not become ready in 60 s")
            time.sleep(0.2)
        handle.model = handle.request("/v1/models")["data"][0]["id"]
        yield handle
    finally:
        del server  # xllamacpp stops the HTTP server and frees the model when the object goes
        gc.collect()
        if handle is not None:
            for _ in range(50):
                if not handle.is_up():
                    break
                time.sleep(0.1)
            handle.stopped = not handle.is_up()


@dataclass
class GGUFParity:
    """llama.cpp against the merged Hugging Face model, on the same prompts."""

    tokenization_identical: bool  # llama.cpp tokenizes the prompt text to the same ids as the HF tokenizer
    max_abs_logprob_diff: float  # |Δ log-probability| (log-softmax of the logits), the largest compared
    compared: str  # which log-probabilities were compared
    greedy_identical: bool  # same greedy token ids
    n_prompts: int
    backend: str  # "xllamacpp (llama.cpp <version>)" or "llama-cpp-python <version>"
    mismatches: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.tokenization_identical and self.greedy_identical

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}


def _prompt_ids(tokenizer, conv) -> tuple[str, list[int]]:
    text = tokenizer.apply_chat_template(_messages_for_prompt(conv), tokenize=False, add_generation_prompt=True)
    return text, tokenizer(text, add_special_tokens=False)["input_ids"]


def _hf_greedy(model, tokenizer, ids: list[int], max_new_tokens: int) -> list[int]:
    """HF greedy continuation, cut before the first end-of-sequence token."""
    import torch

    with torch.no_grad():
        out = model.generate(torch.tensor([ids], device=model.device), max_new_tokens=max_new_tokens, do_sample=False,
                             pad_token_id=tokenizer.pad_token_id, temperature=None, top_p=None, top_k=None)
    gen = out[0, len(ids):].tolist()
    return gen[: gen.index(tokenizer.eos_token_id)] if tokenizer.eos_token_id in gen else gen


def gguf_parity(gguf: str | os.PathLike[str] | LlamaServer, model, tokenizer,
                conversations: Sequence[Sequence[dict[str, Any]]], *, max_new_tokens: int = 32, n_probs: int = 20,
                backend: str | None = None) -> GGUFParity:
    """Load a GGUF with llama.cpp and compare tokenization, log-probabilities and greedy generations with HF.

    The prompt text comes from the HF chat template; llama.cpp tokenizes it itself (special tokens
    parsed), and generation starts from the HF ids so the two decoders see the same input.
    ``backend="xllamacpp"`` (the default; ``gguf`` may be a running ``LlamaServer``) asks llama.cpp's
    server for its greedy tokens and the ``n_probs`` most likely tokens' log-probabilities at each
    generated position, and compares them with HF's log-softmax on the same sequence.
    ``backend="llama-cpp-python"`` (an optional compiled extra) compares every prompt position.
    """
    backend = backend or ("xllamacpp" if isinstance(gguf, LlamaServer) or xllamacpp_version() else
                          "llama-cpp-python" if llama_cpp_bindings() else "xllamacpp")
    model.eval()
    if backend == "llama-cpp-python":
        return _parity_llama_cpp_python(str(gguf), model, tokenizer, conversations, max_new_tokens)
    if backend != "xllamacpp":
        raise FtlabError(f"backend {backend!r}: use 'xllamacpp' or 'llama-cpp-python'")
    if not isinstance(gguf, LlamaServer):
        n_ctx = min(int(getattr(model.config, "max_position_embeddings", 2048)), 4096)
        with llama_server(gguf, n_ctx=n_ctx) as server:
            return gguf_parity(server, model, tokenizer, conversations, max_new_tokens=max_new_tokens,
                               n_probs=n_probs, backend=backend)
    import torch

    server = gguf
    same_tok, same_gen, max_diff, mism = True, True, 0.0, []
    for i, conv in enumerate(conversations):
        text, ids = _prompt_ids(tokenizer, conv)
        cpp_ids = server.request("/tokenize", {"content": text, "add_special": False, "parse_special": True})["tokens"]
        same_tok &= list(cpp_ids) == list(ids)
        out = server.request("/completion", {
            "prompt": ids, "n_predict": max_new_tokens, "temperature": 0.0, "top_k": 1, "samplers": ["top_k"],
            "n_probs": n_probs, "post_sampling_probs": False, "return_tokens": True, "cache_prompt": False})
        probs = out.get("completion_probabilities") or []
        cpp_gen = [int(t) for t in out["tokens"]]
        with torch.no_grad():  # HF's log-probabilities along llama.cpp's own continuation
            seq = ids + [int(p["id"]) for p in probs]
            logp = torch.log_softmax(model(input_ids=torch.tensor([seq], device=model.device)).logits[0].float(), -1)
        for j, p in enumerate(probs):
            row = logp[len(ids) - 1 + j]
            for alt in p["top_logprobs"]:
                max_diff = max(max_diff, abs(float(row[int(alt["id"])]) - float(alt["logprob"])))
        hf_gen = _hf_greedy(model, tokenizer, ids, max_new_tokens)
        cpp_gen = [t for t in cpp_gen if t != tokenizer.eos_token_id]
        if cpp_gen != hf_gen:
            same_gen = False
            mism.append({"index": i, "hf": tokenizer.decode(hf_gen, skip_special_tokens=True),
                         "llama.cpp": tokenizer.decode(cpp_gen, skip_special_tokens=True)})
    return GGUFParity(tokenization_identical=same_tok, max_abs_logprob_diff=max_diff,
                      compared=f"the {n_probs} most likely tokens at every generated position",
                      greedy_identical=same_gen, n_prompts=len(conversations),
                      backend=f"xllamacpp {xllamacpp_version()}", mismatches=mism[:10])


def _parity_llama_cpp_python(gguf_file: str, model, tokenizer, conversations, max_new_tokens: int) -> GGUFParity:
    import numpy as np
    import torch

    try:
        from llama_cpp import Llama
    except Exception as exc:
        raise FtlabError(f"llama-cpp-python is not usable here ({type(exc).__name__}: {exc}); "
                         "install the optional extra: pip install -e '.[gguf]' (it compiles llama.cpp)") from None
    n_ctx = min(int(getattr(model.config, "max_position_embeddings", 2048)), 4096)  # an 8B's 128k would be a huge KV cache
    llm = Llama(model_path=gguf_file, n_ctx=n_ctx, logits_all=True, verbose=False, n_threads=1, n_threads_batch=1, seed=0)
    eos = {tokenizer.eos_token_id, llm.token_eos()}
    same_tok, same_gen, max_diff, mism = True, True, 0.0, []
    for i, conv in enumerate(conversations):
        text, ids = _prompt_ids(tokenizer, conv)
        same_tok &= list(llm.tokenize(text.encode("utf-8"), add_bos=False, special=True)) == list(ids)
        llm.reset()
        llm.eval(ids)
        cpp = torch.log_softmax(torch.from_numpy(np.asarray(llm.scores[: len(ids)], dtype=np.float32)), -1)
        with torch.no_grad():
            hf = torch.log_softmax(model(input_ids=torch.tensor([ids], device=model.device)).logits[0].float().cpu(), -1)
        max_diff = max(max_diff, float((cpp - hf[:, : cpp.shape[1]]).abs().max()))
        cpp_gen: list[int] = []
        for tok in llm.generate(ids, top_k=1, top_p=1.0, min_p=0.0, temp=0.0, repeat_penalty=1.0, reset=True):
            if tok in eos or len(cpp_gen) >= max_new_tokens:
                break
            cpp_gen.append(int(tok))
        hf_gen = _hf_greedy(model, tokenizer, ids, max_new_tokens)
        if cpp_gen != hf_gen:
            same_gen = False
            mism.append({"index": i, "hf": tokenizer.decode(hf_gen, skip_special_tokens=True),
                         "llama.cpp": tokenizer.decode(cpp_gen, skip_special_tokens=True)})
    if hasattr(llm, "close"):
        llm.close()
    return GGUFParity(tokenization_identical=same_tok, max_abs_logprob_diff=max_diff,
                      compared="every token at every prompt position", greedy_identical=same_gen,
                      n_prompts=len(conversations), backend=f"llama-cpp-python {llama_cpp_bindings()}",
                      mismatches=mism[:10])


def server_reply(server: LlamaServer, messages: Sequence[dict[str, Any]], *, max_tokens: int = 32) -> dict[str, Any]:
    """Ask a running llama.cpp server through the real ``openai`` SDK (greedy); the reply and what served it."""
    from openai import OpenAI

    client = OpenAI(base_url=server.base_url + "/v1", api_key="local-llama-cpp", max_retries=0, timeout=300)
    resp = client.chat.completions.create(model=server.model, messages=list(messages), max_tokens=max_tokens,
                                          temperature=0.0, seed=0)
    choice = resp.choices[0]
    return {"reply": choice.message.content, "finish_reason": choice.finish_reason, "model": resp.model,
            "completion_tokens": resp.usage.completion_tokens if resp.usage else None,
            "base_url": server.base_url + "/v1"}


def gguf_status() -> dict[str, Any]:
    """What the GGUF step can do here: the converter folder, the llama.cpp runtime, and why not if not."""
    conv = llama_cpp_converter_dir()
    server = xllamacpp_version()
    bindings = llama_cpp_bindings()
    reasons = []
    if conv is None:
        reasons.append("llama.cpp's convert_hf_to_gguf.py is not extracted yet (run `ftlab gguf-setup` once)")
    if server is None and bindings is None:
        reasons.append("neither xllamacpp nor llama-cpp-python is installed, so the GGUF cannot be loaded back "
                       "(pip install -c constraints.txt xllamacpp: prebuilt wheels, no compile)")
    try:
        import sentencepiece  # noqa: F401  (the converter imports it for every Llama model)
    except ImportError:
        reasons.append("the converter needs sentencepiece (pip install -c constraints.txt sentencepiece)")
    return {"converter": str(conv) if conv else None, "server": server, "bindings": bindings,
            "ready": not reasons, "reason": "; ".join(reasons) or None}
