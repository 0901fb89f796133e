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
BENCH_RESULT_FILES = ("throughput_h100.json", "estimator_h100.json", "throughput_h200.json", "estimator_h200.json",
                      "throughput_h100_epoch2000.json")


def results_dir() -> Path:
    """``ftlab/bench_results``: the package's copy of the committed GPU results (``bench/results``)."""
    return Path(__file__).resolve().parent.parent / "bench_results"


def _table(title: str, columns: list[str], rows: list[list[str]]) -> list[str]:
    """A bold title line, a blank line and a Markdown table, as lines."""
    return [title, "", "| " + " | ".join(columns) + " |", "|" + "---|" * len(columns),
            *("| " + " | ".join(r) + " |" for r in rows)]


def _epoch_table(t: dict, what: str) -> list[str]:
    """One epoch result of issue 23 (A, B and Unsloth over the same examples) as table lines."""
    rounds = f"{t['repeats']} repeats" if t["repeats"] != 1 else "1 round"
    return [*_table(f"**{what}** on {t['device']} ({t['date']}, {rounds}, {t['runs']['A'][0]['examples']} examples): "
                    f"A/B = **{t['epoch_speedup_median']:.2f}×**, B/Unsloth throughput = **{t['vs_unsloth']:.2f}** "
                    f"(steady state {t['vs_unsloth_steady']:.2f}), B's MFU {t['mfu_recommended']:.1%}",
                    ["config", "epoch s (median)", "real tokens/s (median)", "peak allocated GiB"],
                    [[f"{k}: {v[0]['label']}", f"{t['epoch_s_median'][k]:.1f}",
                      f"{t['epoch_real_tokens_per_s_median'][k]:.0f}",
                      f"{t['memory'][k]['peak_allocated_gib_max']:.2f}"] for k, v in t["runs"].items()]), ""]


def bench_table(directory: str | Path | None = None) -> str:
    """The committed GPU results as one Markdown table: throughput of A and B, then estimator accuracy."""
    d = Path(directory) if directory else results_dir()
    tp_path, est_path = d / "throughput_h100.json", d / "estimator_h100.json"
    if not any((d / name).is_file() for name in BENCH_RESULT_FILES):
        raise FtlabError(f"no GPU results in {d}: run bench/run_all.sh on a CUDA machine (see bench/README.md)")
    lines: list[str] = []
    for name, what in (("throughput_h200.json", "Epoch time"), ("throughput_h100_epoch2000.json", "Full epoch")):
        if (d / name).is_file():  # issue 23: one epoch per configuration, Unsloth beside A and B
            lines += _epoch_table(json.loads((d / name).read_text()), what)
    if tp_path.is_file():
        tp = json.loads(tp_path.read_text())
        lines += _table(f"**Throughput** on {tp['device']} ({tp['date']}): B/A = **{tp['speedup']:.2f}×** in one "
                        "15-step steady-state window per configuration (issue 23 found it biased: use the epochs above)",
                        ["config", "tokens/s", "MFU", "peak allocated GiB", "peak reserved GiB", "step tokens", "GC"],
                        [[f"{name}: {run['label']}", f"{run['tokens_per_s']:.0f}", f"{run['mfu']:.1%}",
                          f"{run['peak_allocated_gib']:.2f}", f"{run['peak_reserved_gib']:.2f}",
                          f"{run['mean_tokens_per_step']:.0f}", "on" if run["gradient_checkpointing"] else "off"]
                         for name, run in tp["runs"].items()])
        lines.append("")
    e2 = d / "estimator_h200.json"
    if e2.is_file():  # issue 23: four families, no corrected row
        ev2 = json.loads(e2.read_text())
        lines += _table(f"**Estimator accuracy** on {ev2['device']} ({ev2['date']}): max |error| "
                        f"{ev2['max_abs_error']:.1%} over {len(ev2['rows'])} configurations of "
                        f"{len(ev2['families'])} families, none corrected",
                        ["model", "seq × batch", "r", "GC", "measured GiB", "estimated GiB", "error"],
                        [[r["family"], f"{r['seq_len']} × {r['batch_size']}", f"{r['lora_r']}",
                          "on" if r["gradient_checkpointing"] else "off", f"{r['measured_gib']:.2f}",
                          f"{r['estimated_gib']:.2f}", f"{r['estimate_error']:+.1%}"] for r in ev2["rows"]])
        lines.append("")
    if est_path.is_file():
        ev = json.loads(est_path.read_text())
        lines += _table(f"**Estimator accuracy** on {ev['device']} ({ev['date']}): max |error| "
                        f"{ev['max_abs_error']:.1%} over {len(ev['configs'])} configurations",
                        ["model", "seq × batch", "r", "GC", "measured GiB", "estimated GiB", "error"],
                        [[c["model"] + ("*" if str(c.get("measurement", "")).startswith("corrected") else ""),
                          f"{c['seq_len']} × {c['batch_size']}", f"{c['lora_r']}",
                          "on" if c["gradient_checkpointing"] else "off", f"{c['measured_peak_allocated_gib']:.2f}",
                          f"{c['estimated_peak_allocated_gib']:.2f}", f"{c['estimate_error']:+.1%}"]
                         for c in ev["configs"]])
    return "\n".join(lines)
