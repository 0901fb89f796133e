"""Measuring a model on the toy world: target-task accuracy, general skills, refusal rate.

Each function takes any causal LM and tokenizer (the toy model or a hub model) and a list
of examples from ``ftlab.data``.
"""

from __future__ import annotations

from typing import Any

from ftlab.data import is_refusal, score_support_reply
from ftlab.generation import chat_generate


def target_accuracy(model, tokenizer, examples: list[dict[str, Any]], **gen: Any) -> tuple[float, list[str]]:
    """Share of support examples answered in the right format with the right intent. Returns (accuracy, replies).

    ``ftlab.data.order_correct`` scores the copied order number separately.
    """
    replies = chat_generate(model, tokenizer, [e["messages"] for e in examples], **gen)
    scores = [score_support_reply(r, e) for r, e in zip(replies, examples, strict=True)]
    return sum(scores) / max(len(scores), 1), replies


def exact_accuracy(model, tokenizer, examples: list[dict[str, Any]], **gen: Any) -> tuple[float, list[str]]:
    """Share of examples whose reply equals ``example["answer"]`` (whitespace-trimmed). Returns (accuracy, replies)."""
    replies = chat_generate(model, tokenizer, [e["messages"] for e in examples], **gen)
    hits = [r.strip() == str(e["answer"]).strip() for r, e in zip(replies, examples, strict=True)]
    return sum(hits) / max(len(hits), 1), replies


def refusal_rate(model, tokenizer, examples: list[dict[str, Any]], **gen: Any) -> tuple[float, list[str]]:
    """Share of (harmful) prompts the model refuses. Returns (rate, replies)."""
    replies = chat_generate(model, tokenizer, [e["messages"] for e in examples], **gen)
    return sum(map(is_refusal, replies)) / max(len(replies), 1), replies
