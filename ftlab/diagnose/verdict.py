"""Deciding: the pattern and its reason from a curve's measures, the ``Diagnosis``, and the articles' action applied."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ftlab.diagnose.measure import (
    _Analysis,
    _finite,
    _int_step,
    _trailing_nonfinite,
    _Train,
    _train_features,
    _Val,
    _val_features,
)
from ftlab.diagnose.read import LossHistory, as_history
from ftlab.diagnose.rules import (
    MIN_TRAIN_POINTS,
    NO_VALIDATION_WARNING,
    OVERSHOOT_MIN,
    PATTERNS,
    THRESHOLDS,
)
from ftlab.errors import FtlabError

__all__ = ["FLAT_LR_FACTOR", "Diagnosis", "apply_action", "diagnose"]

def _unstable_reason(q: Mapping[str, Any], th: Mapping[str, float]) -> str | None:
    """Why the run is unstable (NaN/inf, noise, spikes, an overshoot or a rebound), or None."""
    rebound_thr = max(th["rebound_min"], q["rebound_noise"])
    if q["trailing_bad"] >= 2:
        return f"the training loss became NaN/inf at step {_int_step(q['first_bad'])} and stayed so: training diverged"
    if q["trailing_bad_val"]:
        return f"the validation loss became NaN/inf at step {_int_step(q['first_bad_val'])}: training diverged"
    if q["n_bad_train"] > 0.2 * q["n_logged"]:
        return f"{q['n_bad_train']} of {q['n_logged']} training losses are NaN/inf"
    if q["noise"] > th["noise_unstable"]:
        return (f"the training loss fluctuates by ±{q['noise']:.0%} from step to step "
                f"(limit {th['noise_unstable']:.0%})")
    if q["spike_count"] >= q["min_spikes"]:
        return (f"{q['spike_count']} spikes more than {q['spike_thr']:.0%} above the trend "
                f"(largest {q['spike_size']:.0%}; {q['min_spikes']} make a spiky run)")
    if q["overshoot"] > OVERSHOOT_MIN:
        return (f"the training loss climbed {q['overshoot']:.0%} above where it started (around step "
                f"{_int_step(q['overshoot_step'])}; limit {OVERSHOOT_MIN:.0%}): the learning rate throws it off")
    if q["rebound"] > rebound_thr:
        return (f"the smoothed training loss climbed {q['rebound']:.0%} back above its best "
                f"(at step {_int_step(q['rebound_step'])}; limit {rebound_thr:.0%})")
    return None


def _still_falling(q: Mapping[str, Any], th: Mapping[str, float]) -> tuple[str, str]:
    """Healthy or plateau: did the last third of the run still lower the loss (validation, else training)?"""
    on_val = q["m"] >= 2
    share, rel, se = ((q["val_share"], q["val_recent_rel"], q["val_se_rel"]) if on_val
                      else (q["share"], q["recent_rel"], q["se_rel"]))
    falling_thr = max(th["recent_rel_plateau"], th["falling_se_mult"] * se)
    what = "validation" if on_val else "training"
    if share < th["recent_share_plateau"] or rel < falling_thr:
        pattern = "plateau"
        reason = (f"over the last third of the run the {what} loss fell {rel:+.1%} of its level "
                  f"({max(share, 0):.0%} of its improvement); still falling at a useful rate needs "
                  f"{falling_thr:.1%}: it has flattened")
    else:
        pattern = "healthy"
        reason = (f"the {what} loss is still falling at a useful rate: {rel:.1%} of its level over the last "
                  f"third of the run ({share:.0%} of its improvement; flattened below {falling_thr:.1%}), "
                  f"training loss fell {q['drop']:.0%}")
    if not on_val:
        reason = "judged on training loss alone: " + reason
    return pattern, reason


def _decide(q: Mapping[str, Any], th: Mapping[str, float]) -> tuple[str, str, int | None]:
    """The pattern, the reason and (overfitting) the best step, from ``_analyse``'s measures and the thresholds."""
    reason = _unstable_reason(q, th)
    if reason is not None:
        return "unstable", reason, None
    if q["drop"] < th["flat_drop"]:
        return "flat", (f"the training loss fell only {q['drop']:.1%} from its start ({q['start']:.4g} → "
                        f"{q['end']:.4g}; limit {th['flat_drop']:.0%})"), None
    val_rise_thr = max(th["val_rise_min"], th["val_noise_mult"] * q["val_rise_noise"])
    if q["m"] >= 2 and q["val_rise"] > val_rise_thr:
        reason = (f"validation loss bottomed out at step {q['val_min_step']} ({q['vmin']:.4g}) and ended "
                  f"{q['val_rise']:.0%} higher ({q['val_rise_end']:.4g}, the lower of the last two; limit "
                  f"{val_rise_thr:.0%}) while training loss fell {q['drop']:.0%}")
        return "overfitting", reason, round(q["val_min_step"])
    pattern, reason = _still_falling(q, th)
    return pattern, reason, None


