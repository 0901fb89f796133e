"""The articles' five patterns and the thresholds that tell them apart (fitted by ``ftlab.diagnose.fit``)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "FALLING_SE_MULT",
    "FLAT_DROP",
    "FLUCT_FLOOR",
    "LEVEL_FLOOR",
    "MIN_TRAIN_POINTS",
    "NOISE_UNSTABLE",
    "NO_VALIDATION_WARNING",
    "OVERSHOOT_MIN",
    "PATTERNS",
    "REBOUND_MIN",
    "RECENT_REL_PLATEAU",
    "RECENT_SHARE_PLATEAU",
    "SPIKE_MIN",
    "SPIKE_NOISE_MULT",
    "THRESHOLDS",
    "VAL_EXACT",
    "VAL_NOISE_MULT",
    "VAL_RISE_MIN",
    "Pattern",
]

# --------------------------------------------------------------------------------------------
# The articles' table (article 001 wording; article 000 says the same in longer words)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Pattern:
    """One row of the articles' loss-curve table."""

    code: str
    shows: str
    meaning: str
    action: str


PATTERNS: dict[str, Pattern] = {
    p.code: p
    for p in (
        Pattern("healthy", "Train ↓ · Val ↓ (parallel)", "Healthy — model is learning", "Continue training"),
        Pattern("plateau", "Train ↓ · Val flattens", "Near-optimal, diminishing returns", "Reduce LR or stop soon"),
        Pattern("overfitting", "Train ↓ · Val ↑ (diverges)", "Overfitting — memorizing training data",
                "Stop now; reduce epochs; add more diverse data"),
        Pattern("flat", "Train barely moves from start", "LR too low or data format issue",
                "Raise LR 5-10×; validate data format"),
        Pattern("unstable", "Train spiky throughout", "LR too high or batch too small",
                "Halve LR; double gradient_accumulation_steps"),
    )
}

NO_VALIDATION_WARNING = (
    "no validation loss in this log: you cannot detect overfitting without it "
    "(hold out 10-20% of the data and evaluate during training)"
)

MIN_TRAIN_POINTS = 5

# Thresholds, all relative (see the module docstring for what each measure is). The fitted ones
# (THRESHOLDS below) are what fit_thresholds finds on the fit half of tests/data/curves/labelled.json.
NOISE_UNSTABLE = 0.08       # typical distance from the median of 5 / (level + 30 % of the first losses)
SPIKE_MIN = 0.50            # a spike is at least 50 % above the trend ...
SPIKE_NOISE_MULT = 4.0      # ... and at least 4 noise widths above it
REBOUND_MIN = 0.40          # the smoothed loss climbs 40 % back above its best so far
OVERSHOOT_MIN = 0.25        # the loss (median of 3 steps) climbs 25 % above where it started
FLAT_DROP = 0.08            # the training loss fell by less than 8 % of its start
VAL_RISE_MIN = 0.03         # validation ends 3 % above its minimum ...
VAL_NOISE_MULT = 0.5        # ... and above half of what the evaluations' noise could explain
VAL_EXACT = 0.01            # evaluations noisier than 1 % are smoothed; others taken as exact
RECENT_SHARE_PLATEAU = 0.0  # (no share rule: a decelerating curve still falling is healthy)
RECENT_REL_PLATEAU = 0.03   # plateau: the last third lowered the best validation loss < 3 % of its level
FALLING_SE_MULT = 0.0       # ... (no extra noise allowance: the fit found none helps)
LEVEL_FLOOR = 0.10          # levels are compared relative to (level + 10 % of the start loss)
FLUCT_FLOOR = 0.30          # fluctuations relative to (level + 30 % of the start loss): what a plot shows

# The thresholds ``fit_thresholds`` fits on the labelled real curves (tests/data/curves/labelled.json);
# ``diagnose(..., thresholds={...})`` overrides any of them.
THRESHOLDS: dict[str, float] = {
    "noise_unstable": NOISE_UNSTABLE,
    "flat_drop": FLAT_DROP,
    "val_rise_min": VAL_RISE_MIN,
    "recent_share_plateau": RECENT_SHARE_PLATEAU,
    "recent_rel_plateau": RECENT_REL_PLATEAU,
    "falling_se_mult": FALLING_SE_MULT,
    "rebound_min": REBOUND_MIN,
    "val_noise_mult": VAL_NOISE_MULT,
}
