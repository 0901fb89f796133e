"""Collect real loss curves the diagnoser's thresholds were not written against, and label them by rule.

Sources (all real training, nothing generated):

- **toy**: LoRA fine-tunes of the toy model with ``ftlab.train`` at many learning rates, batch sizes,
  lengths, eval intervals and logging intervals (Hugging Face ``log_history``);
- **openai**: jobs on the local OpenAI-compatible sandbox; its result file is the OpenAI
  step-metrics CSV, read back with ``ftlab.diagnose.read_metrics_csv``;
- **smollm2** (``--smollm2``): a few short LoRA runs of HuggingFaceTB/SmolLM2-135M-Instruct.

Each run gives several curves: the run cut at a few points (the log up to that step) and the whole
run, so curves have many lengths.

**The labelling rule** (the articles' definitions; ``label_curve`` below). For a curve cut at step T of a
run whose first logged step is t0, with L = T - t0; "train" is the logged training loss, "val" the
validation loss of the evaluations (each on the whole validation set):

1. unstable ("Train spiky throughout"): a NaN/inf training loss, or a typical logged loss sits more
   than 4 % off the median of the five around it (the median of |y[i] - median(y[i-2..i+2])|, relative
   to that median plus 30 % of the starting loss: a smooth fall, however fast, gives 0, and a loss near
   zero does not magnify small wiggles, as on a plot of the run), or the median of 3 logged losses
   climbs 25 % above the first three's median (thrown off by the LR);
2. flat ("Train barely moves from start"): the mean of the last fifth of the training losses is
   less than 10 % below the mean of the first three;
3. overfitting ("Val ↑ diverges"): the last two evaluations up to T are both at least 3 % above the
   lowest one (a rise, not one bumped evaluation);
4. healthy ("Val ↓ parallel", "continue training"): the lowest evaluation in the last third of the
   steps (after T - L/3) is at least 2 % below the lowest one before it: the validation loss still
   falls at a useful rate, however much slower than at the start;
5. plateau ("Val flattens", "diminishing returns"): otherwise.

The rule reads the raw logged values only (no smoothing, no fitted line): the diagnoser, which
smooths and fits, has to agree with it on runs and cuts it has not been fitted on. Runs, not curves, are split in two halves (by a hash of the run
id), so no run gives curves to both halves. Run from the repository root::

    python tests/data/curves/make_labelled_set.py            # writes tests/data/curves/labelled.json
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import json
import math
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
OUT = HERE / "labelled.json"

# (id, learning_rate, max_steps, batch_size, eval_every, logging_steps, n_examples, grad_accum)
TOY_RUNS: list[tuple[str, float, int, int, int, int, int | None, int]] = [
    ("toy-lr2e-4-s60-b8-e3", 2e-4, 60, 8, 3, 1, None, 1),
    ("toy-lr5e-4-s48-b16-e4", 5e-4, 48, 16, 4, 1, None, 1),
    ("toy-lr1e-3-s45-b8-e3", 1e-3, 45, 8, 3, 1, None, 1),
    ("toy-lr1e-3-s60-b4-e5", 1e-3, 60, 4, 5, 1, None, 1),
    ("toy-lr2e-3-s60-b8-e4", 2e-3, 60, 8, 4, 2, None, 1),
    ("toy-lr3e-3-s48-b16-e2", 3e-3, 48, 16, 2, 1, None, 1),
    ("toy-lr5e-3-s60-b8-e6", 5e-3, 60, 8, 6, 1, None, 1),
    ("toy-lr1e-2-s40-b16-e2", 1e-2, 40, 16, 2, 1, None, 1),
    ("toy-lr3e-4-s72-b4-e6-acc2", 3e-4, 72, 4, 6, 1, None, 2),
    ("toy-lr1e-2-s60-n4-e3", 1e-2, 60, 4, 3, 1, 4, 1),
    ("toy-lr5e-3-s72-n8-e4", 5e-3, 72, 8, 4, 1, 8, 1),
    ("toy-lr3e-3-s60-n6-e5", 3e-3, 60, 6, 5, 2, 6, 1),
    ("toy-lr1e-6-s36-b16-e3", 1e-6, 36, 16, 3, 1, None, 1),
    ("toy-lr5e-6-s45-b8-e5", 5e-6, 45, 8, 5, 1, None, 1),
    ("toy-lr1e-5-s30-b8-e3", 1e-5, 30, 8, 3, 1, None, 1),
    ("toy-lr1-s36-b1-e3", 1.0, 36, 1, 3, 1, None, 1),
    ("toy-lr3e-1-s45-b1-e5", 0.3, 45, 1, 5, 1, None, 1),
    ("toy-lr1e-1-s40-b2-e4", 0.1, 40, 2, 4, 1, None, 1),
    ("toy-lr5e-4-s30-b16-e2", 5e-4, 30, 16, 2, 1, None, 1),
    ("toy-lr2e-3-s36-b16-e3", 2e-3, 36, 16, 3, 1, None, 1),
    ("toy-lr1e-2-s120-b16-e8", 1e-2, 120, 16, 8, 2, None, 1),
    ("toy-lr5e-3-s100-b8-e5", 5e-3, 100, 8, 5, 1, None, 1),
    ("toy-lr2e-2-s90-b16-e6", 2e-2, 90, 16, 6, 3, None, 1),
]
# (id, n_train examples, epochs, batch_size, learning_rate_multiplier)
OPENAI_JOBS: list[tuple[str, int, int, int, float]] = [
    ("openai-n48-ep6-b8", 48, 6, 8, 1.0),
    ("openai-n96-ep4-b8", 96, 4, 8, 0.5),
    ("openai-n32-ep10-b4", 32, 10, 4, 2.0),
    ("openai-n64-ep4-b16-lr01", 64, 4, 16, 0.05),
    ("openai-n48-ep8-b8-lr02", 48, 8, 8, 0.2),
    ("openai-n128-ep3-b8", 128, 3, 8, 1.0),
    ("openai-n24-ep12-b4-lr05", 24, 12, 4, 0.5),
    ("openai-n80-ep5-b16-lr3", 80, 5, 16, 3.0),
    ("openai-n40-ep6-b2-lr1", 40, 6, 2, 1.0),
    ("openai-n64-ep2-b4-lr001", 64, 2, 4, 0.01),
    ("openai-n96-ep6-b16-lr8", 96, 6, 16, 8.0),
    ("openai-n16-ep20-b4-lr2", 16, 20, 4, 2.0),
]
# (id, learning_rate, max_steps, batch_size, eval_every): few and short, the real model is slow on a CPU
SMOLLM2_RUNS: list[tuple[str, float, int, int, int]] = [
    ("smollm2-lr2e-4-s30-b4-e3", 2e-4, 30, 4, 3),
    ("smollm2-lr2e-3-s30-b4-e3", 2e-3, 30, 4, 3),
]
SMOLLM2 = "HuggingFaceTB/SmolLM2-135M-Instruct"
CUTS = (0.35, 0.5, 0.67, 1.0)  # where each run is cut (share of its steps)

UNSTABLE_JUMP = 0.04
UNSTABLE_OVERSHOOT = 0.25
FLAT_DROP = 0.10
OVERFIT_RISE = 0.03
HEALTHY_GAIN = 0.02


def _median(v: list[float]) -> float:
    s = sorted(v)
    n = len(s)
    return s[n // 2] if n % 2 else 0.5 * (s[n // 2 - 1] + s[n // 2])


def label_curve(run: dict[str, Any], end: float) -> tuple[str, str]:
    """The label of ``run`` cut at step ``end``, by the rule in this module's docstring, and why."""
    tr = [(s, v) for s, v in zip(run["train_steps"], run["train_loss"], strict=True) if s <= end]
    va = [(s, v) for s, v in zip(run["val_steps"], run["val_loss"], strict=True) if s <= end]
    y = [v for _, v in tr]
    if any(v is None or not math.isfinite(v) for v in y):
        return "unstable", "a NaN/inf training loss"
    first = _median(y[:3])
    jump = _median([abs(y[i] - _median(y[i - 2:i + 3])) / (_median(y[i - 2:i + 3]) + 0.3 * first)
                    for i in range(2, len(y) - 2)])
    if jump > UNSTABLE_JUMP:
        return "unstable", f"a typical logged loss sits {jump:.1%} off the median of the five around it"
    med3 = max(_median(y[i:i + 3]) for i in range(len(y) - 2))
    if med3 > (1 + UNSTABLE_OVERSHOOT) * first:
        return "unstable", f"climbed {med3 / first - 1:.0%} above its start"
    k = max(1, len(y) // 5)
    start, last = sum(y[:3]) / 3, sum(y[-k:]) / k
    if (start - last) / start < FLAT_DROP:
        return "flat", f"training loss fell {(start - last) / start:.1%}"
    vals = [v for _, v in va]
    vmin = min(vals)
    if len(vals) >= 2 and min(vals[-2:]) >= (1 + OVERFIT_RISE) * vmin:
        return "overfitting", f"the last two evaluations are {min(vals[-2:]) / vmin - 1:.1%}+ above the lowest"
    cut = end - (end - tr[0][0]) / 3
    before = [v for s, v in va if s <= cut]
    after = [v for s, v in va if s > cut]
    if not before or not after:
        raise ValueError(f"{run['id']} cut at {end}: no evaluation on one side of the last third")
    gain = (min(before) - min(after)) / min(before)
    if gain >= HEALTHY_GAIN:
        return "healthy", f"the last third lowered the validation loss by {gain:.1%}"
    return "plateau", f"the last third lowered the validation loss by {gain:.1%} (< {HEALTHY_GAIN:.0%})"


def split_of(run_id: str) -> str:
    """``"fit"`` or ``"held_out"``: a hash of the run id, so every curve of a run lands in the same half."""
    return "fit" if int(hashlib.sha256(run_id.encode()).hexdigest(), 16) % 2 == 0 else "held_out"


def _from_log(log: list[dict[str, Any]]) -> dict[str, list[float]]:
    from ftlab.diagnose import history_from_log

    h = history_from_log(log)
    return {"train_steps": h.train_steps.tolist(), "train_loss": [float(v) for v in h.train_loss],
            "val_steps": h.val_steps.tolist(), "val_loss": [float(v) for v in h.val_loss]}


def smollm2_run(spec: tuple, seed: int = 0) -> dict[str, Any]:
    rid, lr, steps, bs, every = spec
    run = toy_run((rid, lr, steps, bs, every, 1, None, 1), seed, model_id=SMOLLM2, n_eval=16)
    return {**run, "source": "smollm2", "knobs": {**run["knobs"], "model_id": SMOLLM2}}


def toy_run(spec: tuple, seed: int = 0, *, model_id: str | None = None, n_eval: int = 24) -> dict[str, Any]:
    from ftlab.data import support_splits
    from ftlab.toymodel import TOY_MODEL_ID
    from ftlab.train import TrainConfig, train

    rid, lr, steps, bs, every, log_every, n_ex, acc = spec
    splits = support_splits(seed)
    with tempfile.TemporaryDirectory() as tmp, contextlib.redirect_stdout(io.StringIO()):
        cfg = TrainConfig(model_id=model_id or TOY_MODEL_ID, quantization="none", output_dir=tmp, seed=seed,
                          learning_rate=lr, max_steps=steps,
                          per_device_train_batch_size=bs, gradient_accumulation_steps=acc, logging_steps=log_every,
                          eval_steps=every, save_steps=steps, save_total_limit=1, lr_scheduler_type="constant",
                          warmup_ratio=0.0, overfit_patience=None, report_to="none")
        rows = splits["train"][: n_ex or steps * bs * acc]
        result = train(cfg, rows, splits["validation"][:n_eval])
        log = json.loads(Path(result.trainer_state).read_text())["log_history"]
    knobs = {"learning_rate": lr, "max_steps": steps, "batch_size": bs, "eval_steps": every,
             "logging_steps": log_every, "n_examples": len(rows), "gradient_accumulation_steps": acc}
    return {"id": rid, "source": "toy", "format": "hf", "knobs": knobs, **_from_log(log)}


def openai_run(spec: tuple, seed: int = 0) -> dict[str, Any]:
    from ftlab.diagnose import read_metrics_csv
    from ftlab.sandbox import Sandbox
    from ftlab.sandbox import workflow as wf

    rid, n, epochs, bs, mult = spec
    with tempfile.TemporaryDirectory() as tmp, Sandbox(Path(tmp) / "sandbox") as sandbox, \
            contextlib.redirect_stdout(io.StringIO()):
        client = sandbox.client()
        files = wf.write_job_files(tmp, n, 16, seed)
        job = client.fine_tuning.jobs.create(
            model="gpt-4.1-mini", training_file=wf.upload(client, files["train"]).id,
            validation_file=wf.upload(client, files["validation"]).id, seed=seed,
            method={"type": "supervised", "supervised": {"hyperparameters": {
                "n_epochs": epochs, "batch_size": bs, "learning_rate_multiplier": mult}}})
        job = wf.wait_for_job(client, job.id, poll_s=0.5, progress=False, show=None)
        raw = client.files.content(job.result_files[0]).read()
    import base64
    text = base64.b64decode(raw).decode()
    h = read_metrics_csv(Path(f"{rid}.csv"), text)
    knobs = {"n_train": n, "n_epochs": epochs, "batch_size": bs, "learning_rate_multiplier": mult}
    return {"id": rid, "source": "openai", "format": "openai", "knobs": knobs, "csv_header": text.splitlines()[0].split(",")[:5],
            "train_steps": h.train_steps.tolist(), "train_loss": [float(v) for v in h.train_loss],
            "val_steps": h.val_steps.tolist(), "val_loss": [float(v) for v in h.val_loss]}


def curves_of(run: dict[str, Any]) -> list[dict[str, Any]]:
    """The run cut at ``CUTS`` of its steps (each cut on a logged training step), labelled."""
    steps = run["train_steps"]
    t0, t1 = steps[0], steps[-1]
    out = []
    for c in CUTS:
        end = max(s for s in steps if s <= t0 + c * (t1 - t0))
        n_train = sum(s <= end for s in steps)
        n_val = sum(s <= end for s in run["val_steps"])
        if n_train < 8 or n_val < 3:
            continue
        label, why = label_curve(run, end)
        out.append({"run": run["id"], "end_step": end, "label": label, "why": why, "split": split_of(run["id"])})
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", nargs="*", help="run ids to (re)make; others are kept from the file")
    ap.add_argument("--relabel", action="store_true", help="only recompute the labels of the stored runs")
    ap.add_argument("--skip-openai", action="store_true")
    ap.add_argument("--smollm2", action="store_true", help="also the few SmolLM2 runs (slow on a CPU)")
    args = ap.parse_args()
    data = json.loads(OUT.read_text()) if OUT.exists() else {"runs": {}}
    runs = data["runs"]
    if not args.relabel:
        todo = [("toy", s) for s in TOY_RUNS] + ([] if args.skip_openai else [("openai", s) for s in OPENAI_JOBS])
        todo += [("smollm2", s) for s in SMOLLM2_RUNS] if args.smollm2 else []
        for kind, spec in todo:
            if (args.only and spec[0] not in args.only) or (not args.only and spec[0] in runs):
                continue
            started = time.perf_counter()
            runs[spec[0]] = {"toy": toy_run, "openai": openai_run, "smollm2": smollm2_run}[kind](spec)
            print(f"{spec[0]}: {time.perf_counter() - started:.0f} s", flush=True)
            _write(runs)
    _write(runs)


def _write(runs: dict[str, Any]) -> None:
    curves = [c for rid in sorted(runs) for c in curves_of(runs[rid])]
    data = {"rule": __doc__.split("**The labelling rule**")[1].split("Run from the repository root")[0].strip(),
            "runs": runs, "curves": curves}
    OUT.write_text(json.dumps(data, indent=1) + "\n")


if __name__ == "__main__":
    main()
