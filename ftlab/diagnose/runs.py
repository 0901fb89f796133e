"""Real runs that cause each pattern (notebook 05, tests/data/curves/make_real_runs.py): the one part of
``ftlab.diagnose`` that trains, so the only one that imports ``ftlab.train`` and ``ftlab.toymodel``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

__all__ = ["pattern_runs", "pattern_trainer", "train_for_pattern"]

# --------------------------------------------------------------------------------------------
# Real runs that cause each pattern (notebook 05, tests/data/curves/make_real_runs.py)
# --------------------------------------------------------------------------------------------


def pattern_runs(*, good_lr: float = 5e-4, plateau_lr: float = 5e-3, overfit_lr: float = 2e-3, low_lr: float = 5e-5,
                 high_lr: float = 2e-3, steps: int = 20, batch_size: int = 16,
                 overfit_examples: int = 4, unstable_batch_size: int = 4,
                 plateau_examples: int = 8) -> dict[str, dict[str, Any]]:
    """Training knobs that cause each of the five patterns in a LoRA fine-tune of the toy model.

    - healthy: a good LR, stopped while still improving (``steps``);
    - plateau: a brisk LR on a few examples (``plateau_examples``), 3 × as long: it learns all they teach;
    - overfitting: a few examples (the whole set in every batch) seen 4 × ``steps`` times;
    - flat: a learning rate too low (10× lower than a good one);
    - unstable: a brisk learning rate with a batch too small (``unstable_batch_size``): spiky, not NaN.

    ``n_examples`` (when present) caps the training examples. Example:
    ``pattern_runs()["flat"] == {"learning_rate": 5e-05, "max_steps": 20, "per_device_train_batch_size": 16}``.
    """
    return {
        "healthy": {"learning_rate": good_lr, "max_steps": steps, "per_device_train_batch_size": batch_size},
        "plateau": {"learning_rate": plateau_lr, "max_steps": 3 * steps, "per_device_train_batch_size": plateau_examples,
                    "n_examples": plateau_examples},
        "overfitting": {"learning_rate": overfit_lr, "max_steps": 4 * steps,
                        "per_device_train_batch_size": overfit_examples, "n_examples": overfit_examples},
        "flat": {"learning_rate": low_lr, "max_steps": steps, "per_device_train_batch_size": batch_size},
        "unstable": {"learning_rate": high_lr, "max_steps": steps, "per_device_train_batch_size": unstable_batch_size},
    }


def train_for_pattern(knobs: Mapping[str, Any], train_rows: Sequence[Any], eval_rows: Sequence[Any], *,
                      output_dir: str, model_id: str | None = None, quantization: str = "none", seed: int = 0,
                      overfit_patience: int | None = None, cached: bool = True):
    """Run one of ``pattern_runs()``'s trainings with ``ftlab.train`` and return its ``TrainResult``.

    Every run logs the loss at every step and evaluates 10 times; the learning rate is constant
    (no schedule flattens a curve by itself) and no early stopping cuts a run short unless
    ``overfit_patience`` turns the OverfitDetector on. ``result.trainer_state`` is the Trainer's
    ``trainer_state.json``, ready for ``diagnose``. ``cached`` reuses an identical earlier run
    (``ftlab.train.train_cached``; ``output_dir`` is then not used).
    """
    from ftlab.toymodel import TOY_MODEL_ID
    from ftlab.train import TrainConfig, train, train_cached

    knobs = dict(knobs)
    n_examples = knobs.pop("n_examples", None)
    n = knobs["max_steps"]  # evaluate ~10 times, every `every` steps, a divisor of n (save_steps=n must be a multiple)
    every = next(d for d in range(max(2, n // 10), 0, -1) if n % d == 0)
    cfg = TrainConfig(model_id=model_id or TOY_MODEL_ID, quantization=quantization, output_dir=output_dir, seed=seed,
                      logging_steps=1, eval_steps=every, lr_scheduler_type="constant",
                      warmup_ratio=0.0, save_steps=n, save_total_limit=1, overfit_patience=overfit_patience,
                      report_to="none", **knobs)
    rows = list(train_rows)[: n_examples or cfg.max_steps * cfg.per_device_train_batch_size
                            * cfg.gradient_accumulation_steps]
    if cached:
        return train_cached(cfg, rows, list(eval_rows))
    return train(cfg, rows, list(eval_rows))


def pattern_trainer(train_rows: Sequence[Any], eval_rows: Sequence[Any], *, folder: str, model_id: str | None = None,
                    quantization: str = "none", seed: int = 0) -> Callable[..., Any]:
    """``train_for_pattern`` bound to one data split, model and output folder, for a notebook that trains many runs:
    the returned ``run(name, knobs, **more)`` trains ``knobs`` into ``folder/name`` (``more``: e.g.
    ``overfit_patience=3``) and returns the ``TrainResult``.

    Example: ``run = pattern_trainer(train, val, folder="runs/05"); run("flat", pattern_runs()["flat"])``.
    """
    def run(name: str, knobs: Mapping[str, Any], **more: Any):
        return train_for_pattern(knobs, train_rows, eval_rows, output_dir=f"{folder}/{name}", model_id=model_id,
                                 quantization=quantization, seed=seed, **more)

    return run
