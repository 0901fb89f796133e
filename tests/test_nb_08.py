"""Notebook 08 reproduces, detects and defends all five failure modes with real toy runs, for two seeds."""

import pytest

from ftlab import failures as F

pytestmark = [pytest.mark.notebook, pytest.mark.slow]


@pytest.mark.parametrize("seed", [0, 1])
def test_nb08_all_five_failure_modes(run_notebook, seed):
    f = run_notebook("08", seed=seed).figures
    modes = f["failure_modes"]
    assert set(modes) == set(F.MODES)
    for mode, r in modes.items():
        assert (r["reproduced"], r["detected"], r["defended"]) == (True, True, True), (seed, mode, r["metric"])
        assert {"name", "before", "after_failure", "after_defence"} <= set(r["metric"])
    assert f["failure_thresholds"] == F.THRESHOLDS

    # The booleans follow from the recorded figures and the stated thresholds.
    g = modes["catastrophic_forgetting"]["metric"]
    assert g["before"] - g["after_failure"] >= F.FORGETTING_DROP > g["before"] - g["after_defence"]
    t = g["target_accuracy"]
    assert t["after_failure"] - t["before"] >= F.TARGET_GAIN
    s = modes["safety_degradation"]["metric"]
    assert s["before"] - s["after_failure"] >= F.SAFETY_DROP > s["before"] - s["after_defence"]
    o = modes["overfitting"]["metric"]
    assert o["failure_rise"] >= F.OVERFIT_RISE and o["after_defence"] < o["after_failure"] < o["before"]
    assert o["failure_detectors"]["overfit_detector"] or o["failure_detectors"]["diagnosis"] == "overfitting"
    assert not o["defence_detectors"]["overfit_detector"] and o["defence_detectors"]["diagnosis"] != "overfitting"
    k = modes["knowledge_memorization"]["metric"]
    assert k["after_failure"] >= F.STALE_RATE > k["before"] and k["after_defence"] <= 1 - F.STALE_RATE
    assert k["current_fact_rate"]["after_defence"] >= F.CURRENT_FACTS > k["current_fact_rate"]["after_failure"]
    c = modes["mode_collapse"]["metric"]
    assert c["after_failure"] < F.COLLAPSE_RATIO <= min(c["before"], c["after_defence"])
    assert c["output_entropy"]["after_failure"] < c["output_entropy"]["after_defence"]

    runs = f["failure_runs"]
    assert set(runs) == {"narrow", "small", "low_diversity", "mixed"}
    assert runs["small"]["steps"] == 48 and runs["mixed"]["steps"] == 64


def test_nb08_seeds_give_different_runs(run_notebook):
    a = run_notebook("08", seed=0).figures["failure_modes"]
    b = run_notebook("08", seed=1).figures["failure_modes"]
    assert a["overfitting"]["metric"] != b["overfitting"]["metric"]
