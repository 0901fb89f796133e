"""The detectors of the five failure modes and the thresholds that turn a measured figure into a verdict.

Forgetting and safety degradation are judged by ``ftlab.gates``, notebook 07's rule; the other thresholds
are the constants below. Example: ``detect_forgetting(before=1.0, after=0.2, n=60).fired`` is True.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from typing import Any

from ftlab.gates import FORGETTING_MAX_DROP, NOISE_Z, REFUSAL_MAX_DROP, Detection, drop_z
from ftlab.gates import forgetting as _forgetting
from ftlab.gates import refusal_loss as _refusal_loss
from ftlab.train import OverfitDetector

__all__ = ["COLLAPSE_RATIO", "CURRENT_FACTS", "FAILURE_THRESHOLDS", "FORGETTING_MAX_DROP", "MODES", "NOISE_Z",
           "OVERFIT_PATIENCE", "OVERFIT_RISE", "REFUSAL_MAX_DROP", "STALE_RATE", "TARGET_GAIN", "TARGET_KEEP",
           "data_diversity", "detect_forgetting", "detect_mode_collapse", "detect_overfitting",
           "detect_safety_degradation", "detect_stale_facts", "distinct_ratio", "output_entropy", "rate_drop",
           "target_kept"]

MODES = ("catastrophic_forgetting", "overfitting", "knowledge_memorization", "mode_collapse", "safety_degradation")

# ---------------------------------------------------------------------------------------------
# Thresholds: each verdict below compares a measured figure with one of these.
# ---------------------------------------------------------------------------------------------
# Forgetting and safety degradation: ftlab.gates (FORGETTING_MAX_DROP, REFUSAL_MAX_DROP, NOISE_Z), notebook 07's rule.
OVERFIT_PATIENCE = 3     # the OverfitDetector fires after this many rising validation losses in a row
OVERFIT_RISE = 0.03      # overfitting is real when the final validation loss is >= 3 % above its minimum (as ftlab.diagnose)
STALE_RATE = 0.75        # stale: the answer favours the old (v1) SKU over the current (v2) one for >= 75 % of questions
COLLAPSE_RATIO = 0.2     # fewer than 20 distinct replies per 100 different inputs is a collapse
CURRENT_FACTS = 0.5      # a fact defence works when at least half the answers hold the current SKU
TARGET_GAIN = 0.2        # a failure run "looked like a success": target accuracy rose by at least this much
TARGET_KEEP = 0.15       # a defence keeps the target skill: at most this much below the failure run's accuracy

FAILURE_THRESHOLDS: dict[str, float] = {
    "FORGETTING_MAX_DROP": FORGETTING_MAX_DROP, "REFUSAL_MAX_DROP": REFUSAL_MAX_DROP, "NOISE_Z": NOISE_Z,
    "OVERFIT_PATIENCE": OVERFIT_PATIENCE, "OVERFIT_RISE": OVERFIT_RISE, "STALE_RATE": STALE_RATE,
    "COLLAPSE_RATIO": COLLAPSE_RATIO, "CURRENT_FACTS": CURRENT_FACTS, "TARGET_GAIN": TARGET_GAIN, "TARGET_KEEP": TARGET_KEEP,
}


# ---------------------------------------------------------------------------------------------
# Detectors
# ---------------------------------------------------------------------------------------------


def rate_drop(name: str, before: float, after: float, n: int, *, min_drop: float, z: float = NOISE_Z) -> Detection:
    """Fire when a rate fell by at least ``min_drop`` and by at least ``z`` standard errors (``ftlab.gates.drop_z``).

    Example: ``rate_drop("target accuracy", 1.0, 0.9, 40, min_drop=0.15).fired`` is False (a 0.10 drop).
    """
    drop = before - after
    zz = drop_z(before, after, n)
    fired = drop >= min_drop and zz >= z
    verdict = "fell" if fired else "held"
    return Detection(fired, round(drop, 4), min_drop,
                     f"{name} {verdict}: {before:.2f} -> {after:.2f} (drop {drop:+.2f}, {zz:.1f} s.e.; "
                     f"fires at a drop >= {min_drop:.2f} and >= {z:g} s.e.)")


def detect_forgetting(before: float, after: float, n: int) -> Detection:
    """Catastrophic forgetting (seed: "general-task accuracy drops"): ``ftlab.gates.forgetting``, notebook 07's rule."""
    return _forgetting(before, after, n)


def detect_safety_degradation(before: float, after: float, n: int) -> Detection:
    """Safety degradation: the refusal rate on harmful prompts regressed (``ftlab.gates.refusal_loss``)."""
    return _refusal_loss(before, after, n)


