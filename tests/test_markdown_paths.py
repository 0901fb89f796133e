"""Every repository path that the prose names exists: README.md, docs/*.md, bench/*.md and the notebooks'
markdown cells. A path is a word that starts with one of the repository's top folders (``ftlab/``,
``notebooks/``, ...) or a relative Markdown link."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TOP = ("ftlab", "notebooks", "bench", "tests", "docs", "tools", "scripts", "binder")
PATH = re.compile(r"(?<![\w./~-])((?:" + "|".join(TOP) + r")/[\w./*{}<>-]*)")
LINK = re.compile(r"\]\(([^)#\s]+)")
# Not a path that should exist: a template (notebooks/NN_name.ipynb, a glob, {x}, <x>) or a command's output.
TEMPLATE = re.compile(r"(?<![A-Za-z])(NN|NAME|SRC)(?![A-Za-z])|[*{}<>]")
OUTPUT_FLAG = re.compile(r"(--out|--raw|-o|>)\s*$")
# Dead paths in files this test's author does not own, each to be fixed there; the test fails once one of them
# exists again, so the list only shrinks.
KNOWN_DEAD: dict[tuple[str, str], str] = {}


def markdown_texts() -> list[tuple[str, Path, str]]:
    """``(file, folder links are relative to, text)`` for each Markdown source."""
    out = [(p.relative_to(ROOT).as_posix(), p.parent, p.read_text())
           for p in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), *sorted((ROOT / "bench").glob("*.md"))]]
    for nb in sorted((ROOT / "notebooks").glob("*.ipynb")):
        cells = json.loads(nb.read_text())["cells"]
        text = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
        out.append((nb.relative_to(ROOT).as_posix(), nb.parent, text))
    return out


def _not_a_name_of_the_repo(path: str) -> bool:
    from ftlab.toymodel import TOY_MODEL_ID

    return path == TOY_MODEL_ID  # "ftlab/toy-llama": a model id, resolved to a cache folder


def _ignored(path: str) -> bool:
    """Paths git ignores are outputs (tests/artifacts/, runs/), written when something runs."""
    return any(subprocess.run(["git", "check-ignore", "-q", p], cwd=ROOT).returncode == 0 for p in (path, path + "/"))


def named_paths(text: str, folder: Path) -> list[str]:
    found = []
    for m in PATH.finditer(text):
        path = m.group(1).rstrip(".,;:)`'\"")
        if TEMPLATE.search(path) or OUTPUT_FLAG.search(text[max(0, m.start() - 8):m.start()]):
            continue
        found.append(path.rstrip("/"))
    for m in LINK.finditer(text):
        target = m.group(1)
        if "://" not in target and not target.startswith("mailto:"):
            found.append((folder / target).resolve().relative_to(ROOT).as_posix())
    return list(dict.fromkeys(found))


def dead_paths() -> dict[tuple[str, str], None]:
    dead = {}
    for name, folder, text in markdown_texts():
        for path in named_paths(text, folder):
            if not (ROOT / path).exists() and not _not_a_name_of_the_repo(path) and not _ignored(path):
                dead[(name, path)] = None
    return dead


def test_every_path_named_in_markdown_exists():
    dead = dead_paths()
    new = [f"{name}: {path}" for name, path in dead if (name, path) not in KNOWN_DEAD]
    assert not new, "dead paths in the prose:\n" + "\n".join(new)
    fixed = [f"{name}: {path}" for name, path in KNOWN_DEAD if (name, path) not in dead]
    assert not fixed, "fixed, so remove from KNOWN_DEAD:\n" + "\n".join(fixed)


@pytest.mark.parametrize(("text", "expected"), [
    ("see `ftlab/cloud/bedrock.py` and [the guide](docs/instructor_guide.md).", ["ftlab/cloud/bedrock.py",
                                                                               "docs/instructor_guide.md"]),
    ("build `notebooks/NN_name.ipynb` from bench/results/*.json", []),
    ("python bench/scale_gpu.py report --out bench/results/new.json", ["bench/scale_gpu.py"]),
])
def test_the_path_finder(text, expected):
    assert named_paths(text, ROOT) == expected


def test_a_dead_path_is_caught(tmp_path, monkeypatch):
    """The check can fail: a README that names a file the repository lacks."""
    (tmp_path / "README.md").write_text("Run `bench/scale.py`; see `docs/sources.md`.\n")
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "sources.md").write_text("[x](../ftlab/nothing.py)\n")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    assert set(dead_paths()) == {("README.md", "bench/scale.py"), ("docs/sources.md", "ftlab/nothing.py")}
