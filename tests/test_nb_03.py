"""Notebook 03 (the OpenAI path) runs headless against the sandbox and records the job's results."""

from __future__ import annotations

import secrets

import pytest

from ftlab.errors import ParameterError
from tests.helpers import NOTEBOOKS, notebook_path

pytestmark = pytest.mark.notebook


def test_03_defaults(run_notebook):
    res = run_notebook("03")
    f = res.figures
    assert f["api_mode"] == "sandbox"
    assert f["job_status"] == "succeeded"
    assert f["trained_tokens"] == f["expected_trained_tokens"] == 3 * f["billing_tokens"]
    assert f["hyperparameters"]["n_epochs"] == 3
    n = f["n_steps"]
    assert f["checkpoint_steps"] == [n, n * 2 // 3, n // 3]  # one per epoch, newest first
    assert f["final_train_loss"] < f["first_train_loss"] / 3
    assert f["final_valid_loss"] < 2.0
    assert f["base_scores"]["format"] == 0.0 and f["base_scores"]["intent"] == 0.0
    assert f["fine_tuned_scores"]["format"] >= 0.7 and f["fine_tuned_scores"]["intent"] >= 0.5
    assert f["malformed_errors"] == [[3, "invalid_json"], [5, "unrecognized_role"],
                                     [7, "example_missing_assistant_message"], [9, "message_missing_key"]]
    assert f["training_cost_usd"] == round(f["expected_trained_tokens"] * 0.80 / 1e6, 6)  # gpt-4.1-mini
    assert "gpt-4.1-mini" in f["fine_tunable_models"] and "gpt-5.4" in f["inference_only_models"]
    shared = f["data_sharing_inference_usd_per_1m"]
    assert shared["with"] == [x / 2 for x in shared["without"]]
    # The wind-down cells at the top: dates from the catalog; the OpenAI shape refused for a new
    # organisation, the AzureOpenAI client's same calls accepted by the same sandbox.
    from ftlab import cost

    assert f["wind_down_stages"] == ["2026-05-07", "2026-07-02", "2027-01-06"]
    assert f["wind_down_today"]["new"] == ["closed", "2026-05-07"]
    active = cost.availability("gpt-4.1-mini", org_status="active")
    assert f["wind_down_today"]["active"] == [active.status, active.date]
    assert f["winddown_openai_refusal"] == "fine_tuning_unavailable"
    assert f["winddown_azure_job"] in ("validating_files", "queued", "running")


def test_03_with_a_key_takes_the_real_api_path_and_never_leaks_it(tmp_path, monkeypatch):
    """With OPENAI_API_KEY (and the SDK's OPENAI_BASE_URL) set, the notebook uses the real-API code path.
    Pointed at a sandbox, it must succeed, and the key must appear nowhere in what it wrote."""
    from ftlab.runner import execute_notebook
    from ftlab.sandbox import Sandbox

    key = "sk-ftlabtest-" + secrets.token_hex(16)
    with Sandbox(tmp_path / "api") as sbx:
        monkeypatch.setenv("OPENAI_API_KEY", key)
        monkeypatch.setenv("OPENAI_BASE_URL", sbx.url)
        out = tmp_path / "03_with_key.ipynb"
        res = execute_notebook(notebook_path("03"), out, {"n_train": 40, "n_validation": 10, "n_epochs": 1,
                                                          "n_compare": 2, "poll_seconds": 0.5},
                               progress=False, cwd=NOTEBOOKS)
    assert res.status == "ok", res.error
    assert res.figures["api_mode"] == "openai" and res.figures["job_status"] == "succeeded"
    assert key not in out.read_text(encoding="utf-8")
    for p in (tmp_path / "api").rglob("*"):
        if p.is_file():
            assert key.encode() not in p.read_bytes(), p


def test_03_refuses_keys_and_inference_only_models_as_parameters(run_notebook):
    with pytest.raises(ParameterError, match="looks like a credential"):
        run_notebook("03", suffix="sk-proj-abcdefghijklmnop")
    res = run_notebook("03", model="gpt-5.4", expect_ok=False)
    assert res.error["ename"] == "ParameterError"
    assert "'model' = 'gpt-5.4' is not a valid choice" in res.error["evalue"]
