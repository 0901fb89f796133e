"""Exact token counts of an example (the cookbook's counting rule) and what training on them costs."""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

from ftlab.errors import FtlabError

if TYPE_CHECKING:
    import tiktoken

__all__ = ["count_example_tokens", "estimate_cost"]


# tiktoken's pre-tokenizer regex gives up ("Max stack size exceeded for backtracking") on a run of
# about a million spaces or tabs in a row (o200k_base). Such text is counted in pieces of this size.
_PIECE = 100_000
_CUT = re.compile(r"\S(?=[ \t])")  # a cut after a non-space, before a space: a pre-token boundary


def _count_text(enc, text: str) -> int:
    """Exact tiktoken count of ``text``; never raises.

    Lone surrogates are replaced first (tiktoken cannot encode them). Text that tiktoken's regex
    cannot split is counted in pieces of about ``_PIECE`` characters, cut at a space that follows a
    word where there is one: exact then, or a few tokens off per cut inside a giant whitespace run.
    """
    try:
        return len(enc.encode(text, disallowed_special=()))
    except UnicodeEncodeError:
        text = text.encode("utf-8", "replace").decode("utf-8")
    except (ValueError, TypeError):
        pass
    try:
        return len(enc.encode(text, disallowed_special=()))
    except (ValueError, TypeError):
        if len(text) <= _PIECE:
            return len(text.encode("utf-8", "replace"))  # an upper bound: a token holds at least one byte
    total, start = 0, 0
    while start < len(text):
        end = min(start + _PIECE, len(text))
        if end < len(text):
            cut = _CUT.search(text, end - _PIECE // 10, end)
            end = cut.end() if cut else end
        total += _count_text(enc, text[start:end])
        start = end
    return total


def _json_text(value: Any) -> str:
    try:
        return json.dumps(value, ensure_ascii=False)
    except (ValueError, TypeError, RecursionError):
        return str(value)


def count_example_tokens(ex: dict, messages: list[dict], enc: tiktoken.Encoding) -> tuple[int, int]:
    """``(total, assistant)`` tokens of an example by the cookbook's rule.

    Total: 3 per message + the tokens of each field's value (strings as they are, other values
    as JSON; ``weight`` and null values skipped) + 1 per ``name`` + 3 to prime the reply, plus the
    JSON text of ``tools``/``functions`` definitions. Assistant: the tokens of assistant
    ``content`` (and of ``tool_calls``/``function_call`` as JSON).
    """
    total = 3
    assistant = 0
    for m in messages:
        total += 3
        for key, value in m.items():
            if key == "weight" or value is None:
                continue
            n = _count_text(enc, value if isinstance(value, str) else _json_text(value))
            total += n
            if key == "name":
                total += 1
            if m.get("role") == "assistant" and key in ("content", "tool_calls", "function_call"):
                assistant += n
    for key in ("tools", "functions"):
        if ex.get(key) is not None:
            total += _count_text(enc, _json_text(ex[key]))
    return total, assistant


def estimate_cost(model: str, trained_tokens: int) -> dict[str, Any] | None:
    """The training cost of ``trained_tokens`` on ``model`` from ftlab's price catalog (``ftlab.cost``).

    ``None`` when the catalog has no per-token training price for the model (it is then left out
    of the stats rather than guessed). Example: 9,645 tokens on gpt-4.1-mini at $0.80/M → ``usd`` 0.007716.
    """
    try:
        from ftlab.cost import cost_for, load_catalog
    except ImportError:
        return None
    try:
        entry = load_catalog().entry(model)
    except (FtlabError, KeyError, ValueError, TypeError, OSError):
        return None
    price = entry.get("training_usd_per_1m")
    if entry.get("pricing") != "per_training_token" or price is None:
        return None
    row = cost_for(entry["id"], trained_tokens, digits=6)
    return {"usd": row.training_cost_usd, "trained_tokens": trained_tokens,
            "usd_per_1m_training_tokens": price, "catalog_entry": entry["id"], "source": entry["source"],
            "as_of": entry["as_of"], "confidence": entry["confidence"]}


