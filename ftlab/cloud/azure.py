"""Azure AI Foundry / Azure OpenAI (platform key ``"azure"``): the OpenAI chat format, checked, and
written as UTF-8 with a byte-order mark, as Azure asks.
"""

from __future__ import annotations

import copy
from typing import Any

from ftlab.cloud.common import (
    RETRIEVED,
    Format,
    Problem,
    _basic_message_errors,
    _messages_head,
    _only_keys,
    _only_msg_keys,
    _where,
)

__all__ = ["AZURE_MAX_BYTES", "AZURE_MIN_EXAMPLES", "FORMAT", "SOURCES", "from_azure", "to_azure"]

AZURE_MIN_EXAMPLES = 10
AZURE_MAX_BYTES = 512 * 1024 * 1024

# Where the format rules come from: (page, date, what it says). Shown by notebook 09.
SOURCES: list[tuple[str, str, str]] = [
    ("https://learn.microsoft.com/azure/ai-foundry/openai/how-to/fine-tuning", RETRIEVED,
     "Chat Completions conversational format; files UTF-8 with a byte-order mark (BOM), each < 512 MB; "
     "at least 10 examples"),
    ("https://learn.microsoft.com/azure/ai-services/openai/how-to/fine-tuning-functions", RETRIEVED,
     "tools and assistant tool_calls in training lines"),
]


# --- Azure AI Foundry / Azure OpenAI: the OpenAI chat format ------------------------------
# Source: learn.microsoft.com/azure/ai-foundry/openai/how-to/fine-tuning (read 2026-11-23):
# "formatted in the conversational format that the Chat Completions API uses ... encoded in UTF-8
# and include a byte-order mark (BOM). Each file must be less than 512 MB"; at least 10 examples;
# tools/tool_calls per .../fine-tuning-functions.
_AZURE_MSG_KEYS = {"role", "content", "weight", "tool_calls", "tool_call_id", "name", "function_call"}


def to_azure(example: dict[str, Any], line: int = 1) -> dict[str, Any]:
    """One example for Azure OpenAI / Foundry fine-tuning: OpenAI chat format, unchanged but checked."""
    fmt = "Azure OpenAI's fine-tuning format"
    _only_keys(example, {"messages", "tools", "parallel_tool_calls", "functions"}, _where(line), fmt)
    for j, m in enumerate(example["messages"]):
        _only_msg_keys(m, _AZURE_MSG_KEYS, _where(line, j), fmt)
    return copy.deepcopy(example)


def from_azure(record: dict[str, Any]) -> dict[str, Any]:
    return copy.deepcopy(record)



def _validate_azure(rec: dict[str, Any], line: int) -> list[str]:
    errs, msgs = _messages_head(rec, line, ("messages", "tools", "parallel_tool_calls", "functions"),
                                "unexpected field {}")
    if msgs is None:
        return errs
    errs += _basic_message_errors(msgs, line)
    for j, m in enumerate(msgs):
        if isinstance(m, dict) and "weight" in m:
            if m.get("role") != "assistant":
                errs.append(f"{_where(line, j)}: weight is allowed on assistant messages only")
            elif isinstance(m["weight"], bool) or m["weight"] not in (0, 1):
                errs.append(f"{_where(line, j)}: weight must be 0 or 1, got {m['weight']!r}")
    return errs




def _file_rules(n: int, n_bytes: int | None, has_bom: bool | None) -> tuple[list[Problem], list[str]]:
    problems = []
    if 0 < n < AZURE_MIN_EXAMPLES:
        problems.append(Problem(None, "file", f"{n} examples; Azure OpenAI fine-tuning needs at least {AZURE_MIN_EXAMPLES}"))
    if has_bom is False:
        problems.append(Problem(1, "file", "line 1: no byte-order mark; Azure wants UTF-8 with a BOM (ftlab convert "
                                           "--to azure writes one)"))
    if n_bytes is not None and n_bytes >= AZURE_MAX_BYTES:
        problems.append(Problem(None, "file", f"{n_bytes / 2**20:.0f} MB; Azure takes files under 512 MB"))
    return problems, []


FORMAT = Format("azure", "azure", lambda ex, line, warnings: to_azure(ex, line), from_azure, _validate_azure,
                _file_rules, bom=True)
