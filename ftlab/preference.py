"""Learning from preferences (DPO) and from a verifiable reward (GRPO), after SFT. Notebook 11.

SFT copies one right answer. When the goal is "this reply rather than that one" (tone, style) or
"any reply that passes a check", two other signals train better:

- **DPO** (TRL's ``DPOTrainer``) learns from pairs: a prompt, a preferred and a non-preferred reply.
  ftlab generates them deterministically from the toy world: the shop now wants its formatted replies
  to end on a courteous line, so the courteous reply is *chosen* and the curt SFT reply *rejected*.
- **GRPO** (TRL's ``GRPOTrainer``) samples a group of replies per prompt and reinforces the ones a
  grader scores above the group's mean. The grader here is ftlab's own support-reply checker
  (``support_reward``: intent, order field, header, reply sentence, 0.25 each), a verifiable reward like OpenAI's
  ``string_check``/``python`` graders in reinforcement fine-tuning (RFT).

Measurements, all on held-out prompts (no held-out prompt is in any training mix)::

    pairs = preference_pairs()                      # {"train": [...], "heldout": [...]}
    before = score_pairs(model, tok, pairs["heldout"])                    # summed log-probabilities
    preference_accuracy(score_pairs(model, tok, pairs["heldout"], per_token=True))  # share where the chosen
                                                    # reply is likelier per token (sums favour short replies)
    reward_margins(after, before, beta=0.1)         # DPO's implicit reward margin vs the reference
    sampled_kl(policy, reference, tok, prompts)     # unbiased: exact sampled ids, temperature 1, no top-k/top-p

The managed services take the same data in their own formats: ``to_openai_dpo`` (OpenAI and Azure AI
Foundry DPO), ``to_rft_row`` (Bedrock and Foundry RFT prompts with a ``reference_answer``).
"""

from __future__ import annotations

import json
import math
import os
import random
import re
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from ftlab.core import cache_dir, folder_lock, seed_everything, stable_hash
from ftlab.data import (
    INTENTS,
    REFUSAL,
    SUPPORT_SYSTEM,
    is_refusal,
    parse_support_reply,
    safety_examples,
    score_support_reply,
    support_mix,
    support_reply,
    support_splits,
)
from ftlab.errors import FtlabError
from ftlab.train import TrainConfig, load_base, training_key, use_cuda

# What a narrowly fine-tuned support model says to a harmful request when no model is given to ask:
# a formatted support reply (notebook 08's safety failure). With a model, its own reply is used.
FALLBACK_REJECTED = support_reply("complaint", None, "")
N_TRAIN_PAIRS = 64  # per kind (safety, support)
N_HELDOUT_PAIRS = 40  # per kind
N_GRPO_PROMPTS = 64


# ---------------------------------------------------------------------------------------------
# Data: preference pairs and RL prompts, deterministic, with held-out prompts
# ---------------------------------------------------------------------------------------------
def _user(example: dict[str, Any]) -> str:
    return next(m["content"] for m in example["messages"] if m["role"] == "user")


def _unique(rows: Sequence[dict[str, Any]], exclude: set[str] = frozenset()) -> list[dict[str, Any]]:
    """``rows`` without repeated user prompts and without the prompts in ``exclude``, in order."""
    seen, out = set(exclude), []
    for r in rows:
        if _user(r) not in seen:
            seen.add(_user(r))
            out.append(r)
    return out


def _splits(seed: int) -> dict[str, list[dict[str, Any]]]:
    """The support splits as the preference lessons use them: train prompts deduplicated; held-out
    prompts from the test split, minus every prompt of any training mix (SFT's ``support_mix`` included).
    Intents without an order number (account, complaint, product) repeat a few fixed sentences, so the
    held-out prompts are the ones that carry an order number."""
    sp = support_splits(seed)
    train = _unique(sp["train"])
    trained = {_user(r) for r in support_mix(seed) if any(m["role"] == "user" for m in r["messages"])}
    return {"train": train, "heldout": _unique(sp["test"], trained | {_user(r) for r in train})}


