"""ftlab.merge: quantized-merge refusal, merge parity, save/reload, latency, GGUF with llama.cpp's converter.

The adapters here are real PEFT adapters with random (non-zero) LoRA weights on the toy model, so
the merge has something to merge and no training is needed.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from transformers import AutoModelForCausalLM

from ftlab import data
from ftlab.errors import FtlabError
from ftlab.generation import chat_generate
from ftlab.merge import (
    generation_latency,
    gguf_status,
    llama_cpp_pre_tokenizer,
    load_unmerged,
    logit_parity,
    logits_diff,
    lora_flop_overhead,
    merge_adapter,
    quantization_of,
    save_merged,
)
from ftlab.toymodel import TOY_MODEL_ID, toy_model_dir
from ftlab.train import load_base
from tests.helpers import skip_or_fail


@pytest.fixture(scope="module")
def adapter_dir(tmp_path_factory):
    import torch
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(0)
    base, _, _ = load_base(TOY_MODEL_ID, "none")
    cfg = LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj", "v_proj", "down_proj"], init_lora_weights=False)
    model = get_peft_model(base, cfg)
    with torch.no_grad():  # a smaller update than the random init, like a trained adapter
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.mul_(0.1)
    out = tmp_path_factory.mktemp("adapter")
    model.save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def convs():
    test = data.support_splits(0)["test"]
    return [e["messages"] for e in test[:12] + data.safety_examples(4, probe=True)]


def test_merge_into_a_4bit_base_is_refused_with_a_clear_message(adapter_dir):
    from peft import PeftModel

    q, _, _ = load_base(TOY_MODEL_ID, "4bit")
    assert quantization_of(q) == "bitsandbytes 4-bit (nf4)"
    assert quantization_of(load_base(TOY_MODEL_ID, "none")[0]) is None
    with pytest.raises(FtlabError) as err:
        merge_adapter(PeftModel.from_pretrained(q, str(adapter_dir)))
    msg = str(err.value)
    assert msg.startswith("refusing to merge into a quantized base (bitsandbytes 4-bit (nf4))")
    assert "dequantize=True" in msg and "\n" not in msg


def test_merged_model_matches_the_adapter(adapter_dir, convs):
    merged, tok, info = merge_adapter(adapter_dir)
    assert info.precision == "float32 (full-precision reload)" and info.lora_modules == 4 * 3
    assert not any("lora" in n for n, _ in merged.named_modules())
    reference, _ = load_unmerged(adapter_dir)
    p = logit_parity(reference, merged, tok, convs)
    assert p.tolerance == 1e-3 and p.max_abs_logit_diff < 1e-3 and p.greedy_identical and p.ok
    # The adapter changes the model, so the check could fail: base vs adapter is far apart.
    base, _, _ = load_base(TOY_MODEL_ID, "none")
    assert logits_diff(base, reference, tok, convs)[0] > 0.05


def test_dequantize_on_purpose_merges_the_4bit_weights(adapter_dir, convs):
    merged_dq, tok, info = merge_adapter(adapter_dir, dequantize=True)
    assert info.dequantized and "dequantized from bitsandbytes 4-bit (nf4)" in info.precision
    assert quantization_of(merged_dq) is None
    ref, _ = load_unmerged(adapter_dir, dequantize=True)
    assert logit_parity(ref, merged_dq, tok, convs).ok
    merged_full, _, _ = merge_adapter(adapter_dir)
    assert logits_diff(merged_dq, merged_full, tok, convs)[0] > 0.01  # nf4 rounding: a different base


def test_saved_merge_reloads_with_from_pretrained(adapter_dir, convs, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    merged, tok, _ = merge_adapter(adapter_dir)
    saved = save_merged(merged, tok, tmp_path / "merged")
    assert "model.safetensors" in saved["files"] and "tokenizer.json" in saved["files"]
    assert "config.json" in saved["files"]
    again = AutoModelForCausalLM.from_pretrained(saved["path"])
    tok2 = AutoTokenizer.from_pretrained(saved["path"])
    assert tok2.chat_template == tok.chat_template
    assert logits_diff(merged, again, tok2, convs)[0] == 0.0


def test_latency_and_flop_overhead(adapter_dir, convs):
    merged, tok, _ = merge_adapter(adapter_dir)
    lat = generation_latency(merged, tok, convs[:2], new_tokens=6, repeats=1)
    assert lat.new_tokens == 6 and lat.n_prompts == 2 and lat.median_ms_per_request > 0
    assert lora_flop_overhead("llama-3.1-8b", 16) == pytest.approx(0.0056, abs=0.0005)
    assert 0.1 < lora_flop_overhead(str(toy_model_dir()), 16) < 0.25


def test_toy_tokenizer_maps_to_llama_cpp_smollm_pre_tokenizer(tmp_path):
    folder = toy_model_dir()
    assert llama_cpp_pre_tokenizer(folder) == "smollm"
    tj = json.loads((folder / "tokenizer.json").read_text())
    tj["pre_tokenizer"]["pretokenizers"][0]["individual_digits"] = False
    (tmp_path / "tokenizer.json").write_text(json.dumps(tj))
    assert llama_cpp_pre_tokenizer(tmp_path) is None  # any other declaration: let the converter decide


def test_merge_adapter_names_a_missing_adapter(tmp_path):
    with pytest.raises(FtlabError, match=r"adapter_config\.json"):
        merge_adapter(tmp_path)


@pytest.fixture(scope="module")
def gguf_export(adapter_dir, tmp_path_factory):
    """The merged toy model, saved and converted by llama.cpp's converter (once for the tests below)."""
    from ftlab.merge import convert_to_gguf

    status = gguf_status()
    if not status["ready"]:
        skip_or_fail(f"the GGUF step cannot run here: {status['reason']}")
    merged, tok, _ = merge_adapter(adapter_dir)
    out = tmp_path_factory.mktemp("gguf")
    saved = save_merged(merged, tok, out / "merged")
    return merged, tok, convert_to_gguf(saved["path"], out / "m.gguf")


