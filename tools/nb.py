"""Author notebooks as percent scripts and write clean .ipynb files (dev tool, needs jupytext).

    python tools/nb.py build SRC.py notebooks/NN_name.ipynb   # percent script -> clean notebook
    python tools/nb.py edit notebooks/NN_name.ipynb > SRC.py  # notebook -> percent script

Only the .ipynb is committed. Cells get the python3 kernelspec, no outputs, and only
their `tags` metadata.
"""

from __future__ import annotations

import sys
from pathlib import Path

import jupytext
import nbformat

KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}
LANGUAGE = {"name": "python", "pygments_lexer": "ipython3", "codemirror_mode": {"name": "ipython", "version": 3}}


def build(src: str, dst: str) -> None:
    nb = jupytext.read(src, fmt="py:percent")
    nb.metadata = {"kernelspec": KERNELSPEC, "language_info": LANGUAGE}
    for cell in nb.cells:
        tags = cell.metadata.get("tags")
        cell.metadata = {"tags": tags} if tags else {}
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
        cell.pop("id", None)
    nb.nbformat, nb.nbformat_minor = 4, 5
    # Keep the ids of the notebook being rebuilt (by position and cell type), so a small edit is a small diff;
    # new cells get a fresh cNN id.
    old = nbformat.read(dst, as_version=4).cells if Path(dst).is_file() else []
    taken: set[str] = set()
    for i, cell in enumerate(nb.cells):
        if i < len(old) and old[i].cell_type == cell.cell_type and old[i].get("id"):
            cell["id"] = old[i]["id"]
        else:
            n = i
            while f"c{n:02d}" in taken or any(c.get("id") == f"c{n:02d}" for c in old):
                n += 100
            cell["id"] = f"c{n:02d}"
        taken.add(cell["id"])
    nbformat.write(nb, dst)


def edit(src: str) -> None:
    sys.stdout.write(jupytext.writes(jupytext.read(src), fmt="py:percent"))


if __name__ == "__main__":
    cmd, *rest = sys.argv[1:]
    build(*rest) if cmd == "build" else edit(*rest)
