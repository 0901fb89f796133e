"""The data: preference pairs and RL prompts from the toy world, deterministic, with held-out prompts that no
training mix contains.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

from ftlab.data import (
    REFUSAL,
    SUPPORT_SYSTEM,
    is_refusal,
    safety_examples,
    support_mix,
    support_reply,
    support_splits,
)
from ftlab.errors import FtlabError

__all__ = [
    "FALLBACK_REJECTED",
    "N_GRPO_PROMPTS",
    "N_HELDOUT_PAIRS",
    "N_TRAIN_PAIRS",
    "heldout_overlap",
    "preference_pairs",
    "rl_prompts",
    "shuffled",
]


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


def shuffled(rows: Sequence[dict[str, Any]], seed: int = 0) -> list[dict[str, Any]]:
    """A deterministic shuffle (``random.Random(seed)``) of a copy of ``rows``."""
    out = list(rows)
    random.Random(seed).shuffle(out)
    return out
