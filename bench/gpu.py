"""GPU benchmarks: a Llama-3.1-8B-shaped model with random weights, trained with TRL + PEFT + bitsandbytes.

    python bench/gpu.py build --shape llama-3.1-8b --out /tmp/bench
    python bench/gpu.py train --model /tmp/bench/llama-3.1-8b-nf4 --config A --out A.json
    python bench/gpu.py train --model /tmp/bench/llama-3.1-8b-nf4 --config B --budget-from A.json --out B.json
    python bench/gpu.py sweep --root /tmp/bench --out sweep.json

Each run records what it measured (tokens/s of real tokens, peak allocated and reserved memory, the memory
right after the forward pass, a kernel-time profile) with the device, versions and command. ``report.py``
turns the raw files into ``bench/results``. Not run by CI: the pure-Python parts live in ``common.py``.
"""

from __future__ import annotations

import argparse
import gc
import importlib.metadata
import json
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from bench.common import (  # noqa: E402
    StepLog,
    chat_token_ids,
    example_lengths,
    kernel_family,
    sweep_configs,
    write_json,
)

PKGS = ("torch", "transformers", "trl", "peft", "bitsandbytes", "accelerate", "datasets", "liger-kernel", "triton",
        "unsloth", "unsloth_zoo", "xformers", "flash-attn")


def versions() -> dict[str, str]:
    out = {}
    for p in PKGS:
        try:
            out[p] = importlib.metadata.version(p)
        except importlib.metadata.PackageNotFoundError:
            out[p] = "absent"
    return out


def device_info() -> dict[str, object]:
    import torch

    if not torch.cuda.is_available():
        return {"device": "cpu"}
    p = torch.cuda.get_device_properties(0)
    return {"device": p.name, "gpu_mem_gib": round(p.total_memory / 2**30, 2), "sms": p.multi_processor_count,
            "cuda": torch.version.cuda}


def meta(argv: list[str]) -> dict[str, object]:
    return {**device_info(), "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "command": "python bench/gpu.py " + " ".join(argv), "versions": versions()}


# --- model and tokenizer -------------------------------------------------------------------------------

def specials(vocab: int) -> dict[str, int]:
    return {"bos": vocab - 6, "header": vocab - 5, "eot": vocab - 4, "eos": vocab - 3, "pad": vocab - 2}


def make_tokenizer(vocab: int):
    """A word-level tokenizer over the model's whole vocabulary (nothing can be downloaded on the GPU box)."""
    from tokenizers import Tokenizer, models
    from transformers import PreTrainedTokenizerFast

    sp = specials(vocab)
    names = {v: f"<{k}>" for k, v in sp.items()}
    vocab_map = {names.get(i, f"t{i}"): i for i in range(vocab)}
    tok = Tokenizer(models.WordLevel(vocab=vocab_map, unk_token="t0"))
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<bos>", eos_token="<eos>", pad_token="<pad>",
                                   unk_token="t0")


def llama_config(shape_name: str):
    """A transformers config of a built-in shape (ftlab.memory.SHAPES or bench.common.EXTRA_SHAPES): Llama,
    Qwen2 (q/k/v biases) or Mistral by the name, special ids at the top of the vocabulary."""
    from transformers import LlamaConfig, MistralConfig, Qwen2Config

    from bench.common import shape_of

    s = shape_of(shape_name)
    kw = dict(hidden_size=s.hidden_size, intermediate_size=s.intermediate_size, num_hidden_layers=s.num_layers,
              num_attention_heads=s.num_heads, num_key_value_heads=s.num_kv_heads, vocab_size=s.vocab_size,
              tie_word_embeddings=s.tie_word_embeddings, rms_norm_eps=1e-5, bos_token_id=s.vocab_size - 6,
              eos_token_id=s.vocab_size - 3, pad_token_id=s.vocab_size - 2)
    if s.name.startswith("qwen"):
        return Qwen2Config(**kw, max_position_embeddings=32768, rope_theta=1000000.0)
    if s.name.startswith("mistral"):
        return MistralConfig(**kw, head_dim=s.hd, max_position_embeddings=32768, rope_theta=1000000.0,
                             sliding_window=None)
    return LlamaConfig(**kw, head_dim=s.hd, max_position_embeddings=131072, rope_theta=500000.0)


