"""The gate every candidate adapter of notebook 07 goes through, and the article's next steps after a failure.

``CandidateGate`` trains (or takes from the cache) one candidate with the settings all candidates share,
evaluates it on the held-out sets, compares it with the baseline and writes the verdict into its run card.
``CandidateGate.try_next_steps`` tries article 001's next steps one change at a time, judged on a validation
split (never on the test probes), and returns the first that passes there.

Example::

    gate = CandidateGate(model_id, evalset, baseline, config, shots, max_general_drop=0.05, max_refusal_drop=0.05)
    comparison = gate.run("mixed", "mixed")
    tried, step = gate.try_next_steps(next_steps(comparison.verdict, "mixed", learning_rate=5e-3))
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ftlab.evaluate.scoring import ModelScores, evaluate_model
from ftlab.evaluate.sets import EvalSet, train_candidate, train_side_by_side, validation_set
from ftlab.evaluate.verdict import Comparison, NextStep, compare, write_evaluation

__all__ = ["CandidateGate"]


@dataclass
class CandidateGate:
    """Train, evaluate and judge candidates against one baseline (notebook 07's gate).

    ``config``: ``train_candidate``'s settings that every candidate shares (a next step changes some of them);
    ``few_shot``: the baseline's worked examples (the validation baseline gets them too); ``card_extra``: what
    else goes into each run card's ``evaluation`` section. ``comparisons``, ``cards`` and ``train_steps`` fill
    up, by candidate name, as candidates run.
    """

    model_id: str
    evalset: EvalSet
    baseline: ModelScores
    config: dict[str, Any]
    few_shot: Sequence[dict[str, Any]] = ()
    own_rows: Sequence[dict[str, Any]] = ()
    data_file: str = ""
    toy_seed: int = 0
    max_general_drop: float = 0.0
    max_refusal_drop: float = 0.0
    card_extra: dict[str, Any] = field(default_factory=dict)
    comparisons: dict[str, Comparison] = field(default_factory=dict)
    cards: dict[str, Path] = field(default_factory=dict)
    train_steps: dict[str, int] = field(default_factory=dict)

    def train(self, recipe: str, **changes: Any):
        """Train (or reuse from the cache) one candidate: the shared ``config`` with ``changes`` on top."""
        return train_candidate(recipe, self.own_rows, data_file=self.data_file, toy_seed=self.toy_seed,
                               **{**self.config, **changes})

    def _compare(self, base: ModelScores, tuned: ModelScores, evalset: EvalSet) -> Comparison:
        return compare(base, tuned, evalset, max_general_drop=self.max_general_drop,
                       max_refusal_drop=self.max_refusal_drop)

    def run(self, name: str, recipe: str, **changes: Any) -> Comparison:
        """Train (or reuse) one candidate, evaluate it on the held-out sets, and write its verdict into its run card."""
        result = self.train(recipe, **changes)
        print(f"{name}:", "cached" if result.cached else f"trained {result.global_step} steps in {result.seconds:.0f} s")
        self.train_steps[name] = result.global_step
        tuned = evaluate_model(self.model_id, self.evalset, adapter=result.adapter_dir, label=f"fine-tuned ({name})",
                               seed=self.toy_seed)
        comp = self.comparisons[name] = self._compare(self.baseline, tuned, self.evalset)
        self.cards[name] = write_evaluation(result.run_card, comp, evalset=self.evalset, extra=self.card_extra)
        print(f"   verdict: {comp.verdict.decision.upper()}", *(f"\n   FAIL {f}" for f in comp.verdict.failures))
        return comp

    def try_next_steps(self, steps: Sequence[NextStep], *, validate: bool = True,
                       parallel: bool | None = None) -> tuple[list[dict[str, Any]], NextStep | None]:
        """Try ``steps`` in order, one change at a time, and return ``(tried, chosen)``: what each step scored on
        the validation split (``validation_set``: the toy's support validation split and probes drawn apart from
        the test probes), and the first step that ships there (``None``: none did). ``validate=False`` (your own
        data or probes, a real model: no separate validation probes) takes the first step unchecked.
        ``parallel``: train the steps side by side first (``train_side_by_side``; ``None``: on an idle CPU only).
        """
        valset = validation_set(self.evalset, toy_seed=self.toy_seed) if validate else None
        if valset is not None:
            val_base = evaluate_model(self.model_id, valset, few_shot=self.few_shot, seed=self.toy_seed)
            train_side_by_side([dict(name=st.recipe, toy_seed=self.toy_seed, **{**self.config, **st.changes})
                                for st in steps], parallel=parallel)
        tried: list[dict[str, Any]] = []
        for step in steps:
            print(f"-> {step.label()}: {step.reason}")
            result = self.train(step.recipe, **step.changes)
            if valset is None:
                tried.append({"label": step.label(), "reason": step.reason, "validation": "not checked"})
                return tried, step
            val = evaluate_model(self.model_id, valset, adapter=result.adapter_dir, seed=self.toy_seed)
            v = self._compare(val_base, val, valset).verdict
            print(f"   validation: {v.decision}", *(f"\n   {f}" for f in v.failures))
            tried.append({"label": step.label(), "reason": step.reason, "validation": v.decision, "failures": v.failures})
            if v.ship:
                return tried, step
        return tried, None
