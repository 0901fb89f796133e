"""Validate an OpenAI chat fine-tuning JSONL file the way OpenAI will, before any money is spent.

The seeds warn that "malformed examples fail silently". This module runs the OpenAI
cookbook's format checks (``Chat_finetuning_data_prep.ipynb``, same error codes), the rules
the fine-tuning API adds (≥10 examples, ``weight`` 0/1 on assistant messages only, a
per-example token limit), tool and function calling, and warnings a careful person wants
before uploading: duplicates, missing system/user messages, personal data, and tool
arguments that are not a JSON object (or are double-encoded).

Token statistics are exact (``ftlab.tokens``, tiktoken with the model's encoding) and follow
the cookbook's counting rule: 3 tokens of framing per message, 1 more per ``name``, 3 to prime
the reply. ``encoding="cl100k_base", max_tokens=4096`` reproduces the cookbook's figures.

Example::

    report = validate_file("train.jsonl", model="gpt-4.1-mini")
    report.ok                       # False when OpenAI would reject the file
    report.errors[0]                # Finding(line=3, code='invalid_json', message='...')
    report.stats["billing_tokens"]  # tokens charged per epoch

``validate_*`` never raises on the file's content, whatever its bytes: every problem becomes a
finding with its 1-based line number (``None`` for file-level findings).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ftlab.errors import FtlabError, ParameterError
from ftlab.tokens import base_model, encoding_name_for_model, get_encoding

# OpenAI's minimum number of training examples.
MIN_EXAMPLES = 10

# The cookbook's default-epochs heuristic (Chat_finetuning_data_prep.ipynb, "Cost Estimation").
TARGET_EPOCHS = 3
MIN_TARGET_EXAMPLES = 100
MAX_TARGET_EXAMPLES = 25000
MIN_DEFAULT_EPOCHS = 1
MAX_DEFAULT_EPOCHS = 25

# Per-example training context (tokens), from OpenAI's model pages: gpt-4o / gpt-4o-mini /
# gpt-4.1 family fine-tunes train on examples up to 65,536 tokens; gpt-3.5-turbo on 16,385.
# Longest matching prefix wins; a model not listed falls back to DEFAULT_TOKEN_LIMIT with a warning.
EXAMPLE_TOKEN_LIMITS = {
    "gpt-4.1": 65536, "gpt-4.1-mini": 65536, "gpt-4.1-nano": 65536,
    "gpt-4o": 65536, "gpt-4o-mini": 65536,
    "gpt-3.5-turbo": 16385, "gpt-3.5-turbo-0613": 4096,
}
DEFAULT_TOKEN_LIMIT = 65536
DEFAULT_MODEL = "gpt-4.1-mini"

ROLES = ("system", "developer", "user", "assistant", "tool", "function")
MESSAGE_KEYS = ("role", "content", "name", "weight", "function_call", "tool_calls", "tool_call_id")
EXAMPLE_KEYS = ("messages", "tools", "functions", "parallel_tool_calls")


@dataclass(frozen=True)
class Finding:
    """One problem: its 1-based line (``None`` for the whole file), a stable code and a message."""

    line: int | None
    code: str
    message: str

    def __str__(self) -> str:
        where = f"line {self.line}" if self.line is not None else "file"
        return f"{where}: {self.code}: {self.message}"


@dataclass
class Report:
    """The validator's verdict. ``ok`` is True when there are no errors (warnings are allowed)."""

    n_examples: int
    errors: list[Finding] = field(default_factory=list)
    warnings: list[Finding] = field(default_factory=list)
    stats: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.errors

    def personal_data(self) -> dict[int, list[str]]:
        """``{line: kinds}`` of possible personal data, e.g. ``{5: ["email"], 10: ["phone number"]}``."""
        found: dict[int, list[str]] = {}
        for f in self.warnings:
            if f.code.startswith("pii_") and f.line is not None:
                found.setdefault(f.line, []).append(f.code.removeprefix("pii_").replace("_", " "))
        return {line: sorted(set(kinds)) for line, kinds in sorted(found.items())}

    @property
    def personal_data_lines(self) -> list[int]:
        """The lines with possible personal data (e-mails, phone numbers, card numbers), in order."""
        return list(self.personal_data())

    def codes(self, kind: str = "errors") -> list[str]:
        """The codes of the errors (or ``"warnings"``), in file order."""
        return [f.code for f in getattr(self, kind)]

    def to_dict(self) -> dict[str, Any]:
        """The ``ftlab validate --json`` shape."""
        return {
            "ok": self.ok,
            "n_examples": self.n_examples,
            "errors": [asdict(f) for f in self.errors],
            "warnings": [asdict(f) for f in self.warnings],
            "stats": self.stats,
        }

    def summary(self, max_per_code: int = 3) -> str:
        """A short human summary: each code with its count and first lines."""
        out = [f"{'OK' if self.ok else 'INVALID'}: {self.n_examples} examples, "
               f"{len(self.errors)} errors, {len(self.warnings)} warnings"]
        for kind in ("errors", "warnings"):
            groups: dict[str, list[Finding]] = {}
            for f in getattr(self, kind):
                groups.setdefault(f.code, []).append(f)
            for code, items in groups.items():
                out.append(f"  {kind[:-1]} {code} ×{len(items)}")
                out += [f"    {f}" for f in items[:max_per_code]]
                if len(items) > max_per_code:
                    out.append(f"    … and {len(items) - max_per_code} more")
        return "\n".join(out)


