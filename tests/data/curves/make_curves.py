"""Make the hand-made, labelled loss curves that the diagnoser's accuracy test runs on.

Deterministic: the same seed writes byte-identical files. Run from the repository root::

    python tests/data/curves/make_curves.py                      # rewrites tests/data/curves/synthetic/
    python tests/data/curves/make_curves.py --seed 7 --out /tmp/heldout --per-pattern 60   # a fresh set

Each curve is drawn from a model of what the articles' five patterns look like, with its own run
length, logging and eval interval, noise, missing values and (sometimes) NaNs, and written in one
of the three formats the diagnoser reads (cycling, so every pattern appears in every format):

- ``hf``: a Hugging Face ``trainer_state.json`` (loss every ``logging_steps``, eval_loss every
  ``eval_steps``, the final ``train_loss`` summary entry; NaN written as HF writes it);
- ``openai``: an OpenAI step-metrics CSV (a row per step, ``valid_loss`` on every k-th row,
  per-batch and so noisy, like OpenAI's);
- ``plain``: ``step,train_loss,valid_loss``.

What makes a pattern (t is the fraction of the run, 0..1):

- healthy: loss = a + (L0 - a)·exp(-k t) with k in [0.7, 2] (still falling at the end); val parallel.
- plateau: the same with k in [5, 12] for the validation loss (flat for the last half), train
  still creeping down; without validation data the training loss itself flattens.
- overfitting: train falls towards a small floor; val falls, bottoms out at t0 in [0.15, 0.6]
  and then rises by 12-80 % of its minimum. The label carries the step of the true minimum.
- flat: loss moves by -2 % .. +5 % over the whole run, small noise.
- unstable: batch-size-1 noise (lognormal sigma 0.3-0.8), repeated LR spikes (1.5-4x the
  trend), divergence (the loss climbs back above its start, sometimes ending in NaN), or bouncing
  between levels.

Healthy, plateau and flat curves get the step-to-step noise of a batch of 8 or more (0-7 %;
real toy runs at batch size 8 show 3-6 %), sometimes a single outlier batch,
which must not make them unstable. labels.csv lists file, pattern, best_step and a description.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
PATTERNS = ["healthy", "plateau", "overfitting", "flat", "unstable"]
FORMATS = ["hf", "openai", "plain"]


def _f(x: float) -> float:
    """Round like a log file would (6 significant digits)."""
    return float(f"{x:.6g}") if math.isfinite(x) else x


class Curve:
    def __init__(self, pattern: str, steps: np.ndarray, train: np.ndarray, val_steps: np.ndarray,
                 val: np.ndarray, description: str, best: tuple[int, int, int] | None = None):
        self.pattern, self.steps, self.train = pattern, steps, train
        self.val_steps, self.val, self.description = val_steps, val, description
        # for overfitting: the eval step nearest the true minimum, and the eval steps where the
        # noise-free validation loss is within 2 % of its minimum (any of them is a fine checkpoint)
        self.best = best


def _lognoise(rng: np.random.Generator, n: int, sigma: float) -> np.ndarray:
    """Multiplicative noise with mean 1 (per-batch losses are skewed, never negative)."""
    return np.exp(sigma * rng.standard_normal(n) - sigma**2 / 2)


def _decay(t: np.ndarray, start: float, floor: float, k: float) -> np.ndarray:
    return floor + (start - floor) * np.exp(-k * t)


def _layout(rng: np.random.Generator, fmt: str, want_val: bool, noisy_val: bool | None = None):
    """Run length, logging interval and eval steps for a format."""
    lengths = [15, 20, 30, 45, 60, 90, 130, 200, 300, 450, 700, 1000]
    points = int(rng.choice(lengths if fmt != "hf" else lengths[:-2]))  # (HF JSON is bulky: up to 450)
    log_every = 1 if fmt == "openai" else int(rng.choice([1, 1, 1, 2, 5, 10]))
    steps = np.arange(1, points + 1) * log_every
    total = int(steps[-1])
    if not want_val:
        return steps, np.array([], dtype=int)
    # OpenAI evaluates a validation batch every k steps; HF runs evaluate every eval_steps
    m = int(rng.integers(8, 41)) if fmt == "openai" else int(rng.choice([3, 4, 5, 6, 8, 10, 12, 16, 20, 30]))
    m = max(3 if fmt != "openai" else 8, min(m, points))
    every = max(1, total // m)
    val_steps = np.arange(every, total + 1, every)
    return steps, val_steps


def _val_noise(rng: np.random.Generator, fmt: str, evals: int = 10) -> float:
    """OpenAI's per-step valid_loss is one batch (noisy); HF's eval_loss averages the whole eval set, so
    it moves only as much as the model does (up to 2 %; up to 1 % for a run with a handful of evals)."""
    if fmt == "openai":
        return float(rng.uniform(0.03, 0.08))
    return float(rng.uniform(0.0, 0.02 if evals >= 7 else 0.01))


def _outlier(rng: np.random.Generator, y: np.ndarray) -> str:
    if len(y) >= 20 and rng.random() < 0.3:
        i = int(rng.integers(len(y) // 4, len(y) - 2))
        y[i] *= rng.uniform(1.6, 2.2)
        return ", one outlier batch"
    return ""


def _still_falling(tx: np.ndarray, clean: np.ndarray, noise: float) -> bool:
    """Is the last third's fall at least 4 standard errors of a straight line fitted to it?"""
    last = tx >= tx[-1] - (tx[-1] - tx[0]) / 3
    fall = (np.interp(tx[-1] - (tx[-1] - tx[0]) / 3, tx, clean) - clean[-1]) / clean[-1]
    return len(tx) < 7 or fall >= 4 * noise * math.sqrt(12 / max(last.sum(), 1))


