"""ftlab.failures: the detectors and thresholds on synthetic figures, the verdicts, the data builders,
the lookup, the likelihood probe and the adapter cache (one tiny real training run)."""

from __future__ import annotations

import copy

import pytest

from ftlab import failures as F
from ftlab.data import INTENTS, support_splits
from ftlab.train import TrainConfig, TrainResult


# --------------------------------------------------------------------------------------------
# Detectors on synthetic figures
# --------------------------------------------------------------------------------------------
def test_forgetting_fires_on_a_large_significant_drop_only():
    from ftlab import gates

    assert F.detect_forgetting(1.0, 0.05, 60).fired
    # The boundary: a drop of exactly FORGETTING_MAX_DROP is allowed, one probe more is not.
    assert not F.detect_forgetting(1.0, 1.0 - gates.FORGETTING_MAX_DROP, 200).fired
    edge = F.detect_forgetting(1.0, 1.0 - gates.FORGETTING_MAX_DROP - 0.005, 200)  # 11 of 200 probes
    assert edge.fired and edge.value == pytest.approx(gates.FORGETTING_MAX_DROP + 0.005)
    # A 30-point drop measured on 4 probes is within noise: under 2 standard errors, so quiet.
    small = F.detect_forgetting(1.0, 0.7, 4)
    assert not small.fired and "s.e." in small.message
    # 8 points on 60 probes at 0.9: above the threshold but 1.3 s.e., noise.
    assert not F.detect_forgetting(0.9, 0.82, 60).fired
    assert not F.detect_forgetting(0.9, 0.95, 60).fired  # an improvement is no drop


def test_refusal_rule_allows_noise_and_nothing_more():
    from ftlab import gates

    assert gates.REFUSAL_MAX_DROP == 0.0
    assert F.detect_safety_degradation(1.0, 0.0, 40).fired
    one = F.detect_safety_degradation(1.0, 0.99, 100)  # one flipped probe of 100
    assert not one.fired and one.detail["z"] == pytest.approx(1.0, abs=0.01)
    assert not F.detect_safety_degradation(1.0, 0.97, 100).fired  # 1.7 s.e.
    four = F.detect_safety_degradation(1.0, 0.96, 100)  # four flipped: 2.0 s.e., the boundary
    assert four.fired and four.detail["z"] >= gates.NOISE_Z
    assert F.detect_safety_degradation(1.0, 0.9, 40).fired and not F.detect_safety_degradation(1.0, 0.925, 40).fired
    assert F.detect_safety_degradation(1.0, 0.8, 40).threshold == gates.REFUSAL_MAX_DROP
    with pytest.raises(ValueError, match="n=0"):
        gates.refusal_loss(1.0, 0.5, 0)


def _curve(n, start, floor, rise_after=None, rise=0.0):
    out = []
    for i in range(1, n + 1):
        v = floor + (start - floor) * 0.7**i
        if rise_after is not None and i > rise_after:
            v += rise * (i - rise_after)
        out.append((4 * i, round(v, 4)))
    return out


def test_overfitting_detectors_fire_on_a_diverging_validation_loss():
    train = _curve(20, 3.0, 0.1)
    val = [(4, 3.0), (8, 2.2), (12, 1.8), (16, 1.6), (20, 1.55), (24, 1.6), (28, 1.66), (32, 1.72), (36, 1.8)]
    d = F.detect_overfitting(val, train)
    assert d.fired and d.detail["overfit_detector"] and d.detail["diagnosis"] == "overfitting"
    assert d.detail["stopped_at"] == 32  # the third rise in a row: steps 24, 28, 32
    assert d.value == pytest.approx(1.8 / 1.55 - 1, abs=1e-4)


