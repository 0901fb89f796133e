"""The recommended training configuration for a GPU: the fastest setup whose :func:`~ftlab.memory.estimate_memory`
fits the memory budget, with the reasons for each choice (notebook 04, ``bench/``)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from ftlab.errors import FtlabError, ParameterError
from ftlab.memory.estimate import (
    DEFAULT_CUDA_CONTEXT_GIB,
    LLAMA_TARGETS,
    MemoryEstimate,
    ModelShape,
    _ceil,
    estimate_memory,
    resolve_shape,
)

__all__ = ["ConfigRecommendation", "recommend_config"]


@dataclass
class ConfigRecommendation:
    """What :func:`recommend_config` picks, with the reasons and the estimate it relies on."""

    shape: str
    budget_gib: float
    attn_implementation: str
    padding_free: bool
    packing: bool
    max_length: int
    per_device_train_batch_size: int
    tokens_per_step: int
    gradient_checkpointing: bool
    checkpoint_every: int
    kbit_prep: bool
    use_liger_kernel: bool
    optim: str
    lora_r: int
    lora_dropout: float
    estimate: MemoryEstimate
    reasons: list[str] = field(default_factory=list)

    def sft_config_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``trl.SFTConfig`` (TRL 1.x, transformers 5)."""
        kw: dict[str, Any] = {
            "per_device_train_batch_size": self.per_device_train_batch_size,
            "max_length": self.max_length,
            "packing": self.packing,
            "gradient_checkpointing": self.gradient_checkpointing,
            "optim": self.optim,
            "model_init_kwargs": {"attn_implementation": self.attn_implementation},
        }
        if self.packing:
            # best-fit-decreasing packing into one row of `tokens_per_step` tokens (padding-free: documents
            # stay apart through position_ids), padded to that length so that compiled attention kernels
            # see one shape; examples longer than max_length should be truncated before
            kw.update(packing_strategy="bfd", max_length=self.tokens_per_step, per_device_train_batch_size=1,
                      pad_to_multiple_of=self.tokens_per_step)
        else:
            kw["train_sampling_strategy"] = "group_by_length"
        if self.gradient_checkpointing and self.checkpoint_every > 1:
            kw["gradient_checkpointing_kwargs"] = {"every_n_layers": self.checkpoint_every}
        if self.use_liger_kernel:
            kw["use_liger_kernel"] = True
        return kw

    def to_dict(self) -> dict[str, Any]:
        d = {k: v for k, v in asdict(self).items() if k != "estimate"}
        d["estimate"] = self.estimate.to_dict()
        d["sft_config_kwargs"] = self.sft_config_kwargs()
        return d


