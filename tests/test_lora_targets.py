"""LoRA targets for each model family, from tiny random models built from transformers configs (offline), plus
size_defaults and default_device_map."""

from __future__ import annotations

import pytest
import torch

from ftlab.errors import FtlabError
from ftlab.merge import MERGE_DTYPE
from ftlab.train import (
    LLAMA_TARGET_MODULES,
    default_device_map,
    first_lora_module,
    lora_targets,
    lr_scale,
    size_defaults,
    target_modules_for,
)

SMALL = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
             vocab_size=128, max_position_embeddings=64)


def _tiny(name: str, **extra):
    import transformers

    config = getattr(transformers, f"{name}Config")(**{**SMALL, **extra})
    torch.manual_seed(0)
    return getattr(transformers, f"{name}ForCausalLM")(config)


@pytest.mark.parametrize("family", ["Llama", "Qwen2", "Mistral", "Gemma", "Gemma2"])
def test_dense_families_get_the_seven_projections(family):
    model = _tiny(family, **({"head_dim": 8} if family.startswith("Gemma") else {}))
    assert target_modules_for(model) == LLAMA_TARGET_MODULES
    name, module = first_lora_module(model)
    assert name == "model.layers.0.self_attn.q_proj" and isinstance(module, torch.nn.Linear)


def test_fused_phi3_projections():
    model = _tiny("Phi3", pad_token_id=0)
    t = lora_targets(model)
    assert t.modules == ["o_proj", "down_proj", "qkv_proj", "gate_up_proj"] and t.family == "fused projections"
    assert first_lora_module(model)[0] == "model.layers.0.self_attn.o_proj"  # defined before qkv_proj in Phi-3


@pytest.mark.parametrize("family,extra", [("Mixtral", {"num_local_experts": 4, "num_experts_per_tok": 2}),
                                          ("Qwen2Moe", {"num_experts": 4, "num_experts_per_tok": 2,
                                                        "moe_intermediate_size": 16,
                                                        "shared_expert_intermediate_size": 32})])
def test_moe_experts_are_trained_not_silently_dropped(family, extra):
    from peft import LoraConfig, get_peft_model

    model = _tiny(family, **extra)
    t = lora_targets(model)
    assert t.family == "mixture of experts" and "router" in t.note
    assert {"q_proj", "k_proj", "v_proj", "o_proj"} <= set(t.modules)
    assert t.parameters == ["experts.gate_up_proj", "experts.down_proj"]
    if family == "Qwen2Moe":  # the shared expert is a dense MLP
        assert {"gate_proj", "up_proj", "down_proj"} <= set(t.modules)
    peft_model = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, **t.lora_kwargs()))
    ids = torch.randint(0, 128, (2, 8))
    peft_model(input_ids=ids, labels=ids).loss.backward()
    expert_lora = [n for n, p in peft_model.named_parameters() if "experts" in n and "lora" in n and p.grad is not None]
    assert expert_lora, "the experts got no LoRA gradient"


def test_unknown_linear_layers_are_an_error_not_a_subset():
    model = _tiny("Llama")
    model.model.layers[0].mlp.extra_proj = torch.nn.Linear(32, 32)
    with pytest.raises(FtlabError, match="extra_proj"):
        lora_targets(model)


def test_an_architecture_without_known_projections_is_refused():
    import transformers

    model = transformers.GPT2LMHeadModel(transformers.GPT2Config(n_embd=32, n_layer=1, n_head=2, vocab_size=64))
    with pytest.raises(FtlabError, match="pass target_modules"):
        target_modules_for(model)


def test_size_defaults_by_size():
    toy = size_defaults(_tiny("Llama"))
    assert (toy["learning_rate"], toy["max_length"], toy["epochs"], toy["merge_atol"], toy["gguf_outtype"]) == \
        (5e-3, 128, 4.0, 1e-3, "f32")  # the toy's own values (4 epochs since toy v8: its held-out support prompts need them)
    from transformers import LlamaConfig

    smol = size_defaults(LlamaConfig(hidden_size=576, intermediate_size=1536, num_hidden_layers=30,
                                     num_attention_heads=9, num_key_value_heads=3, vocab_size=49152,
                                     tie_word_embeddings=True))
    assert 130e6 < smol["n_params"] < 140e6 and smol["size_class"].startswith("small")
    assert smol["learning_rate"] < toy["learning_rate"] and smol["max_length"] > toy["max_length"]
    big = size_defaults(LlamaConfig(hidden_size=4096, intermediate_size=14336, num_hidden_layers=32,
                                    num_attention_heads=32, num_key_value_heads=8, vocab_size=128256))
    assert big["learning_rate"] == 2e-4 and big["gguf_outtype"] == "q8_0"
    half = size_defaults(_tiny("Llama").to(torch.bfloat16))
    # merges run in float32 whatever the training dtype (a bf16 merge loses the LoRA update): same tolerance
    assert half["merge_atol"] == toy["merge_atol"] and half["dtype"] == "bfloat16"
    assert smol["merge_atol"] == 1e-2 and MERGE_DTYPE == "float32"
    # notebook 05's toy-tuned LRs, scaled to a model's size: 1e-3 / 5e-3 for SmolLM2, exactly 1 for the toy
    assert lr_scale(_tiny("Llama")) == 1.0 and lr_scale(LlamaConfig(hidden_size=576, intermediate_size=1536,
        num_hidden_layers=30, num_attention_heads=9, num_key_value_heads=3, vocab_size=49152)) == pytest.approx(0.2)


def test_default_device_map(monkeypatch):
    for var in ("WORLD_SIZE", "LOCAL_RANK", "ACCELERATE_USE_FSDP"):
        monkeypatch.delenv(var, raising=False)
    assert default_device_map(False, cuda=False) is None and default_device_map(True, cuda=False) == "cpu"
    assert default_device_map(False, cuda=True) == {"": 0}  # unquantized on CUDA: on the GPU, not the CPU
    assert default_device_map(True, cuda=True) == "auto"
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert default_device_map(False, cuda=True) == {"": 1}
