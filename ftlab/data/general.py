"""General skills (reverse, uppercase, add, repeat, fields, capitals): exactly measurable, used to pretrain the
toy model and to detect forgetting. ``is_held_out`` splits every prompt into training and test by a fixed hash.

Example: ``general_examples(2, probe=True)[0]["answer"]`` is the exact expected reply.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence
from typing import Any

__all__ = ["CAPITALS", "GENERAL_SKILLS", "GENERAL_SYSTEM", "HELD_OUT_SHARE", "WORDS", "general_examples",
           "is_held_out"]

GENERAL_SYSTEM = "You are a helpful assistant."

WORDS = [
    "apple", "river", "stone", "cloud", "tiger", "lemon", "piano", "candle", "forest", "silver",
    "garden", "rocket", "window", "bridge", "orange", "pencil", "winter", "castle", "mirror", "dragon",
    "ocean", "planet", "violet", "hammer", "basket", "thunder", "falcon", "meadow", "copper", "lantern",
    "harbor", "maple", "pepper", "saddle", "tunnel", "velvet", "walnut", "zebra", "anchor", "breeze",
]
# Fictional countries: lookups the model can only know from pretraining.
CAPITALS = {
    "Norvia": "Kelmar", "Ostria": "Vandel", "Quellan": "Brisk", "Tamber": "Ollin", "Zephora": "Dunmere",
    "Calvoria": "Pellham", "Rusk": "Amberly", "Sorrel": "Tynes", "Varda": "Morrow", "Elbany": "Corve",
    "Frisia": "Holt", "Galen": "Ashby", "Hestia": "Linden", "Iveria": "Marsh", "Jorund": "Sable",
    "Kavos": "Fenwick", "Lumen": "Greer", "Mardon": "Wexley", "Nyssa": "Calder", "Perrin": "Dorne",
}

_REVERSE_T = ["Reverse the words: {w}", "Say these words backwards: {w}", "Put in reverse order: {w}",
              "Reverse this list: {w}"]
_UPPER_T = ["Uppercase: {w}", "Write in capital letters: {w}", "Make this uppercase: {w}", "Capitalize fully: {w}"]
_ADD_T = ["What is {a} + {b}?", "Add {a} and {b}.", "Compute {a} plus {b}.", "Sum of {a} and {b}?"]
_REPEAT_T = ["Repeat the sentence: {s}", "Say this back to me: {s}", "Copy exactly: {s}", "Echo the text: {s}"]
_FIELDS_T = ["Format as fields: {kv}", "Write these as key-value fields: {kv}", "Turn into fields: {kv}",
             "Fields please: {kv}"]
_FIELD_KEYS = ["name", "city", "color", "item", "size", "status", "day"]
_FIELD_VALUES = {"name": [p.split()[0] for p in ["Maria Lopez", "John Carter", "Aiko Tanaka", "Omar Haddad", "Lena Fischer"]],
                 "city": ["Kelmar", "Vandel", "Brisk", "Ollin", "Holt"], "color": ["red", "blue", "green", "black"],
                 "item": ["lamp", "mug", "scarf", "kettle", "boots"], "size": ["small", "medium", "large"],
                 "status": ["open", "closed", "pending", "none"], "day": ["monday", "friday", "sunday"]}
_SENTENCE_BITS = ["the parcel is on its way", "your account is ready", "we have a new lamp", "the shop opens at nine",
                  "thanks for your order", "the river is calm today", "your refund is being processed",
                  "the mug is made of clay", "please check your email", "the jacket comes in blue",
                  "I have passed this to our team", "the address has been updated", "a return label is on its way",
                  "your password link was sent", "the order was cancelled", "we are sorry for the trouble"]
_CAPITAL_T = ["What is the capital of {c}?", "Name the capital city of {c}.", "Capital of {c}?",
              "Which city is the capital of {c}?"]
_ALL_T = slice(0, None)
HELD_OUT_SHARE = 5  # about one prompt in this many is reserved for testing


def is_held_out(prompt: str) -> bool:
    """True when ``prompt`` (a user message) is reserved for testing: no training data uses it.

    A fixed hash of the text decides, so the split is the same for every seed and every generator.
    Example: ``is_held_out("What is 3 + 4?")`` is the same on every machine.
    """
    return int(hashlib.sha1(prompt.encode("utf-8")).hexdigest()[:8], 16) % HELD_OUT_SHARE == 0


def _general_example(rng: random.Random, kind: str, templates: slice) -> dict[str, Any]:
    if kind == "reverse":
        words = rng.sample(WORDS, rng.choice([2, 3]))
        q = rng.choice(_REVERSE_T[templates]).format(w=" ".join(words))
        a = " ".join(reversed(words))
    elif kind == "upper":
        w = rng.choice(WORDS)
        q = rng.choice(_UPPER_T[templates]).format(w=w)
        a = w.upper()
    elif kind == "add":
        x, y = rng.randint(0, 9), rng.randint(0, 9)
        q = rng.choice(_ADD_T[templates]).format(a=x, b=y)
        a = str(x + y)
    elif kind == "repeat":
        a = rng.choice(_SENTENCE_BITS).capitalize() + rng.choice([".", "!", " today."])
        q = rng.choice(_REPEAT_T[templates]).format(s=a)
    elif kind == "fields":
        keys = rng.sample(_FIELD_KEYS, rng.choice([2, 3]))
        vals = [rng.choice(_FIELD_VALUES[k]) for k in keys]
        q = rng.choice(_FIELDS_T[templates]).format(kv=", ".join(f"{k} {v}" for k, v in zip(keys, vals, strict=True)))
        a = " | ".join(f"{k}: {v}" for k, v in zip(keys, vals, strict=True))
    elif kind == "capital":
        c = rng.choice(sorted(CAPITALS))
        q = rng.choice(_CAPITAL_T[templates]).format(c=c)
        a = CAPITALS[c]
    else:  # pragma: no cover - internal
        raise ValueError(kind)
    return {"messages": [{"role": "system", "content": GENERAL_SYSTEM}, {"role": "user", "content": q},
                         {"role": "assistant", "content": a}], "skill": kind, "answer": a}


GENERAL_SKILLS = ("reverse", "upper", "add", "repeat", "fields", "capital")


def general_examples(n: int, seed: int = 0, *, probe: bool = False,
                     skills: Sequence[str] = GENERAL_SKILLS) -> list[dict[str, Any]]:
    """``n`` general-skill examples (reverse, uppercase, addition,
    repeating a sentence, formatting key-value fields, capital lookups).

    ``probe=True`` draws only held-out prompts (``is_held_out``): the same skills and facts asked in
    combinations training never uses (a word under a new template, a new number pair, a new word list),
    so the probe set measures the skill rather than recall of training sentences; ``probe=False`` draws
    only training prompts. ``skills`` is the cycle of skills drawn in turn (a skill named twice is drawn twice
    as often).
    """
    rng = random.Random(f"general-{seed}-{probe}")
    out = []
    for i in range(n):
        while True:
            ex = _general_example(rng, skills[i % len(skills)], _ALL_T)
            if is_held_out(ex["messages"][1]["content"]) == probe:
                break
        out.append(ex)
    return out
