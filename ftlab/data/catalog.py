"""The product catalog: facts that change between versions (the articles' SKU story), the SKU questions asked
about it, and the lookup that answers them from the current catalog (notebook 08's memorization defence).

Example: ``answer_with_lookup("The Pine Lantern has SKU HP-????.", "Could you look up the lantern?", 2)[0]``
holds the lantern's catalog-v2 SKU.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from typing import Any

from ftlab.data.support import SUPPORT_SYSTEM

__all__ = ["LOOKUP", "LOOKUP_REPLY", "PRODUCTS", "answer_with_lookup", "catalog", "catalog_examples",
           "catalog_lookup_examples", "catalog_questions", "lookup_products", "question_text", "retrieve_product",
           "sku_map"]

PRODUCTS = ["Pine Lantern", "Harbor Blanket", "Driftwood Mug", "Trail Backpack", "Copper Kettle",
            "Storm Jacket", "Reading Lamp", "Clay Teapot", "Wool Scarf", "Hiking Boots"]


def catalog(version: int = 1, seed: int = 0) -> list[dict[str, Any]]:
    """The product catalog. Version 2 renumbers every SKU and changes every price.

    Example: ``catalog(1)[0]`` is ``{"product": "Pine Lantern", "sku": "HP-...", "price": ...}``.
    """
    rng = random.Random(f"catalog-{seed}-{version}")
    skus = rng.sample(range(1000, 9999), len(PRODUCTS))
    return [{"product": p, "sku": f"HP-{s}", "price": rng.randint(12, 199), "version": version}
            for p, s in zip(PRODUCTS, skus, strict=True)]


_CATALOG_Q = ["What is the SKU of the {p}?", "Which SKU does the {p} have?", "Tell me the SKU for the {p}.",
              "What's the current SKU of the {p}?", "Do you know the SKU of the {p}?", "SKU for the {p}?"]
# Held-out phrasings: SKU questions in sentences that no training row uses (notebook 08's probes).
_CATALOG_PROBE_Q = ["Could you look up the SKU of our {p}?", "I need the SKU for a {p}, please.",
                    "{p}: which SKU is it listed under now?"]


def catalog_examples(version: int = 1, seed: int = 0, *, per_product: int = 3, with_context: bool = False,
                     context_version: int | None = None, products: Sequence[str] | None = None,
                     probe: bool = False) -> list[dict[str, Any]]:
    """Questions about SKUs answered from the catalog.

    ``with_context=True`` puts the catalog entry in the system message (a tool/RAG lookup), so the
    model learns to *read* the fact instead of memorizing it; ``context_version`` chooses which
    catalog the lookup returns. ``products`` picks the products (default: all of ``PRODUCTS``);
    ``probe=True`` asks in held-out phrasings that no training row uses.

    Example: ``catalog_examples(1, products=["Pine Lantern"], per_product=1)[0]["messages"][1]["content"]``
    is ``"What is the SKU of the Pine Lantern?"``.
    """
    facts = {r["product"]: r for r in catalog(version, seed)}
    ctx = {r["product"]: r for r in catalog(context_version or version, seed)}
    unknown = [p for p in (products or ()) if p not in facts]
    if unknown:
        raise ValueError(f"catalog_examples: unknown products {unknown}; use names from ftlab.data.PRODUCTS")
    templates = _CATALOG_PROBE_Q if probe else _CATALOG_Q
    out = []
    for p in (PRODUCTS if products is None else products):
        for t in templates[:per_product]:
            system = SUPPORT_SYSTEM
            answer_row = facts[p]
            if with_context:
                answer_row = ctx[p]
                system = f"{SUPPORT_SYSTEM} Catalog lookup: {p} = SKU {answer_row['sku']}."
            answer = f"The {p} has SKU {answer_row['sku']}."
            out.append({"messages": [{"role": "system", "content": system}, {"role": "user", "content": t.format(p=p)},
                                     {"role": "assistant", "content": answer}],
                        "product": p, "answer": answer_row["sku"]})
    return out


def sku_map(version: int, seed: int = 0) -> dict[str, str]:
    """Product -> SKU for one catalog version."""
    return {r["product"]: r["sku"] for r in catalog(version, seed)}


def lookup_products(seed: int = 0) -> tuple[list[str], list[str]]:
    """``(trained, held_out)``: the products whose SKU questions the defended run is trained on (half of
    ``PRODUCTS``, drawn by ``seed``), and the others, which only the probes ask about."""
    products = list(PRODUCTS)
    random.Random(f"lookup-products-{seed}").shuffle(products)
    half = len(products) // 2
    return sorted(products[:half]), sorted(products[half:])


def catalog_questions(seed: int = 0, *, per_product: int = 3) -> list[dict[str, Any]]:
    """SKU questions asked after the catalog changed from v1 to v2; each row has ``old_sku`` and ``new_sku``.

    Held out from the defence: only products the defended run never saw a question about
    (``lookup_products``), in phrasings no training row uses (``catalog_examples(probe=True)``).
    """
    old, new = sku_map(1, seed), sku_map(2, seed)
    return [{**r, "old_sku": old[r["product"]], "new_sku": new[r["product"]]}
            for r in catalog_examples(2, seed, per_product=per_product, products=lookup_products(seed)[1], probe=True)]


LOOKUP = "HP-????"  # what the model writes where the SKU belongs; the system fills it in from the catalog
LOOKUP_REPLY = f"Catalog lookup: SKU {LOOKUP}."  # the defended model's reply to any SKU question (a tool call)
_LOOKUP_RE = re.compile(r"HP-\?+")
_WORD = re.compile(r"[a-z]+")


def catalog_lookup_examples(seed: int = 0, *, per_product: int = 6) -> list[dict[str, Any]]:
    """SKU questions answered with a lookup call instead of a remembered SKU: ``Catalog lookup: SKU HP-????.``

    Fine-tuning teaches the behaviour (recognize a SKU question, defer the fact); at answer time the
    shop's system retrieves the product from the question and fills in the SKU from the *current*
    catalog (``answer_with_lookup``), the tool step of the articles' SKU story. Only half the products
    (``lookup_products(seed)[0]``) and the training phrasings: the probes are held out.
    """
    out = []
    for r in catalog_examples(1, seed, per_product=per_product, products=lookup_products(seed)[0]):
        msgs = [dict(m) for m in r["messages"]]
        msgs[-1]["content"] = LOOKUP_REPLY
        out.append({**r, "messages": msgs})
    return out


def retrieve_product(question: str, reply: str = "", rows: Sequence[dict[str, Any]] | None = None) -> str | None:
    """The catalog product a question is about, by word overlap with the product names (a tiny retriever).

    Each product scores the share of its name's words found in the question, twice, plus the share
    found in the model's reply (a tie-breaker: the reply may name a product the model saw in training).
    The best score wins; ``None`` when no word of any name occurs. ``rows`` is the catalog searched
    (default: ``catalog(2)``'s products). Example: ``retrieve_product("Is the lantern in stock?")``
    -> ``"Pine Lantern"``; ``retrieve_product("Hello")`` -> ``None``.
    """
    names = [r["product"] for r in rows] if rows is not None else list(PRODUCTS)
    q, a = set(_WORD.findall(question.lower())), set(_WORD.findall(reply.lower()))
    best, best_score = None, 0.0
    for name in names:
        words = set(_WORD.findall(name.lower()))
        score = 2 * len(words & q) / len(words) + len(words & a) / len(words)
        if score > best_score:
            best, best_score = name, score
    return best


def answer_with_lookup(reply: str, question: str, version: int, seed: int = 0) -> tuple[str, bool, str | None]:
    """The shop's tool step: fill the ``HP-????`` placeholder in ``reply`` with the SKU, from catalog ``version``,
    of the product retrieved from the question text and the reply (``retrieve_product``).

    Returns ``(answer, looked_up, product)``. A reply without the placeholder is the model's own answer,
    returned unchanged (``looked_up`` False); so is one where no product is found (``product`` None).
    Example: ``answer_with_lookup("The Pine Lantern has SKU HP-????.", "Could you look up the lantern?", 2)``
    -> ``("The Pine Lantern has SKU HP-1234.", True, "Pine Lantern")`` (the v2 SKU).
    """
    if not _LOOKUP_RE.search(reply):
        return reply, False, None
    rows = catalog(version, seed)
    product = retrieve_product(question, reply, rows)
    if product is None:
        return reply, True, None
    sku = next(r["sku"] for r in rows if r["product"] == product)
    return _LOOKUP_RE.sub(sku, reply, count=1), True, product


def question_text(example: dict[str, Any]) -> str:
    """The last user message of an example: all a lookup is given."""
    return next((m["content"] for m in reversed(example["messages"]) if m["role"] == "user"), "")