# ---------------------------------------------------------------------------------------
# Model-dependent settings
# ---------------------------------------------------------------------------------------
def token_limit_for_model(model: str) -> int | None:
    """The per-example training token limit for ``model``, or ``None`` when unknown.

    Example: ``token_limit_for_model("gpt-4.1-mini-2025-04-14") == 65536``.
    """
    name = base_model(model).lower()
    best = None
    for prefix in EXAMPLE_TOKEN_LIMITS:
        if (name == prefix or name.startswith(prefix + "-")) and (best is None or len(prefix) > len(best)):
            best = prefix
    return EXAMPLE_TOKEN_LIMITS[best] if best else None


def default_epochs(n_examples: int) -> int:
    """The cookbook's default number of epochs for a dataset of ``n_examples``.

    Aim for ``TARGET_EPOCHS`` unless that gives fewer than ``MIN_TARGET_EXAMPLES`` or more than
    ``MAX_TARGET_EXAMPLES`` example-passes. Example: ``default_epochs(5) == 20``,
    ``default_epochs(50) == 3``, ``default_epochs(20000) == 1``.
    """
    n_epochs = TARGET_EPOCHS
    if n_examples <= 0:
        return n_epochs
    if n_examples * TARGET_EPOCHS < MIN_TARGET_EXAMPLES:
        n_epochs = min(MAX_DEFAULT_EPOCHS, MIN_TARGET_EXAMPLES // n_examples)
    elif n_examples * TARGET_EPOCHS > MAX_TARGET_EXAMPLES:
        n_epochs = max(MIN_DEFAULT_EPOCHS, MAX_TARGET_EXAMPLES // n_examples)
    return n_epochs


def _distribution(values: list[int | float]) -> dict[str, float] | None:
    """min / max / mean / median and the 10th and 90th percentiles (numpy's linear rule).

    The cookbook prints the 10th/90th percentiles under the labels "p5 / p95"; we name them honestly.
    """
    if not values:
        return None
    xs = sorted(values)

    def q(p: float) -> float:
        pos = (len(xs) - 1) * p
        lo = int(pos)
        hi = min(lo + 1, len(xs) - 1)
        return float(xs[lo] + (xs[hi] - xs[lo]) * (pos - lo))

    return {"min": xs[0], "max": xs[-1], "mean": sum(xs) / len(xs), "median": q(0.5), "p10": q(0.1), "p90": q(0.9)}


# ---------------------------------------------------------------------------------------
# Personal data
# ---------------------------------------------------------------------------------------
# The look-behind holds every character of the local part, so a match can only start at the
# beginning of a run: a long run without "@" (e.g. "%%%…") costs linear time, not quadratic.
_EMAIL = re.compile(r"(?<![\w.%+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b")
_PHONE = re.compile(r"(?<![\w+])(?:\+\d{1,3}[ .-]?)?(?:\(\d{2,4}\)[ .-]?|\d{2,4}[ .-])\d{3,4}[ .-]\d{3,4}(?![\w])")
_CARD = re.compile(r"(?<!\d)(?:\d[ -]?){12,18}\d(?!\d)")


def _luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _mask(text: str) -> str:
    """Show the shape of a personal-data match without repeating it."""
    if "@" in text:
        user, _, domain = text.partition("@")
        return f"{user[:1]}***@{domain}"
    digits = re.sub(r"\D", "", text)
    return f"***{digits[-4:]}"


def find_personal_data(text: str) -> list[tuple[str, str]]:
    """``(code, masked)`` pairs for e-mails, phone numbers and payment-card numbers in ``text``.

    Card numbers must pass the Luhn check, so order numbers and SKUs are not flagged.
    Example: ``find_personal_data("mail jane@example.com")`` → ``[("pii_email", "j***@example.com")]``.
    """
    found: list[tuple[str, str]] = []
    cards = []
    for m in _CARD.finditer(text):
        digits = re.sub(r"\D", "", m.group())
        if 13 <= len(digits) <= 19 and _luhn_ok(digits):
            found.append(("pii_card_number", _mask(m.group())))
            cards.append(m.span())
    for m in _EMAIL.finditer(text):
        found.append(("pii_email", _mask(m.group())))
    for m in _PHONE.finditer(text):
        if any(a <= m.start() < b for a, b in cards):
            continue
        if len(re.sub(r"\D", "", m.group())) >= 9:
            found.append(("pii_phone_number", _mask(m.group())))
    return found


def personal_data_by_line(data: bytes) -> dict[int, list[str]]:
    """``{line: kinds}`` for the lines of a JSONL file that hold possible personal data.

    Each line's JSON strings are scanned (the raw text where the line is not JSON). Kinds are
    ``"email"``, ``"phone number"`` and ``"card number"``. Example: a file whose 3rd line mentions
    ``jane@example.com`` gives ``{3: ["email"]}``.
    """
    found: dict[int, list[str]] = {}
    for lineno, raw in enumerate(data.split(b"\n"), 1):
        text = raw.decode("utf-8", "replace")
        try:
            strings = list(_strings(json.loads(text)))
        except (ValueError, RecursionError):
            strings = [text]
        kinds = sorted({code.removeprefix("pii_").replace("_", " ") for s in strings for code, _ in find_personal_data(s)})
        if kinds:
            found[lineno] = kinds
    return found


def describe_personal_data(found: dict[int, list[str]]) -> str:
    """One line naming the lines per kind: ``email on lines 5, 26; phone number on line 10``."""
    by_kind: dict[str, list[int]] = {}
    for line, kinds in sorted(found.items()):
        for k in kinds:
            by_kind.setdefault(k, []).append(line)
    parts = []
    for kind, lines in by_kind.items():
        shown = ", ".join(map(str, lines[:20])) + (f" and {len(lines) - 20} more" if len(lines) > 20 else "")
        parts.append(f"{kind} on line{'s' if len(lines) > 1 else ''} {shown}")
    return "; ".join(parts)


# ---------------------------------------------------------------------------------------
# The checks
# ---------------------------------------------------------------------------------------
def _strings(value: Any, depth: int = 0):
    """Every string inside a JSON value (bounded depth)."""
    if depth > 50:
        return
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v, depth + 1)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v, depth + 1)


