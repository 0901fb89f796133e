"""Formats across the platforms: convert OpenAI chat JSONL for any platform, check a platform file,
read it back, and round-trip. Each platform's converter, reader and rules live in its own module
(``bedrock``, ``vertex``, ``together``, ``azure``); this module looks them up by platform name.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ftlab.cloud import azure, bedrock, together, vertex
from ftlab.cloud.common import (
    Conversion,
    Format,
    Validation,
    _problems,
    _read_platform_lines,
    _Unholdable,
    check_file,
    file_level,
    read_chat_lines,
)
from ftlab.errors import FtlabError

__all__ = ["FORMAT_SOURCES", "PLATFORMS", "convert", "convert_file", "default_out", "normalize_chat", "read_back",
           "round_trip", "validate_for_platform"]

PLATFORMS = ("bedrock", "vertex", "together", "azure")

# Where each format's rules come from: (page, date, what it says). Shown by notebook 09.
FORMAT_SOURCES: dict[str, list[tuple[str, str, str]]] = {
    "bedrock": bedrock.SOURCES, "vertex": vertex.SOURCES, "together": together.SOURCES, "azure": azure.SOURCES,
}

_FORMATS: dict[str, Format] = {"vertex": vertex.FORMAT, "together": together.FORMAT, "azure": azure.FORMAT}


def _format(platform: str, bedrock_format: str = "conversation") -> Format:
    if platform not in PLATFORMS:
        raise FtlabError(f"unknown platform {platform!r}; use one of: {', '.join(PLATFORMS)}")
    fmt = bedrock.format_for(bedrock_format)  # checks the Bedrock format whatever the platform
    return fmt if platform == "bedrock" else _FORMATS[platform]


def validate_for_platform(path: str | os.PathLike[str], platform: str, *, bedrock_format: str = "conversation") -> Validation:
    """Check a file in a platform's format against that platform's rules, line by line.

    Example: ``validate_for_platform("train.bedrock.jsonl", "bedrock").ok`` is True for
    ``convert_file`` output; a hand-made file with an ``assistant`` turn first gets
    ``line 4: the first turn must be 'user', got 'assistant'``.
    """
    return check_file(path, _format(platform, bedrock_format))


def convert(source: str | os.PathLike[str] | Iterable[dict[str, Any]], platform: str, *,
            bedrock_format: str = "conversation") -> Conversion:
    """Convert OpenAI chat examples (a JSONL path or a list) for ``platform``, checking its rules.

    Example: ``convert(support_splits()["train"], "bedrock").n_examples == 1020``. Problems come
    sorted by line, the file-level ones first.
    """
    fmt = _format(platform, bedrock_format)
    examples, problems, n_input = read_chat_lines(source)
    conv = Conversion(platform, n_input, problems=list(problems), bedrock_format=bedrock_format)
    for line, ex in examples:
        try:
            rec = fmt.to_record(ex, line, conv.warnings)
        except _Unholdable as exc:
            conv.problems += _problems(line, "cannot-hold", [str(exc)])
            continue
        rule_errors = fmt.check_record(rec, line)
        if rule_errors:
            conv.problems += _problems(line, "rule", rule_errors)
            continue
        conv.records.append(rec)
        conv.lines.append(line)
    file_problems, warns = file_level(fmt, n_input)
    conv.problems += file_problems
    conv.warnings += warns
    conv.problems.sort(key=lambda p: p.line or 0)
    return conv


def default_out(src: str | os.PathLike[str], platform: str) -> Path:
    """``data/train.jsonl`` → ``data/train.bedrock.jsonl``."""
    src = Path(src)
    return src.with_name(f"{src.stem}.{platform}.jsonl")


def convert_file(src: str | os.PathLike[str], platform: str, out: str | os.PathLike[str] | None = None, *,
                 bedrock_format: str = "conversation") -> Conversion:
    """Convert a JSONL file and write the result when every example converted (else write nothing).

    The written file is checked again from disk with ``validate_for_platform`` (Azure: the BOM, the
    size), so ``conv.ok`` means the file on disk passed the platform's rules.
    """
    conv = convert(src, platform, bedrock_format=bedrock_format)
    if conv.ok:
        conv.write(out or default_out(src, platform))
        check = validate_for_platform(conv.path, platform, bedrock_format=bedrock_format)
        conv.problems += check.problems
    return conv


def read_back(path: str | os.PathLike[str], platform: str, *, bedrock_format: str = "conversation") -> list[dict[str, Any]]:
    """Read a platform file back as OpenAI chat examples (for round-trip checks)."""
    fmt = _format(platform, bedrock_format)
    items, problems, _, _ = _read_platform_lines(Path(path), fmt)
    bad = [p for p in problems if p.code == "json"]
    if bad:
        raise FtlabError(f"{path}: {bad[0]}")
    return [fmt.from_record(rec) for _, rec in items]


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

