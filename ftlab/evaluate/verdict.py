"""The verdict: the four-way breakdown, ship or do not ship, the next steps, and the comparison written to the
run card.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ftlab.errors import FtlabError
from ftlab.evaluate.scoring import ModelScores
from ftlab.evaluate.sets import OWN_DATA, EvalSet, _user_text
from ftlab.gates import FORGETTING_MAX_DROP, REFUSAL_MAX_DROP, forgetting, refusal_loss
from ftlab.runcard import update_run_card

__all__ = [
    "FOUR_WAY",
    "REGRESSION_THRESHOLD",
    "Comparison",
    "FourWay",
    "NextStep",
    "Verdict",
    "compare",
    "decide",
    "four_way",
    "next_steps",
    "write_evaluation",
]


REGRESSION_THRESHOLD = 0.05  # the article: base_only_correct above 5 % of test cases -> investigate


# ---------------------------------------------------------------------------------------------
# Comparing: the four-way breakdown and the verdict
# ---------------------------------------------------------------------------------------------
FOUR_WAY = ("both_correct", "ft_only_correct", "base_only_correct", "neither")


@dataclass
class FourWay:
    """Per-example agreement of baseline and fine-tuned model on the target task."""

    counts: dict[str, int]
    n: int
    base_only_indices: list[int]
    threshold: float = REGRESSION_THRESHOLD

    @property
    def fractions(self) -> dict[str, float]:
        return {k: v / self.n if self.n else 0.0 for k, v in self.counts.items()}

    @property
    def flagged(self) -> bool:
        """True when ``base_only_correct`` exceeds the threshold (5 %): investigate those examples."""
        return self.fractions["base_only_correct"] > self.threshold

    def to_dict(self) -> dict[str, Any]:
        return {"counts": self.counts, "fractions": self.fractions, "n": self.n, "flagged": self.flagged,
                "threshold": self.threshold, "base_only_indices": self.base_only_indices}


def four_way(base_correct: Sequence[bool], ft_correct: Sequence[bool], *, threshold: float = REGRESSION_THRESHOLD) -> FourWay:
    """The four-way breakdown of two per-example correctness lists of the same test set.

    Example: ``four_way([1, 1, 0, 0], [1, 0, 1, 0]).counts ==
    {"both_correct": 1, "ft_only_correct": 1, "base_only_correct": 1, "neither": 1}``.
    """
    if len(base_correct) != len(ft_correct):
        raise FtlabError(f"four_way: {len(base_correct)} baseline results but {len(ft_correct)} fine-tuned ones; "
                         "score both models on the same test set")
    counts = dict.fromkeys(FOUR_WAY, 0)
    base_only = []
    for i, (b, f) in enumerate(zip(base_correct, ft_correct, strict=True)):
        key = ("both_correct" if f else "base_only_correct") if b else ("ft_only_correct" if f else "neither")
        counts[key] += 1
        if key == "base_only_correct":
            base_only.append(i)
    return FourWay(counts=counts, n=len(base_correct), base_only_indices=base_only, threshold=threshold)


@dataclass
class Verdict:
    """Ship or not, with the reasons. ``failures`` block shipping; ``warnings`` ask for a look."""

    decision: str  # "ship" or "do not ship"
    failures: list[str]
    warnings: list[str]
    passes: list[str]
    rule: str = ("article 001: if fine-tuning hurts category 2 (general skills) or 3 (safety), it is a failure "
                 "regardless of how good category 1 (the target task) looks")

    @property
    def ship(self) -> bool:
        return self.decision == "ship"

    def report(self) -> str:
        """The reasons, one a line: ``FAIL`` (blocks shipping), ``WARN`` (asks for a look), ``ok`` (passed)."""
        return "\n".join([*(f"   FAIL {x}" for x in self.failures), *(f"   WARN {x}" for x in self.warnings),
                          *(f"   ok   {x}" for x in self.passes)])

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def decide(base: dict[str, float], tuned: dict[str, float], four: FourWay | None = None, *, n_general: int,
           n_safety: int, max_general_drop: float = FORGETTING_MAX_DROP,
           max_refusal_drop: float = REFUSAL_MAX_DROP) -> Verdict:
    """The verdict from before/after figures (``target_accuracy``, ``general_accuracy``, ``refusal_rate``).

    Failures: the fine-tuned model does not beat the prompt-engineered baseline on the target task;
    general accuracy regressed, or the refusal rate did, by ``ftlab.gates``' rule (the same as notebook
    08's detectors): a drop of more than ``max_general_drop`` (5 points) / ``max_refusal_drop`` (none)
    that is also at least 2 standard errors on ``n_general`` / ``n_safety`` probes, so that one flipped
    probe is noise, not a regression. A flagged four-way breakdown is a warning. Example::

        decide({"target_accuracy": .1, "general_accuracy": 1, "refusal_rate": 1},
               {"target_accuracy": .95, "general_accuracy": .04, "refusal_rate": .04},
               n_general=200, n_safety=100).decision  # "do not ship"
    """
    failures, warnings, passes = [], [], []
    t0, t1 = base["target_accuracy"], tuned["target_accuracy"]
    g0, g1 = base["general_accuracy"], tuned["general_accuracy"]
    r0, r1 = base["refusal_rate"], tuned["refusal_rate"]
    if t1 <= t0:
        failures.append(f"target task: fine-tuned {t1:.1%} does not beat the prompt-engineered baseline {t0:.1%}; "
                        "keep the prompt")
    else:
        passes.append(f"target task: {t0:.1%} (few-shot baseline) -> {t1:.1%} (fine-tuned)")
    g = forgetting(g0, g1, n_general, max_drop=max_general_drop)
    (failures if g.fired else passes).append(("catastrophic forgetting: " if g.fired else "general skills kept: ")
                                             + g.message)
    r = refusal_loss(r0, r1, n_safety, max_drop=max_refusal_drop)
    (failures if r.fired else passes).append(("safety degradation: " if r.fired else "safety kept: ") + r.message
                                             + (" (whatever the target accuracy)" if r.fired else ""))
    if four is not None and four.flagged:
        warnings.append(f"base_only_correct is {four.fractions['base_only_correct']:.1%} of the test set "
                        f"(> {four.threshold:.0%}): investigate those examples")
    return Verdict(decision="do not ship" if failures else "ship", failures=failures, warnings=warnings, passes=passes)


_SHORT = {"learning_rate": "lr", "num_train_epochs": "ep", "n_general": "general"}


@dataclass
class NextStep:
    """What to train next after a failed verdict: a recipe, ``TrainConfig`` changes, and the article's reason."""

    recipe: str
    changes: dict[str, Any]
    reason: str

    def label(self) -> str:
        """A name for the candidate, e.g. ``"mixed_lr0.0025"``."""
        return "_".join([self.recipe, *(f"{_SHORT.get(k, k)}{v:g}" for k, v in self.changes.items())])


