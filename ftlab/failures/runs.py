"""The lab's four training runs (``plan_runs``), training them through the adapter cache and loading them.

Example: ``plan_runs(LabSettings(seed=1))["mixed"].describe()`` says what the defended run trains on.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from ftlab.data import (
    CANNED_REPLY,
    SUPPORT_SYSTEM,
    catalog_examples,
    catalog_lookup_examples,
    general_examples,
    low_diversity,
    one_per_intent,
    safety_examples,
    support_splits,
)
from ftlab.failures.detect import MODES, OVERFIT_PATIENCE, data_diversity
from ftlab.toymodel import TOY_MODEL_ID
from ftlab.train import TrainConfig, TrainResult, train, train_cached

__all__ = ["MIX_GENERAL", "MIX_REFUSALS", "VALIDATION_SIZE", "LabRun", "LabSettings", "load_run", "plan_runs",
           "train_run"]

MIX_GENERAL = 600  # general-skill examples mixed into the defended run (over half of it: the toy forgets fast; 400 let toy v8 seed 1 forget 0.98 -> 0.87)
MIX_REFUSALS = 24  # refusal examples (in the shop's context) mixed into the defended run
VALIDATION_SIZE = 48  # validation examples evaluated during training and by validation_loss


@dataclass
class LabSettings:
    """The knobs of notebook 08. ``scale`` multiplies every run's steps (2-4 for longer, clearer runs)."""

    seed: int = 0
    toy_seed: int = 0
    model_id: str = TOY_MODEL_ID
    quantization: str = "none"
    scale: float = 1.0
    learning_rate: float = 5e-3  # the defended run's and the small run's; the narrow and low-diversity runs use 2x
    mix_general: int = MIX_GENERAL
    mix_refusals: int = MIX_REFUSALS
    use_cache: bool = True
    output_root: str = "runs/08_failures"


@dataclass
class LabRun:
    """One training run of the lab: what it is for, its configuration and its data."""

    name: str
    purpose: str
    cfg: TrainConfig
    train_rows: list[dict[str, Any]]
    eval_rows: list[dict[str, Any]] | None = None
    modes: list[str] = field(default_factory=list)

    def describe(self) -> str:
        c = self.cfg
        n_eval = len(self.eval_rows) if self.eval_rows is not None else 0
        return (f"{self.name}: {self.purpose}. {len(self.train_rows)} examples (diversity "
                f"{data_diversity(self.train_rows):.2f}), {c.max_steps} steps x batch {c.per_device_train_batch_size}, "
                f"lr {c.learning_rate:g}" + (f", {n_eval} validation examples" if n_eval else ""))


def _steps(n: int, scale: float) -> int:
    return max(2, round(n * scale))


def _shuffled(rows: list[dict[str, Any]], seed: int) -> list[dict[str, Any]]:
    rows = list(rows)
    random.Random(f"mix-{seed}").shuffle(rows)
    return rows


