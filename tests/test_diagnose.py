"""The loss-curve diagnoser: the labelled curve set, each pattern, each format, bad input and the CLI."""

from __future__ import annotations

import base64
import csv
import importlib.util
import json
import math
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from ftlab.diagnose import (
    NO_VALIDATION_WARNING,
    PATTERNS,
    Diagnosis,
    LossHistory,
    diagnose,
    find_trainer_state,
    history_from_log,
    load_history,
    local_noise,
    noise_level,
    plot_diagnosis,
    smooth,
    theil_sen,
)
from ftlab.errors import FtlabError
from tests.helpers import ROOT

CURVES = ROOT / "tests" / "data" / "curves"
CODES = ["healthy", "plateau", "overfitting", "flat", "unstable"]


def _labelled() -> list[tuple[Path, dict]]:
    out = []
    for labels in sorted(CURVES.glob("*/labels.csv")):
        for row in csv.DictReader(labels.open()):
            out.append((labels.parent / row["file"], row))
    return out


# ---------------------------------------------------------------------------------------------
# The labelled set
# ---------------------------------------------------------------------------------------------


def test_labelled_set_covers_every_pattern_in_every_format():
    rows = _labelled()
    assert len(rows) >= 100
    seen = Counter((row["pattern"], load_history(path).format) for path, row in rows)
    missing = [(p, f) for p in CODES for f in ("hf", "openai", "plain") if seen[(p, f)] < 3]
    assert not missing, f"too few labelled curves for {missing}"
    lengths = {len(load_history(path).train_loss) for path, _ in rows}
    assert min(lengths) <= 20 and max(lengths) >= 900, "lengths must range from short to long runs"
    assert any(not load_history(p).has_validation for p, _ in rows), "some curves must lack validation data"


def test_diagnoser_gets_at_least_95_percent_of_the_labelled_set_right():
    """The generator's curves (and the old pattern runs), read with today's definition of healthy.

    Their "plateau" was "the last third brought < 10 % of the improvement": many of those curves still
    lose several % of their validation loss over the last third, which issue 19 calls healthy (still
    falling at a useful rate, however much slower than at the start). Here healthy counts as right for them;
    the real labelled set (labelled.json, below) is labelled by today's rule.
    """
    rows = _labelled()
    wrong = []
    for path, row in rows:
        got = diagnose(path)
        if got.pattern != row["pattern"] and not (row["pattern"] == "plateau" and got.pattern == "healthy"):
            wrong.append(f"{path.relative_to(CURVES)}: labelled {row['pattern']}, got {got.pattern} ({got.reason})")
    accuracy = 1 - len(wrong) / len(rows)
    print(f"diagnoser accuracy on {len(rows)} labelled curves: {accuracy:.1%}")
    assert accuracy >= 0.95, f"accuracy {accuracy:.1%} < 95%:\n" + "\n".join(wrong)


def test_real_toy_runs_are_part_of_the_labelled_set():
    real = [(p, r) for p, r in _labelled() if p.name == "trainer_state.json" and "real" in p.parts]
    if not real:
        pytest.skip("no real toy runs committed yet (tests/data/curves/make_real_runs.py)")
    assert {r["pattern"] for _, r in real} == set(CODES), "a real run for each of the five patterns"
    for path, _ in real:
        state = json.loads(path.read_text())
        assert state["log_history"] and "global_step" in state  # as the Trainer wrote it


def test_overfitting_best_step_is_a_good_checkpoint():
    """best_step lands where the noise-free validation loss is near its minimum (labels give the range)."""
    rows = [(p, r) for p, r in _labelled() if r["best_step"]]
    assert len(rows) >= 20
    off = []
    for path, row in rows:
        got = diagnose(path)
        if got.pattern != "overfitting":
            continue
        xv = got._analysis.xv
        interval = (xv[-1] - xv[0]) / max(1, len(xv) - 1)
        lo, hi = int(row["best_lo"]) - interval, int(row["best_hi"]) + interval
        if not lo <= got.best_step <= hi:
            off.append(f"{path.name}: best_step {got.best_step} outside [{lo:g}, {hi:g}]")
    assert len(off) <= 0.1 * len(rows), "\n".join(off)


