"""The cloud-managed paths: Bedrock, Vertex AI, Together AI and Azure AI Foundry (notebook 09).

Three jobs, one module:

1. **Formats.** Convert the kit's OpenAI chat JSONL into each platform's documented
   fine-tuning format, check the platform's rules, and read it back::

       conv = convert_file("support_train.jsonl", "vertex", out="train.vertex.jsonl")
       conv.ok, conv.n_examples          # (True, 1020)
       read_back("train.vertex.jsonl", "vertex")[0] == read_jsonl("support_train.jsonl")[0]   # True

   Nothing is lost silently: whatever a format cannot hold (tool calls on Bedrock, per-message
   ``weight`` outside Together and Azure, a system message in the middle of a conversation)
   is an error that names the input line, e.g. ``line 7, message 3: tool calls: ...``.
   Where a format holds the content but not an identifier (Gemini has no tool-call ids),
   conversion says so in ``warnings``, also per line.

2. **Cost.** ``cost_table`` prices a dataset on every platform: a view of ``ftlab.cost``, which
   loads the one price catalog (``ftlab/catalog/prices.yaml``) and does the arithmetic (per
   training token for Bedrock, Together and Gemini on Vertex, per training hour for open models on
   Vertex and Azure), next to the seeds' self-managed GPU reference and their 2-3x caveat.

3. **Submission through the real SDKs.** Bedrock goes through ``boto3`` (S3 upload,
   ``create_model_customization_job``, polling ``get_model_customization_job``); the same code
   runs offline against moto's in-process ``mock_aws`` and, with real credentials and
   ``dry_run=False``, against AWS. Vertex AI and Together get request builders that print the
   exact REST payload and SDK call with ``dry_run=True`` and submit for real when credentials
   exist.

The format rules below were read on the providers' pages on 2026-11-23 (see ``FORMAT_SOURCES``;
each converter cites its page).
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ftlab import cost
from ftlab.cost import Catalog
from ftlab.errors import FtlabError

PLATFORMS = ("bedrock", "vertex", "together", "azure")
BEDROCK_FORMATS = ("conversation", "prompt-completion")
BEDROCK_SCHEMA = "bedrock-conversation-2024"
RETRIEVED = "2026-11-23"

# Where each format's rules come from: (page, date, what it says). Shown by notebook 09.
FORMAT_SOURCES: dict[str, list[tuple[str, str, str]]] = {
    "bedrock": [
        ("https://docs.aws.amazon.com/bedrock/latest/userguide/preparing-text-data.html", RETRIEVED,
         "prompt/completion for non-conversational models; Converse format (schemaVersion bedrock-conversation-2024, "
         "system, messages with content blocks) for single- and multi-turn"),
        ("https://docs.aws.amazon.com/nova/latest/userguide/fine-tune-prepare-data-understanding.html", RETRIEVED,
         "Nova: roles user and assistant only, first turn user, last turn assistant, reserved keywords "
         "User:, Bot:, Assistant:, System:, <image>, <video>, [EOS]"),
        ("https://docs.aws.amazon.com/bedrock/latest/userguide/model-training-validation-requirements.html", RETRIEVED,
         "4,096 input+output tokens at batch size 1; character quota per sample = token quota x 6"),
        ("https://docs.aws.amazon.com/bedrock/latest/userguide/model-customization-prepare.html", RETRIEVED,
         "which models take prompt/completion (Titan Text, Cohere Command, Llama 2) and which take messages"),
    ],
    "vertex": [
        ("https://cloud.google.com/vertex-ai/generative-ai/docs/models/gemini-supervised-tuning-prepare",
         f"page last updated 2025-09-04, read {RETRIEVED}",
         "systemInstruction {role, parts[text]}, contents [{role user|model, parts}]; start with 100 examples"),
        ("https://cloud.google.com/vertex-ai/generative-ai/docs/models/tune-function-calling", RETRIEVED,
         "functionCall / functionResponse parts and tools[{functionDeclarations}] in tuning data"),
    ],
    "together": [
        ("https://docs.together.ai/docs/fine-tuning/data-preparation", RETRIEVED,
         "messages with roles system/user/assistant; starts with system or user, then user and assistant alternate; "
         "a line with two formats is rejected"),
        ("https://docs.together.ai/docs/fine-tuning/function-calling", RETRIEVED,
         "tools field per line, assistant tool_calls instead of content, tool role for results"),
        ("https://github.com/togethercomputer/together-python (src/together/utils/files.py, constants.py)", RETRIEVED,
         "the SDK's check_file: only messages (+tools) per line, content a string, weight an int 0 or 1"),
    ],
    "azure": [
        ("https://learn.microsoft.com/azure/ai-foundry/openai/how-to/fine-tuning", RETRIEVED,
         "Chat Completions conversational format; files UTF-8 with a byte-order mark (BOM), each < 512 MB; "
         "at least 10 examples"),
        ("https://learn.microsoft.com/azure/ai-services/openai/how-to/fine-tuning-functions", RETRIEVED,
         "tools and assistant tool_calls in training lines"),
    ],
}


# =======================================================================================
# Reading the OpenAI chat input, line by line
# =======================================================================================
class _Unholdable(Exception):
    """An example the target format cannot represent (becomes a line-numbered error)."""


@dataclass
class Conversion:
    """The result of converting a set of examples for one platform.

    ``records`` are the converted lines, ``lines`` their source line numbers; ``errors`` and
    ``warnings`` are one-line strings that start with ``line N``. ``ok`` is True only when
    every input example converted and passed the platform's checks.
    """

    platform: str
    n_input: int
    records: list[dict[str, Any]] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    bedrock_format: str = "conversation"
    path: Path | None = None

    @property
    def ok(self) -> bool:
        return not self.errors and len(self.records) == self.n_input

    @property
    def n_examples(self) -> int:
        return len(self.records)

    def report(self) -> dict[str, Any]:
        """The ``ftlab convert --json`` report: ``{"ok", "n_examples", "errors", ...}``."""
        return {"ok": self.ok, "n_examples": self.n_examples, "errors": list(self.errors),
                "warnings": list(self.warnings), "platform": self.platform,
                "out": str(self.path) if self.path else None}

    def write(self, path: str | os.PathLike[str]) -> Path:
        """Write the converted records as JSONL (Azure: UTF-8 with a BOM). Refuses when not ``ok``."""
        if not self.ok:
            raise FtlabError(f"{len(self.errors)} example(s) cannot be converted for {self.platform} "
                             f"(first: {self.errors[0] if self.errors else 'missing examples'}); nothing written")
        self.path = write_records(self.records, path, self.platform)
        return self.path


def _where(line: int, msg_index: int | None = None) -> str:
    return f"line {line}" + (f", message {msg_index + 1}" if msg_index is not None else "")


def read_chat_lines(source: str | os.PathLike[str] | Iterable[dict[str, Any]]) -> tuple[list[tuple[int, dict]], list[str], int]:
    """Parse OpenAI chat JSONL into ``(line, example)`` pairs, keeping line numbers.

    ``source`` is a path or a list of examples (numbered 1, 2, ...). Returns
    ``(examples, errors, n_input)``: lines that are not JSON objects with a ``messages`` list
    become errors such as ``line 3: invalid JSON (Expecting ',' delimiter, column 212)``.
    Blank lines are skipped but still counted, so numbers match an editor's.
    """
    if isinstance(source, str | os.PathLike):
        path = Path(source)
        if not path.is_file():
            raise FtlabError(f"no such file: {path}; give the path of an OpenAI chat JSONL file")
        items, errors = _read_json_lines(path, path.read_bytes())
        n_input = len(items) + len(errors)
    else:
        items = list(enumerate(source, start=1))
        errors = []
        n_input = len(items)
    examples = []
    for line, ex in items:
        if not isinstance(ex, dict):
            errors.append(f"line {line}: expected a JSON object, got {type(ex).__name__}")
        elif not isinstance(ex.get("messages"), list) or not ex["messages"]:
            errors.append(f"line {line}: no 'messages' list (OpenAI chat format: {{\"messages\": [...]}})")
        else:
            bad = _basic_message_errors(ex["messages"], line)
            if bad:
                errors.extend(bad)
            else:
                examples.append((line, ex))
    return examples, errors, n_input


_ROLES = ("system", "user", "assistant", "tool")


def _basic_message_errors(messages: list[Any], line: int) -> list[str]:
    """OpenAI chat structure every converter relies on: known roles, content of the right type."""
    errs = []
    for j, m in enumerate(messages):
        w = _where(line, j)
        if not isinstance(m, dict):
            errs.append(f"{w}: a message must be an object, got {type(m).__name__}")
            continue
        role = m.get("role")
        if role not in _ROLES:
            errs.append(f"{w}: unknown role {role!r}; use one of {', '.join(_ROLES)}")
            continue
        content = m.get("content")
        if content is None and not (role == "assistant" and (m.get("tool_calls") or m.get("function_call"))):
            errs.append(f"{w}: {role} message without content")
        elif content is not None and not isinstance(content, str | list):
            errs.append(f"{w}: content must be a string or a list of parts, got {type(content).__name__}")
    if not errs and not any(m.get("role") == "assistant" for m in messages):
        errs.append(f"line {line}: no assistant message, so there is nothing to learn")
    return errs


# =======================================================================================
# Converters (one per format) and their readers
# =======================================================================================
def _only_keys(obj: dict, allowed: set[str], where: str, fmt: str) -> None:
    extra = sorted(set(obj) - allowed)
    if extra:
        key = extra[0]
        raise _Unholdable(f"{where}: field {key!r} has no place in {fmt}; remove it"
                          + (" (it holds tool definitions, which this format cannot)" if key == "tools" else ""))


def _only_msg_keys(m: dict, allowed: set[str], where: str, fmt: str) -> None:
    extra = sorted(set(m) - allowed)
    if not extra:
        return
    key = extra[0]
    if key == "weight":
        raise _Unholdable(f"{where}: per-message 'weight' (loss masking) has no equivalent in {fmt}; "
                          "remove the key (1 is the default) or drop the weight-0 turns")
    if key in ("tool_calls", "function_call", "tool_call_id"):
        raise _Unholdable(f"{where}: tool calls: {fmt} has no tool-use blocks for fine-tuning; "
                          "use Vertex, Together or Azure for tool-calling data, or drop the tool turns")
    raise _Unholdable(f"{where}: message field {key!r} has no equivalent in {fmt}; remove it")


def _texts(content: Any, where: str, fmt: str) -> list[str]:
    """The text of a message: a string, or a list of text parts (one entry per part)."""
    if isinstance(content, str):
        return [content]
    texts = []
    for part in content or []:
        if not (isinstance(part, dict) and part.get("type") == "text" and isinstance(part.get("text"), str)
                and set(part) == {"type", "text"}):
            kind = part.get("type") if isinstance(part, dict) else type(part).__name__
            raise _Unholdable(f"{where}: content part of type {kind!r}: {fmt} conversion carries text parts only")
        texts.append(part["text"])
    return texts


def _content_from_texts(texts: list[str]) -> str | list[dict[str, str]]:
    return texts[0] if len(texts) == 1 else [{"type": "text", "text": t} for t in texts]


def _nonempty(texts: list[str], where: str) -> list[str]:
    if not texts or any(t == "" for t in texts):
        raise _Unholdable(f"{where}: empty text; the platform rejects empty content blocks")
    return texts


def _leading_system(messages: list[dict], line: int, fmt: str) -> tuple[list[str], int]:
    """System messages at the top (each becomes one system block/part) and where the turns start."""
    system, i = [], 0
    while i < len(messages) and messages[i]["role"] == "system":
        w = _where(line, i)
        _only_msg_keys(messages[i], {"role", "content"}, w, fmt)
        if not isinstance(messages[i]["content"], str):
            raise _Unholdable(f"{w}: system content as a list of parts; give the system prompt as one string")
        system.append(_nonempty([messages[i]["content"]], w)[0])
        i += 1
    return system, i


# --- Bedrock: bedrock-conversation-2024 -------------------------------------------------
# Source: "Prepare data for fine-tuning text-to-text models", Converse API format, and the Nova
# data rules (docs.aws.amazon.com/bedrock/latest/userguide/preparing-text-data.html and
# docs.aws.amazon.com/nova/latest/userguide/fine-tune-prepare-data-understanding.html, read
# 2026-11-23): {"schemaVersion": "bedrock-conversation-2024", "system": [{"text": ...}],
# "messages": [{"role": "user"|"assistant", "content": [{"text": ...}]}]}. Fine-tuned Nova and
# Llama models on Bedrock take no tool-use blocks in training data, so tool calls are errors.
def to_bedrock(example: dict[str, Any], line: int = 1) -> dict[str, Any]:
    """One OpenAI chat example as a ``bedrock-conversation-2024`` record.

    Example: ``{"messages": [{"role": "system", "content": "S"}, {"role": "user", "content": "Q"},
    {"role": "assistant", "content": "A"}]}`` becomes ``{"schemaVersion": "bedrock-conversation-2024",
    "system": [{"text": "S"}], "messages": [{"role": "user", "content": [{"text": "Q"}]},
    {"role": "assistant", "content": [{"text": "A"}]}]}``.
    """
    fmt = "Bedrock's bedrock-conversation-2024 format"
    _only_keys(example, {"messages"}, _where(line), fmt)
    msgs = example["messages"]
    system, start = _leading_system(msgs, line, fmt)
    out = []
    for j in range(start, len(msgs)):
        m, w = msgs[j], _where(line, j)
        if m["role"] == "system":
            raise _Unholdable(f"{w}: a system message after the conversation started; {fmt} has one system field, "
                              "at the top")
        if m["role"] == "tool":
            raise _Unholdable(f"{w}: a tool result: {fmt} has no tool-use blocks for fine-tuning; use Vertex, "
                              "Together or Azure for tool-calling data, or drop the tool turns")
        _only_msg_keys(m, {"role", "content"}, w, fmt)
        texts = _nonempty(_texts(m["content"], w, fmt), w)
        out.append({"role": m["role"], "content": [{"text": t} for t in texts]})
    record: dict[str, Any] = {"schemaVersion": BEDROCK_SCHEMA}
    if system:
        record["system"] = [{"text": t} for t in system]
    record["messages"] = out
    return record


def from_bedrock(record: dict[str, Any]) -> dict[str, Any]:
    """A ``bedrock-conversation-2024`` record back as an OpenAI chat example."""
    messages: list[dict[str, Any]] = [{"role": "system", "content": b["text"]} for b in record.get("system", [])]
    for m in record["messages"]:
        messages.append({"role": m["role"], "content": _content_from_texts([b["text"] for b in m["content"]])})
    return {"messages": messages}


# --- Bedrock: prompt/completion ----------------------------------------------------------
# Source: preparing-text-data.html, "Non-conversational tasks" (read 2026-11-23): {"prompt": ...,
# "completion": ...} for Titan Text, Cohere Command and Llama 2 (model-customization-prepare.html).
# The format has no system field and one turn, so anything else is an error, not a silent merge.
def to_bedrock_prompt_completion(example: dict[str, Any], line: int = 1) -> dict[str, Any]:
    """One single-turn example as ``{"prompt": user, "completion": assistant}``."""
    fmt = "Bedrock's prompt/completion format"
    _only_keys(example, {"messages"}, _where(line), fmt)
    msgs = example["messages"]
    if msgs[0]["role"] == "system":
        raise _Unholdable(f"{_where(line, 0)}: a system message: {fmt} has no system field; use the conversation "
                          "format (--bedrock-format conversation: Nova, Llama 3.x, Claude 3 Haiku) or remove it")
    if [m["role"] for m in msgs] != ["user", "assistant"]:
        raise _Unholdable(f"{_where(line)}: {fmt} holds exactly one user turn and one assistant turn, got "
                          f"{' → '.join(m['role'] for m in msgs)}")
    for j, m in enumerate(msgs):
        _only_msg_keys(m, {"role", "content"}, _where(line, j), fmt)
        if not isinstance(m["content"], str):
            raise _Unholdable(f"{_where(line, j)}: content as a list of parts; {fmt} takes one string")
        _nonempty([m["content"]], _where(line, j))
    return {"prompt": msgs[0]["content"], "completion": msgs[1]["content"]}


def from_bedrock_prompt_completion(record: dict[str, Any]) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": record["prompt"]},
                         {"role": "assistant", "content": record["completion"]}]}


# --- Vertex AI: Gemini supervised tuning -------------------------------------------------
# Source: "Prepare supervised fine-tuning data for Gemini models" (cloud.google.com/vertex-ai/
# generative-ai/docs/models/gemini-supervised-tuning-prepare, last updated 2025-09-04, read
# 2026-11-23): {"systemInstruction": {"role": ..., "parts": [{"text": ...}]}, "contents":
# [{"role": "user"|"model", "parts": [...]}]}; and "Tune function calling" (.../tune-function-
# calling, read 2026-11-23): functionCall {name, args} parts, functionResponse parts and
# "tools": [{"functionDeclarations": [...]}]. Gemini's functionCall carries no call id, so ids
# are not kept (a warning); args must be a JSON object; parameters use Vertex's OpenAPI Schema.
_VERTEX_SCHEMA_KEYS = {"type", "format", "title", "description", "nullable", "default", "items", "minItems",
                       "maxItems", "enum", "properties", "propertyOrdering", "required", "minProperties",
                       "maxProperties", "minLength", "maxLength", "pattern", "example", "anyOf", "minimum",
                       "maximum"}


def _schema_to_vertex(schema: Any, where: str) -> Any:
    if not isinstance(schema, dict):
        return schema
    out = {}
    for key, value in schema.items():
        if key not in _VERTEX_SCHEMA_KEYS:
            raise _Unholdable(f"{where}: JSON-schema keyword {key!r} has no equivalent in Vertex's function Schema")
        if key == "type":
            if not isinstance(value, str):
                raise _Unholdable(f"{where}: a list of types ({value}); Vertex's Schema takes one type (use nullable)")
            value = value.upper()
        elif key == "properties":
            value = {k: _schema_to_vertex(v, f"{where}.{k}") for k, v in value.items()}
        elif key == "items":
            value = _schema_to_vertex(value, f"{where}[]")
        elif key == "anyOf":
            value = [_schema_to_vertex(v, where) for v in value]
        out[key] = value
    return out


def _schema_from_vertex(schema: Any) -> Any:
    if not isinstance(schema, dict):
        return schema
    out = {}
    for key, value in schema.items():
        if key == "type" and isinstance(value, str):
            value = value.lower()
        elif key == "properties":
            value = {k: _schema_from_vertex(v) for k, v in value.items()}
        elif key == "items":
            value = _schema_from_vertex(value)
        elif key == "anyOf":
            value = [_schema_from_vertex(v) for v in value]
        out[key] = value
    return out


def _vertex_tools(tools: Any, line: int) -> list[dict[str, Any]]:
    w = f"line {line}, tools"
    if not isinstance(tools, list):
        raise _Unholdable(f"{w}: 'tools' must be a list")
    decls = []
    for k, tool in enumerate(tools):
        wk = f"{w}[{k}]"
        if not (isinstance(tool, dict) and tool.get("type") == "function" and isinstance(tool.get("function"), dict)):
            raise _Unholdable(f"{wk}: only function tools convert ({{'type': 'function', 'function': {{...}}}})")
        fn = tool["function"]
        extra = sorted(set(fn) - {"name", "description", "parameters"})
        if extra:
            raise _Unholdable(f"{wk}: function field {extra[0]!r} has no equivalent in Vertex's functionDeclarations")
        decl = {"name": fn["name"]}
        if "description" in fn:
            decl["description"] = fn["description"]
        if "parameters" in fn:
            decl["parameters"] = _schema_to_vertex(fn["parameters"], f"{wk}.parameters")
        decls.append(decl)
    return [{"functionDeclarations": decls}]


def to_vertex(example: dict[str, Any], line: int = 1, warnings: list[str] | None = None) -> dict[str, Any]:
    """One OpenAI chat example as a Gemini supervised-tuning record.

    Example: system → ``systemInstruction``, user → ``{"role": "user", "parts": [{"text": ...}]}``,
    assistant → ``{"role": "model", ...}``; assistant ``tool_calls`` → ``functionCall`` parts,
    ``tool`` messages → ``functionResponse`` parts ``{"name", "response": {"content": text}}``.
    """
    fmt = "Vertex AI's Gemini tuning format"
    _only_keys(example, {"messages", "tools"}, _where(line), fmt)
    msgs = example["messages"]
    system, start = _leading_system(msgs, line, fmt)
    contents: list[dict[str, Any]] = []
    names: dict[str, str] = {}
    dropped_ids = False
    for j in range(start, len(msgs)):
        m, w = msgs[j], _where(line, j)
        role = m["role"]
        if role == "system":
            raise _Unholdable(f"{w}: a system message after the conversation started; {fmt} has one "
                              "systemInstruction, at the top")
        if role == "user":
            _only_msg_keys(m, {"role", "content"}, w, fmt)
            contents.append({"role": "user", "parts": [{"text": t} for t in _nonempty(_texts(m["content"], w, fmt), w)]})
        elif role == "assistant":
            if "function_call" in m:
                raise _Unholdable(f"{w}: legacy 'function_call'; rewrite it as tool_calls")
            _only_msg_keys(m, {"role", "content", "tool_calls"}, w, fmt)
            parts: list[dict[str, Any]] = []
            if m.get("content") not in (None, ""):
                parts += [{"text": t} for t in _nonempty(_texts(m["content"], w, fmt), w)]
            for k, call in enumerate(m.get("tool_calls") or []):
                wk = f"{w}, tool call {k + 1}"
                fn = call.get("function") if isinstance(call, dict) else None
                if not (isinstance(call, dict) and call.get("type", "function") == "function" and isinstance(fn, dict)
                        and isinstance(fn.get("name"), str)):
                    raise _Unholdable(f"{wk}: expected {{'type': 'function', 'function': {{'name', 'arguments'}}}}")
                try:
                    args = json.loads(fn.get("arguments", "{}"))
                except (TypeError, json.JSONDecodeError):
                    raise _Unholdable(f"{wk}: arguments are not valid JSON") from None
                if not isinstance(args, dict):
                    raise _Unholdable(f"{wk}: arguments decode to a {type(args).__name__}, not an object (double-encoded "
                                      "JSON?); Gemini's functionCall.args must be an object")
                if "id" in call:
                    names[call["id"]] = fn["name"]
                    dropped_ids = True
                parts.append({"functionCall": {"name": fn["name"], "args": args}})
            if not parts:
                raise _Unholdable(f"{w}: assistant message with neither text nor tool calls")
            contents.append({"role": "model", "parts": parts})
        else:  # tool
            _only_msg_keys(m, {"role", "content", "tool_call_id"}, w, fmt)
            if m.get("tool_call_id") not in names:
                raise _Unholdable(f"{w}: tool result for unknown tool_call_id {m.get('tool_call_id')!r}; Gemini pairs a "
                                  "functionResponse with its functionCall by name")
            if not isinstance(m["content"], str):
                raise _Unholdable(f"{w}: tool result content as a list of parts; give it as one string")
            part = {"functionResponse": {"name": names[m["tool_call_id"]], "response": {"content": m["content"]}}}
            prev = msgs[j - 1]["role"] if j > 0 else None
            if prev == "tool" and contents and contents[-1]["role"] == "user":
                contents[-1]["parts"].append(part)  # parallel calls: all responses in one turn
            else:
                contents.append({"role": "user", "parts": [part]})
    record: dict[str, Any] = {}
    if system:
        record["systemInstruction"] = {"role": "system", "parts": [{"text": t} for t in system]}
    record["contents"] = contents
    if "tools" in example:
        record["tools"] = _vertex_tools(example["tools"], line)
    if dropped_ids and warnings is not None:
        warnings.append(f"line {line}: tool_call ids are not part of Gemini's functionCall (calls and responses pair by "
                        "name and order); reading back numbers them call_1, call_2, ...")
    return record


def from_vertex(record: dict[str, Any]) -> dict[str, Any]:
    """A Gemini tuning record back as an OpenAI chat example (tool-call ids renumbered)."""
    si = record.get("systemInstruction") or record.get("system_instruction") or {}
    messages: list[dict[str, Any]] = [{"role": "system", "content": p["text"]} for p in si.get("parts", [])]
    counter = 0
    pending: list[tuple[str, str]] = []
    for c in record["contents"]:
        parts = c["parts"]
        if c["role"] == "model":
            msg: dict[str, Any] = {"role": "assistant"}
            texts = [p["text"] for p in parts if "text" in p]
            if texts:
                msg["content"] = _content_from_texts(texts)
            calls = [p["functionCall"] for p in parts if "functionCall" in p]
            if calls:
                msg["tool_calls"] = []
                pending = []
                for call in calls:
                    counter += 1
                    cid = f"call_{counter}"
                    pending.append((call["name"], cid))
                    msg["tool_calls"].append({"id": cid, "type": "function", "function": {
                        "name": call["name"], "arguments": json.dumps(call.get("args", {}), ensure_ascii=False)}})
            messages.append(msg)
        elif parts and all("functionResponse" in p for p in parts):
            for p in parts:
                fr = p["functionResponse"]
                idx = next((i for i, (name, _) in enumerate(pending) if name == fr["name"]), None)
                cid = pending.pop(idx)[1] if idx is not None else f"call_{fr['name']}"
                resp = fr.get("response", {})
                content = resp["content"] if set(resp) == {"content"} and isinstance(resp["content"], str) \
                    else json.dumps(resp, ensure_ascii=False)
                messages.append({"role": "tool", "tool_call_id": cid, "content": content})
        else:
            messages.append({"role": "user", "content": _content_from_texts([p["text"] for p in parts])})
    example: dict[str, Any] = {"messages": messages}
    if "tools" in record:
        example["tools"] = [{"type": "function", "function": {
            k: (_schema_from_vertex(v) if k == "parameters" else v) for k, v in decl.items()}}
            for group in record["tools"] for decl in group.get("functionDeclarations", [])]
    return example


# --- Together AI: conversational JSONL ---------------------------------------------------
# Source: docs.together.ai/docs/fine-tuning/data-preparation and .../fine-tuning/function-calling
# (read 2026-11-23), and the SDK's own checker (togethercomputer/together-python,
# src/together/utils/files.py + constants.py): a line holds "messages" (and optionally "tools")
# and nothing else; roles system/user/assistant/tool; content a string; "weight" an int 0 or 1.
_TOGETHER_MSG_KEYS = {"role", "content", "weight", "tool_calls", "tool_call_id"}


def to_together(example: dict[str, Any], line: int = 1) -> dict[str, Any]:
    """One OpenAI chat example as a Together conversational line (the same shape, checked)."""
    fmt = "Together's conversational format"
    _only_keys(example, {"messages", "tools"}, _where(line), fmt)
    for j, m in enumerate(example["messages"]):
        w = _where(line, j)
        _only_msg_keys(m, _TOGETHER_MSG_KEYS, w, fmt)
        if isinstance(m.get("content"), list):
            raise _Unholdable(f"{w}: content as a list of parts; {fmt} takes a string")
    return copy.deepcopy(example)


def from_together(record: dict[str, Any]) -> dict[str, Any]:
    return copy.deepcopy(record)


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


_TO: dict[str, Callable[..., dict[str, Any]]] = {
    "bedrock": to_bedrock, "bedrock-prompt-completion": to_bedrock_prompt_completion,
    "vertex": to_vertex, "together": to_together, "azure": to_azure,
}
_FROM: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "bedrock": from_bedrock, "bedrock-prompt-completion": from_bedrock_prompt_completion,
    "vertex": from_vertex, "together": from_together, "azure": from_azure,
}


def _format_key(platform: str, bedrock_format: str = "conversation") -> str:
    if platform not in PLATFORMS:
        raise FtlabError(f"unknown platform {platform!r}; use one of: {', '.join(PLATFORMS)}")
    if bedrock_format not in BEDROCK_FORMATS:
        raise FtlabError(f"unknown Bedrock format {bedrock_format!r}; use one of: {', '.join(BEDROCK_FORMATS)}")
    return "bedrock-prompt-completion" if platform == "bedrock" and bedrock_format == "prompt-completion" else platform


# =======================================================================================
# Validators: each platform's rules, per line, on the converted records
# =======================================================================================
_NOVA_RESERVED = ("User:", "Bot:", "Assistant:", "System:", "<image>", "<video>", "[EOS]")
BEDROCK_MAX_RECORDS = 20_000  # Nova: sum of training and validation records
BEDROCK_PC_MAX_CHARS = 4096 * 6  # 4,096 tokens at batch size 1, x 6 characters per token
AZURE_MIN_EXAMPLES = 10
AZURE_MAX_BYTES = 512 * 1024 * 1024
VERTEX_RECOMMENDED_MIN = 100


def _alternation_errors(roles: list[str], first: str, last: str, where: str, names: tuple[str, str]) -> list[str]:
    errs = []
    if roles and roles[0] != first:
        errs.append(f"{where}: the first turn must be {first!r}, got {roles[0]!r}")
    if roles and roles[-1] != last:
        errs.append(f"{where}: the last turn must be {last!r} (the reply to learn), got {roles[-1]!r}")
    for k in range(1, len(roles)):
        if roles[k] == roles[k - 1]:
            errs.append(f"{where}, turn {k + 1}: two {roles[k]!r} turns in a row; {names[0]} and {names[1]} must alternate")
            break
    return errs


def _object_head(rec: Any, line: int, allowed: tuple[str, ...], extra_note: str) -> tuple[str, list[str], bool]:
    """Where the line is, the error for a field outside ``allowed`` (``extra_note`` formats its name), and
    whether the line is an object that the caller can read on."""
    w = _where(line)
    if not isinstance(rec, dict):
        return w, [f"{w}: expected a JSON object"], False
    extra = sorted(set(rec) - set(allowed))
    return w, ([f"{w}: {extra_note.format(repr(extra[0]))}"] if extra else []), True


def _nonempty_list(rec: dict[str, Any], key: str, w: str, errs: list[str]) -> list[Any] | None:
    """``rec[key]`` when it is a non-empty list; otherwise None, with the error appended to ``errs``."""
    items = rec.get(key)
    if not isinstance(items, list) or not items:
        errs.append(f"{w}: {key} must be a non-empty list")
        return None
    return items


def _validate_bedrock(rec: dict[str, Any], line: int) -> list[str]:
    w, errs, ok = _object_head(rec, line, ("schemaVersion", "system", "messages"),
                               "unexpected field {} (allowed: schemaVersion, system, messages)")
    if not ok:
        return errs
    if not isinstance(rec.get("schemaVersion"), str):
        errs.append(f"{w}: schemaVersion missing; use {BEDROCK_SCHEMA!r}")
    system = rec.get("system", [])
    if not isinstance(system, list) or not all(isinstance(b, dict) and set(b) == {"text"} and isinstance(b["text"], str)
                                               and b["text"] for b in system):
        errs.append(f"{w}: system must be a list of {{'text': non-empty string}} blocks")
        system = []
    msgs = _nonempty_list(rec, "messages", w, errs)
    if msgs is None:
        return errs
    roles = []
    for j, m in enumerate(msgs):
        wj = _where(line, j)
        if not isinstance(m, dict) or set(m) != {"role", "content"}:
            errs.append(f"{wj}: a message is {{'role', 'content'}}")
            continue
        if m["role"] not in ("user", "assistant"):
            errs.append(f"{wj}: role {m['role']!r}; Bedrock conversations take user and assistant only")
        roles.append(m["role"])
        blocks = m["content"]
        if not isinstance(blocks, list) or not blocks:
            errs.append(f"{wj}: content must be a non-empty list of blocks")
            continue
        for b in blocks:
            if not (isinstance(b, dict) and set(b) == {"text"}):
                kind = sorted(b)[0] if isinstance(b, dict) and b else "?"
                errs.append(f"{wj}: a {kind!r} block; ftlab checks text-only datasets (image and video blocks need the "
                            "S3 rules of the Nova data page)")
                break
            if not isinstance(b["text"], str) or not b["text"]:
                errs.append(f"{wj}: empty or non-string text block")
                break
    errs += _alternation_errors(roles, "user", "assistant", w, ("user", "assistant"))
    prompts = [b["text"] for b in system] + [b.get("text", "") for m in msgs if isinstance(m, dict)
                                               and m.get("role") == "user" and isinstance(m.get("content"), list)
                                               for b in m["content"] if isinstance(b, dict)]
    for text in prompts:
        hit = next((k for k in _NOVA_RESERVED if isinstance(text, str) and text.lstrip().startswith(k)), None)
        if hit:
            errs.append(f"{w}: a prompt starts with {hit!r}, a reserved keyword for Nova fine-tuning; reword it")
            break
    return errs


def _validate_bedrock_pc(rec: dict[str, Any], line: int) -> list[str]:
    w = _where(line)
    if not isinstance(rec, dict) or set(rec) != {"prompt", "completion"}:
        return [f"{w}: a prompt/completion line has exactly the fields 'prompt' and 'completion'"]
    errs = [f"{w}: {k} must be a non-empty string" for k in ("prompt", "completion")
            if not isinstance(rec[k], str) or not rec[k]]
    if not errs and len(rec["prompt"]) + len(rec["completion"]) > BEDROCK_PC_MAX_CHARS:
        errs.append(f"{w}: {len(rec['prompt']) + len(rec['completion'])} characters; the quota is 4,096 tokens x 6 = "
                    f"{BEDROCK_PC_MAX_CHARS} characters per sample")
    return errs


def _validate_vertex(rec: dict[str, Any], line: int) -> list[str]:
    w, errs, ok = _object_head(rec, line, ("systemInstruction", "system_instruction", "contents", "tools"),
                               "unexpected field {} (allowed: systemInstruction, contents, tools)")
    if not ok:
        return errs
    si = rec.get("systemInstruction", rec.get("system_instruction"))
    if si is not None and not (isinstance(si, dict) and isinstance(si.get("parts"), list)
                               and all(isinstance(p, dict) and isinstance(p.get("text"), str) and p["text"]
                                       for p in si["parts"])):
        errs.append(f"{w}: systemInstruction must be {{'parts': [{{'text': ...}}]}}")
    contents = _nonempty_list(rec, "contents", w, errs)
    if contents is None:
        return errs
    roles, calls = [], 0
    for j, c in enumerate(contents):
        wj = f"{w}, content {j + 1}"
        if not isinstance(c, dict) or c.get("role") not in ("user", "model") or not isinstance(c.get("parts"), list) \
                or not c["parts"]:
            errs.append(f"{wj}: a content is {{'role': 'user'|'model', 'parts': [...]}} with at least one part")
            continue
        roles.append(c["role"])
        for p in c["parts"]:
            kinds = [k for k in ("text", "functionCall", "functionResponse", "fileData") if k in p] \
                if isinstance(p, dict) else []
            if len(kinds) != 1 or len(p) != 1:
                errs.append(f"{wj}: a part holds exactly one of text, functionCall, functionResponse, fileData")
                break
            kind = kinds[0]
            if kind == "text" and (not isinstance(p["text"], str) or not p["text"]):
                errs.append(f"{wj}: empty text part")
                break
            if kind == "functionCall":
                calls += 1
                fc = p["functionCall"]
                if c["role"] != "model" or not isinstance(fc.get("name"), str) or not isinstance(fc.get("args", {}), dict):
                    errs.append(f"{wj}: functionCall belongs to a model turn, with a name and object args")
                    break
            if kind == "functionResponse":
                fr = p["functionResponse"]
                if not isinstance(fr.get("name"), str) or not isinstance(fr.get("response"), dict):
                    errs.append(f"{wj}: functionResponse has a name and an object response")
                    break
    errs += _alternation_errors(roles, "user", "model", w, ("user", "model"))
    if calls and "tools" not in rec:
        errs.append(f"{w}: functionCall parts without a tools field; declare the functions (tools[].functionDeclarations)")
    return errs


def _validate_together(rec: dict[str, Any], line: int) -> list[str]:
    w, errs, ok = _object_head(rec, line, ("messages", "tools"),
                               "extra column {}; a conversational line holds messages (and tools) only")
    if not ok:
        return errs
    msgs = _nonempty_list(rec, "messages", w, errs)
    if msgs is None:
        return errs
    prev = None
    for j, m in enumerate(msgs):
        wj = _where(line, j)
        if not isinstance(m, dict) or m.get("role") not in _ROLES:
            errs.append(f"{wj}: role must be one of {', '.join(_ROLES)}")
            continue
        role = m["role"]
        if j == 0 and role not in ("system", "user"):
            errs.append(f"{wj}: a conversation starts with system or user, got {role!r}")
        if "content" in m and m["content"] is not None and not isinstance(m["content"], str):
            errs.append(f"{wj}: content must be a string")
        if m.get("content") is None and not (role == "assistant" and m.get("tool_calls")):
            errs.append(f"{wj}: content missing")
        if "weight" in m and (isinstance(m["weight"], bool) or m["weight"] not in (0, 1)):
            errs.append(f"{wj}: weight must be the integer 0 or 1, got {m['weight']!r}")
        if role == prev and role != "tool":
            errs.append(f"{wj}: two {role!r} messages in a row; user and assistant must alternate")
        prev = role
    return errs


def _validate_azure(rec: dict[str, Any], line: int) -> list[str]:
    w, errs, ok = _object_head(rec, line, ("messages", "tools", "parallel_tool_calls", "functions"),
                               "unexpected field {}")
    if not ok:
        return errs
    msgs = _nonempty_list(rec, "messages", w, errs)
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


_VALIDATE: dict[str, Callable[[dict[str, Any], int], list[str]]] = {
    "bedrock": _validate_bedrock, "bedrock-prompt-completion": _validate_bedrock_pc,
    "vertex": _validate_vertex, "together": _validate_together, "azure": _validate_azure,
}


def _file_level(key: str, n: int, *, n_bytes: int | None = None, has_bom: bool | None = None) -> tuple[list[str], list[str]]:
    errs, warns = [], []
    if n == 0:
        errs.append("the file holds no examples")
    if key.startswith("bedrock") and n > BEDROCK_MAX_RECORDS:
        errs.append(f"{n} records; Bedrock (Nova) takes at most {BEDROCK_MAX_RECORDS} training + validation records")
    if key == "vertex" and 0 < n < VERTEX_RECOMMENDED_MIN:
        warns.append(f"{n} examples; Vertex recommends starting with {VERTEX_RECOMMENDED_MIN}")
    if key == "azure":
        if 0 < n < AZURE_MIN_EXAMPLES:
            errs.append(f"{n} examples; Azure OpenAI fine-tuning needs at least {AZURE_MIN_EXAMPLES}")
        if has_bom is False:
            errs.append("line 1: no byte-order mark; Azure wants UTF-8 with a BOM (ftlab convert --to azure writes one)")
        if n_bytes is not None and n_bytes >= AZURE_MAX_BYTES:
            errs.append(f"{n_bytes / 2**20:.0f} MB; Azure takes files under 512 MB")
    return errs, warns


@dataclass
class Validation:
    """A platform file check: ``ok``, ``n_examples`` and line-numbered ``errors`` / ``warnings``."""

    platform: str
    n_examples: int
    errors: list[str]
    warnings: list[str]

    @property
    def ok(self) -> bool:
        return not self.errors

    def report(self) -> dict[str, Any]:
        return {"ok": self.ok, "n_examples": self.n_examples, "errors": list(self.errors),
                "warnings": list(self.warnings), "platform": self.platform}


def _read_platform_lines(path: Path, key: str) -> tuple[list[tuple[int, Any]], list[str], bool, int]:
    raw = path.read_bytes()
    has_bom = raw.startswith(b"\xef\xbb\xbf")
    items, errors = _read_json_lines(path, raw)
    if has_bom and key != "azure":
        errors.insert(0, "line 1: the file starts with a byte-order mark; this platform wants plain UTF-8")
    return items, errors, has_bom, len(raw)


def _read_json_lines(path: Path, raw: bytes) -> tuple[list[tuple[int, Any]], list[str]]:
    """The parsed non-blank lines of a UTF-8 JSONL file (a BOM is allowed), with their 1-based numbers,
    and an error per line that is not JSON. Not UTF-8 at all is an FtlabError naming the byte."""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise FtlabError(f"{path} is not UTF-8 (byte {exc.start}); save it as UTF-8 and try again") from None
    items: list[tuple[int, Any]] = []
    errors: list[str] = []
    for i, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            items.append((i, json.loads(line)))
        except json.JSONDecodeError as exc:
            errors.append(f"line {i}: invalid JSON ({exc.msg}, column {exc.colno})")
    return items, errors


def validate_file(path: str | os.PathLike[str], platform: str, *, bedrock_format: str = "conversation") -> Validation:
    """Check a file in a platform's format against that platform's rules, line by line.

    Example: ``validate_file("train.bedrock.jsonl", "bedrock").ok`` is True for
    ``convert_file`` output; a hand-made file with an ``assistant`` turn first gets
    ``line 4: the first turn must be 'user', got 'assistant'``.
    """
    key = _format_key(platform, bedrock_format)
    path = Path(path)
    if not path.is_file():
        raise FtlabError(f"no such file: {path}")
    items, errors, has_bom, n_bytes = _read_platform_lines(path, key)
    for line, rec in items:
        errors += _VALIDATE[key](rec, line)
    file_errs, warns = _file_level(key, len(items), n_bytes=n_bytes, has_bom=has_bom if key == "azure" else None)
    return Validation(platform, len(items), errors + file_errs, warns)


# =======================================================================================
# Convert, write, read back
# =======================================================================================
def convert(source: str | os.PathLike[str] | Iterable[dict[str, Any]], platform: str, *,
            bedrock_format: str = "conversation") -> Conversion:
    """Convert OpenAI chat examples (a JSONL path or a list) for ``platform``, checking its rules.

    Example: ``convert(support_splits()["train"], "bedrock").n_examples == 1020``.
    """
    key = _format_key(platform, bedrock_format)
    examples, errors, n_input = read_chat_lines(source)
    conv = Conversion(platform, n_input, errors=list(errors), bedrock_format=bedrock_format)
    for line, ex in examples:
        try:
            rec = to_vertex(ex, line, conv.warnings) if key == "vertex" else _TO[key](ex, line)
        except _Unholdable as exc:
            conv.errors.append(str(exc))
            continue
        rule_errors = _VALIDATE[key](rec, line)
        if rule_errors:
            conv.errors += rule_errors
            continue
        conv.records.append(rec)
        conv.lines.append(line)
    file_errs, warns = _file_level(key, n_input)
    conv.errors += file_errs
    conv.warnings += warns
    conv.errors.sort(key=_line_of)
    return conv


def _line_of(message: str) -> int:
    m = re.match(r"line (\d+)", message)
    return int(m.group(1)) if m else 0


def write_records(records: Iterable[dict[str, Any]], path: str | os.PathLike[str], platform: str) -> Path:
    """Write records as JSONL, one per line, UTF-8 (with a BOM for Azure, as Azure asks)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    encoding = "utf-8-sig" if platform == "azure" else "utf-8"
    with path.open("w", encoding=encoding, newline="\n") as f:
        for rec in records:
            f.write(json.dumps(rec, ensure_ascii=False) + "\n")
    return path


