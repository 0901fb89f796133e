"""The committed GPU results as one Markdown table (notebook 04, ``bench/report.py``).

``bench_table()`` reads ``ftlab/bench_results/``: the package's copy of ``bench/results/``, shipped as package
data so that a wheel install has the figures too (tests/test_memory.py checks the copies match, byte for byte).
"""

from __future__ import annotations

import json
from pathlib import Path

from ftlab.errors import FtlabError

__all__ = ["BENCH_RESULT_FILES", "bench_table", "results_dir"]


# The GPU results bench_table reads, shipped inside the package (ftlab/bench_results/, package data) so a wheel
# install has them too; tests/test_memory.py checks they are the same bytes as the repository's bench/results/.
BENCH_RESULT_FILES = ("throughput_h100.json", "estimator_h100.json", "throughput_h200.json")


def results_dir() -> Path:
    """``ftlab/bench_results``: the package's copy of the committed GPU results (``bench/results``)."""
    return Path(__file__).resolve().parent.parent / "bench_results"


def bench_table(directory: str | Path | None = None) -> str:
    """The committed GPU results as one Markdown table: throughput of A and B, then estimator accuracy."""
    d = Path(directory) if directory else results_dir()
    tp_path, est_path = d / "throughput_h100.json", d / "estimator_h100.json"
    if not tp_path.is_file() and not est_path.is_file() and not (d / "throughput_h200.json").is_file():
        raise FtlabError(f"no GPU results in {d}: run bench/run_all.sh on a CUDA machine (see bench/README.md)")
    lines: list[str] = []
    h200 = d / "throughput_h200.json"
    if h200.is_file():  # issue 23: one epoch per configuration, Unsloth beside A and B, medians of the repeats
        t2 = json.loads(h200.read_text())
        lines += [f"**Epoch time** on {t2['device']} ({t2['date']}, {t2['repeats']} repeats, "
                  f"{t2['runs']['A'][0]['examples']} examples): A/B = **{t2['epoch_speedup_median']:.2f}×**, "
                  f"B/Unsloth throughput = **{t2['vs_unsloth']:.2f}** (steady state {t2['vs_unsloth_steady']:.2f}), "
                  f"B's MFU {t2['mfu_recommended']:.1%}", "",
                  "| config | epoch s (median) | real tokens/s (median) | peak allocated GiB |", "|---|---|---|---|"]
        for k, v in t2["runs"].items():
            lines.append(f"| {k}: {v[0]['label']} | {t2['epoch_s_median'][k]:.1f} | "
                         f"{t2['epoch_real_tokens_per_s_median'][k]:.0f} | "
                         f"{t2['memory'][k]['peak_allocated_gib_max']:.2f} |")
        lines.append("")
    if tp_path.is_file():
        tp = json.loads(tp_path.read_text())
        lines += [f"**Throughput** on {tp['device']} ({tp['date']}): B/A = **{tp['speedup']:.2f}×**", "",
                  "| config | tokens/s | MFU | peak allocated GiB | peak reserved GiB | step tokens | GC |",
                  "|---|---|---|---|---|---|---|"]
        for name, run in tp["runs"].items():
            lines.append(f"| {name}: {run['label']} | {run['tokens_per_s']:.0f} | {run['mfu']:.1%} | "
                         f"{run['peak_allocated_gib']:.2f} | {run['peak_reserved_gib']:.2f} | "
                         f"{run['mean_tokens_per_step']:.0f} | {'on' if run['gradient_checkpointing'] else 'off'} |")
        lines.append("")
    if est_path.is_file():
        ev = json.loads(est_path.read_text())
        lines += [f"**Estimator accuracy** on {ev['device']} ({ev['date']}): max |error| "
                  f"{ev['max_abs_error']:.1%} over {len(ev['configs'])} configurations", "",
                  "| model | seq × batch | r | GC | measured GiB | estimated GiB | error |",
                  "|---|---|---|---|---|---|---|"]
        for c in ev["configs"]:
            star = "*" if str(c.get("measurement", "")).startswith("corrected") else ""
            lines.append(f"| {c['model']}{star} | {c['seq_len']} × {c['batch_size']} | {c['lora_r']} | "
                         f"{'on' if c['gradient_checkpointing'] else 'off'} | {c['measured_peak_allocated_gib']:.2f} | "
                         f"{c['estimated_peak_allocated_gib']:.2f} | {c['estimate_error']:+.1%} |")
    return "\n".join(lines)
