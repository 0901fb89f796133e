"""Plotting a diagnosed curve (notebook 05)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ftlab.diagnose.measure import _int_step
from ftlab.diagnose.read import as_history
from ftlab.diagnose.rules import NO_VALIDATION_WARNING
from ftlab.diagnose.verdict import Diagnosis, _analyse, diagnose
from ftlab.show import loss_plot

__all__ = ["plot_diagnoses", "plot_diagnosis"]

# --------------------------------------------------------------------------------------------
# Plotting (notebook 05)
# --------------------------------------------------------------------------------------------

_COLORS = {"healthy": "tab:green", "plateau": "tab:olive", "overfitting": "tab:red", "flat": "tab:gray",
           "unstable": "tab:purple"}


def plot_diagnosis(history: Any, diagnosis: Diagnosis | None = None, ax=None, *, title: str | None = None):
    """Plot train and validation loss with the diagnosis written on the curve; returns the axes.

    The curves are ``ftlab.show.loss_plot``'s, with the diagnosis's robust trend: raw training loss thin, its
    trend thick, validation loss dashed over its points.
    Spikes are marked, the best checkpoint of an overfitting run gets a vertical line, and the
    pattern, its action and any warning are written on the plot.

    Example: ``plot_diagnosis("outputs/trainer_state.json")`` diagnoses and plots in one call.
    """
    history = as_history(history)
    if diagnosis is None or diagnosis._analysis is None or diagnosis._analysis.history is not history:
        diagnosis = diagnose(history) if diagnosis is None else Diagnosis(
            diagnosis.pattern, diagnosis.action, diagnosis.evidence, diagnosis.best_step, diagnosis.warnings,
            _analyse(history))
    a = diagnosis._analysis
    color = _COLORS.get(diagnosis.pattern, "black")
    spikes = {"spikes": list(zip(a.x[a.spikes], a.y[a.spikes], strict=True))} if len(a.y) and a.spikes.any() else None
    ax = loss_plot((list(zip(a.x, a.y, strict=True)), list(zip(a.xv, a.yv, strict=True))), ax=ax, figsize=(7, 4),
                   trend=(list(zip(a.x, a.s, strict=True)), list(zip(a.xv, a.sv, strict=True))), markers=spikes,
                   best_step=diagnosis.best_step)
    if diagnosis.best_step is not None:
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
    ax.set_title(title if title is not None else f"{diagnosis.pattern} — {diagnosis.shows}", color=color)
    ax.legend(loc="lower left", fontsize=8)
    return ax


def plot_diagnoses(panels: Sequence[tuple[Any, Diagnosis | None, str]], *, ncols: int = 3,
                   panel_size: tuple[float, float] = (5, 4)) -> Any:
    """Several diagnosed curves side by side, each panel ``(history, diagnosis, title)`` drawn by
    ``plot_diagnosis``, ``ncols`` a row; axes left over are hidden. Returns the figure.

    Example: ``plot_diagnoses([(run.trainer_state, diagnose(run.trainer_state), "flat") for run in runs])``.
    """
    import matplotlib.pyplot as plt

    nrows = max(1, -(-len(panels) // ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(panel_size[0] * ncols, panel_size[1] * nrows), squeeze=False)
    for ax, (history, diagnosis, title) in zip(axes.flat, panels, strict=False):
        plot_diagnosis(history, diagnosis, ax=ax, title=title)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    fig.tight_layout()
    return fig
