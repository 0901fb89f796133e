"""``ftlab sweep``: run one notebook over a grid of parameters and compare the runs side by side.

The articles' "compare multiple runs side by side", with the tools the kit already has: every grid
point is one papermill run (``ftlab.runner.execute_notebook``), and every run's recorded figures
(``ftlab.record``) become one row of a comparison table::

    ftlab sweep 04 -p learning_rate 1e-5,5e-3,0.5 -p epochs 0.5 --out runs/lr_sweep

writes into ``runs/lr_sweep/``:

- ``sweep.csv`` and ``sweep.md``: one row per run: the parameters, status, seconds, the scalar
  figures that differ between runs, and, when the notebook records ``train_loss_history`` (and
  ``eval_loss_history``), the loss-curve diagnosis of ``ftlab.diagnose`` (pattern and action);
  a run that failed shows its error instead and the sweep goes on;
- ``sweep.png``: the loss curves of all runs on one plot (or a figure against the first swept
  parameter when there are no loss histories);
- ``sweep.json``: everything above, and ``runs/NNN_*/``: each run's executed notebook and files
  (each run has its own working folder, so runs never share checkpoints).
"""

from __future__ import annotations

import csv
import itertools
import json
import math
import os
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ftlab.errors import FtlabError, ParameterError
from ftlab.params import reject_secrets
from ftlab.runner import NotebookResult, declared_parameters, execute_notebook, parse_value

__all__ = ["HISTORY_FIGURES", "MAX_POINTS", "Sweep", "SweepRun", "diagnose_figures", "grid_points",
           "parse_grid", "plot_sweep", "run_sweep", "write_table"]


HISTORY_FIGURES = ("train_loss_history", "eval_loss_history")
MAX_POINTS = 200


def parse_grid(specs: Sequence[tuple[str, str]]) -> dict[str, list[Any]]:
    """``[("learning_rate", "1e-5,5e-3"), ("epochs", "1")]`` -> ``{"learning_rate": [1e-05, 0.005], "epochs": [1]}``.

    Values are split on commas and read like ``ftlab run -p`` values (YAML: numbers, true/false, text).
    """
    grid: dict[str, list[Any]] = {}
    for name, raw in specs:
        if not re.fullmatch(r"[A-Za-z_]\w*", name):
            raise ParameterError(f"-p {name}: a parameter name is a Python identifier (e.g. learning_rate)")
        if name in grid:
            raise ParameterError(f"-p {name} is given twice; list all its values once: -p {name} V1,V2,...")
        if any(v.strip() == "" for v in str(raw).split(",")):
            raise ParameterError(f"-p {name} {raw!r}: an empty value; separate the values with single commas")
        values = [parse_value(v.strip()) for v in str(raw).split(",")]
        if any(a == b for i, a in enumerate(values) for b in values[i + 1:]):
            raise ParameterError(f"-p {name} {raw!r}: a value is repeated")
        grid[name] = values
    if not grid:
        raise ParameterError("give at least one -p NAME V1,V2,... to sweep over")
    return grid


def grid_points(grid: dict[str, list[Any]]) -> list[dict[str, Any]]:
    """Every combination, the last parameter varying fastest: ``{"a": [1, 2], "b": [3]}`` -> ``[{a:1,b:3}, {a:2,b:3}]``."""
    names = list(grid)
    return [dict(zip(names, combo, strict=True)) for combo in itertools.product(*(grid[n] for n in names))]


def _slug(index: int, point: dict[str, Any]) -> str:
    text = "_".join(f"{k}-{v}" for k, v in point.items())
    return f"{index:03d}_" + re.sub(r"[^\w.+-]+", "-", text)[:80]


@dataclass
class SweepRun:
    """One grid point: its parameters, the notebook result, and the diagnosis of its loss curves if any."""

    point: dict[str, Any]
    result: NotebookResult
    folder: Path
    diagnosis: dict[str, Any] | None = None

    @property
    def ok(self) -> bool:
        return self.result.status == "ok"

    @property
    def error(self) -> str:
        e = self.result.error or {}
        if not e:
            return ""
        where = f"cell {e['code_cell']}: " if e.get("code_cell") else ""
        return f"{where}{e.get('ename', '')}: {str(e.get('evalue', '')).strip().splitlines()[0] if e.get('evalue') else ''}"[:300]


