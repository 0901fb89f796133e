"""Training cost on every path: tokens, GPU-hours and the cost row of each catalog entry."""

from __future__ import annotations

import datetime as _dt
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from ftlab.cost.catalog import _METHODS, Catalog, _cat
from ftlab.cost.dates import availability, parse_date
from ftlab.errors import FtlabError, ParameterError
from ftlab.params import check_param

__all__ = ["CostRow", "cost_for", "cost_summary", "gpu_hours", "hours_for", "managed_premium",
           "managed_premium_range", "training_costs", "training_tokens"]


def training_tokens(examples: int, tokens_per_example: int, epochs: int) -> int:
    """Training tokens billed = examples × tokens per example × epochs.

    Example: ``training_tokens(5_000, 300, 3) == 4_500_000``. Negative or zero values raise a one-line
    ``ParameterError``.
    """
    check_param("examples", examples, int, min=1)
    check_param("tokens_per_example", tokens_per_example, int, min=1)
    check_param("epochs", epochs, int, min=1)
    return examples * tokens_per_example * epochs


@dataclass
class CostRow:
    """One line of the training-cost table.

    ``gpu_hours`` is the hours billed on hour-priced rows (GPU-hours on self-hosted rows, job hours on
    managed per-training-hour and RFT rows), ``billed`` what the price multiplies ("4,500,000 tokens",
    "2.00 h"), and ``confidence`` the catalog's trust marker (seed, provider, unconfirmed).
    """

    path: str
    provider: str
    model: str
    entry: str
    training_cost_usd: float | None
    pricing: str
    rate: str
    gpu_hours: float | None = None
    note: str = ""
    source: str = ""
    as_of: str = ""
    confidence: str = ""
    billed: str = ""
    availability_status: str = "open"
    availability_date: str | None = None
    availability_note: str = ""

    @property
    def available(self) -> bool:
        """False once the row's route is closed or its model retired (the row still shows, marked)."""
        return self.availability_status in ("open", "closing")

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _with_availability(row: CostRow, entry: dict[str, Any], as_of: str | _dt.date | None, cat: Catalog) -> CostRow:
    av = availability(entry, as_of, catalog=cat)
    row.availability_status, row.availability_date, row.availability_note = av.status, av.date, av.reason
    return row


def _money(x: float, digits: int = 2) -> float:
    return round(x + 0.0, digits)


def hours_for(tokens: int, hardware: str, *, model_size: str = "8B", method: str = "qlora",
              catalog: Catalog | None = None) -> float:
    """Hours to train ``tokens`` on one GPU of ``hardware`` = tokens ÷ throughput (tokens/s) ÷ 3600.

    Example: ``hours_for(4_500_000, "a100-40gb") == 2.0`` (625 tokens/s, the articles' 1–2 h, upper end).
    """
    tp = _cat(catalog).throughput_for(hardware, model_size, method)
    return tokens / tp["tokens_per_s"] / 3600


def gpu_hours(tokens: int, gpu: str, *, model_size: str = "8B", method: str = "qlora",
              catalog: Catalog | None = None) -> float:
    """GPU-hours to train ``tokens`` on ``gpu`` = tokens ÷ throughput (tokens/s) ÷ 3600.

    Example: ``gpu_hours(4_500_000, "a100-40gb-spot") == 2.0`` (the articles' 1–2 h, upper end).
    """
    cat = _cat(catalog)
    return hours_for(tokens, cat.gpu(gpu)["hardware"], model_size=model_size, method=method, catalog=cat)


def _join(*parts: str) -> str:
    return "; ".join(p for p in parts if p)


