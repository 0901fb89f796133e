"""Exercise notebooks from the same notebooks the tests run: no second copy to drift.

An instructor marks a solution inside any code cell with two comment lines::

    # BEGIN SOLUTION billing_tokens(trained_tokens, files["train"], model, n_epochs)
    trained_tokens = sum(min(e["tokens"], s["max_tokens_per_example"]) for e in s["examples"]) * n_epochs
    # END SOLUTION

The ``BEGIN`` line names the check, a function in ``ftlab.check``, and the call that checks the
answer. The names the region assigns at its top level (here ``trained_tokens``) are the answers;
each must appear in the call. The markers are comments, so the notebook computes exactly what it
did before: the tests keep running it as it is.

``exercise_notebook(path)`` (and ``ftlab exercises --out DIR``) writes a copy in which each region
becomes three cells: the prompt (Markdown, from the check's registration in ``ftlab.check``), an
answer cell with ``trained_tokens = ...``, and a check cell::

    import ftlab.check
    ftlab.check.billing_tokens(trained_tokens, files["train"], model, n_epochs);

Code before and after the region stays in cells of its own. ``solutions=True`` puts the solution
back into the answer cell (the instructor's key; the tests run it and expect every check to pass).
"""

from __future__ import annotations

import ast
import copy
import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ftlab.check import EXERCISES, ExerciseSpec
from ftlab.errors import FtlabError

__all__ = ["ANY_MARKER", "BEGIN", "END", "Exercise", "exercise_notebook", "find_exercises", "split_cell",
           "strip_markers", "write_exercises"]


BEGIN = re.compile(r"^# BEGIN SOLUTION\b(?P<call>.*)$")
END = re.compile(r"^# END SOLUTION\s*$")
ANY_MARKER = re.compile(r"^\s*#\s*(BEGIN|END)\s+SOLUTION\b")
CHECK_TAG, ANSWER_TAG, PROMPT_TAG = "exercise-check", "exercise-answer", "exercise-prompt"


@dataclass
class Exercise:
    """One marked solution: where it is, the check call, the answer names and the solution code."""

    name: str
    notebook: str
    cell: int  # index of the cell in the source notebook
    line: int  # 1-based line of the BEGIN marker in that cell
    call: str  # the check call as written after BEGIN SOLUTION
    answers: list[str]
    solution: str
    spec: ExerciseSpec = field(repr=False)

    @property
    def check_source(self) -> str:
        return f"import ftlab.check\nftlab.check.{self.call};"

    @property
    def answer_stub(self) -> str:
        names = ", ".join(self.answers)
        return f"# Exercise {self.name}: define {names} (see above), run this cell, then the check below.\n" + "\n".join(
            f"{a} = ..." for a in self.answers
        )

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "notebook": self.notebook, "title": self.spec.title, "cell": self.cell,
                "line": self.line, "answers": self.answers, "check": f"ftlab.check.{self.call}"}


def _source(cell: dict[str, Any]) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def _parse_call(text: str, where: str) -> tuple[str, str, set[str]]:
    """``name(args)`` (optionally ``check.`` or ``ftlab.check.`` in front) -> (name, normalized call, names used)."""
    text = text.strip()
    if not text:
        raise FtlabError(f"{where}: write the check call after BEGIN SOLUTION, e.g. "
                         "'# BEGIN SOLUTION billing_tokens(trained_tokens, ...)'")
    try:
        node = ast.parse(text, mode="eval").body
    except SyntaxError as exc:
        raise FtlabError(f"{where}: the check call after BEGIN SOLUTION is not valid Python ({exc.msg}): {text!r}") from None
    if not isinstance(node, ast.Call):
        raise FtlabError(f"{where}: write the check call after BEGIN SOLUTION, e.g. "
                         f"'# BEGIN SOLUTION billing_tokens(trained_tokens, ...)'; got {text!r}")
    func = ast.unparse(node.func)
    name = func.removeprefix("ftlab.").removeprefix("check.")
    if name not in EXERCISES:
        raise FtlabError(f"{where}: no check named {name!r} in ftlab.check; registered: {', '.join(sorted(EXERCISES))}")
    args = name + text[text.index("("):]  # the call as written, without a check./ftlab.check. prefix
    used = {n.id for a in [*node.args, *(k.value for k in node.keywords)] for n in ast.walk(a) if isinstance(n, ast.Name)}
    return name, args, used