@dataclass
class Sweep:
    """A finished sweep: the runs, the table's columns, and the files written."""

    notebook: str
    grid: dict[str, list[Any]]
    runs: list[SweepRun]
    out: Path
    columns: list[str] = field(default_factory=list)
    constant: dict[str, Any] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.runs)

    def rows(self) -> list[dict[str, Any]]:
        return [_row(r, self.grid, self.columns) for r in self.runs]


def _scalar(value: Any) -> bool:
    return value is None or isinstance(value, bool | int | float | str)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _history(pairs: Any) -> tuple[list[float], list[float]]:
    if not isinstance(pairs, list) or not all(isinstance(p, list | tuple) and len(p) == 2 for p in pairs):
        return [], []
    steps, losses = [], []
    for step, loss in pairs:
        try:
            steps.append(float(step))
            losses.append(float(loss))  # "nan" / "inf" recorded as text come back as floats
        except (TypeError, ValueError):
            continue
    return steps, losses


def diagnose_figures(figures: dict[str, Any]) -> dict[str, Any] | None:
    """The loss-curve diagnosis of a run that recorded ``train_loss_history`` (and ``eval_loss_history``).

    Uses ``ftlab.diagnose`` (notebook 05); ``None`` when the run recorded no loss history.
    A history the diagnoser cannot read gives ``{"pattern": "n/a", "action": <why>}``.
    """
    train = _history(figures.get("train_loss_history"))
    if not train[0]:
        return None
    try:
        from ftlab.diagnose import LossHistory, diagnose
    except ImportError:  # the diagnoser is not in this checkout
        return None
    val = _history(figures.get("eval_loss_history"))
    try:
        d = diagnose(LossHistory.from_arrays(train[0], train[1], val[0], val[1], source="sweep"))
    except FtlabError as exc:
        return {"pattern": "n/a", "action": str(exc)}
    return {"pattern": d.pattern, "action": d.action, "best_step": d.best_step}


def _choose_columns(runs: Sequence[SweepRun], wanted: Sequence[str] | None) -> tuple[list[str], dict[str, Any]]:
    """The figure columns: those asked for, else the scalar figures that differ between the ok runs."""
    ok = [r for r in runs if r.ok] or list(runs)
    seen: list[str] = []
    for r in runs:
        for k, v in r.result.figures.items():
            if k not in seen and _scalar(v) and k not in HISTORY_FIGURES:
                seen.append(k)
    if wanted:
        unknown = [w for w in wanted if w not in seen and all(w not in r.result.figures for r in runs)]
        if unknown and any(r.ok for r in runs):
            raise ParameterError(f"--figures {', '.join(unknown)}: not recorded by the notebook; recorded: {', '.join(seen)}")
        return list(wanted), {}
    columns, constant = [], {}
    for k in seen:
        values = [json.dumps(r.result.figures.get(k), sort_keys=True) for r in ok]
        if len(ok) > 1 and len(set(values)) == 1:
            constant[k] = ok[0].result.figures.get(k)
        else:
            columns.append(k)
    return columns, constant


