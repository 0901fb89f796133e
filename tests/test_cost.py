"""ftlab.cost and `ftlab cost`: the price catalog, the articles' worked example, exact token counts, break-even."""

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
# Article 001, "What Will It Cost?": 5,000 examples × 300 tokens × 3 epochs.
WORKED_COSTS = {"gpt-4.1": 13.50, "gpt-4.1-mini": 3.60, "gpt-4o": 112.50, "together-lora-8b": 20.25, "a100-40gb-spot": 3.00}
SEED_FINE_TUNABLE_OPENAI = ["gpt-4.1", "gpt-4.1-mini", "gpt-4.1-nano", "gpt-4o", "gpt-4o-mini", "o4-mini"]


@pytest.fixture(scope="module")
def cat():
    return cost.load_catalog()


# ---- the catalog ------------------------------------------------------------------------
def test_every_entry_has_source_and_as_of(cat):
    for item in cat.models + cat.gpus + cat.throughput + cat.serving:
        assert item.get("source") and item.get("as_of"), item
    for item in cat.models + cat.gpus:
        assert item["confidence"] in cost.CONFIDENCE, item
    assert cat.entry("gpt-4.1")["confidence"] == "seed" and cat.entry("bedrock-nova-micro")["confidence"] == "unconfirmed"


def test_one_catalog_no_duplicates(cat):
    from tests.helpers import ROOT

    assert not (ROOT / "ftlab" / "cloud_prices.yaml").exists()
    # the article's Together LoRA figure lives in exactly one entry
    seed_lora = [m["id"] for m in cat.models if m["provider"] == "together" and m.get("training_usd_per_1m") == 4.50]
    assert seed_lora == ["together-lora-8b"]
    keys = [(m["provider"], m["model"]) for m in cat.models]
    assert len(keys) == len(set(keys))
    platforms = {p.get("platform") for p in cat.providers.values()}
    assert {"bedrock", "vertex", "together", "azure", "openai", "self-managed"} <= platforms


def test_fine_tunable_openai_models_are_the_seeds_list(cat):
    assert cat.fine_tunable("openai") == SEED_FINE_TUNABLE_OPENAI


def test_gpt_5_4_records_both_seeds(cat):
    for model in ("gpt-5.4", "gpt-5.4-mini"):
        entry = cat.entry(model, fine_tune=False)
        assert entry["fine_tunable"] is False
        assert "article 001" in entry["source"] and "inference-only" in entry["source"]
        assert entry["earlier_claim"]["source"].startswith("article 000")
        assert entry["earlier_claim"]["training_usd_per_1m"] > 0


def test_catalog_covers_every_path_and_gpu(cat):
    providers = {m["provider"] for m in cat.models}
    assert {"openai", "together", "vertex", "bedrock", "foundry"} <= providers
    assert {g["id"] for g in cat.gpus} == {"a100-40gb-spot", "a100-40gb-on-demand", "rtx-4090", "h100-80gb"}
    assert cat.providers["openai"]["data_sharing_inference_discount"] == 0.5


def test_catalog_ships_as_package_data():
    import tomllib

    from tests.helpers import ROOT

    globs = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["ftlab"]
    assert "catalog/*.yaml" in globs and not any("cloud_prices" in g for g in globs)
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
    azure = {m["id"] for m in cat.models if m["id"].startswith("azure-openai-")}
    # RFT needs hours; Bedrock's other models and Azure OpenAI have no rate ftlab could source: unknown, not zero
    assert unknown == {"o4-mini", "bedrock-open-models"} | azure and len(azure) == 5
    assert all("check current docs" in r.rate or "give the hours" in r.rate for r in rows if r.entry in unknown)
    assert {r.confidence for r in rows} <= set(cost.CONFIDENCE) and all(r.billed for r in rows if r.entry not in unknown)


# ---- every pricing kind ------------------------------------------------------------------------
def test_per_training_hour_estimates_hours_from_throughput(cat):
    # Open models on Foundry and Vertex bill per training hour: 4.5M tokens at the A100's 625 tokens/s = 2 h.
    foundry = cost.cost_for("foundry-managed-a100-80gb", WORKED)
    assert foundry.pricing == "per_training_hour" and foundry.gpu_hours == 2.0
    assert foundry.training_cost_usd == 7.34 and foundry.rate == "$3.67/training hour × 2.00 h"
    assert "estimated from the a100-40gb" in foundry.note and foundry.billed == "2.00 h"
    assert cost.cost_for("vertex-custom-a100-80gb", WORKED).training_cost_usd == round(2 * 5.07, 2)
    assert cost.hours_for(WORKED, "a100-40gb") == 2.0


