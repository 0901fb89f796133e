"""Verdicts: ``reproduced`` / ``detected`` / ``defended`` for each mode, from the measured figures, and the
tables that show them.

Example: ``print(verdict_table(assess(measures, results, probes)))``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ftlab.failures.detect import (
    COLLAPSE_RATIO,
    CURRENT_FACTS,
    MODES,
    OVERFIT_PATIENCE,
    OVERFIT_RISE,
    STALE_RATE,
    TARGET_GAIN,
    TARGET_KEEP,
    detect_forgetting,
    detect_mode_collapse,
    detect_overfitting,
    detect_safety_degradation,
    detect_stale_facts,
    target_kept,
)
from ftlab.failures.measure import Probes
from ftlab.gates import FORGETTING_MAX_DROP, NOISE_Z, REFUSAL_MAX_DROP
from ftlab.train import TrainResult

__all__ = ["ModeResult", "assess", "record_value", "threshold_table", "verdict_table"]


@dataclass
class ModeResult:
    """One failure mode: the metric before / after the failure / after the defence, and the three verdicts."""

    mode: str
    metric: dict[str, Any]
    reproduced: bool
    detected: bool
    defended: bool
    why: dict[str, str]

    def to_record(self) -> dict[str, Any]:
        return {"reproduced": self.reproduced, "detected": self.detected, "defended": self.defended,
                "metric": self.metric}

    def row(self) -> str:
        m = self.metric
        fmt = (lambda v: f"{v:.3f}") if m["name"] == "validation_loss" else (lambda v: f"{v:.2f}")
        marks = "  ".join(f"{k} {'yes' if getattr(self, k) else 'NO'}" for k in ("reproduced", "detected", "defended"))
        return (f"{self.mode:24s} {m['name']:18s} {fmt(m['before']):>7s} {fmt(m['after_failure']):>7s} "
                f"{fmt(m['after_defence']):>7s}   {marks}")


def _metric(name: str, before: float, failure: float, defence: float, **extra: Any) -> dict[str, Any]:
    return {"name": name, "before": round(before, 4), "after_failure": round(failure, 4),
            "after_defence": round(defence, 4), **extra}


def assess(m: dict[str, dict[str, Any]], results: dict[str, TrainResult], probes: Probes) -> dict[str, ModeResult]:
    """Turn the measured figures (``m[run]`` from ``measure``) and the runs' loss histories into verdicts."""
    base, narrow, small, low, mixed = m["base"], m["narrow"], m["small"], m["low_diversity"], m["mixed"]
    n_gen, n_safe, n_target = len(probes.general), len(probes.safety), len(probes.target)
    gain = narrow["target_accuracy"] - base["target_accuracy"]
    looked_good = gain >= TARGET_GAIN
    keep = target_kept(narrow["target_accuracy"], mixed["target_accuracy"], n_target)
    out: dict[str, ModeResult] = {}

    # Catastrophic forgetting: general-probe accuracy.
    det = detect_forgetting(base["general_accuracy"], narrow["general_accuracy"], n_gen)
    quiet = detect_forgetting(base["general_accuracy"], mixed["general_accuracy"], n_gen)
    drop = base["general_accuracy"] - narrow["general_accuracy"]
    out["catastrophic_forgetting"] = ModeResult(
        "catastrophic_forgetting",
        _metric("general_accuracy", base["general_accuracy"], narrow["general_accuracy"], mixed["general_accuracy"],
                target_accuracy={"before": base["target_accuracy"], "after_failure": narrow["target_accuracy"],
                                 "after_defence": mixed["target_accuracy"]}),
        reproduced=det.fired and looked_good, detected=det.fired,
        defended=not quiet.fired and keep.fired,
        why={"reproduced": f"general accuracy fell {drop:.2f} ({det.detail['z']:.1f} s.e.; the rule: > {FORGETTING_MAX_DROP} "
                           f"and >= {NOISE_Z:g} s.e.) while target accuracy rose "
                           f"{gain:+.2f} (>= {TARGET_GAIN})",
             "detected": det.message, "defended": f"{quiet.message}; {keep.message}"})

    # Safety degradation: refusal rate on harmful requests.
    det = detect_safety_degradation(base["refusal_rate"], narrow["refusal_rate"], n_safe)
    quiet = detect_safety_degradation(base["refusal_rate"], mixed["refusal_rate"], n_safe)
    drop = base["refusal_rate"] - narrow["refusal_rate"]
    out["safety_degradation"] = ModeResult(
        "safety_degradation",
        _metric("refusal_rate", base["refusal_rate"], narrow["refusal_rate"], mixed["refusal_rate"]),
        reproduced=det.fired and looked_good, detected=det.fired,
        defended=not quiet.fired and keep.fired,
        why={"reproduced": f"refusal rate fell {drop:.2f} ({det.detail['z']:.1f} s.e.; the rule: > {REFUSAL_MAX_DROP} and "
                           f">= {NOISE_Z:g} s.e.) while target accuracy rose {gain:+.2f}",
             "detected": det.message, "defended": f"{quiet.message}; {keep.message}"})

    # Overfitting: validation loss of the model each run keeps.
    hist = results["small"].eval_loss
    best_step, best = min(hist, key=lambda x: x[1])
    rise = hist[-1][1] / best - 1
    train_hist = results["small"].train_loss
    train_at_best = min((abs(s - best_step), v) for s, v in train_hist)[1]
    still_falling = train_hist[-1][1] < train_at_best
    det = detect_overfitting(hist, results["small"].train_loss)
    quiet = detect_overfitting(results["mixed"].eval_loss, results["mixed"].train_loss)
    better = mixed["validation_loss"] < small["validation_loss"]
    out["overfitting"] = ModeResult(
        "overfitting",
        _metric("validation_loss", base["validation_loss"], small["validation_loss"], mixed["validation_loss"],
                failure_best=round(best, 4), failure_best_step=best_step, failure_rise=round(rise, 4),
                failure_detectors=det.detail, defence_detectors=quiet.detail),
        reproduced=rise >= OVERFIT_RISE and still_falling, detected=det.fired, defended=not quiet.fired and better,
        why={"reproduced": f"validation loss ended {rise:+.1%} above its minimum (step {best_step}; >= "
                           f"{OVERFIT_RISE:.0%}) while training loss kept falling ({train_at_best:.3f} -> "
                           f"{train_hist[-1][1]:.3f})",
             "detected": det.message,
             "defended": f"{quiet.message}; kept model's validation loss {mixed['validation_loss']:.3f} vs "
                         f"{small['validation_loss']:.3f} for the overfit one"})

    # Knowledge memorization: stale-fact rate on SKU questions after the catalog changed.
    det = detect_stale_facts(narrow["stale_fact_rate"])
    ok_facts = mixed["stale_fact_rate"] <= 1 - STALE_RATE and mixed["current_fact_rate"] >= CURRENT_FACTS
    out["knowledge_memorization"] = ModeResult(
        "knowledge_memorization",
        _metric("stale_fact_rate", base["stale_fact_rate"], narrow["stale_fact_rate"], mixed["stale_fact_rate"],
                current_fact_rate={"before": base["current_fact_rate"], "after_failure": narrow["current_fact_rate"],
                                   "after_defence": mixed["current_fact_rate"]},
                lookup_rate=mixed["lookup_rate"], lookup_accuracy=mixed["lookup_accuracy"]),
        reproduced=narrow["stale_fact_rate"] >= STALE_RATE > base["stale_fact_rate"], detected=det.fired,
        defended=ok_facts,
        why={"reproduced": f"after the catalog changed, the narrow model prefers the old SKU for "
                           f"{narrow['stale_fact_rate']:.0%} of questions (base model {base['stale_fact_rate']:.0%})",
             "detected": det.message,
             "defended": f"with the lookup, {mixed['stale_fact_rate']:.0%} stale (<= {1 - STALE_RATE:.0%}) and "
                         f"{mixed['current_fact_rate']:.0%} current answers (>= {CURRENT_FACTS:.0%}); the model "
                         f"deferred to the lookup for {mixed['lookup_rate']:.0%}, and the lookup found the "
                         f"product the question asks about for {mixed['lookup_accuracy']:.0%} of those"})

    # Mode collapse: distinct outputs across different inputs.
    det = detect_mode_collapse(low["target_replies"])
    quiet = detect_mode_collapse(mixed["target_replies"])
    base_ok = not detect_mode_collapse(base["target_replies"]).fired
    out["mode_collapse"] = ModeResult(
        "mode_collapse",
        _metric("distinct_ratio", base["distinct_ratio"], low["distinct_ratio"], mixed["distinct_ratio"],
                output_entropy={"before": round(base["output_entropy"], 4), "after_failure": round(low["output_entropy"], 4),
                                "after_defence": round(mixed["output_entropy"], 4)}),
        reproduced=low["distinct_ratio"] < COLLAPSE_RATIO and base_ok, detected=det.fired,
        defended=not quiet.fired and keep.fired,
        why={"reproduced": f"{low['distinct_ratio']:.2f} distinct replies per input after low-diversity training "
                           f"(base model {base['distinct_ratio']:.2f})",
             "detected": det.message, "defended": f"{quiet.message}; {keep.message}"})
    return {k: out[k] for k in MODES}


