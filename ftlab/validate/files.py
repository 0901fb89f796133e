"""The entry points: read a file's bytes, split them into JSON lines, run the checks, and sum up the statistics."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ftlab.errors import FtlabError, ParameterError
from ftlab.tokens import encoding_name_for_model, get_encoding
from ftlab.validate.checks import _Checker, _has_lone_surrogate
from ftlab.validate.counting import _json_text, count_example_tokens, estimate_cost
from ftlab.validate.personal import _warn_personal_data
from ftlab.validate.rules import (
    DEFAULT_MODEL,
    DEFAULT_TOKEN_LIMIT,
    MAX_DEFAULT_EPOCHS,
    MAX_TARGET_EXAMPLES,
    MIN_DEFAULT_EPOCHS,
    MIN_EXAMPLES,
    MIN_TARGET_EXAMPLES,
    TARGET_EPOCHS,
    Finding,
    Report,
    _distribution,
    default_epochs,
    token_limit_for_model,
)

__all__ = ["UNREADABLE", "iter_json_lines", "read_file_bytes", "utf16_finding", "validate_bytes",
           "validate_file"]


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
    """(encoding, its name, the per-example token limit, a warning when that limit is assumed) for a file check."""
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
    warnings: list[Finding] = []
    if limit is None and token_limit_for_model(model) is None:
        warnings.append(Finding(None, "token_limit_assumed", f"no known per-example token limit for {model!r}; "
                                f"assuming {DEFAULT_TOKEN_LIMIT}. Pass --max-tokens"))
    if limit is None:
        limit = token_limit_for_model(model) or DEFAULT_TOKEN_LIMIT
    return enc, enc_name, limit, warnings


UNREADABLE = object()  # what ``iter_json_lines`` yields for a line that is not UTF-8 JSON (an error was added)


def utf16_finding(data: bytes) -> Finding | None:
    """The file-level error for a UTF-16 file (a byte-order mark of UTF-16), else ``None``."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return Finding(None, "invalid_encoding", "the file is UTF-16; save it as UTF-8")
    return None


def iter_json_lines(data: bytes, errors: list[Finding], warnings: list[Finding]) -> Iterator[tuple[int, Any]]:
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
    enc, enc_name, limit, warnings = _settings(model, encoding, max_tokens)
    errors: list[Finding] = []
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
            _warn_personal_data(chk, ex.get("messages"))
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