def _assigned(code: str, where: str) -> list[str]:
    try:
        tree = ast.parse(_python_only(code))
    except SyntaxError as exc:
        raise FtlabError(f"{where}: the solution region is not complete Python by itself ({exc.msg}, line {exc.lineno})") from None
    names: list[str] = []
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(
            node, ast.AnnAssign | ast.AugAssign) else []
        for t in targets:
            for n in ast.walk(t):
                if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store) and n.id not in names:
                    names.append(n.id)
    return names


def _python_only(code: str) -> str:
    """Blank out IPython magics and shell escapes so that ``ast`` can parse a cell."""
    return "\n".join("" if line.lstrip().startswith(("%", "!")) else line for line in code.splitlines())


def _check_parses(code: str, where: str) -> None:
    if code.strip():
        try:
            ast.parse(_python_only(code))
        except SyntaxError as exc:
            raise FtlabError(f"{where}: the code around a solution region must be complete statements; "
                             f"put the markers between statements, at the start of a line ({exc.msg})") from None


def split_cell(source: str, where: str) -> list[tuple[str, str | None]]:
    """Split a cell's source into ``(code, None)`` segments and ``(solution, begin_line)`` regions."""
    lines = source.splitlines()
    parts: list[tuple[str, str | None]] = []
    current: list[str] = []
    begin: str | None = None
    begin_line = 0
    for i, line in enumerate(lines, 1):
        m_begin, m_end = BEGIN.match(line), END.match(line)
        if not (m_begin or m_end) and ANY_MARKER.match(line):
            raise FtlabError(f"{where} line {i}: solution markers start at column 0 and read exactly "
                             "'# BEGIN SOLUTION check(...)' / '# END SOLUTION'")
        if m_begin:
            if begin is not None:
                raise FtlabError(f"{where} line {i}: BEGIN SOLUTION inside another region (opened on line {begin_line}); "
                                 "close it with '# END SOLUTION' first")
            parts.append(("\n".join(current), None))
            current, begin, begin_line = [], m_begin["call"], i
        elif m_end:
            if begin is None:
                raise FtlabError(f"{where} line {i}: END SOLUTION without a BEGIN SOLUTION before it")
            parts.append(("\n".join(current), f"{begin_line}:{begin}"))
            current, begin = [], None
        else:
            current.append(line)
    if begin is not None:
        raise FtlabError(f"{where} line {begin_line}: BEGIN SOLUTION is never closed: add '# END SOLUTION'")
    parts.append(("\n".join(current), None))
    return parts


def find_exercises(path: str | os.PathLike[str], nb: dict[str, Any] | None = None) -> list[Exercise]:
    """The exercises marked in a notebook, in order. Bad markers raise ``FtlabError`` naming cell and line."""
    path = Path(path)
    if nb is None:
        nb = json.loads(path.read_text(encoding="utf-8"))
    found: list[Exercise] = []
    first_code = True
    for index, cell in enumerate(nb.get("cells", [])):
        src = _source(cell)
        where = f"{path.name} cell {index}"
        if cell.get("cell_type") != "code":
            continue
        is_params = first_code
        first_code = False
        if "SOLUTION" not in src:
            continue
        parts = split_cell(src, where)
        for code, marker in parts:
            if marker is None:
                _check_parses(code, where)
                continue
            if is_params:
                raise FtlabError(f"{where}: the parameters cell cannot hold a solution region")
            line_s, call = marker.split(":", 1)
            at = f"{where} line {line_s}"
            name, normalized, used = _parse_call(call, at)
            if not code.strip():
                raise FtlabError(f"{at}: the solution region of {name} is empty")
            answers = _assigned(code, at)
            if not answers:
                raise FtlabError(f"{at}: the solution of {name} assigns no variable at its top level; "
                                 "the learner's answer is the variable(s) it defines")
            unchecked = [a for a in answers if a not in used]
            if unchecked:
                raise FtlabError(f"{at}: {name}'s check call does not use {', '.join(unchecked)}: "
                                 "pass every answer the region defines to the check")
            if any(e.name == name for e in found):
                raise FtlabError(f"{at}: exercise {name} appears twice in {path.name}")
            found.append(Exercise(name, path.stem, index, int(line_s), normalized, answers, code.strip("\n"),
                                  EXERCISES[name]))
    return found


def strip_markers(source: str) -> str:
    """The cell's code without the solution markers: what the notebook itself runs."""
    return "\n".join(line for line in source.splitlines() if not (BEGIN.match(line) or END.match(line)))


def _new_cell(kind: str, source: str, tags: Sequence[str] = ()) -> dict[str, Any]:
    cell: dict[str, Any] = {"cell_type": kind, "metadata": {"tags": list(tags)} if tags else {}, "source": source}
    if kind == "code":
        cell.update(execution_count=None, outputs=[])
    return cell


