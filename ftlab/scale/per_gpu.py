"""Memory per GPU: ftlab's estimator divided over DDP copies or FSDP shards, how many GPUs a step needs,
and a plan over the GPUs as sold.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ftlab.errors import ParameterError
from ftlab.memory import (
    ALLOCATOR_SLACK,
    DEFAULT_CUDA_CONTEXT_GIB,
    GIB,
    MemoryEstimate,
    ModelShape,
    _ceil,
    _r512,
    estimate_memory,
    resolve_shape,
)

__all__ = [
    "GPU_SIZES",
    "STRATEGIES",
    "PerGPUMemory",
    "gpu_plan",
    "gpus_needed",
    "per_gpu_memory",
    "split_per_gpu",
]


STRATEGIES = ("ddp", "fsdp")


# --- memory per GPU ---------------------------------------------------------------------------------------

@dataclass
class PerGPUMemory:
    """The memory one GPU holds when a training step is spread over ``n_gpus`` (bytes per GPU)."""

    model: str
    strategy: str
    n_gpus: int
    sharded: dict[str, int]  # already divided by n_gpus
    replicated: dict[str, int]  # what every GPU holds in full
    total: int
    single_gpu_total: int
    offloaded: int = 0  # bytes per process kept in CPU RAM (FSDP with fsdp_offload_params)
    notes: list[str] = field(default_factory=list)

    @property
    def total_gib(self) -> float:
        return self.total / GIB

    @property
    def single_gpu_gib(self) -> float:
        return self.single_gpu_total / GIB

    @property
    def peak_allocated(self) -> int:
        """What ``torch.cuda.max_memory_allocated`` should report on each GPU: the total less the CUDA
        context, the allocator's slack and paged optimizer states."""
        skip = ("cuda_context", "allocator_overhead", "optimizer_states_paged")
        return sum(v for k, v in [*self.sharded.items(), *self.replicated.items()] if k not in skip)

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "strategy": self.strategy, "n_gpus": self.n_gpus,
                "total_gib": round(self.total_gib, 3), "peak_allocated_gib": round(self.peak_allocated / GIB, 3),
                "single_gpu_gib": round(self.single_gpu_gib, 3),
                "offloaded_gib": round(self.offloaded / GIB, 3),
                "sharded_gib": {k: round(v / GIB, 4) for k, v in self.sharded.items()},
                "replicated_gib": {k: round(v / GIB, 4) for k, v in self.replicated.items()},
                "notes": list(self.notes)}

    def table(self) -> str:
        width = max(len(k) for k in [*self.sharded, *self.replicated])
        lines = [f"{self.model}, {self.strategy.upper()} on {self.n_gpus} GPUs: per GPU"]
        if self.offloaded:
            lines.append(f"  in CPU RAM (fsdp_offload_params), per process: {self.offloaded / GIB:.3f} GiB")
        if self.sharded:
            lines.append(f"  sharded (÷{self.n_gpus}):")
            lines += [f"    {k:<{width}}  {v / GIB:8.3f} GiB" for k, v in self.sharded.items()]
        lines.append("  on every GPU in full:")
        lines += [f"    {k:<{width}}  {v / GIB:8.3f} GiB" for k, v in self.replicated.items()]
        lines.append(f"  {'total per GPU':<{width + 2}}  {self.total_gib:8.3f} GiB   (one GPU alone: {self.single_gpu_gib:.3f} GiB)")
        return "\n".join(lines)


def _packed_weight_bytes(shape: ModelShape, quant: str) -> int:
    """Bytes of the quantized linear weights themselves (the 4-bit codes), without their quantization state."""
    per_layer = 0
    for n_in, n_out in shape.linear_shapes().values():
        n = n_in * n_out
        per_layer += {"bf16": _r512(2 * n), "int8": _r512(n)}.get(quant, _r512(_ceil(n, 2)))
    return per_layer * shape.num_layers


