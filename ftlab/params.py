"""Checks for notebook parameters: a bad value fails at the top of the notebook, in one line.

Example (a notebook whose parameters cell declares ``epochs: int = 3`` and ``model: str = "gpt-4.1"``)::

    check_params(epochs={"min": 1, "max": 50}, model={"choices": ["gpt-4.1", "gpt-4.1-mini"]})

raises ``ParameterError: parameter 'epochs' = -1 is out of range: expected an int from 1 to 50``.

Rules: ``min``, ``max``, ``choices``, ``pattern``, ``multiple_of``, ``exists`` (a file or folder that
must exist), ``model`` (a model id: a local folder that must exist, or a hub id that must be reachable;
the list given, e.g. ``[TOY_MODEL_ID]``, names ids that are always accepted) and ``check`` (any
function raising ``FtlabError``, e.g. ``catalog.entry``).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from ftlab.errors import FtlabError, ParameterError

__all__ = ["EXAMPLE_HUB_ID", "check_model_id", "check_param", "check_params", "looks_like_secret",
           "reject_secrets"]


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


def reject_secrets(params: dict[str, Any], *, written: bool = False) -> None:
    """Refuse credentials passed as parameters: keys come only from the environment.

    ``written=True`` says the value has already been written somewhere (papermill puts injected
    parameters into the executed notebook before the kernel runs), so the message says to rotate it.
    """
    for name, value in params.items():
        if looks_like_secret(name, value):
            after = (" papermill has already written it into the executed notebook: delete that file and "
                     "rotate the key." if written else "")
            raise ParameterError(
                f"parameter {name!r} looks like a credential. API keys are read only from the environment "
                "(e.g. export OPENAI_API_KEY=...), never passed as parameters, so they cannot leak into "
                f"executed notebooks or run cards.{after}"
            )


def _type_name(t: Any) -> str:
    if isinstance(t, tuple):
        return " or ".join(_type_name(x) for x in t)
    return getattr(t, "__name__", str(t))


_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]{0,95}(/[A-Za-z0-9][\w.-]{0,95})?")
EXAMPLE_HUB_ID = "meta-llama/Llama-3.1-8B-Instruct"


def _looks_local(value: str) -> bool:
    """A model id written as a path: absolute, relative (``./``, ``../``), ``~``, Windows, or ``a/b/c``."""
    return (value.startswith(("/", ".", "~")) or "\\" in value or value.count("/") > 1
            or bool(re.match(r"^[A-Za-z]:", value)))


def _hub_offline() -> bool:
    return any(os.environ.get(k, "").strip().lower() in ("1", "true", "yes", "on")
               for k in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "FTLAB_OFFLINE"))


def check_model_id(name: str, value: str, known: list[str] | tuple[str, ...] = ()) -> str:
    """Check a model id before anything loads it, and return it.

    Accepted: an id in ``known`` (e.g. the toy model), an existing local folder holding a
    ``config.json``, or a Hugging Face id ``owner/name`` (offline: only if it is in the local cache).
    Example: ``check_model_id("model_id", "./no-such-folder")`` raises ``ParameterError: parameter
    'model_id' = './no-such-folder': no such model folder (looked in /…/no-such-folder); give …``.
    """
    from ftlab.hub import can_provide

    if value in known or can_provide(value):  # can_provide: a real model ftlab builds offline (ftlab.hub)
        return value
    local = [*(f"{k!r}" for k in known), "a local model folder (with config.json)"]
    hint = "give " + ", ".join([*local, f"or a Hugging Face id such as {EXAMPLE_HUB_ID!r}"])
    path = Path(value).expanduser()
    if _looks_local(value) or path.exists():
        if not path.exists():
            raise ParameterError(f"parameter {name!r} = {value!r}: no such model folder (looked in "
                                 f"{path.resolve()}); {hint}")
        if not (path / "config.json").is_file():
            raise ParameterError(f"parameter {name!r} = {value!r} is not a model folder (no config.json in "
                                 f"{path.resolve()}); {hint}")
        return value
    if not _HUB_ID.fullmatch(value) or "--" in value or ".." in value:
        raise ParameterError(f"parameter {name!r} = {value!r} is neither a local folder nor a Hugging Face id "
                             f"(owner/name); {hint}")
    if _hub_offline():
        try:
            from huggingface_hub import try_to_load_from_cache

            cached = try_to_load_from_cache(value, "config.json")
        except Exception:  # an id the hub library refuses
            cached = None
        if not isinstance(cached, str):
            raise ParameterError(
                f"parameter {name!r} = {value!r} is not in the local Hugging Face cache and downloads are off "
                f"(offline mode): download it first (hf download {value}) or run with network access "
                f"(ftlab run --allow-network); or give {' or '.join(local)}")
    return value


def check_param(name: str, value: Any, expected: type | tuple[type, ...], **rules: Any) -> Any:
    """Check one parameter and return it.

    Rules: ``min``, ``max``, ``choices``, ``pattern`` (a regex, or ``(regex, description)``),
    ``multiple_of`` (an int, or ``(other_name, int)``), ``exists`` (a path that must exist; an empty
    value passes, meaning "none"), ``model`` (``True`` or a list of always-accepted ids: see
    ``check_model_id``) and ``check`` (a function that raises ``FtlabError`` for a bad value; its
    message is prefixed with the parameter's name).

    ``int`` is accepted where ``float`` is expected; ``bool`` never passes as a number.
    """
    types = expected if isinstance(expected, tuple) else (expected,)
    if float in types and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    bad_bool = isinstance(value, bool) and bool not in types
    if bad_bool or not isinstance(value, types):
        extra = ""
        if "choices" in rules:
            extra = f"; valid values: {', '.join(repr(c) if c == '' else str(c) for c in rules['choices'])}"
        raise ParameterError(
            f"parameter {name!r} = {value!r} has type {type(value).__name__}: expected {_type_name(expected)}{extra}"
        )
    lo, hi = rules.get("min"), rules.get("max")
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        span = f"from {lo} to {hi}" if lo is not None and hi is not None else (f">= {lo}" if lo is not None else f"<= {hi}")
        raise ParameterError(f"parameter {name!r} = {value!r} is out of range: expected {_type_name(expected)} {span}")
    if "choices" in rules and value not in rules["choices"]:
        raise ParameterError(
            f"parameter {name!r} = {value!r} is not a valid choice; valid values: {', '.join(repr(c) if c == '' else str(c) for c in rules['choices'])}"
        )
    pattern = rules.get("pattern")
    if pattern is not None:
        regex, described = pattern if isinstance(pattern, tuple) else (pattern, f"the pattern {pattern}")
        if not re.fullmatch(regex, value):
            raise ParameterError(f"parameter {name!r} = {value!r} is not valid: expected {described}")
    step = rules.get("multiple_of")
    if step is not None:
        other, n = step if isinstance(step, tuple) else (None, step)
        if n and value % n:
            of = f"{other} = {n}" if other else str(n)
            raise ParameterError(f"parameter {name!r} = {value!r} must be a multiple of {of}, e.g. {n * max(1, round(value / n))}")
    if rules.get("exists") and value and not Path(os.fspath(value)).expanduser().exists():
        where = Path(os.fspath(value)).expanduser().resolve()
        raise ParameterError(f"parameter {name!r}: the path {value!r} does not exist (looked in {where}); "
                             "give an existing file or folder")
    if rules.get("model") and value:
        known = rules["model"] if isinstance(rules["model"], list | tuple) else ()
        check_model_id(name, value, known)
    if rules.get("check") is not None:
        try:
            rules["check"](value)
        except FtlabError as exc:
            if repr(name) in str(exc):
                raise
            raise ParameterError(f"parameter {name!r} = {value!r}: {exc}") from None
    return value


def _declared(frame_depth: int = 2) -> tuple[dict[str, Any], dict[str, Any]]:
    """(globals, annotations) of the notebook calling ``check_params`` (``__main__``), else two empty dicts."""
    import sys

    g = sys._getframe(frame_depth).f_globals
    if g.get("__name__") != "__main__":
        return {}, {}
    builtin = {"str": str, "int": int, "float": float, "bool": bool, "list": list, "dict": dict}
    # under `from __future__ import annotations` (code compiled from such a module) an annotation is its text
    return g, {k: builtin.get(v, v) if isinstance(v, str) else v for k, v in (g.get("__annotations__") or {}).items()}


def check_params(**specs: tuple | dict) -> dict[str, Any]:
    """Check a notebook's parameters: ``name={rules}`` takes the value and the type from the parameters cell
    (``epochs: int = 3``: the annotation is the type, written once), ``name=(value, type, {rules})`` gives
    them here (outside a notebook). In a notebook every parameter the parameters cell declares is type-checked,
    listed here or not, and credential-like globals that papermill injected without the notebook declaring
    them (e.g. ``-p openai_api_key sk-…``) are refused.

    Example (in a notebook whose parameters cell says ``epochs: int = 3``)::

        check_params(epochs={"min": 1, "max": 50})
    """
    g, declared = _declared()
    reject_secrets({k: (g.get(k) if isinstance(v, dict) else v[0]) for k, v in specs.items()})
    reject_secrets({k: v for k, v in g.items() if not k.startswith("_") and isinstance(v, str | bytes)}, written=True)
    out = {}
    for name, spec in specs.items():
        if isinstance(spec, dict):
            if name not in declared:
                raise FtlabError(f"check_params: {name!r} is not declared in the parameters cell "
                                 f"(declared: {', '.join(declared) or 'none'}); write name=(value, type, rules) instead")
            out[name] = check_param(name, g[name], declared[name], **spec)
        else:
            value, expected, *rest = spec
            out[name] = check_param(name, value, expected, **(rest[0] if rest else {}))
    for name, expected in declared.items():  # the type of every declared parameter, listed or not
        if name not in out and isinstance(expected, type) and name in g:
            out[name] = check_param(name, g[name], expected)
    return out