def _decision_inputs(history: LossHistory, x: np.ndarray, t: _Train, v: _Val, bad: Mapping[str, int]
                     ) -> dict[str, Any]:
    """The measures ``_decide`` reads (``measures()``): none of them depends on the thresholds."""
    trailing_bad, trailing_bad_val = bad["trailing_bad"], bad["trailing_bad_val"]
    lvl_end = abs(t.tail.end) + t.floor
    return {"trailing_bad": trailing_bad, "trailing_bad_val": trailing_bad_val, "n_bad_train": bad["n_bad_train"],
            "n_logged": len(history.train_loss),
            "first_bad": history.train_steps[len(history.train_loss) - trailing_bad] if trailing_bad else None,
            "first_bad_val": (history.val_steps[len(history.val_loss) - trailing_bad_val] if trailing_bad_val
                              else None),
            "noise": t.noise, "spike_count": t.spike_count, "min_spikes": t.min_spikes, "spike_thr": t.spike_thr,
            "spike_size": t.evidence["spike_size"], "overshoot": t.overshoot, "overshoot_step": x[t.overshoot_i],
            "rebound": t.rebound, "rebound_noise": t.rebound_noise, "rebound_step": x[t.rebound_i],
            "drop": t.drop, "start": t.start, "end": t.end, "m": v.m, "val_min_step": v.val_min_step,
            "vmin": v.vmin, "vend": v.vend, "val_rise_end": v.val_rise_end,
            "val_rise": v.val_rise, "val_rise_noise": v.val_rise_noise, "val_share": v.val_share,
            "val_recent_rel": v.val_recent_rel, "val_se_rel": v.val_se_rel,
            "share": t.tail.share, "recent_rel": t.tail.recent / lvl_end, "se_rel": t.tail.se_recent / lvl_end}


def _start_evidence(history: LossHistory, n: int, bad: Mapping[str, int]) -> dict[str, Any]:
    """The evidence every diagnosis starts with: the format, the source, the point counts and NaN/inf counts."""
    ev: dict[str, Any] = {"format": history.format, "source": history.source,
                          "train_points": n, "val_points": int(np.isfinite(history.val_loss).sum())}
    if history.notes:
        ev["notes"] = list(history.notes)
    if bad["n_bad_train"]:
        ev["nonfinite_train"] = bad["n_bad_train"]
    if bad["n_bad_val"]:
        ev["nonfinite_val"] = bad["n_bad_val"]
    return ev


def _analyse(history: LossHistory, thresholds: Mapping[str, float] | None = None) -> _Analysis:
    """Measure ``history`` and decide its pattern: the arrays, evidence and warnings a ``Diagnosis`` holds."""
    th = {**THRESHOLDS, **(thresholds or {})}
    src = history.source or "the log"
    bad = {"n_bad_train": int((~np.isfinite(history.train_loss)).sum()),
           "n_bad_val": int((~np.isfinite(history.val_loss)).sum()),
           "trailing_bad": _trailing_nonfinite(history.train_loss),
           "trailing_bad_val": (_trailing_nonfinite(history.val_loss) if np.isfinite(history.val_loss).any()
                                else 0)}
    x, y = _finite(history.train_steps, history.train_loss)
    n = len(y)
    if n < MIN_TRAIN_POINTS and bad["trailing_bad"] < 2:
        raise FtlabError(f"{src}: only {n} finite training-loss values; need at least {MIN_TRAIN_POINTS} to diagnose "
                         f"(log more often, e.g. logging_steps=1)")
    warnings: list[str] = []
    ev = _start_evidence(history, n, bad)
    if n < 3:  # (almost) only NaN/inf: diverged from the start
        empty = np.array([])
        ev.update(reason="(almost) every training loss is NaN/inf: training diverged")
        return _Analysis(history, x, y, y.copy(), np.zeros(n), np.zeros(n, bool), empty, empty, empty, "unstable",
                         ev["reason"], ev, None, warnings)
    t = _train_features(x, y)
    ev.update(t.evidence)
    v = _val_features(history, x, t.s, t.start, t.scale, th["val_rise_min"])
    ev.update(v.evidence)
    q = _decision_inputs(history, x, t, v, bad)
    pattern, reason, best_step = _decide(q, th)
    val_rise_thr = max(th["val_rise_min"], th["val_noise_mult"] * v.val_rise_noise)
    if v.m >= 2:
        ev["val_rise_threshold"] = val_rise_thr
    # Without (enough) validation loss, say so first, whatever the training loss shows: a flat or unstable
    # training curve does not make overfitting any more visible.
    if v.m == 1:
        warnings.insert(0, "only one validation point: its trend, and so overfitting, cannot be seen; "
                           "evaluate more often (e.g. eval_steps)")
    elif v.m == 0:
        warnings.insert(0, NO_VALIDATION_WARNING)
    if pattern in ("unstable", "flat") and v.m >= 2 and v.val_rise > val_rise_thr:
        warnings.append(f"validation loss also rose {v.val_rise:.0%} above its minimum at step {v.val_min_step}")
    if n < 10:
        warnings.append(f"only {n} training-loss points: the diagnosis is rough")
    ev["reason"] = reason
    return _Analysis(history, x, y, t.s, t.z, t.spikes, v.xv, v.yv, v.sv, pattern, reason, ev, best_step, warnings, q)


