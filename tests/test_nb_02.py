"""Notebook 02 (cost math) runs headless and records the right figures."""

from __future__ import annotations

import pytest

from tests.helpers import widget_views

pytestmark = pytest.mark.notebook


def test_02_worked_example(run_notebook):
    res = run_notebook("02")
    f = res.figures
    assert f["training_tokens"] == 4_500_000
    costs = f["training_costs_usd"]
    assert costs["gpt-4.1"] == 13.50
    assert costs["gpt-4.1-mini"] == 3.60
    assert costs["gpt-4o"] == 112.50
    assert costs["together-lora-8b"] == 20.25
    assert costs["a100-40gb-spot"] == 3.00
    assert costs["bedrock-open-models"] is None  # unknown, not zero
    assert costs["o4-mini"] is None  # RFT: billed per hour of its loop, so no figure without hours
    assert costs["foundry-managed-a100-80gb"] == 7.34  # per training hour: 2 h (A100 throughput) × $3.67
    assert f["gpu_hours"]["a100-40gb-spot"] == 2.0
    assert f["self_hosted_with_setup_usd"]["a100-40gb-spot"] == 4.50  # 1 h of setup on the meter
    assert "gpt-5.4 cannot be fine-tuned" in f["gpt_5_4_error"] and "gpt-4.1-mini" in f["gpt_5_4_error"]
    # Side by side: the article's figures (above, unchanged) and OpenAI's list prices from the catalog.
    from ftlab.cost import load_catalog

    cat = load_catalog()
    side = f["seed_vs_provider_usd"]
    assert set(side) == {"gpt-4.1", "gpt-4.1-mini"}
    for entry, (seed, listed) in side.items():
        assert seed == costs[entry]  # the article's worked example, exactly
        assert listed == round(4_500_000 * cat.entry(entry)["provider_price"]["training_usd_per_1m"] / 1e6, 2)
        assert listed >= 5 * seed  # the list price is several times the article's (inference-input) figure
    assert res.seconds < 60


def test_02_exact_toy_tokens_and_break_even(run_notebook):
    from ftlab.cost import dataset_tokens
    from ftlab.data import support_splits

    f = run_notebook("02").figures
    train = support_splits()["train"]
    assert f["toy_train_examples"] == len(train)
    assert f["toy_train_tokens"] == dataset_tokens(train, "gpt-4.1-mini").total
    assert f["toy_train_tokens_cl100k"] != f["toy_train_tokens"]
    assert f["toy_training_tokens"] == 3 * f["toy_train_tokens"]
    assert f["toy_training_cost_usd"] == round(f["toy_training_tokens"] * 0.80 / 1e6, 2)
    assert f["api_usd_per_1000_requests"] == 1.04  # (500 × $0.80 + 200 × $3.20) / 1e6 × 1000
    assert f["break_even_requests_per_month"] == round(3.50 * 730 / 0.00104)
    assert f["break_even_with_data_sharing"] is None  # the discount keeps the API cheaper
    assert f["break_even_requests_per_month"] < f["gpu_capacity_requests_per_month"]


def test_02_widgets_render(run_notebook):
    res = run_notebook("02")
    assert widget_views(res.output) == 1


def test_02_parameters_change_the_figures(run_notebook):
    f = run_notebook("02", epochs=1, model="gpt-4.1", as_of="2027-02-01").figures
    assert f["training_tokens"] == 1_500_000 and f["training_costs_usd"]["gpt-4.1"] == 4.50
    av = f["availability"]  # marked, not hidden: the closed rows keep their prices
    assert av["gpt-4.1"] == ["closed", "2027-01-06"] and av["gpt-4.1-nano"] == ["retired", "2026-10-23"]
    assert av["azure-openai-gpt-4.1"] == ["open", None] and av["a100-40gb-spot"] == ["open", None]
    assert f["toy_training_cost_usd"] == round(f["toy_train_tokens"] * 3.0 / 1e6, 2)
    assert f["break_even_with_data_sharing"] is not None  # gpt-4.1 costs enough that a GPU pays even at -50%


@pytest.mark.parametrize(("params", "ename", "text"), [
    ({"model": "gpt-5.4"}, "ParameterError", "gpt-5.4 cannot be fine-tuned"),
    ({"model": "gpt-9"}, "ParameterError", "unknown model 'gpt-9'"),
    ({"epochs": -1}, "ParameterError", "'epochs' = -1 is out of range"),
    ({"as_of": "soon"}, "ParameterError", "as_of 'soon' is not a date"),
])
def test_02_bad_parameters_fail_in_one_line(run_notebook, params, ename, text):
    res = run_notebook("02", expect_ok=False, **params)
    assert res.status == "failed" and res.error["ename"] == ename and text in res.error["evalue"]
    assert res.error["first_line"] == "import ftlab"  # the check cell right after the parameters