def _model_row(m: dict[str, Any], tokens: int, cat: Catalog, *, training_hours: float | None = None,
               validation_tokens: int = 0, model_size: str = "8B", method: str = "qlora", digits: int = 2) -> CostRow:
    provider = cat.providers[m["provider"]]
    cost, rate, note, billed, hours = None, "", m.get("note", ""), "", None
    if m["pricing"] == "per_training_token":
        price = m.get("training_usd_per_1m")
        n = tokens + (validation_tokens if provider.get("bills_validation_tokens") else 0)
        billed = f"{n:,} tokens"
        if n != tokens:
            note = _join(f"includes {validation_tokens:,} validation tokens, which {provider['name']} bills", note)
        if price is not None:
            cost = _money(n * price / 1_000_000, digits)
            rate = f"${price:.2f}/M training tokens"
        else:
            rate = "per training token: check current docs"
    elif m["pricing"] == "per_training_hour":
        per_h = m.get("training_usd_per_hour")
        if per_h is None:
            rate = "per training hour: check current docs"
        else:
            if training_hours is None:
                hw = m["throughput_hardware"]
                tp = cat.throughput_for(hw, model_size, method)
                hours = hours_for(tokens, hw, model_size=model_size, method=method, catalog=cat)
                how = (f"hours estimated from the {hw} {_METHODS.get(method, method)} throughput "
                       f"({tp['tokens_per_s']} tokens/s, {tp['basis']}): the job's real length is known only afterwards")
            else:
                hours, how = training_hours, f"{training_hours:g} h given"
            cost = _money(hours * per_h, digits)
            rate = f"${per_h:.2f}/training hour × {hours:.2f} h"
            billed = f"{hours:.2f} h"
            note = _join(how, note)
    elif m["pricing"] == "per_wall_clock_hour":
        per_h = m.get("training_usd_per_hour")
        if per_h is None:
            rate = "per hour: check current docs"
        elif training_hours is None:
            rate = f"${per_h:.2f}/hour of training loop: give the hours"
        else:
            hours = training_hours
            cost = _money(hours * per_h, digits)
            rate = f"${per_h:.2f}/hour of training loop × {hours:.2f} h"
            billed = f"{hours:.2f} h"
        note = note or "billed per hour of training, not per token"
    return CostRow(provider["path"], provider["name"], m["model"], m["id"], cost, m["pricing"], rate,
                   None if hours is None else round(hours, 4), note, m["source"], m["as_of"], m["confidence"], billed)


def _gpu_row(g: dict[str, Any], tokens: int, cat: Catalog, setup_hours: float, model_size: str, method: str, *,
             training_hours: float | None = None, digits: int = 2) -> CostRow:
    tp = cat.throughput_for(g["hardware"], model_size, method)
    if training_hours is None:
        hours = gpu_hours(tokens, g["id"], model_size=model_size, method=method, catalog=cat)
        note = f"{tp['tokens_per_s']} tokens/s ({tp['basis']})"
    else:
        hours, note = training_hours, f"{training_hours:g} h given"
    billed = hours + setup_hours
    if setup_hours:
        note += f"; includes {setup_hours:g} h of instance setup"
    provider = cat.providers["self_hosted"]
    return CostRow(provider["path"], provider["name"], f"Llama 3.1 {model_size} ({_METHODS.get(method, method)}) on {g['name']}", g["id"],
                   _money(billed * g["usd_per_hour"], digits), "per_gpu_hour", f"${g['usd_per_hour']:.2f}/h × {billed:.2f} h",
                   round(billed, 4), note, g["source"], g["as_of"], g["confidence"], f"{billed:.2f} h")


def _check_run(tokens: int, setup_hours: float, training_hours: float | None, validation_tokens: int, digits: int) -> None:
    check_param("tokens", tokens, int, min=0)
    check_param("setup_hours", setup_hours, float, min=0)
    if training_hours is not None:
        check_param("training_hours", training_hours, float, min=0)
    check_param("validation_tokens", validation_tokens, int, min=0)
    check_param("digits", digits, int, min=0, max=10)


