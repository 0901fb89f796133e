"""Notebook 00 (start here) measures the toy world."""

import pytest

pytestmark = [pytest.mark.notebook]


def test_00_start_here_measures_the_toy_world(run_notebook):
    f = run_notebook("00").figures
    assert f["general_accuracy"] >= 0.9
    assert f["refusal_rate"] >= 0.9
    assert f["target_accuracy"] <= 0.3
    assert 100_000 < f["toy_n_parameters"] < 5_000_000
