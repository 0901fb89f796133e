"""The VRAM estimator's arithmetic, its CLI, the recommended configuration and the results table."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ftlab.errors import FtlabError, ParameterError
from ftlab.memory import (
    GIB,
    SHAPES,
    ModelShape,
    TrainSetup,
    bench_table,
    estimate_memory,
    layer_activation_bytes_per_token,
    lora_param_count,
    recommend_config,
    resolve_shape,
    seed_claims,
    weight_bytes,
)

L8 = SHAPES["llama-3.1-8b"]


def test_builtin_shapes_have_the_published_parameter_counts():
    assert L8.num_params == pytest.approx(8.03e9, rel=0.005)
    assert SHAPES["llama-3.1-70b"].num_params == pytest.approx(70.55e9, rel=0.005)
    assert SHAPES["llama-3.2-1b"].num_params == pytest.approx(1.236e9, rel=0.01)
    assert SHAPES["qwen2.5-0.5b"].num_params == pytest.approx(0.494e9, rel=0.01)


def test_nf4_weights_count_codes_and_quant_state_and_keep_embeddings_unquantized():
    w = weight_bytes(L8, "nf4-dq", kbit_prep=False)
    n = sum(a * b for a, b in L8.linear_shapes().values()) * L8.num_layers  # 6.98e9 quantized weights
    # 4 bits per weight + 1 byte per 64-block (uint8 absmax) + fp32 per 256 blocks: 0.5 + 1/64 + 1/4096 B
    assert w["weights_quantized"] == pytest.approx(n * (0.5 + 1 / 64 + 4 / (64 * 256)), rel=0.001)
    assert w["weights_embeddings_lm_head"] == 2 * 128256 * 4096 * 2  # embed_tokens + lm_head in bf16
    no_dq = weight_bytes(L8, "nf4", kbit_prep=False)["weights_quantized"]
    # without double quant the absmax is fp32 (4 B per block) instead of uint8 + the nested fp32 absmax
    assert no_dq - w["weights_quantized"] == pytest.approx(n * (3 / 64 - 4 / (64 * 256)), rel=0.005)
    # kbit prep upcasts the embeddings to fp32: twice the bytes
    assert weight_bytes(L8, "nf4-dq", kbit_prep=True)["weights_embeddings_lm_head"] == 2 * w["weights_embeddings_lm_head"]
    assert weight_bytes(L8, "bf16")["weights_quantized"] == pytest.approx(2 * n, rel=0.001)
    assert weight_bytes(L8, "int8")["weights_quantized"] == pytest.approx(n, rel=0.002)
    tied = weight_bytes(SHAPES["llama-3.2-1b"], kbit_prep=False)["weights_embeddings_lm_head"]
    assert tied == 128256 * 2048 * 2  # one matrix when the lm_head is tied


def test_lora_parameter_count_by_hand():
    # per layer: q 16·(4096+4096), k and v 16·(4096+1024), o like q, gate/up/down 16·(4096+14336)
    per_layer = 16 * (8192 + 5120 + 5120 + 8192 + 3 * 18432)
    assert lora_param_count(L8, 16) == 32 * per_layer == 41_943_040
    assert lora_param_count(L8, 64) == 4 * lora_param_count(L8, 16)
    assert lora_param_count(L8, 16, ("q_proj", "v_proj")) == 32 * 16 * (8192 + 5120)


def test_optimizer_states_paged_are_outside_torch_allocated():
    kw = {"gradient_checkpointing": True}
    paged = estimate_memory(L8, 1024, 1, optim="paged_adamw_8bit", **kw)
    eight = estimate_memory(L8, 1024, 1, optim="adamw_8bit", **kw)
    adamw = estimate_memory(L8, 1024, 1, optim="adamw", **kw)
    n = lora_param_count(L8, 16)
    assert paged.breakdown["optimizer_states_paged"] == pytest.approx(2 * n, rel=0.01)  # 2 uint8 states
    assert eight.breakdown["optimizer_states"] == pytest.approx(2 * n + 2 * 4 * n / 256, rel=0.01)
    assert adamw.breakdown["optimizer_states"] == pytest.approx(2 * 2 * n, rel=0.01)  # bf16 adapters
    assert paged.peak_allocated < eight.peak_allocated < adamw.peak_allocated


def test_activation_terms_by_hand_for_llama_8b():
    h, i = 4096, 14336
    s = TrainSetup(seq_len=1024, kbit_prep=False, lora_dropout=0.05, attention="flash", padded=False)
    expected = (
        2 * (4 * h + 4)  # two RMSNorms keep an fp32 copy of their input and the fp32 rsqrt
        + 3 * 3 * h  # q, k, v: bool dropout mask + bf16 input of lora_A
        + 3 * h  # o_proj
        + 2 * 3 * h  # gate, up
        + 3 * i  # down
        + 7 * 2 * 16  # lora_A outputs (r=16, bf16)
        + (2 * h + 2 * 2 * 1024 + 2 * h + 4 * 32)  # attention: q, k, v (8 KV heads), output, fp32 lse
        + 3 * 2 * i  # SiLU input, SiLU output, up output
    )
    assert layer_activation_bytes_per_token(L8, s) == expected
    # a padding mask forces repeated k/v and a saved additive bias
    padded = layer_activation_bytes_per_token(L8, TrainSetup(seq_len=1024, kbit_prep=False, attention="sdpa"))
    assert padded - expected == pytest.approx(2 * 2 * (h - 1024) + 2 * 1024, abs=1)
    # kbit prep: the residual stream is fp32, so the MLP's saved tensors double
    fp32 = layer_activation_bytes_per_token(L8, TrainSetup(seq_len=1024, kbit_prep=True, attention="flash",
                                                             padded=False))
    assert fp32 - expected == 3 * 2 * i


def test_gradient_checkpointing_keeps_only_layer_inputs():
    off = estimate_memory(L8, 1024, 4, gradient_checkpointing=False)
    on = estimate_memory(L8, 1024, 4, gradient_checkpointing=True)
    weights = sum(v for k, v in on.breakdown.items() if k.startswith("weights_"))
    assert (on.peak_allocated - weights) < 0.2 * (off.peak_allocated - weights)
    half = estimate_memory(L8, 1024, 4, gradient_checkpointing=True, checkpoint_every=2)
    assert on.peak_allocated < half.peak_allocated < off.peak_allocated


def test_memory_grows_with_tokens_and_model_size():
    sizes = [estimate_memory(L8, s, b, gradient_checkpointing=True).peak_allocated
             for s, b in [(512, 1), (1024, 1), (1024, 4), (2048, 4)]]
    assert sizes == sorted(sizes) and len(set(sizes)) == 4
    assert estimate_memory("llama-3.1-70b", 1024, 1).total > 4 * estimate_memory(L8, 1024, 1).total


def test_full_logits_cost_what_the_seeds_leave_out():
    fused = estimate_memory(L8, 1024, 4, gradient_checkpointing=True, kbit_prep=False)
    full = estimate_memory(L8, 1024, 4, gradient_checkpointing=True, kbit_prep=False, loss="full_logits")
    tokens, vocab = 4096, 128256
    # bf16 logits + fp32 upcast + fp32 log-softmax, then the backward's fp32 grads: > 10 bytes per logit
    assert full.breakdown["logits_and_loss"] >= 10 * tokens * vocab
    assert full.peak_allocated - fused.peak_allocated > 4 * GIB


def test_seed_claims_are_explained_by_the_parts():
    c = seed_claims()
    l8, l70 = c["llama-3.1-8b"], c["llama-3.1-70b"]
    assert (l8["seed_gb"], l70["seed_gb"]) == (16, 48)
    assert l8["naive_4bit_gb"] == pytest.approx(4.0, abs=0.1)  # the articles' "8B × 0.5 bytes"
    assert l8["lora_params_gb"] < 0.1 < 2  # 42 M bf16 parameters, not 2 GB
    assert l8["optimizer_gb"] < 0.1 < 4  # 2 bytes per LoRA parameter, not 4 GB
    assert l8["embeddings_lm_head_gb"] == pytest.approx(4.2, abs=0.01)  # fp32 after kbit prep, never 4-bit
    assert 10 < l8["ours_total_gb"] < 20
    assert l70["ours_total_gb"] > 48  # 35 GB of 4-bit linears + 8.4 GB of fp32 embeddings + activations


def test_shape_from_config_json(tmp_path):
    cfg = {"model_type": "llama", "hidden_size": 64, "num_hidden_layers": 2, "intermediate_size": 128,
           "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 100, "tie_word_embeddings": True}
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    shape = resolve_shape(str(tmp_path))
    assert (shape.hidden_size, shape.num_kv_heads, shape.tie_word_embeddings) == (64, 2, True)
    assert resolve_shape(str(tmp_path / "config.json")) == shape
    (tmp_path / "bad.json").write_text('{"hidden_size": 3}')
    with pytest.raises(FtlabError, match=r"num_attention_heads|num_hidden_layers|intermediate_size"):
        resolve_shape(str(tmp_path / "bad.json"))
    with pytest.raises(ParameterError, match="neither a built-in shape"):
        resolve_shape("llama-9")


def test_bad_setup_values_name_the_parameter():
    with pytest.raises(ParameterError, match="optim="):
        estimate_memory(L8, 1024, optim="sgd")
    with pytest.raises(ParameterError, match="padding_free"):
        estimate_memory(L8, 1024, padding_free=True, attention="sdpa")
    with pytest.raises(ParameterError, match="lora_targets"):
        estimate_memory(L8, 1024, lora_targets=("qproj",))


def test_recommend_config_prefers_padding_free_and_fits_the_budget():
    a = estimate_memory(L8, 1024, 4, gradient_checkpointing=True)  # seed-like A
    rec = recommend_config(L8, 80, budget_gib=a.total_gib, flash_attn=False, flex_attn=True, liger=False)
    assert rec.padding_free and rec.attn_implementation == "flex_attention"
    assert rec.estimate.total_gib <= a.total_gib
    assert rec.tokens_per_step >= 4 * 1024  # the bf16 residual stream frees room for a bigger step
    kw = rec.sft_config_kwargs()
    assert kw["packing"] and kw["packing_strategy"] == "bfd" and kw["pad_to_multiple_of"] == rec.tokens_per_step
    assert kw["max_length"] == rec.tokens_per_step and kw["per_device_train_batch_size"] == 1
    big = recommend_config(L8, 80, flash_attn=True, liger=False)
    assert big.attn_implementation == "flash_attention_2" and not big.gradient_checkpointing
    plain = recommend_config(L8, 24, flash_attn=False, flex_attn=False, liger=False, cuda=False)
    assert plain.attn_implementation == "sdpa" and not plain.padding_free
    with pytest.raises(FtlabError, match="does not fit"):
        recommend_config("llama-3.1-70b", 24, flash_attn=False, flex_attn=False, liger=False)


def test_cli_json_and_errors(cli, tmp_path):
    code, out, _ = cli("estimate-memory", "--model", "llama-3.1-8b", "--seq-len", "1024", "--batch-size", "4",
                       "--gradient-checkpointing", "--optim", "paged_adamw_8bit", "--json")
    assert code == 0
    data = json.loads(out)
    est = estimate_memory(L8, 1024, 4, gradient_checkpointing=True)
    assert data["total_gib"] == pytest.approx(est.total_gib, abs=1e-3)
    assert {"weights_quantized", "weights_embeddings_lm_head", "lora_params", "gradients", "optimizer_states",
            "activations", "logits_and_loss", "cuda_context", "allocator_overhead"} <= set(data["breakdown"])
    assert sum(data["breakdown"].values()) == pytest.approx(data["total_gib"], abs=0.01)
    code, out, _ = cli("estimate-memory", "--model", "qwen2.5-0.5b", "--seq-len", "512", "--lora-r", "64")
    assert code == 0 and "total on the GPU" in out
    code, _, err = cli("estimate-memory", "--model", "nope", "--seq-len", "512")
    assert code == 2 and "built-in shape" in err and "Traceback" not in err
    code, _, err = cli("estimate-memory", "--model", "llama-3.1-8b", "--seq-len", "0")
    assert code == 2 and "--seq-len" in err


def test_bench_table_reads_results(tmp_path):
    with pytest.raises(FtlabError, match="no GPU results"):
        bench_table(tmp_path)
    run = {"label": "seed-like", "tokens_per_s": 1000.0, "mfu": 0.04, "peak_allocated_gib": 10.0,
           "peak_reserved_gib": 11.0, "mean_tokens_per_step": 2500, "gradient_checkpointing": True}
    (tmp_path / "throughput_h100.json").write_text(json.dumps(
        {"device": "H100", "date": "2026-11-23", "speedup": 2.0, "runs": {"A": run, "B": {**run, "label": "rec"}}}))
    (tmp_path / "estimator_h100.json").write_text(json.dumps({"device": "H100", "date": "2026-11-23",
        "max_abs_error": 0.05, "configs": [{"model": "llama-3.1-8b", "seq_len": 512, "batch_size": 1, "lora_r": 16,
        "gradient_checkpointing": False, "measured_peak_allocated_gib": 9.0, "estimated_peak_allocated_gib": 9.45,
        "estimate_error": 0.05}]}))
    table = bench_table(tmp_path)
    assert "B/A = **2.00×**" in table and "| +5.0% |" in table and "| A: seed-like | 1000 |" in table


def test_bench_results_ship_inside_the_package():
    """bench_table() reads ftlab/bench_results/ (package data), not the repository's bench/results/, so a wheel
    install has the figures; the copies are the committed results, byte for byte."""
    import fnmatch
    import tomllib

    import ftlab
    from ftlab import memory

    pkg = Path(ftlab.__file__).resolve().parent
    assert memory.results_dir() == pkg / "bench_results"
    globs = tomllib.loads((pkg.parent / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["ftlab"]
    for name in memory.BENCH_RESULT_FILES:
        shipped = memory.results_dir() / name
        assert any(fnmatch.fnmatch(f"bench_results/{name}", g) for g in globs), f"{name} is not package data"
        committed = pkg.parent / "bench" / "results" / name
        assert shipped.read_bytes() == committed.read_bytes(), f"copy bench/results/{name} to ftlab/bench_results/"
    table = bench_table()
    assert "B/A = **" in table and "Unsloth" in table and "Estimator accuracy" in table


def test_bench_table_works_from_a_wheel_install(tmp_path):
    """Build the wheel (offline, no build isolation), install it into a folder, and call bench_table() from there,
    outside the repository: the figures come with the package."""
    import shutil
    import subprocess
    import sys

    repo, src = Path(__file__).resolve().parent.parent, tmp_path / "src"  # a copy: the build leaves build/ behind
    shutil.copytree(repo / "ftlab", src / "ftlab", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(repo / name, src / name)
    pip = [sys.executable, "-m", "pip", "-q", "--disable-pip-version-check"]
    subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(tmp_path / "whl"), str(src)],
                   check=True, cwd=tmp_path, capture_output=True)
    wheel = next((tmp_path / "whl").glob("ftlab-*.whl"))
    subprocess.run([*pip, "install", "--no-deps", "--target", str(tmp_path / "site"), str(wheel)], check=True,
                   capture_output=True)
    code = "import ftlab.memory as m; print(m.__file__); print(m.bench_table())"
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env={"PYTHONPATH": str(tmp_path / "site")},
                         check=True, capture_output=True, text=True).stdout
    assert out.startswith(str(tmp_path / "site")) and "B/A = **" in out and "Estimator accuracy" in out


@pytest.mark.slow
@pytest.mark.parametrize("kbit_prep", [False, True])
def test_activation_model_matches_what_autograd_saves(kbit_prep: bool) -> None:
    """A real 4-bit QLoRA forward on the CPU (bitsandbytes, PEFT, autocast): count the bytes autograd saves
    per layer (4 layers minus 2 layers, so shared tensors cancel) against the estimator's per-layer term."""
    torch = pytest.importorskip("torch")
    from ftlab.memory import measure_saved_bytes_per_layer

    shape = ModelShape("tiny", 256, 2, 768, 4, 2, 1024)
    measured = measure_saved_bytes_per_layer(shape, seq_len=256, kbit_prep=kbit_prep, lora_dropout=0.0)
    model = layer_activation_bytes_per_token(
        shape, TrainSetup(seq_len=256, kbit_prep=kbit_prep, lora_dropout=0.0, attention="flash", padded=False))
    assert torch.is_tensor(torch.zeros(1))
    assert measured == pytest.approx(model, rel=0.03)
