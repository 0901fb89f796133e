"""What the sandbox's HTTP side (``server``) and its job side (``jobs``, ``inference``) share: the
organization names, job states, the OpenAI-shaped error, the hyperparameter check, and the lock that
keeps two threads from importing trl / transformers at once.

It imports nothing from the rest of the sandbox, so ``server`` and ``jobs`` both build on it and
neither imports the other.
"""

from __future__ import annotations

import threading
from typing import Any

__all__ = ["DPO_LIMITS", "IMPORT_LOCK", "LIMITS", "ORGANIZATION", "ORG_SLUG", "TERMINAL", "ApiError",
           "parse_hyperparameters"]

ORGANIZATION = "org-ftlabsandbox"
ORG_SLUG = "ftlab-sandbox"
TERMINAL = ("succeeded", "failed", "cancelled")  # a job in one of these states never changes again
# Some libraries' lazy modules (trl's, transformers') are not safe to import from two threads at once:
# the warm-up, the training and the chat endpoint's first model load take turns.
IMPORT_LOCK = threading.Lock()
# OpenAI's ranges: name -> (type, lowest, highest); "auto" is always allowed (jobs.resolve_auto).
LIMITS = {"n_epochs": (int, 1, 50), "batch_size": (int, 1, 256), "learning_rate_multiplier": (float, 1e-6, 10.0)}
DPO_LIMITS = {"beta": (float, 1e-6, 2.0)}  # DPO's β ("auto": jobs.AUTO_BETA)


class ApiError(Exception):
    """An error response in OpenAI's shape: ``{"error": {"message", "type", "param", "code"}}``."""

    def __init__(self, status: int, message: str, *, type: str = "invalid_request_error", param: str | None = None,
                 code: str | None = None, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.message, self.type, self.param, self.code = status, message, type, param, code
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


def parse_hyperparameters(hp: Any, method: str = "supervised") -> dict[str, Any]:
    """Check supervised (or DPO: ``beta`` too) hyperparameters (``"auto"`` or a value in OpenAI's range);
    missing ones are ``"auto"``."""
    limits = {**LIMITS, **DPO_LIMITS} if method == "dpo" else LIMITS
    if not isinstance(hp, dict):
        raise ApiError(400, "Invalid 'hyperparameters': expected an object.", param="hyperparameters")
    unknown = [k for k in hp if k not in limits]
    if unknown:
        raise ApiError(400, f"Unknown hyperparameter(s): {', '.join(unknown)}. Valid: {', '.join(limits)}.",
                       param="hyperparameters")
    out: dict[str, Any] = {}
    for name, (typ, lo, hi) in limits.items():
        v = hp.get(name, "auto")
        if v is None or v == "auto":
            out[name] = "auto"
            continue
        ok = not isinstance(v, bool) and (isinstance(v, int) if typ is int else isinstance(v, int | float))
        if not ok or not lo <= v <= hi:
            raise ApiError(400, f"Invalid '{name}': {v!r}. Expected 'auto' or a {typ.__name__} from {lo:g} to {hi:g}.",
                           param=f"hyperparameters.{name}")
        out[name] = typ(v)
    return out
