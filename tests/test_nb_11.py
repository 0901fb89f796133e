"""Notebook 11 runs headless with its defaults: DPO moves held-out preferences, GRPO raises the reward,
the sandbox trains a DPO job through the openai SDK."""

import pytest

pytestmark = pytest.mark.notebook


def test_nb11_dpo_moves_heldout_preferences(run_notebook):
    f = run_notebook("11").figures
    assert f["heldout_overlap"] == []  # no held-out prompt is in any training mix
    # the teaching claim: DPO moves the held-out preference accuracy up by at least 0.2 (per-token log-probabilities:
    # summed ones favour the shorter reply whatever it says) ...
    assert "per-token" in f["dpo_preference_measure"]
    assert f["dpo_preference_accuracy_after"] >= f["dpo_preference_accuracy_before"] + 0.2
    assert f["dpo_preference_accuracy_after"] >= 0.8
    # ... with positive implicit reward margins against the SFT reference ...
    m = f["dpo_reward_margins"]
    assert m["margin"] > 0 and m["chosen"] > m["rejected"] and m["reward_accuracy"] >= 0.8
    # ... without learning to refuse support requests (the guard pairs stay preferred)
    before, after = f["dpo_support_pair_accuracy"]
    assert after >= before - 0.1 and after >= 0.8
    # ... and the behaviour follows: the model refuses more of the held-out harmful requests (toy v8, seed 0, from 04's
    # 4-epoch support adapter: 0.00 -> 0.975 with the SFT term, dpo_sft_weight=1, implicit rewards chosen +1.88, rejected
    # -2.35; from the 2-epoch adapter 11 trained before, 0.00 -> 1.00, and pure DPO 0.00 -> 0.03)
    assert f["dpo_refusal_rate_after"] >= f["dpo_refusal_rate_before"] + 0.2
    # DPO moved away from the reference (an unbiased estimate, >= 0), and the general skills are measured before and after
    assert f["dpo_kl"] > 0
    assert 0.0 <= f["general_accuracy_before"] <= 1.0 and 0.0 <= f["general_accuracy_after"] <= 1.0


# The margin, from measured noise: one held-out measurement (80 prompts x 4 sampled replies) varies by <= 0.009
# from sampling seed to sampling seed (grpo_reward_repeats: 0.203-0.212 before), and the median after GRPO by 0.01
# from training seed to training seed (0.263, 0.264, 0.273 for seeds 0-2, each from 0.209). GRPO_MARGIN is three
# times either spread, so noise alone cannot pass it; the measured rise (+0.054 to +0.063) clears it.
GRPO_MARGIN = 0.03


def test_nb11_grpo_raises_the_verifiable_reward(run_notebook):
    f = run_notebook("11").figures
    before, after = f["grpo_reward_before"], f["grpo_reward_after"]
    assert 0.0 <= before <= 1.0 and 0.0 <= after <= 1.0
    # the teaching claim: GRPO raises the reward of its sampled replies on held-out prompts (medians over seeds) ...
    assert after >= before + GRPO_MARGIN, (before, after, f["grpo_reward_repeats"])
    # ... on every measurement seed, not only on the median
    assert min(f["grpo_reward_repeats"]["after"]) > max(f["grpo_reward_repeats"]["before"])
    assert f["grpo_kl"] > 0  # it moved away from the adapter it started from
    # the start adapter leaves room to learn: the reward is not saturated and not every group scored alike
    assert f["grpo_reward_saturated"] is False and f["grpo_no_signal"] is False
    assert 0.0 <= f["grpo_frac_reward_zero_std"] < 0.9  # measured 0.55


def test_nb11_sandbox_dpo_job_and_managed_formats(run_notebook):
    f = run_notebook("11").figures
    assert f["sandbox_dpo_job_status"] == "succeeded"
    err = f["sandbox_rft_error"]
    assert err["type"] == "invalid_request_error" and err["param"] == "method.type"
    assert set(f["managed_formats"]) == {"openai_dpo", "bedrock_rft", "foundry_rft"}
    assert f["dpo_openai_cost_usd"] > 0
