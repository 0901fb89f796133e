"""Reading a loss curve: a Hugging Face trainer state, an OpenAI step-metrics CSV or a plain CSV, as a ``LossHistory``."""

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

__all__ = [
    "EXPECTED",
    "LossHistory",
    "as_history",
    "find_trainer_state",
    "history_from_log",
    "load_history",
    "read_metrics_csv",
    "read_trainer_state",
]

_FORMAT_NAMES = {"hf": "Hugging Face trainer state", "openai": "OpenAI step metrics", "plain": "plain CSV"}
EXPECTED = ("expected one of: a Hugging Face trainer_state.json (or a checkpoint/output folder holding one), "
            "an OpenAI step-metrics CSV (step,train_loss,...,valid_loss,...), or a plain CSV step,train_loss,valid_loss")
_BASE64 = re.compile(r"[A-Za-z0-9+/]+={0,2}")


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
