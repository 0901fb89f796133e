"""The 2-GPU benchmark's pure-Python parts (bench/scale_common.py), its report, its launcher script, and
the meta-device 4-bit model builder, run for real on a tiny shape on the CPU. The GPU runs themselves are
not run here (nor yet anywhere: bench/README.md)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from bench.scale_common import (
    SETUPS,
    aggregate_ranks,
    ddp_result,
    estimate,
    fsdp_result,
    param_seed,
    scaling_efficiency,
)

ROOT = Path(__file__).resolve().parent.parent


def test_param_seeds_are_stable_and_distinct():
    names = [f"model.layers.{i}.mlp.{p}.weight" for i in range(80) for p in ("gate_proj", "up_proj", "down_proj")]
    seeds = [param_seed(0, n) for n in names]
    assert len(set(seeds)) == len(seeds) and seeds == [param_seed(0, n) for n in names]
    assert all(0 <= s < 2**63 for s in seeds) and param_seed(1, names[0]) != seeds[0]


def test_aggregate_ranks_and_scaling_efficiency():
    ranks = [{"rank": 0, "timed_seconds": 10.0, "timed_tokens": 81920, "peak_allocated_gib": 30.0, "peak_reserved_gib": 32.0},
             {"rank": 1, "timed_seconds": 10.4, "timed_tokens": 81920, "peak_allocated_gib": 30.5, "peak_reserved_gib": 31.0}]
    agg = aggregate_ranks(ranks)
    assert agg["gpus"] == 2 and agg["tokens_per_s"] == pytest.approx(2 * 81920 / 10.4)  # the slowest rank sets the pace
    assert agg["peak_allocated_gib"] == 30.5 and agg["peak_reserved_gib"] == 32.0
    assert scaling_efficiency(1800.0, 1000.0) == pytest.approx(0.9)
    assert scaling_efficiency(3600.0, 1000.0, n=4) == pytest.approx(0.9)
    with pytest.raises(ValueError):
        aggregate_ranks([])


def test_setups_match_the_issue_and_the_recipe():
    ddp, fsdp = SETUPS["ddp_8b"], SETUPS["fsdp_70b"]
    assert ddp.shape == "llama-3.1-8b" and ddp.accelerate == "ddp"
    assert fsdp.shape == "llama-3.1-70b" and fsdp.accelerate == "fsdp_qlora"
    assert fsdp.quant_storage == "bfloat16" and fsdp.kbit_prep is False and fsdp.optim == "adamw_torch"
    for s in (ddp, fsdp):
        assert (ROOT / "ftlab" / "accelerate" / f"{s.accelerate}.yaml").is_file()
    e1, e2 = estimate(fsdp, 1), estimate(fsdp, 2)
    assert e2["peak_allocated_gib"] < e2["total_gib"] < e1["total_gib"]
    assert 20 < e2["peak_allocated_gib"] < 28  # what max_memory_allocated should show on each H200


def test_results_files(tmp_path):
    from bench.scale_gpu import cmd_report

    def run(gpus, tps, peak):
        return {"device": "NVIDIA H200", "date": "2026-01-01 00:00 UTC", "command": "x", "versions": {}, "gpus": gpus,
                "tokens_per_s": tps, "peak_allocated_gib": peak, "peak_reserved_gib": peak + 1, "per_rank": []}

    (tmp_path / "ddp_1gpu.json").write_text(json.dumps(run(1, 10000.0, 40.0)))
    (tmp_path / "ddp_2gpu.json").write_text(json.dumps(run(2, 18600.0, 40.2)))
    (tmp_path / "fsdp_70b.json").write_text(json.dumps(run(2, 900.0, 25.0)))

    class Args:
        raw, out = str(tmp_path), str(tmp_path / "scale.json")

    out = cmd_report(Args)
    assert json.loads((tmp_path / "scale.json").read_text()) == json.loads(json.dumps(out))
    assert out["ddp_8b"]["scaling_efficiency"] == pytest.approx(0.93) and out["ddp_8b"]["goal_met"] is True
    f = out["fsdp_70b"]
    assert f["fsdp_70b_peak_gib"] == 25.0 and f["fsdp_70b_tokens_per_s"] == 900.0
    assert f["estimate_error"] == pytest.approx((f["fsdp_70b_estimate_gib"] - 25.0) / 25.0, abs=1e-4)
    assert "meta device" in f["how_built"] and f["device"] == "NVIDIA H200"
    low = ddp_result(run(1, 10000.0, 1), run(2, 17000.0, 1), {})
    assert low["scaling_efficiency"] == pytest.approx(0.85) and low["goal_met"] is False
    assert fsdp_result(run(2, 1.0, 20.0), {}, "x")["estimate_error"] > 0


def test_run_script_uses_the_shipped_configs_and_keeps_multicast_off():
    text = (ROOT / "bench" / "run_scale.sh").read_text()
    configs = re.findall(r"--config_file (\S+)", text)
    assert configs == ["ftlab/accelerate/single_gpu.yaml", "ftlab/accelerate/ddp.yaml", "ftlab/accelerate/fsdp_qlora.yaml"]
    assert all((ROOT / c).is_file() for c in configs)
    assert "NCCL_NVLS_ENABLE=0" in text and "TORCH_SYMM_MEM_DISABLE_MULTICAST=1" in text
    assert "NOT YET RUN" in text and "not been run" in (ROOT / "bench" / "README.md").read_text()


def test_meta_device_4bit_model_is_materialized_identically_per_rank():
    """The 70B builder on a tiny shape, on the CPU: no parameter left on meta, 4-bit projections with bf16
    storage (half a byte per weight), the same weights from the same seed, and a working forward pass."""
    import bitsandbytes as bnb
    import torch
    from transformers import LlamaConfig

    from bench.scale_gpu import random_4bit_llama

    cfg = LlamaConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                      num_key_value_heads=2, vocab_size=256, max_position_embeddings=128, tie_word_embeddings=False)
    a = random_4bit_llama(cfg, "cpu", seed=0, quant_storage=torch.bfloat16, compute_dtype=torch.float32)
    b = random_4bit_llama(cfg, "cpu", seed=0, quant_storage=torch.bfloat16, compute_dtype=torch.float32)
    lin = [m for m in a.modules() if isinstance(m, bnb.nn.Linear4bit)]
    assert len(lin) == 7 * 2
    for m in lin:
        assert m.weight.dtype == torch.bfloat16 and m.weight.bnb_quantized
        assert m.weight.numel() * m.weight.element_size() * 2 == m.in_features * m.out_features
    def raw(t):  # bytes: packed 4-bit codes read as bf16 include NaN patterns, which never compare equal
        return t.reshape(-1).view(torch.uint8)

    assert all(torch.equal(raw(x), raw(y)) for x, y in zip(a.state_dict().values(), b.state_dict().values(), strict=True)
               if isinstance(x, torch.Tensor))
    c = random_4bit_llama(cfg, "cpu", seed=1, quant_storage=torch.bfloat16, compute_dtype=torch.float32)
    assert not torch.equal(raw(c.model.layers[0].mlp.up_proj.weight), raw(a.model.layers[0].mlp.up_proj.weight))
    q = a.model.layers[1].mlp.down_proj
    w = bnb.functional.dequantize_4bit(q.weight.data, q.weight.quant_state).float()
    assert 0.01 < w.std().item() < 0.03  # drawn with std 0.02
    assert torch.equal(a.model.norm.weight, torch.ones(64))
    assert getattr(a, "is_loaded_in_4bit", False)
    with torch.no_grad():
        logits = a(input_ids=torch.tensor([[1, 2, 3, 4]])).logits
    assert logits.shape == (1, 4, 256) and torch.isfinite(logits).all()