def default_out(src: str | os.PathLike[str], platform: str) -> Path:
    """``data/train.jsonl`` → ``data/train.bedrock.jsonl``."""
    src = Path(src)
    return src.with_name(f"{src.stem}.{platform}.jsonl")


def convert_file(src: str | os.PathLike[str], platform: str, out: str | os.PathLike[str] | None = None, *,
                 bedrock_format: str = "conversation") -> Conversion:
    """Convert a JSONL file and write the result when every example converted (else write nothing).

    The written file is checked again from disk with ``validate_file`` (Azure: the BOM, the
    size), so ``conv.ok`` means the file on disk passed the platform's rules.
    """
    conv = convert(src, platform, bedrock_format=bedrock_format)
    if conv.ok:
        conv.write(out or default_out(src, platform))
        check = validate_file(conv.path, platform, bedrock_format=bedrock_format)
        conv.errors += check.errors
    return conv


def read_back(path: str | os.PathLike[str], platform: str, *, bedrock_format: str = "conversation") -> list[dict[str, Any]]:
    """Read a platform file back as OpenAI chat examples (for round-trip checks)."""
    key = _format_key(platform, bedrock_format)
    items, errors, _, _ = _read_platform_lines(Path(path), key)
    bad = [e for e in errors if "invalid JSON" in e]
    if bad:
        raise FtlabError(f"{path}: {bad[0]}")
    return [_FROM[key](rec) for _, rec in items]