def test_training_hours_override_every_hour_priced_entry():
    assert cost.cost_for("foundry-managed-a100-80gb", WORKED, training_hours=3.0).training_cost_usd == 11.01
    assert cost.cost_for("a100-40gb-spot", WORKED, training_hours=3.0, setup_hours=1.0).training_cost_usd == 6.0
    rft = cost.cost_for("o4-mini", WORKED, training_hours=1.5)
    assert rft.training_cost_usd == 150.0 and rft.pricing == "per_wall_clock_hour" and rft.confidence == "provider"
    assert cost.cost_for("gpt-4.1", WORKED, training_hours=3.0).training_cost_usd == 13.50  # per token: no hours
    assert cost.cost_for("o4-mini", WORKED).training_cost_usd is None
    with pytest.raises(ParameterError, match=r"'training_hours' = -1\.0 is out of range"):
        cost.cost_for("o4-mini", WORKED, training_hours=-1)


def test_validation_tokens_are_billed_where_the_provider_bills_them():
    together = cost.cost_for("together-lora-8b", 1_000_000, validation_tokens=500_000)
    assert together.training_cost_usd == 6.75 and together.billed == "1,500,000 tokens"  # 1.5M × $4.50
    assert "500,000 validation tokens" in together.note
    assert cost.cost_for("gpt-4.1", 1_000_000, validation_tokens=500_000).training_cost_usd == 3.0
    assert cost.cost_for("bedrock-nova-micro", 1_000_000, validation_tokens=500_000).training_cost_usd == 1.0


def test_managed_premium_is_stored_once(cat):
    premium = cost.managed_premium(cat)
    assert premium["ratio"] == [2.0, 3.0] and premium["source"].startswith("article 000")
    assert premium["reference_gpu"] == "a100-40gb-spot"
    assert cost.managed_premium_range(3.0, cat) == (6.0, 9.0)


def test_digits_keep_cents_of_small_runs():
    assert cost.cost_for("bedrock-nova-micro", 12_345).training_cost_usd == 0.01
    assert cost.cost_for("bedrock-nova-micro", 12_345, digits=6).training_cost_usd == 0.012345


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


@pytest.mark.parametrize(("edit", "message"), [
    (lambda d: d["models"][0].update(confidence="probably"), r"gpt-4.1 has confidence 'probably'; expected one of seed"),
    (lambda d: d["gpus"][0].pop("confidence"), r"gpus\[0\] \(a100-40gb-spot\) lacks confidence"),
    (lambda d: next(m for m in d["models"] if m["id"] == "foundry-managed-a100-80gb").pop("throughput_hardware"),
     r"foundry-managed-a100-80gb is priced per training hour but its throughput_hardware None has no row"),
    (lambda d: d["managed_premium"].update(ratio=[3, 2]), r"managed_premium.ratio = \[3, 2\]"),
    (lambda d: d["managed_premium"].update(reference_gpu="tpu"), r"reference_gpu 'tpu' is not a GPU id"),
])
def test_catalog_checks_are_one_line(tmp_path, edit, message):
    data = yaml.safe_load(cost.DEFAULT_CATALOG.read_text())
    edit(data)
    bad = tmp_path / "prices.yaml"
    bad.write_text(yaml.safe_dump(data, allow_unicode=True))
    with pytest.raises(FtlabError, match=message) as err:
        cost.load_catalog(bad)
    assert "\n" not in str(err.value)


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
    # Article 001: the 50% discount "often makes the API path cheaper than self-hosted at scale".
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
    assert all({"path", "model", "training_cost_usd", "confidence", "source", "as_of"} <= set(r) for r in data["rows"])
    assert [r["entry"] for r in data["rows"]] == [r.entry for r in cost.training_costs(WORKED)]
    assert by_entry["foundry-managed-a100-80gb"]["training_cost_usd"] == 7.34
    assert by_entry["bedrock-nova-micro"]["training_cost_usd"] == 4.50
    assert {r["path"] for r in data["rows"]} == {"openai", "cloud_managed", "hf_qlora"}
    assert "gpt-5.4" not in by_entry


