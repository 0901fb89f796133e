"""ftlab.cost and `ftlab cost`: the price catalog, the seeds' worked example, exact token counts, break-even."""

from __future__ import annotations

import json
import math
import shutil

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from ftlab import cost
from ftlab.errors import FtlabError, ParameterError

WORKED = 5_000 * 300 * 3
# Seed 001, "What Will It Cost?": 5,000 examples × 300 tokens × 3 epochs.
WORKED_COSTS = {"gpt-4.1": 13.50, "gpt-4.1-mini": 3.60, "gpt-4o": 112.50, "together-lora-8b": 20.25, "a100-40gb-spot": 3.00}
SEED_FINE_TUNABLE_OPENAI = ["gpt-4.1", "gpt-4.1-mini", "gpt-4.1-nano", "gpt-4o", "gpt-4o-mini", "o4-mini"]


@pytest.fixture(scope="module")
def cat():
    return cost.load_catalog()


# ---- the catalog ------------------------------------------------------------------------
def test_every_entry_has_source_and_as_of(cat):
    for item in cat.models + cat.gpus + cat.throughput + cat.serving:
        assert item.get("source") and item.get("as_of"), item


def test_fine_tunable_openai_models_are_the_seeds_list(cat):
    assert cat.fine_tunable("openai") == SEED_FINE_TUNABLE_OPENAI


def test_gpt_5_4_records_both_seeds(cat):
    for model in ("gpt-5.4", "gpt-5.4-mini"):
        entry = cat.entry(model, fine_tune=False)
        assert entry["fine_tunable"] is False
        assert "seed 001" in entry["source"] and "inference-only" in entry["source"]
        assert entry["earlier_claim"]["source"].startswith("seed 000")
        assert entry["earlier_claim"]["training_usd_per_1m"] > 0


def test_catalog_covers_every_path_and_gpu(cat):
    providers = {m["provider"] for m in cat.models}
    assert {"openai", "together", "vertex", "bedrock", "foundry"} <= providers
    assert {g["id"] for g in cat.gpus} == {"a100-40gb-spot", "a100-40gb-on-demand", "rtx-4090", "h100-80gb"}
    assert cat.providers["openai"]["data_sharing_inference_discount"] == 0.5


def test_catalog_ships_as_package_data():
    import tomllib

    from tests.conftest import ROOT

    globs = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["ftlab"]
    assert "catalog/*.yaml" in globs
    assert cost.DEFAULT_CATALOG.is_file() and cost.DEFAULT_CATALOG.parent.name == "catalog"


# ---- the worked example -------------------------------------------------------------------
def test_training_tokens_formula():
    assert cost.training_tokens(5_000, 300, 3) == 4_500_000


@pytest.mark.parametrize(("entry", "usd"), sorted(WORKED_COSTS.items()))
def test_worked_example_exact(entry, usd):
    assert cost.cost_for(entry, WORKED).training_cost_usd == usd


def test_a100_spot_is_two_hours_at_1_50():
    row = cost.cost_for("a100-40gb-spot", WORKED)
    assert row.gpu_hours == 2.0
    assert cost.gpu_hours(WORKED, "a100-40gb-spot") == 2.0
    assert row.rate == "$1.50/h × 2.00 h"


def test_setup_hours_are_billed_on_self_hosted_rows_only():
    rows = {r.entry: r for r in cost.training_costs(WORKED, setup_hours=1.0)}
    assert rows["a100-40gb-spot"].training_cost_usd == 4.50  # (2 h + 1 h) × $1.50
    assert rows["gpt-4.1"].training_cost_usd == 13.50


def test_one_row_per_fine_tunable_entry(cat):
    rows = cost.training_costs(WORKED)
    assert [r.entry for r in rows] == cat.fine_tunable() + [g["id"] for g in cat.gpus]
    unknown = {r.entry for r in rows if r.training_cost_usd is None}
    assert unknown == {"o4-mini", "vertex-gemini-2.5-flash", "bedrock-custom", "foundry-custom"}
    assert all("check current docs" in r.rate or "hour" in r.rate for r in rows if r.entry in unknown)


@settings(max_examples=50, deadline=None)
@given(st.integers(1, 100_000), st.integers(1, 4_000), st.integers(1, 10))
def test_per_token_cost_is_price_times_tokens(examples, per_example, epochs):
    tokens = cost.training_tokens(examples, per_example, epochs)
    assert cost.cost_for("gpt-4.1-mini", tokens).training_cost_usd == round(tokens * 0.80 / 1e6, 2)
    assert cost.cost_for("a100-40gb-spot", tokens).training_cost_usd == round(tokens / 625 / 3600 * 1.5, 2)


# ---- bad input ----------------------------------------------------------------------------
def test_negative_epochs_one_line():
    with pytest.raises(ParameterError, match=r"^parameter 'epochs' = -1 is out of range: expected int >= 1$"):
        cost.training_tokens(5_000, 300, -1)