def normalize_chat(example: dict[str, Any]) -> dict[str, Any]:
    """A canonical form for comparing conversations across formats.

    Drops ``content: null``, turns a one-part text list into a string, parses tool-call
    ``arguments`` and numbers tool-call ids by position (the ids Gemini does not keep).
    """
    ex = copy.deepcopy(example)
    ids: dict[str, str] = {}
    n = 0
    for m in ex.get("messages", []):
        if m.get("content") is None:
            m.pop("content", None)
        c = m.get("content")
        if isinstance(c, list) and len(c) == 1 and isinstance(c[0], dict) and set(c[0]) == {"type", "text"}:
            m["content"] = c[0]["text"]
        for call in m.get("tool_calls") or []:
            n += 1
            if "id" in call:
                ids[call["id"]] = f"call_{n}"
                call["id"] = f"call_{n}"
            fn = call.get("function", {})
            with contextlib.suppress(TypeError, json.JSONDecodeError):
                fn["arguments"] = json.loads(fn.get("arguments", "null"))
        if "tool_call_id" in m:
            m["tool_call_id"] = ids.get(m["tool_call_id"], m["tool_call_id"])
    return ex


def round_trip(src: str | os.PathLike[str] | list[dict[str, Any]], platform: str, *, folder: str | os.PathLike[str],
               bedrock_format: str = "conversation", normalize: bool = False) -> dict[str, Any]:
    """Convert, write, read back and compare with the input. Returns counts and the first mismatch."""
    originals = [ex for _, ex in read_chat_lines(src)[0]]
    out = Path(folder) / f"roundtrip.{platform}.jsonl"
    conv = convert(src, platform, bedrock_format=bedrock_format)
    if not conv.ok:
        return {"platform": platform, "equal": False, "n": conv.n_examples, "first_difference": conv.errors[0]}
    conv.write(out)
    back = read_back(out, platform, bedrock_format=bedrock_format)
    keep = originals
    fix = normalize_chat if normalize else (lambda e: e)
    diffs = [i for i, (a, b) in enumerate(zip(keep, back, strict=True)) if fix(a) != fix(b)]
    return {"platform": platform, "equal": not diffs and len(back) == len(keep), "n": len(back),
            "first_difference": None if not diffs else f"example {diffs[0] + 1}"}


