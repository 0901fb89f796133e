"""The lab's two figures: the verdicts as bars, and the overfitting run's loss curves (``ftlab.show.loss_plot``)."""

from __future__ import annotations

from typing import Any

from ftlab.failures.verdict import ModeResult
from ftlab.show import loss_plot
from ftlab.train import TrainResult

__all__ = ["plot_overfitting", "plot_verdicts"]


def plot_verdicts(verdicts: dict[str, ModeResult]) -> Any:
    """One small bar chart per mode: the metric before, after the failure, after the defence."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(verdicts), figsize=(3.0 * len(verdicts), 3.0))
    colors = ["#8c8c8c", "#d62728", "#2ca02c"]
    for ax, (mode, v) in zip(axes, verdicts.items(), strict=True):
        m = v.metric
        vals = [m["before"], m["after_failure"], m["after_defence"]]
        ax.bar(["before", "failure", "defence"], vals, color=colors)
        ax.set_title(mode.replace("_", " "), fontsize=9)
        ax.set_ylabel(m["name"].replace("_", " "), fontsize=8)
        ax.tick_params(labelsize=8)
        for i, val in enumerate(vals):
            ax.text(i, val, f"{val:.2f}", ha="center", va="bottom", fontsize=7)
    fig.tight_layout()
    return fig


def plot_overfitting(failure: TrainResult, defence: TrainResult) -> Any:
    """Training and validation loss of the overfitting run and of the defended run on one axes
    (``ftlab.show.loss_plot``), with a dotted line at the overfitting run's best validation loss."""
    best_step = min(failure.eval_loss, key=lambda x: x[1])[0]
    ax = loss_plot({"8 examples, many epochs": failure, "defended (mixed)": defence}, best_step=best_step,
                   title="Overfitting: validation loss turns up while training loss falls", figsize=(7, 3.2))
    ax.set_ylim(0, 4)
    ax.legend(fontsize=7)
    ax.figure.tight_layout()
    return ax.figure