def test_committed_curves_are_what_the_script_makes(tmp_path):
    spec = importlib.util.spec_from_file_location("make_curves", CURVES / "make_curves.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.make_set(tmp_path, 2026, 24)
    committed = CURVES / "synthetic"
    made = sorted(p.name for p in tmp_path.iterdir())
    assert made == sorted(p.name for p in committed.iterdir() if p.is_file())
    for name in made:
        assert (tmp_path / name).read_bytes() == (committed / name).read_bytes(), f"{name} differs: rerun make_curves.py"


# ---------------------------------------------------------------------------------------------
# Each pattern, from curves built here
# ---------------------------------------------------------------------------------------------

RNG = np.random.default_rng(7)


def _curve(n=200, start=2.5, floor=0.6, k=1.5, noise=0.03, rng=RNG):
    """(noise-free exponential decay, fraction of the run, multiplicative noise) for n steps."""
    t = np.arange(1, n + 1) / n
    return floor + (start - floor) * np.exp(-k * t), t, rng.lognormal(-noise**2 / 2, noise, n)


def _history(train, val_every=20, val=None, n=None):
    n = n or len(train)
    steps = np.arange(1, n + 1)
    if val is None:
        return LossHistory.from_arrays(steps, train)
    vs = steps[val_every - 1::val_every]
    return LossHistory.from_arrays(steps, train, vs, val(vs / n))


def test_healthy():
    clean, _t, noise = _curve()
    h = _history(clean * noise, val=lambda u: 0.6 + 1.95 * np.exp(-1.5 * u) + 0.05)
    d = diagnose(h)
    assert d.pattern == "healthy" and d.action == "Continue training" and d.best_step is None
    assert not d.warnings


def test_plateau():
    clean, _t, noise = _curve(k=10)
    d = diagnose(_history(clean * noise, val=lambda u: 0.7 + 1.8 * np.exp(-10 * u)))
    assert d.pattern == "plateau" and d.action == "Reduce LR or stop soon"
    assert d.evidence["val_recent_share"] < 0.1


def test_overfitting_reports_where_validation_bottomed_out():
    clean, _t, noise = _curve(floor=0.05, k=5)
    d = diagnose(_history(clean * noise, val_every=10, val=lambda u: 0.8 + 1.7 * np.exp(-6 * u) + 0.6 * np.clip(u - 0.4, 0, None)))
    assert d.pattern == "overfitting"
    assert d.action == "Stop now; reduce epochs; add more diverse data"
    assert 60 <= d.best_step <= 110  # the noise-free minimum is at step ~80
    assert d.evidence["val_rise"] > 0.1 and d.evidence["gap_end"] > d.evidence["gap_start"]
    assert "step" in d.summary() and str(d.best_step) in d.summary()


def test_flat():
    d = diagnose(_history(2.5 * (1 - 0.02 * np.arange(200) / 200) * RNG.lognormal(0, 0.03, 200),
                          val=lambda u: 2.6 - 0.05 * u))
    assert d.pattern == "flat" and d.action == "Raise LR 5-10×; validate data format"
    assert d.evidence["train_drop"] < 0.1


@pytest.mark.parametrize("kind", ["batch1", "spikes", "diverge", "nan"])
def test_unstable(kind):
    clean, t, _ = _curve()
    n = len(clean)
    if kind == "batch1":
        train = clean * RNG.lognormal(0, 0.4, n)
    elif kind == "spikes":
        train = clean * RNG.lognormal(0, 0.02, n)
        train[[30, 70, 110, 150, 190]] *= 3
    elif kind == "diverge":
        train = clean * np.exp(np.clip(t - 0.5, 0, None) * 4)
    else:
        train = clean.copy()
        train[-12:] = np.nan
    d = diagnose(_history(train, val=lambda u: 0.7 + 1.8 * np.exp(-2 * u)))
    assert d.pattern == "unstable", d.reason
    assert d.action == "Halve LR; double gradient_accumulation_steps"
    if kind == "spikes":
        assert d.evidence["spike_count"] >= 5 and d.evidence["spike_size"] > 1.0
    if kind == "nan":
        assert "NaN" in d.reason and d.evidence["nonfinite_train"] == 12


def test_a_single_bad_batch_is_not_instability():
    clean, _t, noise = _curve()
    train = clean * noise
    train[100] *= 3
    assert diagnose(_history(train, val=lambda u: 0.6 + 1.95 * np.exp(-1.5 * u))).pattern == "healthy"


def test_no_validation_data_warns_that_overfitting_cannot_be_detected():
    clean, _t, noise = _curve()
    d = diagnose(_history(clean * noise))
    assert NO_VALIDATION_WARNING in d.warnings
    assert "you cannot detect overfitting without it" in NO_VALIDATION_WARNING
    assert d.pattern in ("healthy", "plateau") and d.best_step is None
    assert d.to_dict()["evidence"]["warnings"] == d.warnings
    one = LossHistory.from_arrays(np.arange(1, 201), clean * noise, [200], [1.0])
    assert any("only one validation point" in w for w in diagnose(one).warnings)


@pytest.mark.parametrize("seed", range(4))
def test_invariant_to_scale_length_and_sampling(seed):
    """The same run read at another loss scale, step scale or logging interval gets the same diagnosis."""
    rng = np.random.default_rng(seed)
    clean, _t, noise = _curve(n=400, floor=0.05, k=5, rng=rng)
    train = clean * noise
    steps = np.arange(1, 401)
    vs = steps[19::20]
    val = 0.8 + 1.7 * np.exp(-6 * vs / 400) + 0.6 * np.clip(vs / 400 - 0.4, 0, None)
    base = diagnose(LossHistory.from_arrays(steps, train, vs, val)).pattern
    assert base == "overfitting"
    assert diagnose(LossHistory.from_arrays(steps, train * 7, vs, val * 7)).pattern == base
    assert diagnose(LossHistory.from_arrays(steps * 10, train, vs * 10, val)).pattern == base
    assert diagnose(LossHistory.from_arrays(steps[::4], train[::4], vs[::2], val[::2])).pattern == base
    holes = train.copy()
    holes[rng.choice(np.arange(1, 390), 20, replace=False)] = np.nan
    assert diagnose(LossHistory.from_arrays(steps, holes, vs, val)).pattern == base


# ---------------------------------------------------------------------------------------------
# Formats
# ---------------------------------------------------------------------------------------------


def _trainer_state(tmp_path: Path, name: str = "trainer_state.json", step_offset: int = 0, global_step: int = 30) -> Path:
    log = []
    for s in range(1, global_step + 1):
        log.append({"epoch": s / 10, "grad_norm": 1.0, "learning_rate": 1e-4, "loss": 2.5 * 0.95**s, "step": s})
        if s % 5 == 0:
            log.append({"epoch": s / 10, "eval_loss": 2.6 * 0.96**s, "eval_runtime": 0.1, "step": s})
    log.append({"epoch": 3.0, "step": global_step, "train_loss": 1.7, "train_runtime": 3.0, "total_flos": 1.0})
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"global_step": global_step, "log_history": log, "max_steps": global_step}))
    return path