# =======================================================================================
# Cost: a view of ftlab.cost (one price catalog, ftlab/catalog/prices.yaml)
# =======================================================================================
def training_tokens(examples: Iterable[dict[str, Any]], model: str = "o200k_base") -> int:
    """Tokens in a dataset, counted the OpenAI-cookbook way with tiktoken (an estimate for other vendors).

    Each platform bills with its own tokenizer; o200k_base is within a few percent for English.
    Same count as ``ftlab.cost.dataset_tokens(examples, model).total``.
    """
    return cost.dataset_tokens(list(examples), model).total


def cost_table(train_tokens: int, *, epochs: int = 3, training_hours: float | None = None, validation_tokens: int = 0,
               n_evals: int = 0, openai_models: Iterable[str] = ("gpt-4.1-mini", "gpt-4.1"),
               self_managed_gpu: str | None = None, as_of: str | None = None,
               catalog: Catalog | None = None) -> list[dict[str, Any]]:
    """One training run priced on every cloud-managed catalog entry, the OpenAI models named, and the
    seeds' self-managed reference (the caveat's ``reference_gpu``, an A100 spot instance) last.

    A view of :func:`ftlab.cost.cost_for`, which does the arithmetic: per-token entries bill
    ``train_tokens x epochs`` (Together adds ``n_evals x validation_tokens``); per-hour entries (open
    models on Vertex and Foundry, and the self-managed GPU) bill ``training_hours``, or, when that is
    ``None``, the hours the throughput table estimates for the run. Rows are dicts with ``platform``,
    ``model``, ``entry``, ``pricing``, ``rate``, ``billed``, ``cost_usd`` (``None`` where the catalog has
    no price), ``vs_self_managed`` (cost / the self-managed cost), ``source``, ``as_of`` and ``confidence``.

    Example: seed 001's run (5,000 examples x 300 tokens, 3 epochs) is ``cost_table(1_500_000, epochs=3)``;
    its Together row at the seed's price costs $20.25 and its self-managed row $3.00 (2 h x $1.50).
    """
    if train_tokens < 0 or epochs < 1 or (training_hours is not None and training_hours <= 0):
        raise FtlabError("cost_table needs train_tokens >= 0, epochs >= 1 and training_hours > 0 (or None to estimate)")
    cat = catalog or cost.load_catalog()
    tokens = train_tokens * epochs
    kw = {"training_hours": training_hours, "validation_tokens": validation_tokens * n_evals, "digits": 4,
          "as_of": as_of, "catalog": cat}
    managed = [m for m in cat.models if m["fine_tunable"] and cat.providers[m["provider"]]["path"] == "cloud_managed"]
    priced = [(m["provider"], cost.cost_for(m["id"], tokens, **kw)) for m in managed]
    priced += [(cat.entry(m)["provider"], cost.cost_for(m, tokens, **kw)) for m in openai_models]
    gpu = self_managed_gpu or cost.managed_premium(cat)["reference_gpu"]
    self_row = cost.cost_for(gpu, tokens, **kw)
    if self_row.pricing != "per_gpu_hour":
        raise FtlabError(f"self_managed_gpu {gpu!r} is not a GPU id; valid choices: {', '.join(g['id'] for g in cat.gpus)}")
    priced.append(("self_hosted", self_row))
    self_cost = self_row.training_cost_usd
    rows = []
    for provider, r in priced:
        usd = r.training_cost_usd
        rows.append({"platform": cat.providers[provider].get("platform", provider), "model": r.model, "entry": r.entry,
                     "pricing": r.pricing, "rate": r.rate, "billed": r.billed, "cost_usd": usd,
                     "vs_self_managed": round(usd / self_cost, 2) if usd is not None and self_cost else None,
                     "source": r.source, "as_of": r.as_of, "confidence": r.confidence,
                     "availability": cost.availability_cell(r), "available": r.available})
    return rows