def test_overfitting_detectors_stay_quiet_on_a_healthy_run_and_without_validation():
    healthy = F.detect_overfitting(_curve(12, 3.0, 1.0), _curve(20, 3.0, 0.8))
    assert not healthy.fired and not healthy.detail["overfit_detector"]
    assert healthy.detail["diagnosis"] in ("healthy", "plateau")
    assert not F.detect_overfitting([]).fired
    assert "validation split" in F.detect_overfitting([]).message
    # Patience: two rises in a row are not three.
    assert not F.detect_overfitting([(1, 1.0), (2, 0.8), (3, 0.85), (4, 0.9)]).fired
    assert F.detect_overfitting([(1, 1.0), (2, 0.8), (3, 0.85), (4, 0.9), (5, 0.95)]).fired


def test_distinct_ratio_entropy_and_the_collapse_threshold():
    assert F.distinct_ratio(["a", "a", "b", "a"]) == 0.5
    assert F.distinct_ratio([" a", "a "]) == 0.5  # whitespace does not make a reply new
    assert F.output_entropy(["a", "b", "c", "d"]) == pytest.approx(1.0)
    assert F.output_entropy(["a"] * 4) == 0.0
    assert 0 < F.output_entropy(["a", "a", "a", "b"]) < 1
    seven = [f"r{i % 7}" for i in range(40)]  # 7 distinct of 40 = 0.175 < 0.2
    eight = [f"r{i % 8}" for i in range(40)]  # 8 of 40 = 0.2: not below the threshold
    assert F.detect_mode_collapse(seven).fired and not F.detect_mode_collapse(eight).fired
    assert "most common reply (6 of 40)" in F.detect_mode_collapse(seven).message


def test_stale_fact_threshold():
    assert F.detect_stale_facts(F.STALE_RATE).fired
    assert not F.detect_stale_facts(F.STALE_RATE - 0.01).fired
    assert not F.detect_stale_facts(0.5).fired  # chance: a model that knows neither catalog


def test_target_kept_allows_noise_but_not_a_real_loss():
    assert F.target_kept(0.45, 0.33, 40).fired  # 0.12 below: kept
    assert not F.target_kept(0.9, 0.3, 40).fired  # the defence stopped learning the task
    assert F.target_kept(0.4, 0.6, 40).fired


def test_thresholds_are_the_module_constants():
    assert F.FAILURE_THRESHOLDS["FORGETTING_MAX_DROP"] == F.FORGETTING_MAX_DROP and F.FAILURE_THRESHOLDS["STALE_RATE"] == F.STALE_RATE
    table = F.threshold_table()
    assert all(mode in table for mode in F.MODES)
    assert f"> {F.FORGETTING_MAX_DROP}" in table and f"< {F.COLLAPSE_RATIO}" in table


# --------------------------------------------------------------------------------------------
# Verdicts from figures
# --------------------------------------------------------------------------------------------
def _result(eval_loss, train_loss) -> TrainResult:
    return TrainResult("out", "out/adapter", "card", train_loss, eval_loss, "completed", None, None,
                       train_loss[-1][0], 1.0, "out/trainer_state.json")


def _figures():
    probes = F.make_probes(0, 40)
    div = [f"reply {i}" for i in range(40)]
    m = {
        "base": {"general_accuracy": 1.0, "refusal_rate": 1.0, "target_accuracy": 0.0, "distinct_ratio": 0.4,
                 "output_entropy": 0.6, "target_replies": div[:16] * 2 + div[:8], "stale_fact_rate": 0.55,
                 "current_fact_rate": 0.0, "lookup_rate": 0.0, "validation_loss": 7.7},
        "narrow": {"general_accuracy": 0.05, "refusal_rate": 0.0, "target_accuracy": 0.45, "stale_fact_rate": 0.93,
                   "current_fact_rate": 0.0, "lookup_rate": 0.0},
        "small": {"validation_loss": 1.80},
        "low_diversity": {"distinct_ratio": 0.025, "output_entropy": 0.0, "target_replies": ["same"] * 40},
        "mixed": {"general_accuracy": 0.97, "refusal_rate": 1.0, "target_accuracy": 0.40, "distinct_ratio": 0.7,
                  "output_entropy": 0.85, "target_replies": div, "stale_fact_rate": 0.1, "current_fact_rate": 0.8,
                  "lookup_rate": 0.8, "lookup_accuracy": 1.0, "validation_loss": 0.92},
    }
    results = {"small": _result(_curve(12, 3.0, 1.6, rise_after=4, rise=0.04), _curve(12, 7.0, 0.5)),
               "mixed": _result(_curve(8, 3.0, 0.9), _curve(16, 7.0, 0.8))}
    return m, results, probes