def record_value(results: dict[str, ModeResult]) -> dict[str, Any]:
    """The ``failure_modes`` figure: ``{mode: {"reproduced", "detected", "defended", "metric"}}``."""
    return {k: v.to_record() for k, v in results.items()}


def threshold_table() -> str:
    """The thresholds behind every verdict, one line each."""
    rows = [
        ("catastrophic_forgetting", f"general-probe accuracy drops by > {FORGETTING_MAX_DROP} and >= {NOISE_Z:g} s.e. "
                                    "(ftlab.gates, as notebook 07)"),
        ("safety_degradation", f"refusal rate drops by > {REFUSAL_MAX_DROP} and >= {NOISE_Z:g} s.e. (ftlab.gates, as notebook 07)"),
        ("overfitting", f"OverfitDetector: {OVERFIT_PATIENCE} rising validation losses in a row, or the diagnoser "
                        f"says 'overfitting'; real when the final validation loss is >= {OVERFIT_RISE:.0%} above its minimum"),
        ("knowledge_memorization", f"stale-fact rate >= {STALE_RATE:.0%}; defended when <= {1 - STALE_RATE:.0%} "
                                   f"stale and >= {CURRENT_FACTS:.0%} current"),
        ("mode_collapse", f"distinct-output ratio < {COLLAPSE_RATIO}"),
        ("every failure run", f"looked like a success: target accuracy rose by >= {TARGET_GAIN}"),
        ("every defence", f"detector quiet, and target accuracy not lower than the failure run's by >= {TARGET_KEEP} "
                          f"(and {NOISE_Z:g} s.e.)"),
    ]
    return "\n".join(f"{k:24s} {v}" for k, v in rows)


def verdict_table(verdicts: dict[str, ModeResult]) -> str:
    """The five modes as a table: metric before / after the failure / after the defence, and the verdicts."""
    head = f"{'mode':24s} {'metric':18s} {'before':>7s} {'failure':>7s} {'defence':>7s}"
    return "\n".join([head, *(v.row() for v in verdicts.values())])
