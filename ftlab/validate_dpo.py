"""Validate an OpenAI preference (DPO) fine-tuning JSONL file before uploading it.

OpenAI's direct preference optimization takes one pair of replies a line
(https://developers.openai.com/api/docs/guides/direct-preference-optimization); Azure AI Foundry
reads the same format (https://learn.microsoft.com/en-us/azure/foundry/openai/how-to/fine-tuning-direct-preference-optimization)::

    {"input": {"messages": [{"role": "user", "content": "Where is order 4821?"}], "tools": [], "parallel_tool_calls": true},
     "preferred_output": [{"role": "assistant", "content": "intent: status | order: 4821 | It is on its way. Thank you!"}],
     "non_preferred_output": [{"role": "assistant", "content": "It is on its way."}]}

The messages are checked with the SFT validator's own rules (``ftlab.validate``: roles, content, tool
calls, tools), and the file is read with its helpers (encoding, byte-order mark, line endings, JSON),
so both validators report the same problems the same way. DPO adds:

- errors: ``input`` missing or not an object, ``input.messages`` missing or empty, an output that is not
  a list holding exactly one assistant message;
- warnings: the input does not end on a user turn (the pair then answers something else), the preferred
  and non-preferred outputs are identical (the pair teaches nothing).

Example::

    report = validate_dpo_file("prefs.jsonl")
    report.ok                   # False when OpenAI would reject the file
    report.errors[0]            # Finding(line=4, code='invalid_output', message='preferred_output ...')

Like ``validate_bytes``, ``validate_dpo_bytes`` never raises on the file's content.
"""

from __future__ import annotations

import hashlib
import os
from typing import Any

from ftlab.validate import (
    DEFAULT_MODEL,
    MIN_EXAMPLES,
    UNREADABLE,
    Finding,
    Report,
    count_example_tokens,
    iter_json_lines,
    read_file_bytes,
    utf16_finding,
)
from ftlab.validate.checks import _Checker, _has_lone_surrogate, _type
from ftlab.validate.counting import _json_text
from ftlab.validate.files import _settings, _stats
from ftlab.validate.personal import _warn_personal_data

__all__ = ["DPO_CODES", "DPO_KEYS", "INPUT_KEYS", "OUTPUTS", "validate_dpo_bytes", "validate_dpo_file"]


DPO_KEYS = ("input", "preferred_output", "non_preferred_output")
INPUT_KEYS = ("messages", "tools", "functions", "parallel_tool_calls")
OUTPUTS = ("preferred_output", "non_preferred_output")
# The codes this validator adds to the SFT validator's.
DPO_CODES = ("missing_input", "invalid_output", "input_not_ending_on_user", "identical_outputs")


class _PreferenceChecker(_Checker):
    """Checks one preference pair (a parsed line), appending findings."""

    def where(self, prefix: str, check, *args):
        """Run ``check(*args)`` and put ``prefix`` before the findings it adds ("input: message 2 ...")."""
        n_err, n_warn = len(self.errors), len(self.warnings)
        result = check(*args)
        for found, start in ((self.errors, n_err), (self.warnings, n_warn)):
            found[start:] = [Finding(f.line, f.code, f"{prefix}: {f.message}") for f in found[start:]]
        return result

    def output(self, key: str, value: Any) -> dict | None:
        """Check ``preferred_output`` / ``non_preferred_output``: a list holding one assistant message."""
        if key not in self.ex:
            self.error("invalid_output", f"no '{key}': each line needs '{key}', a list holding one assistant message")
            return None
        if not isinstance(value, list) or len(value) != 1:
            what = f"a list of {len(value)} messages" if isinstance(value, list) else _type(value)
            self.error("invalid_output", f"'{key}' is {what}; it must be a list holding exactly one assistant message")
            return None
        msg = value[0]
        role = self.where(key, self.message, 1, msg)
        if isinstance(msg, dict) and role is not None and role != "assistant":
            self.error("invalid_output", f"'{key}' holds a {role} message; it must be an assistant message")
            return None
        return msg if isinstance(msg, dict) and role == "assistant" else None

    def pair(self, ex: Any) -> tuple[list[dict], dict | None, dict | None] | None:
        """Check a parsed line. Returns ``(input messages, preferred, non_preferred)`` when countable."""
        self.ex = ex
        if not isinstance(ex, dict):
            self.error("data_type", f"the line is {_type(ex)}, not a JSON object with 'input', 'preferred_output' "
                                    "and 'non_preferred_output'")
            return None
        self.extra_keys(ex, DPO_KEYS, "a preference line")
        inp = ex.get("input")
        if not isinstance(inp, dict):
            what = "no 'input'" if "input" not in ex else f"'input' is {_type(inp)}"
            self.error("missing_input", f"{what}: each line needs 'input', an object with a 'messages' list")
            messages = None
        else:
            messages = self._input(inp)
        preferred = self.output("preferred_output", ex.get("preferred_output"))
        non_preferred = self.output("non_preferred_output", ex.get("non_preferred_output"))
        if preferred is not None and non_preferred is not None and _json_text(preferred) == _json_text(non_preferred):
            self.warn("identical_outputs", "preferred_output and non_preferred_output are identical: the pair "
                                           "teaches nothing; make the non-preferred reply the one you want less")
        if messages is None:
            return None
        return messages, preferred, non_preferred

    def _input(self, inp: dict) -> list[dict] | None:
        found = self.where("input", self.conversation, inp, INPUT_KEYS, "'input'")
        if found is None:
            return None
        messages, roles, defined = found
        if roles[-1] != "user":
            last = f"role {roles[-1]!r}" if roles[-1] else "an unrecognized role"
            self.warn("input_not_ending_on_user", f"the input ends on a message with {last}, not a user turn: "
                                                  "the two outputs should answer the last user message")
        if "user" not in roles:
            self.warn("missing_user_message", "input: no user message")
        self.defined = defined
        return [m for m in messages if isinstance(m, dict)]