def make_healthy(rng, fmt, want_val=True) -> Curve:
    steps, vs = _layout(rng, fmt, want_val)
    total = steps[-1]
    t, tv = steps / total, vs / total
    L0 = rng.uniform(0.8, 4.0)
    floor = L0 * rng.uniform(0.05, 0.4)
    rho = rng.uniform(0.0, 0.07)
    vnoise = _val_noise(rng, fmt, len(tv))
    gap = rng.uniform(0.0, 0.15)
    # unmistakably still falling, on the curve that decides (validation, else training)
    for _ in range(10000):
        k = rng.uniform(0.8, 1.8)
        clean = _decay(tv, L0, floor, k) * (1 + gap)
        if want_val and _still_falling(tv, clean, vnoise):
            break
        if not want_val and _still_falling(t, _decay(t, L0, floor, k), rho):
            break
        vnoise, rho = vnoise * 0.8, rho * 0.8
    train = _decay(t, L0, floor, k) * _lognoise(rng, len(t), rho)
    extra = _outlier(rng, train)
    val = clean * _lognoise(rng, len(tv), vnoise)
    return Curve("healthy", steps, train, vs, val, f"exp decay k={k:.2f}, noise {rho:.2f}, val noise {vnoise:.2f}{extra}")


def make_plateau(rng, fmt, want_val=True) -> Curve:
    steps, vs = _layout(rng, fmt, want_val)
    total = steps[-1]
    t, tv = steps / total, vs / total
    L0 = rng.uniform(0.8, 4.0)
    floor = L0 * rng.uniform(0.15, 0.5)
    k = rng.uniform(6.0, 12.0)
    rho = rng.uniform(0.0, 0.07)
    creep = rng.uniform(0.0, 0.25) * floor if want_val else 0.0  # train keeps creeping down
    train = (_decay(t, L0, floor, k) - creep * t) * _lognoise(rng, len(t), rho)
    extra = _outlier(rng, train)
    val = _decay(tv, L0 * rng.uniform(0.95, 1.05), floor * rng.uniform(1.0, 1.2), k) * _lognoise(
        rng, len(tv), _val_noise(rng, fmt, len(tv)))
    return Curve("plateau", steps, train, vs, val, f"exp decay k={k:.1f}, train creep {creep:.2f}, noise {rho:.2f}{extra}")