def caveat_range(rows: list[dict[str, Any]], catalog: Catalog | None = None) -> dict[str, float]:
    """What the seeds' caveat predicts for managed cost: the self-managed row's cost x the ratio (2, 3).

    The text, ratio and source come from ``ftlab.cost.managed_premium()``.
    """
    self_cost = next(r["cost_usd"] for r in rows if r["platform"] == "self-managed")
    lo, hi = cost.managed_premium_range(self_cost, catalog)
    return {"self_managed_usd": self_cost, "managed_low_usd": lo, "managed_high_usd": hi}


def format_table(rows: list[dict[str, Any]], columns: list[str]) -> str:
    """A Markdown table of ``rows`` (for notebooks and the CLI)."""
    head = "| " + " | ".join(columns) + " |\n|" + "---|" * len(columns) + "\n"

    def cell(v: Any) -> str:
        return "—" if v is None else str(v)

    return head + "\n".join("| " + " | ".join(cell(r.get(c, "")) for c in columns) + " |" for r in rows)


# =======================================================================================
# Submission: Bedrock through boto3 (real or moto), Vertex and Together request builders
# =======================================================================================
BEDROCK_TERMINAL = ("Completed", "Failed", "Stopped")
_JOB_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9+\-.])*$")


def _echo_default(text: str) -> None:
    print(text)


