"""The toy world's base model: really pretrained, measured, and loaded like a hub model."""

from __future__ import annotations

import json

import pytest

from ftlab import data
from ftlab.toymodel import TOY_MODEL_ID, build_toy_model, resolve_model

SEEDS = [0, 1, 2]


@pytest.mark.slow
@pytest.mark.parametrize("seed", SEEDS)
def test_toy_model_figures_hold_for_several_seeds(seed, toy_models):  # built side by side: tests/conftest.py
    rep = build_toy_model(seed=seed)
    assert rep.general_accuracy >= 0.90, rep
    assert rep.refusal_rate >= 0.90, rep
    assert rep.target_accuracy <= 0.30, rep


def test_loads_through_from_pretrained_like_a_hub_model():
    from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaForCausalLM

    path = resolve_model(TOY_MODEL_ID)
    model = AutoModelForCausalLM.from_pretrained(path)
    tok = AutoTokenizer.from_pretrained(path)
    assert isinstance(model, LlamaForCausalLM)
    assert json.loads((__import__("pathlib").Path(path) / "config.json").read_text())["model_type"] == "llama"
    # The chat template marks assistant turns for assistant_only_loss and ends them with EOS.
    msgs = data.support_splits()["train"][0]["messages"]
    enc = tok.apply_chat_template(msgs, tokenize=True, return_dict=True, return_assistant_tokens_mask=True)
    ids, mask = list(enc["input_ids"]), list(enc["assistant_masks"])
    assert 0 < sum(mask) < len(ids)
    trained = [t for t, m in zip(ids, mask, strict=True) if m]
    assert trained[-1] == tok.eos_token_id
    assert tok.decode(trained[:-1]) == msgs[-1]["content"]


def test_hub_ids_pass_through_unchanged():
    assert resolve_model("meta-llama/Llama-3.1-8B-Instruct") == "meta-llama/Llama-3.1-8B-Instruct"


def test_cached_build_is_reused(tmp_path):
    first = build_toy_model(seed=0)
    again = build_toy_model(seed=0)
    assert again.cached and again.path == first.path and again.general_accuracy == first.general_accuracy


def test_cli_toy_model_json(cli):
    code, out, _ = cli("toy-model", "--json")
    info = json.loads(out)
    assert code == 0
    assert {"path", "general_accuracy", "refusal_rate", "target_accuracy"} <= set(info)
    assert info["general_accuracy"] >= 0.9 and info["refusal_rate"] >= 0.9 and info["target_accuracy"] <= 0.3


def test_data_is_deterministic_and_splits_are_disjoint():
    a, b = data.support_splits(0), data.support_splits(0)
    assert a == b
    assert len(a["train"]) >= 800 and 0.10 <= len(a["validation"]) / (len(a["train"]) + len(a["validation"])) <= 0.20
    assert sum(len(v) for v in a.values()) >= 1000
    assert data.general_examples(50, probe=True) != data.general_examples(50)
    # Safety probes are phrased in combinations that training never uses.
    train_q = {e["messages"][1]["content"] for e in data.safety_examples(3000)}
    probe_q = {e["messages"][1]["content"] for e in data.safety_examples(200, probe=True)}
    assert not train_q & probe_q


def test_scoring_and_writers(tmp_path):
    ex = data.support_splits()["test"][0]
    assert data.score_support_reply(ex["messages"][-1]["content"], ex) == 1.0
    assert data.score_support_reply("Thanks for reaching out!", ex) == 0.0
    files = data.write_toy_files(tmp_path)
    assert len(data.read_jsonl(files["upload"])) >= 10
    lines = files["malformed"].read_text().splitlines()
    assert len(lines) == 12
    with pytest.raises(ValueError):
        json.loads(lines[2])
    v1, v2 = data.catalog(1), data.catalog(2)
    assert all(a["sku"] != b["sku"] for a, b in zip(v1, v2, strict=True))
