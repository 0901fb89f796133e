"""Notebook 09 runs headless with its defaults and records what it computed."""

import pytest

pytestmark = pytest.mark.notebook


def test_nb09_cloud_managed(run_notebook):
    figures = run_notebook("09").figures
    assert figures["conversion_counts"] == {"bedrock": 1020, "vertex": 1020, "together": 1020, "azure": 1020}
    assert figures["validation_ok"] == {"bedrock": True, "vertex": True, "together": True, "azure": True}
    assert figures["round_trip_equal"] == {"bedrock": True, "vertex": True, "together": True, "azure": True}
    assert figures["malformed_error_lines"] == [3, 5, 7, 9]
    assert figures["tool_call_support"] == {"bedrock": False, "vertex": True, "together": True, "azure": True}

    costs = figures["cost_table"]
    assert {r["platform"] for r in costs} == {"bedrock", "vertex", "azure", "together", "openai", "self-managed"}
    hourly = {r["platform"]: r["cost_usd"] for r in costs if r["pricing"] == "per_training_hour"}
    assert set(hourly) == {"vertex", "azure"} and all(c > 0 for c in hourly.values())
    per_token = [r for r in costs if r["pricing"] == "per_training_token" and r["cost_usd"] is not None]
    assert len(per_token) >= 6 and all(0 < r["cost_usd"] < 5 for r in per_token)  # a toy set: cents
    assert {r["confidence"] for r in costs} == {"seed", "unconfirmed", "provider"}  # provider: Azure OpenAI's docs
    azure_openai = [r for r in costs if r["entry"].startswith("azure-openai-")]
    assert len(azure_openai) == 5 and all(r["availability"] == "open" and r["cost_usd"] is None for r in azure_openai)
    assert figures["managed_caveat_usd"] == {"self_managed_usd": 3.0, "managed_low_usd": 6.0, "managed_high_usd": 9.0}

    assert figures["bedrock_job_status_history"] == ["InProgress", "InProgress", "InProgress", "Stopped"]
    assert figures["bedrock_final_status"] == "Stopped"
    assert figures["vertex_request_url"].endswith("/projects/my-gcp-project/locations/us-central1/tuningJobs")
    body = figures["together_request_body"]
    assert body["model"] == "meta-llama/Meta-Llama-3.1-8B-Instruct-Reference" and body["n_epochs"] == 3


def test_nb09_fewer_polls_and_one_epoch(run_notebook):
    figures = run_notebook("09", polls=1, epochs=1, as_of="2027-02-01").figures
    assert figures["bedrock_job_status_history"] == ["InProgress", "Stopped"]
    by = {r["entry"]: r for r in figures["cost_table"]}
    # After OpenAI's last stage the OpenAI rows are marked closed, not dropped; their prices stay.
    assert by["gpt-4.1"]["availability"] == by["gpt-4.1-mini"]["availability"] == "CLOSED since 2027-01-06"
    assert by["gpt-4.1-mini"]["cost_usd"] > 0
    assert by["azure-openai-gpt-4.1-mini"]["availability"] == "open" and by["together-lora-8b"]["availability"] == "open"
    assert figures["together_request_body"]["n_epochs"] == 1