def test_cli_table(cli):
    code, out, _ = cli("cost", "--examples", "5000", "--tokens-per-example", "300", "--epochs", "3")
    assert code == 0
    assert "training tokens: 4,500,000" in out and "$112.50" in out and "$20.25" in out and "verify" in out
    assert "unconfirmed" in out and "estimated from the throughput table" in out


def test_cli_training_hours(cli):
    code, out, _ = cli("cost", "--examples", "5000", "--tokens-per-example", "300", "--epochs", "3",
                       "--training-hours", "1.5", "--json")
    by_entry = {r["entry"]: r for r in json.loads(out)["rows"]}
    assert code == 0 and by_entry["o4-mini"]["training_cost_usd"] == 150.0
    assert by_entry["a100-40gb-spot"]["training_cost_usd"] == 2.25 and by_entry["gpt-4.1"]["training_cost_usd"] == 13.5


@pytest.mark.parametrize(("argv", "message"), [
    (["--epochs", "-1"], "--epochs -1 is out of range"),
    (["--epochs", "three"], "--epochs 'three' is not a whole number"),
    (["--epochs", "3", "--model", "gpt-5.4"], "gpt-5.4 cannot be fine-tuned"),
    (["--epochs", "3", "--model", "gpt-9"], "unknown model 'gpt-9'"),
    (["--epochs", "3", "--setup-hours", "-2"], "--setup-hours -2 is out of range"),
    (["--epochs", "3", "--training-hours", "two"], "--training-hours 'two' is not a number"),
    (["--epochs", "3", "--catalog", "/nonexistent/prices.yaml"], "does not exist"),
])
def test_cli_bad_input_is_one_line(cli, argv, message):
    code, out, err = cli("cost", "--examples", "5000", "--tokens-per-example", "300", *argv)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("ftlab cost: error: ") and message in err


def test_money_rounding_is_to_cents():
    assert cost.cost_for("gpt-4.1-mini", 1).training_cost_usd == 0.0
    assert math.isclose(cost.cost_for("gpt-4.1-nano", WORKED).training_cost_usd, 6.75)


# ---- availability: OpenAI's self-serve wind-down and the retirements -----------------------
def test_every_entry_has_a_cited_availability(cat):
    for item in cat.models + cat.gpus:
        av = item["availability"]
        assert av["source"] and av["as_of"] and av["confidence"] in cost.CONFIDENCE, item["id"]
        assert av.get("status") in cost.AVAILABILITY_STATUSES or av.get("wind_down"), item["id"]
    wd = cost.wind_down()
    assert [s["date"] for s in wd["stages"]] == ["2026-05-07", "2026-07-02", "2027-01-06"]
    assert wd["confidence"] == "reported" and "developers.openai.com/api/docs/deprecations" in wd["source"]
    azure = cat.entry("azure-openai-gpt-4.1")["availability"]
    assert azure["status"] == "open" and azure["regions_standard"] == ["North Central US", "Sweden Central"]
    assert "Sweden Central" in azure["regions_global"] and azure["confidence"] == "provider"


@pytest.mark.parametrize(("as_of", "status", "date"), [
    ("2026-05-06", "open", None),
    ("2026-05-07", "closing", "2027-01-06"),
    ("2026-12-02", "closing", "2027-01-06"),   # the contract
    ("2027-01-05", "closing", "2027-01-06"),
    ("2027-01-06", "closed", "2027-01-06"),
    ("2027-02-01", "closed", "2027-01-06"),    # closed before the base model retired (2027-01-14): stays closed
])
def test_openai_self_serve_rows_follow_the_dates(as_of, status, date):
    for model in ("gpt-4.1", "gpt-4.1-mini"):
        a = cost.availability(model, as_of)
        assert (a.status, a.date) == (status, date), (model, as_of)
    assert cost.cost_for("gpt-4.1", WORKED, as_of=as_of).availability_status == status


@pytest.mark.parametrize(("org", "as_of", "status", "date"), [
    ("new", "2026-05-07", "closed", "2026-05-07"),
    ("inactive", "2026-07-01", "closing", "2027-01-06"),
    ("inactive", "2026-07-02", "closed", "2026-07-02"),
    ("active", "2026-12-02", "closing", "2027-01-06"),
    ("active", "2027-01-06", "closed", "2027-01-06"),
])
def test_the_organisation_status_moves_the_closure(org, as_of, status, date):
    a = cost.availability("gpt-4.1-mini", as_of, org_status=org)
    assert (a.status, a.date) == (status, date)
    assert not a.available if status == "closed" else a.available


