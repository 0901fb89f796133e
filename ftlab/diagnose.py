"""Loss-curve diagnosis: name the seeds' five training patterns from a loss log (notebook 05).

The seeds' monitoring table, with the later seed's wording::

    code         the curves show               what it means                            action
    healthy      Train ↓ · Val ↓ (parallel)    Healthy — model is learning              Continue training
    plateau      Train ↓ · Val flattens        Near-optimal, diminishing returns        Reduce LR or stop soon
    overfitting  Train ↓ · Val ↑ (diverges)    Overfitting — memorizing training data   Stop now; reduce epochs; ...
    flat         Train barely moves from start LR too low or data format issue          Raise LR 5-10×; ...
    unstable     Train spiky throughout        LR too high or batch too small           Halve LR; ...

``diagnose`` reads any of three loss logs, a Hugging Face ``trainer_state.json`` (or the
checkpoint/output folder that holds one), an OpenAI fine-tuning step-metrics CSV, or a plain
``step,train_loss,valid_loss`` CSV, and names the pattern with its evidence::

    >>> d = diagnose("outputs/checkpoint-300")                  # doctest: +SKIP
    >>> d.pattern, d.best_step
    ('overfitting', 120)
    >>> d.action
    'Stop now; reduce epochs; add more diverse data'

How it decides (every measure is relative, so it does not depend on the loss scale, the run
length or the eval interval):

1. The training loss is smoothed with a running median whose window grows with the number of
   logged points (about a twelfth of them), so single bad batches do not move the trend; at the
   ends a robust straight line (Theil–Sen) takes over.
2. ``noise`` is the typical step-to-step fluctuation: how far a typical logged loss sits from the
   median of the five around it (``local_noise``; a smooth fall of any speed and bend gives 0),
   relative to the loss level floored at 30 % of the first logged losses, so that it measures what a
   plot of the run shows and a loss near zero does not magnify tiny wiggles. A ``spike`` is a point
   far above the trend; ``rebound`` is how far the smoothed loss climbs back above its best so far;
   ``overshoot`` how far it climbs above where it started.
3. **unstable** when the training (or validation) loss ends in NaN/inf (for a Hugging Face log,
   also a NaN/inf gradient norm), the noise exceeds ``noise_unstable``, repeated spikes, a
   ``rebound_min`` rebound or a 25 % overshoot. **flat** when the loss fell by less than
   ``flat_drop`` of its start. Otherwise the validation loss decides:
4. **overfitting** when it rose from its lowest evaluation and stayed up: the lower of the last two
   evaluations (smoothed when they are noisy) is above the lowest by ``val_rise_min`` and by more
   than the noise of the evaluations allows (the lowest of m noisy values is low by chance); one
   bumped evaluation is not a rise. ``best_step`` is the lowest evaluation, the checkpoint to keep.
   **healthy** while it still falls at a useful rate, however much slower than at the start: over
   the last third of the run's steps the best evaluation so far improved by at least
   ``recent_rel_plateau`` of its level (noisy per-batch evaluations: a robust line through the last
   third, clear of the noise); **plateau** otherwise. Validation losses are compared relative to
   themselves (a fine-tune's validation loss does not approach 0), with no floor. Without validation data the
   training curve stands in, with a warning: you cannot detect overfitting without it.

The thresholds (``THRESHOLDS``) are fitted (``fit_thresholds``) on one half of a labelled set of
real curves, ``tests/data/curves/labelled.json``: toy fine-tunes at many learning rates, batch
sizes, lengths and eval intervals, and OpenAI-format step-metrics CSVs from the sandbox, each cut
at several points and labelled by a written rule (``tests/data/curves/make_labelled_set.py``).
The other half, other runs, scores them: ``tests/test_diagnose.py`` asserts it.
"""

from __future__ import annotations

import base64
import binascii
import csv
import io
import json
import math
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ftlab.errors import FtlabError

__all__ = ["EXPECTED", "FALLING_SE_MULT", "FIT_GRID", "FLAT_DROP", "FLAT_LR_FACTOR", "FLUCT_FLOOR", "LEVEL_FLOOR",
           "MIN_TRAIN_POINTS", "NOISE_UNSTABLE", "NO_VALIDATION_WARNING", "OVERSHOOT_MIN", "PATTERNS", "REBOUND_MIN",
           "RECENT_REL_PLATEAU", "RECENT_SHARE_PLATEAU", "SPIKE_MIN", "SPIKE_NOISE_MULT", "THRESHOLDS", "VAL_EXACT",
           "VAL_NOISE_MULT", "VAL_RISE_MIN", "Diagnosis", "LossHistory", "Pattern", "apply_action", "as_history",
           "decide", "diagnose", "find_trainer_state", "fit_thresholds", "history_from_log", "load_history",
           "local_noise", "measures", "noise_level", "pattern_runs", "plot_diagnosis", "read_metrics_csv",
           "read_trainer_state", "smooth", "theil_sen", "train_for_pattern", "window_for"]

# --------------------------------------------------------------------------------------------
# The seeds' table (seed 001 wording; seed 000 says the same in longer words)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Pattern:
    """One row of the seeds' loss-curve table."""

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

_FORMAT_NAMES = {"hf": "Hugging Face trainer state", "openai": "OpenAI step metrics", "plain": "plain CSV"}
EXPECTED = ("expected one of: a Hugging Face trainer_state.json (or a checkpoint/output folder holding one), "
            "an OpenAI step-metrics CSV (step,train_loss,...,valid_loss,...), or a plain CSV step,train_loss,valid_loss")

MIN_TRAIN_POINTS = 5
_BASE64 = re.compile(r"[A-Za-z0-9+/]+={0,2}")

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


# --------------------------------------------------------------------------------------------
# Loss histories and reading the three formats
# --------------------------------------------------------------------------------------------


@dataclass
class LossHistory:
    """Training and validation loss by step, as read from a log (NaN/inf kept, missing values left out).

    Example: ``LossHistory.from_arrays([1, 2, 3, 4, 5], [2.0, 1.6, 1.3, 1.1, 1.0], [5], [1.2])``.
    """

    train_steps: np.ndarray
    train_loss: np.ndarray
    val_steps: np.ndarray
    val_loss: np.ndarray
    source: str = ""
    format: str = ""
    notes: list[str] = field(default_factory=list)

    @classmethod
    def from_arrays(cls, train_steps: Sequence[float], train_loss: Sequence[float],
                    val_steps: Sequence[float] = (), val_loss: Sequence[float] = (), *,
                    source: str = "", format: str = "arrays") -> LossHistory:
        ts, tl = _as_series(train_steps, train_loss, "train")
        vs, vl = _as_series(val_steps, val_loss, "validation")
        return cls(ts, tl, vs, vl, source=source, format=format)

    @property
    def has_validation(self) -> bool:
        return bool(np.isfinite(self.val_loss).sum())

    def describe(self) -> str:
        """One line: where the history came from, its format and how many points it has."""
        kind = _FORMAT_NAMES.get(self.format, self.format or "loss history")
        return f"{self.source or '<memory>'} ({kind}, {len(self.train_loss)} train / {len(self.val_loss)} validation points)"