def test_unknown_model_names_choices():
    with pytest.raises(ParameterError) as err:
        cost.cost_for("llama-9000", WORKED)
    msg = str(err.value)
    assert "unknown model 'llama-9000'" in msg and "gpt-4.1-mini" in msg and "a100-40gb-spot" in msg
    assert "\n" not in msg


@pytest.mark.parametrize("model", ["gpt-5.4", "gpt-5.4-mini"])
def test_not_fine_tunable_names_alternatives(model):
    with pytest.raises(ParameterError) as err:
        cost.cost_for(model, WORKED)
    msg = str(err.value)
    assert f"{model} cannot be fine-tuned" in msg
    assert all(m in msg for m in SEED_FINE_TUNABLE_OPENAI)
    assert "\n" not in msg


def test_fine_tuned_name_resolves_to_its_base(cat):
    assert cat.entry("ft:gpt-4.1-mini-2025-04-14:acme::abc123")["id"] == "gpt-4.1-mini"
    assert cat.entry("gpt-4o-2024-08-06")["id"] == "gpt-4o"


def test_catalog_is_data_edit_without_code(tmp_path, cli):
    data = yaml.safe_load(cost.DEFAULT_CATALOG.read_text())
    for m in data["models"]:
        if m["id"] == "gpt-4.1":
            m["training_usd_per_1m"] = 5.0
    mine = tmp_path / "prices.yaml"
    mine.write_text(yaml.safe_dump(data))
    assert cost.cost_for("gpt-4.1", WORKED, catalog=cost.load_catalog(mine)).training_cost_usd == 22.5
    code, out, _ = cli("cost", "--examples", "5000", "--tokens-per-example", "300", "--epochs", "3",
                       "--model", "gpt-4.1", "--json", "--catalog", str(mine))
    assert code == 0 and json.loads(out)["rows"][0]["training_cost_usd"] == 22.5


def test_broken_catalog_is_one_line(tmp_path):
    bad = tmp_path / "prices.yaml"
    shutil.copy(cost.DEFAULT_CATALOG, bad)
    bad.write_text(bad.read_text().replace("  - id: gpt-4o\n", "  - id: gpt-4o\n    oops: [\n", 1))
    with pytest.raises(FtlabError, match=r"prices.yaml line \d+: not valid YAML"):
        cost.load_catalog(bad)
    data = yaml.safe_load(cost.DEFAULT_CATALOG.read_text())
    del data["models"][0]["source"]
    bad.write_text(yaml.safe_dump(data))
    with pytest.raises(FtlabError, match=r"models\[0\] \(gpt-4.1\) lacks source"):
        cost.load_catalog(bad)


# ---- exact token counts -------------------------------------------------------------------
def test_dataset_tokens_follow_the_cookbook_rule():
    from ftlab.data import support_splits
    from ftlab.tokens import get_encoding

    rows = support_splits()["train"][:50]
    enc = get_encoding("o200k_base")
    expected = sum(3 + sum(3 + len(enc.encode(m["role"])) + len(enc.encode(m["content"])) for m in r["messages"])
                   for r in rows)
    counted = cost.dataset_tokens(rows, "gpt-4.1-mini")
    assert counted.encoding == "o200k_base" and counted.total == expected and counted.examples == 50
    assert counted.training_tokens(3) == 3 * expected


def test_fine_tuned_name_counts_with_the_base_encoding():
    from ftlab.data import support_splits

    rows = support_splits()["train"][:100]
    base = cost.dataset_tokens(rows, "gpt-4.1")
    tuned = cost.dataset_tokens(rows, "ft:gpt-4.1-2025-04-14:acme::x1")
    old = cost.dataset_tokens(rows, "cl100k_base")
    assert tuned.encoding == base.encoding == "o200k_base" and tuned.total == base.total
    assert old.total != base.total


def test_empty_dataset_is_an_error():
    with pytest.raises(ParameterError, match="empty"):
        cost.dataset_tokens([], "gpt-4.1")


# ---- inference break-even -----------------------------------------------------------------
def test_api_cost_per_request_and_data_sharing():
    assert cost.api_cost_per_request("gpt-4.1-mini", 500, 200) == pytest.approx(0.00104)
    assert cost.api_cost_per_request("gpt-4.1-mini", 500, 200, data_sharing=True) == pytest.approx(0.00052)
    with pytest.raises(ParameterError, match="no inference price"):
        cost.api_cost_per_request("o4-mini", 500, 200)


def test_break_even_is_where_the_costs_meet():
    be = cost.break_even("gpt-4.1-mini", "a100-40gb-on-demand", in_tokens=500, out_tokens=200, utilization=0.6)
    assert be.gpu_usd_per_month == pytest.approx(3.50 * 730)
    assert be.requests_per_month == pytest.approx(3.50 * 730 / 0.00104)
    assert be.requests_per_month < be.capacity_requests_per_month
    at = cost.monthly_costs([be.requests_per_month * 0.99, be.requests_per_month * 1.01], "gpt-4.1-mini")
    assert at["api"][0] < at["self_hosted"][0] and at["api"][1] > at["self_hosted"][1]


