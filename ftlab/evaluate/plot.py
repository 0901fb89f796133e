"""Plotting comparisons (notebook 07)."""

from __future__ import annotations

from ftlab.evaluate.verdict import FOUR_WAY, REGRESSION_THRESHOLD, Comparison

__all__ = ["plot_comparison", "plot_four_way"]


# ---------------------------------------------------------------------------------------------
# Charts
# ---------------------------------------------------------------------------------------------
def plot_comparison(comparisons: dict[str, Comparison], ax=None):
    """Grouped bars: baseline and each fine-tuned model on the three categories. Returns the axes."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(8, 3.6))
    cats = ["target_accuracy", "general_accuracy", "refusal_rate"]
    first = next(iter(comparisons.values()))
    series = {"baseline (few-shot / before)": first.base.summary()}
    series.update({f"fine-tuned ({name})": c.tuned.summary() for name, c in comparisons.items()})
    width = 0.8 / len(series)
    for i, (name, vals) in enumerate(series.items()):
        xs = [j + (i - (len(series) - 1) / 2) * width for j in range(len(cats))]
        bars = ax.bar(xs, [vals[c] for c in cats], width, label=name)
        ax.bar_label(bars, fmt="%.2f", fontsize=8)
    ax.set_xticks(range(len(cats)), ["target task\n(category 1)", "general skills\n(category 2)",
                                     "refusals\n(category 3)"])
    ax.set(ylim=(0, 1.15), ylabel="share of held-out examples")
    ax.legend(fontsize=8, loc="upper center", ncols=len(series))
    return ax


def plot_four_way(comparisons: dict[str, Comparison], ax=None):
    """Bars of the four-way breakdown for each fine-tuned model, the 5 % line on ``base_only_correct``."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(8, 3.2))
    width = 0.8 / len(comparisons)
    for i, (name, c) in enumerate(comparisons.items()):
        xs = [j + (i - (len(comparisons) - 1) / 2) * width for j in range(len(FOUR_WAY))]
        bars = ax.bar(xs, [c.four.fractions[k] for k in FOUR_WAY], width, label=f"fine-tuned ({name})",
                      color=f"C{i + 1}")  # the colours of plot_comparison (C0 is the baseline)
        ax.bar_label(bars, fmt="%.2f", fontsize=8)
    j = FOUR_WAY.index("base_only_correct")
    ax.hlines(REGRESSION_THRESHOLD, j - 0.45, j + 0.45, color="red", lw=1, ls="--",
              label="base_only_correct: investigate above 5 %")
    ax.set_xticks(range(len(FOUR_WAY)), list(FOUR_WAY))
    ax.set(ylim=(0, 1.1), ylabel="share of the test set")
    ax.legend(fontsize=8)
    return ax
