"""How notebooks show things: one table renderer and one loss plot.

``table(rows, columns=...)`` returns a :class:`Table`: Jupyter renders it as HTML, and its text form
(``str(t)``, the ``text/plain`` output that a papermill run or a terminal shows) is an aligned table.
``loss_plot(history)`` draws training and validation loss for one run, or for several runs on one axes.

Example::

    >>> print(table([{"model": "gpt-4.1", "usd": 13.5}, {"model": "o4-mini", "usd": None}]))
    | model   | usd  |
    |---------|------|
    | gpt-4.1 | 13.5 |
    | o4-mini | —    |
"""

from __future__ import annotations

import html as _html
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Html", "Table", "loss_curves", "loss_plot", "table"]

MISSING = "—"  # how a missing value (None) reads in a table: unknown, not zero or empty


class Html(str):
    """A cell value that is markup already (``Html("<b>no</b>")``): the HTML form keeps it, the text form strips
    the tags. Every other cell value is escaped."""


def _text(value: Any) -> str:
    """A cell value as plain text."""
    if value is None:
        return MISSING
    if isinstance(value, Html):
        return _html.unescape(re.sub(r"<[^>]+>", "", re.sub(r"<br\s*/?>", "\n", value)))
    return str(value)


def _markup(value: Any) -> str:
    """A cell value as HTML."""
    return value if isinstance(value, Html) else _html.escape(_text(value))


@dataclass
class Table:
    """A table that renders as HTML in Jupyter and as aligned text everywhere else (see :func:`table`)."""

    columns: list[str]
    rows: list[list[Any]]
    caption: str = ""  # a line above the table (text; an ``Html`` value is kept as markup)
    note: str = ""  # a line below it, in small print
    css_class: str = ""  # the <table>'s class, for styling and browser tests
    row_attrs: list[str] = field(default_factory=list)  # per row, extra <tr> attributes (`` class='x'``)
    right: list[str] = field(default_factory=list)  # the headers of the columns aligned right (money, counts)

    def to_html(self) -> str:
        """The table as an HTML fragment."""
        cls = f" class='{_html.escape(self.css_class, quote=True)}'" if self.css_class else ""
        head = "".join(f"<th>{_html.escape(c)}</th>" for c in self.columns)
        attrs = self.row_attrs + [""] * (len(self.rows) - len(self.row_attrs))
        td = ["<td style='text-align:right'>" if c in self.right else "<td>" for c in self.columns]
        body = "".join(f"<tr{a}>" + "".join(f"{t}{_markup(v)}</td>" for t, v in zip(td, r, strict=True)) + "</tr>"
                       for r, a in zip(self.rows, attrs, strict=True))
        top = f"<p>{_markup(self.caption)}</p>" if self.caption else ""
        bottom = f"<p><small>{_markup(self.note)}</small></p>" if self.note else ""
        return f"{top}<table{cls}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>{bottom}"

    def to_text(self) -> str:
        """The table as aligned text, a Markdown pipe table with padded columns."""
        cells = [[_text(v) for v in r] for r in self.rows]
        widths = [max(len(x[i]) for x in [self.columns, *cells]) for i in range(len(self.columns))]
        side = [">" if c in self.right else "<" for c in self.columns]
        lines = ["| " + " | ".join(f"{v:{a}{w}}" for v, a, w in zip(r, side, widths, strict=True)) + " |"
                 for r in [self.columns, ["-" * w for w in widths], *cells]]
        lines[1] = lines[1].replace(" ", "-")
        return "\n".join(([_text(self.caption)] if self.caption else []) + lines
                         + ([_text(self.note)] if self.note else []))

    def to_markdown(self) -> str:
        """The table as a compact Markdown pipe table (no padding, no caption or note)."""
        head = "| " + " | ".join(self.columns) + " |\n|" + "---|" * len(self.columns)
        return "\n".join([head, *("| " + " | ".join(_text(v) for v in r) + " |" for r in self.rows)])

    def _repr_html_(self) -> str:
        return self.to_html()

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text(self.to_text())

    def __str__(self) -> str:
        return self.to_text()


def table(rows: Iterable[Mapping[str, Any] | Sequence[Any]], columns: Sequence[str] | Mapping[str, str] | None = None,
          *, caption: str = "", note: str = "", css_class: str = "", row_attrs: Sequence[str] = (),
          right: Sequence[str] = ()) -> Table:
    """A :class:`Table` of ``rows``: each row a mapping (its values picked by ``columns``) or a sequence of cells.

    ``columns``: the keys to show, in order (each key is its header), or a mapping key → header; ``None``: the
    first row's keys (for sequence rows, ``columns`` gives the headers). ``None`` values show as "—"; mark a
    value that is already markup with :class:`Html`; ``right`` names the headers of right-aligned columns.
    Example: ``table(rows, {"entry": "model", "cost_usd": "USD"}, right=["USD"])``.
    """
    rows = list(rows)
    if columns is None:
        if rows and not isinstance(rows[0], Mapping):
            raise ValueError("rows without names need `columns` (the headers)")
        columns = list(rows[0]) if rows else []
    keys = list(columns)
    headers = [columns[k] for k in keys] if isinstance(columns, Mapping) else [str(k) for k in keys]
    cells = [[r.get(k) for k in keys] if isinstance(r, Mapping) else list(r) for r in rows]
    bad = [i for i, r in enumerate(cells) if len(r) != len(headers)]
    if bad:
        raise ValueError(f"row {bad[0]} has {len(cells[bad[0]])} cells for {len(headers)} columns")
    unknown = [h for h in right if h not in headers]
    if unknown:
        raise ValueError(f"right names {unknown[0]!r}, not a column; columns: {', '.join(headers)}")
    return Table(headers, cells, caption, note, css_class, list(row_attrs), list(right))


