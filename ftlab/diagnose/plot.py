"""Plotting a diagnosed curve (notebook 05)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ftlab.diagnose.measure import _int_step
from ftlab.diagnose.read import as_history
from ftlab.diagnose.rules import NO_VALIDATION_WARNING
from ftlab.diagnose.verdict import Diagnosis, _analyse, diagnose

__all__ = ["plot_diagnosis"]

# --------------------------------------------------------------------------------------------
# Plotting (notebook 05)
# --------------------------------------------------------------------------------------------

_COLORS = {"healthy": "tab:green", "plateau": "tab:olive", "overfitting": "tab:red", "flat": "tab:gray",
           "unstable": "tab:purple"}


def plot_diagnosis(history: Any, diagnosis: Diagnosis | None = None, ax=None, *, title: str | None = None):
    """Plot train and validation loss with the diagnosis written on the curve; returns the axes.

    Raw training loss is drawn thin, its robust trend thick, validation loss dashed with markers.
    Spikes are marked, the best checkpoint of an overfitting run gets a vertical line, and the
    pattern, its action and any warning are written on the plot.

    Example: ``plot_diagnosis("outputs/trainer_state.json")`` diagnoses and plots in one call.
    """
    import matplotlib.pyplot as plt

    history = as_history(history)
    if diagnosis is None or diagnosis._analysis is None or diagnosis._analysis.history is not history:
        diagnosis = diagnose(history) if diagnosis is None else Diagnosis(
            diagnosis.pattern, diagnosis.action, diagnosis.evidence, diagnosis.best_step, diagnosis.warnings,
            _analyse(history))
    a = diagnosis._analysis
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 4))
    color = _COLORS.get(diagnosis.pattern, "black")
    if len(a.y):
        ax.plot(a.x, a.y, color="tab:blue", alpha=0.45, lw=0.8, label="train loss")
        ax.plot(a.x, a.s, color="tab:blue", lw=2, label="train (smoothed)")
        if a.spikes.any():
            ax.plot(a.x[a.spikes], a.y[a.spikes], "x", color="tab:purple", ms=7, label="spikes")
    if len(a.yv):
        ax.plot(a.xv, a.yv, "o", color="tab:orange", ms=3.5, alpha=0.6)
        ax.plot(a.xv, a.sv, "--", color="tab:orange", lw=2, label="validation loss")
    if diagnosis.best_step is not None:
        ax.axvline(diagnosis.best_step, color="tab:red", ls=":", lw=1.5)
        ax.annotate(f"best checkpoint: step {diagnosis.best_step}", xy=(diagnosis.best_step, a.evidence["val_min"]),
                    xytext=(8, 18), textcoords="offset points", color="tab:red", fontsize=9,
                    arrowprops={"arrowstyle": "->", "color": "tab:red"})
    bad = ~np.isfinite(a.history.train_loss)
    if bad.any() and bad[-1]:  # diverged: mark where the loss stopped being a number
        first = a.history.train_steps[len(bad) - int(np.argmin(bad[::-1])) if not bad.all() else 0]
        ax.axvline(first, color="tab:purple", ls="--", lw=1.5)
        ax.annotate(f"NaN from step {_int_step(first)}", xy=(first, 0.5), xycoords=("data", "axes fraction"),
                    xytext=(-6, 0), textcoords="offset points", ha="right", color="tab:purple", fontsize=9)
    if len(a.x) and diagnosis.pattern == "plateau":
        ax.axvspan(a.x[-1] - (a.x[-1] - a.x[0]) / 3, a.x[-1], color=color, alpha=0.08)
    text = f"{diagnosis.pattern}: {diagnosis.meaning}\n→ {diagnosis.action}"
    if any(w == NO_VALIDATION_WARNING for w in diagnosis.warnings):
        text += "\n⚠ no validation data: cannot detect overfitting"
    ax.text(0.98, 0.97, text, transform=ax.transAxes, ha="right", va="top", fontsize=9,
            bbox={"boxstyle": "round", "facecolor": "white", "edgecolor": color, "alpha": 0.9})
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_title(title if title is not None else f"{diagnosis.pattern} — {diagnosis.shows}", color=color)
    ax.legend(loc="lower left", fontsize=8)
    return ax
