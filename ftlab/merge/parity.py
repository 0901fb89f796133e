"""Checking a merge: the largest logit difference between two models and whether greedy replies agree."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from ftlab.generation import _messages_for_prompt

__all__ = ["Parity", "default_tolerance", "logit_parity", "logits_diff"]


# ---------------------------------------------------------------------------------------------
# Checking the merge: logits and greedy generations
# ---------------------------------------------------------------------------------------------
def default_tolerance(dtype) -> float:
    """The max |Δlogit| accepted between two computations of the same function in ``dtype``.

    float32: 1e-3 (merging reorders a few additions; differences are ~1e-5). bfloat16/float16:
    0.1 (a merged bf16 weight is rounded to 8 bits of mantissa, the unmerged path rounds elsewhere).
    """
    return 1e-3 if "32" in str(dtype) or "64" in str(dtype) else 0.1


@dataclass
class Parity:
    """How closely two models agree on the same inputs."""

    max_abs_logit_diff: float
    mean_abs_logit_diff: float
    tolerance: float
    logits_within_tolerance: bool
    greedy_identical: bool
    n_prompts: int
    n_positions: int
    n_mismatches: int = 0  # prompts whose greedy replies differ
    mismatches: list[dict[str, Any]] = field(default_factory=list)  # the first ten of them

    @property
    def ok(self) -> bool:
        return self.logits_within_tolerance and self.greedy_identical

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}


def _conversation_batches(tokenizer, conversations, batch_size: int, *, generation_prompt: bool):
    import torch

    for start in range(0, len(conversations), batch_size):
        chunk = conversations[start : start + batch_size]
        if generation_prompt:
            texts = [tokenizer.apply_chat_template(_messages_for_prompt(c), tokenize=False, add_generation_prompt=True)
                     for c in chunk]
        else:
            texts = [tokenizer.apply_chat_template(list(c), tokenize=False) for c in chunk]
        ids = [tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts]
        width = max(map(len, ids))
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        inp = torch.full((len(ids), width), pad)
        att = torch.zeros((len(ids), width), dtype=torch.long)
        for i, row in enumerate(ids):
            inp[i, : len(row)] = torch.tensor(row)
            att[i, : len(row)] = 1
        yield inp, att


def logits_diff(model_a, model_b, tokenizer, conversations: Sequence[Sequence[dict[str, Any]]], *,
                batch_size: int = 16) -> tuple[float, float, int]:
    """``(max, mean, n)`` of |logit_a − logit_b| over every real (unpadded) position of the full conversations."""
    import torch

    mx, total, n = 0.0, 0.0, 0
    dev_a, dev_b = next(model_a.parameters()).device, next(model_b.parameters()).device
    model_a.eval()
    model_b.eval()
    with torch.no_grad():
        for inp, att in _conversation_batches(tokenizer, list(conversations), batch_size, generation_prompt=False):
            la = model_a(input_ids=inp.to(dev_a), attention_mask=att.to(dev_a)).logits.float().cpu()
            lb = model_b(input_ids=inp.to(dev_b), attention_mask=att.to(dev_b)).logits.float().cpu()
            d = (la - lb).abs()[att.bool()]
            mx = max(mx, float(d.max()))
            total += float(d.sum())
            n += d.shape[0]
    return mx, total / max(n * (d.shape[-1] if n else 1), 1), n


def logit_parity(model_a, model_b, tokenizer, conversations: Sequence[Sequence[dict[str, Any]]], *,
                 tolerance: float | None = None, max_new_tokens: int = 32) -> Parity:
    """Compare two models on the same conversations: teacher-forced logits and greedy replies.

    ``tolerance`` defaults to ``default_tolerance`` of ``model_b``'s dtype. Example::

        p = logit_parity(adapter_model, merged, tok, data.support_splits(0)["test"][:32])
        p.max_abs_logit_diff < p.tolerance and p.greedy_identical
    """
    from ftlab.generation import chat_generate

    convs = [list(c) for c in conversations]
    mx, mean, n = logits_diff(model_a, model_b, tokenizer, convs)
    tol = default_tolerance(next(model_b.parameters()).dtype) if tolerance is None else tolerance
    ra = chat_generate(model_a, tokenizer, convs, max_new_tokens=max_new_tokens)
    rb = chat_generate(model_b, tokenizer, convs, max_new_tokens=max_new_tokens)
    mism = [{"index": i, "a": a, "b": b} for i, (a, b) in enumerate(zip(ra, rb, strict=True)) if a != b]
    return Parity(max_abs_logit_diff=mx, mean_abs_logit_diff=mean, tolerance=tol, logits_within_tolerance=mx <= tol,
                  greedy_identical=not mism, n_prompts=len(convs), n_positions=n, n_mismatches=len(mism),
                  mismatches=mism[:10])