def test_trainer_state_json(tmp_path):
    h = load_history(_trainer_state(tmp_path))
    assert h.format == "hf"
    assert len(h.train_loss) == 30 and len(h.val_loss) == 6  # the final train_loss summary is not a step
    assert h.train_loss[0] == pytest.approx(2.5 * 0.95)
    assert diagnose(h).pattern == "healthy"


def test_log_history_list_and_nan(tmp_path):
    log = [{"loss": 2.0 - 0.05 * s, "step": s} for s in range(1, 20)] + [{"loss": float("nan"), "step": 20}]
    h = history_from_log(log)
    assert len(h.train_loss) == 20 and math.isnan(h.train_loss[-1])
    assert diagnose(log).evidence["nonfinite_train"] == 1
    path = tmp_path / "trainer_state.json"
    path.write_text(json.dumps({"log_history": log}))  # json writes NaN as HF does
    assert "NaN" in path.read_text() and math.isnan(load_history(path).train_loss[-1])


def test_folder_means_the_newest_trainer_state(tmp_path):
    import os

    old = _trainer_state(tmp_path, "checkpoint-10/trainer_state.json", global_step=10)
    new = _trainer_state(tmp_path, "checkpoint-30/trainer_state.json", global_step=30)
    os.utime(old, (1e9, 1e9))
    os.utime(new, (2e9, 2e9))
    assert find_trainer_state(tmp_path) == new
    assert len(load_history(tmp_path).train_loss) == 30
    os.utime(old, (3e9, 3e9))
    assert find_trainer_state(tmp_path) == old


