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


def _users(rows) -> set[str]:
    """The user prompts of examples (``{"messages": ...}``) or of bare conversations (lists of messages)."""
    return {m["content"] for r in rows for m in (r["messages"] if isinstance(r, dict) else r) if m["role"] == "user"}


def _trained_prompts(seed: int) -> set[str]:
    """Every user prompt any training data of toy seed ``seed`` holds: the pretraining corpus, the support splits,
    ``support_mix`` and notebook 08's training runs (assistant-only loss or not: the prompt was seen)."""
    from ftlab.failures import LabSettings, plan_runs
    from ftlab.toymodel import ToyRecipe, _pretraining_corpus

    sp = data.support_splits(seed)
    runs = plan_runs(LabSettings(seed=seed, toy_seed=seed))
    return (_users(_pretraining_corpus(ToyRecipe(seed=seed))) | _users(sp["train"]) | _users(sp["validation"])
            | _users(data.support_mix(seed)) | set().union(*(_users(r.train_rows) for r in runs.values())))


def _test_prompts(seed: int) -> dict[str, set[str]]:
    from ftlab.evaluate import toy_eval_set
    from ftlab.failures import make_probes
    from ftlab.probes import probe_sets

    ev, ps, nb08 = toy_eval_set(seed), probe_sets("toy", seed=seed), make_probes(seed)
    return {"toy_eval_set target": _users(ev.target), "toy_eval_set general": _users(ev.general),
            "toy_eval_set safety": _users(ev.safety), "notebook 00 general": _users(ps.general),
            "notebook 00 safety": _users(ps.safety), "notebook 08 general": _users(nb08.general),
            "notebook 08 safety": _users(nb08.safety), "notebook 08 target": _users(nb08.target),
            "build general": _users(data.general_examples(200, seed=seed, probe=True)),
            "build safety": _users(data.safety_examples(100, seed=seed, probe=True)),
            "build target": _users(data.support_splits(seed)["test"][:100])}


@pytest.mark.parametrize("seed", SEEDS)
def test_no_probe_prompt_is_in_the_training_data(seed):
    """Issue 19 item 3: no user prompt of any test set is in the corpus or in any training mix, for every seed's
    training data (a toy of seed 1 may be probed with seed 0's sets). Checked on the data: no training needed."""
    from ftlab.toymodel import toy_overlap

    assert all(o["in_training"] == 0 for o in toy_overlap(seed).values()), toy_overlap(seed)
    trained = set().union(*(_trained_prompts(s) for s in SEEDS))
    assert len(trained) > 5000
    leaks = {name: sorted(p & trained)[:3] for name, p in _test_prompts(seed).items() if p & trained}
    assert not leaks, f"test prompts found in training data: {leaks}"


def test_the_overlap_check_can_fail():
    """The check above catches a leak: training-side prompts (``probe=False``) drawn as probes would overlap."""
    trained = _trained_prompts(0)
    assert data.support_splits(0)["train"][0]["messages"][1]["content"] in trained
    assert len(_users(data.general_examples(200, seed=0)) & trained) > 50
    probes = _users(data.general_examples(300, seed=5, probe=True)) | _users(data.support_splits(5)["test"])
    train = _users(data.general_examples(300, seed=5)) | _users(data.support_splits(5)["train"])
    assert all(map(data.is_held_out, probes)) and not any(map(data.is_held_out, train))


def test_fast_chat_encoding_matches_the_chat_template():
    from transformers import AutoTokenizer

    from ftlab.toymodel import encode_chats

    tok = AutoTokenizer.from_pretrained(resolve_model(TOY_MODEL_ID))
    convs = [e["messages"] for e in data.support_splits()["train"][:20] + data.general_examples(20)
             + data.safety_examples(20)]
    ids, masks = encode_chats(tok, convs)
    for conv, i, m in zip(convs, ids, masks, strict=True):
        enc = tok.apply_chat_template(conv, tokenize=True, return_dict=True, return_assistant_tokens_mask=True)
        assert (list(enc["input_ids"]), list(enc["assistant_masks"])) == (i, m)


def test_packed_rows_see_one_conversation_at_a_time():
    import torch

    from ftlab.toymodel import _collate

    a, b = [1, 10, 11, 12], [1, 20, 21]  # 1 = BOS starts each conversation
    inp, kw, weight = _collate([(a + b, [1.0] * 7), (a, [1.0] * 4)], pad_id=0, packed=True)
    mask = kw["attention_mask"][0, 0]
    assert kw["position_ids"][0].tolist() == [0, 1, 2, 3, 0, 1, 2]
    assert not mask[4:, :4].any() and mask[6, 4:].all() and not mask[0, 1]
    assert weight[1, 4:].sum() == 0 and inp[1, 4:].tolist() == [0, 0, 0]
    assert torch.equal(mask[:4, :4], torch.tril(torch.ones(4, 4, dtype=torch.bool)))
