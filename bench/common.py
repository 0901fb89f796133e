"""Pure-Python parts of the GPU benchmarks: the data, the token and MFU arithmetic, the configurations,
and the result files. Unit-tested on the CPU (tests/test_bench.py); the GPU scripts import them."""

from __future__ import annotations

import json
import random
import statistics
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

# The MFU convention: a frozen 4-bit base needs no weight gradients, so a token costs
# 2 (forward) + 2 (input gradients) FLOPs per parameter; 7.5e9 is Llama-3.1-8B without the embedding
# lookup; 798e12 FLOP/s is the bf16 matmul rate measured on these H100s.
FLOPS_PER_TOKEN_8B = 4 * 7.5e9
H100_BF16_PEAK = 798e12
SEED_EXAMPLE_TOKENS = 5_000 * 300 * 3  # the articles' 5,000 examples × 300 tokens × 3 epochs


def example_lengths(n: int, max_len: int, lo: float = 0.25, hi: float = 1.0, seed: int = 0) -> list[int]:
    """``n`` example lengths drawn uniformly from [lo·max_len, hi·max_len] (the issue's 25–100%).

    >>> lengths = example_lengths(1000, 1024)
    >>> min(lengths) >= 256 and max(lengths) <= 1024
    True
    """
    rng = random.Random(seed)
    a, b = max(2, round(lo * max_len)), round(hi * max_len)
    return [rng.randint(a, b) for _ in range(n)]


def chat_token_ids(lengths: list[int], vocab_size: int, specials: dict[str, int], seed: int = 0) -> list[list[int]]:
    """Token ids shaped like a Llama-3 chat: BOS, a user header, the prompt, an assistant header, the
    answer, EOS. The values are random (throughput and memory do not depend on them) and never equal the
    pad id, so ``input_ids != pad`` counts the real tokens exactly."""
    rng = random.Random(seed + 1)
    top = min(specials.values())  # ordinary tokens stay below the special ids
    out = []
    for n in lengths:
        body = n - 5  # BOS, header, EOT, header, EOS
        prompt = body // 3
        ids = ([specials["bos"], specials["header"]] + [rng.randrange(top) for _ in range(prompt)]
               + [specials["eot"], specials["header"]] + [rng.randrange(top) for _ in range(body - prompt)]
               + [specials["eos"]])
        out.append(ids[:n] if len(ids) > n else ids)
    return out


def padded_tokens(batch_lengths: list[int]) -> int:
    """Positions computed for a padded batch (padded to its longest row)."""
    return max(batch_lengths) * len(batch_lengths) if batch_lengths else 0


def padding_efficiency(lengths: list[int], batch_size: int) -> float:
    """Real tokens over computed positions when consecutive examples form padded batches."""
    real = sum(lengths)
    computed = sum(padded_tokens(lengths[i:i + batch_size]) for i in range(0, len(lengths), batch_size))
    return real / computed if computed else 0.0


def mfu(tokens_per_s: float, flops_per_token: float = FLOPS_PER_TOKEN_8B, peak: float = H100_BF16_PEAK) -> float:
    """Model FLOPs utilization: 4 × 7.5e9 × tokens/s ÷ 798e12 for the 8B.

    >>> round(mfu(10_000), 4)
    0.3759
    """
    return flops_per_token * tokens_per_s / peak


@dataclass
class StepLog:
    """What a run measured, step by step."""

    seconds: list[float] = field(default_factory=list)
    real_tokens: list[int] = field(default_factory=list)
    positions: list[int] = field(default_factory=list)
    peak_allocated: list[int] = field(default_factory=list)
    forward_end_allocated: list[int] = field(default_factory=list)

    def summary(self, warmup: int) -> dict[str, Any]:
        """Throughput over the steps after ``warmup``; memory over all steps (the peak is the peak)."""
        if len(self.seconds) <= warmup:
            raise ValueError(f"{len(self.seconds)} steps recorded, need more than the {warmup} warm-up steps")
        secs, toks = self.seconds[warmup:], self.real_tokens[warmup:]
        tps = sum(toks) / sum(secs)
        return {
            "timed_steps": len(secs),
            "warmup_steps": warmup,
            "tokens_per_s": tps,
            "mfu": mfu(tps),
            "median_step_s": statistics.median(secs),
            "mean_tokens_per_step": sum(toks) / len(toks),
            "mean_positions_per_step": sum(self.positions[warmup:]) / len(toks),
            "token_efficiency": sum(toks) / max(1, sum(self.positions[warmup:])),
            "peak_allocated_gib": max(self.peak_allocated or [0]) / 2**30,
            "max_forward_end_allocated_gib": max(self.forward_end_allocated or [0]) / 2**30,
        }


