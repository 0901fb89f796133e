"""bench/run_h200.sh's raw files (A1.json, B1.json, U1.json, ..., peak.json, P.json) → bench/results/throughput_h200.json
and the H200 section of bench/results/RESULTS.md. Runs anywhere (no GPU).

    python bench/report_h200.py --raw /path/to/raw [--out bench/results]
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from bench.common import FLOPS_PER_TOKEN_8B, reclassify_profile, write_json  # noqa: E402

COMMAND = ("call 1: cd .gpucarry && OUT=$OUT LIMIT=430 EXAMPLES=96 bash bench/run_h200.sh A1 B1 U1 A2 B2 U2 A3 B3 U3 P; "
           "call 2 (30 s later, same machine): cd .gpucarry && OUT=$OUT LIMIT=190 EXAMPLES=96 NEED_U=78 NEED_P=45 "
           "bash bench/run_h200.sh U2 U3 P   # .gpucarry holds bench/, ftlab/ and wheels/ from bench/wheels_h200.sh")
LABELS = {"A": "seed-like", "B": "ftlab recommended", "U": "Unsloth 2026.10.9"}
WARMUP = 3  # steps left out of the steady-state figure
BEGIN, END = "<!-- h200:begin -->", "<!-- h200:end -->"


def run_figures(d: dict, peak: float) -> dict:
    """One run's figures: the epoch (every step, warm-up included) and the steady state after WARMUP steps."""
    st = d["steps"]
    secs, toks, pos = st["seconds"], st["real_tokens"], st["positions"]
    epoch_tps = d["real_tokens"] / d["epoch_s"]
    steady = sum(toks[WARMUP:]) / sum(secs[WARMUP:]) if len(secs) > WARMUP and toks else None
    cfg = d["config"]
    return {
        "round": d["round"], "label": cfg["label"], "command": d["command"], "date": d["date"],
        "examples": d["examples"], "real_tokens": d["real_tokens"],
        "real_tokens_counted_by_steps": d["real_tokens_seen_by_steps"],
        "epoch_s": round(d["epoch_s"], 2), "epoch_real_tokens_per_s": round(epoch_tps, 1),
        "epoch_mfu": round(FLOPS_PER_TOKEN_8B * epoch_tps / peak, 4),
        "steady_real_tokens_per_s": round(steady, 1) if steady else None,
        "steady_mfu": round(FLOPS_PER_TOKEN_8B * steady / peak, 4) if steady else None,
        "steps": len(secs), "first_step_s": round(secs[0], 2) if secs else None,
        "median_step_s": round(statistics.median(secs[WARMUP:] or secs), 3) if secs else None,
        "token_efficiency": round(sum(toks) / sum(pos), 4) if pos and sum(pos) else None,
        "peak_allocated_gib": round(d["summary"]["peak_allocated_gib"], 3),
        "peak_reserved_gib": round(d["summary"]["peak_reserved_gib"], 3),
        "weights_allocated_gib": round(d["weights_allocated_gib"], 3), "load_s": d["load_s"],
        "batch_size": cfg["sft"].get("per_device_train_batch_size"),
        "gradient_checkpointing": cfg["sft"].get("gradient_checkpointing", "unsloth"),
        "lora_dropout": cfg["lora_dropout"], "attn": cfg["attn"], "sft_config": cfg["sft"],
        "step_seconds": [round(s, 3) for s in secs], "step_real_tokens": toks, "step_positions": pos,
    }


def join_halves(ds: list[dict]) -> dict:
    """An epoch run as two processes (``--shard 1/2`` and ``2/2``): times, tokens and steps added up in order,
    peaks the larger of the two; the load time counted once (the second half's is the same work again)."""
    a, b = sorted(ds, key=lambda d: d["shard"])
    out = {**a, "shard": None, "examples": a["examples"] + b["examples"], "real_tokens": a["real_tokens"] + b["real_tokens"],
           "real_tokens_seen_by_steps": a["real_tokens_seen_by_steps"] + b["real_tokens_seen_by_steps"],
           "epoch_s": a["epoch_s"] + b["epoch_s"], "command": f"{a['command']} + {b['command']}",
           "train_runtime_s": (a.get("train_runtime_s") or 0) + (b.get("train_runtime_s") or 0),
           "summary": {k: max(a["summary"][k], b["summary"][k]) for k in a["summary"]},
           "steps": {k: a["steps"][k] + b["steps"][k] for k in a["steps"]}}
    return out


