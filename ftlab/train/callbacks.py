"""The Trainer callbacks, made on first use so that importing ``ftlab.train`` does not import transformers'
Trainer: ``OverfitDetector`` (stop on rising validation loss) and ``DivergenceGuard`` (stop on NaN/inf weights).

``OverfitDetector(patience=3, min_delta=0.0)``: stops training when validation loss rises ``patience`` evals
in a row (``d.update(step, loss)`` feeds one by hand). ``DivergenceGuard()``: stops at the first step that leaves
a trainable weight NaN or inf; ``guard.check(what, lr_param, lr)`` then raises a clear error.

Example::

    d = OverfitDetector(patience=3)
    [d.update(s, l) for s, l in [(1, 1.0), (2, 0.9), (3, 0.95), (4, 1.0), (5, 1.1)]][-1]  # -> True
"""

from __future__ import annotations

import functools
from typing import Any

from ftlab.errors import FtlabError

__all__ = ["DivergenceGuard", "OverfitDetector"]  # noqa: F822 (classes made on first use, see __getattr__)


@functools.cache
def _overfit_detector_cls():
    from transformers import TrainerCallback

    class OverfitDetector(TrainerCallback):
        """Stop when validation loss has risen for ``patience`` evaluations in a row (article 001: patience=3).

        Training keeps the best checkpoint through transformers' own ``load_best_model_at_end``;
        this callback adds the stopping rule and the diagnosis text.
        """

        def __init__(self, patience: int = 3, min_delta: float = 0.0):
            self.patience = patience
            self.min_delta = min_delta
            self.history: list[tuple[int, float]] = []
            self.rises = 0
            self.triggered_at: int | None = None
            self.message = ""

        def update(self, step: int, eval_loss: float) -> bool:
            """Feed one evaluation; returns True when training should stop."""
            if self.history and eval_loss > self.history[-1][1] + self.min_delta:
                self.rises += 1
            else:
                self.rises = 0
            self.history.append((step, eval_loss))
            if self.rises >= self.patience and self.triggered_at is None:
                best_step, best = min(self.history, key=lambda x: x[1])
                self.triggered_at = step
                self.message = (
                    f"OVERFITTING: validation loss rose {self.rises} evaluations in a row (now {eval_loss:.4f}, "
                    f"best {best:.4f} at step {best_step}). Stop; keep the step-{best_step} checkpoint; "
                    "reduce epochs or add more diverse data."
                )
                return True
            return False

        def on_evaluate(self, args, state, control, metrics=None, **kwargs):
            if metrics and "eval_loss" in metrics and self.update(state.global_step, float(metrics["eval_loss"])):
                control.should_training_stop = True
            return control

    return OverfitDetector


@functools.cache
def _divergence_guard_cls():
    from transformers import TrainerCallback

    class DivergenceGuard(TrainerCallback):
        def __init__(self) -> None:
            self.diverged_at: int | None = None
            self.last_log: dict[str, Any] = {}

        def on_log(self, args, state, control, logs=None, **kwargs):
            self.last_log = dict(logs or {})

        def on_step_end(self, args, state, control, model=None, **kwargs):
            if model is None or self.diverged_at is not None:
                return control
            if any(p.requires_grad and not p.detach().isfinite().all() for p in model.parameters()):
                self.diverged_at = state.global_step
                control.should_training_stop = True
            return control

        def check(self, what: str, lr_param: str, learning_rate: float) -> None:
            """Raise a clear ``FtlabError`` if training left non-finite weights (nothing is saved then)."""
            if self.diverged_at is None:
                return
            seen = {k: self.last_log[k] for k in ("loss", "grad_norm") if k in self.last_log}
            if self.diverged_at <= 1:  # one update of a sane LR cannot overflow: the gradient itself was NaN/inf
                raise FtlabError(f"{what}: the first update left NaN/inf weights (last log {seen}), so the gradient "
                                 "itself was not finite: a numerical problem (attention kernel, dtype), not the LR. "
                                 "Nothing was saved. Train in float32 or with attn_implementation='eager' to check.")
            raise FtlabError(f"{what} diverged at step {self.diverged_at}: the trainable weights became NaN/inf "
                             f"(last log {seen}); the run was stopped and nothing was saved. Lower {lr_param} "
                             f"(now {learning_rate:g}; try {learning_rate / 10:g}) and run the cell again.")

    return DivergenceGuard


# OverfitDetector and DivergenceGuard are TrainerCallback classes, created on first use (module __getattr__), so
# that importing ftlab.train does not import transformers' Trainer.
_LAZY_CLASSES = {"OverfitDetector": "_overfit_detector_cls", "DivergenceGuard": "_divergence_guard_cls"}


def __getattr__(name: str):
    """``OverfitDetector`` and ``DivergenceGuard``, made on first use (see the module docstring)."""
    if name in _LAZY_CLASSES:
        cls = globals()[_LAZY_CLASSES[name]]()
        globals()[name] = cls
        return cls
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
