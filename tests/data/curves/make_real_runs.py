"""Make real training runs on the toy model whose settings cause each of the seeds' five patterns.

Each run fine-tunes the toy world's tiny Llama (``ftlab.toymodel``) on the Harbor & Pine support
task with TRL's ``SFTTrainer`` (LoRA, assistant-only loss) and keeps only the run's
``trainer_state.json``: the real Hugging Face log the diagnoser reads. Run from the repository
root (about a minute per seed on a laptop CPU)::

    python tests/data/curves/make_real_runs.py                 # seeds 0 and 1 -> tests/data/curves/real/
    python tests/data/curves/make_real_runs.py --seeds 2 --out /tmp/real   # more runs to check against

The settings (the label is what they are meant to cause):

- healthy: a good LR, stopped while the validation loss is still falling;
- plateau: the same LR, trained long enough for the validation loss to flatten;
- overfitting: many epochs on 12 examples, full fine-tuning at a high LR;
- flat: a learning rate far too low (1e-6);
- unstable: a learning rate far too high with batch size 1 (full fine-tuning: LoRA at 5e-2 stays calm).

The runs are real, so a run can miss its intent; ``labels.csv`` records the intended pattern and
the accuracy test counts such a miss against the diagnoser like any other.
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent

# name: (pattern, settings)
RUNS = {
    "healthy": ("healthy", {"lr": 1e-3, "steps": 40, "batch": 8, "n_train": 1020, "lora": True, "eval_every": 4}),
    "plateau": ("plateau", {"lr": 3e-3, "steps": 160, "batch": 8, "n_train": 1020, "lora": True, "eval_every": 10}),
    "overfitting": ("overfitting", {"lr": 2e-3, "steps": 120, "batch": 4, "n_train": 12, "lora": False,
                                    "eval_every": 6}),
    "flat": ("flat", {"lr": 1e-6, "steps": 60, "batch": 8, "n_train": 1020, "lora": True, "eval_every": 6}),
    "unstable": ("unstable", {"lr": 3e-2, "steps": 80, "batch": 1, "n_train": 1020, "lora": False, "eval_every": 8}),
}


def train_one(name: str, settings: dict, seed: int, out: Path) -> Path:
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    from ftlab.core import seed_everything
    from ftlab.data import support_splits
    from ftlab.toymodel import TOY_MODEL_ID, resolve_model

    seed_everything(seed)
    torch.set_num_threads(1)  # tiny model: one thread is fastest, and the CPU may be shared
    path = resolve_model(TOY_MODEL_ID)
    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    splits = support_splits(seed=seed)
    train_rows = [{"messages": r["messages"]} for r in splits["train"][: settings["n_train"]]]
    eval_rows = [{"messages": r["messages"]} for r in splits["validation"][:64]]
    with tempfile.TemporaryDirectory() as tmp:
        cfg = SFTConfig(
            output_dir=tmp, max_steps=settings["steps"], learning_rate=settings["lr"],
            per_device_train_batch_size=settings["batch"], per_device_eval_batch_size=32,
            lr_scheduler_type="constant", warmup_steps=0, logging_steps=1,
            eval_strategy="steps", eval_steps=settings["eval_every"], save_strategy="no",
            assistant_only_loss=True, max_length=128, report_to="none", seed=seed, data_seed=seed,
            use_cpu=True, dataloader_num_workers=0, disable_tqdm=True,
        )
        peft = LoraConfig(r=16, lora_alpha=32, lora_dropout=0.0, task_type="CAUSAL_LM",
                          target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
                          ) if settings["lora"] else None
        trainer = SFTTrainer(model=model, args=cfg, train_dataset=Dataset.from_list(train_rows),
                             eval_dataset=Dataset.from_list(eval_rows), processing_class=tok, peft_config=peft)
        trainer.train()
        trainer.save_state()
        target = out / f"{name}_seed{seed}"
        target.mkdir(parents=True, exist_ok=True)
        shutil.copy(Path(tmp) / "trainer_state.json", target / "trainer_state.json")
    return target / "trainer_state.json"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--only", nargs="+", choices=sorted(RUNS), help="only these runs")
    ap.add_argument("--out", type=Path, default=HERE / "real")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    labels = args.out / "labels.csv"
    rows = {r["file"]: r for r in csv.DictReader(labels.open())} if labels.exists() else {}
    for seed in args.seeds:
        for name in args.only or RUNS:
            pattern, settings = RUNS[name]
            state = train_one(name, settings, seed, args.out)
            rel = state.relative_to(args.out).as_posix()
            rows[rel] = {"file": rel, "pattern": pattern, "best_step": "", "best_lo": "", "best_hi": "",
                         "description": f"real toy run: {json.dumps(settings, sort_keys=True)}, seed {seed}"}
            print(f"{rel}: {pattern}", flush=True)
    with labels.open("w", newline="") as fh:
        w = csv.DictWriter(fh, ["file", "pattern", "best_step", "best_lo", "best_hi", "description"],
                           lineterminator="\n")
        w.writeheader()
        w.writerows(sorted(rows.values(), key=lambda r: r["file"]))


if __name__ == "__main__":
    main()
