"""The toy world's data: the target task, the product catalog, probe sets and file writers.

One module a kind of data: ``general`` (general skills), ``safety`` (refusals), ``support`` (the target task and
the training sets built from it), ``catalog`` (the SKU facts and their lookup), ``files`` (JSONL files). Import
every name from ``ftlab.data``.

Everything here is generated deterministically from a seed, so a notebook, a test and a
CI run see the same examples. Examples are OpenAI chat format::

    {"messages": [{"role": "system", ...}, {"role": "user", ...}, {"role": "assistant", ...}]}

The target task is customer support for a fictional shop, Harbor & Pine. Each reply has a
fixed, exactly scorable format::

    intent: refund | order: 4821 | Your refund has started.

Example: ``score_support_reply(reply, expected)`` is 1.0 only when the reply has the format
and the right intent; ``order_correct(reply, expected)`` checks the copied order number.

**Held out** means never trained on: every general-skill and support prompt a generator can write is either a
training prompt or a test prompt, decided by a fixed hash of its text (``is_held_out``: about one prompt in five is
reserved for testing). A test prompt is a *new combination* of words the model has seen (a template with a word, a
number pair or an order number it was never trained on together); the safety probes use request shapes that
training never uses. No probe or test prompt appears in the toy's pretraining corpus or in any training mix,
whatever the seed (``tests/test_toymodel.py``).
"""

from __future__ import annotations

from ftlab.data.catalog import (
    LOOKUP,
    LOOKUP_REPLY,
    PRODUCTS,
    answer_with_lookup,
    catalog,
    catalog_examples,
    catalog_lookup_examples,
    catalog_questions,
    lookup_products,
    question_text,
    retrieve_product,
    sku_map,
)
from ftlab.data.files import (
    read_jsonl,
    to_openai_record,
    write_jsonl,
    write_malformed_file,
    write_toy_files,
    write_upload_file,
)
from ftlab.data.general import (
    CAPITALS,
    GENERAL_SKILLS,
    GENERAL_SYSTEM,
    HELD_OUT_SHARE,
    WORDS,
    general_examples,
    is_held_out,
)
from ftlab.data.safety import (
    PEOPLE,
    REFUSAL,
    is_refusal,
    safety_examples,
)
from ftlab.data.support import (
    CANNED_REPLY,
    INTENTS,
    ITEMS,
    SHOP,
    SUPPORT_SYSTEM,
    Splits,
    low_diversity,
    one_per_intent,
    order_correct,
    parse_support_reply,
    score_support_reply,
    support_dataset,
    support_examples,
    support_mix,
    support_reply,
    support_splits,
)

__all__ = [
    "CANNED_REPLY",
    "CAPITALS",
    "GENERAL_SKILLS",
    "GENERAL_SYSTEM",
    "HELD_OUT_SHARE",
    "INTENTS",
    "ITEMS",
    "LOOKUP",
    "LOOKUP_REPLY",
    "PEOPLE",
    "PRODUCTS",
    "REFUSAL",
    "SHOP",
    "SUPPORT_SYSTEM",
    "WORDS",
    "Splits",
    "answer_with_lookup",
    "catalog",
    "catalog_examples",
    "catalog_lookup_examples",
    "catalog_questions",
    "general_examples",
    "is_held_out",
    "is_refusal",
    "lookup_products",
    "low_diversity",
    "one_per_intent",
    "order_correct",
    "parse_support_reply",
    "question_text",
    "read_jsonl",
    "retrieve_product",
    "safety_examples",
    "score_support_reply",
    "sku_map",
    "support_dataset",
    "support_examples",
    "support_mix",
    "support_reply",
    "support_splits",
    "to_openai_record",
    "write_jsonl",
    "write_malformed_file",
    "write_toy_files",
    "write_upload_file",
]
