"""2-GPU benchmarks with ftlab's accelerate configs. NOT YET RUN on GPUs (see bench/README.md).

Each measurement is a process per GPU started by ``accelerate launch`` with a config shipped in ftlab/accelerate:

    L="python3 -m accelerate.commands.launch"
    CUDA_VISIBLE_DEVICES=0 $L --config_file ftlab/accelerate/single_gpu.yaml bench/scale_gpu.py ddp \\
        --model /tmp/bench/llama-3.1-8b-nf4 --json-out ddp_1gpu.json
    $L --config_file ftlab/accelerate/ddp.yaml --num_processes 2 bench/scale_gpu.py ddp \\
        --model /tmp/bench/llama-3.1-8b-nf4 --json-out ddp_2gpu.json
    $L --config_file ftlab/accelerate/fsdp_qlora.yaml --num_processes 2 bench/scale_gpu.py fsdp70b --json-out fsdp_70b.json
    python3 bench/scale_gpu.py report --raw OUT_DIR --out bench/results/scale_h200x2.json

``ddp`` trains LoRA on the 4-bit Llama-3.1-8B shape of bench/gpu.py (``gpu.py build``), each process a whole
copy on its own GPU. ``fsdp70b`` builds the Llama-3.1-70B shape **on the meta device** (no memory), swaps its
projections for bitsandbytes ``Linear4bit`` with bf16 storage, and **materializes it on each rank, one weight
at a time**: a bf16 weight is drawn on the GPU from a seed derived from the parameter's name (the same on every
rank, no communication), quantized to nf4 at once and the bf16 copy dropped. So the model is never whole in
bf16 anywhere (140 GB), and never on disk; each GPU holds the 4-bit model (~37 GiB) until FSDP shards it.
Then TRL's SFTTrainer trains it under the FSDP + QLoRA config. Only rank 0 writes the JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from bench.common import StepLog, chat_token_ids, write_json  # noqa: E402
from bench.scale_common import SETUPS, aggregate_ranks, ddp_result, fsdp_result, param_seed  # noqa: E402

HOW_BUILT = ("meta device, then materialized per rank: each Linear4bit weight drawn in bf16 on the GPU from a "
             "seed of its name (identical on every rank), quantized to nf4 with bf16 storage at once; "
             "embeddings, lm_head N(0, 0.02), norms 1; no checkpoint on disk; FSDP (FULL_SHARD) then shards it")
PROJECTIONS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


def meta(argv: list[str]) -> dict:
    from bench.gpu import device_info, versions

    world = int(os.environ.get("WORLD_SIZE", "1"))
    return {**device_info(), "gpus": world, "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "command": "python3 bench/scale_gpu.py " + " ".join(argv), "versions": versions()}


# --- the 70B on the meta device, materialized per rank ---------------------------------------------------

def random_4bit_llama(config, device, *, seed: int = 0, quant_storage=None, compute_dtype=None, std: float = 0.02):
    """A Llama of ``config`` with random weights and nf4 (double-quantized) projections, built without ever
    holding the whole model in bf16: on the meta device first, then one weight at a time on ``device``.

    Works on the CPU too (the tests build a tiny one). Every rank that calls it with the same ``seed`` gets
    the same weights.
    """
    import bitsandbytes as bnb
    import torch
    from transformers import AutoModelForCausalLM
    from transformers.models.llama.modeling_llama import LlamaRotaryEmbedding

    compute_dtype = compute_dtype or torch.bfloat16
    quant_storage = quant_storage or torch.bfloat16
    device = torch.device(device)
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config, dtype=compute_dtype)
        for layer in model.model.layers:
            for parent in (layer.self_attn, layer.mlp):
                for name in PROJECTIONS:
                    old = getattr(parent, name, None)
                    if old is None:
                        continue
                    setattr(parent, name, bnb.nn.Linear4bit(
                        old.in_features, old.out_features, bias=old.bias is not None, compute_dtype=compute_dtype,
                        compress_statistics=True, quant_type="nf4", quant_storage=quant_storage, device="meta"))

    def draw(name: str, shape) -> torch.Tensor:
        g = torch.Generator(device=device).manual_seed(param_seed(seed, name))
        return torch.randn(*shape, generator=g, device=device, dtype=compute_dtype).mul_(std)

    for mod_name, module in model.named_modules():
        if isinstance(module, bnb.nn.Linear4bit):
            w = draw(f"{mod_name}.weight", (module.out_features, module.in_features))
            module.weight = bnb.nn.Params4bit(w, requires_grad=False, compress_statistics=True, quant_type="nf4",
                                              quant_storage=quant_storage, module=module).to(device)
            del w  # only the packed codes stay
            if module.bias is not None:
                module.bias = torch.nn.Parameter(torch.zeros(module.out_features, device=device, dtype=compute_dtype),
                                                 requires_grad=False)
    for name, param in list(model.named_parameters()):
        if not param.is_meta:
            continue
        owner_name, _, attr = name.rpartition(".")
        owner = model.get_submodule(owner_name)
        if "norm" in owner_name.rsplit(".", 1)[-1]:
            value = torch.ones(param.shape, device=device, dtype=compute_dtype)
        else:  # embed_tokens, lm_head
            value = draw(name, param.shape)
        setattr(owner, attr, torch.nn.Parameter(value, requires_grad=False))
    if model.config.tie_word_embeddings:
        model.tie_weights()
    model.model.rotary_emb = LlamaRotaryEmbedding(config=model.config).to(device)  # computed, not on meta
    left = [n for n, t in [*model.named_parameters(), *model.named_buffers()] if t.is_meta]
    if left:
        raise RuntimeError(f"still on the meta device: {left[:5]}")
    model.is_loaded_in_4bit = True  # TRL then casts the LoRA adapters to bf16, as for a from_pretrained QLoRA model
    model.config.use_cache = False
    return model


# --- one training run, measured on every rank ---------------------------------------------------------------

def equal_length_dataset(tok, setup, world: int):
    """Rows of exactly ``seq_len`` tokens (no padding): every rank computes the same number of tokens."""
    from datasets import Dataset

    from bench.gpu import specials

    steps = setup.warmup_steps + setup.timed_steps + 1
    n = steps * setup.per_device_batch * world
    return Dataset.from_dict({"input_ids": chat_token_ids([setup.seq_len] * n, len(tok), specials(len(tok)))})


def train_measured(model, tok, setup, out_dir: str) -> dict:
    """Train ``warmup + timed`` steps with bench/gpu.py's measured SFTTrainer; return this rank's figures."""
    import torch

    from bench.gpu import make_trainer

    world = int(os.environ.get("WORLD_SIZE", "1"))
    sft = {"per_device_train_batch_size": setup.per_device_batch, "max_length": setup.seq_len, "packing": False,
           "gradient_checkpointing": setup.gradient_checkpointing, "optim": setup.optim}
    if setup.gradient_checkpointing:
        sft["gradient_checkpointing_kwargs"] = {"use_reentrant": setup.accelerate == "fsdp_qlora"}
    if setup.accelerate == "ddp":
        sft["ddp_find_unused_parameters"] = False
    cfg = {"lora_r": setup.lora_r, "lora_dropout": setup.lora_dropout,
           "max_steps": setup.warmup_steps + setup.timed_steps, "sft": sft}
    log = StepLog()
    trainer, clock = make_trainer(model, tok, equal_length_dataset(tok, setup, world), cfg, log, out_dir, None)
    torch.cuda.reset_peak_memory_stats()
    trainer.train()
    w = setup.warmup_steps
    return {
        "rank": int(os.environ.get("RANK", "0")),
        "timed_seconds": sum(log.seconds[w:]),
        "timed_tokens": sum(log.real_tokens[w:]),
        # the first step also holds the wrapping (FSDP flattens and shards the whole model): reported apart
        "peak_allocated_gib": max(log.peak_allocated[1:] or log.peak_allocated) / 2**30,
        "peak_reserved_gib": max(clock.reserved[1:] or clock.reserved) / 2**30,
        "first_step_peak_allocated_gib": log.peak_allocated[0] / 2**30 if log.peak_allocated else None,
        "step_seconds": log.seconds,
    }


def gather_and_write(mine: dict, json_out: str, argv: list[str], extra: dict) -> None:
    import torch.distributed as dist

    ranks = [mine]
    if dist.is_available() and dist.is_initialized():
        ranks = [None] * dist.get_world_size()
        dist.all_gather_object(ranks, mine)
    if mine["rank"] == 0:
        write_json(json_out, {**meta(argv), **extra, **aggregate_ranks(ranks)})
        print(f"[scale] wrote {json_out}", flush=True)


def cmd_ddp(args, argv: list[str]) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    setup = SETUPS["ddp_8b"]
    local = int(os.environ.get("LOCAL_RANK", "0"))
    torch.cuda.set_device(local)
    tok = AutoTokenizer.from_pretrained(args.model)
    # DDP: a whole copy per process, on its own GPU (ftlab.train.load_base's device map under DDP)
    model = AutoModelForCausalLM.from_pretrained(args.model, dtype=torch.bfloat16, device_map={"": local},
                                                 attn_implementation="sdpa")
    model.config.use_cache = False
    mine = train_measured(model, tok, setup, "/tmp/scale-ddp")
    gather_and_write(mine, args.json_out, argv, {"setup": setup.name})


def cmd_fsdp70b(args, argv: list[str]) -> None:
    import torch

    from bench.gpu import llama_config, make_tokenizer

    setup = SETUPS["fsdp_70b"]
    local = int(os.environ.get("LOCAL_RANK", "0"))
    torch.cuda.set_device(local)
    cfg = llama_config(setup.shape)
    cfg._attn_implementation = "sdpa"
    tok = make_tokenizer(cfg.vocab_size)
    t0 = time.time()
    model = random_4bit_llama(cfg, f"cuda:{local}", seed=0, quant_storage=torch.bfloat16)
    built_s = time.time() - t0
    before = torch.cuda.memory_allocated() / 2**30
    mine = train_measured(model, tok, setup, "/tmp/scale-fsdp")
    mine.update(build_s=round(built_s, 1), allocated_before_sharding_gib=round(before, 2))
    gather_and_write(mine, args.json_out, argv, {"setup": setup.name, "how_built": HOW_BUILT})


def cmd_report(args) -> dict:
    raw = Path(args.raw)
    one, two = json.loads((raw / "ddp_1gpu.json").read_text()), json.loads((raw / "ddp_2gpu.json").read_text())
    keep = ("device", "gpu_mem_gib", "cuda", "date", "versions")
    out = {"ddp_8b": ddp_result(one, two, {k: two.get(k) for k in keep} | {"command": two.get("command")})}
    fsdp_path = raw / "fsdp_70b.json"
    if fsdp_path.is_file():
        run = json.loads(fsdp_path.read_text())
        out["fsdp_70b"] = fsdp_result(run, {k: run.get(k) for k in keep} | {"command": run.get("command")},
                                      run.get("how_built", HOW_BUILT))
    write_json(args.out, out)
    return out


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    d = sub.add_parser("ddp", help="LoRA on the 4-bit 8B shape, one process per GPU (run under accelerate launch)")
    d.add_argument("--model", required=True, help="the nf4 folder written by `bench/gpu.py build`")
    d.add_argument("--json-out", required=True)
    f = sub.add_parser("fsdp70b", help="FSDP + QLoRA on the 70B shape built on the meta device (accelerate launch)")
    f.add_argument("--json-out", required=True)
    r = sub.add_parser("report", help="raw JSON files -> bench/results/scale_<device>.json")
    r.add_argument("--raw", required=True)
    r.add_argument("--out", required=True)
    args = p.parse_args(argv)
    if args.cmd == "ddp":
        cmd_ddp(args, argv)
    elif args.cmd == "fsdp70b":
        cmd_fsdp70b(args, argv)
    else:
        print(json.dumps(cmd_report(args), indent=2)[:3000])
    return 0


if __name__ == "__main__":
    sys.exit(main())
