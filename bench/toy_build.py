"""Benchmark: how long the toy base model takes to build on this machine (goal: <= 90 s on 2 CPU cores).

    python bench/toy_build.py [--seeds 0 1 2] [--threads 1 2]

Writes bench/results/toy_build.json and bench/results/toy_build.md with the device, the date,
the command and the library versions. Run it on an otherwise idle machine. ``--threads`` builds once per
thread count (``FTLAB_THREADS``; ftlab's default for a model this small is 1, see ``ftlab.core.tune_cpu_threads``).
A thread count other than 1 changes the floating-point order, so its model is not the cached default.
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
    ap.add_argument("--threads", type=int, nargs="+", default=[1], help="CPU threads per build (FTLAB_THREADS)")
    ap.add_argument("--out", default=str(HERE / "results"))
    args = ap.parse_args()
    from ftlab.runcard import hardware, library_versions
    from ftlab.toymodel import ToyRecipe, build_toy_model

    rows = []
    for threads in args.threads:
        os.environ["FTLAB_THREADS"] = str(threads)
        for seed in args.seeds:
            with tempfile.TemporaryDirectory() as tmp:
                t0 = time.perf_counter()
                rep = build_toy_model(out=Path(tmp) / "toy", seed=seed, force=True)
                wall = time.perf_counter() - t0
            rows.append({"seed": seed, "threads": threads, "wall_seconds": round(wall, 1),
                         "build_seconds": rep.build_seconds, "general_accuracy": rep.general_accuracy,
                         "refusal_rate": rep.refusal_rate, "target_accuracy": rep.target_accuracy,
                         "n_parameters": rep.n_parameters})
            print(rows[-1], flush=True)
    result = {
        "benchmark": "toy_build",
        "goal": "build_seconds <= 90 on a 2-core CPU",
        "date": dt.date.today().isoformat(),
        "device": {"cpu": hardware()["cpu"], "cpu_count": os.cpu_count(),
                   "load_avg_at_end": os.getloadavg()},
        "command": "python " + " ".join(sys.argv),
        "recipe": ToyRecipe().__dict__,
        "libraries": library_versions(),
        "runs": rows,
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "toy_build.json").write_text(json.dumps(result, indent=2))
    lines = [f"# Toy model build ({result['date']}, {result['device']['cpu']}, {result['device']['cpu_count']} CPUs)",
             "", f"Goal: {result['goal']}. Command: `{result['command']}`. Load average at the end: "
             f"{', '.join(f'{x:.2f}' for x in result['device']['load_avg_at_end'])}.", "",
             "| seed | threads | build s | general acc | refusal rate | target acc |", "|---|---|---|---|---|---|"]
    lines += [f"| {r['seed']} | {r['threads']} | {r['build_seconds']} | {r['general_accuracy']:.2f} | {r['refusal_rate']:.2f} | "
              f"{r['target_accuracy']:.2f} |" for r in rows]
    (out / "toy_build.md").write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
