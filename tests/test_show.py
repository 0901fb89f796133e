"""ftlab.show: the one table renderer (HTML in Jupyter, aligned text under papermill) and the one loss plot."""

from __future__ import annotations

import pytest

from ftlab import show


def test_table_renders_html_and_text_from_the_same_cells():
    t = show.table([{"model": "gpt-4.1", "usd": 13.5, "note": "<b>x</b>"}, {"model": "o4-mini", "usd": None}],
                   {"model": "model", "usd": "training USD"}, caption="4.5M tokens", css_class="ftlab-t")
    html = t._repr_html_()
    assert "<table class='ftlab-t'>" in html and "<th>training USD</th>" in html
    assert html.count("<tr>") == 3 and "<td>—</td>" in html  # None reads as unknown, not 0 or empty
    assert str(t).splitlines() == ["4.5M tokens",
                                   "| model   | training USD |",
                                   "|---------|--------------|",
                                   "| gpt-4.1 | 13.5         |",
                                   "| o4-mini | —            |"]


def test_table_escapes_text_and_keeps_marked_markup():
    t = show.table([["<script>", show.Html("<b>no</b> &amp; more")]], ["a", "b"])
    assert "&lt;script&gt;" in t.to_html() and "<b>no</b> &amp; more" in t.to_html()
    assert "| <script> | no & more |" in str(t)  # the text form strips the tags, unescapes the entities


def test_table_markdown_and_jupyter_text_form():
    from IPython.lib.pretty import pretty

    t = show.table([{"entry": "x", "cost_usd": None}])
    assert t.to_markdown() == "| entry | cost_usd |\n|---|---|\n| x | — |"
    assert pretty(t) == str(t)  # what a papermill run stores as text/plain


def test_right_aligned_columns():
    t = show.table([("a", "$3.00"), ("bb", "$13.50")], ["entry", "cost"], right=["cost"])
    assert str(t).splitlines()[2:] == ["| a     |  $3.00 |", "| bb    | $13.50 |"]
    assert "<td style='text-align:right'>$13.50</td>" in t.to_html() and "<td>bb</td>" in t.to_html()
    with pytest.raises(ValueError, match="right names 'usd', not a column; columns: entry, cost"):
        show.table([("a", 1)], ["entry", "cost"], right=["usd"])


def test_table_bad_rows_fail_in_one_line():
    with pytest.raises(ValueError, match="row 1 has 1 cells for 2 columns"):
        show.table([[1, 2], [3]], ["a", "b"])
    with pytest.raises(ValueError, match="rows without names need `columns`"):
        show.table([[1, 2]])


def test_loss_curves_read_every_history_ftlab_makes():
    pairs = {"train_loss": [[1, 2.0], [2, 1.0]], "eval_loss": [[2, 1.5]]}
    assert show.loss_curves(pairs) == ([(1.0, 2.0), (2.0, 1.0)], [(2.0, 1.5)])
    rows = [{"step": 1, "train_loss": 2.0, "valid_loss": None}, {"step": 2, "train_loss": 1.0, "valid_loss": 1.5}]
    assert show.loss_curves(rows) == ([(1.0, 2.0), (2.0, 1.0)], [(2.0, 1.5)])

    class History:  # the shape of ftlab.diagnose.LossHistory
        train_steps, train_loss, val_steps, val_loss = [1, 2], [2.0, 1.0], [2], [1.5]

    assert show.loss_curves(History()) == ([(1.0, 2.0), (2.0, 1.0)], [(2.0, 1.5)])
    assert show.loss_curves({"eval_loss": [[2, 1.5]]}) == ([], [(2.0, 1.5)])  # validation only
    with pytest.raises(ValueError, match="no loss history in dict"):
        show.loss_curves({"accuracy": 0.9})


def test_loss_plot_draws_one_or_several_runs():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    run = {"train_loss": [[1, 2.0], [2, 1.0]], "eval_loss": [[2, 1.5]]}
    ax = show.loss_plot(run, title="one", best_step=2)
    assert [ln.get_label() for ln in ax.get_lines()] == ["train", "validation", "best checkpoint (step 2)"]
    assert ax.get_title() == "one" and list(ax.get_lines()[0].get_ydata()) == [2.0, 1.0]
    ax = show.loss_plot({"1 process": run, "2 processes": run})
    assert [ln.get_label() for ln in ax.get_lines()] == ["train, 1 process", "validation, 1 process",
                                                         "train, 2 processes", "validation, 2 processes"]
    plt.close("all")


def test_loss_plot_draws_a_trend_and_markers_for_one_run():
    """plot_diagnosis's look, through loss_plot: raw curves thin and pale, the trend thick, spikes as crosses."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    raw = ([(1, 2.0), (2, 3.0), (3, 1.0)], [(3, 1.5)])
    ax = show.loss_plot(raw, trend=([(1, 2.1), (2, 1.9), (3, 1.2)], [(3, 1.4)]), markers={"spikes": [(2, 3.0)]})
    lines = {ln.get_label(): ln for ln in ax.get_lines()}
    assert set(lines) >= {"train loss", "train (smoothed)", "validation loss", "spikes"}
    assert lines["train loss"].get_linewidth() < lines["train (smoothed)"].get_linewidth()
    assert list(lines["train (smoothed)"].get_ydata()) == [2.1, 1.9, 1.2]
    assert list(lines["spikes"].get_xdata()) == [2.0] and lines["spikes"].get_marker() == "x"
    with pytest.raises(ValueError, match="one run"):
        show.loss_plot({"a": raw, "b": raw}, trend=raw)
    plt.close("all")