# --------------------------------------------------------------------------------------------
# The public result
# --------------------------------------------------------------------------------------------


def _round(value: Any) -> Any:
    if isinstance(value, float | np.floating):
        value = float(value)
        if not math.isfinite(value):
            return str(value)
        return float(f"{value:.4g}")
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, list | tuple):
        return [_round(v) for v in value]
    if isinstance(value, dict):
        return {k: _round(v) for k, v in value.items()}
    return value


@dataclass
class Diagnosis:
    """The named pattern, the articles' action, the evidence and (for overfitting) the best checkpoint's step."""

    pattern: str
    action: str
    evidence: dict[str, Any]
    best_step: int | None = None
    warnings: list[str] = field(default_factory=list)
    _analysis: _Analysis | None = field(default=None, repr=False, compare=False)

    @property
    def meaning(self) -> str:
        return PATTERNS[self.pattern].meaning

    @property
    def shows(self) -> str:
        return PATTERNS[self.pattern].shows

    @property
    def reason(self) -> str:
        return self.evidence.get("reason", "")

    def to_dict(self) -> dict[str, Any]:
        """The JSON form: ``{"pattern", "action", "evidence", "best_step"}`` (warnings sit in the evidence)."""
        evidence = dict(self.evidence, warnings=list(self.warnings))
        return {"pattern": self.pattern, "action": self.action, "evidence": _round(evidence), "best_step": self.best_step}

    def summary(self) -> str:
        """A few lines for people: the pattern, why, what to do, and any warnings."""
        lines = [f"pattern: {self.pattern} — {self.shows}: {self.meaning}",
                 f"why:     {self.reason}",
                 f"action:  {self.action}"]
        if self.best_step is not None:
            lines.append(f"keep:    the checkpoint from step {self.best_step}, where validation loss bottomed out")
        lines += [f"warning: {w}" for w in self.warnings]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()


def diagnose(source: Any, *, thresholds: Mapping[str, float] | None = None) -> Diagnosis:
    """Name the loss curve's pattern (healthy, plateau, overfitting, flat, unstable) with the articles' action.

    ``source`` is a path (trainer_state.json, a folder holding one, or a CSV), a ``LossHistory``,
    a trainer-state dict, a ``log_history`` list, or a transformers ``Trainer``. ``thresholds``
    overrides any of ``THRESHOLDS``.

    Example::

        >>> h = LossHistory.from_arrays(range(1, 61), [2.5 * 0.97**t for t in range(60)])
        >>> diagnose(h).pattern
        'healthy'
    """
    history = as_history(source)
    unknown = sorted(set(thresholds or {}) - set(THRESHOLDS))
    if unknown:
        raise FtlabError(f"unknown threshold(s) {unknown}; known: {sorted(THRESHOLDS)}")
    a = _analyse(history, thresholds)
    return Diagnosis(a.pattern, PATTERNS[a.pattern].action, a.evidence, a.best_step, a.warnings, a)


FLAT_LR_FACTOR = 10.0  # the articles: "Raise LR 5-10×"


def apply_action(pattern: str, knobs: Mapping[str, Any], diagnosis: Diagnosis | None = None, *,
                 unstable: str = "both") -> dict[str, Any]:
    """The run's knobs with the articles' action for ``pattern`` applied, ready to train again.

    - flat: raise the learning rate ``FLAT_LR_FACTOR`` × (the articles: 5-10×);
    - unstable: halve the learning rate and double ``gradient_accumulation_steps`` (the articles' action,
      ``unstable="both"``), or only one of them (``"lr"``, ``"accumulation"``);
    - overfitting: stop at the best step: ``max_steps`` becomes the diagnosis's ``best_step``
      (the evaluation where validation loss bottomed out).

    Example: ``apply_action("flat", {"learning_rate": 1e-5, "max_steps": 20})["learning_rate"] == 1e-4``.
    Healthy and plateau runs need no fix here ("continue training", "reduce LR or stop soon").
    """
    new = dict(knobs)
    if pattern == "flat":
        new["learning_rate"] = float(knobs["learning_rate"]) * FLAT_LR_FACTOR
    elif pattern == "unstable":
        if unstable not in ("lr", "accumulation", "both"):
            raise FtlabError(f"unstable={unstable!r}: use 'lr', 'accumulation' or 'both'")
        if unstable in ("lr", "both"):
            new["learning_rate"] = float(knobs["learning_rate"]) / 2
        if unstable in ("accumulation", "both"):
            new["gradient_accumulation_steps"] = 2 * int(knobs.get("gradient_accumulation_steps", 1))
    elif pattern == "overfitting":
        if diagnosis is None or diagnosis.best_step is None:
            raise FtlabError("overfitting: pass the run's diagnosis, whose best_step is where to stop")
        new["max_steps"] = int(diagnosis.best_step)
    elif pattern in PATTERNS:
        raise FtlabError(f"{pattern}: nothing to fix; the articles' action is {PATTERNS[pattern].action!r}")
    else:
        raise FtlabError(f"unknown pattern {pattern!r}; use one of {sorted(PATTERNS)}")
    return new