def test_data_sharing_can_make_the_api_win_for_good():
    # Seed 001: the 50% discount "often makes the API path cheaper than self-hosted at scale".
    shared = cost.break_even("gpt-4.1-mini", data_sharing=True)
    assert shared.requests_per_month is None
    assert "never beats" in shared.explain()
    big = cost.monthly_costs([shared.capacity_requests_per_month * k for k in (1, 5, 20)], "gpt-4.1-mini")
    assert all(a < s for a, s in zip(big["api_data_sharing"], big["self_hosted"], strict=True))


def test_break_even_needs_a_serving_figure():
    with pytest.raises(ParameterError, match="no serving throughput for rtx-4090"):
        cost.break_even("gpt-4.1-mini", "rtx-4090")


def test_plot_has_three_curves_and_the_point():
    import matplotlib

    matplotlib.use("Agg")
    fig = cost.plot_break_even("gpt-4.1", "a100-40gb-on-demand")
    labels = [line.get_label() for line in fig.axes[0].get_lines()]
    assert {"gpt-4.1 API", "gpt-4.1 API, data sharing (-50%)", "self-hosted a100-40gb-on-demand"} <= set(labels)
    assert len(labels) >= 4  # plus at least one break-even marker


# ---- the widget ---------------------------------------------------------------------------
def test_cost_explorer_updates_live():
    box = cost.cost_explorer()
    c, o = box.controls, box.outputs
    for name in ("examples", "tokens-per-example", "epochs", "model", "data-sharing"):
        assert f"ftlab-{name}" in c[name.replace("-", "_")]._dom_classes
    assert "ftlab-cost-table" in o["table"]._dom_classes and "ftlab-breakeven-plot" in o["plot"]._dom_classes
    assert "4,500,000" in o["tokens"].value and "$13.50" in o["table"].value
    c["epochs"].value = 1
    assert "1,500,000" in o["tokens"].value and "$4.50" in o["table"].value  # gpt-4.1: 1.5M × $3
    c["model"].value = "gpt-4o"
    assert "beats gpt-4o" in o["breakeven"].value
    c["data_sharing"].value = True
    assert "with data sharing" in o["breakeven"].value


def test_cost_explorer_rejects_bad_start_values():
    with pytest.raises(ParameterError, match="epochs"):
        cost.cost_explorer(epochs=0)
    with pytest.raises(ParameterError, match="cannot be fine-tuned"):
        cost.cost_explorer(model="gpt-5.4")


# ---- the CLI ------------------------------------------------------------------------------
def test_cli_json_worked_example(cli):
    code, out, err = cli("cost", "--examples", "5000", "--tokens-per-example", "300", "--epochs", "3", "--json")
    assert code == 0, err
    data = json.loads(out)
    assert data["training_tokens"] == 4_500_000
    by_entry = {r["entry"]: r for r in data["rows"]}
    for entry, usd in WORKED_COSTS.items():
        assert by_entry[entry]["training_cost_usd"] == usd
    assert all({"path", "model", "training_cost_usd"} <= set(r) for r in data["rows"])
    assert {r["path"] for r in data["rows"]} == {"openai", "cloud_managed", "hf_qlora"}
    assert "gpt-5.4" not in by_entry


def test_cli_table(cli):
    code, out, _ = cli("cost", "--examples", "5000", "--tokens-per-example", "300", "--epochs", "3")
    assert code == 0
    assert "training tokens: 4,500,000" in out and "$112.50" in out and "$20.25" in out and "verify" in out


@pytest.mark.parametrize(("argv", "message"), [
    (["--epochs", "-1"], "--epochs -1 is out of range"),
    (["--epochs", "three"], "--epochs 'three' is not a whole number"),
    (["--epochs", "3", "--model", "gpt-5.4"], "gpt-5.4 cannot be fine-tuned"),
    (["--epochs", "3", "--model", "gpt-9"], "unknown model 'gpt-9'"),
    (["--epochs", "3", "--setup-hours", "-2"], "--setup-hours -2 is out of range"),
    (["--epochs", "3", "--catalog", "/nonexistent/prices.yaml"], "does not exist"),
])
def test_cli_bad_input_is_one_line(cli, argv, message):
    code, out, err = cli("cost", "--examples", "5000", "--tokens-per-example", "300", *argv)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("ftlab cost: error: ") and message in err


def test_money_rounding_is_to_cents():
    assert cost.cost_for("gpt-4.1-mini", 1).training_cost_usd == 0.0
    assert math.isclose(cost.cost_for("gpt-4.1-nano", WORKED).training_cost_usd, 6.75)
