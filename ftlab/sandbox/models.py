"""Which OpenAI model names the sandbox accepts, and what stands in for them.

The names come from ftlab's price catalog (``ftlab.cost``): a fine-tunable OpenAI entry can be
fine-tuned here; an inference-only one (``gpt-5.4``) is refused with OpenAI's error shape. Every
accepted name is served by the same local toy model (``ftlab.toymodel``), and the job's first
event says so.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["BaseModelInfo", "ModelRefused", "fine_tunable_models", "resolve_base_model", "supervised_models"]


# Used only when ftlab.cost (the price catalog) is not importable. Article 001's list, April 2026.
_FALLBACK = {
    "gpt-4.1": ("gpt-4.1-2025-04-14", "supervised"),
    "gpt-4.1-mini": ("gpt-4.1-mini-2025-04-14", "supervised"),
    "gpt-4.1-nano": ("gpt-4.1-nano-2025-04-14", "supervised"),
    "gpt-4o": ("gpt-4o-2024-08-06", "supervised"),
    "gpt-4o-mini": ("gpt-4o-mini-2024-07-18", "supervised"),
    "o4-mini": ("o4-mini-2025-04-16", "reinforcement"),
}
_FALLBACK_NOT_TUNABLE = ("gpt-5.4", "gpt-5.4-mini")


class ModelRefused(Exception):
    """A model name the sandbox cannot fine-tune; ``code`` and ``message`` follow OpenAI's error."""

    def __init__(self, message: str, code: str = "model_not_available"):
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class BaseModelInfo:
    alias: str  # e.g. gpt-4.1-mini
    snapshot: str  # e.g. gpt-4.1-mini-2025-04-14, what job.model shows
    methods: tuple[str, ...]  # fine-tuning methods OpenAI offers for it


def _catalog_models() -> tuple[dict[str, BaseModelInfo], tuple[str, ...]]:
    try:
        from ftlab.cost import load_catalog
    except ImportError:
        infos = {a: BaseModelInfo(a, s, (m,)) for a, (s, m) in _FALLBACK.items()}
        return infos, _FALLBACK_NOT_TUNABLE
    cat = load_catalog()
    infos: dict[str, BaseModelInfo] = {}
    refused = []
    for m in cat.models:
        if m["provider"] != "openai":
            continue
        if not m["fine_tunable"]:
            refused.append(m["id"])
            continue
        methods = ("reinforcement",) if "reinforcement" in str(m.get("method", "")).lower() else ("supervised",)
        infos[m["id"]] = BaseModelInfo(m["id"], m.get("snapshot") or m["id"], methods)
    return infos, tuple(refused)


def fine_tunable_models() -> dict[str, BaseModelInfo]:
    """The OpenAI models that can be fine-tuned, by alias."""
    return _catalog_models()[0]


def supervised_models() -> list[str]:
    """Aliases the sandbox can fine-tune with the supervised method."""
    return [a for a, info in fine_tunable_models().items() if "supervised" in info.methods]


def resolve_base_model(name: str, method: str = "supervised") -> BaseModelInfo:
    """The base model behind ``name`` (an alias or a dated snapshot), or ``ModelRefused``.

    Example: ``resolve_base_model("gpt-4.1-mini").snapshot == "gpt-4.1-mini-2025-04-14"``.
    """
    infos, refused = _catalog_models()
    for info in infos.values():
        if name in (info.alias, info.snapshot):
            if method not in info.methods:
                raise ModelRefused(
                    f"Model {name} does not support {method} fine-tuning (it supports: {', '.join(info.methods)}). "
                    f"Models that support {method} fine-tuning in this sandbox: {', '.join(supervised_models())}.",
                    code="invalid_method")
            return info
    if name in refused or any(name.startswith(r + "-") for r in refused):
        raise ModelRefused(f"Model {name} is not available for fine-tuning (it is inference-only). "
                           f"Fine-tunable models: {', '.join(infos)}.")
    raise ModelRefused(f"Model {name} is not available for fine-tuning or does not exist. "
                       f"Fine-tunable models: {', '.join(infos)}.")