def test_gguf_conversion_load_back_and_serve(gguf_export, convs):
    """llama.cpp's converter writes the GGUF; llama.cpp's server (xllamacpp) loads it back, matches HF, answers the SDK."""
    from ftlab.merge import gguf_parity, llama_server, server_reply

    merged, tok, export = gguf_export
    assert Path(export.path).read_bytes()[:4] == b"GGUF"
    assert export.pre_tokenizer == "smollm" and export.pre_tokenizer_from_declaration
    with llama_server(export.path) as server:
        assert server.is_up() and server.base_url.startswith("http://127.0.0.1:")
        p = gguf_parity(server, merged, tok, convs, max_new_tokens=16)
        reply = server_reply(server, convs[0][:-1], max_tokens=16)
    assert server.stopped and not server.is_up()
    assert p.tokenization_identical and p.greedy_identical and p.max_abs_logprob_diff < 0.05, p
    assert p.backend.startswith("xllamacpp") and p.n_prompts == len(convs)
    assert reply["reply"] == chat_generate(merged, tok, [convs[0]], max_new_tokens=16)[0], reply


def test_gguf_parity_catches_a_different_model(gguf_export, convs):
    """The check can fail: the merged model's GGUF against the *base* model's HF weights."""
    from ftlab.merge import gguf_parity

    _, tok, export = gguf_export
    base = AutoModelForCausalLM.from_pretrained(str(toy_model_dir()))
    p = gguf_parity(export.path, base, tok, convs[:6], max_new_tokens=16)
    assert p.tokenization_identical and p.max_abs_logprob_diff > 0.05, p


def test_llama_server_names_a_missing_gguf(tmp_path):
    from ftlab.merge import llama_server

    with pytest.raises(FtlabError, match=r"gguf_file .*no such file"), llama_server(tmp_path / "none.gguf"):
        pass


def test_gguf_setup_checks_that_the_converter_starts_offline(tmp_path):
    """`ftlab gguf-setup` runs the extracted converter once offline; an incomplete copy fails there, loudly."""
    import shutil

    from ftlab.merge import check_converter, llama_cpp_converter_dir

    folder = llama_cpp_converter_dir()
    if folder is None:
        skip_or_fail("llama.cpp's converter is not extracted (run `ftlab gguf-setup`)")
    check_converter(folder)  # the real one starts
    broken = tmp_path / "broken"
    shutil.copytree(folder, broken, ignore=shutil.ignore_patterns("conversion"))
    with pytest.raises(FtlabError, match=r"does not start offline: ModuleNotFoundError.*conversion"):
        check_converter(broken)
