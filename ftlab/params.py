"""Checks for notebook parameters: a bad value fails at the top of the notebook, in one line.

Example::

    check_params(
        epochs=(epochs, int, {"min": 1, "max": 50}),
        model=(model, str, {"choices": ["gpt-4.1", "gpt-4.1-mini"]}),
    )

raises ``ParameterError: parameter 'epochs' = -1 is out of range: expected an int from 1 to 50``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from ftlab.errors import ParameterError

_SECRET_NAME = re.compile(r"(api[_-]?key|secret|token|password|passwd)$", re.IGNORECASE)
_SECRET_VALUE = re.compile(r"^(sk-[A-Za-z0-9_\-]{8,}|hf_[A-Za-z0-9]{10,}|AKIA[0-9A-Z]{12,})")


def looks_like_secret(name: str, value: Any) -> bool:
    """True for a parameter that carries a credential (by its name or by its value's shape).

    Example: ``looks_like_secret("openai_api_key", "x")`` and ``looks_like_secret("x", "sk-abc123456789")``
    are both True; ``looks_like_secret("max_tokens", 10)`` is False.
    """
    if _SECRET_NAME.search(name) and not name.endswith(("max_tokens", "_tokens")):
        return True
    return isinstance(value, str) and bool(_SECRET_VALUE.match(value.strip()))


def reject_secrets(params: dict[str, Any]) -> None:
    """Refuse credentials passed as parameters: keys come only from the environment."""
    for name, value in params.items():
        if looks_like_secret(name, value):
            raise ParameterError(
                f"parameter {name!r} looks like a credential. API keys are read only from the environment "
                "(e.g. export OPENAI_API_KEY=...), never passed as parameters, so they cannot leak into "
                "executed notebooks or run cards."
            )


def _type_name(t: Any) -> str:
    if isinstance(t, tuple):
        return " or ".join(_type_name(x) for x in t)
    return getattr(t, "__name__", str(t))


def check_param(name: str, value: Any, expected: type | tuple[type, ...], **rules: Any) -> Any:
    """Check one parameter and return it. Rules: ``min``, ``max``, ``choices``, ``exists`` (a path).

    ``int`` is accepted where ``float`` is expected; ``bool`` never passes as a number.
    """
    types = expected if isinstance(expected, tuple) else (expected,)
    if float in types and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    bad_bool = isinstance(value, bool) and bool not in types
    if bad_bool or not isinstance(value, types):
        extra = ""
        if "choices" in rules:
            extra = f"; valid values: {', '.join(map(str, rules['choices']))}"
        raise ParameterError(
            f"parameter {name!r} = {value!r} has type {type(value).__name__}: expected {_type_name(expected)}{extra}"
        )
    lo, hi = rules.get("min"), rules.get("max")
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        span = f"from {lo} to {hi}" if lo is not None and hi is not None else (f">= {lo}" if lo is not None else f"<= {hi}")
        raise ParameterError(f"parameter {name!r} = {value!r} is out of range: expected {_type_name(expected)} {span}")
    if "choices" in rules and value not in rules["choices"]:
        raise ParameterError(
            f"parameter {name!r} = {value!r} is not a valid choice; valid values: {', '.join(map(str, rules['choices']))}"
        )
    if rules.get("exists") and value and not Path(os.fspath(value)).exists():
        raise ParameterError(f"parameter {name!r}: the path {value!r} does not exist; give an existing file or folder")
    return value


def check_params(**specs: tuple) -> dict[str, Any]:
    """Check several parameters at once: ``name=(value, type, {rules})`` or ``name=(value, type)``."""
    reject_secrets({k: v[0] for k, v in specs.items()})
    out = {}
    for name, spec in specs.items():
        value, expected, *rest = spec
        rules = rest[0] if rest else {}
        out[name] = check_param(name, value, expected, **rules)
    return out