@dataclass
class SweepConfig:
    """One configuration of the estimator-accuracy sweep (fixed-length sequences: no padding)."""

    model: str
    seq_len: int
    batch_size: int
    lora_r: int
    gradient_checkpointing: bool
    kbit_prep: bool = True
    attention: str = "sdpa"
    steps: int = 3

    @property
    def name(self) -> str:
        return (f"{self.model}-s{self.seq_len}-b{self.batch_size}-r{self.lora_r}-gc{int(self.gradient_checkpointing)}"
                f"-kp{int(self.kbit_prep)}")

    def estimator_kwargs(self) -> dict[str, Any]:
        """Arguments for ``ftlab.memory.estimate_memory`` describing exactly this run."""
        return {"model": self.model, "seq_len": self.seq_len, "batch_size": self.batch_size, "lora_r": self.lora_r,
                "gradient_checkpointing": self.gradient_checkpointing, "kbit_prep": self.kbit_prep,
                "attention": "flash" if self.attention == "sdpa" else self.attention, "padded": False,
                "optim": "paged_adamw_8bit", "lora_dropout": 0.05}


def sweep_configs() -> list[SweepConfig]:
    """≥ 8 configurations: seq 512/1024/2048, batch 1/4, GC on/off, r 16/64, and a smaller shape.

    With equal-length rows there is no padding mask, so SDPA runs its flash kernel (the estimator is
    told so: ``attention="flash"``); the padded path is checked by run A.
    """
    m8, m1 = "llama-3.1-8b", "llama-3.2-1b"
    return [
        SweepConfig(m8, 512, 1, 16, False),
        SweepConfig(m8, 1024, 1, 16, False),
        SweepConfig(m8, 2048, 1, 16, False),
        SweepConfig(m8, 512, 4, 64, False),
        SweepConfig(m8, 1024, 4, 16, True),
        SweepConfig(m8, 2048, 4, 16, True),
        SweepConfig(m8, 1024, 4, 64, True),
        SweepConfig(m8, 2048, 1, 64, True),
        SweepConfig(m8, 1024, 4, 16, True, kbit_prep=False),
        SweepConfig(m1, 1024, 4, 16, False),
        SweepConfig(m1, 2048, 4, 64, True),
        SweepConfig(m1, 512, 1, 16, False, kbit_prep=False),
    ]


# Shapes the bench builds that ftlab.memory has no name for: HF-style config dicts (ftlab.memory.resolve_shape
# reads them), so the estimator sees exactly what was built.
EXTRA_SHAPES: dict[str, dict[str, Any]] = {
    "smollm2-135m": {"model_type": "llama", "hidden_size": 576, "num_hidden_layers": 30, "intermediate_size": 1536,
                     "num_attention_heads": 9, "num_key_value_heads": 3, "vocab_size": 49152,
                     "tie_word_embeddings": True},
}


def estimator_model(name: str) -> str | dict[str, Any]:
    """What ``ftlab.memory.estimate_memory`` takes as ``model`` for a bench shape name."""
    return dict(EXTRA_SHAPES[name]) if name in EXTRA_SHAPES else name


def shape_of(name: str):
    """The ``ftlab.memory.ModelShape`` of a bench shape name."""
    from ftlab.memory import SHAPES, shape_from_config

    return SHAPES[name] if name in SHAPES else shape_from_config(EXTRA_SHAPES[name], name)


FAMILIES = ("llama-3.1-8b", "qwen2.5-7b", "mistral-7b", "smollm2-135m")
# budgets (GiB) under which recommend_config is checked per family on the H200: the estimate's total must fit,
# and the measured total (peak reserved + CUDA context + paged optimizer states) too
RECOMMEND_BUDGET_GIB = {"llama-3.1-8b": 16.0, "qwen2.5-7b": 16.0, "mistral-7b": 16.0, "smollm2-135m": 4.0}


