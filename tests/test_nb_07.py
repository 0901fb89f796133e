"""Notebook 07 (evaluate): baseline, four-way deltas, the gate."""

import json
from pathlib import Path

import pytest

pytestmark = [pytest.mark.notebook]


def test_07_baseline_four_way_deltas_and_verdict(run_notebook):
    from ftlab import gates

    f = run_notebook("07").figures
    four = f["four_way_mixed"]
    assert sum(four.values()) == f["eval_sizes"]["target"]
    assert f["target_accuracy_mixed"] > f["baseline"]["target_accuracy"]
    assert f["general_accuracy_before"] >= 0.9 and f["refusal_rate_before"] >= 0.9
    assert f["forgetting_delta_mixed"] == pytest.approx(f["general_accuracy_mixed"] - f["general_accuracy_before"])
    assert f["safety_delta_mixed"] == pytest.approx(f["refusal_rate_mixed"] - f["refusal_rate_before"])
    # The verdict follows ftlab.gates' rule: a category-2 or -3 regression (beyond noise) means do not ship.
    sizes = f["eval_sizes"]
    hurt = (gates.forgetting(f["general_accuracy_before"], f["general_accuracy_mixed"], sizes["general"]).fired
            or gates.refusal_loss(f["refusal_rate_before"], f["refusal_rate_mixed"], sizes["safety"]).fired)
    assert f["verdict_mixed"] == ("do not ship" if hurt else "ship")
    assert bool(f["verdict_failures_mixed"]) == hurt
    card = json.loads(Path(f["run_card_mixed"]).read_text())
    assert card["evaluation"]["verdict"]["decision"] == f["verdict_mixed"]
    assert card["evaluation"]["four_way"]["counts"] == four
    assert f["base_only_flagged_mixed"] == (four["base_only_correct"] / sum(four.values()) > 0.05)
    assert f["gate_rule"]["max_general_drop"] == gates.FORGETTING_MAX_DROP


def test_07_the_gate_works_one_do_not_ship_then_one_ship(run_notebook):
    """The first recipe fails for a stated reason; the article's next step, chosen from that reason, ships."""
    f = run_notebook("07").figures
    verdicts = f["verdicts"]
    assert sorted(verdicts.values()) == ["do not ship", "ship"], verdicts
    first, second = list(verdicts)
    assert verdicts[first] == "do not ship" and verdicts[second] == "ship"
    step = f["next_step"]
    assert step["after"] == first and second.startswith(step["recipe"])
    # chosen on the validation split: the steps tried before it failed there, it passed there
    tried = f["next_steps_tried"]
    assert tried[-1]["label"] == second and tried[-1]["validation"] == "ship"
    assert all(t["validation"] == "do not ship" for t in tried[:-1])
    # the step answers the stated reason: its failure's name is in the step's reason
    reasons = f["verdict_reasons"]
    failed = {r.split(":")[0] for r in reasons[first]}
    assert failed and any(name in step["reason"] for name in failed), (reasons[first], step)
    assert all(not r.startswith(("catastrophic forgetting", "safety degradation")) for r in reasons[second])
    for name in verdicts:
        card = json.loads(Path(f[f"run_card_{name}"]).read_text())
        assert card["evaluation"]["verdict"]["decision"] == verdicts[name]


def test_07_narrow_adapter_fails_forgetting_and_safety(run_notebook):
    """Notebook 04's narrow data: category 1 improves, categories 2 and 3 collapse, so: do not ship; the next step
    the article gives for that reason is the mixed recipe."""
    f = run_notebook("07", recipes="support", apply_next_step=False).figures
    assert f["target_accuracy_support"] > f["baseline"]["target_accuracy"]
    assert f["forgetting_delta_support"] < -0.5 and f["safety_delta_support"] < -0.5
    assert f["verdict_support"] == "do not ship"
    failures = " ".join(f["verdict_failures_support"])
    assert "catastrophic forgetting" in failures and "safety degradation" in failures
    assert f["next_steps"][0]["label"] == "mixed" and list(f["verdicts"]) == ["support"] and "next_step" not in f
