"""What every platform module of ``ftlab.cloud`` shares: reading OpenAI chat JSONL line by line, the
structured :class:`Problem`, the :class:`Format` a platform module declares, the result types
(:class:`Conversion`, :class:`Validation`), and the helpers the converters, validators and submitters use.

Nothing here knows a platform: ``ftlab.cloud.formats`` puts the platforms' :class:`Format` s together.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ftlab.errors import FtlabError

__all__ = ["PROBLEM_CODES", "RETRIEVED", "Conversion", "Format", "Problem", "Validation", "check_file",
           "file_level", "no_file_rules", "read_chat_lines", "write_records"]

RETRIEVED = "2026-11-23"  # when the providers' format pages were read

# What a Problem's ``code`` says: the line is not JSON (or not an object); it is not OpenAI chat; the target
# format cannot hold it; the converted record breaks a platform rule; the file as a whole breaks one.
PROBLEM_CODES = ("json", "chat", "cannot-hold", "rule", "file")


@dataclass(frozen=True)
class Problem:
    """One error in a dataset: the input ``line`` (``None``: the file as a whole), a ``code`` from
    ``PROBLEM_CODES`` and the one-line ``message`` the CLI prints, e.g.
    ``Problem(7, "cannot-hold", "line 7, message 3: tool calls: ...")``."""

    line: int | None
    code: str
    message: str

    def __str__(self) -> str:
        return self.message

    def as_dict(self) -> dict[str, Any]:
        return {"line": self.line, "code": self.code, "message": self.message}


def _problems(line: int | None, code: str, messages: Iterable[str]) -> list[Problem]:
    return [Problem(line, code, m) for m in messages]


class _Unholdable(Exception):
    """An example the target format cannot represent (becomes a ``cannot-hold`` Problem on its line)."""


FileRules = Callable[[int, int | None, bool | None], tuple[list[Problem], list[str]]]


def no_file_rules(n: int, n_bytes: int | None, has_bom: bool | None) -> tuple[list[Problem], list[str]]:
    return [], []


@dataclass(frozen=True)
class Format:
    """One platform file format, as its platform module declares it.

    ``to_record(example, line, warnings)`` converts one OpenAI chat example (raising ``_Unholdable``),
    ``from_record`` reads a record back, ``check_record(record, line)`` lists the platform's rule
    violations of one line, ``check_file(n, n_bytes, has_bom)`` the file-level ones (errors, warnings).
    """

    key: str
    platform: str
    to_record: Callable[[dict[str, Any], int, list[str]], dict[str, Any]]
    from_record: Callable[[dict[str, Any]], dict[str, Any]]
    check_record: Callable[[Any, int], list[str]]
    check_file: FileRules = no_file_rules
    bom: bool = False  # the platform wants UTF-8 with a byte-order mark


@dataclass
class Conversion:
    """The result of converting a set of examples for one platform.

    ``records`` are the converted lines, ``lines`` their source line numbers; ``problems`` the
    structured errors (``errors`` their one-line messages, each starting with ``line N`` where it has
    a line) and ``warnings`` one-line strings. ``ok`` is True only when every input example converted
    and passed the platform's checks.
    """

    platform: str
    n_input: int
    records: list[dict[str, Any]] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    bedrock_format: str = "conversation"
    path: Path | None = None

    @property
    def errors(self) -> list[str]:
        return [p.message for p in self.problems]

    @property
    def ok(self) -> bool:
        return not self.problems and len(self.records) == self.n_input

    @property
    def n_examples(self) -> int:
        return len(self.records)

    def report(self) -> dict[str, Any]:
        """The ``ftlab convert --json`` report: ``{"ok", "n_examples", "errors", "problems", ...}``."""
        return {"ok": self.ok, "n_examples": self.n_examples, "errors": self.errors,
                "problems": [p.as_dict() for p in self.problems],
                "warnings": list(self.warnings), "platform": self.platform,
                "out": str(self.path) if self.path else None}

    def write(self, path: str | os.PathLike[str]) -> Path:
        """Write the converted records as JSONL (Azure: UTF-8 with a BOM). Refuses when not ``ok``."""
        if not self.ok:
            raise FtlabError(f"{len(self.problems)} example(s) cannot be converted for {self.platform} "
                             f"(first: {self.errors[0] if self.problems else 'missing examples'}); nothing written")
        self.path = write_records(self.records, path, self.platform)
        return self.path


@dataclass
class Validation:
    """A platform file check: ``ok``, ``n_examples``, structured ``problems`` (``errors``: their messages)
    and ``warnings``."""

    platform: str
    n_examples: int
    problems: list[Problem]
    warnings: list[str]

    @property
    def errors(self) -> list[str]:
        return [p.message for p in self.problems]

    @property
    def ok(self) -> bool:
        return not self.problems

    def report(self) -> dict[str, Any]:
        return {"ok": self.ok, "n_examples": self.n_examples, "errors": self.errors,
                "problems": [p.as_dict() for p in self.problems],
                "warnings": list(self.warnings), "platform": self.platform}


# --- reading the OpenAI chat input, line by line ------------------------------------------------
def _where(line: int, msg_index: int | None = None) -> str:
    return f"line {line}" + (f", message {msg_index + 1}" if msg_index is not None else "")


def read_chat_lines(source: str | os.PathLike[str] | Iterable[dict[str, Any]]) -> tuple[list[tuple[int, dict]], list[Problem], int]:
    """Parse OpenAI chat JSONL into ``(line, example)`` pairs, keeping line numbers.

    ``source`` is a path or a list of examples (numbered 1, 2, ...). Returns
    ``(examples, problems, n_input)``: lines that are not JSON objects with a ``messages`` list
    become problems such as ``line 3: invalid JSON (Expecting ',' delimiter, column 212)``.
    Blank lines are skipped but still counted, so numbers match an editor's.
    """
    if isinstance(source, str | os.PathLike):
        path = Path(source)
        if not path.is_file():
            raise FtlabError(f"no such file: {path}; give the path of an OpenAI chat JSONL file")
        items, problems = _read_json_lines(path, path.read_bytes())
        n_input = len(items) + len(problems)
    else:
        items = list(enumerate(source, start=1))
        problems = []
        n_input = len(items)
    examples = []
    for line, ex in items:
        if not isinstance(ex, dict):
            problems.append(Problem(line, "json", f"line {line}: expected a JSON object, got {type(ex).__name__}"))
        elif not isinstance(ex.get("messages"), list) or not ex["messages"]:
            problems.append(Problem(line, "chat", f"line {line}: no 'messages' list (OpenAI chat format: "
                                                  "{\"messages\": [...]})"))
        else:
            bad = _basic_message_errors(ex["messages"], line)
            if bad:
                problems += _problems(line, "chat", bad)
            else:
                examples.append((line, ex))
    return examples, problems, n_input


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


def _read_json_lines(path: Path, raw: bytes) -> tuple[list[tuple[int, Any]], list[Problem]]:
    """The parsed non-blank lines of a UTF-8 JSONL file (a BOM is allowed), with their 1-based numbers,
    and a problem per line that is not JSON. Not UTF-8 at all is an FtlabError naming the byte."""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise FtlabError(f"{path} is not UTF-8 (byte {exc.start}); save it as UTF-8 and try again") from None
    items: list[tuple[int, Any]] = []
    problems: list[Problem] = []
    for i, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            items.append((i, json.loads(line)))
        except json.JSONDecodeError as exc:
            problems.append(Problem(i, "json", f"line {i}: invalid JSON ({exc.msg}, column {exc.colno})"))
    return items, problems


def _read_platform_lines(path: Path, fmt: Format) -> tuple[list[tuple[int, Any]], list[Problem], bool, int]:
    raw = path.read_bytes()
    has_bom = raw.startswith(b"\xef\xbb\xbf")
    items, problems = _read_json_lines(path, raw)
    if has_bom and not fmt.bom:
        problems.insert(0, Problem(1, "file", "line 1: the file starts with a byte-order mark; this platform wants "
                                              "plain UTF-8"))
    return items, problems, has_bom, len(raw)


def check_file(path: str | os.PathLike[str], fmt: Format) -> Validation:
    """Check a file in ``fmt`` against its platform's rules, line by line, then as a whole."""
    path = Path(path)
    if not path.is_file():
        raise FtlabError(f"no such file: {path}")
    items, problems, has_bom, n_bytes = _read_platform_lines(path, fmt)
    for line, rec in items:
        problems += _problems(line, "rule", fmt.check_record(rec, line))
    file_problems, warns = file_level(fmt, len(items), n_bytes=n_bytes, has_bom=has_bom)
    return Validation(fmt.platform, len(items), problems + file_problems, warns)


