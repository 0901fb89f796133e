"""Exercise notebooks: markers parse, the solutions version computes what the notebook computes and
passes every check when run, each check rejects wrong answers, and the CLI writes the notebooks."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest

from ftlab import check
from ftlab.errors import FtlabError
from ftlab.exercises import (
    ANSWER_TAG,
    CHECK_TAG,
    exercise_notebook,
    find_exercises,
    strip_markers,
    write_exercises,
)
from tests.helpers import BOOKS, NOTEBOOKS, ROOT

WITH_EXERCISES = [b for b in BOOKS if find_exercises(b)]


def _code(nb: dict) -> list[str]:
    return ["".join(c["source"]) if isinstance(c["source"], list) else c["source"]
            for c in nb["cells"] if c["cell_type"] == "code"]


def _tags(cell: dict) -> list[str]:
    return cell.get("metadata", {}).get("tags", [])


# ------------------------------------------------------------------------------------------------
# The course's exercises
# ------------------------------------------------------------------------------------------------


def test_every_registered_check_is_used_once_across_notebooks_02_to_08():
    found = [e for b in BOOKS for e in find_exercises(b)]
    names = [e.name for e in found]
    assert sorted(names) == sorted(check.EXERCISES), "each check in ftlab.check needs exactly one marked solution"
    for e in found:
        assert e.notebook[:2] == e.spec.notebook, f"{e.name} is registered for notebook {e.spec.notebook}, found in {e.notebook}"
        assert "02" <= e.notebook[:2] <= "08"
        assert len(e.solution.splitlines()) <= 6, f"{e.name}: keep solution regions small"
    assert len({e.notebook for e in found}) >= 3


@pytest.mark.parametrize("path", WITH_EXERCISES, ids=lambda p: p.stem)
def test_solutions_version_runs_the_same_code_as_the_notebook(path):
    """Markers are comments: the notebook without them is the solutions version without its check cells."""
    original = json.loads(path.read_text())
    key, exercises = exercise_notebook(path, solutions=True)
    kept = [c for c in key["cells"] if CHECK_TAG not in _tags(c)]
    assert "\n".join(_code({"cells": kept})).split() == "\n".join(strip_markers(s) for s in _code(original)).split()
    assert len([c for c in key["cells"] if CHECK_TAG in _tags(c)]) == len(exercises)
    first = next(c for c in key["cells"] if c["cell_type"] == "code")
    assert "parameters" in _tags(first), "the parameters cell must stay the first code cell"
    nbformat.validate(nbformat.reads(json.dumps(key), as_version=4))


@pytest.mark.parametrize("path", WITH_EXERCISES, ids=lambda p: p.stem)
def test_exercise_version_hides_every_solution(path):
    nb, exercises = exercise_notebook(path)
    answers = [c for c in nb["cells"] if ANSWER_TAG in _tags(c)]
    assert len(answers) == len(exercises)
    for cell, ex in zip(answers, exercises, strict=True):
        src = "".join(cell["source"])
        assert ex.solution.strip() not in src
        for name in ex.answers:
            assert f"{name} = ..." in src
    assert all("SOLUTION" not in s for s in _code(nb))


@pytest.mark.notebook
@pytest.mark.slow
@pytest.mark.parametrize("path", WITH_EXERCISES, ids=lambda p: p.stem)
def test_solutions_notebook_runs_and_every_check_passes(path, run_notebook):
    """The default run of a notebook with exercises *is* its solutions version (tests/conftest.py): one execution."""
    result = run_notebook(path.name[:2])
    for ex in find_exercises(path):
        assert result.figures.get(f"exercise:{ex.name}") is True, f"check {ex.name} did not pass"


@pytest.mark.notebook
def test_unanswered_exercise_stops_the_notebook_at_its_check(tmp_path):
    from ftlab.runner import execute_notebook

    book = next(b for b in WITH_EXERCISES if b.name.startswith("02"))
    written, exercises = write_exercises([book], tmp_path / "ex")
    result = execute_notebook(written[0], tmp_path / "executed.ipynb", progress=False, cwd=tmp_path / "ex")
    assert result.status == "failed"
    assert result.error["ename"] == "ExerciseIncorrect"
    assert "not answered yet" in result.error["evalue"] and exercises[0].answers[0] in result.error["evalue"]
    assert result.error["first_line"] == "import ftlab.check"


# ------------------------------------------------------------------------------------------------
# The checks, called directly: right answers pass, wrong ones fail with a hint
# ------------------------------------------------------------------------------------------------


def test_training_tokens_check():
    assert check.training_tokens(4_500_000, 5000, 300, 3) is True
    assert check.training_tokens(4_500_000.0, 5000, 300, 3) is True
    with pytest.raises(check.ExerciseIncorrect, match="one pass over the data"):
        check.training_tokens(1_500_000, 5000, 300, 3)
    with pytest.raises(check.ExerciseIncorrect, match="is not it"):
        check.training_tokens(4_500_001, 5000, 300, 3)
    with pytest.raises(check.ExerciseIncorrect, match="not answered yet: set tokens"):
        check.training_tokens(..., 5000, 300, 3)
    with pytest.raises(check.ExerciseIncorrect, match="whole number"):
        check.training_tokens("4500000", 5000, 300, 3)


def test_billing_tokens_check(tmp_path):
    from ftlab.sandbox.workflow import write_job_files
    from ftlab.validate import validate_file

    files = write_job_files(tmp_path, 40, 5)
    s = validate_file(files["train"], model="gpt-4.1-mini", n_epochs=3).stats
    right = sum(min(e["tokens"], s["max_tokens_per_example"]) for e in s["examples"]) * 3
    assert right == s["trained_tokens"] > 0
    assert check.billing_tokens(right, files["train"], "gpt-4.1-mini", 3) is True
    with pytest.raises(check.ExerciseIncorrect, match="one epoch"):
        check.billing_tokens(s["billing_tokens"], files["train"], "gpt-4.1-mini", 3)
    with pytest.raises(check.ExerciseIncorrect, match="off by"):
        check.billing_tokens(right + 7, files["train"], "gpt-4.1-mini", 3)
    # A limit smaller than the examples: the uncapped sum is the classic mistake.
    s_cl = validate_file(files["train"], encoding="cl100k_base", max_tokens=4096).stats
    assert s_cl["billing_tokens"] > 0


def test_billing_tokens_check_catches_the_uncapped_sum(tmp_path):
    from ftlab.data import support_splits, write_jsonl
    from ftlab.validate import validate_file

    rows = support_splits()["train"][:12]
    long = {"messages": [{"role": "user", "content": "word " * 70_000}, {"role": "assistant", "content": "ok"}]}
    path = write_jsonl([*rows, long], tmp_path / "long.jsonl")
    s = validate_file(path, model="gpt-4.1-mini", n_epochs=2).stats
    assert s["n_over_token_limit"] == 1
    uncapped = sum(e["tokens"] for e in s["examples"]) * 2
    with pytest.raises(check.ExerciseIncorrect, match="cap each example"):
        check.billing_tokens(uncapped, path, "gpt-4.1-mini", 2)
    assert check.billing_tokens(s["trained_tokens"], path, "gpt-4.1-mini", 2)


@pytest.fixture(scope="module")
def tiny_llama():
    from transformers import LlamaConfig, LlamaForCausalLM

    cfg = LlamaConfig(vocab_size=64, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                      num_attention_heads=2, num_key_value_heads=1)
    return LlamaForCausalLM(cfg)


def test_lora_target_modules_check(tiny_llama):
    seven = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    assert check.lora_target_modules(seven, tiny_llama) is True
    assert check.lora_target_modules(tuple(reversed(seven)), tiny_llama) is True
    with pytest.raises(check.ExerciseIncorrect, match="MLP"):
        check.lora_target_modules(seven[:4], tiny_llama)
    with pytest.raises(check.ExerciseIncorrect, match="not one of the seven"):
        check.lora_target_modules([*seven, "lm_head"], tiny_llama)
    with pytest.raises(check.ExerciseIncorrect, match="no module of this model"):
        check.lora_target_modules([*seven[:6], "w2"], tiny_llama)
    with pytest.raises(check.ExerciseIncorrect, match="list of module names"):
        check.lora_target_modules("q_proj,k_proj", tiny_llama)
    with pytest.raises(check.ExerciseIncorrect, match="twice"):
        check.lora_target_modules([*seven, "q_proj"], tiny_llama)
    with pytest.raises(check.ExerciseIncorrect, match="not answered"):
        check.lora_target_modules(..., tiny_llama)


REAL_CURVES = ROOT / "tests" / "data" / "curves" / "real"


# plateau05: notebook 05's plateau run. The older plateau_seed0 run's validation loss still fell 8.8% over its last
# third: healthy by the diagnoser's fitted definition (a curve that still falls at a useful rate is healthy).
@pytest.mark.parametrize("pattern,folder", [("healthy", "healthy_seed0"), ("plateau", "plateau05_seed0"),
                                            ("overfitting", "overfitting_seed0"), ("flat", "flat_seed0"),
                                            ("unstable", "unstable_seed0")])
def test_loss_pattern_check_on_real_toy_runs(pattern, folder):
    state = REAL_CURVES / folder / "trainer_state.json"
    assert check.loss_pattern(pattern, state) is True
    assert check.loss_pattern(pattern.upper(), state) is True
    wrong = "flat" if pattern != "flat" else "healthy"
    with pytest.raises(check.ExerciseIncorrect, match=f"not {wrong}"):
        check.loss_pattern(wrong, state)


def test_loss_pattern_check_rejects_non_codes():
    state = REAL_CURVES / "flat_seed0" / "trainer_state.json"
    with pytest.raises(check.ExerciseIncorrect, match="not one of the articles' five codes"):
        check.loss_pattern("LR too low", state)
    with pytest.raises(check.ExerciseIncorrect, match="not answered"):
        check.loss_pattern(..., state)


def test_base_only_correct_check():
    base = [True, True, False, True, False, True]
    tuned = [True, False, True, False, False, True]
    assert check.base_only_correct([1, 3], base, tuned) is True
    assert check.base_only_correct((1, 3), base, tuned) is True
    assert check.base_only_correct([], [True, False], [True, True]) is True
    for wrong, message in [([2], "ft_only_correct"), ([3, 1], "increasing order"), ([1], "1 missing"),
                           ([1, 2, 3], "1 index\\(es\\) too many"), (2, "list of indices"),
                           ([False, True, False, True, False, False], "True/False"), (["1", "3"], "integer")]:
        with pytest.raises(check.ExerciseIncorrect, match=message):
            check.base_only_correct(wrong, base, tuned)


def test_merged_weight_check(tiny_llama):
    import copy

    import torch
    from peft import LoraConfig, get_peft_model

    model = get_peft_model(copy.deepcopy(tiny_llama), LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj"]))
    layer = model.base_model.model.model.layers[0].self_attn.q_proj
    torch.manual_seed(0)
    with torch.no_grad():
        layer.lora_B["default"].weight.normal_()
    w, a, b, s = (layer.base_layer.weight, layer.lora_A["default"].weight, layer.lora_B["default"].weight,
                  layer.scaling["default"])
    assert s == 2.0
    with torch.no_grad():
        right = w + s * b @ a
        merged = copy.deepcopy(model).merge_and_unload().model.layers[0].self_attn.q_proj.weight
    assert check.merged_weight(right, layer) is True
    assert check.merged_weight(right, layer, merged) is True
    for wrong, message in [(w + b @ a, "scaled by lora_alpha / r = 2"), (s * b @ a, "only the update"),
                           (w, "off by"), ((s * a.T @ b.T), "off by"), (right[:, :4], "B · A, not A · B"),
                           (right.numpy(), "torch tensor")]:
        with pytest.raises(check.ExerciseIncorrect, match=message):
            check.merged_weight(wrong, layer)
    with pytest.raises(check.ExerciseIncorrect, match="not the merged model's weight"):
        check.merged_weight(right, layer, torch.zeros_like(right))


def test_failure_defence_check():
    from ftlab.failures import MODES

    right = {"catastrophic_forgetting": "D", "overfitting": "C", "knowledge_memorization": "A",
             "mode_collapse": "E", "safety_degradation": "B"}
    assert set(right) == set(MODES) and set(right.values()) == set(check.FAILURE_DEFENCES)
    assert check.failure_defence(right) is True
    assert check.failure_defence({k.replace("_", " ").title(): v.lower() for k, v in right.items()}) is True
    swapped = {**right, "catastrophic_forgetting": "B", "safety_degradation": "D"}
    for wrong, message in [(swapped, "2 of 5 wrong, e.g. catastrophic_forgetting: its symptom"),
                           ({**right, "overfitting": "F"}, "letters from A-E"),
                           ({k: v for k, v in right.items() if k != "mode_collapse"}, "missing: mode_collapse"),
                           ({**right, "hallucination": "A"}, "unknown mode"),
                           (["D", "C", "A", "E", "B"], "should be a dict")]:
        with pytest.raises(check.ExerciseIncorrect, match=message):
            check.failure_defence(wrong)


def test_a_passing_check_records_its_figure():
    from ftlab.figures import recorded

    check.training_tokens(6, 1, 2, 3)
    assert recorded()["exercise:training_tokens"] is True


# ------------------------------------------------------------------------------------------------
# Marking mistakes are one-line errors naming the cell and line
# ------------------------------------------------------------------------------------------------


def _book(tmp_path: Path, *cells: str) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# T"), nbformat.v4.new_code_cell("x: int = 1  # x")]
    nb.cells[1].metadata["tags"] = ["parameters"]
    nb.cells += [nbformat.v4.new_code_cell(c) for c in cells]
    path = tmp_path / "99_test.ipynb"
    nbformat.write(nb, path)
    return path


@pytest.mark.parametrize(("cell", "message"), [
    ("# BEGIN SOLUTION training_tokens(t, 1, 2, 3)\nt = 6\n", "never closed"),
    ("t = 6\n# END SOLUTION\n", "without a BEGIN"),
    ("# BEGIN SOLUTION training_tokens(t, 1, 2, 3)\n# BEGIN SOLUTION training_tokens(t, 1, 2, 3)\n", "inside another"),
    ("# BEGIN SOLUTION no_such_check(t)\nt = 6\n# END SOLUTION\n", "no check named 'no_such_check'"),
    ("# BEGIN SOLUTION training_tokens(t, 1, 2\nt = 6\n# END SOLUTION\n", "not valid Python"),
    ("# BEGIN SOLUTION\nt = 6\n# END SOLUTION\n", "write the check call"),
    ("# BEGIN SOLUTION training_tokens(t, 1, 2, 3)\nprint(6)\n# END SOLUTION\n", "assigns no variable"),
    ("# BEGIN SOLUTION training_tokens(6, 1, 2, 3)\nt = 6\n# END SOLUTION\n", "does not use t"),
    ("# BEGIN SOLUTION training_tokens(t, 1, 2, 3)\n# END SOLUTION\n", "empty"),
    ("if True:\n    # BEGIN SOLUTION training_tokens(t, 1, 2, 3)\n    t = 6\n    # END SOLUTION\n", "column 0"),
    ("f(\n# BEGIN SOLUTION training_tokens(t, 1, 2, 3)\nt = 6\n# END SOLUTION\n)\n", "complete statements"),
])
def test_bad_markers_are_one_line_errors(tmp_path, cell, message):
    path = _book(tmp_path, cell)
    with pytest.raises(FtlabError, match=message) as info:
        find_exercises(path)
    assert "99_test.ipynb cell 2" in str(info.value) and "\n" not in str(info.value)


def test_a_region_in_the_middle_of_a_cell_splits_it(tmp_path):
    path = _book(tmp_path, "a = 2\n# BEGIN SOLUTION training_tokens(t, a, 3, x)\nt = a * 3 * x\n# END SOLUTION\nprint(t)")
    nb, (ex,) = exercise_notebook(path)
    code = _code(nb)
    assert code[1:] == ["a = 2", ex.answer_stub, "import ftlab.check\nftlab.check.training_tokens(t, a, 3, x);", "print(t)"]
    assert ex.answers == ["t"] and ex.line == 2
    with pytest.raises(FtlabError, match="parameters cell cannot hold"):
        bad = nbformat.read(path, as_version=4)
        bad.cells[1].source = "# BEGIN SOLUTION training_tokens(x, 1, 1, 1)\nx: int = 1  # x\n# END SOLUTION"
        nbformat.write(bad, path)
        find_exercises(path)


# ------------------------------------------------------------------------------------------------
# The command
# ------------------------------------------------------------------------------------------------


def test_cli_lists_and_writes(cli, tmp_path):
    code, out, _ = cli("exercises", "--list", "--json", "--notebooks", str(NOTEBOOKS))
    assert code == 0
    listed = json.loads(out)
    assert {e["name"] for e in listed} == set(check.EXERCISES)
    code, out, _ = cli("exercises", "--out", str(tmp_path / "ex"), "--notebooks", str(NOTEBOOKS), "--only", "02")
    assert code == 0 and "1 exercises in 1 exercise notebooks" in out
    assert sorted(p.name for p in (tmp_path / "ex").iterdir()) == ["02_cost_math.ipynb", "EXERCISES.md"]
    assert "training_tokens" in (tmp_path / "ex" / "EXERCISES.md").read_text()
    code, _, err = cli("exercises", "--notebooks", str(NOTEBOOKS))
    assert code == 2 and "--out" in err and "Traceback" not in err
    code, _, err = cli("exercises", "--out", str(tmp_path / "x"), "--notebooks", str(NOTEBOOKS), "--only", "01")
    assert code == 2 and "nothing to write" in err


def test_instructor_guide_covers_every_notebook_and_exercise():
    guide = (ROOT / "docs" / "instructor_guide.md").read_text()
    for book in BOOKS:
        number, _, rest = book.stem.partition("_")
        assert f"| {number} {rest.split('_')[0]}" in guide.lower(), f"the guide's timing table lacks {book.stem}"
        assert f"**{number} " in guide, f"the guide's learning goals lack {book.stem}"
    for name in check.EXERCISES:
        assert f"`{name}`" in guide, f"the guide does not mention exercise {name}"
    assert "estimate" in guide.lower() and "measured" in guide.lower()
