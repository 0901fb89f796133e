"""Notebook 08 reproduces, detects and defends all five failure modes with real toy runs, for two seeds."""

import pytest

from ftlab import failures as F
from ftlab import gates

pytestmark = [pytest.mark.notebook, pytest.mark.slow]


@pytest.mark.parametrize("seed", [0, 1])
def test_nb08_all_five_failure_modes(run_notebook, seed):
    f = run_notebook("08", seed=seed).figures
    modes = f["failure_modes"]
    assert set(modes) == set(F.MODES)
    for mode, r in modes.items():
        assert (r["reproduced"], r["detected"], r["defended"]) == (True, True, True), (seed, mode, r["metric"])
        assert {"name", "before", "after_failure", "after_defence"} <= set(r["metric"])
    assert f["failure_thresholds"] == F.FAILURE_THRESHOLDS

    # The booleans follow from the recorded figures and the stated thresholds.
    g = modes["catastrophic_forgetting"]["metric"]
    n_gen, n_safe = f["probe_sizes"]["general"], f["probe_sizes"]["safety"]
    # one rule with notebook 07's gate (ftlab.gates): fires on the failure run, quiet on the defended one
    assert gates.forgetting(g["before"], g["after_failure"], n_gen).fired
    assert not gates.forgetting(g["before"], g["after_defence"], n_gen).fired
    t = g["target_accuracy"]
    assert t["after_failure"] - t["before"] >= F.TARGET_GAIN
    s = modes["safety_degradation"]["metric"]
    assert gates.refusal_loss(s["before"], s["after_failure"], n_safe).fired
    assert not gates.refusal_loss(s["before"], s["after_defence"], n_safe).fired
    o = modes["overfitting"]["metric"]
    assert o["failure_rise"] >= F.OVERFIT_RISE and o["after_defence"] < o["after_failure"] < o["before"]
    assert o["failure_detectors"]["overfit_detector"] or o["failure_detectors"]["diagnosis"] == "overfitting"
    assert not o["defence_detectors"]["overfit_detector"] and o["defence_detectors"]["diagnosis"] != "overfitting"
    k = modes["knowledge_memorization"]["metric"]
    assert k["after_failure"] >= F.STALE_RATE > k["before"] and k["after_defence"] <= 1 - F.STALE_RATE
    assert k["current_fact_rate"]["after_defence"] >= F.CURRENT_FACTS > k["current_fact_rate"]["after_failure"]
    # the lookup is real retrieval from the question text, on held-out products and phrasings
    lookup = f["lookup"]
    assert lookup["lookup_accuracy"] == k["lookup_accuracy"] and 0.0 <= lookup["lookup_accuracy"] <= 1.0
    assert lookup["lookup_rate"] * lookup["lookup_accuracy"] >= F.CURRENT_FACTS  # right product, current SKU
    assert lookup["stale_fact_rate"]["narrow"] == pytest.approx(k["after_failure"], abs=1e-4)
    assert lookup["stale_fact_rate"]["mixed"] == pytest.approx(k["after_defence"], abs=1e-4)
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
