"""OpenAI's rules as data (limits, roles, keys, the default-epochs heuristic) and the findings and report a check returns."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from ftlab.tokens import base_model

__all__ = ["DEFAULT_MODEL", "DEFAULT_TOKEN_LIMIT", "EXAMPLE_KEYS", "EXAMPLE_TOKEN_LIMITS",
           "MAX_DEFAULT_EPOCHS", "MAX_TARGET_EXAMPLES", "MESSAGE_KEYS", "MIN_DEFAULT_EPOCHS",
           "MIN_EXAMPLES", "MIN_TARGET_EXAMPLES", "ROLES", "TARGET_EPOCHS", "Finding", "Report",
           "default_epochs", "token_limit_for_model"]


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


