"""Measuring a model on the lab's held-out probes: accuracies, refusal rate, distinct outputs, the stale-fact
rate (a likelihood probe) and validation loss.

Example: ``measure(model, tokenizer, make_probes(0), ("refusal",))["refusal_rate"]``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ftlab.data import SUPPORT_SYSTEM, answer_with_lookup, catalog_questions, question_text, support_splits
from ftlab.failures.detect import distinct_ratio, output_entropy
from ftlab.failures.runs import VALIDATION_SIZE, LabRun, LabSettings, load_run, train_run
from ftlab.generation import chat_generate
from ftlab.probes import (
    TOY_KIND,
    exact_accuracy,
    exact_match,
    general_probes,
    refusal_rate,
    safety_probes,
    target_accuracy,
)
from ftlab.train import TrainResult

__all__ = ["MEASURES", "RUN_MEASURES", "Probes", "answer_logprob", "make_probes", "measure", "sku_answer_rates",
           "stale_fact_rate", "train_and_measure", "validation_loss"]


def answer_logprob(model: Any, tokenizer: Any, messages: Sequence[dict[str, Any]], answers: Sequence[str]) -> list[float]:
    """Log-probability the model gives each candidate ``answers`` as the assistant's reply to ``messages``."""
    import torch

    msgs = [m for m in messages if m.get("role") != "assistant"]
    prompt = tokenizer.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
    p_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    seqs = [tokenizer(prompt + a, add_special_tokens=False)["input_ids"] for a in answers]
    width = max(map(len, seqs))
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    ids = torch.tensor([s + [pad] * (width - len(s)) for s in seqs])
    att = torch.tensor([[1] * len(s) + [0] * (width - len(s)) for s in seqs])
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            logp = model(input_ids=ids.to(device), attention_mask=att.to(device)).logits.float().log_softmax(-1).cpu()
    finally:
        model.train(was_training)
    out = []
    for row, s in enumerate(seqs):
        out.append(sum(logp[row, i - 1, s[i]].item() for i in range(len(p_ids), len(s))))
    return out


def stale_fact_rate(model: Any, tokenizer: Any, questions: Sequence[dict[str, Any]]) -> float:
    """Share of catalog questions where the model puts more probability on the old SKU than on the current one.

    ``questions`` are rows of ``catalog_questions`` (keys ``product``, ``old_sku``, ``new_sku``). A
    likelihood probe: it shows which fact the model believes even when a greedy reply gets a digit wrong.
    """
    stale = 0
    for q in questions:
        p = q["product"]
        lp_old, lp_new = answer_logprob(model, tokenizer, q["messages"],
                                        [f"The {p} has SKU {q['old_sku']}.", f"The {p} has SKU {q['new_sku']}."])
        stale += lp_old > lp_new
    return stale / max(len(questions), 1)


def sku_answer_rates(replies: Sequence[str], questions: Sequence[dict[str, Any]]) -> dict[str, float]:
    """Share of generated replies that contain the old SKU, and the current SKU (exact string match)."""
    n = max(len(replies), 1)
    olds = sum(q["old_sku"] in r for r, q in zip(replies, questions, strict=True))
    news = sum(q["new_sku"] in r for r, q in zip(replies, questions, strict=True))
    return {"old_sku": olds / n, "current_sku": news / n}


def validation_loss(model: Any, tokenizer: Any, rows: Sequence[dict[str, Any]], *, max_length: int = 128,
                    batch_size: int = 32) -> float:
    """Mean cross-entropy on the assistant tokens of ``rows`` (what the trainer's eval_loss measures)."""
    import torch

    device = next(model.parameters()).device
    total, count = 0.0, 0
    was_training = model.training
    model.eval()
    try:
        for start in range(0, len(rows), batch_size):
            encs = [tokenizer.apply_chat_template(r["messages"], tokenize=True, return_dict=True,
                                                  return_assistant_tokens_mask=True) for r in rows[start:start + batch_size]]
            width = min(max(len(e["input_ids"]) for e in encs), max_length)
            pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
            ids = torch.full((len(encs), width), pad)
            att = torch.zeros((len(encs), width), dtype=torch.long)
            labels = torch.full((len(encs), width), -100)
            for i, e in enumerate(encs):
                seq = list(e["input_ids"])[:width]
                mask = list(e["assistant_masks"])[:width]
                ids[i, :len(seq)] = torch.tensor(seq)
                att[i, :len(seq)] = 1
                labels[i, :len(seq)] = torch.tensor([t if m else -100 for t, m in zip(seq, mask, strict=True)])
            with torch.no_grad():
                logits = model(input_ids=ids.to(device), attention_mask=att.to(device)).logits.float()
            shift_logits, shift_labels = logits[:, :-1].cpu(), labels[:, 1:]
            loss = torch.nn.functional.cross_entropy(shift_logits.reshape(-1, shift_logits.shape[-1]),
                                                     shift_labels.reshape(-1), ignore_index=-100, reduction="sum")
            total += loss.item()
            count += int((shift_labels != -100).sum())
    finally:
        model.train(was_training)
    return total / max(count, 1)


@dataclass
class Probes:
    """Held-out probe sets: none of their user prompts is ever trained on. The SKU questions ask, in
    held-out phrasings, about products the defended run never saw asked about (the narrow run did learn
    their old SKUs: that is the memorization the probes look for)."""

    general: list[dict[str, Any]]
    safety: list[dict[str, Any]]
    target: list[dict[str, Any]]
    validation: list[dict[str, Any]]
    catalog: list[dict[str, Any]]
    catalog_seed: int = 0

    def sizes(self) -> dict[str, int]:
        return {k: len(getattr(self, k)) for k in ("general", "safety", "target", "validation", "catalog")}


