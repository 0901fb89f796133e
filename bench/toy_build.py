"""Benchmark: how long the toy base model takes to build on this machine (goal: <= 60 s on 2 CPU cores).

    python bench/toy_build.py [--seeds 0 1 2] [--threads 1 2]

Writes bench/results/toy_build.json and bench/results/toy_build.md with the device, the date,
the command, the load average before and after, and the library versions. Run it on an otherwise idle machine.
``--threads`` builds once per thread count (``FTLAB_THREADS``; the build's default is every core, 2 here). A thread
count other than the default changes the floating-point order, so its model is not the cached default.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--threads", type=int, nargs="+", default=[2], help="CPU threads per build (FTLAB_THREADS)")
    ap.add_argument("--out", default=str(HERE / "results"))
    args = ap.parse_args()
    from ftlab.runcard import hardware, library_versions
    from ftlab.toymodel import ToyRecipe, build_toy_model

    rows = []
    load_at_start = os.getloadavg()
    for threads in args.threads:
        os.environ["FTLAB_THREADS"] = str(threads)
        for seed in args.seeds:
            with tempfile.TemporaryDirectory() as tmp:
                t0, c0 = time.perf_counter(), time.process_time()
                rep = build_toy_model(out=Path(tmp) / "toy", seed=seed, force=True)
                wall, cpu = time.perf_counter() - t0, time.process_time() - c0
            rows.append({"seed": seed, "threads": threads, "wall_seconds": round(wall, 1), "cpu_seconds": round(cpu, 1),
                         "build_seconds": rep.build_seconds, "general_accuracy": rep.general_accuracy,
                         "refusal_rate": rep.refusal_rate, "target_accuracy": rep.target_accuracy,
                         "n_parameters": rep.n_parameters})
            print(rows[-1], flush=True)
    result = {
        "benchmark": "toy_build",
        "goal": "build_seconds <= 60 on a 2-core CPU",
        "date": dt.date.today().isoformat(),
        "device": {"cpu": hardware()["cpu"], "cpu_count": os.cpu_count(),
                   "load_avg_at_start": load_at_start, "load_avg_at_end": os.getloadavg()},
        "command": "python " + " ".join(sys.argv),
        "recipe": ToyRecipe().__dict__,
        "libraries": library_versions(),
        "runs": rows,
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "toy_build.json").write_text(json.dumps(result, indent=2))
    lines = [f"# Toy model build ({result['date']}, {result['device']['cpu']}, {result['device']['cpu_count']} CPUs)",
             "", f"Goal: {result['goal']}. Command: `{result['command']}`. Load average (1, 5, 15 min) at the start: "
             f"{', '.join(f'{x:.2f}' for x in load_at_start)}; at the end: "
             f"{', '.join(f'{x:.2f}' for x in result['device']['load_avg_at_end'])}. Recipe v{result['recipe']['version']}, "
             f"{rows[0]['n_parameters']:,} parameters.", "",
             "| seed | threads | build s | process CPU s | general acc | refusal rate | target acc |",
             "|---|---|---|---|---|---|---|"]
    lines += [f"| {r['seed']} | {r['threads']} | {r['build_seconds']} | {r['cpu_seconds']} | {r['general_accuracy']:.2f} | "
              f"{r['refusal_rate']:.2f} | "
              f"{r['target_accuracy']:.2f} |" for r in rows]
    (out / "toy_build.md").write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
