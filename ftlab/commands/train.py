"""ftlab train: train a LoRA/QLoRA adapter from a config file, plainly or under ``accelerate launch``."""

from __future__ import annotations

import json
from pathlib import Path

__all__ = ["register"]


def register(sub) -> None:
    p = sub.add_parser(
        "train",
        help="train a (Q)LoRA adapter from a YAML/JSON config (also under `accelerate launch -m ftlab train`)",
        description="Train with ftlab.train (TRL SFTTrainer + PEFT + bitsandbytes) from a config file of TrainConfig "
        "fields plus `data` ('toy:support' or a JSONL file), `eval_data`, `max_train_rows`, `max_eval_rows`, or "
        "`train_file` (your OpenAI chat JSONL, checked by `ftlab validate` first) with an optional `eval_file` "
        "(default: 15%% of train_file held out). "
        "Multi-GPU: accelerate launch --config_file ftlab/accelerate/ddp.yaml -m ftlab train --config FILE "
        "(configs: single_gpu, ddp, fsdp_qlora, cpu_ddp). Only rank 0 writes the adapter, run card and summary.json.",
    )
    p.add_argument("--config", required=True, help="training config (YAML or JSON), e.g. ftlab/accelerate/train_toy.yaml")
    p.add_argument("--out", help="output folder (overrides output_dir in the config)")
    p.add_argument("--train-file", help="your OpenAI chat JSONL (overrides train_file in the config)")
    p.add_argument("--eval-file", help="its held-out JSONL (overrides eval_file; default: 15%% of train-file)")
    p.add_argument("--json", action="store_true", help="print the run summary (losses, steps, batch, seconds) as JSON")

    def run(args):
        from ftlab.scale import train_from_config
        from ftlab.train import distributed_env

        files = {k: str(Path(v).expanduser().resolve())
                 for k, v in (("train_file", args.train_file), ("eval_file", args.eval_file)) if v}
        summary = train_from_config(args.config, output_dir=args.out, **files)
        if distributed_env()["rank"] != 0:
            return 0
        if args.json:
            print(json.dumps(summary, indent=2))
        else:
            loss = summary["final_eval_loss"]
            print(f"trained {summary['global_step']} steps on {summary['processes']} process(es), effective batch "
                  f"{summary['effective_batch']}: final eval loss {loss if loss is None else f'{loss:.4f}'}, "
                  f"{summary['seconds']:.1f} s; adapter in {summary['adapter_dir']}")
        return 0

    p.set_defaults(func=run)