def test_openai_step_metrics_csv(tmp_path):
    lines = ["step,train_loss,train_accuracy,valid_loss,valid_mean_token_accuracy"]
    for s in range(1, 41):
        valid = f"{2.6 * 0.97**s:.4f},0.5" if s % 8 == 0 else ","
        lines.append(f"{s},{2.5 * 0.96**s:.4f},0.4,{valid}")
    path = tmp_path / "step_metrics.csv"
    path.write_text("\n".join(lines) + "\n")
    h = load_history(path)
    assert h.format == "openai" and len(h.train_loss) == 40 and list(h.val_steps) == [8, 16, 24, 32, 40]
    # OpenAI serves result files base64-encoded: that reads too
    b64 = tmp_path / "result.b64"
    b64.write_text(base64.b64encode(path.read_bytes()).decode())
    assert np.array_equal(load_history(b64).val_loss, h.val_loss)


def test_plain_csv_with_missing_values_and_nan(tmp_path):
    path = tmp_path / "loss.csv"
    rows = ["step,train_loss,valid_loss"] + [f"{s},{2 * 0.97**s:.4f}," for s in range(1, 31)]
    rows[10] = "10,,"  # a missing value
    rows[12] = "12,nan,"
    rows += ["30,,1.0"]
    path.write_text("\n".join(rows))
    h = load_history(path)
    assert h.format == "plain" and len(h.train_loss) == 29 and np.isnan(h.train_loss).sum() == 1
    assert list(h.val_loss) == [1.0]


# ---------------------------------------------------------------------------------------------
# Bad input: one line that names the problem and the expected formats
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("content", "message"), [
    (b"", "empty"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe", "not a text file"),
    (b'{"best_metric": null}', "no 'log_history'|without a 'log_history'"),
    (b"{not json", "not valid JSON"),
    (b"epoch,loss\n1,2.0\n", "no 'step' column"),
    (b"step,accuracy\n1,0.5\n", "no 'train_loss' column"),
    (b"step,train_loss\n1,2.0\n2,oops\n", "line 3, column 'train_loss': 'oops' is not a number"),
    (b"step,train_loss\n1,2.0\n2,1.9\n", "only 2 finite training-loss values"),
    (b"just some words\n", "neither JSON nor a CSV"),
])
def test_bad_files_get_a_clear_error(tmp_path, content, message):
    path = tmp_path / "log.txt"
    path.write_bytes(content)
    with pytest.raises(FtlabError, match=message) as info:
        diagnose(path)
    assert "\n" not in str(info.value)


def test_bad_files_name_the_expected_formats(tmp_path, cli):
    path = tmp_path / "x.json"
    path.write_text('{"a": 1}')
    code, out, err = cli("diagnose", str(path))
    assert code == 2 and out == ""
    assert "trainer_state.json" in err and "OpenAI step-metrics CSV" in err and "step,train_loss,valid_loss" in err
    code, _, err = cli("diagnose", str(tmp_path))  # a folder without a trainer_state.json
    assert code == 2 and "no trainer_state.json" in err
    code, _, err = cli("diagnose", str(tmp_path / "missing.csv"))
    assert code == 2 and "no such file" in err


# ---------------------------------------------------------------------------------------------
# CLI and plotting
# ---------------------------------------------------------------------------------------------


def test_cli_json(cli):
    path = CURVES / "synthetic" / "overfitting_00_hf_trainer_state.json"
    code, out, err = cli("diagnose", str(path), "--json")
    assert code == 0, err
    data = json.loads(out)
    assert set(data) == {"pattern", "action", "evidence", "best_step"}
    assert data["pattern"] == "overfitting" and data["action"] == PATTERNS["overfitting"].action
    assert isinstance(data["best_step"], int)
    for key in ("train_slope_end", "val_slope_end", "spike_size", "gap_end", "noise", "val_min_step", "reason"):
        assert key in data["evidence"]
    json.loads(out, parse_constant=lambda c: pytest.fail(f"non-JSON constant {c}"))


def test_cli_text_and_no_validation_warning(cli, tmp_path):
    path = tmp_path / "loss.csv"
    path.write_text("step,train_loss\n" + "\n".join(f"{s},{2 * 0.95**s:.4f}" for s in range(1, 60)))
    code, out, _ = cli("diagnose", str(path))
    assert code == 0
    assert "pattern:" in out and "action:" in out and "you cannot detect overfitting without it" in out
    code, out, _ = cli("diagnose", str(path), "--json")
    data = json.loads(out)
    assert data["best_step"] is None and data["pattern"] in CODES
    assert any("cannot detect overfitting" in w for w in data["evidence"]["warnings"])


