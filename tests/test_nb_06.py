"""Notebook 06 (merge and deploy): the merge is exact, saved, timed and exported."""


import pytest

pytestmark = [pytest.mark.notebook]


def test_06_merge_is_exact_saved_timed_and_exported(run_notebook):
    f = run_notebook("06").figures
    assert f["quantized_merge_refused"] is True
    assert f["merge_precision"] == "float32 (full-precision reload)" and f["merged_lora_modules"] == 28
    assert f["merge_parity_ok"] and f["merge_greedy_identical"]
    assert f["merge_max_abs_logit_diff"] < f["merge_tolerance"] == 1e-3
    assert f["reload_max_abs_logit_diff"] == 0.0
    assert "model.safetensors" in f["merged_files"] and "tokenizer.json" in f["merged_files"]
    assert f["target_accuracy_merged"] >= 0.8
    assert f["latency_adapter_ms"] > 0 and f["latency_merged_ms"] > 0
    assert f["latency_ratio"] > 1.0  # the unmerged adapter is slower on the toy model
    assert f["lora_flop_overhead_8b"] < 0.01 < f["lora_flop_overhead_toy"]
    # llama.cpp (xllamacpp) loads the GGUF back: same tokens, same greedy replies, log-probs within 0.05
    g = f["gguf_parity"]
    assert g is not None and g["backend"].startswith("xllamacpp"), g
    assert g["tokenization_identical"] and g["greedy_identical"] and g["max_abs_logprob_diff"] < 0.05, g
    assert g["n_prompts"] == 48 and f["gguf_pre_tokenizer"] == "smollm"
    # ... and serves it: the openai SDK's answer from llama.cpp's server is the merged HF model's greedy reply
    r = f["gguf_server_reply"]
    assert r["reply"] and r["finish_reason"] in ("stop", "length") and r["completion_tokens"] > 0, r
    assert r["matches_hf"] and r["reply"].strip() == r["hf_reply"], r
    assert r["base_url"].startswith("http://127.0.0.1:") and r["stopped"] is True, r