def make_probes(seed: int = 0, size: int = 40) -> Probes:
    """General skills (``1.5 * size``), harmful requests in the shop's context, the target task's test and
    validation examples, and the SKU questions asked after the catalog changed from v1 to v2."""
    sp = support_splits(seed)
    return Probes(
        general=general_probes(TOY_KIND, n=round(1.5 * size), seed=seed),
        safety=safety_probes(TOY_KIND, n=size, seed=seed, system=SUPPORT_SYSTEM),
        target=sp["test"][:size],
        validation=sp["validation"][:VALIDATION_SIZE],
        catalog=catalog_questions(seed),
        catalog_seed=seed,
    )


MEASURES = ("general", "refusal", "target", "facts", "validation_loss")


def measure(model: Any, tokenizer: Any, probes: Probes, what: Sequence[str] = MEASURES) -> dict[str, Any]:
    """Measure a model on the probes; ``what`` picks among ``MEASURES``. Returns figures and sample replies.

    - ``general``: exact-match accuracy on general-skill probes (and by skill);
    - ``refusal``: refusal rate on harmful requests;
    - ``target``: target-task accuracy, and the distinct-output ratio and entropy of those replies;
    - ``facts``: how the SKU questions are answered after the catalog changed: ``lookup_rate`` (the
      reply defers to the catalog lookup), ``stale_fact_rate`` (a looked-up answer is current; an answer
      from the weights is stale when the model gives the old SKU more probability than the current
      one), ``current_fact_rate`` and ``old_fact_rate`` (the final answer holds the current / the old
      SKU, exact match);
    - ``validation_loss``: cross-entropy on the target task's validation examples.
    """
    out: dict[str, Any] = {}
    if "general" in what:
        out["general_accuracy"], replies = exact_accuracy(model, tokenizer, probes.general, max_new_tokens=12)
        hits = [exact_match(r, e) for r, e in zip(replies, probes.general, strict=True)]
        by: dict[str, list[bool]] = {}
        for hit, e in zip(hits, probes.general, strict=True):
            by.setdefault(e["skill"], []).append(hit)
        out["general_by_skill"] = {k: round(sum(v) / len(v), 3) for k, v in by.items()}
        out["general_replies"] = replies
    if "refusal" in what:
        out["refusal_rate"], out["safety_replies"] = refusal_rate(model, tokenizer, probes.safety, max_new_tokens=8)
    if "target" in what:
        out["target_accuracy"], replies = target_accuracy(model, tokenizer, probes.target, max_new_tokens=24)
        out["distinct_ratio"] = distinct_ratio(replies)
        out["output_entropy"] = output_entropy(replies)
        out["target_replies"] = replies
    if "facts" in what:
        qs = probes.catalog
        replies = chat_generate(model, tokenizer, [e["messages"] for e in qs], max_new_tokens=20)
        # the lookup is given the question's text and the reply, never the probe's gold product
        resolved = [answer_with_lookup(r, question_text(q), 2, probes.catalog_seed) for r, q in zip(replies, qs, strict=True)]
        from_weights = [q for q, (_, used, _) in zip(qs, resolved, strict=True) if not used]
        stale_weights = stale_fact_rate(model, tokenizer, from_weights) * len(from_weights) if from_weights else 0.0
        answers = [a for a, _, _ in resolved]
        rates = sku_answer_rates(answers, qs)
        looked_up = [(q, a, p) for q, (a, used, p) in zip(qs, resolved, strict=True) if used]
        looked_up_stale = sum(q["old_sku"] in a for q, a, _ in looked_up)
        out["lookup_rate"] = len(looked_up) / len(qs)
        # scoring only: did the retriever find the product the question is about?
        out["lookup_accuracy"] = sum(p == q["product"] for q, _, p in looked_up) / len(looked_up) if looked_up else 0.0
        out["stale_fact_rate"] = (stale_weights + looked_up_stale) / len(qs)
        out["current_fact_rate"] = rates["current_sku"]
        out["old_fact_rate"] = rates["old_sku"]  # replies that spell out the old SKU exactly
        out["catalog_replies"] = [f"{r}  ->  {a}" if a != r else r for r, a in zip(replies, answers, strict=True)]
    if "validation_loss" in what:
        out["validation_loss"] = validation_loss(model, tokenizer, probes.validation)
    return out


RUN_MEASURES: dict[str, tuple[str, ...]] = {
    "base": MEASURES,
    "narrow": ("general", "refusal", "target", "facts"),
    "small": ("validation_loss",),
    "low_diversity": ("target",),
    "mixed": MEASURES,
}


def train_and_measure(spec: LabRun, settings: LabSettings, probes: Probes) -> tuple[TrainResult, dict[str, Any]]:
    """Train one planned run (``train_run``, through the cache unless ``settings.use_cache`` is off), load it and
    measure it on what ``RUN_MEASURES`` names for it. Returns ``(result, figures)``; notebook 08 calls it per run.

    Example: ``results["small"], measures["small"] = train_and_measure(runs["small"], settings, probes)``.
    """
    result = train_run(spec, use_cache=settings.use_cache)
    model, tokenizer = load_run(result, settings)
    return result, measure(model, tokenizer, probes, RUN_MEASURES[spec.name])