def test_plot_diagnosis_annotates_the_curve():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = CURVES / "synthetic" / "overfitting_00_hf_trainer_state.json"
    d = diagnose(path)
    ax = plot_diagnosis(load_history(path), d)
    texts = " ".join(t.get_text() for t in ax.texts)
    assert "overfitting" in ax.get_title() and d.action in texts
    assert f"best checkpoint: step {d.best_step}" in texts
    assert any(list(line.get_xdata()) == [d.best_step, d.best_step] for line in ax.lines)
    labels = [line.get_label() for line in ax.lines]
    assert "train loss" in labels and "validation loss" in labels
    _, ax2 = plt.subplots()
    assert plot_diagnosis(CURVES / "synthetic" / "unstable_00_hf_trainer_state.json", ax=ax2) is ax2
    plt.close("all")


def test_plot_diagnoses_draws_a_grid_and_hides_the_axes_left_over():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ftlab.diagnose import plot_diagnoses

    paths = [CURVES / "synthetic" / f"{p}_00_hf_trainer_state.json" for p in ("overfitting", "unstable")]
    fig = plot_diagnoses([(p, None, f"run {i}") for i, p in enumerate(paths)], ncols=3)
    shown = [ax for ax in fig.axes if ax.axison]
    assert [ax.get_title() for ax in shown] == ["run 0", "run 1"] and len(fig.axes) == 3
    assert all("train (smoothed)" in [ln.get_label() for ln in ax.lines] for ax in shown)  # loss_plot's trend
    plt.close("all")


def test_diagnosis_object():
    clean, _t, noise = _curve()
    d = diagnose(_history(clean * noise, val=lambda u: 0.6 + 1.95 * np.exp(-1.5 * u)))
    assert isinstance(d, Diagnosis) and d.meaning == PATTERNS["healthy"].meaning and d.shows.startswith("Train ↓")
    assert str(d).startswith("pattern: healthy")
    assert list(PATTERNS) == CODES


# ---------------------------------------------------------------------------------------------
# The building blocks' docstring examples
# ---------------------------------------------------------------------------------------------


def test_building_blocks():
    assert theil_sen([0, 1, 2, 3, 4], [0, 1, 2, 30, 4]) == (1.0, 0.0)
    assert noise_level(range(7), [9, 4, 1, 0, 1, 4, 9]) == 0.0
    assert noise_level(range(7), [1, 1.1, 0.9, 1.1, 0.9, 1.1, 0.9]) == pytest.approx(0.24, abs=0.01)
    s = smooth([3, 2, 9, 1.5, 1.4, 1.3, 1.2])
    assert s.max() < 4
    rng = np.random.default_rng(0)
    assert noise_level(np.arange(500), 1 + 0.05 * rng.standard_normal(500)) == pytest.approx(0.05, rel=0.15)
    assert local_noise([5, 4, 3, 2.5, 2.2, 2.1, 2.05]) == 0.0  # a fast, curved fall is not noise
    assert local_noise(1 + 0.05 * rng.standard_normal(500)) == pytest.approx(0.05, rel=0.15)


def test_one_bumped_evaluation_is_not_overfitting():
    """Overfitting is a rise that stays: the lower of the last two evaluations must be up, not just the last one."""
    steps = np.arange(1, 41)
    train = 8.0 * 0.9 ** steps + 1.0
    vs = [8, 16, 24, 32, 40]
    bumped = diagnose(LossHistory.from_arrays(steps, train, vs, [1.606, 1.163, 1.091, 1.028, 1.092]))
    assert bumped.pattern == "healthy", bumped.reason  # the best evaluation still fell 5.8 % in the last third
    steps = np.arange(1, 57)
    train = 8.0 * 0.9 ** steps + 1.0
    stayed = diagnose(LossHistory.from_arrays(steps, train, [*vs, 48, 56], [1.606, 1.163, 1.091, 1.028, 1.092,
                                                                             1.10, 1.12]))
    assert stayed.pattern == "overfitting" and stayed.best_step == 32, stayed.reason