def _has_lone_surrogate(value: Any) -> bool:
    for s in _strings(value):
        try:
            s.encode("utf-8")
        except UnicodeEncodeError:
            return True
    return False


def _type(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean", int: "a number",
            float: "a number", type(None): "null"}.get(type(value), type(value).__name__)


def messages_problem(obj: dict) -> str | None:
    """What is wrong with ``obj["messages"]``, or None when it is a non-empty list.

    Example: ``messages_problem({}) == "no 'messages' key"``; ``messages_problem({"messages": []})`` names the empty list.
    """
    messages = obj.get("messages")
    if isinstance(messages, list) and messages:
        return None
    if isinstance(messages, list):
        return "'messages' is an empty list"
    return "no 'messages' key" if "messages" not in obj else f"'messages' is {_type(messages)}"


class _Checker:
    """Checks one example (a parsed line), appending findings."""

    def __init__(self, line: int, errors: list[Finding], warnings: list[Finding]):
        self.line, self.errors, self.warnings = line, errors, warnings
        self.called: list[str] = []  # function names the assistant calls

    def error(self, code: str, message: str) -> None:
        self.errors.append(Finding(self.line, code, message))

    def warn(self, code: str, message: str) -> None:
        self.warnings.append(Finding(self.line, code, message))

    def arguments(self, where: str, args: Any) -> None:
        if not isinstance(args, str):
            self.error("invalid_tool_call", f"{where}: 'arguments' must be a string holding a JSON object, not {_type(args)}")
            return
        try:
            decoded = json.loads(args)
        except (ValueError, RecursionError):
            self.warn("tool_arguments_not_object", f"{where}: 'arguments' is not valid JSON")
            return
        if isinstance(decoded, str):
            try:
                inner = json.loads(decoded)
            except (ValueError, RecursionError):
                inner = None
            if isinstance(inner, dict):
                self.warn("double_encoded_tool_arguments",
                          f"{where}: 'arguments' is JSON-encoded twice (a string holding a JSON string); "
                          "encode the arguments object once")
                return
        if not isinstance(decoded, dict):
            self.warn("tool_arguments_not_object", f"{where}: 'arguments' decodes to {_type(decoded)}, not a JSON object")

    def tool_calls(self, where: str, calls: Any) -> list[str]:
        names: list[str] = []
        if not isinstance(calls, list) or not calls:
            self.error("invalid_tool_call", f"{where}: 'tool_calls' must be a non-empty list")
            return names
        for j, call in enumerate(calls, 1):
            w = f"{where}, tool call {j}"
            if not isinstance(call, dict):
                self.error("invalid_tool_call", f"{w} is {_type(call)}, not an object")
                continue
            if call.get("type", "function") != "function":
                self.error("invalid_tool_call", f"{w}: 'type' must be 'function'")
            if "id" in call and not isinstance(call["id"], str):
                self.error("invalid_tool_call", f"{w}: 'id' must be a string")
            fn = call.get("function")
            if not isinstance(fn, dict) or not isinstance(fn.get("name"), str) or not fn.get("name"):
                self.error("invalid_tool_call", f"{w}: needs 'function' with a 'name' and 'arguments'")
                continue
            names.append(fn["name"])
            if "arguments" not in fn:
                self.error("invalid_tool_call", f"{w}: 'function' has no 'arguments'")
            else:
                self.arguments(w, fn["arguments"])
        return names

    def tools(self, tools: Any, key: str) -> set[str] | None:
        if not isinstance(tools, list):
            self.error("invalid_tools", f"'{key}' must be a list of function definitions, not {_type(tools)}")
            return None
        names: set[str] = set()
        for j, tool in enumerate(tools, 1):
            fn = tool.get("function") if key == "tools" and isinstance(tool, dict) else tool
            if key == "tools" and isinstance(tool, dict) and tool.get("type", "function") != "function":
                self.error("invalid_tools", f"{key}[{j}]: 'type' must be 'function'")
            if not isinstance(fn, dict) or not isinstance(fn.get("name"), str) or not fn.get("name"):
                self.error("invalid_tools", f"{key}[{j}] needs a function with a 'name'")
                continue
            if "parameters" in fn and not isinstance(fn["parameters"], dict):
                self.error("invalid_tools", f"{key}[{j}] ({fn['name']}): 'parameters' must be a JSON-schema object")
            names.add(fn["name"])
        return names

    def content(self, where: str, content: Any) -> bool:
        """True when the content is usable text (a string, or a list of text/image parts)."""
        if isinstance(content, str):
            if content:
                return True
            self.error("missing_content", f"{where} has empty 'content'")
            return False
        if isinstance(content, list) and content:
            for j, part in enumerate(content, 1):
                ok = isinstance(part, dict) and (
                    (part.get("type") == "text" and isinstance(part.get("text"), str))
                    or (part.get("type") == "image_url" and isinstance(part.get("image_url"), dict)
                        and isinstance(part["image_url"].get("url"), str)))
                if not ok:
                    self.error("missing_content", f"{where}, content part {j} is not a text or image_url part")
                    return False
            return True
        self.error("missing_content", f"{where}: 'content' must be a non-empty string, not {_type(content)}")
        return False

    def message(self, i: int, msg: Any) -> str | None:
        """Check one message; return its role when it is recognized."""
        where = f"message {i}"
        if not isinstance(msg, dict):
            self.error("data_type", f"{where} is {_type(msg)}, not an object")
            return None
        role = msg.get("role")
        if "role" not in msg:
            self.error("message_missing_key", f"{where} has no 'role'")
        elif not isinstance(role, str) or role not in ROLES:
            self.error("unrecognized_role", f"{where} has role {role!r}: use one of {', '.join(ROLES)}")
            role = None
        else:
            where = f"message {i} ({role})"
        unknown = [k for k in msg if k not in MESSAGE_KEYS]
        if unknown:
            self.error("message_unrecognized_key",
                       f"{where} has unrecognized key(s) {', '.join(map(repr, unknown))}; allowed: {', '.join(MESSAGE_KEYS)}")
        calls_tools = msg.get("tool_calls") is not None or msg.get("function_call") is not None
        if "content" not in msg:
            if not (role == "assistant" and calls_tools):
                self.error("message_missing_key", f"{where} has no 'content'")
        elif msg["content"] is None and role == "assistant" and calls_tools:
            pass
        else:
            self.content(where, msg["content"])
        if "name" in msg and not isinstance(msg["name"], str):
            self.error("message_unrecognized_key", f"{where}: 'name' must be a string")
        if "weight" in msg:
            w = msg["weight"]
            if isinstance(w, bool) or w not in (0, 1):
                self.error("invalid_weight", f"{where}: 'weight' is {w!r}; it must be 0 or 1")
            elif role != "assistant":
                self.error("invalid_weight", f"{where}: 'weight' is only allowed on assistant messages")
        if "tool_calls" in msg and msg["tool_calls"] is not None:
            if role != "assistant":
                self.error("invalid_tool_call", f"{where}: only assistant messages may carry 'tool_calls'")
            self.called += self.tool_calls(where, msg["tool_calls"])
        if "function_call" in msg and msg["function_call"] is not None:
            fc = msg["function_call"]
            if role != "assistant":
                self.error("invalid_tool_call", f"{where}: only assistant messages may carry 'function_call'")
            if not isinstance(fc, dict) or not isinstance(fc.get("name"), str):
                self.error("invalid_tool_call", f"{where}: 'function_call' needs a 'name' and 'arguments'")
            else:
                self.called.append(fc["name"])
                self.arguments(f"{where}, function_call", fc.get("arguments"))
        if role == "tool" and not isinstance(msg.get("tool_call_id"), str):
            self.error("message_missing_key", f"{where}: a tool message needs a string 'tool_call_id'")
        return role

    def example(self, ex: Any) -> list[dict] | None:
        """Check a parsed line. Returns its messages (dicts only) when they can be counted."""
        if not isinstance(ex, dict):
            self.error("data_type", f"the line is {_type(ex)}, not a JSON object with a 'messages' list")
            return None
        messages = ex.get("messages")
        what = messages_problem(ex)
        if what:
            self.error("missing_messages_list", f"{what}: each line needs a non-empty 'messages' list")
            return None
        unknown = [k for k in ex if k not in EXAMPLE_KEYS]
        if unknown:
            self.warn("unrecognized_example_key",
                      f"unrecognized top-level key(s) {', '.join(map(repr, unknown))}; OpenAI reads only "
                      f"{', '.join(EXAMPLE_KEYS)}. Strip extra fields before uploading")
        defined: set[str] | None = None
        for key in ("tools", "functions"):
            if key in ex:
                names = self.tools(ex[key], key)
                if names is not None:
                    defined = (defined or set()) | names
        if "parallel_tool_calls" in ex and not isinstance(ex["parallel_tool_calls"], bool):
            self.error("invalid_tools", "'parallel_tool_calls' must be true or false")
        roles = [self.message(i, m) for i, m in enumerate(messages, 1)]
        if "assistant" not in roles:
            self.error("example_missing_assistant_message", "no assistant message: nothing to train on")
        else:
            weights = [m.get("weight", 1) for m in messages if isinstance(m, dict) and m.get("role") == "assistant"]
            if all(w == 0 for w in weights):
                self.warn("no_trained_messages", "every assistant message has weight 0: this example trains nothing")
        if "system" not in roles and "developer" not in roles:
            self.warn("missing_system_message", "no system message")
        if "user" not in roles:
            self.warn("missing_user_message", "no user message")
        if defined is not None:
            for name in self.called:
                if name not in defined:
                    self.warn("unknown_tool", f"the assistant calls {name!r}, which the example's tools do not define")
        return [m for m in messages if isinstance(m, dict)]


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