def _timestamp_name(prefix: str = "ftlab") -> str:
    return f"{prefix}-{datetime.now(UTC).strftime('%Y%m%d-%H%M%S')}"


def _require_valid(path: Path, platform: str, **kw: Any) -> Validation:
    check = validate_file(path, platform, **kw)
    if not check.ok:
        raise FtlabError(f"{path} does not pass {platform}'s rules ({len(check.errors)} problem(s), first: "
                         f"{check.errors[0]}); run `ftlab convert` first")
    return check


def _session(session: Any = None, region: str = "us-east-1") -> Any:
    if session is not None:
        return session
    import boto3

    return boto3.Session(region_name=region)


def create_bedrock_prerequisites(*, bucket: str, role_name: str = "ftlab-bedrock-customization",
                                 region: str = "us-east-1", session: Any = None) -> str:
    """Create (or reuse) the S3 bucket and the IAM service role a customization job needs; return the role ARN.

    Real boto3 calls: against moto's ``mock_aws`` offline, against your account with real credentials.
    The role trusts ``bedrock.amazonaws.com`` and may read and write only ``bucket``.
    """
    sess = _session(session, region)
    s3, iam = sess.client("s3", region_name=region), sess.client("iam", region_name=region)
    try:
        if region == "us-east-1":
            s3.create_bucket(Bucket=bucket)
        else:
            s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": region})
    except s3.exceptions.BucketAlreadyOwnedByYou:
        pass
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "bedrock.amazonaws.com"},
                                                     "Action": "sts:AssumeRole"}]}
    access = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
                                                      "Action": ["s3:GetObject", "s3:PutObject", "s3:ListBucket"],
                                                      "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"]}]}
    try:
        arn = iam.create_role(RoleName=role_name, AssumeRolePolicyDocument=json.dumps(trust),
                              Description="ftlab: Bedrock model customization")["Role"]["Arn"]
    except iam.exceptions.EntityAlreadyExistsException:
        arn = iam.get_role(RoleName=role_name)["Role"]["Arn"]
    iam.put_role_policy(RoleName=role_name, PolicyName="ftlab-training-data", PolicyDocument=json.dumps(access))
    return arn


def bedrock_job_request(*, job_name: str, custom_model_name: str, role_arn: str, base_model: str, training_uri: str,
                        output_uri: str, validation_uri: str | None = None,
                        hyperparameters: dict[str, Any] | None = None) -> dict[str, Any]:
    """The keyword arguments of ``bedrock.create_model_customization_job`` (hyperparameters are strings)."""
    if not _JOB_NAME.match(job_name) or len(job_name) > 63:
        raise FtlabError(f"Bedrock job name {job_name!r}: use letters, digits, '-', '+', '.', at most 63 characters")
    request: dict[str, Any] = {
        "jobName": job_name, "customModelName": custom_model_name, "roleArn": role_arn,
        "baseModelIdentifier": base_model, "customizationType": "FINE_TUNING",
        "trainingDataConfig": {"s3Uri": training_uri}, "outputDataConfig": {"s3Uri": output_uri},
        "hyperParameters": {k: str(v) for k, v in (hyperparameters or {"epochCount": 2}).items()},
    }
    if validation_uri:
        request["validationDataConfig"] = {"validators": [{"s3Uri": validation_uri}]}
    return request


