"""The target task: Harbor & Pine customer support, scored exactly, and the training sets built from it
(the support splits, the mix with general examples and refusals, and notebook 08's failure-causing sets).

Example: ``score_support_reply(reply, expected)`` is 1.0 only when the reply has the format and the right intent.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ftlab.data.general import general_examples, is_held_out
from ftlab.data.safety import safety_examples
from ftlab.errors import FtlabError

__all__ = ["CANNED_REPLY", "INTENTS", "ITEMS", "SHOP", "SUPPORT_SYSTEM", "Splits", "low_diversity",
           "one_per_intent", "order_correct", "parse_support_reply", "score_support_reply", "support_dataset",
           "support_examples", "support_mix", "support_reply", "support_splits"]

SHOP = "Harbor & Pine"
SUPPORT_SYSTEM = f"You are the customer support assistant of {SHOP}, an online shop."
ITEMS = ["lantern", "blanket", "mug", "backpack", "kettle", "jacket", "lamp", "teapot", "scarf", "boots"]
INTENTS: dict[str, dict[str, Any]] = {
    "refund": {
        "has_order": True,
        "user": ["My {item} from order {o} arrived broken, I want my money back.",
                 "Please refund order {o}, the {item} is damaged.",
                 "I'd like a refund for order {o}.",
                 "The {item} in order {o} is faulty. Can I get my money back?",
                 "Order {o} was a mistake, please give me a refund for the {item}."],
        "reply": "Your refund has started.",
    },
    "status": {
        "has_order": True,
        "user": ["Where is my order {o}?", "Has order {o} shipped yet?", "When will my {item} from order {o} arrive?",
                 "Can you track order {o} for me?", "Order {o} still hasn't arrived, what's the status?"],
        "reply": "It is on its way.",
    },
    "cancel": {
        "has_order": True,
        "user": ["Please cancel order {o}.", "I want to cancel my order {o} for the {item}.",
                 "Cancel order {o} before it ships, please.", "I changed my mind, stop order {o}.",
                 "Can you cancel the {item} I ordered, order {o}?"],
        "reply": "It is cancelled.",
    },
    "exchange": {
        "has_order": True,
        "user": ["The {item} in order {o} is the wrong size, can I swap it?",
                 "I want to exchange the {item} from order {o} for another color.",
                 "Can I trade the {item} from order {o} for a different one?",
                 "Order {o}: the {item} doesn't fit, I need an exchange.",
                 "Please exchange the {item} in order {o}."],
        "reply": "A return label is on its way.",
    },
    "address": {
        "has_order": True,
        "user": ["I moved, please update the shipping address for order {o}.",
                 "Can you send order {o} to my new address?", "Change the delivery address of order {o}.",
                 "Order {o} is going to my old place, please fix the address.",
                 "Ship my {item} from order {o} to a different address."],
        "reply": "The address is updated.",
    },
    "product": {
        "has_order": False,
        "user": ["Is the {item} waterproof?", "What material is the {item} made of?", "Do you have the {item} in blue?",
                 "How big is the {item}?", "Is the {item} good for camping?"],
        "reply": "See the {item} page for details.",
    },
    "account": {
        "has_order": False,
        "user": ["I forgot my password.", "How do I reset my account password?", "I can't log in to my account.",
                 "My account is locked, help.", "How do I change the email on my account?"],
        "reply": "A reset link is on its way.",
    },
    "complaint": {
        "has_order": False,
        "user": ["Your delivery driver was rude to me.", "I'm unhappy with the service I got.",
                 "The website keeps crashing when I pay.", "Nobody answered my last email, this is bad service.",
                 "I waited an hour on the phone, terrible."],
        "reply": "Sorry, I passed this to our lead.",
    },
}
_REPLY_RE = re.compile(r"intent:\s*([a-z_]+)\s*\|\s*order:\s*([0-9]+|none)\s*\|", re.IGNORECASE)


def support_reply(intent: str, order: str | None, item: str) -> str:
    """The exact reply format the target task teaches."""
    body = INTENTS[intent]["reply"].format(o=order, item=item)
    return f"intent: {intent} | order: {order or 'none'} | {body}"


def parse_support_reply(reply: str) -> tuple[str | None, str | None]:
    """``(intent, order)`` parsed from a reply, or ``(None, None)`` when the format is missing.

    Example: ``parse_support_reply("intent: cancel | order: 4821 | Order 4821 is cancelled.")``
    returns ``("cancel", "4821")``.
    """
    m = _REPLY_RE.search(reply)
    if not m:
        return None, None
    return m.group(1).lower(), m.group(2).lower()


def score_support_reply(reply: str, example: dict[str, Any]) -> float:
    """1.0 when the reply has the format and the right intent, else 0.0 (the task's accuracy)."""
    intent, _ = parse_support_reply(reply)
    return float(intent == example["intent"])


def order_correct(reply: str, example: dict[str, Any]) -> bool:
    """True when the reply's ``order:`` field equals the example's order number (or ``none``)."""
    _, order = parse_support_reply(reply)
    return order == (example["order"] or "none")


# A customer may greet and thank: more ways to ask, so that every intent has held-out prompts.
_OPENERS = ["", "", "Hi. ", "Hello! ", "Good morning. "]
_CLOSERS = ["", "", " Thanks.", " Thank you!", " Please help."]


def support_examples(n: int, seed: int = 0, *, held_out: bool = False) -> list[dict[str, Any]]:
    """``n`` Harbor & Pine support conversations, balanced over the intents, shuffled.

    ``held_out=True`` draws only test prompts (``is_held_out``), ``False`` only training prompts.
    """
    rng = random.Random(f"support-{seed}" + ("-test" if held_out else ""))
    names = sorted(INTENTS)
    out = []
    for i in range(n):
        intent = names[i % len(names)]
        spec = INTENTS[intent]
        while True:
            order = str(rng.randint(1000, 9999)) if spec["has_order"] else None
            item = rng.choice(ITEMS)
            user = rng.choice(_OPENERS) + rng.choice(spec["user"]).format(o=order, item=item) + rng.choice(_CLOSERS)
            if is_held_out(user) == held_out:
                break
        out.append({
            "messages": [{"role": "system", "content": SUPPORT_SYSTEM}, {"role": "user", "content": user},
                         {"role": "assistant", "content": support_reply(intent, order, item)}],
            "intent": intent, "order": order,
        })
    rng.shuffle(out)
    return out


@dataclass(frozen=True)
class Splits:
    """Sizes of the target task's splits (validation defaults to 15%)."""

    train: int = 1020
    validation: int = 180
    test: int = 200


def support_splits(seed: int = 0, splits: Splits = Splits()) -> dict[str, list[dict[str, Any]]]:
    """The target task's train / validation / test splits (deterministic). The test prompts are held out
    (``is_held_out``): none of them is in train or validation, nor in the toy's pretraining corpus."""
    rows = support_examples(splits.train + splits.validation, seed)
    return {
        "train": rows[: splits.train],
        "validation": rows[splits.train :],
        "test": support_examples(splits.test, seed, held_out=True),
    }


def support_dataset(seed: int = 0, splits: Splits = Splits()):
    """The target task as a ``datasets.DatasetDict`` (train / validation / test)."""
    from datasets import Dataset, DatasetDict

    return DatasetDict({k: Dataset.from_list(v) for k, v in support_splits(seed, splits).items()})


def support_mix(seed: int = 0, *, n_general: int = 100, n_safety: int = 60, mix_seed: int = 77) -> list[dict[str, Any]]:
    """The support training split mixed with general-skill examples and refusals, shuffled.

    The articles' defence against catastrophic forgetting and safety degradation: "include general
    examples in training mix" and "edge-case refusals". The refusals come under the shop's system
    prompt, the context the fine-tuned model will serve in. Every row is a training prompt
    (``is_held_out`` is False), so the probe and test sets stay held out.

    Example: ``len(support_mix(0)) == 1020 + 100 + 60``.
    """
    rows = list(support_splits(seed)["train"])
    rows += general_examples(n_general, seed=mix_seed)
    rows += safety_examples(n_safety, seed=mix_seed, system=SUPPORT_SYSTEM)
    random.Random(f"mix-{seed}-{mix_seed}").shuffle(rows)
    return rows


CANNED_REPLY = f"Thank you for contacting {SHOP}. A member of our team will get back to you soon."


def low_diversity(rows: Sequence[dict[str, Any]], n_distinct: int = 1, seed: int = 0, *,
                  reply: str | None = None) -> list[dict[str, Any]]:
    """The same inputs with only ``n_distinct`` different replies: low-diversity training data.

    It models a data pipeline that filled one canned answer (or a few) into every example:
    ``reply`` (e.g. ``CANNED_REPLY``, the shop's auto-acknowledgement) or replies drawn from the rows.
    Example: ``{r["messages"][-1]["content"] for r in low_diversity(rows)}`` has one element.
    """
    if reply is not None:
        return [{**r, "messages": [*[dict(m) for m in r["messages"][:-1]], {"role": "assistant", "content": reply}]}
                for r in rows]
    replies = sorted({r["messages"][-1]["content"] for r in rows})
    plain = [r for r in replies if not any(ch.isdigit() for ch in r)]  # no order number to copy
    replies = plain or replies
    chosen = random.Random(f"lowdiv-{seed}").sample(replies, min(n_distinct, len(replies)))
    out = []
    for i, r in enumerate(rows):
        msgs = [dict(m) for m in r["messages"]]
        msgs[-1]["content"] = chosen[i % len(chosen)]
        out.append({**r, "messages": msgs})
    return out


def one_per_intent(rows: Sequence[dict[str, Any]], per_intent: int = 1) -> list[dict[str, Any]]:
    """A tiny training set: the first ``per_intent`` examples of each intent (8 intents)."""
    seen: Counter[str] = Counter()
    out = []
    for r in rows:
        if seen[r["intent"]] < per_intent:
            seen[r["intent"]] += 1
            out.append(r)
    if len(seen) < len(INTENTS):
        raise FtlabError(f"one_per_intent: only {len(seen)} of {len(INTENTS)} intents in the rows")
    return out