def bnb_config():
    import torch
    from transformers import BitsAndBytesConfig

    return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                              bnb_4bit_compute_dtype=torch.bfloat16)


def device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def cmd_build(args) -> dict:
    """Random weights from the config, saved in bf16; loaded 4-bit (nf4 + double quant) and saved again."""
    import torch
    from transformers import AutoModelForCausalLM

    root = Path(args.out)
    bf16_dir, nf4_dir = root / f"{args.shape}-bf16", root / f"{args.shape}-nf4"
    cfg = llama_config(args.shape)
    tok = make_tokenizer(cfg.vocab_size)
    t0 = time.time()
    torch.manual_seed(0)
    with torch.device(device()):
        model = AutoModelForCausalLM.from_config(cfg, dtype=torch.bfloat16)
    n_params = sum(p.numel() for p in model.parameters())
    model.save_pretrained(bf16_dir)
    tok.save_pretrained(bf16_dir)
    del model
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    t1 = time.time()
    q = AutoModelForCausalLM.from_pretrained(bf16_dir, dtype=torch.bfloat16, quantization_config=bnb_config(),
                                             device_map={"": device()})
    weights = torch.cuda.memory_allocated() if torch.cuda.is_available() else 0
    q.save_pretrained(nf4_dir)
    tok.save_pretrained(nf4_dir)
    t2 = time.time()
    del q
    gc.collect()
    return {"shape": args.shape, "params": n_params, "build_save_s": round(t1 - t0, 1),
            "quantize_save_s": round(t2 - t1, 1), "weights_allocated_bytes": weights, "nf4_dir": str(nf4_dir)}


# --- training with measurement ----------------------------------------------------------------------------

def load_model(path: str, attn: str, kbit_prep: bool):
    import torch
    from peft import prepare_model_for_kbit_training
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.bfloat16, device_map={"": device()},
                                                 attn_implementation=attn)
    if kbit_prep:
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
    model.config.use_cache = False
    return model


def make_trainer(model, tok, dataset, cfg: dict, log: StepLog, out_dir: str, profile_steps: tuple[int, int] | None,
                 peft: bool = True):
    """A TRL ``SFTTrainer`` that logs each step's time, real tokens and peak memory into ``log``.

    ``cfg["max_steps"]`` of -1 trains ``cfg["num_train_epochs"]`` (default 1) whole epochs; ``peft=False``
    takes a model that already carries its LoRA adapters (Unsloth's ``get_peft_model``)."""
    import torch
    from peft import LoraConfig
    from transformers import TrainerCallback
    from trl import SFTConfig, SFTTrainer

    cuda = torch.cuda.is_available()
    pad_id = tok.pad_token_id

    class Measured(SFTTrainer):
        def training_step(self, *a, **kw):
            inputs = a[1] if len(a) > 1 else kw["inputs"]
            ids = inputs["input_ids"]
            log.real_tokens.append(int((ids != pad_id).sum()))
            log.positions.append(int(ids.numel()))
            return super().training_step(*a, **kw)

        def compute_loss(self, *a, **kw):
            out = super().compute_loss(*a, **kw)
            if cuda and self.model.training:
                log.forward_end_allocated.append(torch.cuda.memory_allocated())
            return out

    class Clock(TrainerCallback):
        prof = None
        reserved: list[int] = []  # noqa: RUF012

        def _now(self):
            if cuda:
                torch.cuda.synchronize()
            return time.perf_counter()

        def on_train_begin(self, *a, **kw):
            self.t = self._now()

        def on_step_begin(self, args, state, control, **kw):
            if profile_steps and state.global_step == profile_steps[0]:
                acts = [torch.profiler.ProfilerActivity.CPU]
                if cuda:
                    acts.append(torch.profiler.ProfilerActivity.CUDA)
                self.prof = torch.profiler.profile(activities=acts)
                self.prof.start()

        def on_step_end(self, args, state, control, **kw):
            t = self._now()
            log.seconds.append(t - self.t)
            self.t = t
            if cuda:
                log.peak_allocated.append(torch.cuda.max_memory_allocated())
                Clock.reserved.append(torch.cuda.max_memory_reserved())
                torch.cuda.reset_peak_memory_stats()
            if os.environ.get("BENCH_VERBOSE"):
                print(f"  step {state.global_step}: {log.seconds[-1]:.2f} s, {log.real_tokens[-1] if log.real_tokens else 0} "
                      f"tokens, peak {log.peak_allocated[-1] / 2**30 if log.peak_allocated else 0:.2f} GiB", flush=True)
            if self.prof is not None and profile_steps and state.global_step == profile_steps[1]:
                self.prof.stop()
                Clock.profile = kernel_profile(self.prof, profile_steps[1] - profile_steps[0])
                self.prof = None
                self.t = self._now()

    sft_kw = dict(cfg.get("sft", {}))
    if not cuda and "paged" in sft_kw.get("optim", ""):
        sft_kw["optim"] = "adamw_torch"  # paged optimizers need CUDA managed memory (CPU smoke tests only)
    args = SFTConfig(
        output_dir=out_dir, max_steps=cfg["max_steps"], num_train_epochs=cfg.get("num_train_epochs", 1), learning_rate=1e-4, lr_scheduler_type="constant",
        logging_steps=10**6, save_strategy="no", report_to="none", disable_tqdm=True, seed=0, data_seed=0,
        bf16=cuda, gradient_accumulation_steps=1, dataloader_pin_memory=cuda, **sft_kw,
    )
    peft_config = LoraConfig(r=cfg["lora_r"], lora_alpha=2 * cfg["lora_r"], lora_dropout=cfg.get("lora_dropout", 0.05),
                             target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj",
                                             "down_proj"], task_type="CAUSAL_LM")
    trainer = Measured(model=model, args=args, train_dataset=dataset, processing_class=tok,
                       peft_config=peft_config if peft else None, callbacks=[Clock()])
    return trainer, Clock