def _as_series(steps: Sequence[float], values: Sequence[float], what: str) -> tuple[np.ndarray, np.ndarray]:
    s = np.asarray(list(steps), dtype=float)
    v = np.asarray([np.nan if x is None else x for x in values], dtype=float)
    if s.shape != v.shape:
        raise FtlabError(f"{what} steps and losses differ in length ({len(s)} vs {len(v)})")
    if len(s) and not np.isfinite(s).all():
        raise FtlabError(f"{what} steps must be finite numbers")
    order = np.argsort(s, kind="stable")
    s, v = s[order], v[order]
    if len(s):  # a repeated step (a resumed run logs it again): keep the last value logged
        keep = np.append(s[1:] != s[:-1], True)
        s, v = s[keep], v[keep]
    return s, v


def _number(value: Any, where: str) -> float | None:
    """A loss value from a log: None for missing, float (NaN/inf allowed) otherwise."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise FtlabError(f"{where}: expected a number, got {value!r}")
    if isinstance(value, int | float):
        return float(value)
    text = str(value).strip()
    if text == "" or text.lower() in {"none", "null", "na", "n/a"}:
        return None
    try:
        return float(text)
    except ValueError:
        raise FtlabError(f"{where}: {text[:40]!r} is not a number") from None


def history_from_log(log_history: Sequence[Mapping[str, Any]], *, source: str = "") -> LossHistory:
    """Turn a Hugging Face ``trainer.state.log_history`` into a ``LossHistory``.

    Training entries carry ``loss``, evaluations ``eval_loss`` (or ``eval_<name>_loss`` when the
    eval set is a dict; the first name is used). The final summary entry (``train_loss``) is skipped.

    Example: ``history_from_log([{"loss": 2.0, "step": 1}, {"eval_loss": 1.9, "step": 1}])``.
    """
    where = source or "log_history"
    if not isinstance(log_history, Sequence) or isinstance(log_history, str | bytes):
        raise FtlabError(f"{where}: 'log_history' must be a list of log entries; {EXPECTED}")
    eval_key = "eval_loss"
    if not any(isinstance(e, Mapping) and "eval_loss" in e for e in log_history):
        named = sorted({k for e in log_history if isinstance(e, Mapping) for k in e
                        if k.startswith("eval_") and k.endswith("_loss")})
        if named:
            eval_key = named[0]
    ts, tl, vs, vl = [], [], [], []
    bad_grad = 0
    for i, entry in enumerate(log_history):
        if not isinstance(entry, Mapping):
            raise FtlabError(f"{where}: log_history[{i}] is {type(entry).__name__}, expected an object; {EXPECTED}")
        if "loss" not in entry and eval_key not in entry:
            continue
        step = _number(entry.get("step"), f"{where}: log_history[{i}].step")
        if step is None:
            raise FtlabError(f"{where}: log_history[{i}] has a loss but no 'step'")
        if "loss" in entry:
            loss = _number(entry["loss"], f"{where}: log_history[{i}].loss")
            grad = entry.get("grad_norm")
            if loss is not None and isinstance(grad, int | float) and not math.isfinite(grad):
                # the gradient is NaN/inf, so the loss is too: the Trainer's logging_nan_inf_filter
                # (on by default) logs a stand-in such as 0.0 instead
                loss, bad_grad = math.nan, bad_grad + 1
            if loss is not None:
                ts.append(step)
                tl.append(loss)
        if eval_key in entry:
            loss = _number(entry[eval_key], f"{where}: log_history[{i}].{eval_key}")
            if loss is not None:
                vs.append(step)
                vl.append(loss)
    history = LossHistory.from_arrays(ts, tl, vs, vl, source=source, format="hf")
    if bad_grad:
        history.notes.append(f"{bad_grad} logged steps have a NaN/inf gradient norm: their loss counts as NaN")
    if eval_key != "eval_loss":
        history.notes.append(f"validation loss read from '{eval_key}'")
    return history


def read_trainer_state(path: str | os.PathLike[str]) -> LossHistory:
    """Read a Hugging Face ``trainer_state.json``."""
    path = Path(path)
    text = _read_text(path)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise FtlabError(f"{path}: not valid JSON (line {exc.lineno}: {exc.msg}); {EXPECTED}") from None
    if isinstance(data, list):  # a bare log_history list
        return history_from_log(data, source=str(path))
    if not isinstance(data, dict) or "log_history" not in data:
        raise FtlabError(f"{path}: JSON without a 'log_history' list, so not a Hugging Face trainer_state.json; {EXPECTED}")
    return history_from_log(data["log_history"], source=str(path))


_TRAIN_COLUMNS = ("train_loss", "loss", "training_loss")
_VAL_COLUMNS = ("valid_loss", "val_loss", "validation_loss", "eval_loss", "full_valid_loss")


def read_metrics_csv(path: str | os.PathLike[str], text: str | None = None) -> LossHistory:
    """Read an OpenAI step-metrics CSV or a plain ``step,train_loss,valid_loss`` CSV.

    Empty cells are missing values (OpenAI fills ``valid_loss`` only on evaluation rows);
    ``nan``/``inf`` are kept as non-finite losses. OpenAI's ``full_valid_loss`` is used only
    when ``valid_loss`` has no values.
    """
    path = Path(path)
    if text is None:
        text = _read_text(path)
    rows = list(csv.reader(io.StringIO(text)))
    while rows and not any(c.strip() for c in rows[0]):
        rows.pop(0)
    if not rows:
        raise FtlabError(f"{path}: the file is empty; {EXPECTED}")
    header = [c.strip().lower().lstrip("\ufeff") for c in rows[0]]
    if "step" not in header:
        raise FtlabError(f"{path}: the CSV header {','.join(header)[:80]!r} has no 'step' column; {EXPECTED}")
    train_col = next((c for c in _TRAIN_COLUMNS if c in header), None)
    if train_col is None:
        raise FtlabError(f"{path}: the CSV header {','.join(header)[:80]!r} has no 'train_loss' column; {EXPECTED}")
    fmt = "openai" if {"train_accuracy", "valid_mean_token_accuracy", "train_mean_token_accuracy"} & set(header) else "plain"
    cols = {name: header.index(name) for name in header}
    ts, tl, vals = [], [], {c: ([], []) for c in _VAL_COLUMNS if c in cols}
    for lineno, row in enumerate(rows[1:], start=2):
        if not any(c.strip() for c in row):
            continue
        if len(row) > len(header) and any(c.strip() for c in row[len(header):]):
            raise FtlabError(f"{path}: line {lineno} has {len(row)} fields but the header has {len(header)}")

        def cell(name: str, row=row, lineno=lineno) -> float | None:
            i = cols[name]
            return _number(row[i] if i < len(row) else "", f"{path}: line {lineno}, column '{name}'")

        step = cell("step")
        if step is None:
            raise FtlabError(f"{path}: line {lineno} has no step")
        loss = cell(train_col)
        if loss is not None:
            ts.append(step)
            tl.append(loss)
        for name, (s, v) in vals.items():
            value = cell(name)
            if value is not None:
                s.append(step)
                v.append(value)
    val_col = next((c for c in _VAL_COLUMNS if c in vals and vals[c][1]), None)
    vs, vl = vals[val_col] if val_col else ([], [])
    history = LossHistory.from_arrays(ts, tl, vs, vl, source=str(path), format=fmt)
    if val_col and val_col != "valid_loss" and fmt == "openai":
        history.notes.append(f"validation loss read from '{val_col}'")
    return history


def _read_text(path: Path) -> str:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise FtlabError(f"{path}: no such file or folder") from None
    except IsADirectoryError:
        raise FtlabError(f"{path}: is a folder") from None
    except OSError as exc:
        raise FtlabError(f"{path}: cannot read it ({exc.strerror})") from None
    if not raw.strip():
        raise FtlabError(f"{path}: the file is empty; {EXPECTED}")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise FtlabError(f"{path}: not a text file (not UTF-8); {EXPECTED}") from None


def find_trainer_state(folder: str | os.PathLike[str]) -> Path:
    """The newest ``trainer_state.json`` under a checkpoint or output folder.

    Newest means last modified; between equally new files, the one with the most training steps.
    """
    folder = Path(folder)
    found = [p for p in folder.rglob("trainer_state.json") if p.is_file()]
    if not found:
        raise FtlabError(f"{folder}: no trainer_state.json in this folder or below; {EXPECTED}")

    def key(p: Path) -> tuple[float, int]:
        try:
            step = int(json.loads(p.read_text(encoding="utf-8")).get("global_step") or 0)
        except (ValueError, AttributeError, OSError):
            step = -1
        return (p.stat().st_mtime, step)

    return max(found, key=key)


def load_history(path: str | os.PathLike[str]) -> LossHistory:
    """Read a loss log in any of the three formats (or a folder holding a trainer_state.json).

    The format is told by the content, not the file name. An OpenAI result file downloaded
    with ``client.files.content`` (base64 text) is decoded first.
    """
    path = Path(path)
    if path.is_dir():
        return read_trainer_state(find_trainer_state(path))
    text = _read_text(path)
    head = text.lstrip()[:1]
    if head in "{[":
        return read_trainer_state(path)
    first = text.strip().splitlines()[0]
    if "," not in first and _BASE64.fullmatch("".join(text.split())):
        try:  # OpenAI serves result files base64-encoded
            decoded = base64.b64decode("".join(text.split()), validate=True).decode("utf-8")
            if decoded.lstrip().lower().startswith("step"):
                history = read_metrics_csv(path, decoded)
                history.notes.append("decoded from base64 (as OpenAI serves result files)")
                return history
        except (binascii.Error, UnicodeDecodeError, ValueError):
            pass
    if "," not in first:
        raise FtlabError(f"{path}: neither JSON nor a CSV with a header line; {EXPECTED}")
    return read_metrics_csv(path, text)


def as_history(source: Any) -> LossHistory:
    """Accept a LossHistory, a path, a trainer_state dict or a ``log_history`` list."""
    if isinstance(source, LossHistory):
        return source
    if isinstance(source, str | os.PathLike):
        return load_history(source)
    if isinstance(source, Mapping):
        if "log_history" not in source:
            raise FtlabError(f"a dict without 'log_history' is not a trainer state; {EXPECTED}")
        return history_from_log(source["log_history"], source="trainer_state")
    if isinstance(source, Sequence):
        return history_from_log(source, source="log_history")
    state = getattr(source, "state", source)  # a transformers Trainer or its TrainerState
    if hasattr(state, "log_history"):
        return history_from_log(state.log_history, source="trainer.state")
    raise FtlabError(f"cannot read a loss history from a {type(source).__name__}; {EXPECTED}")


# --------------------------------------------------------------------------------------------
# Robust smoothing and the measures
# --------------------------------------------------------------------------------------------


def _odd(k: float) -> int:
    k = max(1, round(k))
    return k if k % 2 else k + 1


def window_for(n: int) -> int:
    """The running-median window for ``n`` logged points: about n/12, odd, from 3 (1 below 5 points) to 201.

    Example: ``window_for(24) == 3``, ``window_for(300) == 25``.
    """
    if n < 5:
        return 1
    return min(201, max(3, _odd(n / 12)))


def _rolling(y: np.ndarray, w: int, fn) -> np.ndarray:
    """Centered running statistic, truncated at the ends (like pandas ``rolling(center=True, min_periods=1)``)."""
    n, h = len(y), w // 2
    if w <= 1 or n == 0:
        return y.copy()
    out = np.empty(n)
    for i in range(min(h, n)):
        out[i] = fn(y[: i + h + 1])
    for i in range(max(h, n - h), n):
        out[i] = fn(y[i - h:])
    if n > 2 * h:
        view = np.lib.stride_tricks.sliding_window_view(y, w)
        for a in range(0, len(view), 20000):  # chunks bound the memory for very long runs
            out[h + a: h + a + len(view[a: a + 20000])] = fn(view[a: a + 20000], axis=-1)
    return out


_TS_MAX = 400


def theil_sen(x: Sequence[float], y: Sequence[float]) -> tuple[float, float]:
    """Robust straight line (slope, intercept): the median of all pairwise slopes.

    Example: ``theil_sen([0, 1, 2, 3, 4], [0, 1, 2, 30, 4])`` is ``(1.0, 0.0)``: the outlier is ignored.
    More than 400 points are first reduced to the medians of 400 equal bins.
    """
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if len(x) < 2:
        return 0.0, float(y[0]) if len(y) else 0.0
    if len(x) > _TS_MAX:  # all pairs would be too many: use the medians of _TS_MAX equal bins
        bins = np.array_split(np.arange(len(x)), _TS_MAX)
        x = np.array([np.median(x[b]) for b in bins])
        y = np.array([np.median(y[b]) for b in bins])
    i, j = np.triu_indices(len(x), 1)
    dx = x[j] - x[i]
    ok = dx != 0
    slope = float(np.median((y[j] - y[i])[ok] / dx[ok])) if ok.any() else 0.0
    return slope, float(np.median(y - slope * x))


def smooth(y: Sequence[float], w: int | None = None, *, x: Sequence[float] | None = None) -> np.ndarray:
    """Robust trend: a running median over ``w`` points (default ``window_for(len(y))``), then a short running mean.

    At both ends, where a centred window does not fit, a robust straight line (Theil–Sen) through
    the first or last ``w`` points gives the trend, so a curve that is still falling at the end is
    not read as flattening. ``x`` (the steps) defaults to 0, 1, 2, ...

    Example: ``smooth([3, 2, 9, 1.5, 1.4, 1.3, 1.2])`` ignores the 9.
    """
    y = np.asarray(y, dtype=float)
    x = np.arange(len(y), dtype=float) if x is None else np.asarray(x, dtype=float)
    w = window_for(len(y)) if w is None else w
    med = _rolling(y, w, np.median)
    out = _rolling(med, _odd(w / 3) if w >= 5 else 1, np.mean)
    h = w // 2
    if w >= 3 and len(y) >= w:
        for sl, at in ((slice(0, w), slice(0, h)), (slice(len(y) - w, len(y)), slice(len(y) - h, len(y)))):
            slope, icpt = theil_sen(x[sl], y[sl])
            out[at] = icpt + slope * x[at]
    return out


def noise_level(x: Sequence[float], y: Sequence[float], level: Sequence[float] | float = 1.0) -> float:
    """Typical point-to-point fluctuation of a curve, relative to ``level``, robust to spikes and trends.

    Each point is compared with the straight line through its two neighbours (a second
    difference, blind to any straight trend); the robust spread (1.4826 × median absolute value) of
    those differences, rescaled to one point's noise, estimates the noise. A bend (the fast early
    drop, the bottom of an overfitting U) inflates second differences, so with 6 or more points
    third differences, blind to any parabola, give a second estimate and the smaller one is taken.
    A smooth curve gives about 0 even when it falls fast; a batch-size-1 curve gives 0.3 or more.

    Example: ``noise_level(range(7), [9, 4, 1, 0, 1, 4, 9])`` is 0.0 (a parabola has no noise);
    ``noise_level(range(7), [1, 1.1, 0.9, 1.1, 0.9, 1.1, 0.9])`` is about 0.24 (zig-zag is the worst case).
    """
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if len(y) < 3:
        return 0.0
    lev = np.broadcast_to(np.asarray(level, dtype=float), y.shape)
    a = (x[1:-1] - x[:-2]) / np.maximum(x[2:] - x[:-2], 1e-300)
    r = y[1:-1] - ((1 - a) * y[:-2] + a * y[2:])
    r = r / np.sqrt(1 + a**2 + (1 - a) ** 2)  # the difference's variance is (1 + a² + (1-a)²) σ²
    sigma = float(1.4826 * np.median(np.abs(r / lev[1:-1])))
    if len(y) >= 6:  # third differences (by index) have variance 20 σ²
        d3 = (y[3:] - 3 * y[2:-1] + 3 * y[1:-2] - y[:-3]) / math.sqrt(20)
        sigma = min(sigma, float(1.4826 * np.median(np.abs(d3 / (0.5 * (lev[1:-2] + lev[2:-1]))))))
    return sigma


_MED5_MAD = 0.4903  # median |x - median of 5 around it, itself included| for unit Gaussian noise


def local_noise(y: Sequence[float], level: Sequence[float] | float = 1.0) -> float:
    """Typical point-to-point fluctuation: how far a typical point sits from the median of the five around it.

    The median over the points of |y[i] - median(y[i-2..i+2])| / level[i], rescaled so that white noise of
    spread σ gives σ. A monotone run of values, however fast and however curved its fall, gives exactly 0
    (the median of five sorted values is the middle one), so unlike differences it does not read the
    bend of a fast early drop as noise. Fewer than 5 points give 0.

    Example: ``local_noise([5, 4, 3, 2.5, 2.2, 2.1, 2.05])`` is 0.0; 1 + 5 % Gaussian noise gives about 0.05.
    """
    y = np.asarray(y, dtype=float)
    if len(y) < 5:
        return 0.0
    lev = np.broadcast_to(np.asarray(level, dtype=float), y.shape)
    med = np.median(np.lib.stride_tricks.sliding_window_view(y, 5), axis=1)
    return float(np.median(np.abs(y[2:-2] - med) / lev[2:-2]) / _MED5_MAD)


def _at(steps: np.ndarray, values: np.ndarray, step: float) -> float:
    return float(np.interp(step, steps, values))


def _slope_per_100(steps: np.ndarray, values: np.ndarray, a: float, b: float) -> float:
    if b <= a:
        return 0.0
    return (_at(steps, values, b) - _at(steps, values, a)) / (b - a) * 100


@dataclass
class _Tail:
    """The last third of a curve, fitted with a robust line: where it ends and how much it still fell."""

    end: float        # the line's value at the last step
    recent: float     # how much the loss fell over the last third of the steps (loss units; < 0: rose)
    share: float      # that fall as a share of the whole improvement since the start
    se_recent: float  # standard error of ``recent`` from point noise (loss units)
    se_end: float     # standard error of ``end``
    points: int       # points in the last third


def _tail(x: np.ndarray, y: np.ndarray, s: np.ndarray, start: float, sigma_abs: float, *,
          best_so_far: bool = False, x0: float | None = None) -> _Tail:
    """Fit the last third of the steps with a Theil–Sen line (at least 3 points).

    With fewer than 7 points, or ``best_so_far`` (evaluations on a whole validation set, taken as
    they are), the points themselves are used: with ``best_so_far`` their running minimum, the best
    checkpoint so far, so one bumped evaluation does not hide a fall. The level two thirds in is
    interpolated (with ``best_so_far``: the best evaluation up to it) and the end is the last point.
    The last third is of the run's steps from ``x0`` (default the first point; for evaluations, the
    run's first training step, so that the eval interval does not move it).
    """
    x0, x1 = float(x[0]) if x0 is None else float(x0), float(x[-1])
    cut = x1 - (x1 - x0) / 3
    best = float(np.min(s))
    if len(y) < 7 or best_so_far:
        if best_so_far:
            s = np.minimum.accumulate(s)
            before = s[x <= cut]
            at_cut = float(before[-1]) if len(before) else float(s[0])
        else:
            at_cut = _at(x, s, cut)
        end = float(s[-1])
        recent = at_cut - end
        se_recent = se_end = 0.0
        points = int((x >= cut).sum())
    else:
        sel = x >= cut
        if sel.sum() < 3:
            sel = np.arange(len(x)) >= len(x) - 3
        slope, icpt = theil_sen(x[sel], y[sel])
        end = icpt + slope * x1
        recent = -slope * (x1 - cut)
        points = int(sel.sum())
        # a least-squares line through n even points: the fall over its span has variance 12σ²/n,
        # its end value 4σ²/n (Theil–Sen is nearly as precise and ignores spikes)
        se_recent, se_end = sigma_abs * math.sqrt(12 / points), sigma_abs * math.sqrt(4 / points)
        best = min(best, end)
    total = start - best
    share = recent / total if total > 0 else 0.0
    return _Tail(end, recent, share, se_recent, se_end, points)


@dataclass
class _Rise:
    """How far the validation loss ended above its lowest evaluation, and what noise could explain."""

    rise: float       # (end - minimum) / (minimum + floor)
    threshold: float  # a rise above this is real
    end: float        # the end level: a robust line through the evaluations from the minimum on
    noise_part: float = 0.0  # what noise alone could explain (the threshold is the larger of it and VAL_RISE_MIN)


def _rise(xv: np.ndarray, yv: np.ndarray, floor: float, sigma_all: float, i0: int,
          rise_min: float = VAL_RISE_MIN, sv: np.ndarray | None = None) -> _Rise:
    """Test "Val ↑": did the validation loss climb from its lowest evaluation (index ``i0``) and stay up?

    A rise is sustained, not one bumped evaluation: the end level is the lower of the last two
    (smoothed, ``sv``; evaluations on a whole validation set are taken as they are) evaluations,
    and with fewer than two evaluations after the lowest there is no rise to see. The noise is the
    larger of the curve's noise level and the evaluations' scatter around a Theil–Sen line through
    them from the lowest on. The lowest of m noisy evaluations sits about sqrt(2 ln m) noise widths
    below the level it came from, and the end has its own standard error (2σ/sqrt(n)): the rise
    must clear both, and 3 %.
    """
    m = len(yv)
    sv = yv if sv is None else sv
    vmin = float(yv[i0])
    lvl = abs(vmin) + floor
    after = slice(i0, m)
    n = m - i0
    sigma = sigma_all
    if n >= 3:
        end = float(min(sv[-2:]))
        if n >= 5:  # the scatter around the line, if larger than the curve-wide estimate
            slope, icpt = theil_sen(xv[after], yv[after])
            resid = yv[after] - (icpt + slope * xv[after])
            sigma = max(sigma, float(1.4826 * np.median(np.abs(resid)) * math.sqrt(n / (n - 2))) / lvl)
    else:
        end = vmin
    if sigma < VAL_EXACT and m < 7:
        sigma = 0.0
    rise = max(0.0, end - vmin) / lvl
    noise_part = (math.sqrt(2 * math.log(max(m, 2))) + 2 * math.sqrt(4 / max(n, 1))) * sigma
    return _Rise(rise, max(rise_min, noise_part), end, noise_part)


@dataclass
class _Analysis:
    """Everything measured on a history: arrays for plotting, numbers for the evidence."""

    history: LossHistory
    x: np.ndarray
    y: np.ndarray
    s: np.ndarray
    z: np.ndarray
    spikes: np.ndarray
    xv: np.ndarray
    yv: np.ndarray
    sv: np.ndarray
    pattern: str
    reason: str
    evidence: dict[str, Any]
    best_step: int | None
    warnings: list[str]
    measures: dict[str, Any] = field(default_factory=dict)  # what ``_decide`` reads


def _finite(steps: np.ndarray, loss: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    ok = np.isfinite(loss)
    return steps[ok], loss[ok]


def _int_step(step: float) -> int | float:
    return int(step) if float(step).is_integer() else float(step)


def _decide(q: Mapping[str, Any], th: Mapping[str, float]) -> tuple[str, str, int | None]:
    """The pattern, the reason and (overfitting) the best step, from ``_analyse``'s measures and the thresholds."""
    best_step = None
    m = q["m"]
    val_rise_thr = max(th["val_rise_min"], th["val_noise_mult"] * q["val_rise_noise"])
    rebound_thr = max(th["rebound_min"], q["rebound_noise"])
    if q["trailing_bad"] >= 2:
        pattern = "unstable"
        reason = f"the training loss became NaN/inf at step {_int_step(q['first_bad'])} and stayed so: training diverged"
    elif q["trailing_bad_val"]:
        pattern = "unstable"
        reason = f"the validation loss became NaN/inf at step {_int_step(q['first_bad_val'])}: training diverged"
    elif q["n_bad_train"] > 0.2 * q["n_logged"]:
        pattern = "unstable"
        reason = f"{q['n_bad_train']} of {q['n_logged']} training losses are NaN/inf"
    elif q["noise"] > th["noise_unstable"]:
        pattern = "unstable"
        reason = (f"the training loss fluctuates by ±{q['noise']:.0%} from step to step "
                  f"(limit {th['noise_unstable']:.0%})")
    elif q["spike_count"] >= q["min_spikes"]:
        pattern = "unstable"
        reason = (f"{q['spike_count']} spikes more than {q['spike_thr']:.0%} above the trend "
                  f"(largest {q['spike_size']:.0%}; {q['min_spikes']} make a spiky run)")
    elif q["overshoot"] > OVERSHOOT_MIN:
        pattern = "unstable"
        reason = (f"the training loss climbed {q['overshoot']:.0%} above where it started (around step "
                  f"{_int_step(q['overshoot_step'])}; limit {OVERSHOOT_MIN:.0%}): the learning rate throws it off")
    elif q["rebound"] > rebound_thr:
        pattern = "unstable"
        reason = (f"the smoothed training loss climbed {q['rebound']:.0%} back above its best "
                  f"(at step {_int_step(q['rebound_step'])}; limit {rebound_thr:.0%})")
    elif q["drop"] < th["flat_drop"]:
        pattern = "flat"
        reason = (f"the training loss fell only {q['drop']:.1%} from its start ({q['start']:.4g} → {q['end']:.4g}; "
                  f"limit {th['flat_drop']:.0%})")
    elif m >= 2 and q["val_rise"] > val_rise_thr:
        pattern = "overfitting"
        best_step = round(q["val_min_step"])
        reason = (f"validation loss bottomed out at step {q['val_min_step']} ({q['vmin']:.4g}) and ended "
                  f"{q['val_rise']:.0%} higher ({q['val_rise_end']:.4g}, the lower of the last two; limit {val_rise_thr:.0%}) while training loss "
                  f"fell {q['drop']:.0%}")
    else:
        on_val = m >= 2
        share, rel, se = ((q["val_share"], q["val_recent_rel"], q["val_se_rel"]) if on_val
                          else (q["share"], q["recent_rel"], q["se_rel"]))
        falling_thr = max(th["recent_rel_plateau"], th["falling_se_mult"] * se)
        what = "validation" if on_val else "training"
        if share < th["recent_share_plateau"] or rel < falling_thr:
            pattern = "plateau"
            reason = (f"over the last third of the run the {what} loss fell {rel:+.1%} of its level "
                      f"({max(share, 0):.0%} of its improvement); still falling at a useful rate needs "
                      f"{falling_thr:.1%}: it has flattened")
        else:
            pattern = "healthy"
            reason = (f"the {what} loss is still falling at a useful rate: {rel:.1%} of its level over the last "
                      f"third of the run ({share:.0%} of its improvement; flattened below {falling_thr:.1%}), "
                      f"training loss fell {q['drop']:.0%}")
        if not on_val:
            reason = "judged on training loss alone: " + reason
    return pattern, reason, best_step


