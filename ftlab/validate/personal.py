"""Personal data in a training file: e-mail addresses, phone numbers and card numbers (Luhn-checked), masked."""

from __future__ import annotations

import json
import re

from ftlab.validate.checks import _strings

__all__ = ["describe_personal_data", "find_personal_data", "personal_data_by_line"]


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


def _warn_personal_data(chk, value) -> None:
    """One warning per kind of personal data found in the strings of ``value`` (a message list, a reply, ...),
    with up to three masked examples: ``chk`` is the line's checker (``validate.checks._Checker``)."""
    hits: dict[str, list[str]] = {}
    for s in _strings(value):
        for code, masked in find_personal_data(s):
            hits.setdefault(code, []).append(masked)
    for code, masked in hits.items():
        kind = code.removeprefix("pii_").replace("_", " ")
        chk.warn(code, f"possible personal data ({kind}: {', '.join(sorted(set(masked))[:3])}); "
                       "remove or mask it before uploading")
