"""Thin notebook cells (issue 24): no code cell is over 15 lines, the generated Colab setup cell aside.

Logic longer than that belongs in an ``ftlab`` function with a docstring, and the cell calls it. The
parameters cell counts too: it declares one knob per line, so a long one is a notebook with many knobs.
``ALLOWED`` lists today's offenders, notebook by notebook, as a count that may only go down: a new long
cell fails, and so does an allowance that is no longer used (lower it).
"""

from __future__ import annotations

import json

import pytest

from tests.helpers import BOOKS

MAX_LINES = 15

# Over-long code cells left after issue 24: only parameters cells, each with more knobs than 15 lines hold (one knob a
# line, each passed by a test, an `ftlab run` call or the README, or taught).
ALLOWED = {
    "04_qlora_training": 1,  # the parameters cell: 19 knobs
    "06_merge_and_deploy": 1,  # the parameters cell: 16 knobs
    "07_evaluate": 1,  # the parameters cell: 20 knobs
    "11_preference_and_rl": 1,  # the parameters cell: 19 knobs
}


def long_cells(path) -> list[tuple[str, int]]:
    """The code cells of a notebook over ``MAX_LINES`` lines (the Colab setup cell aside): (id, lines)."""
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    return [(c.get("id", f"#{i}"), len("".join(c["source"]).splitlines())) for i, c in enumerate(cells)
            if c["cell_type"] == "code" and "colab-setup" not in c.get("metadata", {}).get("tags", [])
            and len("".join(c["source"]).splitlines()) > MAX_LINES]


@pytest.mark.parametrize("path", BOOKS, ids=lambda p: p.stem)
def test_no_code_cell_over_15_lines(path):
    found = long_cells(path)
    allowed = ALLOWED.get(path.stem, 0)
    assert len(found) <= allowed, (f"{path.name}: {len(found)} code cells over {MAX_LINES} lines (allowed {allowed}): "
                                   f"{found}; move the logic into an ftlab function")
    assert len(found) == allowed, (f"{path.name} has {len(found)} code cells over {MAX_LINES} lines now: lower "
                                   f"ALLOWED[{path.stem!r}] from {allowed} to {len(found)}")


def test_the_allowlist_names_real_notebooks():
    assert set(ALLOWED) <= {p.stem for p in BOOKS}


def test_the_check_fails_on_a_long_cell(tmp_path):
    nb = {"cells": [{"cell_type": "code", "id": "c1", "metadata": {}, "source": ["x = 1\n"] * 16},
                    {"cell_type": "code", "id": "c2", "metadata": {"tags": ["colab-setup"]}, "source": ["y\n"] * 30}]}
    path = tmp_path / "99_x.ipynb"
    path.write_text(json.dumps(nb))
    assert long_cells(path) == [("c1", 16)]