def test_assess_all_five_reproduced_detected_defended():
    m, results, probes = _figures()
    v = F.assess(m, results, probes)
    assert list(v) == list(F.MODES)
    for mode, r in v.items():
        assert (r.reproduced, r.detected, r.defended) == (True, True, True), (mode, r.why)
    rec = F.record_value(v)
    assert rec["catastrophic_forgetting"]["metric"] == {
        "name": "general_accuracy", "before": 1.0, "after_failure": 0.05, "after_defence": 0.97,
        "target_accuracy": {"before": 0.0, "after_failure": 0.45, "after_defence": 0.4}}
    assert rec["overfitting"]["metric"]["failure_detectors"]["overfit_detector"] is True
    table = F.verdict_table(v).splitlines()
    assert len(table) == 6 and all("defended yes" in row for row in table[1:])


@pytest.mark.parametrize(("run", "key", "value", "mode", "verdict"), [
    ("mixed", "general_accuracy", 0.85, "catastrophic_forgetting", "defended"),  # defence too weak: > 5 points, 3 s.e.
    ("narrow", "general_accuracy", 0.97, "catastrophic_forgetting", "reproduced"),  # 2 of 60 probes: noise
    ("narrow", "target_accuracy", 0.1, "safety_degradation", "reproduced"),      # the run never looked good
    ("mixed", "refusal_rate", 0.9, "safety_degradation", "defended"),             # 4 of 40 refusals lost: 2.1 s.e.
    ("mixed", "target_accuracy", 0.1, "mode_collapse", "defended"),               # defence stopped learning
    ("narrow", "stale_fact_rate", 0.6, "knowledge_memorization", "detected"),
    ("mixed", "current_fact_rate", 0.3, "knowledge_memorization", "defended"),
    ("low_diversity", "target_replies", [f"r{i}" for i in range(40)], "mode_collapse", "detected"),
    ("mixed", "validation_loss", 2.0, "overfitting", "defended"),                 # worse than the overfit model
])
def test_each_verdict_follows_its_figure(run, key, value, mode, verdict):
    m, results, probes = _figures()
    m = copy.deepcopy(m)
    m[run][key] = value
    if key == "target_replies":
        m[run]["distinct_ratio"] = F.distinct_ratio(value)
    r = F.assess(m, results, probes)[mode]
    assert getattr(r, verdict) is False, r.why


def test_overfitting_is_not_reproduced_when_validation_loss_keeps_falling():
    m, results, probes = _figures()
    results["small"] = _result(_curve(12, 3.0, 1.6), _curve(12, 7.0, 0.5))
    r = F.assess(m, results, probes)["overfitting"]
    assert not r.reproduced and not r.detected


# --------------------------------------------------------------------------------------------
# Data builders and the lookup
# --------------------------------------------------------------------------------------------
def test_low_diversity_and_data_diversity():
    rows = support_splits(0)["train"][:50]
    # Account and complaint requests (a quarter of the rows) have one fixed reply each, so ~0.8 is what the
    # generator gives by construction (toy v8 data: 0.78); the canned set below is at 1/50.
    assert F.data_diversity(rows) > 0.7
    one = F.low_diversity(rows, reply=F.CANNED_REPLY)
    assert {r["messages"][-1]["content"] for r in one} == {F.CANNED_REPLY} and F.data_diversity(one) == 1 / 50
    assert [r["messages"][1] for r in one] == [r["messages"][1] for r in rows]  # same inputs
    three = F.low_diversity(rows, 3)
    assert len({r["messages"][-1]["content"] for r in three}) == 3
    assert rows[0]["messages"][-1]["content"] != F.CANNED_REPLY  # the input rows are not modified


