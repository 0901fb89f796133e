"""``ftlab run`` builds the toy world first, as a timed step of its own, only when the selected notebooks use the toy
and no toy is cached for the seed; ``summary.json`` and ``summary.md`` report that step and the total."""

import json

from ftlab.runner import NotebookResult, _write_summary, build_toy_first, declared_parameters
from tests.helpers import NOTEBOOKS


def _declared(pattern: str):
    return {p: declared_parameters(p) for p in sorted(NOTEBOOKS.glob(pattern))}


def test_the_toy_step_is_skipped_when_cached_not_the_toy_or_not_used(toy_models):
    books = _declared("0[0-2]_*.ipynb")  # 00 declares toy_seed; 01 and 02 do not
    assert any("toy_seed" in d for d in books.values())
    from ftlab.toymodel import toy_is_cached

    assert toy_is_cached(0) and not toy_is_cached(9)  # toy_models built seed 0; nothing builds seed 9
    lines: list[str] = []
    assert build_toy_first({}, books, log=lines.append) is None  # seed 0 is cached (toy_models built it)
    assert build_toy_first({"model_id": "HuggingFaceTB/SmolLM2-135M-Instruct", "toy_seed": 9}, books) is None
    assert build_toy_first({"toy_seed": [1, 2]}, books) is None  # a bad seed: the notebooks name it, not the step
    assert build_toy_first({"toy_seed": True}, books) is None
    no_toy = {p: d for p, d in books.items() if "toy_seed" not in d}
    assert no_toy and build_toy_first({"toy_seed": 9}, no_toy) is None  # seed 9 is not cached, but nothing uses it
    assert lines == []  # nothing was built, nothing said


def test_summary_reports_the_toy_step_and_the_total(tmp_path):
    results = [NotebookResult("00_start_here.ipynb", "ok", 4.5), NotebookResult("01_x.ipynb", "ok", 1.0)]
    toy = {"seconds": 52.3, "seed": 0, "path": "/cache/toy-llama/seed0-abc"}
    _write_summary(tmp_path, results, {}, toy)
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["toy_build"] == toy and summary["total_seconds"] == 57.8
    md = (tmp_path / "summary.md").read_text()
    assert "Toy world (seed 0) built in 52.3 s, before the notebooks." in md
    assert "| total (toy build included) | | 57.8 |" in md
    _write_summary(tmp_path, results, {})  # a warm cache: no toy line, the total of the notebooks
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert "toy_build" not in summary and summary["total_seconds"] == 5.5
    assert "Toy world" not in (tmp_path / "summary.md").read_text()
