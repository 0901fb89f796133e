"""Recorded figures: how a notebook reports its key numbers to tests and ``ftlab run``.

A notebook calls ``ftlab.record("final_val_loss", 0.42)``. The value is shown in the
notebook and stored in the cell's output under a dedicated MIME type, so that
``read_figures(executed_notebook)`` gets it back after a papermill run (the same idea
as scrapbook's ``glue``).
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

__all__ = ["MIME", "read_figures", "record", "recorded"]


MIME = "application/vnd.ftlab.figure+json"

_figures: dict[str, Any] = {}


def _jsonable(value: Any) -> Any:
    """Turn numpy/torch scalars, tuples and paths into plain JSON values."""
    if hasattr(value, "item") and callable(value.item) and getattr(value, "ndim", 0) == 0:
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if hasattr(value, "tolist"):
        return _jsonable(value.tolist())
    return str(value)


def record(name: str, value: Any, *, show: bool = True) -> None:
    """Record a named figure (stored in the executed notebook for the tests and ``ftlab run``'s summary).

    Example: ``record("accuracy", 0.93)`` shows ``accuracy = 0.93`` once. It returns nothing, so a ``record`` on
    a cell's last line does not show the value a second time as the cell's result.
    """
    value = _jsonable(value)
    _figures[name] = value
    if show:
        try:
            from IPython import get_ipython
            from IPython.display import display

            if get_ipython() is not None:
                text = json.dumps(value) if not isinstance(value, str) else value
                if len(text) > 300:
                    text = text[:300] + "…"
                display({MIME: {"name": name, "value": value}, "text/plain": f"{name} = {text}"}, raw=True)
        except ImportError:  # pragma: no cover - IPython is a dependency
            pass


def recorded() -> dict[str, Any]:
    """The figures recorded so far in this process."""
    return dict(_figures)


def read_figures(notebook: str | os.PathLike[str] | dict) -> dict[str, Any]:
    """Read the recorded figures back from an executed notebook (path or nbformat dict)."""
    if isinstance(notebook, str | os.PathLike):
        nb = json.loads(Path(notebook).read_text(encoding="utf-8"))
    else:
        nb = notebook
    found: dict[str, Any] = {}
    for cell in nb.get("cells", []):
        for out in cell.get("outputs", []) or []:
            data = out.get("data") or {}
            if MIME in data:
                item = data[MIME]
                if isinstance(item, str):
                    item = json.loads(item)
                found[item["name"]] = item["value"]
    return found
