"""ftlab.paths: choosing a fine-tuning path from the articles' "pick your path" factors."""

from __future__ import annotations

import ast
import re

import pytest

from ftlab import paths
from ftlab.errors import ParameterError
from ftlab.paths import Answers, choose_path

# Article 001 is dated April 2026, before OpenAI's self-serve wind-down began (2026-05-07): the articles' own
# logic is tested on a date when every path was open. The dates themselves are tested further down.
SEED_ERA = "2026-04-30"


def seed_era(answers=None, **kw):
    return choose_path({"as_of": SEED_ERA, **(answers or {})}, **kw)


def test_defaults_recommend_openai_before_the_wind_down():
    rec = seed_era()
    assert (rec.path, rec.verdict) == ("openai", "fine_tune")
    assert "gpt-4.1-mini" in rec.platform
    assert [r.path for r in rec.runners_up] == ["cloud_managed", "hf_qlora"]
    assert rec.reasons and not rec.warnings


def test_every_table_factor_can_change_the_path():
    # Model ownership
    assert choose_path(own_weights=True).path != "openai"
    assert choose_path(own_weights=True, gpu_ops="team").path == "hf_qlora"
    # Setup complexity / GPU-ops capacity
    assert choose_path(own_weights=True, gpu_ops="none").path == "cloud_managed"
    # Training cost
    assert choose_path(own_weights=True, cost_priority="lowest").path == "hf_qlora"
    assert choose_path(own_weights=True, cost_priority="balanced").path == "cloud_managed"
    # Inference control
    assert choose_path(inference_control="full").path == "hf_qlora"
    # Data sensitivity
    assert choose_path(data_sensitivity="vpc").path == "cloud_managed"
    assert choose_path(data_sensitivity="own_hardware").path == "hf_qlora"
    # The cloud you are already on
    assert seed_era(gpu_ops="some", cost_priority="flexible").path == "openai"
    assert choose_path(gpu_ops="some", cost_priority="flexible", cloud="aws").path == "cloud_managed"


@pytest.mark.parametrize(("cloud", "platform"), [("gcp", "Vertex AI"), ("aws", "Bedrock"), ("azure", "Foundry"),
                                                 ("none", "Together AI")])
def test_cloud_picks_the_platform(cloud, platform):
    rec = choose_path(data_sensitivity="vpc", cloud=cloud)
    assert rec.path == "cloud_managed" and platform in rec.platform


def test_hard_constraints_rule_paths_out():
    rec = choose_path(data_sensitivity="own_hardware")
    assert set(rec.excluded) == {"openai", "cloud_managed"}
    assert all(r.why_not.startswith("ruled out") for r in rec.runners_up)
    assert "leaves to OpenAI" in rec.excluded["openai"]
    rec = choose_path(inference_control="full", cloud="gcp", gpu_ops="none")
    assert rec.path == "hf_qlora"
    assert any("no GPU-ops capacity" in t for t in rec.tradeoffs)  # the cost of the choice is said


def test_what_would_change_is_true():
    """Each 'name = value → Path' line must really flip the recommendation to that path."""
    for start in [{}, {"as_of": SEED_ERA}, {"openai_status": "active", "as_of": "2026-12-02"},
                  {"data_sensitivity": "vpc", "cloud": "aws"}, {"own_weights": True}, {"inference_control": "full"}]:
        rec = choose_path(start)
        flips = [c for c in rec.what_would_change if "→" in c and " = " in c.split("→")[0]]
        assert flips, start
        for line in flips:
            m = re.match(r"(\w+) = (.+?) \(.*?→ (.+?) \(", line)
            assert m, line
            name, value, label = m.group(1), ast.literal_eval(m.group(2)), m.group(3)
            assert choose_path({**start, name: value}).label == label, line


def test_no_flip_is_said_plainly():
    rec = choose_path(data_sensitivity="own_hardware", gpu_ops="team", own_weights=True, inference_control="full")
    assert rec.path == "hf_qlora"
    assert rec.what_would_change == ["no single answer changes this recommendation"]