def med(xs: list[float]) -> float | None:
    xs = [x for x in xs if x is not None]
    return round(statistics.median(xs), 4) if xs else None


def build(raw: Path, command: str = COMMAND) -> dict:
    peak_d = json.loads((raw / "peak.json").read_text())
    peak = peak_d["bf16_peak_flops"]
    runs: dict[str, list[dict]] = {"A": [], "B": [], "U": []}
    failures = []
    parts: dict[str, list[dict]] = {}
    for f in sorted(raw.glob("[ABU][0-9]*.json*")):
        m = re.fullmatch(r"([ABU])(\d+)(h\d)?\.json(\.err)?", f.name)
        if not m:
            continue
        d = json.loads(f.read_text())
        if m.group(4):
            failures.append({"run": f.name.split(".")[0], "error": d["error"]})
        elif m.group(3):
            parts.setdefault(f"{m.group(1)}{m.group(2)}", []).append(d)
        else:
            runs[m.group(1)].append(run_figures(d, peak))
    for name, ds in parts.items():
        if len(ds) == 2:
            runs[name[0]].append(run_figures(join_halves(ds), peak))
        else:
            failures.append({"run": name, "error": f"only {len(ds)} of its 2 halves ran"})
    for v in runs.values():
        v.sort(key=lambda r: r["round"])
    by_round = {k: {r["round"]: r for r in v} for k, v in runs.items()}
    pairs_ab = [by_round["A"][r]["epoch_s"] / by_round["B"][r]["epoch_s"] for r in by_round["A"] if r in by_round["B"]]
    pairs_bu = [by_round["B"][r]["epoch_real_tokens_per_s"] / by_round["U"][r]["epoch_real_tokens_per_s"]
                for r in by_round["B"] if r in by_round["U"]]
    pairs_bu_steady = [by_round["B"][r]["steady_real_tokens_per_s"] / by_round["U"][r]["steady_real_tokens_per_s"]
                       for r in by_round["B"] if r in by_round["U"]
                       and by_round["B"][r]["steady_real_tokens_per_s"] and by_round["U"][r]["steady_real_tokens_per_s"]]
    complete = [r for r in by_round["A"] if r in by_round["B"] and r in by_round["U"]]
    b_tps = med([r["epoch_real_tokens_per_s"] for r in runs["B"]])
    mem = {k: {"peak_allocated_gib_median": med([r["peak_allocated_gib"] for r in v]),
               "peak_allocated_gib_max": max((r["peak_allocated_gib"] for r in v), default=None),
               "peak_reserved_gib_median": med([r["peak_reserved_gib"] for r in v])} for k, v in runs.items()}
    first = (runs["A"] or runs["B"] or runs["U"])[0]
    a_any = json.loads(next(raw.glob("A[0-9]*.json")).read_text()) if runs["A"] else {}
    u_any = json.loads(next(raw.glob("U[0-9]*.json")).read_text()) if runs["U"] else {}
    vs_u = med(pairs_bu)
    mfu_b = round(FLOPS_PER_TOKEN_8B * b_tps / peak, 4) if b_tps else None
    out = {
        "device": peak_d["device"], "gpu_mem_gib": peak_d["gpu_mem_gib"], "cuda": peak_d["cuda"],
        "date": first["date"], "command": command,
        "versions": {"A_B": a_any.get("versions"), "U": u_any.get("versions")},
        "data": (f"{first['examples']} pre-tokenized chat-shaped examples (bench/common.py: lengths uniform in "
                 f"256-1024 tokens, random ids), {first['real_tokens']} real tokens; the same examples for every "
                 "run; one epoch each" + (" (the issue's 2,000; an A epoch ran as two halves in two processes, "
                                           "added up: it is longer than one device call)" if first["examples"] >= 2000
                                           else " (a fixed subset of the issue's 2,000: a full epoch of A alone "
                                           "would take ~8 minutes of device time)")),
        "model": "Llama-3.1-8B shape, random weights, saved bf16 and loaded 4-bit (nf4, double quant, bf16 compute)",
        "lora": "r=16, alpha=32 on q/k/v/o/gate/up/down; dropout 0.05 for A and B, 0 for Unsloth (its fast path)",
        "repeats": len(complete), "rounds": sorted(set(by_round["A"]) | set(by_round["B"]) | set(by_round["U"])),
        "order": "interleaved A, B, U per round, each a fresh process, on one machine",
        "bf16_peak_flops": round(peak), "bf16_peak": peak_d,
        "mfu_formula": f"4 x 7.5e9 x real tokens/s / {peak / 1e12:.0f}e12 (bf16 matmul peak measured in the same call)",
        "epoch_speedup_median": med(pairs_ab), "epoch_speedup_per_round": [round(x, 4) for x in pairs_ab],
        "vs_unsloth": vs_u, "vs_unsloth_per_round": [round(x, 4) for x in pairs_bu],
        "vs_unsloth_steady": med(pairs_bu_steady),
        "mfu_recommended": mfu_b,
        "mfu_recommended_steady": med([r["steady_mfu"] for r in runs["B"]]),
        "epoch_real_tokens_per_s_median": {k: med([r["epoch_real_tokens_per_s"] for r in v]) for k, v in runs.items()},
        "epoch_s_median": {k: med([r["epoch_s"] for r in v]) for k, v in runs.items()},
        "memory": mem,
        "goals": {"vs_unsloth >= 1.0 at <= Unsloth's peak memory": bool(
                      vs_u is not None and vs_u >= 1.0 and mem["B"]["peak_allocated_gib_max"] is not None
                      and mem["U"]["peak_allocated_gib_max"] is not None
                      and mem["B"]["peak_allocated_gib_max"] <= mem["U"]["peak_allocated_gib_max"]),
                  "mfu_recommended >= 0.40": bool(mfu_b is not None and mfu_b >= 0.40)},
        "failures": failures,
        "runs": runs,
    }
    prof_path = raw / "P.json"
    if prof_path.is_file():
        p = json.loads(prof_path.read_text())
        prof = reclassify_profile(p["profile"]) if p.get("profile") else None
        s = p["summary"]
        out["profile_B"] = {"command": p["command"], "profile": prof, "median_step_s": round(s["median_step_s"], 3),
                            "mean_tokens_per_step": round(s["mean_tokens_per_step"], 1),
                            "gpu_busy_fraction": round(prof["gpu_ms_per_step"] / 1e3 / s["median_step_s"], 3)
                            if prof else None}
    return out


