"""Exact token counts of a real dataset, offline (tiktoken)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ftlab.cost.catalog import Catalog, _cat
from ftlab.errors import ParameterError
from ftlab.params import check_param

__all__ = ["DatasetTokens", "dataset_tokens"]


@dataclass
class DatasetTokens:
    """Exact token counts of a chat dataset under one model's encoding."""

    model: str
    encoding: str
    examples: int
    total: int
    mean: float
    max: int

    def training_tokens(self, epochs: int) -> int:
        """Tokens billed for ``epochs`` passes over the dataset."""
        check_param("epochs", epochs, int, min=1)
        return self.total * epochs


def dataset_tokens(rows: Iterable[dict[str, Any]], model: str = "gpt-4.1-mini", *,
                   catalog: Catalog | None = None) -> DatasetTokens:
    """Count a chat dataset exactly, offline, with ``model``'s encoding (taken from the base model).

    Example: ``dataset_tokens(support_splits()["train"], "gpt-4.1-mini").total`` counts the toy
    training split with ``o200k_base``; ``ft:gpt-4.1-mini-...:org::id`` gives the same encoding.
    """
    from ftlab.tokens import count_chat_tokens, encoding_name_for_model

    cat = _cat(catalog)
    try:
        encoding = cat.entry(model, fine_tune=False).get("encoding") or encoding_name_for_model(model)
    except ParameterError:
        encoding = encoding_name_for_model(model)  # encoding names and other OpenAI models
    counts = [count_chat_tokens(r["messages"], encoding) for r in rows]
    if not counts:
        raise ParameterError("the dataset is empty: give at least one example with 'messages'")
    return DatasetTokens(model, encoding, len(counts), sum(counts), sum(counts) / len(counts), max(counts))