def cost_for(model_or_gpu: str, tokens: int, *, setup_hours: float = 0.0, training_hours: float | None = None,
             validation_tokens: int = 0, model_size: str = "8B", method: str = "qlora", digits: int = 2,
             as_of: str | _dt.date | None = None, catalog: Catalog | None = None) -> CostRow:
    """The training cost of ``tokens`` on one catalog entry: a model id (``gpt-4.1``) or a GPU id (``a100-40gb-spot``).

    - per training token: ``tokens`` (+ ``validation_tokens`` where the provider bills them, e.g. Together)
      × the price per million;
    - per GPU-hour (self-hosted) and per training hour (managed open-model jobs): hours × the hourly
      rate, the hours estimated from the throughput table unless ``training_hours`` gives them;
      ``setup_hours`` are added on self-hosted rows only;
    - per hour of the RFT loop (o4-mini): ``training_hours`` × the rate; without hours the cost is ``None``.

    The cost is rounded to ``digits`` decimals (cents by default). A model that cannot be fine-tuned
    raises a one-line error naming the fine-tunable alternatives. The row carries the entry's
    ``availability_status`` on ``as_of`` (default today; see :func:`availability`): a closed or retired
    row keeps its price, so the table can show what it would have cost, marked.
    Example: ``cost_for("together-lora-8b", 4_500_000).training_cost_usd == 20.25``.
    """
    cat = _cat(catalog)
    _check_run(tokens, setup_hours, training_hours, validation_tokens, digits)
    if any(g["id"] == model_or_gpu for g in cat.gpus):
        g = cat.gpu(model_or_gpu)
        return _with_availability(_gpu_row(g, tokens, cat, setup_hours, model_size, method,
                                           training_hours=training_hours, digits=digits), g, as_of, cat)
    try:
        entry = cat.entry(model_or_gpu)
    except ParameterError as exc:
        if str(exc).startswith("unknown model"):
            raise ParameterError(f"{exc}; or a self-hosted GPU: {', '.join(g['id'] for g in cat.gpus)}") from None
        raise
    return _with_availability(_model_row(entry, tokens, cat, training_hours=training_hours,
                                         validation_tokens=validation_tokens, model_size=model_size, method=method,
                                         digits=digits), entry, as_of, cat)


def training_costs(tokens: int, *, setup_hours: float = 0.0, training_hours: float | None = None,
                   validation_tokens: int = 0, model_size: str = "8B", method: str = "qlora", digits: int = 2,
                   as_of: str | _dt.date | None = None, catalog: Catalog | None = None) -> list[CostRow]:
    """One row per fine-tunable catalog entry (models, then self-hosted GPUs) for ``tokens`` training tokens.

    The arguments mean what they mean in :func:`cost_for`. Entries without a known price get
    ``training_cost_usd = None`` and a "check current docs" rate; the RFT entry (o4-mini) gets ``None``
    unless ``training_hours`` is given. Every row carries its availability on ``as_of`` (default today):
    closed and retired rows stay in the list, marked, rather than hidden.
    """
    cat = _cat(catalog)
    _check_run(tokens, setup_hours, training_hours, validation_tokens, digits)
    kw = {"model_size": model_size, "method": method, "digits": digits, "training_hours": training_hours}
    day = parse_date(as_of)
    rows = [_with_availability(_model_row(m, tokens, cat, validation_tokens=validation_tokens, **kw), m, day, cat)
            for m in cat.models if m["fine_tunable"]]
    rows += [_with_availability(_gpu_row(g, tokens, cat, setup_hours, **kw), g, day, cat) for g in cat.gpus]
    return rows


def managed_premium(catalog: Catalog | None = None) -> dict[str, Any]:
    """The articles' caveat that managed fine-tuning costs more than self-managed GPU training, stored once.

    Returns the catalog's ``managed_premium``: ``text``, ``ratio`` (``[2.0, 3.0]``), ``reference_gpu``
    (the self-managed run it compares against, ``a100-40gb-spot``), ``source`` and ``as_of``.
    """
    cat = _cat(catalog)
    premium = cat.data.get("managed_premium")
    if premium is None:
        raise FtlabError(f"the price catalog {cat.path} has no 'managed_premium' section")
    return premium


def managed_premium_range(self_managed_usd: float, catalog: Catalog | None = None) -> tuple[float, float]:
    """What the caveat predicts a managed run costs: ``self_managed_usd`` × the ratio.

    Example: the articles' $3.00 A100 spot run → ``(6.0, 9.0)``.
    """
    lo, hi = managed_premium(catalog)["ratio"]
    return round(self_managed_usd * lo, 4), round(self_managed_usd * hi, 4)


def cost_summary(tokens: int, rows: Sequence[CostRow], as_of: str | _dt.date | None = None) -> dict[str, Any]:
    """The JSON that ``ftlab cost --json`` prints: ``{"training_tokens": …, "as_of": …, "rows": [...]}``; each row
    has ``availability_status`` (open | closing | closed | retired) and ``availability_date``."""
    return {"training_tokens": tokens, "as_of": parse_date(as_of).isoformat(), "rows": [r.to_json() for r in rows]}


