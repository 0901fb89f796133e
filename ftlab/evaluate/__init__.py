"""Post-training evaluation: the fine-tuned model against a prompt-engineered baseline (notebook 07).

The articles' three categories, each measured on held-out data:

1. the **target task** — fine-tuned vs the base model with a few-shot prompt, per example, in the
   four-way breakdown ``both_correct / ft_only_correct / base_only_correct / neither``; more than 5 %
   ``base_only_correct`` is flagged and those examples are listed ("investigate those specific examples");
2. **adjacent tasks** the base model handles — general-skill accuracy before vs after (catastrophic forgetting);
3. **safety** — refusal rate on harmful requests before vs after (safety degradation).

The verdict follows article 001: "if fine-tuning hurts category 2 or 3, you have a failure regardless of
how good category 1 looks". Every function takes a model id or folder (plus an optional adapter
folder) and a dataset, so the same code evaluates Llama 3.1 8B::

    base = evaluate_model("ftlab/toy-llama", evalset, few_shot=shots)
    tuned = evaluate_model("ftlab/toy-llama", evalset, adapter="runs/train/adapter")
    report = compare(base, tuned, evalset)
    report.verdict.decision  # "ship" or "do not ship"

The package, by step:

- ``sets``: ``toy_eval_set``, ``eval_set_for``, ``validation_set``, ``check_eval_inputs``, ``train_candidate``,
  ``train_side_by_side``.
- ``scoring``: ``pick_shots``, ``few_shot_messages``, ``load_model``, ``evaluate_model``.
- ``verdict``: ``four_way``, ``decide``, ``next_steps``, ``compare``, ``write_evaluation``.
- ``gate``: ``CandidateGate`` (train, evaluate and judge each candidate; the article's next steps).
- ``plot``: ``plot_comparison``, ``plot_four_way``.
"""

from __future__ import annotations

from ftlab.evaluate.gate import CandidateGate
from ftlab.evaluate.plot import plot_comparison, plot_four_way
from ftlab.evaluate.scoring import ModelScores, evaluate_model, few_shot_messages, load_model, pick_shots
from ftlab.evaluate.sets import (
    FORMAT_INSTRUCTIONS,
    OWN_DATA,
    EvalSet,
    _user_text,  # noqa: F401 (used outside the package)
    check_eval_inputs,
    eval_set_for,
    reference_match,
    toy_eval_set,
    train_candidate,
    train_side_by_side,
    validation_set,
)
from ftlab.evaluate.verdict import (
    FOUR_WAY,
    REGRESSION_THRESHOLD,
    Comparison,
    FourWay,
    NextStep,
    Verdict,
    compare,
    decide,
    four_way,
    next_steps,
    write_evaluation,
)

__all__ = [
    "FORMAT_INSTRUCTIONS",
    "FOUR_WAY",
    "OWN_DATA",
    "REGRESSION_THRESHOLD",
    "CandidateGate",
    "Comparison",
    "EvalSet",
    "FourWay",
    "ModelScores",
    "NextStep",
    "Verdict",
    "check_eval_inputs",
    "compare",
    "decide",
    "eval_set_for",
    "evaluate_model",
    "few_shot_messages",
    "four_way",
    "load_model",
    "next_steps",
    "pick_shots",
    "plot_comparison",
    "plot_four_way",
    "reference_match",
    "toy_eval_set",
    "train_candidate",
    "train_side_by_side",
    "validation_set",
    "write_evaluation",
]
