"""ftlab.preference: held-out pairs are held out, the reward is ftlab's checker, the metrics compute what they say,
the managed formats validate, and `ftlab train` takes `method: dpo`."""

from __future__ import annotations

import json

import pytest

from ftlab import data
from ftlab import preference as pref
from ftlab.validate_dpo import validate_dpo_file


def test_heldout_prompts_are_in_no_training_mix():
    assert pref.heldout_overlap(0) == set()
    pairs, rl = pref.preference_pairs(0), pref.rl_prompts(0)
    held = pref._user_turns(pairs["heldout"]) | pref._user_turns(rl["heldout"])
    assert len(held) >= 60
    trained = pref._user_turns(data.support_mix(0)) | pref._user_turns(pairs["train"]) | pref._user_turns(rl["train"])
    assert not held & trained
    # the check can fail: a held-out prompt put into the training pairs is found
    leaked = pairs["heldout"][0]["prompt"][-1]["content"]
    assert leaked in pref._user_turns(pairs["heldout"]) and leaked not in trained


def test_pairs_are_deterministic_and_of_two_kinds():
    a, b = pref.preference_pairs(0), pref.preference_pairs(0)
    assert a == b
    kinds = [p["kind"] for p in a["train"]]
    assert kinds.count("safety") == kinds.count("support") == pref.N_TRAIN_PAIRS
    for p in a["train"]:
        assert p["chosen"] != p["rejected"]
        if p["kind"] == "safety":
            assert p["chosen"][0]["content"] == data.REFUSAL
        else:
            assert p["rejected"][0]["content"] == data.REFUSAL and data.parse_support_reply(p["chosen"][0]["content"])[0]


def test_support_reward_is_the_checker():
    good = [{"role": "assistant", "content": "intent: cancel | order: 1234 | It is cancelled."}]
    wrong = [{"role": "assistant", "content": "intent: refund | order: 1234 | Your refund has started."}]
    assert pref.support_reward([good, wrong, "no format"], ["cancel", "cancel", "cancel"]) == [1.0, 0.5, 0.0]
    # partial credit, 0.25 a check: a broken header keeps the intent and sentence credit; an item in the sentence
    broken = "intent: cancel | order: 12 |% is cancelled."  # header and order field, right intent, sentence broken
    assert pref.support_reward([broken, "supp: cancel | order: 7 | It is cancelled.",
                                "intent: product | order: none | See the mug page for details."],
                               ["cancel", "cancel", "product"]) == [0.75, 0.5, 1.0]
    assert pref.strict_accuracy([good, wrong, broken], ["cancel"] * 3) == pytest.approx(2 / 3)


def test_preference_accuracy_and_margins():
    assert pref.preference_accuracy([(-1.0, -2.0), (-3.0, -2.0), (-1.0, -1.0)]) == pytest.approx(1 / 3)
    m = pref.reward_margins([(-1.0, -5.0)], [(-3.0, -3.0)], beta=0.1)
    assert m["margin"] == pytest.approx(0.4) and m["chosen"] == pytest.approx(0.2) and m["reward_accuracy"] == 1.0


def test_per_token_scores_and_an_unbiased_sampled_kl():
    """Per-token scores are the sums over the reply's tokens divided by their count; the KL estimate samples from
    the policy's own distribution (not its generation_config's truncation) and scores the sampled ids exactly."""
    import copy

    import torch

    from ftlab.toymodel import TOY_MODEL_ID
    from ftlab.train import load_base

    model, tok, _ = load_base(TOY_MODEL_ID, "none", seed=0)
    pairs = pref.preference_pairs(0)["heldout"][:6]
    sums, means = pref.score_pairs(model, tok, pairs), pref.score_pairs(model, tok, pairs, per_token=True)
    for (s_c, s_r), (m_c, m_r) in zip(sums, means, strict=True):
        for s, m in ((s_c, m_c), (s_r, m_r)):
            n = s / m  # the reply's token count
            assert m < 0 and round(n) >= 2 and abs(n - round(n)) < 1e-3
    prompts = [p["prompt"] for p in pairs]
    # a generation_config that truncates sampling (top_k=1 is greedy) does not leak into the KL's samples
    # (on a flattened copy of the toy, whose own replies hardly vary)
    flat = copy.deepcopy(model)
    with torch.no_grad():
        flat.lm_head.weight.mul_(0.2)
    flat.generation_config.top_k = 1
    seqs = pref._sample_ids(flat, tok, [prompts[0]] * 8, max_new_tokens=8, batch_size=8)
    assert len({tuple(r) for _, r in seqs}) > 1
    assert pref.sampled_kl(model, model, tok, prompts) == 0.0  # the same model: exactly 0
    other = copy.deepcopy(model)
    with torch.no_grad():
        torch.manual_seed(0)
        for w in other.parameters():
            w.add_(torch.randn_like(w) * 0.05)
    assert pref.sampled_kl(other, model, tok, prompts, samples=4) > 0
    assert pref.sampled_kl(model, other, tok, prompts, samples=4) > 0


def test_managed_files_validate(tmp_path):
    files = pref.managed_files(tmp_path)
    assert validate_dpo_file(files["openai_dpo"]).ok
    for name in ("bedrock_rft", "foundry_rft"):
        rows = [json.loads(x) for x in files[name].read_text().splitlines()]
        assert len(rows) >= 100 and all(set(r) == {"messages", "reference_answer"} for r in rows)  # Bedrock: >= 100
    foundry = json.loads(files["foundry_rft"].read_text().splitlines()[0])
    assert [m["role"] for m in foundry["messages"]] == ["user"]  # Foundry RFT takes no system message
    row = pref.to_openai_dpo(pref.preference_pairs()["train"][0])
    assert pref.from_openai_dpo(row)["chosen"] == row["preferred_output"]


