"""Issue 23 on the H200: one epoch over a fixed set of examples per configuration, each in a fresh process.

    python bench/h200.py peak --json-out peak.json                       # bf16 matmul rate, measured here
    python bench/h200.py epoch --config A --model M --json-out A1.json   # seed-like
    python bench/h200.py epoch --config B --model M --budget-from A1.json --json-out B1.json
    python bench/h200.py epoch --config U --model M --batch-from B1.json --json-out U1.json  # Unsloth

A and B run on ftlab's stack (transformers 5.23, TRL 1.16; bench/gpu.py's trainer); U imports ``unsloth``
before anything else and runs on its own site directory (transformers 5.17, TRL 1.15, datasets 4.8): see
bench/run_h200.sh. All three train LoRA r=16 on the 7 projections of the same 4-bit Llama-3.1-8B-shaped
checkpoint (bench/gpu.py build) over the same examples, one epoch, and record the epoch's wall time and
each step. ``bench/report_h200.py`` turns the files into bench/results/throughput_h200.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def cmd_peak(args) -> dict:
    """Dense bf16 matmul rate on random data: median of timed 8192³ products over 3 rotating input sets."""
    import torch

    n = args.n
    sets = [(torch.randn(n, n, device="cuda", dtype=torch.bfloat16),
             torch.randn(n, n, device="cuda", dtype=torch.bfloat16)) for _ in range(3)]
    for a, b in sets * 2:
        a @ b
    torch.cuda.synchronize()
    times = []
    for i in range(args.reps):
        a, b = sets[i % 3]
        s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        s.record()
        a @ b
        e.record()
        e.synchronize()
        times.append(s.elapsed_time(e) / 1e3)
    times.sort()
    med = times[len(times) // 2]
    return {"n": n, "reps": args.reps, "median_s": med, "bf16_peak_flops": 2 * n**3 / med,
            "best_flops": 2 * n**3 / times[0]}


def dataset_for(tok, n: int):
    from bench.gpu import throughput_dataset

    return throughput_dataset(tok, n, 1024)


def cmd_epoch(args) -> dict:
    t_start = time.time()
    if args.config == "U":
        import unsloth  # noqa: F401  (first: it patches transformers, TRL and PEFT when imported)
        from unsloth import FastLanguageModel
    import torch

    from bench.common import StepLog
    from bench.gpu import cuda_context_gib, load_model, make_trainer, run_config_a, run_config_b

    cuda = torch.cuda.is_available()  # False only in the CPU smoke test (tests/test_bench.py)

    def sync() -> None:
        if cuda:
            torch.cuda.synchronize()

    def allocated() -> int:
        return torch.cuda.memory_allocated() if cuda else 0

    context = cuda_context_gib()
    gpu_mem = torch.cuda.get_device_properties(0).total_memory / 2**30 if cuda else 80.0
    if args.config == "A":
        cfg = run_config_a()
    elif args.config in ("B", "D"):
        a = json.loads(Path(args.budget_from).read_text())
        budget = 0.97 * (a["summary"]["peak_reserved_gib"] + a["cuda_context_gib"])
        cfg = run_config_b(budget, gpu_mem, cuda_context_gib=context or None)
        if args.config == "D":  # a candidate for raising B: B with LoRA dropout 0 (PEFT then skips the dropout
            # kernels; 4.5% of B's GPU time in the H200 profile), as Unsloth's fast LoRA path requires
            cfg = {**cfg, "label": "ftlab recommended, LoRA dropout 0", "lora_dropout": 0.0}
    else:
        batch = 9
        if args.batch_from and Path(args.batch_from).is_file():
            batch = json.loads(Path(args.batch_from).read_text())["config"]["sft"]["per_device_train_batch_size"]
        # Unsloth as its documentation sets it up: its own gradient checkpointing, LoRA dropout 0 (its fast
        # LoRA path), padding-free batches where it decides so; the same rows per step as B
        cfg = {"label": "Unsloth", "lora_r": 16, "lora_dropout": 0.0, "attn": "unsloth", "kbit_prep": False,
               "sft": {"per_device_train_batch_size": batch, "max_length": 1024, "optim": "paged_adamw_8bit"}}
    cfg["max_steps"] = -1
    cfg["num_train_epochs"] = 1
    from transformers import AutoTokenizer

    if args.config == "U":
        model, tok = FastLanguageModel.from_pretrained(model_name=args.model, max_seq_length=1024,
                                                       dtype=torch.bfloat16, load_in_4bit=True)
        weights = allocated()
        model = FastLanguageModel.get_peft_model(model, r=16, lora_alpha=32, lora_dropout=0.0, bias="none",
                                                 target_modules=TARGETS, use_gradient_checkpointing="unsloth",
                                                 random_state=0)
    else:
        tok = AutoTokenizer.from_pretrained(args.model)
        model = load_model(args.model, cfg["attn"], cfg["kbit_prep"])
        weights = allocated()
    dataset, lengths = dataset_for(tok, args.examples)
    if args.shard:  # one part of the epoch (bench/report_h200.py adds the parts up): same rows, split in order
        i, n = (int(x) for x in args.shard.split("/"))
        lo, hi = (i - 1) * len(lengths) // n, i * len(lengths) // n
        dataset, lengths = dataset.select(range(lo, hi)), lengths[lo:hi]
    log = StepLog()
    print(f"[epoch] {args.config}{args.round}: {json.dumps({k: v for k, v in cfg.items() if k != 'recommendation'})}",
          flush=True)
    trainer, clock = make_trainer(model, tok, dataset, cfg, log, f"/tmp/h200-run-{args.config}", None,
                                  peft=args.config != "U")
    sync()
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    t_load = time.time() - t_start
    t0 = time.perf_counter()
    out = trainer.train()
    sync()
    epoch_s = time.perf_counter() - t0
    real = sum(lengths)
    seen = sum(log.real_tokens)
    print(f"[epoch] {args.config}{args.round}: {epoch_s:.1f} s, {real / epoch_s:.0f} real tokens/s, "
          f"{len(log.seconds)} steps, peak {max(log.peak_allocated or [0]) / 2**30:.2f} GiB alloc, "
          f"{max(clock.reserved or [0]) / 2**30:.2f} reserved, load {t_load:.0f} s", flush=True)
    return {"config": {k: v for k, v in cfg.items()}, "round": args.round, "examples": len(lengths),
            "shard": args.shard,
            "real_tokens": real, "real_tokens_seen_by_steps": seen, "epoch_s": epoch_s,
            "load_s": round(t_load, 1), "train_runtime_s": out.metrics.get("train_runtime"),
            "weights_allocated_gib": weights / 2**30, "cuda_context_gib": context,
            "summary": {"peak_allocated_gib": max(log.peak_allocated or [0]) / 2**30,
                        "peak_reserved_gib": max(clock.reserved or [0]) / 2**30},
            "steps": {"seconds": log.seconds, "real_tokens": log.real_tokens, "positions": log.positions,
                      "peak_allocated": log.peak_allocated}}


def cmd_sweep(args) -> dict:
    """Issue 23's estimator sweep for one family (bench/common.py: family_sweep_configs), then
    recommend_config checked on it: its pick for RECOMMEND_BUDGET_GIB trained 4 steps on 256-1024-token rows,
    measured total (peak reserved + CUDA context + paged optimizer states) against the budget."""
    import gc

    import torch

    from bench.common import RECOMMEND_BUDGET_GIB, StepLog, estimator_model, family_sweep_configs
    from bench.gpu import cmd_sweep as sweep
    from bench.gpu import cuda_context_gib, load_model, make_trainer
    from ftlab.memory import recommend_config

    configs = [c for c in family_sweep_configs() if c.model == args.family]
    result = sweep(args, configs)
    gc.collect()
    cuda = torch.cuda.is_available()
    if cuda:
        torch.cuda.empty_cache()
    context = cuda_context_gib()
    budget = RECOMMEND_BUDGET_GIB[args.family]
    gpu_mem = torch.cuda.get_device_properties(0).total_memory / 2**30 if cuda else 80.0
    rec = recommend_config(estimator_model(args.family), gpu_mem, seq_len=1024, budget_gib=budget, cuda=cuda,
                           cuda_context_gib=context or 0.55)
    sft = rec.sft_config_kwargs()
    attn = sft.pop("model_init_kwargs")["attn_implementation"]
    path = str(Path(args.root) / f"{args.family}-nf4")
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(path)
    model = load_model(path, attn, False)
    dataset, _ = dataset_for(tok, 64)
    log = StepLog()
    trainer, clock = make_trainer(model, tok, dataset, {"lora_r": 16, "lora_dropout": 0.05, "max_steps": 4,
                                                         "sft": sft}, log, "/tmp/h200-rec", None)
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    clock.reserved = []
    err = None
    try:
        trainer.train()
    except Exception as exc:  # an OOM here is the finding: recorded, not raised
        err = f"{type(exc).__name__}: {exc}"[:500]
    paged = rec.estimate.breakdown["optimizer_states_paged"] / 2**30
    measured_total = max(clock.reserved or [0]) / 2**30 + context + paged
    est = rec.estimate  # the estimate recommend_config checked against the budget
    result["recommend_check"] = {
        "family": args.family, "budget_gib": budget, "recommendation": rec.to_dict(), "error": err,
        "measured_peak_allocated_gib": round(max(log.peak_allocated or [0]) / 2**30, 3),
        "measured_total_gib": round(measured_total, 3), "estimated_total_gib": round(est.total_gib, 3),
        "fits": err is None and measured_total <= budget, "steps": len(log.seconds)}
    print(f"[recommend] {args.family}: {rec.per_device_train_batch_size} x 1024, gc {rec.gradient_checkpointing}, "
          f"measured total {measured_total:.2f} GiB of {budget} {err or ''}", flush=True)
    return result


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    k = sub.add_parser("peak")
    k.add_argument("--n", type=int, default=8192)
    k.add_argument("--reps", type=int, default=30)
    e = sub.add_parser("epoch")
    e.add_argument("--config", choices=["A", "B", "D", "U"], required=True)
    e.add_argument("--model", required=True)
    e.add_argument("--examples", type=int, default=128)
    e.add_argument("--round", type=int, default=1)
    e.add_argument("--budget-from", help="A's result JSON of the same round: B fits in what A used")
    e.add_argument("--batch-from", help="B's result JSON of the same round: U takes B's rows per step")
    e.add_argument("--shard", help="I/N: train only the I-th of N equal parts of the examples (an epoch too long "
                                   "for one device call runs as N processes; the report adds them up)")
    w = sub.add_parser("sweep")
    w.add_argument("--family", required=True, choices=["llama-3.1-8b", "qwen2.5-7b", "mistral-7b", "smollm2-135m"])
    w.add_argument("--root", required=True, help="folder holding <family>-nf4 (bench/gpu.py build --shape)")
    for sp in (k, e, w):
        sp.add_argument("--json-out", dest="json_out", required=True)
    args = p.parse_args(argv)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from bench.common import write_json
    from bench.gpu import meta

    fn = {"peak": cmd_peak, "epoch": cmd_epoch, "sweep": cmd_sweep}[args.cmd]
    try:
        result = fn(args)
    except Exception as exc:  # record the failure: the next configuration still runs
        traceback.print_exc()
        write_json(args.json_out + ".err", {**meta(["h200.py", *argv]), "error": f"{type(exc).__name__}: {exc}"[:2000],
                                             "traceback": traceback.format_exc()[-6000:]})
        return 1
    write_json(args.json_out, {**meta(["h200.py", *argv]), **result})
    print(f"[{args.cmd}] wrote {args.json_out}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
