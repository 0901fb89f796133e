"""Notebook 05 causes the five patterns with real toy runs, the diagnoser names each one, and the articles' actions fix them."""

import pytest

pytestmark = [pytest.mark.notebook, pytest.mark.slow]

FIXED = ("healthy", "plateau")  # what a fixed run may look like: learning, or learned


def test_nb05_loss_diagnosis(run_notebook):
    figures = run_notebook("05").figures
    assert figures["diagnoses"] == {p: p for p in ("healthy", "plateau", "overfitting", "flat", "unstable")}
    assert figures["diagnoses_correct"] == 5
    assert isinstance(figures["overfitting_best_step"], int) and figures["overfitting_best_step"] > 0
    # without its validation loss the overfitting run cannot be seen overfitting, and the notebook says so
    assert figures["no_validation_pattern"] in ("healthy", "plateau")
    assert "you cannot detect overfitting without it" in figures["no_validation_warning"]
    evidence = figures["evidence"]
    assert evidence["overfitting"]["val_rise"] > evidence["overfitting"]["val_rise_threshold"]
    assert evidence["flat"]["train_drop"] < 0.1 < evidence["healthy"]["train_drop"]
    # the OpenAI path: a sandbox job's result file, saved as the API serves it, read by the same diagnose
    assert figures["openai_format"] == "openai"
    assert figures["openai_pattern"] in ("healthy", "plateau", "overfitting", "flat", "unstable")


def test_nb05_the_seeds_actions_fix_the_runs(run_notebook):
    """Raise the LR 10× (flat), halve it and double accumulation (unstable), stop at the best step (overfitting):
    each re-run, diagnosed again, no longer shows its pattern."""
    figures = run_notebook("05").figures
    after = figures["actions_applied"]
    assert set(after) == {"flat", "unstable", "overfitting"}
    assert all(pattern in FIXED for pattern in after.values()), after


def test_nb05_overfit_detector_stops_the_run(run_notebook):
    stop = run_notebook("05").figures["overfit_detector"]
    assert stop["stop_reason"].startswith("overfitting:")
    assert stop["best_step"] < stop["stopped_at"] < stop["max_steps"]