def count_example_tokens(ex: dict, messages: list[dict], enc) -> tuple[int, int]:
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


# ---------------------------------------------------------------------------------------
# Entry points
# ---------------------------------------------------------------------------------------
def _refuse_inference_only(model: str) -> None:
    """A model the price catalog marks as not fine-tunable is a usage error, named with the alternatives."""
    try:
        from ftlab.cost import load_catalog

        cat = load_catalog()
        entry = cat.entry(model, fine_tune=False)
    except (ImportError, FtlabError, KeyError, ValueError, TypeError, OSError):
        return  # not in the catalog: the tokenizer decides below
    if not entry["fine_tunable"]:
        cat.entry(model)  # raises the catalog's one-line error naming the fine-tunable models


def _settings(model: str, encoding: str | None, max_tokens: int | None):
    if not isinstance(model, str) or not model:
        raise ParameterError("model must be a model name such as 'gpt-4.1-mini'")
    _refuse_inference_only(model)
    enc_name = encoding or encoding_name_for_model(model)
    try:
        enc = get_encoding(enc_name)
    except FtlabError:
        raise
    except Exception as exc:  # tiktoken: unknown encoding
        raise ParameterError(f"unknown encoding {enc_name!r}: use o200k_base or cl100k_base") from exc
    limit = max_tokens
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ParameterError(f"max_tokens = {max_tokens!r}: expected a positive int")
    return enc, enc_name, limit