def family_sweep_configs() -> list[SweepConfig]:
    """Issue 23's estimator sweep: 17 clean configurations over 4 families (fixed-length rows, no kbit prep,
    as B trains), one model load per family; seq 512-2048, batch 1-8, r 16/64, GC on and off."""
    out = []
    for fam, rows in {
        "llama-3.1-8b": [(512, 1, 16, False), (1024, 2, 16, False), (2048, 1, 64, False), (1024, 4, 16, True),
                         (2048, 4, 64, True)],
        "qwen2.5-7b": [(512, 2, 16, False), (1024, 1, 64, False), (1024, 4, 16, True), (2048, 2, 16, True)],
        "mistral-7b": [(512, 2, 16, False), (1024, 1, 16, False), (1024, 4, 64, True), (2048, 2, 16, True)],
        "smollm2-135m": [(1024, 4, 16, False), (2048, 4, 64, False), (2048, 8, 16, True), (512, 8, 16, False)],
    }.items():
        out += [SweepConfig(fam, s, b, r, g, kbit_prep=False) for s, b, r, g in rows]
    return out


def family_rows(sweep: dict[str, Any], estimate) -> list[dict[str, Any]]:
    """Sweep results (bench/h200.py sweep) → estimator_h200.json rows; ``estimate(model, **kw)`` is
    ``ftlab.memory.estimate_memory``. A failed configuration is left out (and listed by the caller)."""
    rows = []
    context = sweep["cuda_context_gib"]
    for c in sweep["configs"]:
        if c.get("error"):
            continue
        sc = SweepConfig(**{k: c[k] for k in ("model", "seq_len", "batch_size", "lora_r", "gradient_checkpointing",
                                               "kbit_prep", "attention", "steps")})
        kw = {**sc.estimator_kwargs(), "model": estimator_model(sc.model)}
        model = kw.pop("model")
        est = estimate(model, **kw, cuda_context_gib=context)
        measured = c["peak_allocated_bytes"] / 2**30
        rows.append({"family": sc.model, "model": sc.model, "seq_len": sc.seq_len, "batch_size": sc.batch_size,
                     "lora_r": sc.lora_r, "gradient_checkpointing": sc.gradient_checkpointing,
                     "kbit_prep": sc.kbit_prep, "attention": "sdpa (no padding: flash kernel)",
                     "measured_gib": round(measured, 3), "estimated_gib": round(est.peak_allocated_gib, 3),
                     "estimate_error": estimate_error(est.peak_allocated_gib, measured), "corrected": False,
                     "estimator_kwargs": {"model": model, **kw}, "weights_allocated_gib":
                     round(c["weights_allocated_bytes"] / 2**30, 3), "steps": sc.steps})
    return rows


def estimate_error(estimated: float, measured: float) -> float:
    """Signed error as a fraction of the measured value: 0.07 means the estimate is 7% over.

    >>> estimate_error(10.7, 10.0)
    0.07
    """
    return round((estimated - measured) / measured, 6)


def throughput_result(runs: dict[str, dict], meta: dict[str, Any]) -> dict[str, Any]:
    """The committed throughput JSON: device, date, command, versions, each run, and B/A from the same run."""
    a, b = runs["A"], runs["B"]
    speedup = b["tokens_per_s"] / a["tokens_per_s"]
    return {
        **meta,
        "speedup": round(speedup, 4),
        "memory_ratio_allocated": round(b["peak_allocated_gib"] / a["peak_allocated_gib"], 4),
        "memory_ratio_reserved": round(b["peak_reserved_gib"] / a["peak_reserved_gib"], 4),
        "goal": "B >= 2.5x A in tokens/s at peak memory <= A's",
        "goal_met": bool(speedup >= 2.5 and b["peak_allocated_gib"] <= a["peak_allocated_gib"]),
        "seed_example": {
            "tokens": SEED_EXAMPLE_TOKENS,
            "description": "5,000 examples x 300 tokens x 3 epochs (the articles' example)",
            "gpu_hours_A": round(SEED_EXAMPLE_TOKENS / a["tokens_per_s"] / 3600, 4),
            "gpu_hours_B": round(SEED_EXAMPLE_TOKENS / b["tokens_per_s"] / 3600, 4),
        },
        "runs": runs,
    }


def estimator_result(configs: list[dict[str, Any]], meta: dict[str, Any]) -> dict[str, Any]:
    """The committed estimator JSON: each configuration with its signed ``estimate_error``."""
    errors = [c["estimate_error"] for c in configs]
    return {**meta, "max_abs_error": max(abs(e) for e in errors), "goal": "every |estimate_error| <= 0.10",
            "goal_met": all(abs(e) <= 0.10 for e in errors), "configs": configs}


def write_json(path: str | Path, data: dict[str, Any]) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n")
    return path


def as_dict(obj: Any) -> dict[str, Any]:
    return asdict(obj)