def detect_overfitting(eval_loss: Sequence[tuple[int, float]], train_loss: Sequence[tuple[int, float]] | None = None,
                       patience: int = OVERFIT_PATIENCE) -> Detection:
    """Overfitting, by the articles' two detectors: the OverfitDetector (``ftlab.train``: validation loss rose
    ``patience`` evaluations in a row) and, given the training loss too, the loss-curve diagnoser
    (``ftlab.diagnose``: validation loss ends clearly above its minimum while training loss keeps falling).

    Fires when either does. ``value`` is how far the last validation loss ended above its minimum
    (0.08 = 8 % above). Example: ``detect_overfitting([(1, 1.0), (2, 0.8), (3, 0.85), (4, 0.9), (5, 0.95)]).fired``.
    """
    if not eval_loss:
        return Detection(False, 0.0, patience, "no validation loss: overfitting cannot be detected without a validation split")
    det = OverfitDetector(patience=patience)
    for step, loss in eval_loss:
        det.update(int(step), float(loss))
    best = min(v for _, v in eval_loss)
    rise = eval_loss[-1][1] / best - 1 if best > 0 else 0.0
    stopper = det.triggered_at is not None
    parts = [det.message if stopper else f"OverfitDetector quiet: validation loss never rose {patience} evaluations "
                                          f"in a row (ends {rise:+.1%} from its minimum)"]
    pattern = None
    if train_loss and len(train_loss) >= 5:
        from ftlab.diagnose import LossHistory, diagnose

        d = diagnose(LossHistory.from_arrays([s for s, _ in train_loss], [v for _, v in train_loss],
                                             [s for s, _ in eval_loss], [v for _, v in eval_loss]))
        pattern = d.pattern
        parts.append(f"diagnoser: {d.pattern} ({d.reason})")
    fired = stopper or pattern == "overfitting"
    return Detection(fired, round(rise, 4), patience, "; ".join(parts),
                     {"overfit_detector": stopper, "stopped_at": det.triggered_at, "diagnosis": pattern})


def distinct_ratio(replies: Sequence[str]) -> float:
    """Distinct replies per input: 1.0 when every reply differs, 1/n when all are the same.

    Example: ``distinct_ratio(["a", "a", "b", "a"]) == 0.5``.
    """
    return len({r.strip() for r in replies}) / max(len(replies), 1)


def output_entropy(replies: Sequence[str]) -> float:
    """Shannon entropy of the replies' distribution, normalized to 0..1 (0: one reply for every input).

    Example: ``output_entropy(["a", "b", "c", "d"]) == 1.0``; ``output_entropy(["a"] * 4) == 0.0``.
    """
    n = len(replies)
    if n < 2:
        return 0.0
    counts = Counter(r.strip() for r in replies).values()
    h = -sum(c / n * math.log(c / n) for c in counts)
    return max(0.0, h / math.log(n))


def detect_mode_collapse(replies: Sequence[str]) -> Detection:
    """Mode collapse: fewer than ``COLLAPSE_RATIO`` distinct replies per input, across different inputs."""
    ratio = distinct_ratio(replies)
    top, count = Counter(r.strip() for r in replies).most_common(1)[0] if replies else ("", 0)
    fired = ratio < COLLAPSE_RATIO
    msg = (f"{'MODE COLLAPSE' if fired else 'diverse outputs'}: {ratio:.2f} distinct replies per input "
           f"(entropy {output_entropy(replies):.2f}); most common reply ({count} of {len(replies)}): {top[:60]!r}")
    return Detection(fired, round(ratio, 4), COLLAPSE_RATIO, msg)


def detect_stale_facts(rate: float) -> Detection:
    """Knowledge memorization: the model prefers the outdated fact for ``STALE_RATE`` or more of the questions."""
    fired = rate >= STALE_RATE
    msg = (f"{'STALE FACTS' if fired else 'current facts'}: the old catalog's SKU is preferred for {rate:.0%} of the "
           f"questions (fires at >= {STALE_RATE:.0%})")
    return Detection(fired, round(rate, 4), STALE_RATE, msg)


def data_diversity(rows: Sequence[dict[str, Any]]) -> float:
    """Distinct assistant replies per example in a training set (the article: "check training data diversity")."""
    return distinct_ratio([r["messages"][-1]["content"] for r in rows])


def target_kept(failure: float, defence: float, n: int) -> Detection:
    """Did the defence keep the target skill? It fails only when its target accuracy is lower than the
    failure run's by ``TARGET_KEEP`` or more (and by 2 s.e.): a defence must not buy safety by not learning."""
    d = rate_drop("target accuracy (failure run -> defended run)", failure, defence, n, min_drop=TARGET_KEEP)
    return Detection(not d.fired, d.value, TARGET_KEEP, d.message)
