"""Make real training runs on the toy model whose settings cause each of the articles' five patterns.

Each run is a LoRA fine-tune of the toy world's tiny Llama on the Harbor & Pine support task with
``ftlab.train`` (TRL's ``SFTTrainer``), set up by ``ftlab.diagnose.pattern_runs``: the same
settings notebook 05 uses. Only the run's ``trainer_state.json`` is kept: the real Hugging Face
log the diagnoser reads. Run from the repository root (a minute or two per seed on a laptop CPU)::

    python tests/data/curves/make_real_runs.py                       # seeds 0-2 -> tests/data/curves/real/
    python tests/data/curves/make_real_runs.py --seeds 3 --out /tmp/real   # more runs to check against

The runs are real, so a run can miss its intent; ``labels.csv`` records the intended pattern and
the accuracy test counts such a miss against the diagnoser like any other.
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> None:
    from ftlab.data import support_splits
    from ftlab.diagnose import pattern_runs, train_for_pattern
    from ftlab.toymodel import RECIPE_VERSION

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--out", type=Path, default=HERE / "real")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    labels = args.out / "labels.csv"
    rows = {r["file"]: r for r in csv.DictReader(labels.open())} if labels.exists() else {}
    for seed in args.seeds:
        splits = support_splits(seed)
        for name, knobs in pattern_runs().items():
            with tempfile.TemporaryDirectory() as tmp:
                result = train_for_pattern(knobs, splits["train"], splits["validation"][:24], output_dir=tmp, seed=seed)
                target = args.out / f"{name}_seed{seed}" / "trainer_state.json"
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(result.trainer_state, target)
            rel = target.relative_to(args.out).as_posix()
            rows[rel] = {"file": rel, "pattern": name, "best_step": "", "best_lo": "", "best_hi": "",
                         "description": f"real toy run (toy recipe v{RECIPE_VERSION}, ftlab.train, seed {seed}): "
                                        f"{json.dumps(knobs, sort_keys=True)}"}
            print(f"{rel}: set up for {name}", flush=True)
    with labels.open("w", newline="") as fh:
        w = csv.DictWriter(fh, ["file", "pattern", "best_step", "best_lo", "best_hi", "description"],
                           lineterminator="\n")
        w.writeheader()
        w.writerows(sorted(rows.values(), key=lambda r: r["file"]))


if __name__ == "__main__":
    main()