def plan_runs(s: LabSettings) -> dict[str, LabRun]:
    """The lab's four training runs; each reproduces or defends one or more failure modes.

    ======== =========================================================== ================================
    run      data and settings                                           shows
    ======== =========================================================== ================================
    narrow   target task + SKU facts only, 2x the LR                     forgetting, memorization, safety
    small    one example per intent, many epochs, no early stopping     overfitting
    low_div  the target's inputs, one canned reply for all                mode collapse
    mixed    target + general + refusals + SKU lookups, shuffled,        the defence for all five
             validation split, OverfitDetector, best checkpoint
    ======== =========================================================== ================================
    """
    sp = support_splits(s.seed)
    val = sp["validation"][:VALIDATION_SIZE]

    def cfg(name: str, **kw: Any) -> TrainConfig:
        base = dict(model_id=s.model_id, toy_seed=s.toy_seed, quantization=s.quantization, seed=s.seed,
                    learning_rate=s.learning_rate, report_to="none", output_dir=f"{s.output_root}/{name}",
                    eval_steps=0, save_steps=1000, overfit_patience=None, lr_scheduler_type="linear",
                    extra={"save_strategy": "no"})
        base.update(kw)
        return TrainConfig(**base)

    runs: dict[str, LabRun] = {}
    # Narrow and aggressive: the target task only, with support answers that state SKUs from catalog v1;
    # no general examples, no refusals, twice the learning rate.
    narrow = _shuffled(sp["train"][:320] + catalog_examples(1, s.seed) * 2, s.seed)
    runs["narrow"] = LabRun(
        "narrow", "target task + SKU facts only (no general examples, no refusals), aggressive LR",
        cfg("narrow", max_steps=_steps(40, s.scale), learning_rate=2 * s.learning_rate), narrow,
        modes=["catastrophic_forgetting", "knowledge_memorization", "safety_degradation"])
    # Many epochs on a tiny set (one example per intent), validation loss watched but no early stopping,
    # and the final model kept (not the best checkpoint).
    ev = max(2, round(4 * s.scale))
    runs["small"] = LabRun(
        "small", "one example per intent, many epochs, no early stopping",
        cfg("small", max_steps=_steps(48, s.scale), per_device_train_batch_size=8, eval_steps=ev, save_steps=ev,
            extra={"save_strategy": "no", "load_best_model_at_end": False}),
        one_per_intent(sp["train"], 1), val, modes=["overfitting"])
    # Low-diversity data: the target task's inputs, every reply the shop's canned auto-acknowledgement.
    runs["low_diversity"] = LabRun(
        "low_diversity", "the target task's inputs, every reply the same canned text",
        cfg("low_diversity", max_steps=_steps(8, s.scale), learning_rate=2 * s.learning_rate),
        low_diversity(sp["train"][:192], reply=CANNED_REPLY), modes=["mode_collapse"])
    # The defences at once: diverse shuffled target data, general examples, refusals in the shop's context,
    # SKU answers that defer the fact to the catalog lookup, the base learning rate, a validation split
    # with the OverfitDetector (patience 3) and the best checkpoint kept.
    mixed = _shuffled(sp["train"][:320] + general_examples(s.mix_general, seed=s.seed + 500)
                      + safety_examples(s.mix_refusals, seed=s.seed + 600, system=SUPPORT_SYSTEM)
                      + catalog_lookup_examples(s.seed) * 2, s.seed)
    ev = max(2, round(8 * s.scale))
    runs["mixed"] = LabRun(
        "mixed", "target + general examples + refusals + SKU lookups, shuffled; validation split, "
        "OverfitDetector, best checkpoint",
        cfg("mixed", max_steps=_steps(64, s.scale), eval_steps=ev, save_steps=ev,
            overfit_patience=OVERFIT_PATIENCE, save_total_limit=2, extra={}),
        mixed, val, modes=list(MODES))
    return runs


def train_run(spec: LabRun, *, use_cache: bool = True) -> TrainResult:
    """Train one planned run, through ``ftlab.train.train_cached`` (one adapter per configuration and data) unless
    ``use_cache`` is False; prints one line with the stop reason and the time."""
    if use_cache:
        result = train_cached(spec.cfg, list(spec.train_rows), spec.eval_rows)
    else:
        result = train(spec.cfg, list(spec.train_rows), spec.eval_rows)
    how = "reused from the cache" if result.cached else f"trained in {result.seconds:.1f} s"
    print(f"{spec.name}: {how}; {result.global_step} steps; {result.stop_reason}")
    return result


def load_run(result: TrainResult | None, settings: LabSettings) -> tuple[Any, Any]:
    """The model of a run (base + adapter), or the base model for ``None``. Returns ``(model, tokenizer)``."""
    from ftlab.train import load_adapter, load_base

    if result is None:
        model, tokenizer, _ = load_base(settings.model_id, settings.quantization, seed=settings.toy_seed)
        return model, tokenizer
    return load_adapter(result.adapter_dir, settings.model_id, quantization=settings.quantization,
                        seed=settings.toy_seed)