def _available(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def recommend_config(
    shape: str | ModelShape | dict,
    gpu_mem_gib: float,
    *,
    seq_len: int = 1024,
    budget_gib: float | None = None,
    lora_r: int = 16,
    lora_dropout: float = 0.05,
    lora_targets: tuple[str, ...] = LLAMA_TARGETS,
    quant: str = "nf4-dq",
    optim: str = "paged_adamw_8bit",
    cuda: bool = True,
    flash_attn: bool | None = None,
    flex_attn: bool = False,
    liger: bool | None = None,
    max_tokens_per_step: int = 16384,
    min_tokens_without_gc: int = 4096,
    cuda_context_gib: float = DEFAULT_CUDA_CONTEXT_GIB,
) -> ConfigRecommendation:
    """The fastest training configuration that the estimator says fits, for a model shape and a GPU.

    The rules, in order of what they save:

    1. **No padding.** With a varlen attention kernel (FlashAttention; PyTorch's flex attention when asked
       for with ``flex_attn=True``), pack examples with TRL's best-fit-decreasing packing, which is
       padding-free: every token computed is a real one. Without one, padded SDPA batches grouped by
       length (``train_sampling_strategy="group_by_length"``), which keeps most of the padding out.
    2. **bf16 residual stream.** Skip kbit prep's fp32 upcast of embeddings, lm_head and norms (TRL 1.x
       does not do it either): it costs 2 bytes per vocabulary weight and doubles most activations.
    3. **No recomputation if it fits.** Gradient checkpointing recomputes the forward pass: +50% of the
       matmuls of a frozen 4-bit base, whose backward only needs input gradients. It stays off if at
       least ``min_tokens_without_gc`` tokens per step fit; then checkpointing every 2nd layer; else on.
    4. **The biggest step that fits**, up to ``max_tokens_per_step``: it amortizes the per-step costs
       (dequantizing every 4-bit weight, kernel launches, the optimizer step).
    5. Liger's fused RMSNorm/SwiGLU kernels where the package is installed. TRL ≥ 1.0 already computes the
       loss through its chunked LM head, so no ``(tokens, vocab)`` logits are ever built.

    ``budget_gib`` defaults to 92% of ``gpu_mem_gib``; the check is on the estimate's total (CUDA context
    and allocator slack included).

    >>> rec = recommend_config("llama-3.1-8b", 80, flash_attn=False, flex_attn=True, liger=False)
    >>> rec.padding_free, rec.attn_implementation
    (True, 'flex_attention')
    """
    s = resolve_shape(shape)
    budget = budget_gib if budget_gib is not None else 0.92 * gpu_mem_gib
    if budget <= 0:
        raise ParameterError(f"budget_gib={budget} must be positive")
    if flash_attn is None:
        flash_attn = cuda and _available("flash_attn")
    # flex attention is opt-in: on the H100 of bench/ (torch 2.11, transformers 5.23) a packed 10k-token step
    # with it had not finished after 200 s (compilation), so it is not picked by itself
    flex_attn = bool(flex_attn)
    if liger is None:
        liger = cuda and _available("liger_kernel")
    reasons: list[str] = []
    if flash_attn:
        attn, est_attn, padding_free = "flash_attention_2", "flash", True
        reasons.append("FlashAttention varlen kernels: padding-free packing, no attention mask")
    elif flex_attn:
        attn, est_attn, padding_free = "flex_attention", "flex", True
        reasons.append("no FlashAttention package: PyTorch flex attention with a block-sparse document mask "
                       "makes padding-free packing exact and skips the masked blocks")
    else:
        attn, est_attn, padding_free = "sdpa", "sdpa", False
        reasons.append("no varlen attention kernel: padded batches with SDPA, grouped by length so that a "
                       "batch holds examples of similar length and little padding")
    reasons.append("kbit prep's fp32 upcast skipped: bf16 embeddings, lm_head, norms and residual stream")
    if liger:
        reasons.append("Liger RMSNorm and SwiGLU kernels (fewer saved tensors, fused elementwise work)")
    reasons.append("loss through TRL's fused chunked LM head: no (tokens × vocab) logits")

    common = {"lora_r": lora_r, "lora_dropout": lora_dropout, "lora_targets": tuple(lora_targets),
              "quant": quant, "optim": optim, "kbit_prep": False, "attention": est_attn,
              "padding_free": padding_free, "padded": not padding_free, "liger": bool(liger)}

    def fits(rows: int, gc: bool, every: int = 1) -> MemoryEstimate | None:
        est = estimate_memory(s, seq_len, rows, gradient_checkpointing=gc, checkpoint_every=every,
                              cuda_context_gib=cuda_context_gib, **common)
        return est if est.total_gib <= budget else None

    max_rows = max(1, max_tokens_per_step // seq_len)
    min_rows_no_gc = max(1, _ceil(min_tokens_without_gc, seq_len))
    choice = None
    for gc, every, min_rows, why in [
        (False, 1, min_rows_no_gc, "gradient checkpointing off: the activations of the whole step fit"),
        (True, 2, min_rows_no_gc, "checkpointing every 2nd layer: half the recomputation, and it fits"),
        (True, 1, 1, "gradient checkpointing on: without it, too few tokens per step fit"),
    ]:
        for rows in range(max_rows, min_rows - 1, -1):
            est = fits(rows, gc, every)
            if est is not None:
                choice = (rows, gc, every, est)
                reasons.append(why)
                break
        if choice:
            break
    if choice is None:
        est = estimate_memory(s, seq_len, 1, gradient_checkpointing=True, cuda_context_gib=cuda_context_gib,
                              **common)
        raise FtlabError(
            f"{s.name} does not fit {budget:.1f} GiB even at 1 × {seq_len} tokens with gradient checkpointing "
            f"(estimate {est.total_gib:.1f} GiB); use a shorter max length, a smaller model or a bigger GPU"
        )
    rows, gc, every, est = choice
    reasons.append(f"{rows} × {seq_len} = {rows * seq_len} tokens per step, estimated {est.total_gib:.1f} GiB "
                   f"of {budget:.1f}")
    return ConfigRecommendation(
        shape=s.name, budget_gib=round(budget, 3), attn_implementation=attn, padding_free=padding_free,
        packing=padding_free, max_length=seq_len, per_device_train_batch_size=rows,
        tokens_per_step=rows * seq_len, gradient_checkpointing=gc, checkpoint_every=every if gc else 1,
        kbit_prep=False, use_liger_kernel=bool(liger), optim=optim, lora_r=lora_r, lora_dropout=lora_dropout,
        estimate=est, reasons=reasons,
    )
