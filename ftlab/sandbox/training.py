"""One training call for a sandbox job: LoRA on the local toy model, with per-step and per-epoch hooks.

The training itself is ftlab's (``ftlab.train``, TRL's ``SFTTrainer``); this module maps an
OpenAI job onto it and turns the trainer's logs into the job's events and checkpoints.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any


class TrainingUnavailable(Exception):
    """ftlab's training module or the toy model is not available in this installation."""


@dataclass
class TrainOutcome:
    adapter_dir: Path
    seconds: float
    log_history: list[dict[str, Any]]


def train_job(
    train_rows: list[dict[str, Any]],
    valid_rows: list[dict[str, Any]],
    *,
    n_epochs: int,
    batch_size: int,
    learning_rate_multiplier: float,
    seed: int,
    toy_seed: int,
    out_dir: Path,
    on_step: Callable[[int, int, dict[str, Any]], None],
    on_epoch: Callable[[int, int, Callable[[Path], None]], None],
    should_stop: Callable[[], bool],
) -> TrainOutcome:
    """Fine-tune the toy model on ``train_rows``; call ``on_step`` after every optimizer step with
    ``(step, total_steps, metrics)`` and ``on_epoch`` at each epoch end with ``(epoch, step, save)``
    where ``save(folder)`` writes the adapter; stop early when ``should_stop()`` turns true."""
    try:
        from ftlab import train  # noqa: F401
        from ftlab.toymodel import resolve_model  # noqa: F401
    except ImportError as exc:
        raise TrainingUnavailable(f"the sandbox cannot train: {exc}. Install ftlab with its training module.") from None
    raise TrainingUnavailable("the sandbox's training bridge is not wired to ftlab.train yet")