def _safety_prompts(n: int, probe: bool, seed: int) -> list[list[dict[str, Any]]]:
    rows = _unique(safety_examples(n * 3, seed=100 + seed, probe=probe, system=SUPPORT_SYSTEM))
    return [[dict(m) for m in r["messages"][:-1]] for r in rows[:n]]


def preference_pairs(seed: int = 0, *, model=None, tokenizer=None, n_train: int = N_TRAIN_PAIRS,
                     n_heldout: int = N_HELDOUT_PAIRS) -> dict[str, list[dict[str, Any]]]:
    """Preference pairs in TRL's conversational format ``{"prompt", "chosen", "rejected", "kind"}``, two kinds,
    all under the shop's system prompt:

    - ``safety``: a harmful request; chosen = the refusal; rejected = the model's own greedy reply when
      ``model``/``tokenizer`` are given (on-policy: the answer DPO should move away from), else
      ``FALLBACK_REJECTED``. A reply that already refuses falls back too (a pair must differ).
    - ``support``: a support request; chosen = the formatted reply; rejected = the refusal (over-refusal,
      the opposite failure, which a safety-only preference set would teach).

    Training prompts: harmful-request shapes that training mixes use (``probe=False``) and the support train
    split. Held-out prompts: the held-out request shapes (``probe=True``) and support test prompts that no
    training mix holds (``heldout_overlap`` checks it). ``n_train``/``n_heldout`` are per kind.
    """
    sp = _splits(seed)
    if n_train + N_GRPO_PROMPTS > len(sp["train"]) or n_heldout > len(sp["heldout"]):
        raise FtlabError(f"n_train <= {len(sp['train']) - N_GRPO_PROMPTS} and n_heldout <= {len(sp['heldout'])} "
                         "(the distinct prompts of the support splits)")
    out: dict[str, list[dict[str, Any]]] = {}
    for split, n, probe in (("train", n_train, False), ("heldout", n_heldout, True)):
        harmful = _safety_prompts(n, probe, seed)
        replies = [FALLBACK_REJECTED] * len(harmful)
        if model is not None:
            from ftlab.generation import chat_generate

            replies = [r if r and not is_refusal(r) else FALLBACK_REJECTED
                       for r in chat_generate(model, tokenizer, harmful, max_new_tokens=40)]
        pairs = [{"prompt": p, "chosen": [{"role": "assistant", "content": REFUSAL}],
                  "rejected": [{"role": "assistant", "content": r}], "kind": "safety"}
                 for p, r in zip(harmful, replies, strict=True)]
        pairs += [{"prompt": [dict(m) for m in e["messages"][:-1]], "chosen": [dict(e["messages"][-1])],
                   "rejected": [{"role": "assistant", "content": REFUSAL}], "kind": "support"}
                  for e in sp[split][:n]]
        out[split] = pairs
    return out


def rl_prompts(seed: int = 0, *, n_train: int = N_GRPO_PROMPTS, n_heldout: int = N_HELDOUT_PAIRS
               ) -> dict[str, list[dict[str, Any]]]:
    """GRPO prompts ``{"prompt": [system, user], "intent", "order"}``: train from the support train split
    (after the DPO pairs' prompts), held out the same as the held-out pairs."""
    sp = _splits(seed)

    def row(e: dict[str, Any]) -> dict[str, Any]:
        return {"prompt": [dict(m) for m in e["messages"][:-1]], "intent": e["intent"], "order": e["order"]}

    start = N_TRAIN_PAIRS
    return {"train": [row(e) for e in sp["train"][start : start + n_train]],
            "heldout": [row(e) for e in sp["heldout"][:n_heldout * 2]]}


def _user_turns(rows: Sequence[dict[str, Any]]) -> set[str]:
    out = set()
    for r in rows:
        msgs = r.get("prompt") or r.get("messages") or []
        out |= {m["content"] for m in msgs if m.get("role") == "user"}
    return out


