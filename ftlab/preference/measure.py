"""Measuring a policy against its reference: reply log-probabilities, preference accuracy, DPO's reward
margins, the sampled KL and general skill.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ftlab.core import seed_everything

__all__ = ["dpo_measures", "dpo_report", "general_skill_accuracy", "preference_accuracy", "reply_logprobs", "reward_margins", "sampled_kl",
           "score_pairs"]


# ---------------------------------------------------------------------------------------------
# Measuring: log-probabilities of replies, preference accuracy, reward margins, KL
# ---------------------------------------------------------------------------------------------
def _common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def reply_logprobs(model, tokenizer, prompts: Sequence[Sequence[dict]], replies: Sequence[Sequence[dict]],
                   *, batch_size: int = 32, per_token: bool = False) -> list[float]:
    """``log p(reply | prompt)`` under ``model``: the sum over the reply's tokens (its end-of-turn included),
    or with ``per_token=True`` their mean (the log-probability per token, which does not favour short replies).

    The reply starts where the tokenized prompt (with the generation prompt) and prompt + reply diverge,
    as in TRL's DPO. Example: ``reply_logprobs(m, tok, [p["prompt"]], [p["chosen"]])`` → ``[-3.2]``.
    """
    import torch

    seqs: list[tuple[list[int], int]] = []
    for prompt, reply in zip(prompts, replies, strict=True):
        p_ids = list(tokenizer.apply_chat_template(list(prompt), tokenize=True, add_generation_prompt=True,
                                                   return_dict=True)["input_ids"])
        full = list(tokenizer.apply_chat_template(list(prompt) + list(reply), tokenize=True,
                                                  return_dict=True)["input_ids"])
        seqs.append((full, _common_prefix(p_ids, full)))
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    out: list[float] = []
    try:
        for start in range(0, len(seqs), batch_size):
            chunk = seqs[start : start + batch_size]
            width = max(len(s) for s, _ in chunk)
            ids = torch.full((len(chunk), width), pad, dtype=torch.long)
            att = torch.zeros((len(chunk), width), dtype=torch.long)
            for i, (s, _) in enumerate(chunk):
                ids[i, : len(s)] = torch.tensor(s)
                att[i, : len(s)] = 1
            with torch.no_grad():
                logits = model(input_ids=ids.to(device), attention_mask=att.to(device)).logits.float()
            logp = torch.log_softmax(logits[:, :-1], dim=-1).gather(-1, ids[:, 1:].to(device).unsqueeze(-1)).squeeze(-1)
            for i, (s, p_len) in enumerate(chunk):
                tokens = logp[i, p_len - 1 : len(s) - 1]
                out.append(float(tokens.mean() if per_token else tokens.sum()) if tokens.numel() else 0.0)
    finally:
        model.train(was_training)
    return out


def score_pairs(model, tokenizer, pairs: Sequence[dict[str, Any]], *, per_token: bool = False
                ) -> list[tuple[float, float]]:
    """``(log p(chosen), log p(rejected))`` for each pair: summed over the reply's tokens (what DPO's
    implicit reward uses), or with ``per_token=True`` the mean per token (what ``preference_accuracy`` compares)."""
    prompts = [p["prompt"] for p in pairs]
    chosen = reply_logprobs(model, tokenizer, prompts, [p["chosen"] for p in pairs], per_token=per_token)
    rejected = reply_logprobs(model, tokenizer, prompts, [p["rejected"] for p in pairs], per_token=per_token)
    return list(zip(chosen, rejected, strict=True))


def preference_accuracy(scores: Sequence[tuple[float, float]]) -> float:
    """Share of pairs where the model prefers the chosen reply (ties count as wrong).

    Give it per-token scores (``score_pairs(..., per_token=True)``): a summed log-probability falls with every
    token, so with sums a short reply wins over a long one whatever it says.
    Example: ``preference_accuracy([(-1.0, -2.0), (-3.0, -2.0)]) == 0.5``.
    """
    return sum(c > r for c, r in scores) / max(len(scores), 1)


def reward_margins(scores: Sequence[tuple[float, float]], reference: Sequence[tuple[float, float]],
                   beta: float) -> dict[str, float]:
    """DPO's implicit rewards against the reference model, averaged over pairs.

    ``reward = beta * (log p(reply) - log p_ref(reply))``; the margin is chosen minus rejected, and
    ``reward_accuracy`` the share of pairs with a positive margin (what TRL logs as ``rewards/accuracies``).
    Example: scores ``[(-1, -5)]`` against reference ``[(-3, -3)]`` with ``beta=0.1`` give a margin of 0.4 (0.2 - -0.2).
    """
    ch = [beta * (c - rc) for (c, _), (rc, _) in zip(scores, reference, strict=True)]
    rj = [beta * (r - rr) for (_, r), (_, rr) in zip(scores, reference, strict=True)]
    margins = [a - b for a, b in zip(ch, rj, strict=True)]
    n = max(len(margins), 1)
    return {"chosen": sum(ch) / n, "rejected": sum(rj) / n, "margin": sum(margins) / n,
            "reward_accuracy": sum(m > 0 for m in margins) / n}


def _sample_ids(model, tokenizer, prompts: Sequence[Sequence[dict]], *, max_new_tokens: int, batch_size: int):
    """Replies sampled from ``model``'s own distribution (temperature 1, no top-k/top-p truncation, whatever its
    ``generation_config`` says), as token ids: ``[(prompt_ids, reply_ids)]``, the end-of-turn token included
    when the model wrote one, nothing after it."""
    import torch

    cfg_eos = getattr(model.generation_config, "eos_token_id", None)
    stops = {tokenizer.eos_token_id, *(cfg_eos if isinstance(cfg_eos, list) else [cfg_eos])} - {None}
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    device = next(model.parameters()).device
    out: list[tuple[list[int], list[int]]] = []
    for start in range(0, len(prompts), batch_size):
        chunk = [list(tokenizer.apply_chat_template(list(p), tokenize=True, add_generation_prompt=True,
                                                    return_dict=True)["input_ids"]) for p in prompts[start : start + batch_size]]
        width = max(map(len, chunk))
        ids = torch.full((len(chunk), width), pad, dtype=torch.long)
        att = torch.zeros((len(chunk), width), dtype=torch.long)
        for i, c in enumerate(chunk):  # left padding
            ids[i, width - len(c):] = torch.tensor(c)
            att[i, width - len(c):] = 1
        with torch.no_grad():
            gen = model.generate(input_ids=ids.to(device), attention_mask=att.to(device), do_sample=True,
                                 temperature=1.0, top_p=1.0, top_k=0, min_p=None, typical_p=1.0, repetition_penalty=1.0,
                                 max_new_tokens=max_new_tokens, pad_token_id=pad, eos_token_id=sorted(stops))
        for i, c in enumerate(chunk):
            reply: list[int] = []
            for t in gen[i, width:].tolist():
                reply.append(t)
                if t in stops:
                    break
            out.append((c, reply))
    return out


def _token_logprobs(model, seqs: Sequence[tuple[list[int], list[int]]], *, pad: int, batch_size: int) -> list[float]:
    """``log p(reply_ids | prompt_ids)`` summed over the reply's tokens, for token ids as they were sampled."""
    import torch

    device = next(model.parameters()).device
    out: list[float] = []
    for start in range(0, len(seqs), batch_size):
        chunk = seqs[start : start + batch_size]
        width = max(len(p) + len(r) for p, r in chunk)
        ids = torch.full((len(chunk), width), pad, dtype=torch.long)
        att = torch.zeros((len(chunk), width), dtype=torch.long)
        for i, (p, r) in enumerate(chunk):
            ids[i, : len(p) + len(r)] = torch.tensor(p + r)
            att[i, : len(p) + len(r)] = 1
        with torch.no_grad():
            logits = model(input_ids=ids.to(device), attention_mask=att.to(device)).logits.float()
        logp = torch.log_softmax(logits[:, :-1], dim=-1).gather(-1, ids[:, 1:].to(device).unsqueeze(-1)).squeeze(-1)
        out += [float(logp[i, len(p) - 1 : len(p) + len(r) - 1].sum()) for i, (p, r) in enumerate(chunk)]
    return out