def kernel_profile(prof, steps: int) -> dict:
    """Device time per kernel family over the profiled steps: where a step's time goes."""
    cats = {"matmul": 0.0, "4bit_dequant": 0.0, "attention": 0.0, "lm_head_loss": 0.0, "optimizer": 0.0,
            "elementwise_norm_copy_other": 0.0}
    top: dict[str, float] = {}
    from torch.autograd import DeviceType

    for ev in prof.key_averages():
        if getattr(ev, "device_type", None) != DeviceType.CUDA:
            continue  # CPU-side ranges report the time of the kernels they launched: counted once, below
        t = getattr(ev, "self_device_time_total", None) or getattr(ev, "device_time_total", 0.0)
        if not t or "#" in ev.key or ev.key.startswith("ProfilerStep"):
            continue  # user-annotation ranges (Optimizer.step#..., ProfilerStep#...) would count kernels twice
        c = kernel_family(ev.key)
        cats[c] += t / 1e3 / steps
        top[ev.key[:90]] = top.get(ev.key[:90], 0.0) + t / 1e3 / steps
    total = sum(cats.values())
    return {"ms_per_step": {k: round(v, 2) for k, v in cats.items()}, "gpu_ms_per_step": round(total, 2),
            "share": {k: round(v / total, 4) for k, v in cats.items()} if total else {},
            "top_kernels_ms_per_step": dict(sorted(((k, round(v, 2)) for k, v in top.items()),
                                                   key=lambda kv: -kv[1])[:15])}


def throughput_dataset(tok, n: int, max_len: int, seed: int = 0):
    from datasets import Dataset

    lengths = example_lengths(n, max_len, seed=seed)
    return Dataset.from_dict({"input_ids": chat_token_ids(lengths, len(tok), specials(len(tok)), seed=seed)}), lengths


def run_config_a(max_len: int = 1024) -> dict:
    """A, seed-like: batch 4, max length 1024, gradient checkpointing, paged 8-bit AdamW, no packing,
    kbit prep (fp32 embeddings/norms), SDPA on padded batches."""
    return {"label": "seed-like", "lora_r": 16, "lora_dropout": 0.05, "attn": "sdpa", "kbit_prep": True,
            "sft": {"per_device_train_batch_size": 4, "max_length": max_len, "packing": False,
                    "gradient_checkpointing": True, "optim": "paged_adamw_8bit"}}