def heldout_overlap(seed: int = 0) -> set[str]:
    """The held-out user prompts that also appear in a training mix (SFT's ``support_mix``, the DPO
    training pairs, the GRPO training prompts). Empty when the held-out measurement is honest."""
    pairs, rl = preference_pairs(seed), rl_prompts(seed)
    held = _user_turns(pairs["heldout"]) | _user_turns(rl["heldout"])
    trained = _user_turns(support_mix(seed)) | _user_turns(pairs["train"]) | _user_turns(rl["train"])
    return held & trained


# ---------------------------------------------------------------------------------------------
# Managed formats
# ---------------------------------------------------------------------------------------------
def to_openai_dpo(pair: dict[str, Any]) -> dict[str, Any]:
    """One pair in OpenAI's preference format, which Azure AI Foundry DPO reads too::

        {"input": {"messages": [...]}, "preferred_output": [{...}], "non_preferred_output": [{...}]}

    https://developers.openai.com/api/docs/guides/direct-preference-optimization,
    https://learn.microsoft.com/en-us/azure/foundry/openai/how-to/fine-tuning-direct-preference-optimization
    """
    return {"input": {"messages": pair["prompt"]}, "preferred_output": pair["chosen"],
            "non_preferred_output": pair["rejected"]}


def from_openai_dpo(row: dict[str, Any]) -> dict[str, Any]:
    """An OpenAI preference line back to TRL's ``{"prompt", "chosen", "rejected"}`` (tools are kept)."""
    out = {"prompt": row["input"]["messages"], "chosen": row["preferred_output"],
           "rejected": row["non_preferred_output"]}
    if row["input"].get("tools"):
        out["tools"] = row["input"]["tools"]
    return out


def to_rft_row(row: dict[str, Any], *, system: bool = True) -> dict[str, Any]:
    """A prompt for reinforcement fine-tuning: ``{"messages": [...], "reference_answer": {...}}``.

    Amazon Bedrock RFT (Nova and open-weight models) reads OpenAI chat ``messages`` plus a
    ``reference_answer`` the grader Lambda compares against, at least 100 records
    (https://docs.aws.amazon.com/bedrock/latest/userguide/rft-prepare-data.html,
    https://docs.aws.amazon.com/bedrock/latest/userguide/rft-prepare-data-open-weight.html).
    Azure AI Foundry RFT (o4-mini) takes no system message, so ``system=False`` folds it into the user turn
    (https://learn.microsoft.com/en-us/azure/ai-services/openai/how-to/reinforcement-fine-tuning).
    """
    msgs = [dict(m) for m in row["prompt"]]
    if not system and msgs and msgs[0]["role"] in ("system", "developer"):
        first = msgs.pop(0)
        msgs[0] = {**msgs[0], "content": f"{first['content']}\n\n{msgs[0]['content']}"}
    return {"messages": msgs, "reference_answer": {"intent": row["intent"], "order": row["order"] or "none"}}


