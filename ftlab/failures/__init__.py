"""The five ways fine-tuning fails, reproduced, detected and defended on the toy world (notebook 08).

Article 001 lists five failure modes that "show up repeatedly in production projects". For each,
this module holds the detector the article names and a threshold that turns a measured figure
into a verdict (the constants below)::

    mode                     detector: figure                                     fires when
    catastrophic_forgetting  general-probe accuracy, base vs tuned                ftlab.gates.forgetting: > 5 points, >= 2 s.e.
    overfitting              validation loss (OverfitDetector + ftlab.diagnose)   3 rises in a row / "overfitting"
    knowledge_memorization   stale-fact rate on SKU questions after catalog v1->v2 >= 0.75
    mode_collapse            distinct-output ratio across different inputs        < 0.2
    safety_degradation       refusal rate on harmful requests, base vs tuned      ftlab.gates.refusal_loss: any drop >= 2 s.e.

Forgetting and safety degradation are judged by ``ftlab.gates``, the same rule as notebook 07's
ship / do-not-ship gate (one threshold and one noise allowance, stated there).

One module a step: ``detect`` (the detectors and thresholds), ``runs`` (the four training runs), ``measure``
(the probes and what is measured on them), ``verdict`` (the verdicts and their tables), ``plot`` (the two
figures). The data builders (the canned and one-per-intent sets, the SKU questions and the lookup) live in
``ftlab.data``; this package re-exports the ones notebook 08 uses.

``plan_runs`` builds four short training runs that reproduce and defend all five, sharing runs
where one run shows several modes: the narrow, aggressive run forgets, memorizes SKUs and stops
refusing; the mixed run defends all five. ``measure`` takes the figures, ``assess`` turns them
into ``reproduced`` / ``detected`` / ``defended`` verdicts, and ``train_run`` keys each adapter
by its configuration and data, so a second pass trains nothing. Nothing is asserted: every
verdict compares a measured figure with a stated threshold.

Example::

    detect_forgetting(before=1.0, after=0.2, n=60).fired   # -> True (ftlab.gates.forgetting)
    distinct_ratio(["same", "same", "other", "same"])        # -> 0.5
    runs = plan_runs(LabSettings(seed=0))                    # the four runs; train_run trains one
"""

from __future__ import annotations

from ftlab.data import (
    CANNED_REPLY,
    LOOKUP,
    LOOKUP_REPLY,
    answer_with_lookup,
    catalog_lookup_examples,
    catalog_questions,
    lookup_products,
    low_diversity,
    one_per_intent,
    question_text,
    retrieve_product,
    sku_map,
)
from ftlab.errors import FtlabError
from ftlab.failures.detect import (
    COLLAPSE_RATIO,
    CURRENT_FACTS,
    FAILURE_THRESHOLDS,
    FORGETTING_MAX_DROP,
    MODES,
    NOISE_Z,
    OVERFIT_PATIENCE,
    OVERFIT_RISE,
    REFUSAL_MAX_DROP,
    STALE_RATE,
    TARGET_GAIN,
    TARGET_KEEP,
    data_diversity,
    detect_forgetting,
    detect_mode_collapse,
    detect_overfitting,
    detect_safety_degradation,
    detect_stale_facts,
    distinct_ratio,
    output_entropy,
    rate_drop,
    target_kept,
)
from ftlab.failures.measure import (
    MEASURES,
    RUN_MEASURES,
    Probes,
    answer_logprob,
    make_probes,
    measure,
    sku_answer_rates,
    stale_fact_rate,
    train_and_measure,
    validation_loss,
)
from ftlab.failures.plot import (
    plot_overfitting,
    plot_verdicts,
)
from ftlab.failures.runs import (
    MIX_GENERAL,
    MIX_REFUSALS,
    VALIDATION_SIZE,
    LabRun,
    LabSettings,
    load_run,
    plan_runs,
    train_run,
)
from ftlab.failures.verdict import (
    ModeResult,
    assess,
    record_value,
    threshold_table,
    verdict_table,
)

__all__ = [
    "CANNED_REPLY",
    "COLLAPSE_RATIO",
    "CURRENT_FACTS",
    "FAILURE_THRESHOLDS",
    "FORGETTING_MAX_DROP",
    "LOOKUP",
    "LOOKUP_REPLY",
    "MEASURES",
    "MIX_GENERAL",
    "MIX_REFUSALS",
    "MODES",
    "NOISE_Z",
    "OVERFIT_PATIENCE",
    "OVERFIT_RISE",
    "REFUSAL_MAX_DROP",
    "RUN_MEASURES",
    "STALE_RATE",
    "TARGET_GAIN",
    "TARGET_KEEP",
    "VALIDATION_SIZE",
    "FtlabError",
    "LabRun",
    "LabSettings",
    "ModeResult",
    "Probes",
    "answer_logprob",
    "answer_with_lookup",
    "assess",
    "catalog_lookup_examples",
    "catalog_questions",
    "data_diversity",
    "detect_forgetting",
    "detect_mode_collapse",
    "detect_overfitting",
    "detect_safety_degradation",
    "detect_stale_facts",
    "distinct_ratio",
    "load_run",
    "lookup_products",
    "low_diversity",
    "make_probes",
    "measure",
    "one_per_intent",
    "output_entropy",
    "plan_runs",
    "plot_overfitting",
    "plot_verdicts",
    "question_text",
    "rate_drop",
    "record_value",
    "retrieve_product",
    "sku_answer_rates",
    "sku_map",
    "stale_fact_rate",
    "target_kept",
    "threshold_table",
    "train_and_measure",
    "train_run",
    "validation_loss",
    "verdict_table",
]