UNREADABLE = object()  # what ``iter_json_lines`` yields for a line that is not UTF-8 JSON (an error was added)


def utf16_finding(data: bytes) -> Finding | None:
    """The file-level error for a UTF-16 file (a byte-order mark of UTF-16), else ``None``."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return Finding(None, "invalid_encoding", "the file is UTF-16; save it as UTF-8")
    return None


def iter_json_lines(data: bytes, errors: list[Finding], warnings: list[Finding]):
    """Yield ``(line, value)`` for every non-blank line of a JSONL file's bytes; never raises.

    A UTF-8 byte-order mark, CRLF endings and blank lines are handled here (the mark and inner blank
    lines become warnings); a line that is not UTF-8 or not JSON gets an error and yields ``UNREADABLE``.
    The SFT and the DPO validators share it. Example: ``list(iter_json_lines(b'{"a": 1}\\n', [], []))``
    is ``[(1, {"a": 1})]``.
    """
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
        warnings.append(Finding(1, "utf8_bom", "the file starts with a UTF-8 byte-order mark; save it without one"))
    raw_lines = data.split(b"\n")
    if raw_lines and raw_lines[-1] == b"":
        raw_lines.pop()
    for lineno, raw in enumerate(raw_lines, 1):
        if raw.endswith(b"\r"):
            raw = raw[:-1]
        if not raw.strip():
            if raw_lines[lineno:] and any(r.strip() for r in raw_lines[lineno:]):
                warnings.append(Finding(lineno, "blank_line", "blank line (skipped)"))
            continue
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            errors.append(Finding(lineno, "invalid_encoding",
                                  f"not UTF-8 (byte {exc.start + 1} of the line); save the file as UTF-8"))
            yield lineno, UNREADABLE
            continue
        try:
            value = json.loads(text, parse_constant=_reject_constant)
        except RecursionError:
            errors.append(Finding(lineno, "invalid_json", "the line is nested too deeply to parse"))
            value = UNREADABLE
        except ValueError as exc:
            msg = exc.msg if isinstance(exc, json.JSONDecodeError) else str(exc)
            col = f" at column {exc.colno}" if isinstance(exc, json.JSONDecodeError) else ""
            errors.append(Finding(lineno, "invalid_json", f"not valid JSON{col}: {msg}"))
            value = UNREADABLE
        yield lineno, value


def validate_bytes(
    data: bytes,
    *,
    model: str = DEFAULT_MODEL,
    max_tokens: int | None = None,
    encoding: str | None = None,
    n_epochs: int | None = None,
) -> Report:
    """Validate the bytes of a JSONL file. See ``validate_file``."""
    enc, enc_name, limit = _settings(model, encoding, max_tokens)
    limit_known = limit is not None or token_limit_for_model(model) is not None
    if limit is None:
        limit = token_limit_for_model(model) or DEFAULT_TOKEN_LIMIT
    errors: list[Finding] = []
    warnings: list[Finding] = []
    if not limit_known:
        warnings.append(Finding(None, "token_limit_assumed",
                                f"no known per-example token limit for {model!r}; assuming {limit}. Pass --max-tokens"))
    examples: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    n_examples = 0
    n_missing = {"system": 0, "user": 0}

    if (utf16 := utf16_finding(data)) is not None:
        errors.append(utf16)
        return Report(0, errors, warnings, {"model": model, "encoding": enc_name})
    for lineno, ex in iter_json_lines(data, errors, warnings):
        n_examples += 1
        chk = _Checker(lineno, errors, warnings)
        if ex is UNREADABLE:
            continue
        try:
            if _has_lone_surrogate(ex):
                chk.error("invalid_encoding", "a string holds an unpaired UTF-16 surrogate escape (e.g. \\ud800)")
            messages = chk.example(ex)
            if messages is None:
                continue
            digest = hashlib.sha256(_json_text(ex).encode("utf-8", "replace")).hexdigest()
            if digest in seen:
                chk.warn("duplicate_example", f"duplicate of line {seen[digest]}")
            else:
                seen[digest] = lineno
            hits: dict[str, list[str]] = {}
            for s in _strings(ex.get("messages")):
                for code, masked in find_personal_data(s):
                    hits.setdefault(code, []).append(masked)
            for code, masked in hits.items():
                kind = code.removeprefix("pii_").replace("_", " ")
                chk.warn(code, f"possible personal data ({kind}: {', '.join(sorted(set(masked))[:3])}); "
                               "remove or mask it before uploading")
            total, assistant = count_example_tokens(ex, messages, enc)
            if total > limit:
                chk.error("too_many_tokens", f"{total} tokens, over the {limit}-token limit per example for "
                                             f"{model if not max_tokens else 'this run'}; shorten or split it")
            roles = {m["role"] for m in messages if isinstance(m.get("role"), str)}  # a role may be any JSON
            n_missing["system"] += not ({"system", "developer"} & roles)
            n_missing["user"] += "user" not in roles
            examples.append({"line": lineno, "n_messages": len(ex["messages"]), "tokens": total,
                             "assistant_tokens": assistant})
        except RecursionError:
            chk.error("invalid_json", "the line is nested too deeply to check")

    if n_examples == 0:
        errors.append(Finding(None, "empty_file", "the file has no examples"))
    elif n_examples < MIN_EXAMPLES:
        errors.append(Finding(None, "too_few_examples",
                              f"{n_examples} examples: OpenAI requires at least {MIN_EXAMPLES}"))
    errors.sort(key=lambda f: (f.line is not None, f.line or 0))
    warnings.sort(key=lambda f: (f.line is not None, f.line or 0))
    report = Report(n_examples, errors, warnings)
    report.stats = _stats(examples, model, enc_name, limit, n_epochs, n_missing, report.personal_data_lines)
    return report


def _reject_constant(name: str):
    raise ValueError(f"{name} is not valid JSON")


def _stats(examples, model, enc_name, limit, n_epochs, n_missing, personal_data_lines=()) -> dict[str, Any]:
    tokens = [e["tokens"] for e in examples]
    billing = sum(min(limit, t) for t in tokens)
    epochs = n_epochs if n_epochs else default_epochs(len(examples))
    stats: dict[str, Any] = {
        "model": model,
        "encoding": enc_name,
        "max_tokens_per_example": limit,
        "n_counted": len(examples),
        "n_missing_system": n_missing["system"],
        "n_missing_user": n_missing["user"],
        "messages_per_example": _distribution([e["n_messages"] for e in examples]),
        "tokens_per_example": _distribution(tokens),
        "assistant_tokens_per_example": _distribution([e["assistant_tokens"] for e in examples]),
        "n_over_token_limit": sum(t > limit for t in tokens),
        "billing_tokens": billing,
        "n_epochs": epochs,
        "n_epochs_source": "given" if n_epochs else "cookbook heuristic",
        "epoch_heuristic": {"TARGET_EPOCHS": TARGET_EPOCHS, "MIN_TARGET_EXAMPLES": MIN_TARGET_EXAMPLES,
                            "MAX_TARGET_EXAMPLES": MAX_TARGET_EXAMPLES, "MIN_DEFAULT_EPOCHS": MIN_DEFAULT_EPOCHS,
                            "MAX_DEFAULT_EPOCHS": MAX_DEFAULT_EPOCHS},
        "trained_tokens": billing * epochs,
        "personal_data_lines": list(personal_data_lines),
        "examples": examples,
    }
    cost = estimate_cost(model, billing * epochs)
    if cost is not None:
        stats["cost"] = cost
    return stats


def read_file_bytes(path: str | os.PathLike[str]) -> bytes:
    """The bytes of a file to validate; a folder, a missing or unreadable file raise a one-line ``FtlabError``."""
    p = Path(path)
    if p.is_dir():
        raise FtlabError(f"{p} is a folder; give a .jsonl file")
    try:
        return p.read_bytes()
    except FileNotFoundError:
        raise FtlabError(f"{p}: no such file") from None
    except OSError as exc:
        raise FtlabError(f"{p}: cannot read: {exc.strerror or exc}") from None


def validate_file(
    path: str | os.PathLike[str],
    *,
    model: str = DEFAULT_MODEL,
    max_tokens: int | None = None,
    encoding: str | None = None,
    n_epochs: int | None = None,
) -> Report:
    """Validate a chat fine-tuning JSONL file for ``model``.

    ``max_tokens`` overrides the model's per-example limit and ``encoding`` its tokenizer;
    ``n_epochs`` fixes the epochs used for trained tokens and cost (default: the cookbook's
    heuristic). Raises ``FtlabError`` only when the file cannot be read or a setting is bad.

    Example: ``validate_file("toy.jsonl", encoding="cl100k_base", max_tokens=4096).stats["billing_tokens"]``
    gives the cookbook's "~4306 tokens that will be charged".
    """
    return validate_bytes(read_file_bytes(path), model=model, max_tokens=max_tokens, encoding=encoding, n_epochs=n_epochs)
