"""What the tests share that is not a fixture: the repository's paths, the notebook list, a notebook's code cells,
skip-or-fail under CI, and a poll loop. Fixtures and hooks stay in ``conftest.py``."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
BOOKS = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))  # the numbered notebooks, 00 ... 11


def notebook_path(name: str) -> Path:
    """The notebook whose file name starts with ``name`` (``"04"`` → ``notebooks/04_qlora_training.ipynb``)."""
    matches = sorted(NOTEBOOKS.glob(f"{name}*.ipynb"))
    assert matches, f"no notebook matches {name!r} in {NOTEBOOKS}"
    return matches[0]


def code_cells(path: Path, *, colab: bool = True) -> list[str]:
    """A notebook's code cells as text; ``colab=False`` leaves out the Colab setup cell (a no-op outside Colab)."""
    cells = json.loads(Path(path).read_text(encoding="utf-8"))["cells"]
    return ["".join(c["source"]) for c in cells if c["cell_type"] == "code"
            and (colab or "colab-setup" not in c.get("metadata", {}).get("tags", []))]


def in_ci() -> bool:
    """``CI`` is set (and not to 0/false/no): every test must run its real component."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def skip_or_fail(missing: str) -> None:
    """Skip a test whose real component is missing here; under ``CI=true`` fail instead, saying what is missing."""
    if in_ci():
        pytest.fail(f"CI must run this test, but {missing}", pytrace=False)
    pytest.skip(missing)


def wait_until(check: Callable[[], Any], *, timeout: float = 60.0, every: float = 0.2, what: str = "the condition") -> Any:
    """Call ``check`` until it returns something truthy and return that; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        got = check()
        if got:
            return got
        if time.monotonic() > deadline:
            pytest.fail(f"{what} did not happen within {timeout:.0f} s (last: {got!r})")
        time.sleep(every)


def widget_views(path: str | Path) -> int:
    """How many ipywidgets views an executed notebook's outputs hold."""
    nb = json.loads(Path(path).read_text(encoding="utf-8"))
    return sum("application/vnd.jupyter.widget-view+json" in (o.get("data") or {})
               for c in nb["cells"] for o in c.get("outputs", []) or [])
