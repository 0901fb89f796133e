"""Measuring what autograd saves for one decoder layer of a real 4-bit QLoRA model on the CPU: the check of
:func:`~ftlab.memory.layer_activation_bytes_per_token` (tests/test_memory.py)."""

from __future__ import annotations

from ftlab.memory.estimate import LLAMA_TARGETS, ModelShape

__all__ = ["measure_saved_bytes_per_layer"]


def measure_saved_bytes_per_layer(
    shape: ModelShape,
    seq_len: int = 256,
    *,
    kbit_prep: bool = False,
    lora_r: int = 16,
    lora_dropout: float = 0.0,
    seed: int = 0,
) -> float:
    """Bytes per token that autograd saves for one decoder layer of a real 4-bit QLoRA model.

    Builds two random Llama models of ``shape`` (2 and 4 layers), loads them 4-bit with bitsandbytes on
    the CPU, wraps them with PEFT LoRA (adapters cast to bf16 as TRL does), runs one forward pass under
    bf16 autocast and sums the distinct storages handed to ``saved_tensors_hooks`` (parameters excluded).
    The difference between the two models, halved, is one layer: embeddings, rotary tables and the LM
    head cancel out. On the CPU, dropout keeps its mask in the input dtype (CUDA keeps a bool mask), so
    compare with ``lora_dropout=0``.
    """
    import tempfile

    import torch
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig, LlamaConfig

    totals = {}
    for layers in (2, 4):
        torch.manual_seed(seed)
        cfg = LlamaConfig(hidden_size=shape.hidden_size, intermediate_size=shape.intermediate_size,
                          num_hidden_layers=layers, num_attention_heads=shape.num_heads,
                          num_key_value_heads=shape.num_kv_heads, vocab_size=shape.vocab_size,
                          head_dim=shape.hd, max_position_embeddings=max(2048, seq_len),
                          tie_word_embeddings=shape.tie_word_embeddings)
        with tempfile.TemporaryDirectory() as tmp:
            AutoModelForCausalLM.from_config(cfg, dtype=torch.bfloat16).save_pretrained(tmp)
            bnb = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                                     bnb_4bit_compute_dtype=torch.bfloat16)
            model = AutoModelForCausalLM.from_pretrained(tmp, dtype=torch.bfloat16, quantization_config=bnb,
                                                         device_map={"": "cpu"}, attn_implementation="sdpa")
        if kbit_prep:
            model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
        model = get_peft_model(model, LoraConfig(r=lora_r, lora_alpha=2 * lora_r, lora_dropout=lora_dropout,
                                                 target_modules=list(LLAMA_TARGETS), task_type="CAUSAL_LM"))
        for p in model.parameters():
            if p.requires_grad:
                p.data = p.data.to(torch.bfloat16)
        model.train()
        params = {t.untyped_storage().data_ptr() for t in [*model.parameters(), *model.buffers()]}
        saved: dict[int, int] = {}

        def pack(t, saved=saved, params=params):
            st = t.untyped_storage()
            if st.data_ptr() not in params:
                saved[st.data_ptr()] = st.nbytes()
            return t

        ids = torch.randint(0, shape.vocab_size, (1, seq_len), generator=torch.Generator().manual_seed(seed))
        with torch.autocast("cpu", dtype=torch.bfloat16), torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            out = model(input_ids=ids, use_cache=False)
        totals[layers] = sum(saved.values())
        del out, model
    return (totals[4] - totals[2]) / 2 / seq_len