def markdown(tp: dict, begin: str = BEGIN, end: str = END, title: str = "GPU results (H200, issue 23)") -> str:
    lines = [begin, f"# {title}: {tp['device']}, {tp['date']}", "",
             f"Generated by `python bench/report_h200.py` from the raw files of `{tp['command']}`.", "",
             f"Data: {tp['data']}. Model: {tp['model']}. LoRA: {tp['lora']}. {tp['order']}; "
             f"{tp['repeats']} complete repeat(s).", "",
             f"- **epoch_speedup_median** (A's epoch time ÷ B's, paired by round): **{tp['epoch_speedup_median']}** "
             f"(per round {tp['epoch_speedup_per_round']})",
             f"- **vs_unsloth** (B's real-token throughput ÷ Unsloth's over the epoch, median): **{tp['vs_unsloth']}** "
             f"(per round {tp['vs_unsloth_per_round']}; steady state after {WARMUP} steps: {tp['vs_unsloth_steady']})",
             f"- **mfu_recommended** ({tp['mfu_formula']}): **{tp['mfu_recommended']}** over the epoch, "
             f"{tp['mfu_recommended_steady']} in the steady state",
             f"- bf16 peak measured in the same call: {tp['bf16_peak_flops'] / 1e12:.0f} TFLOP/s "
             f"({tp['bf16_peak']['n']}³ products, median of {tp['bf16_peak']['reps']})",
             "- goals: " + ", ".join(f"{k}: {'met' if v else 'not met'}" for k, v in tp["goals"].items()), "",
             "| run | epoch s | real tokens/s (epoch) | steady tokens/s | MFU (epoch) | steps | first step s | "
             "rows/step | real/computed | peak alloc GiB | peak reserved GiB | load s |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for k in ("A", "B", "U"):
        for r in tp["runs"][k]:
            lines.append(f"| {k}{r['round']} {r['label']} | {r['epoch_s']:.1f} | {r['epoch_real_tokens_per_s']:.0f} | "
                         f"{r['steady_real_tokens_per_s'] or 0:.0f} | {r['epoch_mfu']:.1%} | {r['steps']} | "
                         f"{r['first_step_s']} | {r['batch_size']} | {r['token_efficiency']} | "
                         f"{r['peak_allocated_gib']:.2f} | {r['peak_reserved_gib']:.2f} | {r['load_s']} |")
    for f in tp["failures"]:
        lines.append(f"\n- **{f['run']} failed**: `{f['error'][:300]}`")
    if tp.get("profile_B"):
        p = tp["profile_B"]
        share = (p["profile"] or {}).get("share", {})
        lines += ["", f"B's kernel profile (2 steps, `{p['command']}`): GPU busy {p['gpu_busy_fraction']} of a "
                      f"{p['median_step_s']} s step; GPU time by family: "
                      + ", ".join(f"{k} {v:.0%}" for k, v in share.items())]
    lines.append(end)
    return "\n".join(lines)


def estimator(raw: Path) -> dict:
    """sweep-<family>.json files (bench/run_estimator_h200.sh) → estimator_h200.json: clean rows only."""
    from bench.common import FAMILIES, family_rows
    from ftlab.memory import estimate_memory

    rows, checks, failed, meta = [], [], [], {}
    for fam in FAMILIES:
        f = raw / f"sweep-{fam}.json"
        if not f.is_file():
            failed.append({"family": fam, "error": "no result file"})
            continue
        d = json.loads(f.read_text())
        meta = meta or {k: d[k] for k in ("device", "gpu_mem_gib", "cuda", "date", "versions") if k in d}
        rows += family_rows(d, estimate_memory)
        failed += [{"family": fam, "config": c["name"], "error": c["error"]} for c in d["configs"] if c.get("error")]
        if d.get("recommend_check"):
            checks.append(d["recommend_check"])
    errors = [abs(r["estimate_error"]) for r in rows]
    return {**meta, "command": "cd .gpucarry && OUT=$OUT bash bench/run_estimator_h200.sh",
            "measured": "torch.cuda.max_memory_allocated() over 3 training steps of fixed-length rows, one model "
                        "load per family, first load of its process (no correction)",
            "rows": rows, "families": sorted({r["family"] for r in rows}),
            "max_abs_error": max(errors) if errors else None,
            "goal": ">= 16 clean configurations over >= 3 families, every |estimate_error| <= 0.10",
            "goal_met": len(rows) >= 16 and len({r["family"] for r in rows}) >= 3 and max(errors or [1]) <= 0.10,
            "recommend_checks": checks, "failed": failed}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--raw", required=True)
    p.add_argument("--out", default=str(HERE / "results"))
    p.add_argument("--notes", help="JSON list of notes to add (what limits B, measured)")
    p.add_argument("--name", default="throughput_h200", help="the result's file name (without .json)")
    p.add_argument("--title", default="GPU results (H200, issue 23)", help="its RESULTS.md section's title")
    p.add_argument("--command", help="the device calls that made the raw files (default: the 2026-12-03 H200 run's)")
    p.add_argument("--order", help="the order the runs actually ran in, when not A, B, U per round")
    p.add_argument("--estimator", action="store_true", help="--raw holds sweep-<family>.json: write estimator_h200.json")
    a = p.parse_args(argv)
    out = Path(a.out)
    if a.estimator:
        ev = estimator(Path(a.raw))
        write_json(out / "estimator_h200.json", ev)
        print(f"{len(ev['rows'])} rows over {ev['families']}, max |error| {ev['max_abs_error']}, goal met {ev['goal_met']}")
        return 0
    tp = build(Path(a.raw), a.command or COMMAND)
    if a.notes:
        tp["notes"] = json.loads(Path(a.notes).read_text())
    if a.order:
        tp["order"] = a.order
    write_json(out / f"{a.name}.json", tp)
    begin, end = (BEGIN, END) if a.name == "throughput_h200" else (f"<!-- {a.name}:begin -->", f"<!-- {a.name}:end -->")
    md = markdown(tp, begin, end, a.title)
    if tp.get("notes"):
        md = md.replace(end, "\n## Notes\n\n" + "\n".join(f"- {n}" for n in tp["notes"]) + "\n" + end)
    # the H200 section first; a further GPU section right after it
    put_section(out / "RESULTS.md", md, begin, end, after=None if a.name == "throughput_h200" else END)
    print(md)
    return 0


def put_section(res: Path, md: str, begin: str, end: str, after: str | None) -> None:
    """Write ``md`` (which runs from ``begin`` to ``end``) into RESULTS.md: in place of its earlier version, else
    right after the marker ``after`` (``None``, or a marker not there: at the top)."""
    text = res.read_text() if res.is_file() else ""
    if begin in text:
        text = text[: text.index(begin)] + md + text[text.index(end) + len(end):]
    else:
        at = text.index(after) + len(after) if after and after in text else 0
        text = text[:at] + ("\n\n" if at else "") + md + ("" if at else "\n\n") + text[at:]
    res.write_text(text)


if __name__ == "__main__":
    sys.exit(main())