def make_overfitting(rng, fmt, want_val=True) -> Curve:
    steps, vs = _layout(rng, fmt, True)
    while len(vs) < 4:
        steps, vs = _layout(rng, fmt, True)
    total = steps[-1]
    t, tv = steps / total, vs / total
    L0 = rng.uniform(0.8, 4.0)
    k = rng.uniform(3.0, 8.0)
    rho = rng.uniform(0.0, 0.07)
    train = _decay(t, L0, L0 * rng.uniform(0.01, 0.2), k) * _lognoise(rng, len(t), rho)
    vnoise = _val_noise(rng, fmt, len(tv))
    vfloor = L0 * rng.uniform(0.2, 0.5)
    grid = np.linspace(0, 1, 2001)
    # the rise must be unmistakable: at least 12 % of the minimum and 5 noise widths
    need = max(0.12, 6 * vnoise)
    for _ in range(10000):
        t0 = rng.uniform(0.15, 0.6)
        power = rng.choice([1.0, 1.5, 2.0])
        # the rise, in units of the validation floor, that lifts the end 'need'..0.9 above the minimum
        rise = rng.uniform(need, 0.9) * (vfloor + 0.1 * L0) / vfloor

        def clean(u, t0=t0, power=power, rise=rise):
            return _decay(u, L0, vfloor, k) + vfloor * rise * (np.clip(u - t0, 0, None) / (1 - t0)) ** power

        cv = clean(tv)
        if (cv[-1] - cv.min()) / (cv.min() + 0.1 * L0) >= need and np.argmin(cv) < len(cv) - 1:
            break
    else:
        raise RuntimeError("no overfitting curve with a clear rise for this layout")
    val = cv * _lognoise(rng, len(tv), vnoise)
    g = clean(grid)
    best = int(vs[np.argmin(np.abs(vs / total - grid[np.argmin(g)]))])
    # a fine checkpoint: within 2 % of the minimum, plus what the eval noise makes indistinguishable
    near = vs[cv <= cv.min() * (1.02 + 1.5 * vnoise)]
    return Curve("overfitting", steps, train, vs, val,
                 f"val rises {rise:.0%} after t={t0:.2f} (power {power}), val noise {vnoise:.2f}",
                 (best, int(near.min()), int(near.max())))


def make_flat(rng, fmt, want_val=True) -> Curve:
    steps, vs = _layout(rng, fmt, want_val)
    total = steps[-1]
    t, tv = steps / total, vs / total
    L0 = rng.uniform(0.8, 6.0)
    d = rng.uniform(-0.02, 0.05)
    rho = rng.uniform(0.005, 0.06)
    train = L0 * (1 - d * t) * _lognoise(rng, len(t), rho)
    extra = _outlier(rng, train)
    val = L0 * rng.uniform(1.0, 1.1) * (1 - d * tv) * _lognoise(rng, len(tv), _val_noise(rng, fmt, len(tv)))
    return Curve("flat", steps, train, vs, val, f"moves {d:+.1%}, noise {rho:.2f}{extra}")