def test_nan_gradient_norm_means_the_logged_loss_is_not_real():
    """The Trainer's logging_nan_inf_filter logs 0.0 for a NaN loss; the NaN grad norm gives it away."""
    log = [{"loss": 8.0 - 0.2 * s, "grad_norm": 1.0, "step": s} for s in range(1, 16)]
    log += [{"loss": 0.0, "grad_norm": float("nan"), "step": s} for s in range(16, 25)]
    log += [{"eval_loss": 7.0, "step": 10}, {"eval_loss": float("nan"), "step": 20}]
    h = history_from_log(log)
    assert np.isnan(h.train_loss[-9:]).all() and any("gradient norm" in note for note in h.notes)
    d = diagnose(h)
    assert d.pattern == "unstable" and "became NaN/inf at step 16" in d.reason


def test_validation_loss_turning_nan_is_divergence():
    clean, _, noise = _curve()
    steps = np.arange(1, 201)
    h = LossHistory.from_arrays(steps, clean * noise, [50, 100, 150, 200], [2.0, 1.5, 1.3, float("nan")])
    d = diagnose(h)
    assert d.pattern == "unstable" and "validation loss became NaN/inf at step 200" in d.reason


def test_loss_climbing_above_its_start_is_unstable():
    clean, _, noise = _curve()
    train = clean * noise
    train[5:8] = train[0] * 1.6  # three steps well above the untrained model's loss, early on
    d = diagnose(_history(train, val=lambda u: 0.6 + 1.95 * np.exp(-1.5 * u)))
    assert d.pattern == "unstable" and d.evidence["overshoot"] > 0.25


def test_pattern_runs_knobs():
    from ftlab.diagnose import pattern_runs

    runs = pattern_runs()
    assert list(runs) == CODES
    assert runs["flat"]["learning_rate"] < runs["healthy"]["learning_rate"] < runs["unstable"]["learning_rate"]
    assert runs["unstable"]["per_device_train_batch_size"] < runs["healthy"]["per_device_train_batch_size"]
    assert runs["overfitting"]["n_examples"] == runs["overfitting"]["per_device_train_batch_size"]
    assert runs["plateau"]["max_steps"] == 3 * runs["healthy"]["max_steps"]


@pytest.mark.parametrize("losses", [np.full(40, 2.0) + 0.001 * np.sin(np.arange(40)),  # flat
                                    2.0 + np.where(np.arange(40) % 5 == 0, 1.5, 0.0)])  # spiky
def test_no_validation_warning_whatever_the_training_curve_shows(losses):
    """A flat or unstable training-only curve still says that overfitting cannot be seen without validation."""
    from ftlab.diagnose import NO_VALIDATION_WARNING, LossHistory, diagnose

    d = diagnose(LossHistory.from_arrays(np.arange(1, 41), losses, source="train loss only"))
    assert d.pattern in ("flat", "unstable")
    assert d.warnings[0] == NO_VALIDATION_WARNING


# ---------------------------------------------------------------------------------------------
# Real curves the thresholds were not written against: fitted on one half, scored on the other
# (tests/data/curves/make_labelled_set.py makes labelled.json; its docstring is the labelling rule)
# ---------------------------------------------------------------------------------------------

LABELLED_REAL = CURVES / "labelled.json"


def _cut(run: dict, end: float) -> LossHistory:
    """The run's log up to step ``end``: what a learner would have looked at then."""
    ts = [s for s in run["train_steps"] if s <= end]
    vs = [s for s in run["val_steps"] if s <= end]
    return LossHistory.from_arrays(ts, run["train_loss"][: len(ts)], vs, run["val_loss"][: len(vs)],
                                   source=f"{run['id']}@{end:g}", format=run["format"])


def _halves() -> dict[str, list[tuple[LossHistory, str, str]]]:
    data = json.loads(LABELLED_REAL.read_text())
    halves: dict[str, list] = {"fit": [], "held_out": []}
    for c in data["curves"]:
        halves[c["split"]].append((_cut(data["runs"][c["run"]], c["end_step"]), c["label"], c["run"]))
    return halves