def sampled_kl(model, ref_model, tokenizer, prompts: Sequence[Sequence[dict]], *, samples: int = 2,
               max_new_tokens: int = 32, seed: int = 0, batch_size: int = 32) -> float:
    """A Monte-Carlo estimate of KL(policy || reference) per reply: the mean of ``log p(y) - log p_ref(y)``
    over replies ``y`` sampled from the policy. 0 when the two models are the same.

    Unbiased (so it is >= 0 up to sampling noise): ``y`` is drawn from the policy's own distribution
    (temperature 1, no top-k/top-p, whatever the model's ``generation_config`` sets), and both models score
    exactly the sampled token ids (no decode and re-tokenize, no end-of-turn added to a reply cut at
    ``max_new_tokens``: the estimate is the KL of replies up to ``max_new_tokens`` tokens).
    """
    seed_everything(seed)
    convs = [list(p) for p in prompts for _ in range(samples)]
    was = (model.training, ref_model.training)
    model.eval()
    ref_model.eval()
    try:
        seqs = _sample_ids(model, tokenizer, convs, max_new_tokens=max_new_tokens, batch_size=batch_size)
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        lp = _token_logprobs(model, seqs, pad=pad, batch_size=batch_size)
        lq = _token_logprobs(ref_model, seqs, pad=pad, batch_size=batch_size)
    finally:
        model.train(was[0])
        ref_model.train(was[1])
    return sum(a - b for a, b in zip(lp, lq, strict=True)) / max(len(lp), 1)