def test_knowledge_goal_points_to_rag_with_the_sku_story():
    rec = choose_path(goal="knowledge")
    assert rec.verdict == "rag_or_tools"
    assert any("RAG" in w and "SKU" in w and "62% to 89%" in w for w in rec.warnings)
    assert rec.what_would_change[0].startswith("goal = 'behaviour'")
    both = choose_path(goal="both")
    assert both.verdict == "fine_tune" and any("Split the job" in w for w in both.warnings)


def test_description_with_changing_facts_warns():
    rec = choose_path(learn_what="answer with today's prices and product SKUs")
    assert any("'prices'" in w and "RAG" in w for w in rec.warnings)
    assert paths.looks_like_knowledge("reply politely in our ticket format") == []
    assert paths.looks_like_knowledge("the current policy") == ["current", "policy"]


def test_prompt_engineering_first():
    rec = seed_era(tried_prompting=False)
    assert rec.verdict == "prompt_first" and rec.path == "openai"
    assert any("Prompt engineering first" in w for w in rec.warnings)
    assert choose_path(examples_available=5).verdict == "prompt_first"
    few = choose_path(examples_available=30)
    assert few.verdict == "fine_tune" and any("50–100" in w for w in few.warnings)
    # Knowledge trumps prompting: the advice is RAG either way.
    assert choose_path(goal="knowledge", tried_prompting=False).verdict == "rag_or_tools"


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"gpu_ops": "lots"}, r"^parameter 'gpu_ops' = 'lots' is not a valid choice; valid values: none, some, team$"),
    ({"cloud": "oracle"}, r"valid values: none, gcp, aws, azure"),
    ({"examples_available": -1}, r"'examples_available' = -1 is out of range"),
    ({"own_weights": "yes"}, r"'own_weights' = 'yes' has type str: expected bool"),
    ({"colour": "blue"}, r"^unknown answer 'colour'; valid answers: goal, "),
])
def test_bad_answers_are_one_line(kwargs, message):
    with pytest.raises(ParameterError, match=message) as err:
        choose_path(**kwargs)
    assert "\n" not in str(err.value)


def test_answers_object_and_dict_agree():
    a = Answers(gpu_ops="team", own_weights=True)
    assert choose_path(a).to_json() == choose_path({"gpu_ops": "team", "own_weights": True}).to_json()


def test_html_and_text():
    rec = choose_path(data_sensitivity="vpc", cloud="azure")
    html = rec._repr_html_()
    assert "data-path='cloud_managed'" in html and "Runners-up" in html and "What would change" in html
    assert str(rec).startswith("Recommended path: Cloud-managed (Microsoft Foundry")
    table = paths.pick_your_path_html()
    assert all(factor in table for factor in ("Model ownership", "Setup complexity", "Training cost",
                                              "Inference control", "Data sensitivity"))


def test_path_form_drives_choose_path():
    form = paths.path_form({"as_of": SEED_ERA})
    c = form.controls
    assert set(c) == {f for f in Answers.__dataclass_fields__}
    for name, widget in c.items():
        assert f"ftlab-{name.replace('_', '-')}" in widget._dom_classes
    out = form.children[-1]
    assert "ftlab-recommendation" in out._dom_classes
    assert "data-path='openai'" in out.value
    c["data_sensitivity"].value = "own_hardware"
    assert form.result().path == "hf_qlora" and "data-path='hf_qlora'" in out.value
    c["goal"].value = "knowledge"
    assert form.result().verdict == "rag_or_tools" and "SKU" in out.value
    c["examples_available"].value = 3
    assert "too few" in out.value


def test_path_form_starts_from_answers():
    form = paths.path_form({"cloud": "aws", "data_sensitivity": "vpc"})
    assert form.controls["cloud"].value == "aws"
    assert form.result().platform == "AWS Bedrock"


