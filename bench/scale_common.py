"""Pure-Python parts of the 2-GPU benchmark (bench/scale_gpu.py): the setups, per-parameter seeds, the
aggregation over ranks, scaling efficiency, the estimate to compare with, and the result file.
Unit-tested on the CPU (tests/test_bench_scale.py); the GPU script imports them.

Not yet run on GPUs: see bench/README.md.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from typing import Any

from ftlab.scale import per_gpu_memory


@dataclass(frozen=True)
class ScaleSetup:
    """One measured configuration: the model shape, the step per GPU, and how it is launched."""

    name: str
    shape: str
    accelerate: str  # ftlab/accelerate/<name>.yaml
    seq_len: int
    per_device_batch: int
    gradient_checkpointing: bool
    optim: str  # transformers' optim name
    estimator_optim: str  # the same optimizer in ftlab.memory's terms
    kbit_prep: bool = False
    quant_storage: str = "uint8"
    lora_r: int = 16
    lora_dropout: float = 0.05
    warmup_steps: int = 3
    timed_steps: int = 10

    @property
    def tokens_per_step_per_gpu(self) -> int:
        return self.seq_len * self.per_device_batch

    def estimator_kwargs(self) -> dict[str, Any]:
        """Arguments for ``ftlab.scale.per_gpu_memory`` describing this run (equal-length rows: no padding,
        so SDPA takes its flash kernel)."""
        return {"gradient_checkpointing": self.gradient_checkpointing, "kbit_prep": self.kbit_prep,
                "optim": self.estimator_optim, "lora_r": self.lora_r, "lora_dropout": self.lora_dropout,
                "attention": "flash", "padded": False}


SETUPS = {
    # DDP on the Llama-3.1-8B shape: the model fits one H200 many times over; 2 GPUs should train ~2× the tokens
    "ddp_8b": ScaleSetup("ddp_8b", "llama-3.1-8b", "ddp", seq_len=1024, per_device_batch=8,
                         gradient_checkpointing=False, optim="paged_adamw_8bit", estimator_optim="paged_adamw_8bit"),
    # FSDP + QLoRA on the Llama-3.1-70B shape, the documented recipe: bf16 storage, no kbit prep, torch AdamW
    "fsdp_70b": ScaleSetup("fsdp_70b", "llama-3.1-70b", "fsdp_qlora", seq_len=1024, per_device_batch=1,
                           gradient_checkpointing=True, optim="adamw_torch", estimator_optim="adamw",
                           quant_storage="bfloat16", warmup_steps=2, timed_steps=6),
}


def param_seed(seed: int, name: str) -> int:
    """A seed per parameter name: every rank draws the same random weights for it, with no communication,
    and one layer at a time (so a 70B model is never whole in bf16).

    >>> param_seed(0, "model.layers.0.mlp.up_proj.weight") == param_seed(0, "model.layers.0.mlp.up_proj.weight")
    True
    >>> param_seed(0, "a") != param_seed(1, "a") != param_seed(0, "b")
    True
    """
    return int.from_bytes(hashlib.sha256(f"{seed}:{name}".encode()).digest()[:8], "little") & (2**63 - 1)


def aggregate_ranks(ranks: list[dict[str, Any]]) -> dict[str, Any]:
    """One run over N ranks: tokens/s of all GPUs together (each rank's timed tokens over the slowest rank's
    timed seconds: they step together), and the peak memory of the fullest GPU."""
    if not ranks:
        raise ValueError("no rank reported")
    seconds = max(r["timed_seconds"] for r in ranks)
    tokens = sum(r["timed_tokens"] for r in ranks)
    return {
        "gpus": len(ranks),
        "tokens_per_s": tokens / seconds,
        "timed_seconds": seconds,
        "timed_tokens": tokens,
        "peak_allocated_gib": max(r["peak_allocated_gib"] for r in ranks),
        "peak_reserved_gib": max(r["peak_reserved_gib"] for r in ranks),
        "per_rank": ranks,
    }


def scaling_efficiency(tokens_per_s_n: float, tokens_per_s_1: float, n: int = 2) -> float:
    """(N-GPU tokens/s) ÷ (N × 1-GPU tokens/s): 1.0 is perfect scaling.

    >>> scaling_efficiency(1900.0, 1000.0)
    0.95
    """
    return tokens_per_s_n / (n * tokens_per_s_1)


def estimate(setup: ScaleSetup, n_gpus: int) -> dict[str, Any]:
    """ftlab's per-GPU estimate for the setup: ``total_gib`` (what the GPU holds) and ``peak_allocated_gib``
    (what ``torch.cuda.max_memory_allocated`` should show)."""
    strategy = "fsdp" if setup.accelerate == "fsdp_qlora" else "ddp"
    m = per_gpu_memory(setup.shape, setup.seq_len, setup.per_device_batch, n_gpus=n_gpus, strategy=strategy,
                       **setup.estimator_kwargs())
    return m.to_dict()


def ddp_result(one: dict[str, Any], two: dict[str, Any], meta: dict[str, Any]) -> dict[str, Any]:
    """The committed DDP figures: tokens/s on 1 and 2 GPUs and ``scaling_efficiency`` (goal ≥ 0.9)."""
    eff = scaling_efficiency(two["tokens_per_s"], one["tokens_per_s"], two["gpus"])
    return {**meta, "setup": asdict(SETUPS["ddp_8b"]), "tokens_per_s_1gpu": round(one["tokens_per_s"], 1),
            "tokens_per_s_2gpu": round(two["tokens_per_s"], 1), "scaling_efficiency": round(eff, 4),
            "goal": "scaling_efficiency >= 0.9", "goal_met": bool(eff >= 0.9), "one_gpu": one, "two_gpus": two}


def fsdp_result(run: dict[str, Any], meta: dict[str, Any], how_built: str) -> dict[str, Any]:
    """The committed FSDP + QLoRA 70B figures: measured peak per GPU, the estimate for the same setup, tokens/s."""
    setup = SETUPS["fsdp_70b"]
    est = estimate(setup, run["gpus"])
    return {**meta, "setup": asdict(setup), "how_built": how_built,
            "fsdp_70b_peak_gib": round(run["peak_allocated_gib"], 3),
            "fsdp_70b_peak_reserved_gib": round(run["peak_reserved_gib"], 3),
            "fsdp_70b_estimate_gib": round(est["peak_allocated_gib"], 3),
            "fsdp_70b_estimate_total_gib": round(est["total_gib"], 3),
            "estimate_error": round((est["peak_allocated_gib"] - run["peak_allocated_gib"]) / run["peak_allocated_gib"], 4),
            "fsdp_70b_tokens_per_s": round(run["tokens_per_s"], 1), "estimate": est, "run": run}
