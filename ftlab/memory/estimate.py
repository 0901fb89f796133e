"""The VRAM estimator: what a QLoRA (or LoRA) training step keeps on the GPU, from first principles.

Nothing here is a fitted constant. Every line of the breakdown counts the tensors that the libraries
of the stack (transformers 5, TRL 1.x, PEFT, bitsandbytes, PyTorch autograd and autocast) actually
allocate, for a decoder-only model of a given shape:

- **Weights.** bitsandbytes ``Params4bit`` stores two 4-bit codes per byte, plus a quantization state per
  block of 64 weights: one fp32 absmax, or with double quantization one uint8 absmax plus an fp32
  absmax per 256 blocks. The embeddings, the ``lm_head`` and the norms are not quantized: bf16, or fp32
  once ``peft.prepare_model_for_kbit_training`` has upcast them ("kbit prep").
- **LoRA parameters, their gradients and the optimizer states.** TRL casts the adapters of a quantized
  model to bf16; PEFT keeps them in fp32 otherwise. bitsandbytes' 8-bit Adam keeps two uint8 states and
  two fp32 absmax per 256 values; the *paged* variant puts the uint8 states in CUDA managed memory,
  which ``torch.cuda.max_memory_allocated`` does not see (it is counted in the total).
- **Activations.** What autograd saves for the backward pass, tensor by tensor: the fp32 copy each
  RMSNorm keeps, the dropout mask and the bf16 input each LoRA ``lora_A`` keeps, the SiLU input and the
  two operands of the gate product, q/k/v/output/logsumexp of the attention kernel (and the repeated
  k/v plus the additive mask when a padding mask forces SDPA off its flash kernel). The 4-bit base
  matmul keeps nothing but its packed weight. With gradient checkpointing only each layer's input is
  kept, and one layer is recomputed at a time during the backward pass.
- **Vocabulary logits and loss.** TRL ≥ 1.0 scores the labels through a fused, chunked LM head (tiles of
  4096 tokens × 32768 vocabulary entries): no ``(tokens, vocab)`` logits exist. The plain transformers
  loss instead holds the bf16 logits, their fp32 upcast and the fp32 log-softmax, which is what the
  articles' ~16 GB figure leaves out (see :func:`seed_claims`).
- **CUDA context and allocator overhead**: outside ``max_memory_allocated``, counted in the total.

Example::

    >>> from ftlab.memory import estimate_memory
    >>> est = estimate_memory("llama-3.1-8b", seq_len=1024, batch_size=4, gradient_checkpointing=True)
    >>> round(est.total_gib, 1) > 8
    True
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from ftlab.errors import FtlabError, ParameterError

__all__ = ["ADAM8_BLOCK", "ADAM8_MIN_SIZE", "ALLOCATOR_SLACK", "ATTENTIONS", "DEFAULT_CUDA_CONTEXT_GIB", "GIB",
           "LLAMA_TARGETS", "LOSSES", "NF4_BLOCK", "NF4_NESTED_BLOCK", "OPTIMS", "QUANTS", "SEED_CLAIMS",
           "SHAPES", "TRL_TOKEN_CHUNK", "TRL_VOCAB_CHUNK", "MemoryEstimate", "ModelShape", "TrainSetup",
           "estimate_memory", "layer_activation_bytes_per_token", "lora_param_count", "resolve_shape",
           "seed_claims", "shape_from_config", "weight_bytes"]

GIB = 1024**3
LLAMA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
QUANTS = ("nf4-dq", "nf4", "int8", "bf16")
OPTIMS = ("adamw", "adamw_8bit", "paged_adamw_8bit")
ATTENTIONS = ("sdpa", "flash", "flex", "eager")
LOSSES = ("trl_fused", "full_logits")

# TRL 1.x fused LM head (trl/kernels/chunked_logprob.py): tiles of TOKEN_CHUNK × VOCAB_CHUNK.
TRL_TOKEN_CHUNK = 4096
TRL_VOCAB_CHUNK = 32768
# bitsandbytes blockwise quantization
NF4_BLOCK = 64
NF4_NESTED_BLOCK = 256
ADAM8_BLOCK = 256
ADAM8_MIN_SIZE = 4096
# Measured on the H100 of bench/ (torch 2.11, CUDA 13.0): device memory in use outside the caching allocator
# (context, cuBLAS handles) was 0.669 GiB. Other drivers and GPUs differ by a few hundred MiB.
DEFAULT_CUDA_CONTEXT_GIB = 0.67
# The caching allocator rounds and splits blocks: reserved ran 1-7% above allocated at the peak in bench/
# (bench/results/raw/sweep.json); this is the one term of the total that is an observed margin, not a count.
ALLOCATOR_SLACK = 0.06


@dataclass(frozen=True)
class ModelShape:
    """The shape of a decoder-only transformer: all the estimator needs to know about a model."""

    name: str
    hidden_size: int
    num_layers: int
    intermediate_size: int
    num_heads: int
    num_kv_heads: int
    vocab_size: int
    head_dim: int | None = None
    tie_word_embeddings: bool = False
    attention_bias: bool = False  # Qwen2 has q/k/v biases

    @property
    def hd(self) -> int:
        return self.head_dim or self.hidden_size // self.num_heads

    @property
    def q_dim(self) -> int:
        return self.num_heads * self.hd

    @property
    def kv_dim(self) -> int:
        return self.num_kv_heads * self.hd

    def linear_shapes(self) -> dict[str, tuple[int, int]]:
        """(in_features, out_features) of each projection of one decoder layer."""
        h, i = self.hidden_size, self.intermediate_size
        return {
            "q_proj": (h, self.q_dim), "k_proj": (h, self.kv_dim), "v_proj": (h, self.kv_dim),
            "o_proj": (self.q_dim, h), "gate_proj": (h, i), "up_proj": (h, i), "down_proj": (i, h),
        }

    @property
    def num_params(self) -> int:
        """Total parameters, e.g. 8.03e9 for llama-3.1-8b."""
        lin = sum(a * b for a, b in self.linear_shapes().values()) * self.num_layers
        emb = self.vocab_size * self.hidden_size * (1 if self.tie_word_embeddings else 2)
        norms = (2 * self.num_layers + 1) * self.hidden_size
        bias = (self.q_dim + 2 * self.kv_dim) * self.num_layers if self.attention_bias else 0
        return lin + emb + norms + bias


SHAPES: dict[str, ModelShape] = {
    s.name: s
    for s in [
        ModelShape("llama-3.1-8b", 4096, 32, 14336, 32, 8, 128256),
        ModelShape("llama-3.1-70b", 8192, 80, 28672, 64, 8, 128256),
        ModelShape("llama-3.2-1b", 2048, 16, 8192, 32, 8, 128256, head_dim=64, tie_word_embeddings=True),
        ModelShape("llama-3.2-3b", 3072, 28, 8192, 24, 8, 128256, head_dim=128, tie_word_embeddings=True),
        ModelShape("qwen2.5-0.5b", 896, 24, 4864, 14, 2, 151936, tie_word_embeddings=True, attention_bias=True),
        ModelShape("qwen2.5-7b", 3584, 28, 18944, 28, 4, 152064, attention_bias=True),
        ModelShape("mistral-7b", 4096, 32, 14336, 32, 8, 32768),
    ]
}


def shape_from_config(config: dict[str, Any], name: str = "config") -> ModelShape:
    """A :class:`ModelShape` from a Hugging Face ``config.json`` dict (nested ``text_config`` is followed)."""
    cfg = config.get("text_config") or config
    try:
        hidden = int(cfg["hidden_size"])
        heads = int(cfg["num_attention_heads"])
        return ModelShape(
            name=name,
            hidden_size=hidden,
            num_layers=int(cfg["num_hidden_layers"]),
            intermediate_size=int(cfg["intermediate_size"]),
            num_heads=heads,
            num_kv_heads=int(cfg.get("num_key_value_heads") or heads),
            vocab_size=int(cfg["vocab_size"]),
            head_dim=int(cfg["head_dim"]) if cfg.get("head_dim") else None,
            tie_word_embeddings=bool(config.get("tie_word_embeddings", cfg.get("tie_word_embeddings", False))),
            attention_bias=bool(cfg.get("attention_bias", cfg.get("model_type") == "qwen2")),
        )
    except KeyError as exc:
        raise FtlabError(f"{name}: config.json has no {exc.args[0]!r}; is this a decoder-only LM config?") from None


def resolve_shape(model: str | ModelShape | dict) -> ModelShape:
    """A built-in shape name (``llama-3.1-8b``), a path to ``config.json`` or its folder, or a config dict."""
    if isinstance(model, ModelShape):
        return model
    if isinstance(model, dict):
        return shape_from_config(model)
    key = str(model).strip()
    if key.lower() in SHAPES:
        return SHAPES[key.lower()]
    path = Path(key)
    if path.is_dir():
        path = path / "config.json"
    if path.is_file():
        try:
            return shape_from_config(json.loads(path.read_text()), name=str(path.parent.name or path))
        except json.JSONDecodeError as exc:
            raise FtlabError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    raise ParameterError(
        f"model {key!r} is neither a built-in shape ({', '.join(SHAPES)}) nor a config.json file or folder"
    )


@dataclass(frozen=True)
class TrainSetup:
    """One training configuration, as the estimator sees it.

    ``seq_len`` × ``batch_size`` is the number of token positions per micro-batch: the padded length
    times the rows for padded batches, or the packed tokens per step for padding-free training.
    """

    seq_len: int
    batch_size: int = 1
    lora_r: int = 16
    lora_targets: tuple[str, ...] = LLAMA_TARGETS
    lora_dropout: float = 0.05
    quant: str = "nf4-dq"
    gradient_checkpointing: bool = False
    checkpoint_every: int = 1  # transformers' every_n_layers: checkpoint layers 0, n, 2n, ...
    optim: str = "paged_adamw_8bit"
    kbit_prep: bool = True  # peft.prepare_model_for_kbit_training: embeddings, lm_head and norms in fp32
    attention: str = "sdpa"
    padding_free: bool = False
    padded: bool = True  # padded batches carry an attention mask (SDPA leaves its flash kernel)
    loss: str = "trl_fused"
    liger: bool = False  # Liger RMSNorm + SwiGLU kernels (TRL's use_liger_kernel)
    trained_fraction: float = 1.0  # share of positions with a label (the LM head scores only these)

    def __post_init__(self) -> None:
        checks = [
            ("seq_len", self.seq_len >= 1, "a positive integer"),
            ("batch_size", self.batch_size >= 1, "a positive integer"),
            ("lora_r", self.lora_r >= 0, "0 (no LoRA) or a positive integer"),
            ("lora_dropout", 0 <= self.lora_dropout < 1, "in [0, 1)"),
            ("quant", self.quant in QUANTS, f"one of {', '.join(QUANTS)}"),
            ("optim", self.optim in OPTIMS, f"one of {', '.join(OPTIMS)}"),
            ("attention", self.attention in ATTENTIONS, f"one of {', '.join(ATTENTIONS)}"),
            ("loss", self.loss in LOSSES, f"one of {', '.join(LOSSES)}"),
            ("trained_fraction", 0 < self.trained_fraction <= 1, "in (0, 1]"),
            ("checkpoint_every", self.checkpoint_every >= 1, "a positive integer"),
        ]
        for name, ok, what in checks:
            if not ok:
                raise ParameterError(f"{name}={getattr(self, name)!r} must be {what}")
        bad = [t for t in self.lora_targets if t not in LLAMA_TARGETS]
        if bad:
            raise ParameterError(f"lora_targets: unknown module(s) {bad}; use names from {', '.join(LLAMA_TARGETS)}")
        if self.padding_free and self.attention not in ("flash", "flex"):
            raise ParameterError("padding_free needs attention='flash' or 'flex' (varlen kernels); SDPA would "
                                 "build a (tokens × tokens) mask")

    @property
    def tokens(self) -> int:
        return self.seq_len * self.batch_size


@dataclass
class MemoryEstimate:
    """The estimate: a breakdown in bytes, the peak that ``torch.cuda.max_memory_allocated`` reports, and
    the total the GPU must hold (peak + paged optimizer states + allocator slack + CUDA context)."""

    model: str
    setup: TrainSetup
    breakdown: dict[str, int]
    peak_allocated: int
    total: int
    peak_phase: str
    notes: list[str] = field(default_factory=list)

    @property
    def total_gib(self) -> float:
        return self.total / GIB

    @property
    def peak_allocated_gib(self) -> float:
        return self.peak_allocated / GIB

    def to_dict(self) -> dict[str, Any]:
        """``{"total_gib", "peak_allocated_gib", "breakdown" (GiB), "peak_phase", "setup", "notes"}``."""
        setup = asdict(self.setup)
        setup["lora_targets"] = list(self.setup.lora_targets)
        return {
            "model": self.model,
            "total_gib": round(self.total_gib, 3),
            "peak_allocated_gib": round(self.peak_allocated_gib, 3),
            "breakdown": {k: round(v / GIB, 4) for k, v in self.breakdown.items()},
            "peak_phase": self.peak_phase,
            "setup": setup,
            "notes": list(self.notes),
        }

    def table(self) -> str:
        """A plain-text table of the breakdown, for notebooks and the CLI."""
        width = max(len(k) for k in self.breakdown)
        lines = [f"{self.model}: {self.setup.batch_size} × {self.setup.seq_len} tokens, r={self.setup.lora_r}, "
                 f"{self.setup.quant}, GC {'on' if self.setup.gradient_checkpointing else 'off'}, {self.setup.optim}"]
        lines += [f"  {k:<{width}}  {v / GIB:8.3f} GiB" for k, v in self.breakdown.items()]
        lines.append(f"  {'peak allocated (torch)':<{width}}  {self.peak_allocated_gib:8.3f} GiB")
        lines.append(f"  {'total on the GPU':<{width}}  {self.total_gib:8.3f} GiB   (peak during {self.peak_phase})")
        return "\n".join(lines)


def _r512(n: float) -> int:
    """The CUDA caching allocator hands out multiples of 512 bytes."""
    return int(math.ceil(n / 512) * 512) if n > 0 else 0


def _ceil(a: int, b: int) -> int:
    return -(-a // b)


def weight_bytes(shape: ModelShape, quant: str = "nf4-dq", kbit_prep: bool = True) -> dict[str, int]:
    """Bytes of the frozen base model by part.

    >>> w = weight_bytes(SHAPES["llama-3.1-8b"], "nf4-dq", kbit_prep=False)
    >>> round(w["weights_quantized"] / 1e9, 2), round(w["weights_embeddings_lm_head"] / 1e9, 2)
    (3.6, 2.1)
    """
    quantized = 0
    for n_in, n_out in shape.linear_shapes().values():
        n = n_in * n_out
        blocks = _ceil(n, NF4_BLOCK)
        if quant == "bf16":
            quantized += _r512(2 * n)
        elif quant == "int8":  # Int8Params: int8 weight + fp32 row scale (SCB)
            quantized += _r512(n) + _r512(4 * n_out)
        elif quant == "nf4":  # packed codes + fp32 absmax per block + the 16-entry code book
            quantized += _r512(_ceil(n, 2)) + _r512(4 * blocks) + _r512(64)
        else:  # nf4 + double quant: uint8 absmax, fp32 absmax per 256 blocks, 256-entry fp32 code, offset
            quantized += (_r512(_ceil(n, 2)) + _r512(blocks) + _r512(4 * _ceil(blocks, NF4_NESTED_BLOCK))
                          + _r512(4 * 256) + _r512(64) + 512)
    quantized *= shape.num_layers
    emb_bytes = 4 if (kbit_prep and quant != "bf16") else 2
    n_emb = shape.vocab_size * shape.hidden_size * (1 if shape.tie_word_embeddings else 2)
    other = (2 * shape.num_layers + 1) * _r512(emb_bytes * shape.hidden_size)
    if shape.attention_bias:
        other += shape.num_layers * 3 * _r512(emb_bytes * shape.kv_dim)  # biases (q's is bigger, kv is a floor)
        other += shape.num_layers * _r512(emb_bytes * (shape.q_dim - shape.kv_dim))
    other += _r512(4 * shape.hd // 2)  # rotary inv_freq
    return {
        "weights_quantized": quantized,
        "weights_embeddings_lm_head": _r512(emb_bytes * n_emb),
        "weights_other": other,
    }


def lora_param_count(shape: ModelShape, r: int, targets: tuple[str, ...] = LLAMA_TARGETS) -> int:
    """LoRA parameters: r × (in + out) per targeted module and layer.

    >>> lora_param_count(SHAPES["llama-3.1-8b"], 16)
    41943040
    """
    lin = shape.linear_shapes()
    return shape.num_layers * sum(r * (lin[t][0] + lin[t][1]) for t in targets)


def _lora_tensors(shape: ModelShape, r: int, targets: tuple[str, ...]) -> list[int]:
    lin = shape.linear_shapes()
    out = []
    for t in targets:
        out += [r * lin[t][0], r * lin[t][1]]
    return out * shape.num_layers


def _optimizer_bytes(shape: ModelShape, setup: TrainSetup, p_bytes: int) -> tuple[int, int]:
    """(on-device bytes seen by torch, paged bytes in managed memory)."""
    sizes = _lora_tensors(shape, setup.lora_r, setup.lora_targets)
    if setup.optim == "adamw":  # torch AdamW: exp_avg and exp_avg_sq in the parameter dtype, a step scalar
        return sum(2 * _r512(p_bytes * n) + 512 for n in sizes), 0
    dev = paged = 0
    for n in sizes:
        if n < ADAM8_MIN_SIZE:
            dev += 2 * _r512(4 * n)
            continue
        states = 2 * _r512(n)  # two uint8 states
        dev += 2 * _r512(4 * _ceil(n, ADAM8_BLOCK))  # absmax1, absmax2 (fp32, always on device)
        if setup.optim == "paged_adamw_8bit":
            paged += states
        else:
            dev += states
    return dev, paged


def layer_activation_bytes_per_token(shape: ModelShape, setup: TrainSetup, seq_len: int | None = None) -> float:
    """Bytes that autograd saves for one decoder layer, per token, in the training forward pass.

    ``a`` is the dtype of the residual stream: fp32 (4 bytes) after kbit prep upcast the embeddings and
    norms, bf16 (2) otherwise. Every term names the op that saves it.
    """
    h, i, r = shape.hidden_size, shape.intermediate_size, setup.lora_r
    a = 4 if (setup.kbit_prep and setup.quant != "bf16") else 2
    lin = shape.linear_shapes()
    targets = set(setup.lora_targets) if r > 0 else set()
    dropout = setup.lora_dropout > 0
    total = 0.0
    # RMSNorm ×2: `hidden_states.to(float32)` is saved by pow() and mul() (4 bytes) with the fp32 rsqrt;
    # Liger keeps x and rstd.
    total += 2 * ((a * h + 4) if setup.liger else 4 * h + 4)
    # LoRA branches: dropout keeps a bool mask, lora_A keeps its bf16 input (the autocast copy of the
    # dropout output), lora_B keeps the r-wide bf16 output of lora_A. Without dropout, lora_A keeps the
    # module input itself, shared by the projections that read the same tensor (q/k/v; gate/up).
    input_dtype = {"q_proj": a, "k_proj": a, "v_proj": a, "o_proj": 2, "gate_proj": a, "up_proj": a,
                   "down_proj": a}
    shared_seen: set[str] = set()
    if setup.attention != "eager":
        # SDPA/flex return the output in (batch, tokens, heads, dim) memory order, so o_proj's input is the
        # very tensor the attention kernel saved: lora_A (without dropout) adds nothing for it
        shared_seen.add("o_in")
    group = {"q_proj": "attn_in", "k_proj": "attn_in", "v_proj": "attn_in", "gate_proj": "mlp_in",
             "up_proj": "mlp_in", "o_proj": "o_in", "down_proj": "down_in"}
    for t in LLAMA_TARGETS:
        if t not in targets:
            continue
        d_in = lin[t][0]
        total += 2 * r
        if dropout:
            total += 3 * d_in
        elif input_dtype[t] == 2:
            if group[t] not in shared_seen:
                shared_seen.add(group[t])
                total += 2 * d_in
        else:
            total += 2 * d_in  # autocast makes a bf16 copy per module
    # Attention: the kernel keeps q, k, v, its output (bf16, autocast) and an fp32 logsumexp per head.
    q, kv, heads = shape.q_dim, shape.kv_dim, shape.num_heads
    n = seq_len or setup.seq_len
    if setup.attention == "eager":
        total += 2 * q + 2 * 2 * q + 2 * q + heads * n * (2 + 2 + 1)  # scores, probs, dropout mask
    elif setup.attention == "sdpa" and setup.padded:
        # A padding mask: SDPA takes the memory-efficient kernel, so transformers repeats k/v to all heads
        # (GQA is only passed to SDPA without a mask), and the bool mask becomes a saved additive bf16 bias,
        # its last dimension padded to a multiple of 16.
        kv_saved = q if shape.num_kv_heads != shape.num_heads else kv
        total += 2 * q + 2 * 2 * kv_saved + 2 * q + 4 * heads * _ceil(n, 32) * 32 / n + 2 * _ceil(n, 16) * 16
    else:
        total += 2 * q + 2 * 2 * kv + 2 * q + 4 * heads
    # MLP: SiLU keeps its input, the product keeps both operands (3 × a × i); Liger's SwiGLU keeps gate, up.
    total += (2 if setup.liger else 3) * a * i
    return total


def _layer_backward_transient_per_token(shape: ModelShape, setup: TrainSetup) -> float:
    """Gradients of a layer's intermediates alive at once inside its backward (the MLP is the widest):
    grad of the product from the 4-bit base and from the LoRA branch, then grad of both factors."""
    a = 4 if (setup.kbit_prep and setup.quant != "bf16") else 2
    i, h = shape.intermediate_size, shape.hidden_size
    return 3 * a * i + 2 * a * h


def _lm_head(shape: ModelShape, setup: TrainSetup, n_tokens: int) -> tuple[int, int]:
    """(saved for backward, extra bytes at the LM head's backward peak) for the loss over n_tokens rows."""
    h, v = shape.hidden_size, shape.vocab_size
    a = 4 if (setup.kbit_prep and setup.quant != "bf16") else 2
    head_fp32 = setup.kbit_prep and setup.quant != "bf16"
    n_lab = max(1, int(n_tokens * setup.trained_fraction))
    if setup.loss == "full_logits":
        # transformers' ForCausalLMLoss: bf16 logits (autocast), .float() copy, fp32 log_softmax saved.
        logits = 2 * n_tokens * v
        saved = logits + 4 * n_tokens * v + (2 * h * v if head_fp32 else 0)
        # backward: grad of log_softmax output and its input (fp32) on top of the saved output
        peak_extra = 4 * n_tokens * v + 4 * n_tokens * v + 2 * n_tokens * v
        return saved, peak_extra
    # TRL fused head: keeps hidden[mask] (a bytes) and two fp32 per-token vectors
    saved = _r512(a * n_lab * h) + 2 * _r512(4 * n_lab)
    tile = _r512(2 * min(n_lab, TRL_TOKEN_CHUNK) * TRL_VOCAB_CHUNK)
    w_chunk = _r512(2 * min(v, TRL_VOCAB_CHUNK) * h) if head_fp32 else 0
    h_chunk = _r512(2 * min(n_lab, TRL_TOKEN_CHUNK) * h) if a == 4 else 0
    grad_hidden = _r512(4 * n_lab * h)
    # after the loop: grad_hidden.to(hidden dtype), then scattered back into the (tokens, h) grad
    scatter = _r512(a * n_tokens * h) + (_r512(2 * n_lab * h) if a == 2 else 0)
    peak_extra = max(tile + w_chunk + h_chunk + grad_hidden, grad_hidden + scatter)
    return saved, peak_extra


def estimate_memory(
    model: str | ModelShape | dict,
    seq_len: int | None = None,
    batch_size: int = 1,
    *,
    setup: TrainSetup | None = None,
    cuda_context_gib: float = DEFAULT_CUDA_CONTEXT_GIB,
    **options: Any,
) -> MemoryEstimate:
    """Estimate the GPU memory of one QLoRA/LoRA training step.

    ``options`` are the fields of :class:`TrainSetup` (``lora_r``, ``gradient_checkpointing``, ``optim``,
    ``quant``, ``kbit_prep``, ``attention``, ``padding_free``, ``loss``, ...).

    >>> est = estimate_memory("llama-3.1-8b", 1024, 4, gradient_checkpointing=True)
    >>> est.peak_phase in ("the LM head backward", "a recomputed layer's backward", "the first layer backward")
    True
    """
    shape = resolve_shape(model)
    if setup is None:
        if seq_len is None:
            raise ParameterError("seq_len is required (the padded length or packed tokens per row)")
        try:
            setup = TrainSetup(seq_len=int(seq_len), batch_size=int(batch_size), **options)
        except TypeError as exc:
            raise ParameterError(f"estimate_memory: {exc}") from None
    elif options or seq_len is not None:
        setup = replace(setup, **({"seq_len": seq_len} if seq_len else {}), **options)
    s = setup
    t = s.tokens
    notes: list[str] = []
    w = weight_bytes(shape, s.quant, s.kbit_prep)
    p_bytes = 2 if s.quant in ("nf4", "nf4-dq", "int8") else 4  # TRL casts adapters of quantized models to bf16
    lora = sum(_r512(p_bytes * n) for n in _lora_tensors(shape, s.lora_r, s.lora_targets))
    opt_dev, opt_paged = _optimizer_bytes(shape, s, p_bytes)
    a = 4 if (s.kbit_prep and s.quant != "bf16") else 2
    h = shape.hidden_size
    # The largest dequantized weight (4-bit and 8-bit bases matmul a bf16 copy, made per call).
    lin = shape.linear_shapes()
    dequant = 0 if s.quant == "bf16" else max(_r512(2 * a_ * b_) for a_, b_ in lin.values())

    per_layer = layer_activation_bytes_per_token(shape, s)
    layer_full = per_layer * t
    layer_in = _r512(a * t * h)
    # rotary cos/sin (shared by all layers), the final norm's fp32 copy, embeddings' output if it requires grad
    shared = 2 * _r512(a * t * shape.hd) + _r512(4 * t * h)
    lm_saved, lm_extra = _lm_head(shape, s, t)
    bwd_transient = _layer_backward_transient_per_token(shape, s) * t + dequant
    grads_per_layer = lora // max(1, shape.num_layers)

    L = shape.num_layers
    if s.gradient_checkpointing:
        n_ckpt = _ceil(L, s.checkpoint_every)
        saved = n_ckpt * layer_in + (L - n_ckpt) * layer_full + shared
        # the backward reaches the last layer first; recomputing it (when it is checkpointed) adds its
        # activations; a kept last layer frees its own as it goes, so the next checkpointed one adds none
        recompute = layer_full if (L - 1) % s.checkpoint_every == 0 else 0
        at_layer = saved + recompute + bwd_transient + grads_per_layer
        layer_phase = "a recomputed layer's backward" if recompute else "the first layer backward"
    else:
        saved = L * layer_full + shared
        recompute = 0
        at_layer = saved + bwd_transient + grads_per_layer
        layer_phase = "the first layer backward"
    at_head = saved + lm_saved + lm_extra
    if at_head >= at_layer:
        phase, act, lm_part, trans, grads = "the LM head backward", saved, lm_saved + lm_extra, 0, 0
    else:
        phase, act, lm_part, trans, grads = layer_phase, saved + recompute, 0, bwd_transient, grads_per_layer
    if s.loss == "full_logits":
        notes.append("full logits: bf16 logits + fp32 upcast + fp32 log-softmax over the whole vocabulary")
    if a == 4:
        notes.append("kbit prep upcast embeddings, lm_head and norms to fp32: the residual stream is fp32")
    breakdown = {
        **w,
        "lora_params": lora,
        "gradients": grads,
        "optimizer_states": opt_dev,
        "activations": int(act),
        "backward_transients": int(trans),
        "logits_and_loss": int(lm_part),
    }
    peak = sum(breakdown.values())
    breakdown["optimizer_states_paged"] = opt_paged
    breakdown["allocator_overhead"] = int(ALLOCATOR_SLACK * peak)
    breakdown["cuda_context"] = int(cuda_context_gib * GIB)
    if opt_paged:
        notes.append("paged optimizer states live in CUDA managed memory: on the GPU, but not in "
                     "torch.cuda.max_memory_allocated")
    return MemoryEstimate(model=shape.name, setup=s, breakdown=breakdown, peak_allocated=int(peak),
                          total=int(sum(breakdown.values())), peak_phase=phase, notes=notes)


# --- the articles' figures, explained -------------------------------------------------------------------

SEED_CLAIMS = {
    "llama-3.1-8b": {"total_gb": 16, "parts_gb": {"4-bit model (+ activations, overhead)": 10,
                                                  "LoRA parameters (r=16, 7 modules)": 2,
                                                  "optimizer states (+ gradients)": 4}},
    "llama-3.1-70b": {"total_gb": 48, "parts_gb": {}},
}


def seed_claims(seq_len: int = 1024, batch_size: int = 4, **options: Any) -> dict[str, Any]:
    """The articles' "~16 GB" (8B) and "~48 GB" (70B) beside our estimate of the same QLoRA setup
    (r=16 on the 7 projections, nf4 + double quant, gradient checkpointing, paged 8-bit AdamW).

    Where they come from: the 4-bit model is counted as params × 0.5 bytes (8B → 4 GB, 70B → 35 GB),
    then round numbers are added for LoRA (2 GB) and the optimizer (4 GB), and the 70B figure scales
    the 8B one. What the arithmetic shows instead: the embeddings and lm_head are *not* quantized
    (2 × 128256 × h in bf16: 2.1 GB for 8B, 4.2 GB for 70B; twice that after kbit prep); r=16 LoRA
    on 8B is 42 M parameters (84 MB in bf16, not 2 GB); 8-bit Adam keeps 2 bytes per LoRA parameter
    (84 MB, not 4 GB). The term the articles leave out is the one that grows: activations, which scale
    with sequence length × batch, and the vocabulary logits when the loss materializes them.

    >>> claims = seed_claims()
    >>> claims["llama-3.1-8b"]["seed_gb"], claims["llama-3.1-70b"]["seed_gb"]
    (16, 48)
    """
    base = {"gradient_checkpointing": True, "optim": "paged_adamw_8bit", "lora_r": 16, **options}
    out: dict[str, Any] = {}
    for name, claim in SEED_CLAIMS.items():
        shape = SHAPES[name]
        est = estimate_memory(name, seq_len, batch_size, **base)
        full = estimate_memory(name, seq_len, batch_size, **{**base, "loss": "full_logits"})
        n_lora = lora_param_count(shape, 16)
        lin_params = sum(a * b for a, b in shape.linear_shapes().values()) * shape.num_layers
        out[name] = {
            "seed_gb": claim["total_gb"],
            "seed_parts_gb": claim["parts_gb"],
            "params_b": round(shape.num_params / 1e9, 2),
            "naive_4bit_gb": round(shape.num_params * 0.5 / 1e9, 1),
            "quantized_linears_gb": round(est.breakdown["weights_quantized"] / 1e9, 2),
            "quantized_linear_params_b": round(lin_params / 1e9, 2),
            "embeddings_lm_head_gb": round(est.breakdown["weights_embeddings_lm_head"] / 1e9, 2),
            "lora_params_m": round(n_lora / 1e6, 1),
            "lora_params_gb": round(est.breakdown["lora_params"] / 1e9, 3),
            "optimizer_gb": round((est.breakdown["optimizer_states"] + est.breakdown["optimizer_states_paged"]) / 1e9, 3),
            "activations_gb": round((est.breakdown["activations"] + est.breakdown["backward_transients"]) / 1e9, 2),
            "ours_total_gb": round(est.total / 1e9, 1),
            "ours_peak_allocated_gb": round(est.peak_allocated / 1e9, 1),
            "ours_total_full_logits_gb": round(full.total / 1e9, 1),
            "setup": f"batch {batch_size} × {seq_len} tokens, GC on, paged 8-bit AdamW, r=16",
        }
    return out
