"""Notebook 01 (choose your path) runs headless and records the right figures."""

from __future__ import annotations

import pytest

from tests.helpers import widget_views

pytestmark = pytest.mark.notebook


def test_01_defaults(run_notebook):
    res = run_notebook("01")
    f = res.figures
    # Defaults: a new organisation, today (after 2026-05-07): OpenAI's self-serve route is closed to it,
    # so the chooser sends it to Azure OpenAI, which tunes the same models.
    assert f["recommended_path"] == "cloud_managed" and f["verdict"] == "fine_tune"
    assert f["recommended_platform"].startswith("Azure OpenAI in Microsoft Foundry")
    assert f["openai_availability"]["status"] == "closed" and f["openai_availability"]["date"] == "2026-05-07"
    assert f["runners_up"] == ["hf_qlora", "openai"]  # OpenAI listed last: ruled out by the date
    assert f["path_scores"]["cloud_managed"] > f["path_scores"]["hf_qlora"]
    assert f["answer_changes_that_flip_the_path"] >= 3
    assert f["scenario_paths"]["article 001's date (April 2026)"] == "openai"
    assert f["scenario_paths"]["an active OpenAI customer, 2026-12-02"] == "openai"
    assert f["scenario_paths"]["the same customer, 2027-01-06"] == "cloud_managed"
    assert f["catalog_skus_changed"] == 10  # every SKU changes between catalog versions: facts that change
    assert f["knowledge_words_found"] == ["current", "price", "SKU"]
    assert f["scenario_paths"]["regulated bank on AWS"] == "cloud_managed"
    assert f["scenario_paths"]["hospital, data on-prem, ML team"] == "hf_qlora"
    assert f["scenario_verdicts"]["catalog Q&A bot"] == "rag_or_tools"
    assert f["scenario_verdicts"]["no baseline yet"] == "prompt_first"
    assert widget_views(res.output) == 1  # the form rendered
    assert res.seconds < 60


def test_01_parameters_drive_it_headless(run_notebook):
    f = run_notebook("01", data_sensitivity="own_hardware", gpu_ops="team").figures
    assert f["recommended_path"] == "hf_qlora"
    assert f["scenario_paths"]["you (the parameters above)"] == "hf_qlora"
    f = run_notebook("01", goal="knowledge", openai_status="active", as_of="2026-12-02").figures
    assert f["verdict"] == "rag_or_tools" and f["recommended_path"] == "openai"  # active org: closing, still open
    assert f["openai_availability"] == {"status": "closing", "date": "2027-01-06", "as_of": "2026-12-02"}


def test_01_bad_parameter_fails_in_one_line(run_notebook):
    res = run_notebook("01", gpu_ops="lots", expect_ok=False)
    assert res.status == "failed"
    assert res.error["ename"] == "ParameterError"
    assert "'gpu_ops' = 'lots' is not a valid choice; valid values: none, some, team" in res.error["evalue"]
    res = run_notebook("01", as_of="02/12/2026", expect_ok=False)
    assert res.error["ename"] == "ParameterError" and "as_of '02/12/2026' is not a date" in res.error["evalue"]