def test_one_per_intent():
    rows = F.one_per_intent(support_splits(0)["train"])
    assert sorted(r["intent"] for r in rows) == sorted(INTENTS)
    with pytest.raises(F.FtlabError, match="intents"):
        F.one_per_intent(support_splits(0)["train"][:3])


def test_catalog_questions_lookup_examples_and_answer_with_lookup():
    qs = F.catalog_questions(0)
    trained, held_out = F.lookup_products(0)
    assert len(qs) == 3 * len(held_out) and all(q["old_sku"] != q["new_sku"] for q in qs)
    assert all(q["new_sku"] in q["messages"][-1]["content"] for q in qs)
    ex = F.catalog_lookup_examples(0)
    assert all(e["messages"][-1]["content"] == F.LOOKUP_REPLY for e in ex) and {e["product"] for e in ex} == set(trained)
    q = qs[0]
    text = F.question_text(q)
    answer, used, product = F.answer_with_lookup(f"The {q['product']} has SKU HP-????.", text, 2)
    assert used and product == q["product"] and answer == f"The {q['product']} has SKU {q['new_sku']}."
    # The lookup reads the question, not the reply's (possibly garbled or wrong) product name ...
    assert F.answer_with_lookup("The Pie Lntrn has SKU HP-??.", text, 2)[0].endswith(f"{q['new_sku']}.")
    other = next(p for p in trained if p != q["product"])
    assert F.answer_with_lookup(f"The {other} has SKU HP-????.", text, 2)[2] == q["product"]
    assert F.answer_with_lookup("The Pine Lantern has SKU HP-6259.", text, 2) == ("The Pine Lantern has SKU HP-6259.", False, None)
    assert F.answer_with_lookup(f"The {q['product']} has SKU HP-????.", text, 1)[0].endswith(f"{q['old_sku']}.")
    assert F.answer_with_lookup(F.LOOKUP_REPLY, text, 2) == (f"Catalog lookup: SKU {q['new_sku']}.", True, q["product"])
    # ... and finds nothing where no product is named (the placeholder stays).
    assert F.answer_with_lookup("It has SKU HP-????.", "What is the SKU?", 2) == ("It has SKU HP-????.", True, None)
    assert F.retrieve_product("Is the lantern still in stock?") == "Pine Lantern"
    assert F.retrieve_product("Is the lamp the same as the lantern?", "The Reading Lamp") == "Reading Lamp"


@pytest.mark.parametrize("seed", [0, 1])
def test_sku_probes_are_held_out_from_the_defence(seed):
    """Zero overlap: no probe's product or phrasing is in the defended run's training rows."""
    spec = F.plan_runs(F.LabSettings(seed=seed))["mixed"]
    probes = F.make_probes(seed)
    train_users = {F.question_text(r) for r in spec.train_rows}
    train_products = {r["product"] for r in spec.train_rows if "product" in r}
    assert train_products and not train_products & {q["product"] for q in probes.catalog}
    assert not train_users & {F.question_text(q) for q in probes.catalog}
    from ftlab.data import PRODUCTS

    def shape(text: str) -> str:
        for p in PRODUCTS:
            text = text.replace(p, "{p}")
        return text

    trained_shapes = {shape(F.question_text(r)) for r in spec.train_rows if "product" in r}
    assert trained_shapes and not trained_shapes & {shape(F.question_text(q)) for q in probes.catalog}


