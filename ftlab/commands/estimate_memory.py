"""ftlab estimate-memory: the GPU memory of a QLoRA/LoRA training step, with its breakdown."""

from __future__ import annotations

import json

from ftlab.errors import ParameterError

__all__ = ["register"]


def register(sub) -> None:
    from ftlab.memory import ATTENTIONS, LOSSES, OPTIMS, QUANTS, SHAPES

    p = sub.add_parser(
        "estimate-memory",
        help="estimate the VRAM of a QLoRA/LoRA training step (weights, LoRA, optimizer, activations, logits)",
        description="Estimate the GPU memory of one training step from the model's shape. "
        f"Built-in shapes: {', '.join(SHAPES)}; or give a config.json (file or folder).",
    )
    p.add_argument("--model", required=True, help="built-in shape name or path to a HF config.json / its folder")
    p.add_argument("--seq-len", type=int, required=True, help="padded sequence length (or packed tokens per row)")
    p.add_argument("--batch-size", type=int, default=1, help="sequences (rows) per micro-batch (default 1)")
    p.add_argument("--lora-r", type=int, default=16, help="LoRA rank (default 16; 0 = no LoRA)")
    p.add_argument("--lora-dropout", type=float, default=0.05, help="LoRA dropout (default 0.05)")
    p.add_argument("--target-modules", default=None,
                   help="comma-separated LoRA targets (default: the 7 Llama projections)")
    p.add_argument("--quant", default="nf4-dq", choices=QUANTS,
                   help="base weights: nf4 with double quant (default), nf4, int8 or bf16")
    p.add_argument("--gradient-checkpointing", action="store_true", help="recompute activations in the backward")
    p.add_argument("--optim", default="paged_adamw_8bit", choices=OPTIMS, help="optimizer (default paged_adamw_8bit)")
    p.add_argument("--no-kbit-prep", action="store_true",
                   help="no prepare_model_for_kbit_training fp32 upcast of embeddings, lm_head and norms")
    p.add_argument("--attention", default="sdpa", choices=ATTENTIONS, help="attention kernel (default sdpa)")
    p.add_argument("--padding-free", action="store_true", help="packed, padding-free batches (flash/flex attention)")
    p.add_argument("--loss", default="trl_fused", choices=LOSSES,
                   help="trl_fused: TRL 1.x chunked LM head (default); full_logits: plain transformers loss")
    p.add_argument("--json", action="store_true", help='print {"total_gib": ..., "breakdown": {...}} as JSON')

    def run(args):
        from ftlab.memory import LLAMA_TARGETS, estimate_memory

        targets = LLAMA_TARGETS
        if args.target_modules:
            targets = tuple(t.strip() for t in args.target_modules.split(",") if t.strip())
        for name in ("seq_len", "batch_size"):
            if getattr(args, name) < 1:
                raise ParameterError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(args, name)}")
        est = estimate_memory(
            args.model, args.seq_len, args.batch_size,
            lora_r=args.lora_r, lora_dropout=args.lora_dropout, lora_targets=targets, quant=args.quant,
            gradient_checkpointing=args.gradient_checkpointing, optim=args.optim,
            kbit_prep=not args.no_kbit_prep, attention=args.attention, padding_free=args.padding_free,
            padded=not args.padding_free, loss=args.loss,
        )
        if args.json:
            print(json.dumps(est.to_dict(), indent=2))
        else:
            print(est.table())
            for note in est.notes:
                print(f"  note: {note}")
        return 0

    p.set_defaults(func=run)
