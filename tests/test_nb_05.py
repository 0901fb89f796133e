"""Notebook 05 causes the five patterns with real toy runs, and the diagnoser names each one."""

import pytest

pytestmark = [pytest.mark.notebook, pytest.mark.slow]


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