def run_config_b(budget_gib: float, gpu_mem_gib: float, max_len: int = 1024, liger: bool | None = None,
                 shape: str = "llama-3.1-8b", cuda_context_gib: float | None = None) -> dict:
    """B: what ftlab.memory.recommend_config picks for this GPU within the budget."""
    import torch

    from ftlab.memory import recommend_config

    extra = {"cuda_context_gib": cuda_context_gib} if cuda_context_gib else {}
    rec = recommend_config(shape, gpu_mem_gib, seq_len=max_len, budget_gib=budget_gib,
                           cuda=torch.cuda.is_available(), liger=liger, **extra)
    sft = rec.sft_config_kwargs()
    attn = sft.pop("model_init_kwargs")["attn_implementation"]
    return {"label": "ftlab recommended", "lora_r": 16, "lora_dropout": 0.05, "attn": attn,
            "kbit_prep": rec.kbit_prep, "sft": sft, "recommendation": rec.to_dict()}


def cmd_train(args) -> dict:
    import torch

    context = cuda_context_gib()
    if args.config == "A":
        cfg = run_config_a()
    else:
        budget = args.budget_gib
        if args.budget_from:
            a = json.loads(Path(args.budget_from).read_text())
            # fit in what A used on this GPU: its peak reserved memory plus the CUDA context, less 3%
            budget = 0.97 * (a["summary"]["peak_reserved_gib"] + a["cuda_context_gib"])
        gpu_mem = torch.cuda.get_device_properties(0).total_memory / 2**30 if torch.cuda.is_available() else 80.0
        cfg = run_config_b(budget, gpu_mem, liger=None if args.liger == "auto" else args.liger == "on",
                           shape=args.shape, cuda_context_gib=context)
    cfg["max_steps"] = args.warmup + args.steps + (2 if args.profile else 0)
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(args.model)
    dataset, _ = throughput_dataset(tok, args.examples, 1024)
    model = load_model(args.model, cfg["attn"], cfg["kbit_prep"])
    weights = torch.cuda.memory_allocated() if torch.cuda.is_available() else 0
    log = StepLog()
    prof = (args.warmup + args.steps, args.warmup + args.steps + 2) if args.profile else None
    print(f"[train] {args.config}: {json.dumps({k: v for k, v in cfg.items() if k != 'recommendation'})}", flush=True)
    trainer, clock = make_trainer(model, tok, dataset, cfg, log, "/tmp/bench-run", prof)
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    t0 = time.time()
    trainer.train()
    wall = time.time() - t0
    timed = StepLog(log.seconds[: args.warmup + args.steps], log.real_tokens[: args.warmup + args.steps],
                    log.positions[: args.warmup + args.steps], log.peak_allocated, log.forward_end_allocated)
    summary = timed.summary(args.warmup)
    summary["peak_reserved_gib"] = max(clock.reserved or [0]) / 2**30
    return {"config": cfg, "summary": summary, "weights_allocated_gib": weights / 2**30, "cuda_context_gib": context,
            "train_wall_s": round(wall, 1), "profile": getattr(clock, "profile", None),
            "steps": {"seconds": log.seconds, "real_tokens": log.real_tokens, "positions": log.positions,
                      "peak_allocated": log.peak_allocated, "forward_end_allocated": log.forward_end_allocated}}


def cuda_context_gib() -> float:
    """Device memory in use that the caching allocator does not own (context, cuBLAS/cuDNN handles)."""
    import torch

    if not torch.cuda.is_available():
        return 0.0
    torch.zeros(1, device="cuda") @ torch.zeros(1, 1, device="cuda")  # create the context and a cuBLAS handle
    free, total = torch.cuda.mem_get_info()
    return round((total - free - torch.cuda.memory_reserved()) / 2**30, 3)


