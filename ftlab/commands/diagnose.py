"""ftlab diagnose: name a loss curve's pattern (healthy, plateau, overfitting, flat, unstable) and what to do."""

from __future__ import annotations

import json

__all__ = ["register"]


def register(sub) -> None:
    p = sub.add_parser(
        "diagnose",
        help="diagnose a loss curve: trainer_state.json (or its folder), OpenAI step-metrics CSV, or step,train_loss,valid_loss CSV",
        description="Read a loss log and name its pattern from the articles' table (healthy, plateau, overfitting, "
                    "flat, unstable) with the action to take, the evidence and, for overfitting, the best checkpoint.",
    )
    p.add_argument("path", metavar="FILE_OR_DIR",
                   help="a trainer_state.json, a checkpoint/output folder (the newest trainer_state.json below it), "
                        "an OpenAI step-metrics CSV, or a CSV with step,train_loss,valid_loss")
    p.add_argument("--json", action="store_true",
                   help='print {"pattern", "action", "evidence", "best_step"} as JSON')

    def run(args) -> int:
        from ftlab.diagnose import diagnose, load_history

        history = load_history(args.path)
        result = diagnose(history)
        if args.json:
            print(json.dumps(result.to_dict(), indent=2, ensure_ascii=False))
            return 0
        print(f"read:    {history.describe()}")
        print(result.summary())
        ev = result.evidence
        line = (f"train loss {ev['train_start']:.4g} → {ev['train_end']:.4g} ({-ev['train_drop']:+.0%}), "
                f"noise ±{ev['noise']:.0%}, {ev['spike_count']} spikes")
        if "val_min" in ev:
            line += f"; validation {ev['val_start']:.4g} → min {ev['val_min']:.4g} (step {ev['val_min_step']})"
            line += f" → {ev['val_end']:.4g}, gap to train {ev['gap_end']:+.3g}"
        print(f"evidence: {line}")
        return 0

    p.set_defaults(func=run)