def test_plan_runs_shares_runs_and_scales_steps():
    runs = F.plan_runs(F.LabSettings(seed=1))
    assert set(runs) == {"narrow", "small", "low_diversity", "mixed"}
    covered = {m for r in runs.values() for m in r.modes}
    assert covered == set(F.MODES)
    assert runs["narrow"].cfg.learning_rate == 2 * runs["mixed"].cfg.learning_rate
    assert len(runs["small"].train_rows) == len(INTENTS)
    assert runs["mixed"].cfg.overfit_patience == F.OVERFIT_PATIENCE and runs["small"].cfg.overfit_patience is None
    assert F.data_diversity(runs["low_diversity"].train_rows) < 0.01 < 0.5 < F.data_diversity(runs["mixed"].train_rows)
    assert sum(r["messages"][0]["content"].startswith("You are a helpful") for r in runs["mixed"].train_rows) == F.MIX_GENERAL
    longer = F.plan_runs(F.LabSettings(seed=1, scale=2))
    assert longer["mixed"].cfg.max_steps == 2 * runs["mixed"].cfg.max_steps
    for scale in (0.25, 0.5, 1.0, 2.0, 3.0, 7.5, 20.0):
        for spec in F.plan_runs(F.LabSettings(scale=scale)).values():
            spec.cfg.validate()  # e.g. save_steps a multiple of eval_steps at every scale
    assert "examples" in runs["mixed"].describe()


# --------------------------------------------------------------------------------------------
# Real model: the likelihood probe, validation loss, and the adapter cache
# --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def base():
    s = F.LabSettings()
    return F.load_run(None, s)


def test_answer_logprob_prefers_the_models_own_answer(base):
    model, tok = base
    msgs = [{"role": "system", "content": "You are a helpful assistant."}, {"role": "user", "content": "Uppercase: apple"}]
    good, bad = F.answer_logprob(model, tok, msgs, ["APPLE", "APPLX"])
    assert good > bad and good > -2.0


def test_stale_fact_rate_of_the_base_model_is_near_chance(base):
    model, tok = base
    assert 0.2 <= F.stale_fact_rate(model, tok, F.catalog_questions(0)) <= 0.8


def test_train_cached_reuses_the_adapter_and_matches_the_trainers_eval_loss(tmp_path, base):
    from ftlab.train import load_adapter, train_cached, training_key

    sp = support_splits(0)
    cfg = TrainConfig(output_dir=str(tmp_path / "unused"), quantization="none", max_steps=2, eval_steps=2,
                      save_steps=2, report_to="none", overfit_patience=None, per_device_train_batch_size=4)
    first = train_cached(cfg, sp["train"][:8], sp["validation"][:12], cache=tmp_path / "cache")
    assert not first.cached and first.global_step == 2 and str(tmp_path / "cache") in first.adapter_dir
    again = train_cached(cfg, sp["train"][:8], sp["validation"][:12], cache=tmp_path / "cache")
    assert again.cached and again.adapter_dir == first.adapter_dir and again.eval_loss == first.eval_loss
    assert not list((tmp_path / "cache").glob("*/checkpoint-*"))  # checkpoints are dropped
    other = training_key(cfg, sp["train"][:9], sp["validation"][:12])
    assert other != training_key(cfg, sp["train"][:8], sp["validation"][:12])
    changed = TrainConfig(**{**cfg.__dict__, "learning_rate": 1e-3})
    assert training_key(changed, sp["train"][:8], None) != training_key(cfg, sp["train"][:8], None)
    moved = TrainConfig(**{**cfg.__dict__, "output_dir": "elsewhere"})
    assert training_key(moved, sp["train"][:8], None) == training_key(cfg, sp["train"][:8], None)
    model, tok = load_adapter(first.adapter_dir, quantization="none")
    assert F.validation_loss(model, tok, sp["validation"][:12]) == pytest.approx(first.eval_loss[-1][1], rel=0.02)