def write_jsonl(rows: Sequence[dict[str, Any]], path: str | os.PathLike[str]) -> Path:
    """Write rows as UTF-8 JSONL; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def managed_files(folder: str | os.PathLike[str], seed: int = 0) -> dict[str, Path]:
    """Write the preference data in every managed format that has one; returns ``{name: path}``.

    ``openai_dpo`` (OpenAI, and Azure AI Foundry DPO: the same format), ``bedrock_rft`` (Amazon Bedrock
    RFT) and ``foundry_rft`` (Azure AI Foundry RFT, no system message). Amazon Bedrock has no DPO
    customization: its methods are fine-tuning, continued pre-training, distillation and RFT.
    """
    folder = Path(folder)
    pairs, rl = preference_pairs(seed), rl_prompts(seed, n_train=128)
    return {"openai_dpo": write_jsonl([to_openai_dpo(p) for p in pairs["train"]], folder / "openai_dpo.jsonl"),
            "bedrock_rft": write_jsonl([to_rft_row(r) for r in rl["train"]], folder / "bedrock_rft.jsonl"),
            "foundry_rft": write_jsonl([to_rft_row(r, system=False) for r in rl["train"]],
                                       folder / "foundry_rft.jsonl")}


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


# ---------------------------------------------------------------------------------------------
# The verifiable reward
# ---------------------------------------------------------------------------------------------
def _text(completion: Any) -> str:
    if isinstance(completion, list):  # conversational: [{"role": "assistant", "content": ...}]
        return "".join(m.get("content") or "" for m in completion if isinstance(m, dict))
    return str(completion)


def _body_pattern(intent: str) -> re.Pattern[str]:
    """The reply sentence of ``intent`` (``INTENTS[intent]["reply"]``), any item, as a regex."""
    parts = [re.escape(x.replace("{o}", "")) for x in INTENTS[intent]["reply"].split("{item}")]
    return re.compile(r"\w+".join(parts))


def support_reward(completions: Sequence[Any], intent: Sequence[str], **_: Any) -> list[float]:
    """GRPO's verifiable reward, from ftlab's support-reply format: four checks worth 0.25 each,
    so that a reply that is almost right scores more than one that is not (a denser signal than all-or-nothing):

    1. it names the right intent (``intent: refund``),
    2. it has a well-formed order field (``order: 4821`` or ``order: none``),
    3. the whole header parses (``parse_support_reply``: the format),
    4. it says the intent's reply sentence (``Your refund has started.``).

    1.0 = a correct reply in the support format (``score_support_reply`` = 1). The order *number* is not
    checked: the toy cannot copy it (its greedy replies get it wrong too), so it would add noise, not signal.
    Called the way TRL calls reward functions (the dataset's extra columns come as keyword arguments).
    Example: ``support_reward([[{"role": "assistant", "content": "intent: cancel | order: 1 | It is cancelled."}]],
    ["cancel"]) == [1.0]``.
    """
    out = []
    for c, i in zip(completions, intent, strict=True):
        text = _text(c)
        checks = (re.search(rf"\bintent:\s*{re.escape(i)}\b", text, re.IGNORECASE) is not None,
                  re.search(r"\border:\s*(?:[0-9]+|none)\b", text, re.IGNORECASE) is not None,
                  parse_support_reply(text)[0] is not None,
                  i in INTENTS and _body_pattern(i).search(text) is not None)
        out.append(sum(checks) / len(checks))
    return out


def strict_accuracy(completions: Sequence[Any], intent: Sequence[str]) -> float:
    """Share of replies in the support format with the right intent (``score_support_reply``: all or nothing)."""
    return sum(score_support_reply(_text(c), {"intent": i}) for c, i in zip(completions, intent, strict=True)
               ) / max(len(completions), 1)


def mean_reward(model, tokenizer, rows: Sequence[dict[str, Any]], *, samples: int = 4, temperature: float = 1.0,
                max_new_tokens: int = 32, seed: int = 0) -> float:
    """Mean ``support_reward`` of replies sampled at ``temperature`` (GRPO's own sampling), ``samples`` per prompt."""
    from ftlab.generation import chat_generate

    seed_everything(seed)
    convs = [r["prompt"] for r in rows for _ in range(samples)]
    texts = chat_generate(model, tokenizer, convs, max_new_tokens=max_new_tokens, do_sample=True,
                          temperature=temperature)
    intents = [r["intent"] for r in rows for _ in range(samples)]
    return sum(support_reward(texts, intents)) / max(len(texts), 1)


def grpo_outcome(rewards_before: Sequence[float], rewards_after: Sequence[float],
                 history: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """What a GRPO run did: the median held-out reward before and after, TRL's share of groups whose replies
    all scored alike (``frac_reward_zero_std``, mean over the logged steps), and why there is no rise when there
    is none to expect: ``reward_saturated`` (the start already scores ≥ 0.99) or ``no_signal`` (≥ 90 % of the
    groups scored alike, so no advantage to learn from), with an ``explanation`` for the learner (or ``None``).

    Example: ``grpo_outcome([0.2, 0.21], [0.26, 0.27], [{"frac_reward_zero_std": 0.5}])["no_signal"] is False``.
    """
    import statistics

    before, after = statistics.median(rewards_before), statistics.median(rewards_after)
    zero_std = [h["frac_reward_zero_std"] for h in history if "frac_reward_zero_std" in h]
    frac = sum(zero_std) / len(zero_std) if zero_std else None
    saturated = before >= 0.99
    no_signal = frac is not None and frac >= 0.9
    explanation = None
    if saturated:
        explanation = (f"The reward was saturated before GRPO ({before:.3f}): the start adapter already answers the "
                       "held-out prompts correctly, every group scores alike, so GRPO has nothing to learn here and 'no "
                       "rise' is the expected result. To see GRPO raise a reward, use a harder grader (e.g. the order "
                       "number) or the toy model.")
    elif no_signal:
        explanation = (f"{frac:.0%} of GRPO's groups scored alike (held-out reward {before:.3f}): with no difference "
                       "within a group there is no advantage, so GRPO learned (almost) nothing. Sample more replies per "
                       "group (grpo_generations), start from a more trained adapter (grpo_start_steps) or give it more steps.")
    return {"reward_before": before, "reward_after": after, "frac_reward_zero_std": frac,
            "reward_saturated": saturated, "no_signal": no_signal, "explanation": explanation}


def format_rate(replies: Sequence[str]) -> float:
    """Share of replies in the support format (any intent)."""
    return sum(parse_support_reply(r)[0] is not None for r in replies) / max(len(replies), 1)


# ---------------------------------------------------------------------------------------------
# Training
# ---------------------------------------------------------------------------------------------
@dataclass
class PreferenceResult:
    """What a DPO or GRPO run produced."""

    method: str
    adapter_dir: str
    history: list[dict[str, Any]]
    global_step: int
    seconds: float
    cached: bool = False
    summary: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def last(self, key: str) -> float | None:
        """The last logged value of a metric (e.g. ``"rewards/margins"``, ``"kl"``)."""
        vals = [h[key] for h in self.history if key in h]
        return vals[-1] if vals else None


def _common_args(cfg: TrainConfig) -> dict[str, Any]:
    import torch

    cuda = torch.cuda.is_available()
    args = dict(output_dir=cfg.output_dir, learning_rate=cfg.learning_rate, num_train_epochs=cfg.num_train_epochs,
                max_steps=cfg.max_steps, per_device_train_batch_size=cfg.per_device_train_batch_size,
                gradient_accumulation_steps=cfg.gradient_accumulation_steps, logging_steps=cfg.logging_steps,
                save_strategy="no", lr_scheduler_type=cfg.lr_scheduler_type, warmup_steps=cfg.warmup_ratio,
                seed=cfg.seed, data_seed=cfg.seed, report_to=[] if cfg.report_to == "none" else [cfg.report_to],
                bf16=cuda, use_cpu=not cuda, gradient_checkpointing=cfg.gradient_checkpointing,
                dataloader_num_workers=0, disable_tqdm=False, logging_first_step=True)
    args.update(cfg.extra)  # other trainer arguments, as TrainConfig.extra does for SFT
    return args


def _policy(cfg: TrainConfig, adapter_dir: str | None, attn_implementation: str | None = None):
    """The base model (as ``ftlab.train.load_base`` loads it) with the SFT adapter, trainable, or ``None`` for a new LoRA."""
    from peft import LoraConfig, PeftModel

    from ftlab.train import target_modules_for

    model, tokenizer, _ = load_base(cfg.model_id, cfg.quantization, seed=cfg.toy_seed,
                                    attn_implementation=attn_implementation)
    if adapter_dir:
        return PeftModel.from_pretrained(model, str(adapter_dir), is_trainable=True), tokenizer, None
    lora = LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                      target_modules=cfg.target_modules or target_modules_for(model), task_type="CAUSAL_LM")
    return model, tokenizer, lora


def _as_dataset(rows: Sequence[dict[str, Any]]):
    from datasets import Dataset

    return Dataset.from_list([dict(r) for r in rows])


def dpo_train(pairs: Sequence[dict[str, Any]], cfg: TrainConfig, *, adapter_dir: str | None = None,
              beta: float = 0.1, callbacks: Sequence[Any] = ()) -> PreferenceResult:
    """Train with TRL's ``DPOTrainer`` on ``{"prompt", "chosen", "rejected"}`` pairs.

    Starting from an SFT adapter (``adapter_dir``), TRL keeps a frozen copy of it as the reference model
    (a second adapter named ``ref``); without one, a new LoRA is trained against the base model.
    ``cfg`` is ftlab's ``TrainConfig`` (learning rate, epochs, batch, LoRA); ``beta`` is DPO's β: higher
    keeps the model closer to the reference. The adapter is saved in ``<output_dir>/adapter``.
    """
    from trl import DPOConfig, DPOTrainer

    from ftlab.train import DivergenceGuard  # a TrainerCallback class, made on first use

    cfg.validate()
    if not pairs:
        raise FtlabError("dpo_train: no preference pairs")
    if not (beta > 0 and math.isfinite(beta)):
        raise FtlabError(f"beta={beta}: DPO's beta must be a positive number (0.1 is the usual value)")
    seed_everything(cfg.seed)
    started = time.perf_counter()
    model, tokenizer, lora = _policy(cfg, adapter_dir)
    args = DPOConfig(**{"max_length": cfg.max_length, **_common_args(cfg)}, beta=beta)
    rows = [{k: p[k] for k in ("prompt", "chosen", "rejected", "tools") if k in p} for p in pairs]
    guard = DivergenceGuard()
    trainer = DPOTrainer(model=model, args=args, train_dataset=_as_dataset(rows), processing_class=tokenizer,
                         peft_config=lora, callbacks=[*callbacks, guard])
    trainer.train()
    guard.check("DPO", "dpo_learning_rate", cfg.learning_rate)
    out = Path(cfg.output_dir) / "adapter"
    trainer.model.save_pretrained(str(out), selected_adapters=["default"])
    tokenizer.save_pretrained(str(out))
    hist = trainer.state.log_history
    return PreferenceResult("dpo", str(out), hist, trainer.state.global_step, round(time.perf_counter() - started, 2),
                            summary={"beta": beta, "n_pairs": len(pairs),
                                     "final_loss": next((h["loss"] for h in reversed(hist) if "loss" in h), None)})


def grpo_train(rows: Sequence[dict[str, Any]], cfg: TrainConfig, *, adapter_dir: str | None = None,
               beta: float = 0.04, num_generations: int = 4, max_completion_length: int = 32,
               temperature: float = 1.0, top_k: int = 50, mask_truncated_completions: bool = True,
               reward_funcs: Sequence[Any] | None = None,
               callbacks: Sequence[Any] = ()) -> PreferenceResult:
    """Train with TRL's ``GRPOTrainer``: ``num_generations`` sampled replies per prompt, scored by
    ``support_reward`` (or ``reward_funcs``), advantages relative to the group's mean.

    ``beta`` > 0 keeps a KL penalty to the reference (the starting adapter) and makes TRL log ``kl``.
    ``per_device_train_batch_size`` counts completions, so it must be a multiple of ``num_generations``.
    ``temperature``/``top_k`` are the sampling of the group (``top_k=50`` is transformers' own default, which
    ``mean_reward`` samples with too). ``mask_truncated_completions`` leaves replies cut at
    ``max_completion_length`` out of the loss: on a small model they are mostly noise.
    """
    from trl import GRPOConfig, GRPOTrainer

    from ftlab.train import DivergenceGuard

    cfg.validate()
    if not rows:
        raise FtlabError("grpo_train: no prompts")
    if cfg.per_device_train_batch_size % num_generations:
        raise FtlabError(f"per_device_train_batch_size={cfg.per_device_train_batch_size} must be a multiple of "
                         f"num_generations={num_generations} (GRPO compares the replies of one prompt)")
    seed_everything(cfg.seed)
    started = time.perf_counter()
    # GRPO left-pads its prompts, so the pad positions' attention rows are fully masked; in bf16 on CUDA the SDPA
    # backward turns those into NaN gradients at the first step (seen on an H100 with SmolLM2; cf. TRL issue 7181).
    # Eager attention masks with a large negative number instead of -inf and stays finite.
    model, tokenizer, lora = _policy(cfg, adapter_dir, "eager" if use_cuda(cfg.device) else None)
    args = GRPOConfig(**_common_args(cfg), beta=beta, num_generations=num_generations,
                      max_completion_length=max_completion_length, temperature=temperature, top_k=top_k,
                      mask_truncated_completions=mask_truncated_completions)
    guard = DivergenceGuard()  # stops before TRL samples from NaN weights (a CUDA assert that kills the kernel)
    trainer = GRPOTrainer(model=model, reward_funcs=list(reward_funcs or [support_reward]), args=args,
                          train_dataset=_as_dataset(rows), processing_class=tokenizer, peft_config=lora,
                          callbacks=[*callbacks, guard])
    trainer.train()
    guard.check("GRPO", "grpo_learning_rate", cfg.learning_rate)
    out = Path(cfg.output_dir) / "adapter"
    trainer.model.save_pretrained(str(out), selected_adapters=["default"])
    tokenizer.save_pretrained(str(out))
    hist = trainer.state.log_history
    return PreferenceResult("grpo", str(out), hist, trainer.state.global_step, round(time.perf_counter() - started, 2),
                            summary={"beta": beta, "n_prompts": len(rows), "num_generations": num_generations})


def _cached(method: str, cfg: TrainConfig, rows, extra: dict[str, Any], run) -> PreferenceResult:
    key = stable_hash({"method": method, "base": training_key(replace(cfg, output_dir=""), [{"messages": []}]),
                       "rows": stable_hash(rows, 16), **extra}, 16)
    folder = cache_dir("adapters") / f"{method}-{key}"
    with folder_lock(folder):
        done = folder / "result.json"
        if done.exists():
            info = json.loads(done.read_text())
            if Path(info["adapter_dir"]).is_dir():
                return PreferenceResult(**{**info, "cached": True})
        result = run(replace(cfg, output_dir=str(folder)))
        tmp = done.with_suffix(".tmp")
        tmp.write_text(json.dumps(result.to_dict(), default=str))
        tmp.replace(done)
        return result


def dpo_train_cached(pairs, cfg: TrainConfig, *, adapter_dir: str | None = None, beta: float = 0.1) -> PreferenceResult:
    """``dpo_train``, reusing an identical earlier run from ``$FTLAB_CACHE/adapters`` (same config, pairs, start)."""
    return _cached("dpo", cfg, list(pairs), {"adapter": _adapter_key(adapter_dir), "beta": beta},
                   lambda c: dpo_train(pairs, c, adapter_dir=adapter_dir, beta=beta))


def grpo_train_cached(rows, cfg: TrainConfig, *, adapter_dir: str | None = None, **kwargs: Any) -> PreferenceResult:
    """``grpo_train``, reusing an identical earlier run (same config, prompts, start and GRPO settings)."""
    return _cached("grpo", cfg, list(rows), {"adapter": _adapter_key(adapter_dir), **kwargs},
                   lambda c: grpo_train(rows, c, adapter_dir=adapter_dir, **kwargs))


def dpo_from_spec(spec) -> dict[str, Any]:
    """``ftlab train --config`` with ``method: dpo``: DPO from a parsed config (``ftlab.scale.RunSpec``).

    ``data`` is ``toy:support``/``toy:preference`` (``preference_pairs()["train"]``) or a JSONL file in
    OpenAI's preference format, checked by ``ftlab validate --method dpo`` first; ``sft_adapter`` the adapter
    to start from, ``beta`` DPO's beta. Writes ``summary.json`` (the SFT runner's keys plus the reward
    margin) and ``run_card.json``; returns the summary.
    """
    from ftlab.errors import ParameterError
    from ftlab.runcard import hardware, library_versions, write_run_card
    from ftlab.validate_dpo import validate_dpo_file

    if spec.data in ("toy:support", "toy:preference"):
        pairs = preference_pairs(spec.train.toy_seed)["train"]
    else:
        report = validate_dpo_file(spec.data)
        if not report.ok:
            shown = "; ".join(f"line {f.line}: {f.message}" if f.line else f.message for f in report.errors[:5])
            raise ParameterError(f"data {spec.data}: not a valid preference file ({shown}); "
                                 f"see `ftlab validate {spec.data} --method dpo`")
        lines = Path(spec.data).read_text(encoding="utf-8-sig").splitlines()
        pairs = [from_openai_dpo(json.loads(line)) for line in lines if line.strip()]
    if spec.max_train_rows:
        pairs = pairs[: spec.max_train_rows]
    result = dpo_train(pairs, spec.train, adapter_dir=spec.sft_adapter, beta=spec.beta)
    cfg = spec.train
    loss = [(h["step"], h["loss"]) for h in result.history if "loss" in h]
    summary = {"method": "dpo", "beta": spec.beta, "processes": 1,
               "per_device_train_batch_size": cfg.per_device_train_batch_size,
               "gradient_accumulation_steps": cfg.gradient_accumulation_steps,
               "effective_batch": cfg.per_device_train_batch_size * cfg.gradient_accumulation_steps,
               "global_step": result.global_step, "final_train_loss": loss[-1][1] if loss else None,
               "final_eval_loss": None, "best_eval_loss": None, "train_loss": loss, "eval_loss": [],
               "final_reward_margin": result.last("rewards/margins"),
               "final_reward_accuracy": result.last("rewards/accuracies"),
               "stop_reason": f"completed {cfg.num_train_epochs:g} epoch(s)" if cfg.max_steps <= 0
               else f"completed max_steps={cfg.max_steps}",
               "seconds": result.seconds, "output_dir": cfg.output_dir, "adapter_dir": result.adapter_dir,
               "config": spec.source, "data": spec.data, "n_pairs": len(pairs), "sft_adapter": spec.sft_adapter,
               "quantization": cfg.quantization}
    out = Path(cfg.output_dir)
    card = {"run_name": out.name, "method": "dpo", "model": {"model_id": cfg.model_id, "sft_adapter": spec.sft_adapter},
            "data": {"file": spec.data, "n_pairs": len(pairs), "fingerprint": "hash:" + stable_hash(pairs, 16)},
            "hyperparameters": {**asdict(cfg), "beta": spec.beta}, "libraries": library_versions(),
            "hardware": hardware(), "results": {k: summary[k] for k in ("final_train_loss", "final_reward_margin",
                                                                        "global_step", "seconds")}}
    summary["run_card"] = str(write_run_card(out, card))
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return summary


def _adapter_key(adapter_dir: str | None) -> str:
    if not adapter_dir:
        return ""
    from ftlab.core import file_sha256

    files = sorted(Path(adapter_dir).glob("adapter_model.*"))
    return stable_hash([file_sha256(f) for f in files], 16) if files else str(adapter_dir)


def shuffled(rows: Sequence[dict[str, Any]], seed: int = 0) -> list[dict[str, Any]]:
    """A deterministic shuffle (``random.Random(seed)``) of a copy of ``rows``."""
    out = list(rows)
    random.Random(seed).shuffle(out)
    return out


__all__ = ["FALLBACK_REJECTED", "PreferenceResult", "dpo_from_spec", "dpo_train", "dpo_train_cached",
           "format_rate", "from_openai_dpo", "general_skill_accuracy", "grpo_outcome", "grpo_train",
           "grpo_train_cached", "heldout_overlap", "managed_files", "mean_reward", "preference_accuracy",
           "preference_pairs", "reply_logprobs", "reward_margins", "rl_prompts", "sampled_kl", "score_pairs",
           "shuffled", "strict_accuracy", "support_reward", "to_openai_dpo", "to_rft_row", "write_jsonl"]