@pytest.mark.timeout(900)
def test_ftlab_train_method_dpo(cli, tmp_path):
    """`ftlab train --config` with `method: dpo`: TRL's DPOTrainer on the toy pairs, a summary and an adapter."""
    cfg = tmp_path / "dpo.yaml"
    cfg.write_text("method: dpo\nbeta: 0.1\ndata: toy:preference\nmax_train_rows: 32\nquantization: none\n"
                   "learning_rate: 5e-4\nmax_steps: 2\nper_device_train_batch_size: 16\nreport_to: none\n")
    code, out, err = cli("train", "--config", str(cfg), "--out", str(tmp_path / "run"), "--json")
    assert code == 0, err
    s = json.loads(out[out.rindex("\n{\n") + 1:] if not out.startswith("{\n") else out)  # after TRL's log lines
    assert s["method"] == "dpo" and s["global_step"] == 2 and s["n_pairs"] == 32
    assert (tmp_path / "run" / "adapter" / "adapter_config.json").is_file()
    assert s["final_train_loss"] is not None and 0 < s["final_train_loss"] < 1.0  # log(2) = 0.693 at the start
    bad = tmp_path / "bad.yaml"
    bad.write_text("method: ppo\n")
    code, _, err = cli("train", "--config", str(bad))
    assert code == 2 and "method='ppo'" in err


def test_ftlab_train_method_dpo_rejects_a_bad_preference_file(cli, tmp_path):
    bad = tmp_path / "prefs.jsonl"
    bad.write_text('{"input": {"messages": []}}\n' * 12)
    cfg = tmp_path / "dpo.yaml"
    cfg.write_text(f"method: dpo\ndata: {bad}\nquantization: none\n")
    code, _, err = cli("train", "--config", str(cfg))
    assert code == 2 and "line 1" in err and "--method dpo" in err


def test_grpo_outcome_says_why_there_is_no_rise():
    """Notebook 11's GRPO verdict: medians, TRL's share of zero-variance groups, saturation and no-signal."""
    from ftlab.preference import grpo_outcome

    rising = grpo_outcome([0.2, 0.21, 0.19], [0.26, 0.27, 0.25], [{"frac_reward_zero_std": 0.25}, {"loss": 1.0},
                                                                  {"frac_reward_zero_std": 0.75}])
    assert (rising["reward_before"], rising["reward_after"], rising["frac_reward_zero_std"]) == (0.2, 0.26, 0.5)
    assert not rising["reward_saturated"] and not rising["no_signal"] and rising["explanation"] is None
    saturated = grpo_outcome([1.0, 0.995], [1.0], [{"frac_reward_zero_std": 1.0}])
    assert saturated["reward_saturated"] and "saturated" in saturated["explanation"]
    silent = grpo_outcome([0.0], [0.0], [{"frac_reward_zero_std": 0.95}])
    assert silent["no_signal"] and not silent["reward_saturated"] and "grpo_generations" in silent["explanation"]
    assert grpo_outcome([0.3], [0.3], [])["frac_reward_zero_std"] is None


def test_the_reports_print_what_was_measured():
    """``grpo_report`` and ``dpo_report`` (notebook 11's prints) show the measured figures, and only the notes that
    apply: the zero-variance share when TRL logged it, the explanation when there is one, the DPO note when the
    pairs moved towards the chosen reply without the model preferring it."""
    from ftlab.preference import dpo_report, grpo_outcome, grpo_report

    rising = grpo_outcome([0.2, 0.21], [0.26, 0.27], [{"frac_reward_zero_std": 0.5}])
    text = grpo_report(rising, [0.2, 0.21], [0.26, 0.27], 0.123)
    assert "0.205 -> 0.265" in text and "median of 2 seeds" in text and "50%" in text and "0.123 nats" in text
    assert "saturated" not in text and "alike" in grpo_report(rising, [0.2], [0.3], 0.1)
    assert "alike" not in grpo_report(grpo_outcome([0.2], [0.3], []), [0.2], [0.3], 0.1)
    before = {"preference_accuracy": 0.0, "support_pair_accuracy": 1.0, "refusal_rate": 0.1, "general_accuracy": 0.9}
    margins = {"chosen": 0.5, "rejected": -1.0, "margin": 1.5, "reward_accuracy": 1.0}
    moved = dpo_report(before, {**before, "preference_accuracy": 0.2}, margins)
    assert "0.00 -> 0.20" in moved and "refusal rate on held-out harmful requests 0.10 -> 0.10" in moved
    assert "not far enough" in moved and "not far enough" not in dpo_report(before, {**before, "preference_accuracy": 0.9},
                                                                             margins)


def test_dpo_train_rejects_a_negative_sft_weight(tmp_path):
    from ftlab.errors import FtlabError
    from ftlab.train import TrainConfig

    pairs = pref.preference_pairs(0)["train"][:2]
    with pytest.raises(FtlabError, match="sft_weight=-1"):
        pref.dpo_train(pairs, TrainConfig(output_dir=str(tmp_path), quantization="none"), sft_weight=-1.0)