def test_real_labelled_halves_are_disjoint_and_cover_the_patterns():
    data = json.loads(LABELLED_REAL.read_text())
    halves = _halves()
    fit_runs = {r for _, _, r in halves["fit"]}
    held_runs = {r for _, _, r in halves["held_out"]}
    assert fit_runs and held_runs and not fit_runs & held_runs, "a run gives curves to both halves"
    fit_curves = {(tuple(h.train_loss), tuple(h.val_loss)) for h, _, _ in halves["fit"]}
    assert not any((tuple(h.train_loss), tuple(h.val_loss)) in fit_curves for h, _, _ in halves["held_out"])
    # the labels follow the written rule from the stored runs (nothing hand-edited)
    spec = importlib.util.spec_from_file_location("make_labelled_set", CURVES / "make_labelled_set.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for c in data["curves"]:
        assert module.label_curve(data["runs"][c["run"]], c["end_step"])[0] == c["label"], c
        assert module.split_of(c["run"]) == c["split"]
    for half in halves.values():
        labels = Counter(label for _, label, _ in half)
        assert all(labels[p] >= 1 for p in CODES), labels
    assert {r["source"] for r in data["runs"].values()} >= {"toy", "openai"}
    assert len({len(h.train_loss) for h, _, _ in halves["held_out"]}) >= 5, "curves of many lengths"


# the thresholds before they were fitted on real curves (fitted by eye on the generator's curves)
GENERATOR_THRESHOLDS = {"noise_unstable": 0.08, "flat_drop": 0.10, "val_rise_min": 0.03, "recent_share_plateau": 0.10,
                        "recent_rel_plateau": 0.01, "falling_se_mult": 2.0, "rebound_min": 0.25, "val_noise_mult": 1.0}


def _held_out_accuracy(thresholds=None) -> tuple[float, list]:
    held = _halves()["held_out"]
    wrong = [(h.source, label, got) for h, label, _ in held
             if (got := diagnose(h, thresholds=thresholds).pattern) != label]
    return 1 - len(wrong) / len(held), wrong


def test_thresholds_are_fitted_on_one_half_and_carry_over_to_the_other():
    """THRESHOLDS are what fit_thresholds finds on the fit half; on the held-out half (other runs) they get
    at least 85 % right, where the generator-tuned thresholds got 60 % (healthy curves called plateau)."""
    from ftlab.diagnose import THRESHOLDS, fit_thresholds

    halves = _halves()
    fitted, fit_accuracy = fit_thresholds([(h, label) for h, label, _ in halves["fit"]])
    assert fitted == THRESHOLDS, "THRESHOLDS are not what fit_thresholds finds on the fit half"
    accuracy, wrong = _held_out_accuracy()
    before, _ = _held_out_accuracy(GENERATOR_THRESHOLDS)
    print(f"fit half: {fit_accuracy:.1%} of {len(halves['fit'])}; held-out half: {accuracy:.1%} of "
          f"{len(halves['held_out'])} (generator-tuned thresholds: {before:.1%}); wrong: {wrong}")
    assert accuracy >= 0.85, wrong
    assert accuracy >= before + 0.3


def test_held_out_accuracy_reaches_95_percent():
    """Issue 19's goal: at least 95 % right on the held-out half (other runs than the thresholds were fitted on)."""
    accuracy, wrong = _held_out_accuracy()
    assert accuracy >= 0.95, wrong


def test_apply_action_changes_the_knobs_as_the_seeds_say():
    from ftlab.diagnose import apply_action, pattern_runs

    runs = pattern_runs()
    assert apply_action("flat", runs["flat"])["learning_rate"] == pytest.approx(10 * runs["flat"]["learning_rate"])
    both = apply_action("unstable", runs["unstable"])
    assert both["learning_rate"] == runs["unstable"]["learning_rate"] / 2 and both["gradient_accumulation_steps"] == 2
    assert "gradient_accumulation_steps" not in apply_action("unstable", runs["unstable"], unstable="lr")
    assert apply_action("unstable", runs["unstable"], unstable="accumulation")["gradient_accumulation_steps"] == 2
    d = Diagnosis("overfitting", PATTERNS["overfitting"].action, {}, best_step=24)
    assert apply_action("overfitting", runs["overfitting"], d)["max_steps"] == 24
    with pytest.raises(FtlabError, match="best_step"):
        apply_action("overfitting", runs["overfitting"])
    with pytest.raises(FtlabError, match="nothing to fix"):
        apply_action("healthy", runs["healthy"])