def split_per_gpu(est: MemoryEstimate, shape: ModelShape, n_gpus: int, strategy: str = "fsdp",
                  prefetch_units: int = 2, offload: bool = False) -> PerGPUMemory:
    """Spread a single-GPU :class:`~ftlab.memory.MemoryEstimate` over ``n_gpus``.

    **DDP** replicates everything: each GPU holds the single-GPU step, plus DDP's gradient buckets (a flat
    copy of every trainable gradient, for the all-reduce). It trains N micro-batches at once; it does not
    make a model fit.

    **FSDP** (``FULL_SHARD``) keeps 1/N of each parameter, gradient and optimizer state on each GPU:
    the 4-bit codes, embeddings, lm_head, norms, LoRA weights, their gradients and optimizer states. What
    does not shard:

    - activations, backward transients and the loss: each GPU runs its own micro-batch;
    - the 4-bit quantization state (absmax, code book): module attributes, not FSDP parameters;
    - the gathered units: FSDP all-gathers a decoder layer before using it and frees it after; with
      ``BACKWARD_PRE`` prefetch ``prefetch_units`` layers are whole at once. The root unit (embeddings,
      final norm, lm_head) stays gathered from the forward to the backward (FSDP does not reshard the root
      after the forward), so at the peak it is whole;
    - the CUDA context, and the allocator's slack on what this GPU holds.

    With ``offload=True`` (``fsdp_offload_params``) the shards, their gradients and the optimizer states live
    in CPU RAM; the GPU holds what does not shard and the gathered units, whole.

    NCCL's communication buffers (some hundred MiB) are not counted.
    """
    if n_gpus < 1:
        raise ParameterError(f"n_gpus={n_gpus} must be at least 1")
    if strategy not in STRATEGIES:
        raise ParameterError(f"strategy={strategy!r}: use one of {', '.join(STRATEGIES)}")
    if offload and strategy != "fsdp":
        raise ParameterError("offload=True is FSDP's fsdp_offload_params; DDP keeps everything on the GPU")
    b = est.breakdown
    notes: list[str] = []
    context = b["cuda_context"]
    if strategy == "ddp":
        replicated = {k: v for k, v in b.items() if k not in ("allocator_overhead", "cuda_context")}
        replicated["ddp_gradient_buckets"] = b["lora_params"] if n_gpus > 1 else 0
        sharded: dict[str, int] = {}
        notes.append("DDP: every GPU holds the whole model and a micro-batch; N GPUs train N micro-batches per step")
    else:
        L = shape.num_layers
        codes = min(_packed_weight_bytes(shape, est.setup.quant), b["weights_quantized"])
        layer_unit = (codes + b["weights_other"] + b["lora_params"]) / L
        # a gathered unit adds the other GPUs' shards to this one's; offloaded, it arrives whole from the CPU
        not_own = 1.0 if offload else 1 - 1 / n_gpus
        sharded = {k: _ceil(int(v), n_gpus) for k, v in {
            "weights_4bit_codes": codes, "weights_embeddings_lm_head": b["weights_embeddings_lm_head"],
            "weights_other": b["weights_other"], "lora_params": b["lora_params"], "gradients": b["gradients"],
            "optimizer_states": b["optimizer_states"], "optimizer_states_paged": b["optimizer_states_paged"],
        }.items()}
        replicated = {
            "weights_quant_state": b["weights_quantized"] - codes,
            "fsdp_gathered_layers": int(min(prefetch_units, L) * layer_unit * not_own),
            "fsdp_gathered_root": int(b["weights_embeddings_lm_head"] * not_own),
            "activations": b["activations"], "backward_transients": b["backward_transients"],
            "logits_and_loss": b["logits_and_loss"],
        }
        notes.append(f"FSDP FULL_SHARD: parameters, gradients and optimizer states ÷{n_gpus}; each GPU still "
                     "holds its micro-batch's activations and, at the peak, the layers being used")
    offloaded = 0
    if offload:
        offloaded = sum(sharded.values())
        sharded = {}
        notes.append("fsdp_offload_params: the shards, gradients and optimizer states wait in CPU RAM; "
                     "each step copies them to the GPU and back (slower)")
    # what torch.cuda.max_memory_allocated sees: everything but the paged optimizer states (managed memory)
    peak = sum(v for k, v in [*sharded.items(), *replicated.items()] if k != "optimizer_states_paged")
    replicated["allocator_overhead"] = int(ALLOCATOR_SLACK * peak)
    replicated["cuda_context"] = context
    total = sum(sharded.values()) + sum(replicated.values())
    notes.append("NCCL communication buffers (a few hundred MiB per GPU) are not counted")
    return PerGPUMemory(model=est.model, strategy=strategy, n_gpus=n_gpus, sharded=sharded, replicated=replicated,
                        total=int(total), single_gpu_total=est.total, offloaded=int(offloaded), notes=notes)