# ---------------------------------------------------------------------------------------
# The dates: OpenAI's self-serve wind-down (the catalog's stages 2026-05-07, 2026-07-02, 2027-01-06)
# ---------------------------------------------------------------------------------------
def test_a_new_organisation_gets_the_azure_route_with_the_dates():
    rec = choose_path(as_of="2026-12-02")  # openai_status defaults to never_fine_tuned
    assert rec.path == "cloud_managed" and rec.platform.startswith("Azure OpenAI in Microsoft Foundry")
    assert "gpt-4.1-mini" in rec.platform
    why = rec.excluded["openai"]
    assert "2026-05-07" in why and "2027-01-06" in why and "never fine-tuned" in why and "deprecations" in why
    assert any("North Central US" in r and "Sweden Central" in r for r in rec.reasons)
    assert rec.openai_availability["status"] == "closed" and rec.openai_availability["date"] == "2026-05-07"


@pytest.mark.parametrize(("as_of", "status", "path"), [
    ("2026-05-06", "never_fine_tuned", "openai"),        # the day before the wind-down began
    ("2026-05-07", "never_fine_tuned", "cloud_managed"),  # stage 1: never fine-tuned
    ("2026-07-01", "inactive", "openai"),
    ("2026-07-02", "inactive", "cloud_managed"),          # stage 2: no fine-tuned inference in 60 days
    ("2027-01-05", "active", "openai"),
    ("2027-01-06", "active", "cloud_managed"),            # stage 3: everyone
])
def test_the_date_changes_the_recommendation(as_of, status, path):
    assert choose_path(as_of=as_of, openai_status=status).path == path


def test_the_organisation_status_changes_the_recommendation():
    day = "2026-12-02"
    got = {s: choose_path(as_of=day, openai_status=s) for s in ("never_fine_tuned", "inactive", "active")}
    assert {s: r.path for s, r in got.items()} == {"never_fine_tuned": "cloud_managed", "inactive": "cloud_managed",
                                                    "active": "openai"}
    active = got["active"]
    assert any("2027-01-06" in w and "2027-01-14" in w for w in active.warnings)  # closing: the date is said
    assert any("closes to everyone on 2027-01-06" in t for t in active.tradeoffs)
    flips = [c for c in active.what_would_change if c.startswith(("openai_status", "as_of"))]
    assert any("as_of = '2027-01-06'" in c and "Azure OpenAI" in c for c in flips)
    assert any("openai_status = 'never_fine_tuned'" in c for c in flips)


def test_other_constraints_keep_their_own_platform_after_the_wind_down():
    # When something else already ruled OpenAI out, the dates change nothing: no Azure detour.
    assert choose_path(as_of="2026-12-02", data_sensitivity="vpc", cloud="aws").platform == "AWS Bedrock"
    assert choose_path(as_of="2026-12-02", data_sensitivity="own_hardware").path == "hf_qlora"
    assert choose_path(as_of="2026-12-02", own_weights=True, gpu_ops="team").path == "hf_qlora"


def test_bad_date_is_one_line():
    with pytest.raises(ParameterError, match=r"^as_of '12/02/2026' is not a date: give it as YYYY-MM-DD"):
        choose_path(as_of="12/02/2026")
    with pytest.raises(ParameterError, match=r"'openai_status' = 'gone' is not a valid choice"):
        choose_path(openai_status="gone")


def test_prices_in_the_reasons_come_from_the_catalog(monkeypatch, tmp_path):
    import yaml

    from ftlab import cost

    data = yaml.safe_load(cost.DEFAULT_CATALOG.read_text(encoding="utf-8"))
    for m in data["models"]:
        if m["id"] == "gpt-4.1-mini":
            m["training_usd_per_1m"] = 1.0
    path = tmp_path / "prices.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    monkeypatch.setenv("FTLAB_PRICES", str(path))
    rec = seed_era(cost_priority="lowest")
    assert any("$4.50 for the articles' 4.5M-token example at the article's $1.00/M" in r for r in rec.reasons)
    assert "~$1.00–$3.00/M tokens" in paths.pick_your_path_html()
