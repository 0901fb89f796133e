"""The toy world's base model: really pretrained, measured, and loaded like a hub model."""

from __future__ import annotations

import json
from pathlib import Path

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


def test_toy_model_dump_writes_what_the_toy_saw(tmp_path):
    """`ftlab toy-model --dump DIR` (issue 19 item 2): the corpus, probes, support splits and catalogs as JSONL,
    and the count of probe prompts found word for word in the training data."""
    import json
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "ftlab", "toy-model", "--dump", str(tmp_path), "--json"],
                         capture_output=True, text=True, check=True)
    res = json.loads(out.stdout)
    rows = {k: [json.loads(x) for x in Path(v).read_text(encoding="utf-8").splitlines()] for k, v in res["files"].items()}
    assert {k: len(v) for k, v in rows.items() if not k.startswith("corpus")} == {
        "probes_general": 200, "probes_safety": 100, "support_train": 1020, "support_valid": 180,
        "support_test": 200, "catalog_v1": 10, "catalog_v2": 10}
    assert len(rows["corpus"]) > 10_000 and all(r["messages"][-1]["role"] == "assistant" for r in rows["corpus"])
    users = {m["content"] for r in rows["corpus"] + rows["support_train"] + rows["support_valid"]
             for m in r["messages"] if m["role"] == "user"}
    for name in ("general", "safety", "support_test"):
        probes = rows["support_test" if name == "support_test" else f"probes_{name}"]
        found = sum(next(m["content"] for m in r["messages"] if m["role"] == "user") in users for r in probes)
        assert res["overlap"][name] == {"n": len(probes), "in_training": found}
    assert res["overlap"]["safety"]["in_training"] == 0


@pytest.mark.xfail(strict=True, reason="issue 19 item 3: the v1 toy's general probes (143/200) and support test "
                   "prompts (74/200) also occur in its training data; the v7 recipe (docs/wip) removes them")
def test_no_probe_prompt_is_in_the_training_data():
    from ftlab.toymodel import toy_overlap

    assert all(o["in_training"] == 0 for o in toy_overlap(0).values()), toy_overlap(0)
