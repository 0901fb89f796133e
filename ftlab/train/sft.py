"""The SFT loop: TRL's ``SFTConfig`` from a ``TrainConfig``, ``train`` itself, and resuming from the last
complete checkpoint.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from ftlab.core import file_sha256, seed_everything, stable_hash
from ftlab.runcard import hardware, library_versions, write_run_card
from ftlab.toymodel import TOY_MODEL_ID
from ftlab.train.callbacks import _overfit_detector_cls
from ftlab.train.config import KNOWN_LIMITATIONS, TrainConfig, TrainResult
from ftlab.train.loss import preflight_loss_mask
from ftlab.train.model import LoraTargets, load_base, lora_targets, use_cuda

__all__ = ["data_fingerprint", "last_complete_checkpoint", "sft_config", "train"]


def _as_dataset(rows):
    from datasets import Dataset

    if rows is None:
        return None
    if hasattr(rows, "column_names"):
        return rows.select_columns(["messages"])
    return Dataset.from_list([{"messages": r["messages"]} for r in rows])


def _as_prompt_completion(ds):
    """``{"messages"}`` rows as TRL's conversational prompt-completion rows (the last message is the completion)."""
    if ds is None:
        return None
    return ds.map(lambda r: {"prompt": r["messages"][:-1], "completion": r["messages"][-1:]},
                  remove_columns=["messages"])


def data_fingerprint(rows: Sequence[dict[str, Any]] | None, data_file: str | None = None) -> str:
    """sha256 of the training file if given, else a hash of the examples' messages."""
    if data_file and Path(data_file).exists():
        return "sha256:" + file_sha256(data_file)
    if rows is None:
        return ""
    return "hash:" + stable_hash([r["messages"] for r in rows], 16)


def sft_config(cfg: TrainConfig, *, has_eval: bool, extra: dict[str, Any] | None = None):
    """The TRL ``SFTConfig`` for a ``TrainConfig`` (bf16 + paged 8-bit AdamW on CUDA, fp32 AdamW on CPU)."""
    from trl import SFTConfig

    cuda = use_cuda(cfg.device)
    kwargs: dict[str, Any] = dict(
        output_dir=cfg.output_dir,
        learning_rate=cfg.learning_rate,
        num_train_epochs=cfg.num_train_epochs,
        max_steps=cfg.max_steps,
        per_device_train_batch_size=cfg.per_device_train_batch_size,
        per_device_eval_batch_size=max(cfg.per_device_train_batch_size, 32),
        gradient_accumulation_steps=cfg.gradient_accumulation_steps,
        max_length=cfg.max_length,
        packing=cfg.packing,
        assistant_only_loss=cfg.assistant_only_loss,
        logging_steps=cfg.logging_steps,
        save_strategy="steps",
        save_steps=cfg.save_steps,
        save_total_limit=cfg.save_total_limit,
        lr_scheduler_type=cfg.lr_scheduler_type,
        warmup_steps=cfg.warmup_ratio,
        weight_decay=cfg.weight_decay,
        seed=cfg.seed,
        data_seed=cfg.seed,
        report_to=[] if cfg.report_to == "none" else [cfg.report_to],
        bf16=cuda,
        optim="paged_adamw_8bit" if cuda else "adamw_torch",
        gradient_checkpointing=cfg.gradient_checkpointing,
        use_cpu=not cuda,
        dataloader_num_workers=0,
        disable_tqdm=False,
        logging_first_step=True,
        logging_nan_inf_filter=False,  # a diverged run logs NaN, not a misleading 0.0 (the diagnoser needs it)
    )
    if has_eval and cfg.eval_steps:
        kwargs.update(eval_strategy="steps", eval_steps=cfg.eval_steps, load_best_model_at_end=True,
                      metric_for_best_model="eval_loss", greater_is_better=False)
    kwargs.update(cfg.extra if extra is None else extra)
    kwargs.pop("model_init_kwargs", None)  # the model is loaded by load_base, which takes attn_implementation
    return SFTConfig(**kwargs)