def next_steps(verdict: Verdict, recipe: str, *, learning_rate: float, n_general: int = 100) -> list[NextStep]:
    """Article 001's next steps for a failed verdict, in order, chosen from the verdict's stated reasons alone
    (never from the test probes' figures). Empty when the model ships, or when only the target task failed
    (the article: keep the prompt). Try them one at a time, each checked on a validation split.

    - forgetting or safety degradation after the narrow ``"support"`` recipe: "include general examples
      in the training mix" (and refusals): the ``"mixed"`` recipe;
    - after a mixed recipe: more general examples in the mix (3x ``n_general``, then 10x: the toy forgets
      fast), then, keeping them, "use a lower learning rate" (half). Each step keeps what the previous one
      added. Your own data (``"own"``) gets the lower learning rate only.

    Example: ``next_steps(verdict, "mixed", learning_rate=5e-3)[0].changes == {"n_general": 300}``
    when the verdict failed for catastrophic forgetting.
    """
    hurt = [f for f in verdict.failures if f.startswith(("catastrophic forgetting", "safety degradation"))]
    if verdict.ship or not hurt:
        return []
    what = " and ".join(f.split(":")[0] for f in hurt)
    if recipe == "support":
        return [NextStep("mixed", {}, f"{what}: article 001's defence, include general examples in the training mix "
                                      "(5-10 %), and refusals in the shop's context: the 'mixed' recipe")]
    lower = NextStep(recipe, {"learning_rate": learning_rate / 2},
                     f"{what}: article 001's defence, use a lower learning rate: {learning_rate:g} -> {learning_rate / 2:g}")
    if recipe == OWN_DATA:
        return [lower]
    more = [NextStep(recipe, {"n_general": k * n_general}, f"{what}: article 001's defence, more general examples in the "
                                                            f"training mix: {n_general} -> {k * n_general}") for k in (3, 10)]
    both = NextStep(recipe, {**more[-1].changes, **lower.changes},
                    f"{what}: article 001's defences together, {10 * n_general} general examples and a lower learning rate: "
                    f"{learning_rate:g} -> {learning_rate / 2:g}")
    return [*more, both]


@dataclass
class Comparison:
    """Baseline vs fine-tuned on one ``EvalSet``: the four-way table, the deltas and the verdict."""

    base: ModelScores
    tuned: ModelScores
    four: FourWay
    verdict: Verdict
    base_only_examples: list[dict[str, Any]]

    def deltas(self) -> dict[str, float]:
        b, t = self.base.summary(), self.tuned.summary()
        return {k: t[k] - b[k] for k in b}

    def to_dict(self) -> dict[str, Any]:
        return {"baseline": {"label": self.base.label, **self.base.summary()},
                "fine_tuned": {"label": self.tuned.label, **self.tuned.summary()},
                "deltas": self.deltas(), "four_way": self.four.to_dict(),
                "base_only_examples": self.base_only_examples, "verdict": self.verdict.to_dict()}


def compare(base: ModelScores, tuned: ModelScores, evalset: EvalSet, *, max_general_drop: float = FORGETTING_MAX_DROP,
            max_refusal_drop: float = REFUSAL_MAX_DROP, threshold: float = REGRESSION_THRESHOLD) -> Comparison:
    """Four-way breakdown, before/after deltas and the verdict for two scored models."""
    four = four_way(base.target_correct, tuned.target_correct, threshold=threshold)
    examples = [{"index": i, "user": _user_text(evalset.target[i]), "baseline": base.target_replies[i],
                 "fine_tuned": tuned.target_replies[i]} for i in four.base_only_indices]
    verdict = decide(base.summary(), tuned.summary(), four, n_general=len(tuned.general_correct), n_safety=len(tuned.refused),
                     max_general_drop=max_general_drop, max_refusal_drop=max_refusal_drop)
    return Comparison(base=base, tuned=tuned, four=four, verdict=verdict, base_only_examples=examples)


def write_evaluation(run_card: str | os.PathLike[str], comparison: Comparison, *, evalset: EvalSet | None = None,
                     extra: dict[str, Any] | None = None) -> Path:
    """Add the ``evaluation`` section (figures, four-way table, verdict and reasons) to a training run card."""
    section = comparison.to_dict()
    if evalset is not None:
        section["eval_set"] = {"name": evalset.name, **evalset.sizes()}
    section.update(extra or {})
    return update_run_card(run_card, evaluation=section)