def _prompt_markdown(ex: Exercise, number: int, total: int) -> str:
    answers = ", ".join(f"`{a}`" for a in ex.answers)
    return (f"### ✏️ Exercise {number} of {total}: {ex.spec.title}\n\n{ex.spec.prompt}\n\n"
            f"*Define {answers} in the next cell. The cell after it checks your answer "
            f"(`ftlab.check.{ex.name}`) and stops here until it is right.*")


def exercise_notebook(path: str | os.PathLike[str], *, solutions: bool = False) -> tuple[dict[str, Any], list[Exercise]]:
    """The exercise version of one notebook (nbformat dict) and its exercises.

    ``solutions=False``: each solution region becomes prompt + ``name = ...`` + check.
    ``solutions=True``: the answer cell keeps the solution (the instructor's key; it runs clean).
    """
    path = Path(path)
    nb = json.loads(path.read_text(encoding="utf-8"))
    exercises = find_exercises(path, nb)
    out = copy.deepcopy(nb)
    if not exercises:
        return out, []
    by_cell: dict[int, list[Exercise]] = {}
    for ex in exercises:
        by_cell.setdefault(ex.cell, []).append(ex)
    cells: list[dict[str, Any]] = []
    number = 0
    for index, cell in enumerate(nb["cells"]):
        if index not in by_cell:
            cells.append(copy.deepcopy(cell))
            continue
        queue = iter(by_cell[index])
        for code, marker in split_cell(_source(cell), f"{path.name} cell {index}"):
            if marker is None:
                if code.strip():
                    piece = copy.deepcopy(cell)
                    piece["source"] = code.strip("\n")
                    piece.pop("id", None)
                    cells.append(piece)
                continue
            ex = next(queue)
            number += 1
            cells.append(_new_cell("markdown", _prompt_markdown(ex, number, len(exercises)), [PROMPT_TAG]))
            cells.append(_new_cell("code", ex.solution if solutions else ex.answer_stub, [ANSWER_TAG]))
            cells.append(_new_cell("code", ex.check_source, [CHECK_TAG]))
    kind = "solutions" if solutions else "exercises"
    names = ", ".join(f"`{e.name}`" for e in exercises)
    note = _new_cell("markdown", (
        f"> **{kind.capitalize()} version** of `{path.name}`, written by `ftlab exercises`"
        f"{' --solutions' if solutions else ''}: {len(exercises)} exercise(s) ({names}). Run the cells top to "
        "bottom; at each ✏️ exercise write your answer, then run its check: ✓ means right, ✗ says what to look "
        "at. The notebook stops at an exercise until it is right."), ["exercise-note"])
    first_md = next((i for i, c in enumerate(cells) if c["cell_type"] == "markdown"
                     and _source(c).lstrip().startswith("#")), -1)
    cells.insert(first_md + 1, note)
    for i, c in enumerate(cells):  # unique, stable ids (nbformat 4.5)
        c["id"] = f"x{i:02d}"
    out["cells"] = cells
    out["nbformat"], out["nbformat_minor"] = 4, max(5, int(nb.get("nbformat_minor", 5)))
    return out, exercises


def write_exercises(notebooks: Sequence[str | os.PathLike[str]], out: str | os.PathLike[str], *,
                    solutions: bool = False) -> tuple[list[Path], list[Exercise]]:
    """Write the exercise version of every notebook that has exercises into ``out``, plus ``EXERCISES.md``.

    Returns the written notebooks and all exercises. Notebooks without marked solutions are skipped.
    """
    out = Path(out)
    written: list[Path] = []
    everything: list[Exercise] = []
    built = []
    for nb_path in notebooks:  # check every notebook before writing anything
        nb, exs = exercise_notebook(nb_path, solutions=solutions)
        if exs:
            built.append((Path(nb_path), nb, exs))
    if not built:
        raise FtlabError("no notebook has a '# BEGIN SOLUTION ...' region; nothing to write")
    out.mkdir(parents=True, exist_ok=True)
    for nb_path, nb, exs in built:
        target = out / nb_path.name
        target.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        written.append(target)
        everything.extend(exs)
    lines = [f"# ftlab {'solutions' if solutions else 'exercises'}", "",
             "Written by `ftlab exercises` from the course notebooks; each check is `ftlab.check.<name>`.", "",
             "| notebook | exercise | title | answer | check |", "|---|---|---|---|---|"]
    lines += [f"| {e.notebook} | {e.name} | {e.spec.title} | {', '.join(e.answers)} | `ftlab.check.{e.call}` |"
              for e in everything]
    (out / "EXERCISES.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return written, everything