def file_level(fmt: Format, n: int, *, n_bytes: int | None = None,
               has_bom: bool | None = None) -> tuple[list[Problem], list[str]]:
    """File-level problems and warnings: an empty file, then ``fmt``'s own rules (counts, BOM, size)."""
    problems = [Problem(None, "file", "the file holds no examples")] if n == 0 else []
    more, warns = fmt.check_file(n, n_bytes, has_bom)
    return problems + more, warns


def write_records(records: Iterable[dict[str, Any]], path: str | os.PathLike[str], platform: str) -> Path:
    """Write records as JSONL, one per line, UTF-8 (with a BOM for Azure, as Azure asks)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    encoding = "utf-8-sig" if platform == "azure" else "utf-8"
    with path.open("w", encoding=encoding, newline="\n") as f:
        for rec in records:
            f.write(json.dumps(rec, ensure_ascii=False) + "\n")
    return path


# --- helpers of the converters ------------------------------------------------------------------
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


# --- helpers of the validators ------------------------------------------------------------------
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


def _messages_head(rec: Any, line: int, allowed: tuple[str, ...], extra_note: str) -> tuple[list[str], list[Any] | None]:
    """The errors of a chat line's head (``_object_head``) and its ``messages`` when they are a non-empty list
    (``None``: the caller returns the errors so far)."""
    w, errs, ok = _object_head(rec, line, allowed, extra_note)
    return errs, (_nonempty_list(rec, "messages", w, errs) if ok else None)


def _nonempty_list(rec: dict[str, Any], key: str, w: str, errs: list[str]) -> list[Any] | None:
    """``rec[key]`` when it is a non-empty list; otherwise None, with the error appended to ``errs``."""
    items = rec.get(key)
    if not isinstance(items, list) or not items:
        errs.append(f"{w}: {key} must be a non-empty list")
        return None
    return items


# --- helpers of the submitters ------------------------------------------------------------------
def _echo_default(text: str) -> None:
    print(text)


def _timestamp_name(prefix: str = "ftlab") -> str:
    return f"{prefix}-{datetime.now(UTC).strftime('%Y%m%d-%H%M%S')}"


def _require_valid(path: Path, fmt: Format) -> Validation:
    check = check_file(path, fmt)
    if not check.ok:
        raise FtlabError(f"{path} does not pass {fmt.platform}'s rules ({len(check.problems)} problem(s), first: "
                         f"{check.errors[0]}); run `ftlab convert` first")
    return check
