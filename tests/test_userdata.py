"""The learner's own data: a file the kit has never seen (IT helpdesk triage) trains; a broken file is refused
with each bad line named, one line, no traceback, nothing trained."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ftlab import ParameterError
from ftlab.userdata import load_user_data, split_rows

DATA = Path(__file__).parent / "data" / "userdata"
GOOD, BROKEN = DATA / "helpdesk_triage.jsonl", DATA / "helpdesk_broken.jsonl"


def _keys(rows):
    return {json.dumps(r["messages"]) for r in rows}


def test_fifteen_percent_held_out_deterministically_and_disjoint():
    train, evals = load_user_data(str(GOOD))
    n = len(GOOD.read_text().splitlines())
    assert len(train) + len(evals) == n and len(evals) == round(0.15 * n)
    assert not _keys(train) & _keys(evals)  # held out: never trained on
    again = load_user_data(str(GOOD))
    assert [r["line"] for r in again[1]] == [r["line"] for r in evals]  # the same split every time
    other = load_user_data(str(GOOD), seed=1)[1]
    assert [r["line"] for r in other] != [r["line"] for r in evals]


def test_duplicates_stay_on_one_side():
    rows = [{"messages": [{"role": "user", "content": f"q{i % 5}"}, {"role": "assistant", "content": "a"}], "line": i}
            for i in range(20)]
    train, evals = split_rows(rows, 0.2)
    assert evals and not _keys(train) & _keys(evals)


def test_an_eval_file_that_overlaps_train_is_refused(tmp_path):
    lines = GOOD.read_text().splitlines()
    ev = tmp_path / "eval.jsonl"
    ev.write_text("\n".join(lines[:12]) + "\n")
    with pytest.raises(ParameterError, match=r"eval_file: line\(s\) 1, 2, 3"):
        load_user_data(str(GOOD), str(ev))
    clean = tmp_path / "clean_train.jsonl"
    clean.write_text("\n".join(lines[12:]) + "\n")
    train, evals = load_user_data(str(clean), str(ev))
    assert len(evals) == 12 and len(train) == len(lines) - 12


def test_a_broken_file_names_each_bad_line():
    with pytest.raises(ParameterError) as err:
        load_user_data(str(BROKEN))
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith("train_file: ")
    for line, code in [(3, "invalid_json"), (7, "missing_assistant"), (9, "unrecognized_role")]:
        assert f"line {line}: " in msg and code in msg
    assert "nothing was trained" in msg
    with pytest.raises(ParameterError, match=r"eval_file: .*no such file"):
        load_user_data(str(GOOD), "no/such.jsonl")


def _ftlab(*args, cwd):
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])}
    return subprocess.run([sys.executable, "-m", "ftlab", *args], capture_output=True, text=True, cwd=cwd, env=env,
                          timeout=600)


def test_ftlab_train_refuses_a_broken_file_in_one_line(tmp_path):
    cfg = tmp_path / "run.yaml"
    cfg.write_text(f"quantization: none\ntrain_file: {BROKEN}\nmax_steps: 2\nreport_to: none\n"
                   f"output_dir: {tmp_path / 'out'}\n")
    proc = _ftlab("train", "--config", str(cfg), cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "line 3: " in proc.stderr and "line 7: " in proc.stderr and "line 9: " in proc.stderr
    assert not (tmp_path / "out").exists()  # nothing trained


@pytest.mark.slow
def test_ftlab_train_on_a_file_the_kit_has_never_seen(tmp_path):
    cfg = tmp_path / "run.yaml"
    cfg.write_text("quantization: none\nmax_steps: 6\neval_steps: 3\nsave_steps: 6\nlogging_steps: 1\n"
                   "per_device_train_batch_size: 8\nlearning_rate: 5.0e-3\nreport_to: none\noverfit_patience: null\n"
                   f"output_dir: {tmp_path / 'out'}\n")
    proc = _ftlab("train", "--config", str(cfg), "--train-file", str(GOOD), "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads(proc.stdout[proc.stdout.index("{\n  \"processes\""):])
    assert summary["global_step"] == 6 and len(summary["eval_loss"]) == 2
    assert summary["eval_loss"][-1][1] < summary["eval_loss"][0][1]  # it learns the triage format
    card = json.loads((tmp_path / "out" / "run_card.json").read_text())
    assert card["data"]["file"] == str(GOOD) and card["data"]["n_eval"] == 7


def test_notebook_04_stops_a_broken_file_in_its_check_cell(monkeypatch):
    from tests.helpers import NOTEBOOKS
    from tests.test_bad_params import run_check_cell

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    msg = str(run_check_cell(NOTEBOOKS / "04_qlora_training.ipynb", train_file=str(BROKEN)))
    assert msg.startswith("train_file: ") and "line 3: " in msg and "line 7: " in msg and "line 9: " in msg