KERNEL_FAMILIES = (
    ("4bit_dequant", ("dequant",)),
    ("attention", ("sdpa", "fmha", "flash", "attention", "flex", "triton_tem")),
    ("lm_head_loss", ("_forward_kernel", "_backward_kernel", "logprob")),
    ("matmul", ("gemm", "gemv", "xmma", "cutlass", "nvjet", "cublas", "wgmma")),
    ("optimizer", ("optimizer", "adam")),
)


def kernel_family(name: str) -> str:
    """The family of a CUDA kernel by its name, checked in order (cuDNN's attention kernels also say wgmma).

    >>> kernel_family("cudnn_generated_fort_native_sdpa_sm90_flash_fprop_wgmma_f16")
    'attention'
    >>> kernel_family("nvjet_sm90_tst_256x160_64x4_2x1_v_bz_coopA_TNT")
    'matmul'
    """
    low = name.lower()
    for family, keys in KERNEL_FAMILIES:
        if any(k in low for k in keys):
            return family
    return "elementwise_norm_copy_other"


def reclassify_profile(profile: dict[str, Any]) -> dict[str, Any]:
    """Fix a profile recorded with the first categorizer (which matched 'sm90_' as a matmul before
    attention): move the listed top kernels to their family. Kernels below the top 15 stay where they were."""
    ms = dict(profile["ms_per_step"])
    ms.setdefault("attention", 0.0)
    moved = 0.0
    for name, t in profile.get("top_kernels_ms_per_step", {}).items():
        fam = kernel_family(name)
        if fam == "attention" and "sm90" in name.lower():
            ms["matmul"] -= t
            ms["attention"] += t
            moved += t
    total = sum(ms.values())
    return {**profile, "ms_per_step": {k: round(v, 2) for k, v in ms.items()},
            "share": {k: round(v / total, 4) for k, v in ms.items()} if total else {},
            "reclassified_ms": round(moved, 2)}


def row_estimator_kwargs(row: dict[str, Any]) -> dict[str, Any]:
    """The ``ftlab.memory.estimate_memory`` arguments (model, seq_len, batch_size, ...) that produced a committed
    estimator row: the row's own ``estimator_kwargs`` where it records them (estimator_h200.json), else read
    back from the row's fields as bench/report.py wrote them for the H100 (sweep rows: fixed-length rows, flash
    kernel; run A: padded SDPA with kbit prep; run B: length-grouped SDPA, no kbit prep, Liger)."""
    if "estimator_kwargs" in row:
        return dict(row["estimator_kwargs"])
    base = {"model": row["model"], "seq_len": row["seq_len"], "batch_size": row["batch_size"], "lora_r": row["lora_r"],
            "gradient_checkpointing": row["gradient_checkpointing"], "kbit_prep": row["kbit_prep"]}
    attn = row["attention"]
    if attn.startswith("sdpa (no padding"):
        return SweepConfig(**{k: base[k] for k in ("model", "seq_len", "batch_size", "lora_r")},
                           gradient_checkpointing=base["gradient_checkpointing"],
                           kbit_prep=base["kbit_prep"]).estimator_kwargs()
    if attn == "sdpa (padded batches)":
        return base
    if attn == "sdpa (length-grouped batches)":
        return {**base, "liger": True}
    raise ValueError(f"estimator row {row.get('model')} {row.get('seq_len')}x{row.get('batch_size')}: "
                     f"unknown attention {attn!r}; record its estimator_kwargs")


def drifted_rows(rows: list[dict[str, Any]], estimate_peak_gib, tolerance: float = 0.10) -> list[str]:
    """Committed estimator rows whose estimate, recomputed now by ``estimate_peak_gib(model, **kwargs)``, is
    off the row's measured peak by more than ``tolerance`` (a fraction): one line per row, empty if none."""
    bad = []
    for row in rows:
        kw = row_estimator_kwargs(row)
        model = kw.pop("model")
        measured = row.get("measured_gib", row.get("measured_peak_allocated_gib"))
        now = estimate_peak_gib(model, **kw)
        err = (now - measured) / measured
        if abs(err) > tolerance:
            was = row.get("estimated_gib", row.get("estimated_peak_allocated_gib"))
            label = row.get("family") or row.get("model") or model
            bad.append(f"{label} {row['seq_len']}x{row['batch_size']} r{row['lora_r']} "
                       f"gc{int(row['gradient_checkpointing'])}: measured {measured:.2f} GiB, committed estimate "
                       f"{was:.2f}, today's {now:.2f} ({err:+.1%})")
    return bad
