"""What a managed fine-tuning run costs on every platform: a view of ``ftlab.cost``, which loads the one
price catalog (``ftlab/catalog/prices.yaml``) and does the arithmetic (per training token for Bedrock,
Together and Gemini on Vertex, per training hour for open models on Vertex and Azure), next to the
source articles' self-managed GPU reference and their 2-3x caveat.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ftlab import cost
from ftlab.cost import Catalog
from ftlab.errors import FtlabError
from ftlab.show import table

__all__ = ["caveat_range", "cost_table", "count_dataset_tokens", "format_table", "plot_costs"]


def count_dataset_tokens(examples: Iterable[dict[str, Any]], model: str = "o200k_base") -> int:
    """Tokens in a dataset, counted the OpenAI-cookbook way with tiktoken (an estimate for other vendors).

    Each platform bills with its own tokenizer; o200k_base is within a few percent for English.
    Same count as ``ftlab.cost.dataset_tokens(examples, model).total``.
    """
    return cost.dataset_tokens(list(examples), model).total


def cost_table(train_tokens: int, *, epochs: int = 3, training_hours: float | None = None, validation_tokens: int = 0,
               n_evals: int = 0, openai_models: Iterable[str] = ("gpt-4.1-mini", "gpt-4.1"),
               self_managed_gpu: str | None = None, as_of: str | None = None,
               catalog: Catalog | None = None) -> list[dict[str, Any]]:
    """One training run priced on every cloud-managed catalog entry, the OpenAI models named, and the
    articles' self-managed reference (the caveat's ``reference_gpu``, an A100 spot instance) last.

    A view of :func:`ftlab.cost.cost_for`, which does the arithmetic: per-token entries bill
    ``train_tokens x epochs`` (Together adds ``n_evals x validation_tokens``); per-hour entries (open
    models on Vertex and Foundry, and the self-managed GPU) bill ``training_hours``, or, when that is
    ``None``, the hours the throughput table estimates for the run. Rows are dicts with ``platform``,
    ``model``, ``entry``, ``pricing``, ``rate``, ``billed``, ``cost_usd`` (``None`` where the catalog has
    no price), ``vs_self_managed`` (cost / the self-managed cost), ``source``, ``as_of`` and ``confidence``.

    Example: article 001's run (5,000 examples x 300 tokens, 3 epochs) is ``cost_table(1_500_000, epochs=3)``;
    its Together row at the article's price costs $20.25 and its self-managed row $3.00 (2 h x $1.50).
    """
    if train_tokens < 0 or epochs < 1 or (training_hours is not None and training_hours <= 0):
        raise FtlabError("cost_table needs train_tokens >= 0, epochs >= 1 and training_hours > 0 (or None to estimate)")
    cat = catalog or cost.load_catalog()
    tokens = train_tokens * epochs
    kw = {"training_hours": training_hours, "validation_tokens": validation_tokens * n_evals, "digits": 4,
          "as_of": as_of, "catalog": cat}
    managed = [m for m in cat.models if m["fine_tunable"] and cat.providers[m["provider"]]["path"] == "cloud_managed"]
    priced = [(m["provider"], cost.cost_for(m["id"], tokens, **kw)) for m in managed]
    priced += [(cat.entry(m)["provider"], cost.cost_for(m, tokens, **kw)) for m in openai_models]
    gpu = self_managed_gpu or cost.managed_premium(cat)["reference_gpu"]
    self_row = cost.cost_for(gpu, tokens, **kw)
    if self_row.pricing != "per_gpu_hour":
        raise FtlabError(f"self_managed_gpu {gpu!r} is not a GPU id; valid choices: {', '.join(g['id'] for g in cat.gpus)}")
    priced.append(("self_hosted", self_row))
    self_cost = self_row.training_cost_usd
    rows = []
    for provider, r in priced:
        usd = r.training_cost_usd
        rows.append({"platform": cat.providers[provider].get("platform", provider), "model": r.model, "entry": r.entry,
                     "pricing": r.pricing, "rate": r.rate, "billed": r.billed, "cost_usd": usd,
                     "vs_self_managed": round(usd / self_cost, 2) if usd is not None and self_cost else None,
                     "source": r.source, "as_of": r.as_of, "confidence": r.confidence,
                     "availability": cost.availability_cell(r), "available": r.available})
    return rows


def caveat_range(rows: list[dict[str, Any]], catalog: Catalog | None = None) -> dict[str, float]:
    """What the articles' caveat predicts for managed cost: the self-managed row's cost x the ratio (2, 3).

    The text, ratio and source come from ``ftlab.cost.managed_premium()``.
    """
    self_cost = next(r["cost_usd"] for r in rows if r["platform"] == "self-managed")
    lo, hi = cost.managed_premium_range(self_cost, catalog)
    return {"self_managed_usd": self_cost, "managed_low_usd": lo, "managed_high_usd": hi}


def format_table(rows: list[dict[str, Any]], columns: list[str]) -> str:
    """A Markdown table of ``rows`` (for the CLI); notebooks show ``ftlab.show.table(rows, columns)`` instead."""
    return table(rows, columns).to_markdown()


def plot_costs(rows: list[dict[str, Any]], caveat: dict[str, float], as_of: Any = None) -> Any:
    """The priced rows of :func:`cost_table` as bars, with the caveat's managed range (:func:`caveat_range`) shaded;
    returns the axes. Unconfirmed prices get a ``*``, rows where no job can start on ``as_of`` are light grey."""
    import matplotlib.pyplot as plt

    priced = [r for r in rows if r["cost_usd"] is not None]
    _, ax = plt.subplots(figsize=(8, 4.2))
    labels = [f"{r['platform']}: {r['model'][:34]}" + (" *" if r["confidence"] == "unconfirmed" else "")
              + ("" if r["available"] else f" [{r['availability']}]") for r in priced]
    colors = ["lightgray" if not r["available"] else "tab:gray" if r["platform"] == "self-managed" else "tab:blue"
              for r in priced]
    ax.barh(labels, [r["cost_usd"] for r in priced], color=colors)
    ax.axvspan(caveat["managed_low_usd"], caveat["managed_high_usd"], color="tab:orange", alpha=0.2,
               label="articles' caveat: 2-3x self-managed")
    tokens = next((r["billed"] for r in rows if r["pricing"] == "per_training_token"), "the run")
    ax.set_xlabel(f"USD for {tokens} (* unconfirmed price; light grey: no new jobs on {as_of or 'today'})")
    ax.legend(loc="lower right")
    ax.figure.tight_layout()
    return ax