def last_complete_checkpoint(output_dir: str | os.PathLike[str]) -> Path | None:
    """The newest ``checkpoint-N`` folder that was written to the end, or ``None``.

    The Trainer writes ``trainer_state.json`` last, so a checkpoint is complete when that file parses
    and names step N. A run killed while saving leaves a newer, partial folder that the Trainer's own
    ``resume_from_checkpoint=True`` would pick (it takes the highest number); this skips it.
    Example: with ``checkpoint-8`` complete and ``checkpoint-16`` cut short, returns ``…/checkpoint-8``.
    """
    found = []
    for d in Path(output_dir).glob("checkpoint-*"):
        step = d.name.removeprefix("checkpoint-")
        if not (d.is_dir() and step.isdigit()):
            continue
        try:
            state = json.loads((d / "trainer_state.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if state.get("global_step") == int(step) and any(d.glob("*.safetensors")):
            found.append((int(step), d))
    return max(found)[1] if found else None


def train(cfg: TrainConfig, train_rows, eval_rows=None, *, callbacks: Sequence[Any] = (),
          data_file: str | None = None) -> TrainResult:
    """Train a (Q)LoRA adapter with TRL's ``SFTTrainer`` and write a run card.

    ``train_rows``/``eval_rows`` are lists of ``{"messages": [...]}`` (or ``datasets.Dataset``).
    Returns a ``TrainResult``; the adapter (the best checkpoint when validation data is given)
    is saved in ``<output_dir>/adapter``.
    """
    from peft import LoraConfig, prepare_model_for_kbit_training
    from trl import SFTTrainer

    cfg.validate()
    seed_everything(cfg.seed)
    started = time.perf_counter()
    extra = dict(cfg.extra)
    attn = cfg.attn_implementation or extra.pop("model_init_kwargs", {}).get("attn_implementation")
    model, tokenizer, path = load_base(cfg.model_id, cfg.quantization, seed=cfg.toy_seed, attn_implementation=attn,
                                       quant_storage=cfg.bnb_4bit_quant_storage, device=cfg.device)
    rows_list = list(train_rows) if not hasattr(train_rows, "column_names") else train_rows
    preflight = preflight_loss_mask(tokenizer, rows_list, assistant_only_loss=cfg.assistant_only_loss,
                                    max_length=cfg.max_length)
    loss_mask = preflight.pop("loss_mask")
    print(f"loss mask: {loss_mask.describe()}")
    own_template = tokenizer.chat_template
    train_ds, eval_ds = _as_dataset(rows_list), _as_dataset(eval_rows)
    if loss_mask.template:  # a generation-tagged version of the model's template: TRL masks with it
        tokenizer.chat_template = loss_mask.template
    if loss_mask.mode == "completion_only":  # TRL's prompt-completion format: the loss sees the completion only
        train_ds, eval_ds = _as_prompt_completion(train_ds), _as_prompt_completion(eval_ds)
        extra.update(assistant_only_loss=False, completion_only_loss=True)
    if cfg.quantization != "none" and cfg.kbit_prep:
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=cfg.gradient_checkpointing)
    elif cfg.gradient_checkpointing:
        model.enable_input_require_grads()
    targets = LoraTargets("given", list(cfg.target_modules), note="target_modules given") if cfg.target_modules \
        else lora_targets(model)
    lora = LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout, task_type="CAUSAL_LM",
                      **targets.lora_kwargs())
    detector = _overfit_detector_cls()(cfg.overfit_patience) if (eval_rows is not None and cfg.overfit_patience) else None
    all_callbacks = list(callbacks) + ([detector] if detector else [])
    args = sft_config(cfg, has_eval=eval_rows is not None, extra=extra)
    trainer = SFTTrainer(model=model, args=args, train_dataset=train_ds, eval_dataset=eval_ds,
                         processing_class=tokenizer, peft_config=lora, callbacks=all_callbacks)
    resume = cfg.resume_from_checkpoint
    if resume is True:  # the newest complete checkpoint (None: start from scratch)
        last = last_complete_checkpoint(cfg.output_dir)
        resume = str(last) if last else None
    trainer.train(resume_from_checkpoint=resume)
    tokenizer.chat_template = own_template  # the saved tokenizer keeps the model's own template
    state = trainer.state
    history = state.log_history
    train_loss = [(h["step"], h["loss"]) for h in history if "loss" in h]
    eval_loss = [(h["step"], h["eval_loss"]) for h in history if "eval_loss" in h]
    if detector and detector.triggered_at is not None:
        stop_reason = "overfitting: " + detector.message
    elif args.max_steps > 0 and state.global_step >= args.max_steps:
        stop_reason = f"completed max_steps={args.max_steps}"
    else:
        stop_reason = f"completed {cfg.num_train_epochs:g} epoch(s)"
    best_step = best = None
    if eval_loss:
        best_step, best = min(eval_loss, key=lambda x: x[1])
    out = Path(cfg.output_dir)
    adapter_dir = out / "adapter"
    if trainer.is_fsdp_enabled:  # gather the sharded adapter into one file (the PEFT FSDP guide's last step)
        trainer.accelerator.state.fsdp_plugin.set_state_dict_type("FULL_STATE_DICT")
    trainer.save_model(str(adapter_dir))  # the best model when load_best_model_at_end; rank 0 writes
    state_path = out / "trainer_state.json"
    main_process = trainer.is_world_process_zero()
    if main_process:  # under accelerate launch every rank gets here; one of them writes
        tokenizer.save_pretrained(str(adapter_dir))
        state.save_to_json(str(state_path))
    seconds = time.perf_counter() - started
    world = trainer.accelerator.num_processes
    card = {
        "run_name": out.name,
        "model": {"model_id": cfg.model_id, "resolved": str(path), "quantization": cfg.quantization},
        "data": {"fingerprint": data_fingerprint(rows_list if isinstance(rows_list, list) else None, data_file),
                 "version": cfg.data_version, "n_train": len(rows_list),
                 "n_eval": len(eval_rows) if eval_rows is not None else 0, "file": data_file},
        "hyperparameters": {k: v for k, v in asdict(cfg).items() if k not in ("output_dir",)},
        "preflight": {k: v for k, v in preflight.items() if k != "example"},
        "loss_mask": loss_mask.to_dict(),
        "lora_targets": {"family": targets.family, "modules": targets.modules, "parameters": targets.parameters,
                         "note": targets.note},
        "libraries": library_versions(),
        "hardware": hardware(),
        "distributed": {"processes": world, "distributed_type": getattr(trainer.accelerator.distributed_type, "value",
                                                          str(trainer.accelerator.distributed_type)),
                        "effective_batch": cfg.per_device_train_batch_size * cfg.gradient_accumulation_steps * world},
        "seed": cfg.seed,
        "results": {"final_train_loss": train_loss[-1][1] if train_loss else None,
                    "final_eval_loss": eval_loss[-1][1] if eval_loss else None,
                    "best_eval_loss": best, "best_step": best_step, "global_step": state.global_step,
                    "stop_reason": stop_reason, "seconds": round(seconds, 1)},
        "known_limitations": KNOWN_LIMITATIONS if cfg.model_id == TOY_MODEL_ID else [],
    }
    card_path = write_run_card(out, card) if main_process else out / "run_card.json"
    return TrainResult(str(out), str(adapter_dir), str(card_path), train_loss, eval_loss, stop_reason,
                       best_step, best, state.global_step, round(seconds, 2), str(state_path))