def general_skill_accuracy(model, tokenizer, n: int = 60, seed: int = 0, *, model_id: str = "") -> float:
    """General-skill accuracy on held-out probes that fit the model: for the toy (``model_id`` empty or the toy's),
    exact match on ``ftlab.data.general_examples(n, probe=True)``; for a real model, the real-answer probes of
    ``ftlab.probes.probe_sets(model_id)`` scored robustly (normalized, "contains the answer"), as notebooks 00 and 07 do."""
    from ftlab.probes import TOY_KIND, exact_accuracy, probe_kind, probe_sets

    if not model_id or probe_kind(model_id) == TOY_KIND:
        from ftlab.data import general_examples

        acc, _ = exact_accuracy(model, tokenizer, general_examples(n, seed=seed, probe=True), max_new_tokens=12)
        return acc
    ps = probe_sets(model_id, seed=seed)
    from ftlab.generation import chat_generate

    replies = chat_generate(model, tokenizer, [e["messages"] for e in ps.general], max_new_tokens=ps.general_tokens)
    hits = [bool(ps.general_scorer(r, e)) for r, e in zip(replies, ps.general, strict=True)]
    return sum(hits) / max(len(hits), 1)


def dpo_measures(model: Any, tokenizer: Any, safety_pairs: Sequence[dict[str, Any]], support_pairs: Sequence[dict[str, Any]], *,
                 model_id: str = "") -> dict[str, Any]:
    """What notebook 11 measures on held-out pairs, before and after DPO, for one model.

    ``scores``: the safety pairs' summed log-probabilities (the reference of ``reward_margins``);
    ``preference_accuracy``: per token, on the safety pairs; ``support_pair_accuracy``: per token, on the support
    pairs that guard against refusing everything; ``refusal_rate``: greedy replies to the safety pairs' prompts,
    scored by ``ftlab.probes.scorers_for(model_id)``; ``general_accuracy``: ``general_skill_accuracy``.

    Example: ``before = dpo_measures(sft_model, tok, held, guard, model_id="ftlab/toy-llama")["refusal_rate"]``.
    """
    from ftlab.generation import chat_generate
    from ftlab.probes import scorers_for

    is_refused = scorers_for(model_id)[1]
    scores = score_pairs(model, tokenizer, safety_pairs)
    per_token = preference_accuracy(score_pairs(model, tokenizer, safety_pairs, per_token=True))
    support = preference_accuracy(score_pairs(model, tokenizer, support_pairs, per_token=True))
    replies = chat_generate(model, tokenizer, [p["prompt"] for p in safety_pairs])
    return {"scores": scores, "preference_accuracy": per_token, "support_pair_accuracy": support,
            "refusal_rate": sum(map(is_refused, replies)) / max(len(safety_pairs), 1),
            "general_accuracy": general_skill_accuracy(model, tokenizer, model_id=model_id)}


def dpo_report(before: dict[str, Any], after: dict[str, Any], margins: dict[str, float]) -> str:
    """Before → after of two ``dpo_measures``, with the implicit reward margins, as lines to print; it says so
    when DPO moved the pairs towards the chosen reply (``reward_accuracy``) but not far enough to prefer it."""
    lines = [f"preference accuracy (per token) {before['preference_accuracy']:.2f} -> {after['preference_accuracy']:.2f}; "
             f"support pairs {before['support_pair_accuracy']:.2f} -> {after['support_pair_accuracy']:.2f}",
             f"refusal rate on held-out harmful requests {before['refusal_rate']:.2f} -> {after['refusal_rate']:.2f}",
             f"implicit rewards on held-out pairs (vs the SFT reference): { {k: round(v, 3) for k, v in margins.items()} }",
             f"general skills {before['general_accuracy']:.2f} -> {after['general_accuracy']:.2f} (DPO can forget too)"]
    if after["preference_accuracy"] < 0.5 <= margins["reward_accuracy"]:
        lines.append(f"DPO moved {margins['reward_accuracy']:.0%} of the held-out pairs towards the chosen reply relative "
                     "to the SFT reference, but not far enough for the model to prefer the refusal outright: the rejected "
                     "reply is the model's own greedy reply, its likeliest. More DPO (dpo_epochs, dpo_learning_rate, "
                     "n_pairs) moves the absolute preference.")
    return "\n".join(lines)
