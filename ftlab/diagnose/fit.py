"""Fitting ``THRESHOLDS`` on labelled curves (tests/data/curves/labelled.json)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ftlab.diagnose.read import as_history
from ftlab.diagnose.rules import THRESHOLDS
from ftlab.diagnose.verdict import _analyse, _decide
from ftlab.errors import FtlabError

__all__ = ["FIT_GRID", "decide_pattern", "fit_thresholds", "measures"]

# --------------------------------------------------------------------------------------------
# Fitting the thresholds on labelled curves (tests/data/curves/labelled.json)
# --------------------------------------------------------------------------------------------

FIT_GRID: dict[str, tuple[float, ...]] = {
    "noise_unstable": (0.06, 0.08, 0.09, 0.10, 0.12),
    "flat_drop": (0.08, 0.10),
    "val_rise_min": (0.03, 0.05),
    "recent_share_plateau": (0.0, 0.02, 0.05),
    "recent_rel_plateau": (0.01, 0.015, 0.02, 0.03, 0.04),
    "falling_se_mult": (0.0, 1.0, 2.0, 3.0),
    "rebound_min": (0.25, 0.30, 0.40),
    "val_noise_mult": (0.25, 0.5, 1.0),
}


def measures(source: Any) -> dict[str, Any]:
    """What the decision reads, measured once (none of it depends on ``THRESHOLDS``); ``{}`` for a diverged log."""
    return _analyse(as_history(source)).measures


def decide_pattern(m: Mapping[str, Any], thresholds: Mapping[str, float] | None = None) -> str:
    """The pattern for ``measures(...)`` under ``thresholds`` (default ``THRESHOLDS``): fast, for fitting."""
    if not m:
        return "unstable"
    return _decide(m, {**THRESHOLDS, **(thresholds or {})})[0]


def fit_thresholds(curves: Sequence[tuple[Any, str]], grid: Mapping[str, Sequence[float]] | None = None
                   ) -> tuple[dict[str, float], float]:
    """Grid-search ``THRESHOLDS`` for the most labelled curves right: ``(thresholds, accuracy)``.

    ``curves`` are ``(history, label)`` pairs. Among equally good settings the one nearest the
    grid's middle wins (ties broken in grid order), so the result does not depend on the current values.
    """
    import itertools

    grid = dict(grid or FIT_GRID)
    ms = [(measures(h), label) for h, label in curves]
    if not ms:
        raise FtlabError("fit_thresholds: no labelled curves")
    names = list(grid)
    best: tuple[float, float, dict[str, float]] | None = None
    for combo in itertools.product(*(range(len(grid[k])) for k in names)):
        th = {k: float(grid[k][i]) for k, i in zip(names, combo, strict=True)}
        acc = sum(decide_pattern(m, th) == label for m, label in ms) / len(ms)
        off_centre = sum(abs(i - (len(grid[k]) - 1) / 2) / len(grid[k]) for k, i in zip(names, combo, strict=True))
        if best is None or (acc, -off_centre) > (best[0], best[1]):
            best = (acc, -off_centre, th)
    return best[2], best[0]