def validate_dpo_bytes(data: bytes, *, model: str = DEFAULT_MODEL, max_tokens: int | None = None,
                       encoding: str | None = None, n_epochs: int | None = None) -> Report:
    """Validate the bytes of a preference JSONL file. See ``validate_dpo_file``."""
    enc, enc_name, limit, warnings = _settings(model, encoding, max_tokens)
    errors: list[Finding] = []
    if (utf16 := utf16_finding(data)) is not None:
        return Report(0, [utf16], warnings, {"model": model, "encoding": enc_name, "method": "dpo"})
    examples: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    n_examples = 0
    n_missing = {"system": 0, "user": 0}
    for lineno, ex in iter_json_lines(data, errors, warnings):
        n_examples += 1
        if ex is UNREADABLE:
            continue
        chk = _PreferenceChecker(lineno, errors, warnings)
        chk.defined = None
        try:
            if _has_lone_surrogate(ex):
                chk.error("invalid_encoding", "a string holds an unpaired UTF-16 surrogate escape (e.g. \\ud800)")
            parsed = chk.pair(ex)
            if chk.defined is not None:
                for name in chk.called:
                    if name not in chk.defined:
                        chk.warn("unknown_tool", f"a message calls {name!r}, which the input's tools do not define")
            if parsed is None:
                continue
            messages, preferred, non_preferred = parsed
            digest = hashlib.sha256(_json_text(ex).encode("utf-8", "replace")).hexdigest()
            if digest in seen:
                chk.warn("duplicate_example", f"duplicate of line {seen[digest]}")
            else:
                seen.setdefault(digest, lineno)
            _warn_personal_data(chk, [ex.get("input", {}).get("messages"), ex.get("preferred_output"),
                                      ex.get("non_preferred_output")])
            inp = ex["input"]
            prompt, _ = count_example_tokens(inp, messages, enc)
            sides = [count_example_tokens({}, [m], enc) for m in (preferred, non_preferred) if m is not None]
            for key, (n, _) in zip(OUTPUTS, sides, strict=False):
                if prompt + n - 3 > limit:
                    chk.error("too_many_tokens", f"input + {key}: {prompt + n - 3} tokens, over the {limit}-token "
                                                 f"limit per example for {model if not max_tokens else 'this run'}")
            total = prompt + sum(n - 3 for n, _ in sides)
            roles = {m["role"] for m in messages if isinstance(m.get("role"), str)}
            n_missing["system"] += not ({"system", "developer"} & roles)
            n_missing["user"] += "user" not in roles
            examples.append({"line": lineno, "n_messages": len(messages) + len(sides), "tokens": total,
                             "assistant_tokens": sum(a for _, a in sides)})
        except RecursionError:
            chk.error("invalid_json", "the line is nested too deeply to check")
    if n_examples == 0:
        errors.append(Finding(None, "empty_file", "the file has no examples"))
    elif n_examples < MIN_EXAMPLES:
        errors.append(Finding(None, "too_few_examples", f"{n_examples} examples: OpenAI requires at least {MIN_EXAMPLES}"))
    errors.sort(key=lambda f: (f.line is not None, f.line or 0))
    warnings.sort(key=lambda f: (f.line is not None, f.line or 0))
    report = Report(n_examples, errors, warnings)
    report.stats = _stats(examples, model, enc_name, limit, n_epochs, n_missing, report.personal_data_lines)
    report.stats["method"] = "dpo"
    report.stats["tokens_counted"] = "the input once plus both outputs (the pair is trained together)"
    return report


def validate_dpo_file(path: str | os.PathLike[str], *, model: str = DEFAULT_MODEL, max_tokens: int | None = None,
                      encoding: str | None = None, n_epochs: int | None = None) -> Report:
    """Validate an OpenAI preference (DPO) JSONL file for ``model``; the settings are ``validate_file``'s.

    Raises ``FtlabError`` only when the file cannot be read or a setting is bad. Example:
    ``validate_dpo_file("prefs.jsonl").codes("warnings")`` might be ``["identical_outputs"]``.
    """
    return validate_dpo_bytes(read_file_bytes(path), model=model, max_tokens=max_tokens, encoding=encoding,
                              n_epochs=n_epochs)