def _fmt(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return str(value)
        return f"{value:.4g}"
    if isinstance(value, dict | list):
        return json.dumps(value)
    return str(value)


def _varying(grid: dict[str, list[Any]]) -> list[str]:
    """The swept names with more than one value (all names when none has)."""
    return [k for k, v in grid.items() if len(v) > 1] or list(grid)


def _row(run: SweepRun, grid: dict[str, list[Any]], columns: Sequence[str]) -> dict[str, Any]:
    row: dict[str, Any] = {k: run.point[k] for k in _varying(grid)}
    row["status"] = run.result.status
    row["seconds"] = round(run.result.seconds, 1)
    row["retried"] = run.result.retried
    if run.diagnosis is not None:
        row["diagnosis"] = run.diagnosis["pattern"]
        row["action"] = run.diagnosis["action"]
    for c in columns:
        row[c] = run.result.figures.get(c)
    row["error"] = run.error
    row["notebook"] = os.path.relpath(run.result.output, run.folder.parent.parent)
    return row


def _header(runs: Sequence[SweepRun], grid: dict[str, list[Any]], columns: Sequence[str]) -> list[str]:
    head = [*_varying(grid), "status", "seconds"]
    if any(r.diagnosis is not None for r in runs):
        head += ["diagnosis", "action"]
    return [*head, *columns, "error", "notebook"]


def write_table(sweep: Sweep) -> dict[str, str]:
    """Write ``sweep.csv``, ``sweep.md`` and ``sweep.json`` for a sweep; returns their paths."""
    rows = sweep.rows()
    head = _header(sweep.runs, sweep.grid, sweep.columns)
    csv_path, md_path, json_path = sweep.out / "sweep.csv", sweep.out / "sweep.md", sweep.out / "sweep.json"
    with csv_path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, head, extrasaction="ignore", lineterminator="\n")
        w.writeheader()
        for row in rows:
            w.writerow({k: _fmt(row.get(k)) for k in head})
    ok = sum(r.ok for r in sweep.runs)
    varying = _varying(sweep.grid)
    fixed = {k: v[0] for k, v in sweep.grid.items() if k not in varying}
    lines = [f"# Sweep of {sweep.notebook}", "",
             f"{len(sweep.runs)} runs ({ok} ok, {len(sweep.runs) - ok} failed) over "
             + ", ".join(f"`{k}` ∈ {{{', '.join(map(_fmt, sweep.grid[k]))}}}" for k in varying)
             + ("; the same in every run: " + ", ".join(f"`{k}` = {_fmt(v)}" for k, v in fixed.items()) if fixed else "")
             + ".", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows:
        cells = []
        for k in head:
            text = _fmt(row.get(k)).replace("|", "/").replace("\n", " ")
            if k == "status" and row.get("retried"):
                text += " (re-run)"  # its kernel stalled or died once: ftlab.runner re-ran it in a fresh kernel
            cells.append(f"[{Path(text).name}]({text})" if k == "notebook" and text else text)
        lines.append("| " + " | ".join(cells) + " |")
    if sweep.constant:
        lines += ["", "Figures that came out the same in every run: "
                  + ", ".join(f"`{k}` = {_fmt(v) if v is not None else 'None'}" for k, v in sweep.constant.items()
                              if len(_fmt(v)) <= 80) + "."]
    if (sweep.out / "sweep.png").exists():
        lines += ["", "![the runs side by side](sweep.png)"]
    md_path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    json_path.write_text(json.dumps({
        "notebook": sweep.notebook, "grid": sweep.grid, "ok": sweep.ok, "columns": sweep.columns,
        "constant": sweep.constant,
        "runs": [{**_row(r, sweep.grid, sweep.columns), "figures": r.result.figures, "error_detail": r.result.error,
                  "diagnosis_detail": r.diagnosis, **({"retry_reason": r.result.retry_reason} if r.result.retried else {})}
                 for r in sweep.runs],
    }, indent=2, default=str), encoding="utf-8")
    return {"csv": str(csv_path), "markdown": str(md_path), "json": str(json_path)}


def _label(point: dict[str, Any], names: Sequence[str] | None = None) -> str:
    return ", ".join(f"{k}={_fmt(v)}" for k, v in point.items() if names is None or k in names)


def plot_sweep(sweep: Sweep, metric: str | None = None):
    """The runs on one figure: loss curves if the notebook records them, else ``metric`` against the first parameter."""
    from matplotlib.figure import Figure  # no pyplot figure: works the same in a terminal and in a notebook

    from ftlab.show import loss_plot

    with_history = [r for r in sweep.runs if _history(r.result.figures.get("train_loss_history"))[0]]
    if with_history:
        fig = Figure(figsize=(8, 4.5))
        ax = fig.subplots()
        curves = {}
        for i, r in enumerate(with_history):
            label = _label(r.point, _varying(sweep.grid)) + (f" → {r.diagnosis['pattern']}" if r.diagnosis else "")
            curves[label if label not in curves else f"{label} ({i + 1})"] = tuple(
                list(zip(*_history(r.result.figures.get(k)), strict=True)) for k in ("train_loss_history", "eval_loss_history"))
        loss_plot(curves, ax=ax, title=f"Sweep of {sweep.notebook}")
        drawn = {line.get_label(): line.get_color() for line in ax.get_lines()}
        for label, (train, _) in curves.items():
            bad = next((s for s, v in train if not math.isfinite(v)), None)
            if bad is not None:  # a diverged run: mark where the loss became NaN/inf, in its training curve's colour
                color = drawn.get(f"train, {label}" if len(curves) > 1 else "train", "C0")
                ax.axvline(bad, color=color, ls=":", lw=1)
                ax.annotate("NaN", (bad, 1), xycoords=("data", "axes fraction"), color=color, ha="left", va="top",
                            fontsize=8)
        finite = [v for train, _ in curves.values() for _, v in train if math.isfinite(v)]
        if finite and max(finite) > 20 * min(finite) > 0:
            ax.set_yscale("log")
        ax.legend(fontsize=8)
        return fig
    first = _varying(sweep.grid)[0]
    metric = metric or next((c for c in sweep.columns if any(_is_number(r.result.figures.get(c)) for r in sweep.runs)), None)
    if metric is None:
        return None
    fig = Figure(figsize=(7, 4))
    ax = fig.subplots()
    xs = [r.point[first] for r in sweep.runs if _is_number(r.result.figures.get(metric))]
    ys = [r.result.figures[metric] for r in sweep.runs if _is_number(r.result.figures.get(metric))]
    numeric_x = all(_is_number(x) for x in xs)
    ax.plot(xs if numeric_x else [str(x) for x in xs], ys, "o-")
    if numeric_x and xs and min(xs) > 0 and max(xs) / min(xs) >= 100:
        ax.set_xscale("log")
    ax.set(xlabel=first, ylabel=metric, title=f"Sweep of {sweep.notebook}")
    return fig


def run_sweep(
    notebook: str | os.PathLike[str],
    grid: dict[str, list[Any]],
    *,
    out: str | os.PathLike[str] | None = None,
    figures: Sequence[str] | None = None,
    progress: bool = False,
    offline: bool = True,
    log: Callable[[str], Any] = print,
) -> Sweep:
    """Run ``notebook`` once per grid point (papermill) and write the comparison table and plot.

    A run that fails is recorded with its error; the sweep goes on. Raises ``ParameterError`` before
    running anything when a swept name is not a parameter of the notebook.
    """
    path = Path(notebook)
    if not path.is_file():
        raise FtlabError(f"notebook {notebook} not found")
    for values in grid.values():
        reject_secrets({str(i): v for i, v in enumerate(values)})
    declared = declared_parameters(path)
    unknown = [k for k in grid if k not in declared]
    if unknown:
        raise ParameterError(f"{path.name} has no parameter {', '.join(unknown)}; its parameters: {', '.join(declared)}")
    points = grid_points(grid)
    if len(points) > MAX_POINTS:
        raise ParameterError(f"{len(points)} grid points: at most {MAX_POINTS} per sweep; sweep fewer values")
    out_dir = Path(out) if out else Path("runs") / f"sweep-{path.stem}-{time.strftime('%Y%m%d-%H%M%S')}"
    out_dir.mkdir(parents=True, exist_ok=True)
    sweep = Sweep(path.name, grid, [], out_dir)
    for i, point in enumerate(points, 1):
        folder = out_dir / "runs" / _slug(i, point)
        folder.mkdir(parents=True, exist_ok=True)
        log(f"[{i}/{len(points)}] {path.name} with {_label(point)}")
        result = execute_notebook(path, folder / path.name, point, progress=progress, cwd=folder, offline=offline,
                                  log=log)
        run = SweepRun(point, result, folder, diagnose_figures(result.figures) if result.figures else None)
        sweep.runs.append(run)
        if run.ok:
            extra = f", diagnosis: {run.diagnosis['pattern']}" if run.diagnosis else ""
            log(f"      ok in {result.seconds:.1f} s{extra}")
        else:
            log(f"      FAILED ({run.error}); executed notebook: {result.output}; the sweep goes on")
        sweep.columns, sweep.constant = _choose_columns(sweep.runs, figures)
        sweep.files = write_table(sweep)  # a partial table survives an interrupted sweep
    fig = plot_sweep(sweep)
    if fig is not None:
        fig.savefig(out_dir / "sweep.png", dpi=110, bbox_inches="tight")
        sweep.files["plot"] = str(out_dir / "sweep.png")
    sweep.files.update(write_table(sweep))
    return sweep