def cmd_sweep(args, configs=None) -> dict:
    """Peak memory of short runs over the estimator-accuracy configurations (``configs``, default
    ``sweep_configs()``), grouped by model load."""
    import torch
    from datasets import Dataset
    from transformers import AutoTokenizer

    configs = [c for c in (configs or sweep_configs()) if not getattr(args, "only", None) or c.model in args.only]
    if getattr(args, "group", None):  # "MODEL:KBIT_PREP", e.g. llama-3.1-8b:0: one model load per process, nothing left over
        name, kp = args.group.split(":")
        configs = [c for c in configs if c.model == name and c.kbit_prep == bool(int(kp))]
    results = []
    groups: dict[tuple[str, bool], list] = {}
    for c in configs:
        groups.setdefault((c.model, c.kbit_prep), []).append(c)
    context = cuda_context_gib()
    for (model_name, kbit_prep), group in groups.items():
        path = str(Path(args.root) / f"{model_name}-nf4")
        tok = AutoTokenizer.from_pretrained(path)
        model = load_model(path, "sdpa", kbit_prep)
        for c in group:
            gc.collect()
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
            before = torch.cuda.memory_allocated() if torch.cuda.is_available() else 0
            ids = chat_token_ids([c.seq_len] * (c.batch_size * c.steps), len(tok), specials(len(tok)))
            ds = Dataset.from_dict({"input_ids": ids})
            cfg = {"lora_r": c.lora_r, "lora_dropout": 0.05, "max_steps": c.steps,
                   "sft": {"per_device_train_batch_size": c.batch_size, "max_length": c.seq_len, "packing": False,
                           "gradient_checkpointing": c.gradient_checkpointing, "optim": "paged_adamw_8bit"}}
            log = StepLog()
            t0 = time.time()
            try:
                trainer, clock = make_trainer(model, tok, ds, cfg, log, "/tmp/bench-sweep", None)
                if torch.cuda.is_available():
                    torch.cuda.reset_peak_memory_stats()
                clock.reserved = []
                trainer.train()
                err = None
            except Exception as exc:  # record and go on: one failure must not lose the others
                err = f"{type(exc).__name__}: {exc}"[:500]
                trainer = None
            row = {**c.__dict__, "name": c.name, "weights_allocated_bytes": before,
                   "peak_allocated_bytes": max(log.peak_allocated or [0]),
                   "peak_reserved_bytes": max(clock.reserved or [0]) if err is None else 0,
                   "step_peaks": log.peak_allocated, "forward_end_allocated": log.forward_end_allocated,
                   "seconds": round(time.time() - t0, 1), "error": err}
            results.append(row)
            if args.json_out:  # written after every configuration: a time-out keeps what was measured
                write_json(args.json_out, {**meta(["sweep", "--root", args.root]), "cuda_context_gib": context,
                                           "configs": results, "partial": True})
            print(f"[sweep] {c.name}: peak {row['peak_allocated_bytes'] / 2**30:.2f} GiB "
                  f"(weights {before / 2**30:.2f}) {err or ''}", flush=True)
            if trainer is not None:
                base = trainer.model.unload() if hasattr(trainer.model, "unload") else trainer.model
                if hasattr(base, "gradient_checkpointing_disable"):
                    base.gradient_checkpointing_disable()
                model = base
                del trainer, base
        del model
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    return {"cuda_context_gib": context, "configs": results}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build")
    b.add_argument("--shape", default="llama-3.1-8b")
    b.add_argument("--out", required=True)
    t = sub.add_parser("train")
    t.add_argument("--model", required=True, help="folder of the 4-bit checkpoint")
    t.add_argument("--config", choices=["A", "B"], required=True)
    t.add_argument("--budget-from", help="A's result JSON: B must fit in what A used")
    t.add_argument("--budget-gib", type=float, default=None)
    t.add_argument("--liger", choices=["auto", "on", "off"], default="auto")
    t.add_argument("--shape", default="llama-3.1-8b", help="shape name for recommend_config (B)")
    t.add_argument("--warmup", type=int, default=3)
    t.add_argument("--steps", type=int, default=15)
    t.add_argument("--examples", type=int, default=2000)
    t.add_argument("--profile", action="store_true", help="profile 2 extra steps after the timed ones")
    s = sub.add_parser("sweep")
    s.add_argument("--root", required=True)
    s.add_argument("--only", nargs="*", help="model names to sweep (default: all)")
    s.add_argument("--group", help="MODEL:KBIT_PREP (0/1): only that model load, e.g. llama-3.1-8b:1")
    for sp in (b, t, s):
        sp.add_argument("--json-out", dest="json_out", required=True)
    args = p.parse_args(argv)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    fn = {"build": cmd_build, "train": cmd_train, "sweep": cmd_sweep}[args.cmd]
    result = {**meta(argv), **fn(args)}
    write_json(args.json_out, result)
    print(f"[{args.cmd}] wrote {args.json_out}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