def submit_bedrock_job(train_file: str | os.PathLike[str], *, bucket: str, role_arn: str,
                       base_model: str = "amazon.nova-micro-v1:0", job_name: str | None = None,
                       custom_model_name: str | None = None, validation_file: str | os.PathLike[str] | None = None,
                       hyperparameters: dict[str, Any] | None = None, prefix: str = "ftlab", region: str = "us-east-1",
                       bedrock_format: str = "conversation", dry_run: bool = True, session: Any = None,
                       echo: Callable[[str], None] = _echo_default) -> dict[str, Any]:
    """Upload a Bedrock-format file to S3 and start a model customization job.

    ``dry_run=True`` (the default) prints the uploads and the request and touches nothing.
    ``dry_run=False`` needs AWS credentials (moto's ``mock_aws`` provides fake ones offline):
    it uploads with ``s3.upload_file``, checks the objects exist, and calls
    ``create_model_customization_job``. Returns ``{"job_arn", "job_name", "request", "uploads"}``.
    ``bedrock_format="prompt-completion"`` submits a prompt/completion file (Titan, Cohere models).
    """
    train_file = Path(train_file)
    _require_valid(train_file, "bedrock", bedrock_format=bedrock_format)
    if validation_file is not None:
        _require_valid(Path(validation_file), "bedrock", bedrock_format=bedrock_format)
    job_name = job_name or _timestamp_name()
    base = f"{prefix.strip('/')}/{job_name}"
    uploads = [(train_file, f"{base}/train.jsonl")]
    if validation_file is not None:
        uploads.append((Path(validation_file), f"{base}/validation.jsonl"))
    request = bedrock_job_request(
        job_name=job_name, custom_model_name=custom_model_name or f"{job_name}-model", role_arn=role_arn,
        base_model=base_model, training_uri=f"s3://{bucket}/{uploads[0][1]}", output_uri=f"s3://{bucket}/{base}/output/",
        validation_uri=f"s3://{bucket}/{uploads[1][1]}" if validation_file is not None else None,
        hyperparameters=hyperparameters)
    plan = {"dry_run": dry_run, "uploads": [{"file": str(p), "s3_uri": f"s3://{bucket}/{k}"} for p, k in uploads],
            "request": request, "job_name": job_name, "job_arn": None}
    if dry_run:
        echo("dry run: nothing uploaded, nothing submitted")
        for u in plan["uploads"]:
            echo(f"s3.upload_file({u['file']!r}, {bucket!r}, {u['s3_uri'].split('/', 3)[3]!r})")
        echo("bedrock.create_model_customization_job(**" + json.dumps(request, indent=2) + ")")
        return plan
    sess = _session(session, region)
    if sess.get_credentials() is None:
        raise FtlabError("no AWS credentials found (env, ~/.aws or a role); configure them or keep dry_run=True")
    s3 = sess.client("s3", region_name=region)
    for path, key in uploads:
        s3.upload_file(str(path), bucket, key)
        size = s3.head_object(Bucket=bucket, Key=key)["ContentLength"]
        if size != path.stat().st_size:
            raise FtlabError(f"s3://{bucket}/{key} holds {size} bytes, the file {path.stat().st_size}; upload again")
    bedrock = sess.client("bedrock", region_name=region)
    plan["job_arn"] = bedrock.create_model_customization_job(**request)["jobArn"]
    echo(f"submitted {job_name}: {plan['job_arn']}")
    return plan


def bedrock_job_status(job_name: str, *, region: str = "us-east-1", session: Any = None) -> dict[str, Any]:
    """``get_model_customization_job`` by job *name*.

    AWS accepts the name or the ARN; moto 5.2 finds jobs by name only (the ARN raises
    ResourceNotFoundException there), so ftlab always asks by name, which works on both.
    """
    bedrock = _session(session, region).client("bedrock", region_name=region)
    return bedrock.get_model_customization_job(jobIdentifier=job_name)


def wait_for_bedrock_job(job_name: str, *, region: str = "us-east-1", session: Any = None, interval: float = 60.0,
                         timeout: float | None = None, max_polls: int | None = None,
                         echo: Callable[[str], None] = _echo_default) -> dict[str, Any]:
    """Poll until the job is Completed, Failed or Stopped, or ``timeout`` / ``max_polls`` runs out.

    Returns ``{"status", "finished", "polls": [status, ...], "job": last response}``. A real
    job takes tens of minutes; moto never trains, so its jobs stay InProgress until stopped.
    """
    started, polls = time.monotonic(), []
    while True:
        job = bedrock_job_status(job_name, region=region, session=session)
        polls.append(job["status"])
        echo(f"poll {len(polls)}: {job_name} is {job['status']}")
        finished = job["status"] in BEDROCK_TERMINAL
        out_of_time = timeout is not None and time.monotonic() - started + interval > timeout
        if finished or out_of_time or (max_polls is not None and len(polls) >= max_polls):
            return {"status": job["status"], "finished": finished, "polls": polls, "job": job}
        time.sleep(interval)


def stop_bedrock_job(job_name: str, *, region: str = "us-east-1", session: Any = None) -> str:
    """Stop a running customization job; returns the status Bedrock reports afterwards."""
    bedrock = _session(session, region).client("bedrock", region_name=region)
    bedrock.stop_model_customization_job(jobIdentifier=job_name)
    return bedrock_job_status(job_name, region=region, session=session)["status"]


# --- Vertex AI ---------------------------------------------------------------------------
# REST: POST https://{location}-aiplatform.googleapis.com/v1/projects/{p}/locations/{l}/tuningJobs
# with {"baseModel", "supervisedTuningSpec": {"trainingDatasetUri", "validationDatasetUri",
# "hyperParameters": {"epochCount", "learningRateMultiplier", "adapterSize"}}, "tunedModelDisplayName"}
# (Vertex AI "Tune Gemini models by using supervised fine-tuning", read 2026-11-23). The dataset
# goes to Cloud Storage first: POST https://storage.googleapis.com/upload/storage/v1/b/{bucket}/o
# ?uploadType=media&name={object} (Cloud Storage JSON API, simple upload).
_ADAPTER = {1: "ADAPTER_SIZE_ONE", 2: "ADAPTER_SIZE_TWO", 4: "ADAPTER_SIZE_FOUR", 8: "ADAPTER_SIZE_EIGHT",
            16: "ADAPTER_SIZE_SIXTEEN", 32: "ADAPTER_SIZE_THIRTY_TWO"}
VERTEX_API = "https://{location}-aiplatform.googleapis.com"
GCS_UPLOAD_API = "https://storage.googleapis.com"


def vertex_tuning_request(*, project: str, training_uri: str, location: str = "us-central1",
                          base_model: str = "gemini-2.5-flash", validation_uri: str | None = None, epochs: int = 3,
                          learning_rate_multiplier: float = 1.0, adapter_size: int = 4,
                          display_name: str = "ftlab-support", api_root: str | None = None) -> dict[str, Any]:
    """The exact REST call that creates a Vertex AI supervised tuning job, and its google-genai equivalent."""
    if adapter_size not in _ADAPTER:
        raise FtlabError(f"adapter_size {adapter_size}; use one of {', '.join(map(str, _ADAPTER))}")
    spec: dict[str, Any] = {"trainingDatasetUri": training_uri}
    if validation_uri:
        spec["validationDatasetUri"] = validation_uri
    spec["hyperParameters"] = {"epochCount": str(epochs), "learningRateMultiplier": learning_rate_multiplier,
                               "adapterSize": _ADAPTER[adapter_size]}
    body = {"baseModel": base_model, "supervisedTuningSpec": spec, "tunedModelDisplayName": display_name}
    root = (api_root or VERTEX_API).format(location=location).rstrip("/")
    sdk = (
        "from google import genai\nfrom google.genai import types\n\n"
        f"client = genai.Client(vertexai=True, project={project!r}, location={location!r})\n"
        f"job = client.tunings.tune(\n    base_model={base_model!r},\n"
        f"    training_dataset=types.TuningDataset(gcs_uri={training_uri!r}),\n"
        f"    config=types.CreateTuningJobConfig(\n        epoch_count={epochs}, learning_rate_multiplier="
        f"{learning_rate_multiplier}, adapter_size={_ADAPTER[adapter_size]!r},\n"
        f"        tuned_model_display_name={display_name!r}"
        + (f",\n        validation_dataset=types.TuningValidationDataset(gcs_uri={validation_uri!r})" if validation_uri else "")
        + "))"
    )
    return {"method": "POST", "url": f"{root}/v1/projects/{project}/locations/{location}/tuningJobs", "body": body,
            "sdk": sdk}