def per_gpu_memory(model: str | ModelShape | dict, seq_len: int, batch_size: int = 1, *, n_gpus: int = 2,
                   strategy: str = "fsdp", cuda_context_gib: float = DEFAULT_CUDA_CONTEXT_GIB,
                   prefetch_units: int = 2, offload: bool = False, **options: Any) -> PerGPUMemory:
    """The memory per GPU of a training step with ``batch_size`` rows of ``seq_len`` tokens *per GPU*,
    spread over ``n_gpus`` with ``strategy`` ``"ddp"`` or ``"fsdp"``. ``options`` go to
    :func:`ftlab.memory.estimate_memory` (``gradient_checkpointing``, ``optim``, ``kbit_prep``, ...)."""
    shape = resolve_shape(model)
    est = estimate_memory(shape, seq_len, batch_size, cuda_context_gib=cuda_context_gib, **options)
    return split_per_gpu(est, shape, n_gpus, strategy, prefetch_units, offload)


def gpus_needed(model: str | ModelShape | dict, seq_len: int, batch_size: int, gpu_mem_gib: float, *,
                strategy: str = "fsdp", max_gpus: int = 16, budget_fraction: float = 0.92, offload: bool = False,
                **options: Any) -> PerGPUMemory | None:
    """The fewest GPUs of ``gpu_mem_gib`` on which the step fits (92% of the memory by default), with its
    per-GPU split; ``None`` if even ``max_gpus`` are not enough. With DDP the answer is 1 or None: DDP
    replicates the model, so more GPUs never make it fit."""
    for n in range(1, max_gpus + 1):
        fsdp = strategy == "fsdp" and (n > 1 or offload)
        m = per_gpu_memory(model, seq_len, batch_size, n_gpus=n, strategy="fsdp" if fsdp else "ddp",
                           offload=offload and fsdp, **options)
        if m.total_gib <= budget_fraction * gpu_mem_gib:
            return m
        if strategy == "ddp":
            return None
    return None


# GPUs as sold (their memory in GB as the vendor states it, which is close to GiB for these cards).
GPU_SIZES = {"RTX 4090 (24 GB)": 24.0, "L40S / RTX 6000 Ada (48 GB)": 48.0, "A100 / H100 (80 GB)": 80.0,
             "H200 (141 GB)": 141.0}


def gpu_plan(models: Sequence[str], seq_len: int, batch_size: int = 1, *, gpu_sizes: dict[str, float] | None = None,
             **options: Any) -> list[dict[str, Any]]:
    """For each model and GPU: how many GPUs the step needs (one, else FSDP over several), and the memory per GPU.

    >>> rows = gpu_plan(["llama-3.1-8b"], 1024, 4, gradient_checkpointing=True)
    >>> [r["gpus"] for r in rows]
    [1, 1, 1, 1]
    """
    rows = []
    for model in models:
        for gpu, gib in (gpu_sizes or GPU_SIZES).items():
            fit = gpus_needed(model, seq_len, batch_size, gib, **options)
            rows.append({"model": model, "gpu": gpu, "gpu_gib": gib, "gpus": fit.n_gpus if fit else None,
                         "how": ("FSDP" if fit.strategy == "fsdp" else "one GPU") if fit else "does not fit 16 GPUs",
                         "per_gpu_gib": round(fit.total_gib, 1) if fit else None})
    return rows