def _analyse(history: LossHistory, thresholds: Mapping[str, float] | None = None) -> _Analysis:
    th = {**THRESHOLDS, **(thresholds or {})}
    src = history.source or "the log"
    n_bad_train = int((~np.isfinite(history.train_loss)).sum())
    n_bad_val = int((~np.isfinite(history.val_loss)).sum())
    def trailing_nonfinite(values: np.ndarray) -> int:
        finite = np.isfinite(values)
        return len(values) - (int(np.flatnonzero(finite)[-1]) + 1 if finite.any() else 0)

    trailing_bad = trailing_nonfinite(history.train_loss)
    trailing_bad_val = trailing_nonfinite(history.val_loss) if np.isfinite(history.val_loss).any() else 0

    x, y = _finite(history.train_steps, history.train_loss)
    n = len(y)
    if n < MIN_TRAIN_POINTS and trailing_bad < 2:
        raise FtlabError(f"{src}: only {n} finite training-loss values; need at least {MIN_TRAIN_POINTS} to diagnose "
                         f"(log more often, e.g. logging_steps=1)")
    warnings: list[str] = []
    ev: dict[str, Any] = {"format": history.format, "source": history.source,
                          "train_points": n, "val_points": int(np.isfinite(history.val_loss).sum())}
    if history.notes:
        ev["notes"] = list(history.notes)
    if n_bad_train:
        ev["nonfinite_train"] = n_bad_train
    if n_bad_val:
        ev["nonfinite_val"] = n_bad_val

    if n < 3:  # (almost) only NaN/inf: diverged from the start
        empty = np.array([])
        ev.update(reason="(almost) every training loss is NaN/inf: training diverged")
        return _Analysis(history, x, y, y.copy(), np.zeros(n), np.zeros(n, bool), empty, empty, empty, "unstable",
                         ev["reason"], ev, None, warnings)

    # ---- training curve -------------------------------------------------------------------
    w = window_for(n)
    s = smooth(y, w, x=x)
    k = max(3, round(n / 6))  # start level: median of the first sixth (robust to a noisy first batch)
    start = float(np.median(y[:k]))
    scale = max(abs(start), 1e-12)
    floor = LEVEL_FLOOR * scale  # relative measures divide by (level + floor): a loss near 0 does not blow them up
    # the fluctuation floor is 30 % of the untrained model's loss (the first logged losses), as on a plot of the
    # run: not of the first sixth's median, which falls as a fast-learning run gets longer
    initial = float(np.median(y[:3]))
    level = np.abs(s) + FLUCT_FLOOR * max(abs(initial), 1e-12)
    z = (y - s) / level
    noise = local_noise(y, level)
    spike_thr = max(SPIKE_MIN, SPIKE_NOISE_MULT * noise)
    spikes = z > spike_thr
    spike_count = int(spikes.sum())
    min_spikes = max(3, math.ceil(0.01 * n))
    # a rebound is judged where the running median is centred: the straight-line ends follow noise
    centred = s[w // 2: n - w // 2] if n > w else s
    run_min = np.minimum.accumulate(centred)
    rel_rise = (centred - run_min) / (np.abs(run_min) + floor)
    rebound_noise = 4 * noise * math.sqrt(1.6 / w)  # what noise moves a median of w
    rebound = float(np.max(rel_rise))
    rebound_i = int(np.argmax(rel_rise)) + (w // 2 if n > w else 0)
    # fine-tuning should never leave the loss clearly worse than the untrained model's: a too-high LR does
    med3 = np.median(np.lib.stride_tricks.sliding_window_view(y, 3), axis=1)
    overshoot_i = int(np.argmax(med3)) + 1
    overshoot = float(med3[overshoot_i - 1] / initial - 1) if initial > 0 else 0.0
    tail = _tail(x, y, s, start, noise * float(level[-1]))
    end = float(np.median(y[-k:]))
    drop = (start - end) / scale
    third = (x[-1] - x[0]) / 3
    ev.update(
        steps=[_int_step(x[0]), _int_step(x[-1])],
        train_start=start, train_end=end, train_min=float(np.min(s)),
        train_drop=drop,
        train_slope_start=_slope_per_100(x, s, x[0], x[0] + third),
        train_slope_end=-tail.recent / third * 100 if third else 0.0,
        train_recent_share=tail.share,
        noise=noise,
        spike_size=float(max(0.0, np.max(z))),
        spike_count=spike_count,
        rebound=rebound,
        overshoot=overshoot,
    )

    # ---- validation curve -----------------------------------------------------------------
    xv, yv = _finite(history.val_steps, history.val_loss)
    vfloor = 1e-3 * scale  # validation losses (never near 0 in fine-tuning) are compared relative to themselves
    m = len(yv)
    sv = yv.copy()
    val_min_step = None
    vend = vmin = math.nan
    if m:
        # per-batch validation losses (OpenAI's valid_loss) are noisy and get smoothed; evaluations
        # on a whole validation set move only as the model does (under 1 %) and are taken as they are
        sigma_v = noise_level(xv, yv, np.abs(yv) + vfloor) if m >= 7 else 0.0
        if sigma_v < VAL_EXACT:
            sigma_v = 0.0
        wv = window_for(m) if sigma_v else 1
        sv = smooth(yv, wv, x=xv)
        # the robust minimum: where the running median is lowest (looked for where it is centred);
        # the checkpoint to keep is the lowest evaluation inside that window
        ismooth = int(np.argmin(sv[: m - wv // 2]))
        lo, hi = max(0, ismooth - wv // 2), min(m, ismooth + wv // 2 + 1)
        imin = lo + int(np.argmin(yv[lo:hi]))
        vmin = float(yv[imin])
        val_min_step = _int_step(xv[imin])
        ev.update(val_start=float(sv[0]), val_min=vmin, val_min_step=val_min_step,
                  gap_start=float(sv[0] - _at(x, s, xv[0])))
    val_rise = val_rise_noise = val_share = val_recent_rel = val_se_rel = 0.0
    val_rise_end = math.nan
    if m >= 2:
        lvl = abs(vmin) + vfloor
        # before training the validation loss is about the training loss: count the improvement from there
        vtail = _tail(xv, yv, sv, max(start, float(sv[0])), sigma_v * lvl, best_so_far=not sigma_v,
                      x0=float(x[0]))
        # where it ends: the last evaluation as it is, or (noisy) the robust line's end; vtail.end is the
        # best evaluation so far when evaluations are taken as they are
        vend = vtail.end if sigma_v else float(yv[-1])
        rise = _rise(xv, yv, vfloor, sigma_v, imin, th["val_rise_min"], sv)
        val_rise, val_rise_noise, val_rise_end = rise.rise, rise.noise_part, rise.end
        val_share = vtail.share
        val_recent_rel = vtail.recent / (abs(vtail.end) + vfloor)
        val_se_rel = vtail.se_recent / (abs(vtail.end) + vfloor)
        ev.update(val_end=vend, gap_end=float(vend - _at(x, s, xv[-1])),
                  val_slope_end=-vtail.recent / ((xv[-1] - xv[0]) / 3) * 100,
                  val_recent_share=vtail.share, val_recent_drop=val_recent_rel, val_noise=sigma_v,
                  val_rise=val_rise, val_rise_threshold=rise.threshold, val_rise_end=rise.end)
    elif m == 1:
        ev.update(val_end=float(yv[0]), gap_end=ev["gap_start"])
    lvl_end = abs(tail.end) + floor
    q = {"trailing_bad": trailing_bad, "trailing_bad_val": trailing_bad_val, "n_bad_train": n_bad_train,
         "n_logged": len(history.train_loss),
         "first_bad": history.train_steps[len(history.train_loss) - trailing_bad] if trailing_bad else None,
         "first_bad_val": history.val_steps[len(history.val_loss) - trailing_bad_val] if trailing_bad_val else None,
         "noise": noise, "spike_count": spike_count, "min_spikes": min_spikes, "spike_thr": spike_thr,
         "spike_size": ev["spike_size"], "overshoot": overshoot, "overshoot_step": x[overshoot_i],
         "rebound": rebound, "rebound_noise": rebound_noise, "rebound_step": x[rebound_i],
         "drop": drop, "start": start, "end": end, "m": m, "val_min_step": val_min_step, "vmin": vmin, "vend": vend,
         "val_rise_end": val_rise_end,
         "val_rise": val_rise, "val_rise_noise": val_rise_noise, "val_share": val_share,
         "val_recent_rel": val_recent_rel, "val_se_rel": val_se_rel,
         "share": tail.share, "recent_rel": tail.recent / lvl_end, "se_rel": tail.se_recent / lvl_end}
    pattern, reason, best_step = _decide(q, th)
    val_rise_thr = max(th["val_rise_min"], th["val_noise_mult"] * val_rise_noise)
    if m >= 2:
        ev["val_rise_threshold"] = val_rise_thr

    # Without (enough) validation loss, say so first, whatever the training loss shows: a flat or unstable
    # training curve does not make overfitting any more visible.
    if m == 1:
        warnings.insert(0, "only one validation point: its trend, and so overfitting, cannot be seen; "
                           "evaluate more often (e.g. eval_steps)")
    elif m == 0:
        warnings.insert(0, NO_VALIDATION_WARNING)
    if pattern in ("unstable", "flat") and m >= 2 and val_rise > val_rise_thr:
        warnings.append(f"validation loss also rose {val_rise:.0%} above its minimum at step {val_min_step}")
    if n < 10:
        warnings.append(f"only {n} training-loss points: the diagnosis is rough")
    ev["reason"] = reason
    return _Analysis(history, x, y, s, z, spikes, xv, yv, sv, pattern, reason, ev, best_step, warnings, q)


# --------------------------------------------------------------------------------------------
# The public result
# --------------------------------------------------------------------------------------------


def _round(value: Any) -> Any:
    if isinstance(value, float | np.floating):
        value = float(value)
        if not math.isfinite(value):
            return str(value)
        return float(f"{value:.4g}")
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, list | tuple):
        return [_round(v) for v in value]
    if isinstance(value, dict):
        return {k: _round(v) for k, v in value.items()}
    return value


@dataclass
class Diagnosis:
    """The named pattern, the seeds' action, the evidence and (for overfitting) the best checkpoint's step."""

    pattern: str
    action: str
    evidence: dict[str, Any]
    best_step: int | None = None
    warnings: list[str] = field(default_factory=list)
    _analysis: _Analysis | None = field(default=None, repr=False, compare=False)

    @property
    def meaning(self) -> str:
        return PATTERNS[self.pattern].meaning

    @property
    def shows(self) -> str:
        return PATTERNS[self.pattern].shows

    @property
    def reason(self) -> str:
        return self.evidence.get("reason", "")

    def to_dict(self) -> dict[str, Any]:
        """The JSON form: ``{"pattern", "action", "evidence", "best_step"}`` (warnings sit in the evidence)."""
        evidence = dict(self.evidence, warnings=list(self.warnings))
        return {"pattern": self.pattern, "action": self.action, "evidence": _round(evidence), "best_step": self.best_step}

    def summary(self) -> str:
        """A few lines for people: the pattern, why, what to do, and any warnings."""
        lines = [f"pattern: {self.pattern} — {self.shows}: {self.meaning}",
                 f"why:     {self.reason}",
                 f"action:  {self.action}"]
        if self.best_step is not None:
            lines.append(f"keep:    the checkpoint from step {self.best_step}, where validation loss bottomed out")
        lines += [f"warning: {w}" for w in self.warnings]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()


def diagnose(source: Any, *, thresholds: Mapping[str, float] | None = None) -> Diagnosis:
    """Name the loss curve's pattern (healthy, plateau, overfitting, flat, unstable) with the seeds' action.

    ``source`` is a path (trainer_state.json, a folder holding one, or a CSV), a ``LossHistory``,
    a trainer-state dict, a ``log_history`` list, or a transformers ``Trainer``. ``thresholds``
    overrides any of ``THRESHOLDS``.

    Example::

        >>> h = LossHistory.from_arrays(range(1, 61), [2.5 * 0.97**t for t in range(60)])
        >>> diagnose(h).pattern
        'healthy'
    """
    history = as_history(source)
    unknown = sorted(set(thresholds or {}) - set(THRESHOLDS))
    if unknown:
        raise FtlabError(f"unknown threshold(s) {unknown}; known: {sorted(THRESHOLDS)}")
    a = _analyse(history, thresholds)
    return Diagnosis(a.pattern, PATTERNS[a.pattern].action, a.evidence, a.best_step, a.warnings, a)


# --------------------------------------------------------------------------------------------
# Real runs that cause each pattern (notebook 05, tests/data/curves/make_real_runs.py)
# --------------------------------------------------------------------------------------------


def pattern_runs(*, good_lr: float = 5e-4, plateau_lr: float = 5e-3, overfit_lr: float = 2e-3, low_lr: float = 5e-5,
                 high_lr: float = 2e-3, steps: int = 20, batch_size: int = 16,
                 overfit_examples: int = 4, unstable_batch_size: int = 4,
                 plateau_examples: int = 8) -> dict[str, dict[str, Any]]:
    """Training knobs that cause each of the five patterns in a LoRA fine-tune of the toy model.

    - healthy: a good LR, stopped while still improving (``steps``);
    - plateau: a brisk LR on a few examples (``plateau_examples``), 3 × as long: it learns all they teach;
    - overfitting: a few examples (the whole set in every batch) seen 4 × ``steps`` times;
    - flat: a learning rate too low (10× lower than a good one);
    - unstable: a brisk learning rate with a batch too small (``unstable_batch_size``): spiky, not NaN.

    ``n_examples`` (when present) caps the training examples. Example:
    ``pattern_runs()["flat"] == {"learning_rate": 5e-05, "max_steps": 20, "per_device_train_batch_size": 16}``.
    """
    return {
        "healthy": {"learning_rate": good_lr, "max_steps": steps, "per_device_train_batch_size": batch_size},
        "plateau": {"learning_rate": plateau_lr, "max_steps": 3 * steps, "per_device_train_batch_size": plateau_examples,
                    "n_examples": plateau_examples},
        "overfitting": {"learning_rate": overfit_lr, "max_steps": 4 * steps,
                        "per_device_train_batch_size": overfit_examples, "n_examples": overfit_examples},
        "flat": {"learning_rate": low_lr, "max_steps": steps, "per_device_train_batch_size": batch_size},
        "unstable": {"learning_rate": high_lr, "max_steps": steps, "per_device_train_batch_size": unstable_batch_size},
    }


def train_for_pattern(knobs: Mapping[str, Any], train_rows: Sequence[Any], eval_rows: Sequence[Any], *,
                      output_dir: str, model_id: str | None = None, quantization: str = "none", seed: int = 0,
                      overfit_patience: int | None = None, cached: bool = True):
    """Run one of ``pattern_runs()``'s trainings with ``ftlab.train`` and return its ``TrainResult``.

    Every run logs the loss at every step and evaluates 10 times; the learning rate is constant
    (no schedule flattens a curve by itself) and no early stopping cuts a run short unless
    ``overfit_patience`` turns the OverfitDetector on. ``result.trainer_state`` is the Trainer's
    ``trainer_state.json``, ready for ``diagnose``. ``cached`` reuses an identical earlier run
    (``ftlab.train.train_cached``; ``output_dir`` is then not used).
    """
    from ftlab.toymodel import TOY_MODEL_ID
    from ftlab.train import TrainConfig, train, train_cached

    knobs = dict(knobs)
    n_examples = knobs.pop("n_examples", None)
    n = knobs["max_steps"]  # evaluate ~10 times, every `every` steps, a divisor of n (save_steps=n must be a multiple)
    every = next(d for d in range(max(2, n // 10), 0, -1) if n % d == 0)
    cfg = TrainConfig(model_id=model_id or TOY_MODEL_ID, quantization=quantization, output_dir=output_dir, seed=seed,
                      logging_steps=1, eval_steps=every, lr_scheduler_type="constant",
                      warmup_ratio=0.0, save_steps=n, save_total_limit=1, overfit_patience=overfit_patience,
                      report_to="none", **knobs)
    rows = list(train_rows)[: n_examples or cfg.max_steps * cfg.per_device_train_batch_size
                            * cfg.gradient_accumulation_steps]
    if cached:
        return train_cached(cfg, rows, list(eval_rows))
    return train(cfg, rows, list(eval_rows))


FLAT_LR_FACTOR = 10.0  # the seeds: "Raise LR 5-10×"


def apply_action(pattern: str, knobs: Mapping[str, Any], diagnosis: Diagnosis | None = None, *,
                 unstable: str = "both") -> dict[str, Any]:
    """The run's knobs with the seeds' action for ``pattern`` applied, ready to train again.

    - flat: raise the learning rate ``FLAT_LR_FACTOR`` × (the seeds: 5-10×);
    - unstable: halve the learning rate and double ``gradient_accumulation_steps`` (the seeds' action,
      ``unstable="both"``), or only one of them (``"lr"``, ``"accumulation"``);
    - overfitting: stop at the best step: ``max_steps`` becomes the diagnosis's ``best_step``
      (the evaluation where validation loss bottomed out).

    Example: ``apply_action("flat", {"learning_rate": 1e-5, "max_steps": 20})["learning_rate"] == 1e-4``.
    Healthy and plateau runs need no fix here ("continue training", "reduce LR or stop soon").
    """
    new = dict(knobs)
    if pattern == "flat":
        new["learning_rate"] = float(knobs["learning_rate"]) * FLAT_LR_FACTOR
    elif pattern == "unstable":
        if unstable not in ("lr", "accumulation", "both"):
            raise FtlabError(f"unstable={unstable!r}: use 'lr', 'accumulation' or 'both'")
        if unstable in ("lr", "both"):
            new["learning_rate"] = float(knobs["learning_rate"]) / 2
        if unstable in ("accumulation", "both"):
            new["gradient_accumulation_steps"] = 2 * int(knobs.get("gradient_accumulation_steps", 1))
    elif pattern == "overfitting":
        if diagnosis is None or diagnosis.best_step is None:
            raise FtlabError("overfitting: pass the run's diagnosis, whose best_step is where to stop")
        new["max_steps"] = int(diagnosis.best_step)
    elif pattern in PATTERNS:
        raise FtlabError(f"{pattern}: nothing to fix; the seeds' action is {PATTERNS[pattern].action!r}")
    else:
        raise FtlabError(f"unknown pattern {pattern!r}; use one of {sorted(PATTERNS)}")
    return new


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


def decide(m: Mapping[str, Any], thresholds: Mapping[str, float] | None = None) -> str:
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
        acc = sum(decide(m, th) == label for m, label in ms) / len(ms)
        off_centre = sum(abs(i - (len(grid[k]) - 1) / 2) / len(grid[k]) for k, i in zip(names, combo, strict=True))
        if best is None or (acc, -off_centre) > (best[0], best[1]):
            best = (acc, -off_centre, th)
    return best[2], best[0]


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