def make_unstable(rng, fmt, want_val=True) -> Curve:
    steps, vs = _layout(rng, fmt, want_val)
    while len(steps) < 30:
        steps, vs = _layout(rng, fmt, want_val)
    total = steps[-1]
    t, tv = steps / total, vs / total
    n = len(t)
    L0 = rng.uniform(0.8, 4.0)
    kind = rng.choice(["batch1", "spikes", "diverge", "bounce"])
    trend = _decay(t, L0, L0 * rng.uniform(0.3, 0.6), rng.uniform(1.0, 5.0))
    vtrend = _decay(tv, L0, L0 * rng.uniform(0.3, 0.6), rng.uniform(1.0, 5.0))
    if kind == "batch1":
        sigma = rng.uniform(0.3, 0.8)
        train = trend * _lognoise(rng, n, sigma)
        desc = f"batch-size-1 noise sigma {sigma:.2f}"
    elif kind == "spikes":
        count = max(5, int(rng.uniform(0.03, 0.08) * n))
        train = trend * _lognoise(rng, n, rng.uniform(0.0, 0.08))
        for i in rng.choice(np.arange(n // 20, n), size=count, replace=False):
            height = rng.uniform(1.5, 4.0)
            for j in range(int(rng.integers(1, 4))):
                if i + j < n:
                    train[i + j] *= 1 + (height - 1) * 0.5**j
        desc = f"{count} LR spikes"
    elif kind == "diverge":
        td = rng.uniform(0.3, 0.7)
        growth = rng.uniform(1.5, 4.0)
        train = trend * np.exp(growth * np.clip(t - td, 0, None) / (1 - td) * 1.5) * _lognoise(rng, n, rng.uniform(0, 0.08))
        vtrend = vtrend * np.exp(growth * np.clip(tv - td, 0, None) / (1 - td) * 1.5)
        desc = f"diverges after t={td:.2f}"
        if rng.random() < 0.4:
            cut = int(n * rng.uniform(0.85, 0.95))
            train[cut:] = np.nan
            desc += ", ends in NaN"
    else:  # jumps: the loss leaps up as the LR overshoots and recovers slowly, again and again
        count = int(rng.integers(3, 6))
        train = trend * _lognoise(rng, n, rng.uniform(0.0, 0.08))
        for c0 in np.sort(rng.uniform(0.1, 0.9, size=count)):
            height, recover = rng.uniform(0.6, 1.5), rng.uniform(0.03, 0.12)
            train *= 1 + height * np.where(t >= c0, np.exp(-(t - c0) / recover), 0)
        desc = f"{count} jumps with slow recovery"
    val = vtrend * _lognoise(rng, len(tv), _val_noise(rng, fmt, len(tv)) + 0.03)
    return Curve("unstable", steps, train, vs, val, desc)


MAKERS = {"healthy": make_healthy, "plateau": make_plateau, "overfitting": make_overfitting, "flat": make_flat,
          "unstable": make_unstable}


# ---------------------------------------------------------------------------------------------
# Writers
# ---------------------------------------------------------------------------------------------


def _damage(rng: np.random.Generator, c: Curve) -> str:
    """Missing values and stray NaNs, as real logs have them. Returns a note for the description."""
    notes = []
    if rng.random() < 0.3 and len(c.train) > 20:
        drop = rng.choice(np.arange(1, len(c.train) - 2), size=max(1, len(c.train) // 15), replace=False)
        keep = np.setdiff1d(np.arange(len(c.train)), drop)
        c.steps, c.train = c.steps[keep], c.train[keep]
        notes.append(f"{len(drop)} missing train values")
    if rng.random() < 0.2 and len(c.train) > 20 and np.isfinite(c.train[-3:]).all():
        i = int(rng.integers(1, len(c.train) - 3))
        c.train[i] = np.nan
        notes.append("a stray NaN")
    if rng.random() < 0.15 and len(c.val) > 6:
        i = int(rng.integers(1, len(c.val) - 1))
        if c.best is None or c.val_steps[i] != c.best[0]:
            c.val[i] = np.nan
            notes.append("a NaN validation loss")
    return "; ".join(notes)


def write_hf(c: Curve, path: Path, rng: np.random.Generator, batch: int = 8) -> None:
    steps_per_epoch = max(1, int(c.steps[-1] // rng.choice([1, 2, 3, 5])))
    log_every = int(c.steps[1] - c.steps[0]) if len(c.steps) > 1 else 1
    lr0 = float(rng.choice([1e-5, 5e-5, 2e-4, 1e-3]))
    entries: dict[int, list[dict]] = {}
    for s, y in zip(c.steps.tolist(), c.train.tolist(), strict=True):
        entries.setdefault(int(s), []).append({
            "epoch": _f(s / steps_per_epoch), "grad_norm": _f(float(rng.uniform(0.3, 3.0))),
            "learning_rate": _f(lr0 * (1 - (s - 1) / c.steps[-1])), "loss": _f(y), "step": int(s)})
    for s, y in zip(c.val_steps.tolist(), c.val.tolist(), strict=True):
        if not math.isfinite(y) and rng.random() < 0.5:
            continue  # an eval that did not log at all
        entries.setdefault(int(s), []).append({
            "epoch": _f(s / steps_per_epoch), "eval_loss": _f(y), "eval_runtime": _f(float(rng.uniform(0.5, 3))),
            "eval_samples_per_second": _f(float(rng.uniform(20, 90))),
            "eval_steps_per_second": _f(float(rng.uniform(3, 12))), "step": int(s)})
    log = [e for s in sorted(entries) for e in entries[s]]
    last = int(c.steps[-1])
    finite = c.train[np.isfinite(c.train)]
    log.append({"epoch": _f(last / steps_per_epoch), "step": last, "total_flos": 1.0e12,
                "train_loss": _f(float(finite.mean())) if len(finite) else float("nan"),
                "train_runtime": _f(last * 0.41), "train_samples_per_second": _f(batch / 0.41),
                "train_steps_per_second": _f(1 / 0.41)})
    eval_steps = int(c.val_steps[0]) if len(c.val_steps) else None
    state = {
        "best_global_step": None, "best_metric": None, "best_model_checkpoint": None,
        "epoch": _f(last / steps_per_epoch), "eval_steps": eval_steps, "global_step": last,
        "is_hyper_param_search": False, "is_local_process_zero": True, "is_world_process_zero": True,
        "log_history": log, "logging_steps": log_every, "max_steps": last,
        "num_input_tokens_seen": 0, "num_train_epochs": math.ceil(last / steps_per_epoch),
        "save_steps": last, "stateful_callbacks": {"TrainerControl": {"args": {
            "should_epoch_stop": False, "should_evaluate": False, "should_log": False,
            "should_save": True, "should_training_stop": True}, "attributes": {}}},
        "total_flos": 1.0e12, "train_batch_size": batch, "trial_name": None, "trial_params": None,
    }
    path.write_text(json.dumps(state, indent=2, sort_keys=True) + "\n")


def _cell(x: float | None) -> str:
    if x is None:
        return ""
    return "nan" if math.isnan(x) else f"{x:.6g}"


def write_openai(c: Curve, path: Path, rng: np.random.Generator) -> None:
    val = dict(zip(c.val_steps.tolist(), c.val.tolist(), strict=True))
    with path.open("w", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(["step", "train_loss", "train_accuracy", "valid_loss", "valid_mean_token_accuracy"])
        train = dict(zip(c.steps.tolist(), c.train.tolist(), strict=True))
        for s in range(1, int(max(c.steps[-1], c.val_steps[-1] if len(c.val_steps) else 0)) + 1):
            y = train.get(s)
            acc = None if y is None or not math.isfinite(y) else min(1.0, math.exp(-y) * rng.uniform(0.9, 1.1))
            v = val.get(s)
            vacc = None if v is None or not math.isfinite(v) else min(1.0, math.exp(-v) * rng.uniform(0.9, 1.1))
            w.writerow([s, _cell(y), _cell(acc), _cell(v), _cell(vacc)])


def write_plain(c: Curve, path: Path, rng: np.random.Generator) -> None:
    train = dict(zip(c.steps.tolist(), c.train.tolist(), strict=True))
    val = dict(zip(c.val_steps.tolist(), c.val.tolist(), strict=True))
    with path.open("w", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(["step", "train_loss", "valid_loss"])
        for s in sorted(set(train) | set(val)):
            w.writerow([s, _cell(train.get(s)), _cell(val.get(s))])


WRITERS = {"hf": (write_hf, "trainer_state.json"), "openai": (write_openai, "csv"), "plain": (write_plain, "csv")}


def make_set(out: Path, seed: int, per_pattern: int) -> list[dict]:
    rng = np.random.default_rng(seed)
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("*"):
        if old.is_file():
            old.unlink()
    rows = []
    for pattern in PATTERNS:
        for i in range(per_pattern):
            fmt = FORMATS[i % 3]
            # about one run in five has no validation data (overfitting needs it, so never there)
            want_val = pattern == "overfitting" or rng.random() > 0.2
            c = MAKERS[pattern](rng, fmt, want_val)
            if not want_val:
                c.val_steps, c.val = np.array([], dtype=int), np.array([])
            notes = _damage(rng, c)
            writer, suffix = WRITERS[fmt]
            name = f"{pattern}_{i:02d}_{fmt}" + (f".{suffix}" if suffix == "csv" else f"_{suffix}")
            writer(c, out / name, rng)
            desc = c.description + ("" if want_val else ", no validation") + (f"; {notes}" if notes else "")
            best = c.best or ("", "", "")
            rows.append({"file": name, "pattern": pattern, "best_step": best[0], "best_lo": best[1],
                         "best_hi": best[2], "description": desc})
    with (out / "labels.csv").open("w", newline="") as fh:
        w = csv.DictWriter(fh, ["file", "pattern", "best_step", "best_lo", "best_hi", "description"], lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument("--per-pattern", type=int, default=24)
    ap.add_argument("--out", type=Path, default=HERE / "synthetic")
    args = ap.parse_args()
    rows = make_set(args.out, args.seed, args.per_pattern)
    print(f"wrote {len(rows)} curves and labels.csv to {args.out}")


if __name__ == "__main__":
    main()
