"""ftlab sweep: the grid, one papermill run per point, failed runs in the table, and the example
learning-rate sweep on notebook 04 (flat → healthy → unstable, real runs on the toy world)."""

from __future__ import annotations

import csv
import json

import pytest

from ftlab.errors import ParameterError
from ftlab.runner import NotebookResult, declared_parameters
from ftlab.sweep import Sweep, SweepRun, grid_points, parse_grid, run_sweep, write_table
from tests.helpers import BOOKS, NOTEBOOKS, notebook_path

# The README's example sweep: the same learning-rate grid on the toy world.
LR_SWEEP = [("learning_rate", "1e-5,5e-4,1.0"), ("lr_scheduler", "constant"), ("epochs", "0.25"),
            ("batch_size", "8"), ("eval_steps", "8")]


def test_parse_grid_reads_values_like_ftlab_run():
    grid = parse_grid([("learning_rate", "1e-5, 5e-4,1.0"), ("quantization", "4bit,none"), ("report_to", "none")])
    assert grid == {"learning_rate": [1e-05, 0.0005, 1.0], "quantization": ["4bit", "none"], "report_to": ["none"]}
    points = grid_points(grid)
    assert len(points) == 6
    assert points[0] == {"learning_rate": 1e-05, "quantization": "4bit", "report_to": "none"}
    assert points[1]["quantization"] == "none" and points[2]["learning_rate"] == 0.0005


@pytest.mark.parametrize(("specs", "message"), [
    ([], "at least one -p"),
    ([("lr", "1,2"), ("lr", "3")], "given twice"),
    ([("lr", "1,,2")], "empty value"),
    ([("lr", "1,1.0")], "repeated"),
    ([("2lr", "1")], "Python identifier"),
])
def test_parse_grid_rejects_bad_specs(specs, message):
    with pytest.raises(ParameterError, match=message):
        parse_grid(specs)


def test_every_parameter_of_every_notebook_can_be_swept():
    """papermill's parser skips lines whose comment holds '=' (04's quantization); the runner does not."""
    import ast

    for path in BOOKS:
        nb = json.loads(path.read_text())
        params = next(c for c in nb["cells"] if c["cell_type"] == "code")
        names = {n.target.id for n in ast.parse("".join(params["source"])).body}
        assert names <= set(declared_parameters(path)), path.name


def test_unknown_parameter_is_refused_before_anything_runs(tmp_path):
    with pytest.raises(ParameterError, match="has no parameter lr;"):
        run_sweep(notebook_path("02"), {"lr": [1, 2]}, out=tmp_path / "s")
    assert not (tmp_path / "s").exists()


@pytest.mark.notebook
def test_a_failed_run_is_in_the_table_and_the_sweep_goes_on(cli, tmp_path):
    out = tmp_path / "sweep02"
    code, stdout, err = cli("sweep", "02", "-p", "epochs", "0,2", "--out", str(out), "--notebooks", str(NOTEBOOKS))
    assert code == 1, err  # one run failed
    rows = list(csv.DictReader((out / "sweep.csv").open()))
    assert [r["epochs"] for r in rows] == ["0", "2"]
    assert [r["status"] for r in rows] == ["failed", "ok"]
    assert "ParameterError" in rows[0]["error"] and "epochs" in rows[0]["error"]
    assert rows[1]["error"] == "" and rows[1]["training_tokens"] == str(5000 * 300 * 2)
    md = (out / "sweep.md").read_text()
    assert "1 ok, 1 failed" in md and "| 0 | failed |" in md
    assert (out / "sweep.png").stat().st_size > 1000 and "sweep.png" in md
    data = json.loads((out / "sweep.json").read_text())
    assert data["ok"] is False and data["runs"][1]["figures"]["training_tokens"] == 3_000_000
    assert (out / "runs" / "002_epochs-2" / "02_cost_math.ipynb").exists()
    assert "| epochs | status |" in stdout


@pytest.mark.notebook
@pytest.mark.slow
def test_learning_rate_sweep_on_04_goes_flat_healthy_unstable(cli, tmp_path):
    pytest.importorskip("ftlab.diagnose")
    out = tmp_path / "lr_sweep"
    argv = ["sweep", "04", "--out", str(out), "--notebooks", str(NOTEBOOKS)]
    for name, values in LR_SWEEP:
        argv += ["-p", name, values]
    code, _, err = cli(*argv)
    assert code == 0, err
    rows = list(csv.DictReader((out / "sweep.csv").open()))
    assert [float(r["learning_rate"]) for r in rows] == [1e-5, 5e-4, 1.0]
    assert [r["diagnosis"] for r in rows] == ["flat", "healthy", "unstable"], rows
    assert rows[1]["action"] == "Continue training" and rows[0]["action"].startswith("Raise LR")
    flat, healthy, unstable = (float(r["final_eval_loss"]) for r in rows)
    assert healthy < 0.7 * flat and unstable != unstable  # NaN: the run diverged
    md = (out / "sweep.md").read_text()
    assert "`lr_scheduler` = constant" in md and "| flat |" in md and "sweep.png" in md
    assert (out / "sweep.png").stat().st_size > 5000


def test_a_re_run_after_a_stalled_kernel_shows_in_the_table(tmp_path):
    """A run whose kernel stalled once and that ``execute_notebook`` re-ran says so in sweep.md and sweep.json."""
    runs = []
    for i, retried in enumerate([False, True], 1):
        folder = tmp_path / "runs" / f"00{i}"
        folder.mkdir(parents=True)
        result = NotebookResult("02.ipynb", "ok", 1.0, {"x": i}, str(folder / "02.ipynb"), retried=retried,
                                retry_reason="the kernel stopped answering" if retried else "")
        runs.append(SweepRun({"epochs": i}, result, folder))
    files = write_table(Sweep("02.ipynb", {"epochs": [1, 2]}, runs, tmp_path, columns=["x"]))
    md = (tmp_path / "sweep.md").read_text()
    assert md.count("(re-run)") == 1 and "| 2 | ok (re-run) |" in md, md
    rows = json.loads((tmp_path / "sweep.json").read_text())["runs"]
    assert [r["retried"] for r in rows] == [False, True]
    assert "retry_reason" not in rows[0] and rows[1]["retry_reason"] == "the kernel stopped answering"
    assert files["csv"].endswith("sweep.csv")
