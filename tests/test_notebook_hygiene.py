"""Notebook conventions: no outputs committed, a typed and commented `parameters` cell first, no derived values."""

from __future__ import annotations

import ast
import json
import re

import pytest

from tests.helpers import NOTEBOOKS

BOOKS = sorted(NOTEBOOKS.glob("*.ipynb"))


def test_there_are_notebooks():
    assert any(p.name.startswith("00_") for p in BOOKS)


@pytest.mark.parametrize("path", BOOKS, ids=lambda p: p.stem)
def test_committed_without_outputs(path):
    nb = json.loads(path.read_text())
    for i, cell in enumerate(nb["cells"]):
        if cell["cell_type"] == "code":
            assert not cell.get("outputs"), f"{path.name} cell {i} has outputs: clear them before committing"
            assert cell.get("execution_count") is None, f"{path.name} cell {i} has an execution count"


@pytest.mark.parametrize("path", BOOKS, ids=lambda p: p.stem)
def test_parameters_cell_first_typed_commented_literal(path):
    nb = json.loads(path.read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert code, f"{path.name} has no code cell"
    first = code[0]
    assert "parameters" in first.get("metadata", {}).get("tags", []), f"{path.name}: first code cell is not tagged 'parameters'"
    src = "".join(first["source"])
    tree = ast.parse(src)
    lines = src.splitlines()
    assert tree.body, f"{path.name}: empty parameters cell"
    for node in tree.body:
        assert isinstance(node, ast.AnnAssign), f"{path.name}: parameters must be typed (name: type = value), line {node.lineno}"
        ast.literal_eval(node.value)  # no derived values: every default is a literal
        assert "#" in lines[node.lineno - 1], f"{path.name}: parameter on line {node.lineno} has no trailing comment"


@pytest.mark.parametrize("path", BOOKS, ids=lambda p: p.stem)
def test_papermill_sees_every_parameter(path):
    """papermill's own inspection (``papermill --help-notebook``) skips a parameter whose comment holds an '=' and
    warns "Unable to parse line ..." at every run: each declared parameter must be visible to it."""
    import papermill

    nb = json.loads(path.read_text())
    first = next(c for c in nb["cells"] if c["cell_type"] == "code")
    declared = [n.target.id for n in ast.parse("".join(first["source"])).body if isinstance(n, ast.AnnAssign)]
    seen = papermill.inspect_notebook(str(path))
    missing = [n for n in declared if n not in seen]
    assert not missing, f"{path.name}: papermill cannot parse {missing} (an '=' in the comment? write ':' instead)"


@pytest.mark.parametrize("path", BOOKS, ids=lambda p: p.stem)
def test_check_params_takes_types_from_the_parameters_cell_and_choices_agree_with_comments(path):
    """Parameters are declared once (issue 24): the check cell gives rules only (``name={rules}``), the type is
    the parameters cell's annotation; and every literal choice the check accepts is named in that parameter's
    comment, so the comment and the check cannot disagree."""
    nb = json.loads(path.read_text())
    code = ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code"]
    comments = {line.split(":")[0].strip(): line.split("#", 1)[1] for line in code[0].splitlines() if "#" in line}
    check = next(c for c in code if "check_params(" in c)
    call = next(n for n in ast.walk(ast.parse(check)) if isinstance(n, ast.Call) and getattr(n.func, "id", "") == "check_params")
    assert all(isinstance(k.value, ast.Dict) for k in call.keywords), f"{path.name}: check_params(name={{rules}}) only"
    for k in call.keywords:
        for key, val in zip(k.value.keys, k.value.values, strict=True):
            if isinstance(key, ast.Constant) and key.value == "choices":
                try:
                    choices = ast.literal_eval(val)
                except ValueError:  # computed (a table in ftlab): the check names them when a value is wrong
                    continue
                missing = [c for c in choices if f'"{c}"' not in comments.get(k.arg, "")]
                assert not missing, f"{path.name}: {k.arg}'s comment does not name {missing}"


_ARTICLE_AS_SEED = re.compile(r"\bseeds? 00[01]\b|\b\d{4} seed's|[(\"'] ?seed's \$|\b(?:the|both|two|later|earlier) seeds?'s?\s(?!parameter)|\bseeds' ",
                              re.IGNORECASE)


def test_the_source_articles_are_not_called_seeds():
    """issue 24: "seed" means a random seed only; the two source articles are "article 000/001" (docs/sources.md)."""
    from tests.helpers import ROOT

    files = [*sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")), ROOT / "README.md",
             *sorted(p for p in (ROOT / "docs").glob("*.md") if p.name != "sources.md"),  # it says the old name once
             *sorted((ROOT / "ftlab").rglob("*.py")),
             ROOT / "ftlab" / "catalog" / "prices.yaml"]
    found = [f"{p.relative_to(ROOT)}: {m.group(0)!r}" for p in files
             for m in _ARTICLE_AS_SEED.finditer(p.read_text(encoding="utf-8").replace("\\n", " "))]
    assert not found, "the source articles called seeds:\n" + "\n".join(found)


def test_the_article_wording_check_can_fail():
    assert _ARTICLE_AS_SEED.search("as seed 001 says") and _ARTICLE_AS_SEED.search("the seeds' table")
    assert _ARTICLE_AS_SEED.search("The 2024 seed's formats") and _ARTICLE_AS_SEED.search('f"seed\'s $1.00/M')
    assert not _ARTICLE_AS_SEED.search("toy_seed: int = 0  # the seed parameter") and not _ARTICLE_AS_SEED.search("seed=3")