Curve = list[tuple[float, float]]


def _pairs(steps: Iterable[Any], losses: Iterable[Any]) -> Curve:
    return [(float(s), float(v)) for s, v in zip(steps, losses, strict=True) if v is not None]


def _get(history: Any, *names: str) -> Any:
    for n in names:
        v = history.get(n) if isinstance(history, Mapping) else getattr(history, n, None)
        if v is not None:
            return v
    return None


def loss_curves(history: Any) -> tuple[Curve, Curve]:
    """``(train, validation)`` as lists of ``(step, loss)`` from any loss history ftlab makes.

    Accepted: ``train_loss``/``eval_loss`` as ``(step, loss)`` pairs (a ``TrainResult``, a run summary); a
    ``LossHistory`` (``train_steps``, ``train_loss``, ``val_steps``, ``val_loss``); a job's step-metrics rows
    (``[{"step", "train_loss", "valid_loss"}, ...]``); or the two curves as a pair of pair lists.
    """
    if isinstance(history, Sequence) and history and isinstance(history[0], Mapping):  # step-metrics rows
        steps = [r["step"] for r in history]
        return (_pairs(steps, [r.get("train_loss") for r in history]),
                _pairs(steps, [r.get("valid_loss") for r in history]))
    if isinstance(history, tuple) and len(history) == 2 and not hasattr(history, "_fields"):
        return [tuple(p) for p in history[0]], [tuple(p) for p in history[1]]
    train, valid = _get(history, "train_loss"), _get(history, "eval_loss", "valid_loss", "val_loss")
    if train is None and valid is None:
        raise ValueError(f"no loss history in {type(history).__name__}: expected train_loss and eval_loss")
    train, valid = (train if train is not None else []), (valid if valid is not None else [])
    steps = _get(history, "train_steps")
    train = _pairs(steps, train) if steps is not None else _pairs(*zip(*train, strict=True)) if len(train) else []
    vsteps = _get(history, "val_steps")
    valid = _pairs(vsteps, valid) if vsteps is not None else _pairs(*zip(*valid, strict=True)) if len(valid) else []
    return train, valid


def _is_history(obj: Any) -> bool:
    return isinstance(obj, tuple | list) or _get(obj, "train_loss", "eval_loss", "valid_loss") is not None


def loss_plot(history: Any, *, title: str = "", best_step: float | None = None, ax: Any = None,
              figsize: tuple[float, float] = (7, 3.5), trend: Any = None,
              markers: Mapping[str, Curve] | None = None) -> Any:
    """Training loss (lines) and validation loss (dashed, with markers) per step; returns the axes.

    ``history`` is one run (anything :func:`loss_curves` reads) or a mapping label → run, drawn on one axes:
    the first run wide and pale, the next ones thin and dotted, so that identical curves stay visible.
    ``best_step`` draws a dotted line at the best checkpoint. For one run, ``trend`` (its smoothed training and
    validation curves, anything :func:`loss_curves` reads) draws the raw curves thin and pale, the trend thick
    (labelled "train loss", "train (smoothed)", "validation loss");
    ``markers`` (label → ``(step, loss)`` points, e.g. spikes) marks points with crosses.
    Example: ``loss_plot(result, best_step=result.best_step)``; ``loss_plot({"1 process": a, "2 processes": b})``.
    """
    import matplotlib.pyplot as plt

    runs = {"": history} if _is_history(history) else dict(history)
    several = len(runs) > 1
    if several and trend is not None:
        raise ValueError("trend= draws the smoothed curves of one run: give one run, not several")
    if ax is None:
        _, ax = plt.subplots(figsize=figsize)
    for i, (label, run) in enumerate(runs.items()):
        train, valid = loss_curves(run)
        name = f", {label}" if label else ""
        look = ({"lw": 3, "alpha": 0.4, "ms": 9} if i == 0 else {"lw": 1.2, "ms": 6}) if several else {"lw": 1, "ms": 5}
        if trend is not None:
            _trend_plot(ax, train, valid, trend)
            continue
        if train:
            ax.plot(*zip(*train, strict=True), "-" if i == 0 else ":", lw=look["lw"], alpha=look.get("alpha", 1.0),
                    color=f"C{2 * i}" if several else "C0", label=f"train{name}")
        if valid:
            ax.plot(*zip(*valid, strict=True), "o--" if i == 0 else "x:", ms=look["ms"], alpha=look.get("alpha", 1.0),
                    color=f"C{2 * i + 1}" if several else "C1", label=f"validation{name}")
    for j, (label, points) in enumerate((markers or {}).items()):
        if points:
            ax.plot(*zip(*points, strict=True), "x", color=f"C{4 + j}", ms=7, label=label)
    if best_step is not None:
        ax.axvline(best_step, color="gray", lw=0.8, ls=":", label=f"best checkpoint (step {best_step:g})")
    ax.set(xlabel="step", ylabel="loss", title=title)
    ax.legend()
    return ax


def _trend_plot(ax: Any, train: Curve, valid: Curve, trend: Any) -> None:
    """One run's raw curves thin and pale (validation as points), its trend thick (validation dashed)."""
    train_trend, valid_trend = loss_curves(trend)
    if train:
        ax.plot(*zip(*train, strict=True), color="C0", alpha=0.45, lw=0.8, label="train loss")
    if train_trend:
        ax.plot(*zip(*train_trend, strict=True), color="C0", lw=2, label="train (smoothed)")
    if valid:
        ax.plot(*zip(*valid, strict=True), "o", color="C1", ms=3.5, alpha=0.6)
    if valid_trend:
        ax.plot(*zip(*valid_trend, strict=True), "--", color="C1", lw=2, label="validation loss")
