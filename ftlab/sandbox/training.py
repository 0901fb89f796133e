"""One training call for a sandbox job: LoRA on the local toy model, with per-step and per-epoch hooks.

The training is ftlab's own (``ftlab.train.train``: TRL's ``SFTTrainer`` with
``assistant_only_loss``); this module maps an OpenAI job onto a ``TrainConfig`` and turns the
trainer's logs into the job's events, metrics and per-epoch checkpoints.

OpenAI's hyperparameters map like this: ``n_epochs`` → epochs, ``batch_size`` → batch size,
``learning_rate_multiplier`` × ``TOY_BASE_LR`` → learning rate (multiplier 1 is the toy's
default 3e-3; the "auto" multiplier 2.0 gives 6e-3). Plain LoRA on the fp32 toy model (no 4-bit), so the adapter the
chat endpoint loads matches the base it was trained on exactly.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["TOY_BASE_LR", "TrainOutcome", "TrainingUnavailable", "train_job"]


TOY_BASE_LR = 3e-3


class TrainingUnavailable(Exception):
    """ftlab's training module is not available in this installation."""


@dataclass
class TrainOutcome:
    adapter_dir: Path
    seconds: float
    global_step: int


def _bridge(on_step, on_epoch, should_stop):
    """A ``TrainerCallback`` that reports one metrics row per optimizer step and saves per-epoch adapters."""
    from transformers import TrainerCallback

    class SandboxCallback(TrainerCallback):
        def __init__(self) -> None:
            self.pending: dict[str, Any] | None = None
            self.total = 0

        def _flush(self) -> None:
            if self.pending is not None:
                row, self.pending = self.pending, None
                step = row.pop("step")
                on_step(step, self.total, row)

        def on_log(self, args, state, control, logs=None, **kwargs):
            logs = logs or {}
            self.total = state.max_steps
            step = state.global_step
            if self.pending is not None and self.pending["step"] != step:
                self._flush()
            if self.pending is None:
                self.pending = {"step": step, "train_loss": None, "train_mean_token_accuracy": None,
                                "valid_loss": None, "valid_mean_token_accuracy": None}
            for key in ("rewards/margins", "rewards/accuracies"):  # DPO's, in the event's data
                if logs.get(key) is not None:
                    self.pending[key.replace("/", "_")] = float(logs[key])
            if "loss" in logs:
                self.pending["train_loss"] = float(logs["loss"])
                if logs.get("mean_token_accuracy") is not None:
                    self.pending["train_mean_token_accuracy"] = float(logs["mean_token_accuracy"])
            if "eval_loss" in logs:
                self.pending["valid_loss"] = float(logs["eval_loss"])
                if logs.get("eval_mean_token_accuracy") is not None:
                    self.pending["valid_mean_token_accuracy"] = float(logs["eval_mean_token_accuracy"])

        def on_step_end(self, args, state, control, **kwargs):
            if should_stop():
                control.should_training_stop = True
            return control

        def on_epoch_end(self, args, state, control, model=None, **kwargs):
            if should_stop() or model is None:
                return control
            epoch = round(state.epoch or 0)
            on_epoch(epoch, state.global_step, lambda folder: model.save_pretrained(str(folder)))
            return control

        def on_train_end(self, args, state, control, **kwargs):
            self._flush()
            return control

    return SandboxCallback()


def train_job(
    train_rows: list[dict[str, Any]],
    valid_rows: list[dict[str, Any]],
    *,
    method: str = "supervised",
    beta: float | None = None,
    n_epochs: int,
    batch_size: int,
    learning_rate_multiplier: float,
    seed: int,
    toy_seed: int,
    out_dir: Path,
    model_id: str | None = None,
    on_step: Callable[[int, int, dict[str, Any]], None],
    on_epoch: Callable[[int, int, Callable[[Path], None]], None],
    should_stop: Callable[[], bool],
) -> TrainOutcome:
    """Fine-tune the toy model on ``train_rows``. Calls ``on_step(step, total_steps, metrics)`` once per
    optimizer step (metrics: train/valid loss and mean token accuracy, ``None`` where not measured),
    ``on_epoch(epoch, step, save)`` at each epoch end (``save(folder)`` writes the adapter there), and
    stops early when ``should_stop()`` turns true."""
    try:
        from ftlab.toymodel import TOY_MODEL_ID
        from ftlab.train import TrainConfig, train
    except ImportError as exc:
        raise TrainingUnavailable(f"the sandbox cannot train: {exc}. Install ftlab with its training module.") from None

    base_lr = TOY_BASE_LR
    if model_id and model_id != TOY_MODEL_ID:  # a real base: its size's LR (multiplier 1 = ftlab.train.size_defaults)
        from transformers import AutoConfig

        from ftlab.toymodel import resolve_model
        from ftlab.train import size_defaults

        base_lr = size_defaults(AutoConfig.from_pretrained(resolve_model(model_id)))["learning_rate"]
    steps_per_epoch = max(1, -(-len(train_rows) // batch_size))
    eval_every = max(1, steps_per_epoch // 2)
    cfg = TrainConfig(
        model_id=model_id or TOY_MODEL_ID, toy_seed=toy_seed, output_dir=str(out_dir), quantization="none",
        learning_rate=learning_rate_multiplier * base_lr, num_train_epochs=float(n_epochs),
        per_device_train_batch_size=batch_size, seed=int(seed) % (2**31), logging_steps=1,
        eval_steps=eval_every if valid_rows else 0, save_steps=eval_every * 10**6,
        save_total_limit=1, overfit_patience=None, report_to="none",
        extra={"disable_tqdm": True, "load_best_model_at_end": False, "save_strategy": "no"},
    )
    bridge = _bridge(on_step, on_epoch, should_stop)
    if method == "dpo":  # OpenAI preference lines, trained with TRL's DPOTrainer (ftlab.preference)
        from ftlab.preference import dpo_train, from_openai_dpo

        cfg.eval_steps = 0
        result = dpo_train([from_openai_dpo(r) for r in train_rows], cfg, beta=beta or 0.1, callbacks=[bridge])
        return TrainOutcome(Path(result.adapter_dir), float(result.seconds), int(result.global_step))
    result = train(cfg, train_rows, valid_rows or None, callbacks=[bridge])
    return TrainOutcome(Path(result.adapter_dir), float(result.seconds), int(result.global_step))