def gcs_upload_request(bucket: str, object_name: str, file: str | os.PathLike[str],
                       storage_root: str | None = None) -> dict[str, Any]:
    root = (storage_root or GCS_UPLOAD_API).rstrip("/")
    return {"method": "POST", "file": str(file), "gcs_uri": f"gs://{bucket}/{object_name}",
            "url": f"{root}/upload/storage/v1/b/{bucket}/o?uploadType=media&name={urllib.parse.quote(object_name, safe='')}",
            "headers": {"Content-Type": "application/jsonl"}}


def _google_token(access_token: str | None) -> str:
    token = access_token or os.environ.get("GOOGLE_CLOUD_ACCESS_TOKEN")
    if token:
        return token
    try:
        import google.auth
        import google.auth.transport.requests
    except ImportError:
        raise FtlabError("no Google credentials: set GOOGLE_CLOUD_ACCESS_TOKEN (gcloud auth print-access-token) or "
                         "pip install google-auth and run gcloud auth application-default login") from None
    try:
        creds, _ = google.auth.default(scopes=["https://www.googleapis.com/auth/cloud-platform"])
        creds.refresh(google.auth.transport.requests.Request())
    except Exception as exc:  # google.auth raises several unrelated types
        raise FtlabError(f"no usable Google credentials ({type(exc).__name__}); run gcloud auth application-default login") from None
    return creds.token


def _http(method: str, url: str, *, token: str, data: bytes, content_type: str) -> dict[str, Any]:
    req = urllib.request.Request(url, data=data, method=method,
                                 headers={"Authorization": f"Bearer {token}", "Content-Type": content_type})
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            return json.loads(resp.read().decode() or "{}")
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode(errors="replace")[:300]
        raise FtlabError(f"{method} {url.split('?')[0]} failed: HTTP {exc.code}: {detail}") from None


def submit_vertex_job(train_file: str | os.PathLike[str], *, project: str, bucket: str, location: str = "us-central1",
                      base_model: str = "gemini-2.5-flash", validation_file: str | os.PathLike[str] | None = None,
                      epochs: int = 3, learning_rate_multiplier: float = 1.0, adapter_size: int = 4,
                      display_name: str = "ftlab-support", prefix: str = "ftlab", dry_run: bool = True,
                      access_token: str | None = None, api_root: str | None = None, storage_root: str | None = None,
                      echo: Callable[[str], None] = _echo_default) -> dict[str, Any]:
    """Upload a Vertex-format file to Cloud Storage and create a Gemini tuning job.

    ``dry_run=True`` prints the uploads, the REST call and the google-genai SDK call, and sends
    nothing. ``dry_run=False`` needs a token (``access_token``, ``GOOGLE_CLOUD_ACCESS_TOKEN`` or
    google-auth's default credentials) and returns the created TuningJob resource.
    """
    train_file = Path(train_file)
    _require_valid(train_file, "vertex")
    uploads = [gcs_upload_request(bucket, f"{prefix}/{display_name}/train.jsonl", train_file, storage_root)]
    if validation_file is not None:
        _require_valid(Path(validation_file), "vertex")
        uploads.append(gcs_upload_request(bucket, f"{prefix}/{display_name}/validation.jsonl", validation_file,
                                          storage_root))
    create = vertex_tuning_request(project=project, location=location, base_model=base_model,
                                   training_uri=uploads[0]["gcs_uri"],
                                   validation_uri=uploads[1]["gcs_uri"] if len(uploads) > 1 else None, epochs=epochs,
                                   learning_rate_multiplier=learning_rate_multiplier, adapter_size=adapter_size,
                                   display_name=display_name, api_root=api_root)
    plan = {"dry_run": dry_run, "uploads": uploads, "create": create, "job": None}
    if dry_run:
        echo("dry run: nothing uploaded, nothing submitted")
        for u in uploads:
            echo(f"POST {u['url']}  <- {u['file']}")
        echo(f"POST {create['url']}\n{json.dumps(create['body'], indent=2)}")
        echo("# the same with the google-genai SDK:\n" + create["sdk"])
        return plan
    token = _google_token(access_token)
    for u in uploads:
        _http("POST", u["url"], token=token, data=Path(u["file"]).read_bytes(), content_type="application/jsonl")
    plan["job"] = _http("POST", create["url"], token=token, data=json.dumps(create["body"]).encode(),
                        content_type="application/json")
    echo(f"created {plan['job'].get('name', '?')} ({plan['job'].get('state', '?')})")
    return plan


# --- Together AI -------------------------------------------------------------------------
# REST: POST https://api.together.xyz/v1/fine-tunes (docs.together.ai/reference/post-fine-tunes,
# read 2026-11-23) with {"training_file", "model", "n_epochs", "learning_rate", "training_type":
# {"type": "Lora", "lora_r", "lora_alpha", ...}, "training_method": {"method": "sft"}, ...};
# the SDK call is client.fine_tuning.create(training_file=..., model=..., lora=True, ...), after
# client.files.upload(file=..., purpose="fine-tune", check=True) returned the file id.
TOGETHER_API = "https://api.together.xyz/v1"


def together_job_request(*, model: str = "meta-llama/Meta-Llama-3.1-8B-Instruct-Reference",
                         training_file_id: str = "<file id from client.files.upload>",
                         validation_file_id: str | None = None, n_epochs: int = 3, learning_rate: float = 1e-5,
                         lora: bool = True, lora_r: int = 8, lora_alpha: int = 16, n_evals: int = 0,
                         suffix: str = "ftlab-support") -> dict[str, Any]:
    """The Together SDK keyword arguments and the REST body of one fine-tuning job."""
    sdk = {"training_file": training_file_id, "model": model, "n_epochs": n_epochs, "learning_rate": learning_rate,
           "lora": lora, "suffix": suffix}
    body: dict[str, Any] = {"training_file": training_file_id, "model": model, "n_epochs": n_epochs,
                            "learning_rate": learning_rate, "suffix": suffix,
                            "training_method": {"method": "sft", "train_on_inputs": "auto"},
                            "training_type": {"type": "Lora", "lora_r": lora_r, "lora_alpha": lora_alpha,
                                              "lora_dropout": 0.0, "lora_trainable_modules": "all-linear"}
                            if lora else {"type": "Full"}}
    if lora:
        sdk.update(lora_r=lora_r, lora_alpha=lora_alpha)
    if validation_file_id:
        sdk.update(validation_file=validation_file_id, n_evals=n_evals)
        body.update(validation_file=validation_file_id, n_evals=n_evals)
    return {"sdk": sdk, "rest": {"method": "POST", "url": f"{TOGETHER_API}/fine-tunes", "body": body}}


def submit_together_job(train_file: str | os.PathLike[str], *, model: str = "meta-llama/Meta-Llama-3.1-8B-Instruct-Reference",
                        validation_file: str | os.PathLike[str] | None = None, n_epochs: int = 3,
                        learning_rate: float = 1e-5, n_evals: int = 0, suffix: str = "ftlab-support",
                        dry_run: bool = True, echo: Callable[[str], None] = _echo_default) -> dict[str, Any]:
    """Upload a Together-format file and start a LoRA job with the ``together`` SDK.

    ``dry_run=True`` prints ``client.files.upload(...)``, ``client.fine_tuning.create(...)`` and the
    REST body, and sends nothing. ``dry_run=False`` needs ``TOGETHER_API_KEY`` and the optional
    ``together`` package (``pip install together``).
    """
    train_file = Path(train_file)
    _require_valid(train_file, "together")
    if validation_file is not None:
        _require_valid(Path(validation_file), "together")
    req = together_job_request(model=model, n_epochs=n_epochs, learning_rate=learning_rate, suffix=suffix,
                               n_evals=n_evals,
                               validation_file_id="<validation file id>" if validation_file is not None else None)
    plan = {"dry_run": dry_run, "request": req, "job": None}
    if dry_run:
        echo("dry run: nothing uploaded, nothing submitted")
        echo("from together import Together\nclient = Together()  # reads TOGETHER_API_KEY")
        echo(f"train = client.files.upload(file={str(train_file)!r}, purpose='fine-tune', check=True)")
        if validation_file is not None:
            echo(f"val = client.files.upload(file={str(validation_file)!r}, purpose='fine-tune', check=True)")
        kwargs = ", ".join(f"{k}={v!r}" for k, v in req["sdk"].items())
        echo(f"job = client.fine_tuning.create({kwargs})".replace("'<file id from client.files.upload>'", "train.id")
             .replace("'<validation file id>'", "val.id"))
        echo(f"# REST: POST {req['rest']['url']}\n{json.dumps(req['rest']['body'], indent=2)}")
        return plan
    if not os.environ.get("TOGETHER_API_KEY"):
        raise FtlabError("TOGETHER_API_KEY is not set; export it (never pass keys as parameters) or keep dry_run=True")
    try:
        from together import Together
    except ImportError:
        raise FtlabError("the together SDK is not installed: pip install together (or keep dry_run=True)") from None
    client = Together()
    train_id = client.files.upload(file=str(train_file), purpose="fine-tune", check=True).id
    sdk = dict(req["sdk"], training_file=train_id)
    if validation_file is not None:
        sdk["validation_file"] = client.files.upload(file=str(validation_file), purpose="fine-tune", check=True).id
    job = client.fine_tuning.create(**sdk)
    plan["job"] = {"id": job.id, "status": str(getattr(job, "status", ""))}
    echo(f"submitted Together job {job.id}")
    return plan