def test_retired_models_and_the_azure_route():
    nano = cost.availability("gpt-4.1-nano", "2026-12-02")
    assert (nano.status, nano.date, nano.alternative) == ("retired", "2026-10-23", "azure-openai-gpt-4.1-nano")
    assert cost.availability("gpt-4.1-nano", "2026-10-22").status == "closing"
    assert cost.availability("o4-mini", "2026-12-02").status == "retired"
    assert cost.availability("gpt-4.1", "2027-02-01").retires_on == "2027-01-14"
    for day in ("2026-12-02", "2027-02-01"):
        assert cost.availability("azure-openai-gpt-4.1-mini", day).status == "open"
        assert cost.availability("a100-40gb-spot", day, org_status="new").status == "open"
    with pytest.raises(ParameterError, match=r"^as_of '2026-13-01' is not a date: give it as YYYY-MM-DD"):
        cost.availability("gpt-4.1", "2026-13-01")


def test_unavailable_rows_are_marked_not_hidden():
    rows = cost.training_costs(WORKED, as_of="2027-02-01")
    by = {r.entry: r for r in rows}
    assert by["gpt-4.1"].training_cost_usd == 13.50 and not by["gpt-4.1"].available  # the price stays, marked
    html = cost.cost_table_html(WORKED, rows)
    assert html.count("ftlab-unavailable") == sum(not r.available for r in rows) == 6  # 4 closed + 2 retired
    assert "CLOSED since 2027-01-06" in html and "RETIRED since 2026-10-23" in html
    text = cost.format_cost_table(WORKED, rows, "2027-02-01")
    assert "availability as of 2027-02-01" in text and "CLOSED since 2027-01-06" in text


@pytest.mark.parametrize(("as_of", "status"), [("2026-12-02", "closing"), ("2027-02-01", "closed")])
def test_cli_as_of_contract(cli, as_of, status):
    code, out, err = cli("cost", "--examples", "5000", "--tokens-per-example", "300", "--epochs", "3",
                         "--as-of", as_of, "--json")
    assert code == 0, err
    data = json.loads(out)
    assert data["as_of"] == as_of
    by = {r["entry"]: r for r in data["rows"]}
    for model in ("gpt-4.1", "gpt-4.1-mini"):
        assert by[model]["availability_status"] == status and by[model]["availability_date"] == "2027-01-06"
    assert by["together-lora-8b"]["availability_status"] == "open"
    assert all(r["availability_status"] in cost.AVAILABILITY_STATUSES for r in data["rows"])


def test_cli_bad_as_of_is_one_line(cli):
    code, _, err = cli("cost", "--examples", "5", "--tokens-per-example", "3", "--epochs", "1", "--as-of", "next week")
    assert code == 2 and "--as-of 'next week' is not a date: give it as YYYY-MM-DD" in err
    assert "Traceback" not in err


def test_validate_cli_as_of(cli, tmp_path):
    from ftlab.data import support_splits

    path = tmp_path / "train.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in support_splits()["train"][:20]), encoding="utf-8")
    code, out, err = cli("validate", str(path), "--as-of", "2027-02-01", "--json")
    assert code == 0, err
    stats = json.loads(out)["stats"]
    assert stats["availability"]["availability_status"] == "closed"
    assert stats["cost"]["availability_status"] == "closed" and stats["cost"]["availability_date"] == "2027-01-06"
    code, out, _ = cli("validate", str(path), "--as-of", "2026-12-02")
    assert code == 0 and "availability on 2026-12-02: closing (2027-01-06)" in out


def test_catalog_without_availability_is_refused(tmp_path):
    data = yaml.safe_load(cost.DEFAULT_CATALOG.read_text(encoding="utf-8"))
    data["models"][2].pop("availability")
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    with pytest.raises(FtlabError, match=r"gpt-4.1-nano lacks an availability block with source and as_of"):
        cost.load_catalog(path)


def test_a_date_on_the_command_line_stays_text():
    from ftlab.runner import parse_value

    assert parse_value("2026-04-30") == "2026-04-30"  # ftlab run -p as_of 2026-04-30
    assert parse_value("3") == 3
