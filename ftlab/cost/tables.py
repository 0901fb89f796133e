"""The cost rows and the catalog as text and HTML tables (notebook 02, ``ftlab cost``)."""

from __future__ import annotations

import datetime as _dt
from collections.abc import Sequence
from html import escape
from typing import Any

from ftlab.cost.catalog import PATH_LABELS, Catalog, _cat
from ftlab.cost.dates import availability, parse_date
from ftlab.cost.training import CostRow, _money
from ftlab.show import Html, Table, table

__all__ = ["availability_cell", "catalog_html", "catalog_table", "cost_cell", "cost_table_html", "format_cost_table",
           "seed_vs_provider", "seed_vs_provider_html", "seed_vs_provider_table", "self_hosted_table",
           "training_costs_table"]


def availability_cell(row: CostRow) -> str:
    """How a row's availability reads in a table: ``open``, ``closing 2027-01-06``, ``CLOSED since 2027-01-06``."""
    if row.availability_status == "open":
        return "open"
    if row.availability_status == "closing":
        return f"closing {row.availability_date}"
    return f"{row.availability_status.upper()} since {row.availability_date}"


def cost_cell(row: CostRow) -> str:
    """How a row's cost reads in a table: ``$13.50``, or why there is no figure."""
    if row.training_cost_usd is not None:
        return f"${row.training_cost_usd:,.2f}"
    return "give training hours" if row.pricing == "per_wall_clock_hour" and "give the hours" in row.rate else "check current docs"


_FOOTNOTES = (
    "Prices change: verify at each provider's pricing page (sources: ftlab/catalog/prices.yaml).",
    "confidence: seed = the course articles' figure; provider = read on the provider's page; "
    "unconfirmed = not confirmed on the provider's page: check the source before you budget.",
    "Per-hour rows bill hours estimated from the throughput table (training_hours, or --training-hours, sets them); "
    "RFT is billed per hour of its training loop, which tokens cannot predict.",
    "availability: open; closing DATE = no new jobs from DATE (closed already for some organisations); "
    "CLOSED/RETIRED rows are kept, marked, at their last price: you cannot start a job there.",
)


def format_cost_table(tokens: int, rows: Sequence[CostRow], as_of: str | _dt.date | None = None) -> str:
    """A plain-text table of the rows (what ``ftlab cost`` prints without ``--json``); unavailable rows are marked."""
    head = ("path", "model", "training cost", "rate", "confidence", "availability")
    body = [(PATH_LABELS.get(r.path, r.path), f"{r.model} [{r.entry}]", cost_cell(r), r.rate, r.confidence,
             availability_cell(r)) for r in rows]
    widths = [max(len(x[i]) for x in [head, *body]) for i in range(len(head))]
    line = "  ".join(f"{{:<{w}}}" for w in widths)
    out = [f"training tokens: {tokens:,}; availability as of {parse_date(as_of).isoformat()}",
           line.format(*head).rstrip(), line.format(*("-" * w for w in widths))]
    out += [line.format(*b).rstrip() for b in body]
    out += _FOOTNOTES
    return "\n".join(out)


def training_costs_table(tokens: int, rows: Sequence[CostRow], *, highlight: str | None = None) -> Table:
    """The rows as a table (notebook 02 displays it): unavailable rows greyed and struck through, the
    ``highlight`` entry in bold, the footnotes below."""
    cells, attrs = [], []
    for r in rows:
        cost = escape(cost_cell(r)) if r.training_cost_usd is not None else f"<i>{escape(cost_cell(r))}</i>"
        style = ' style="font-weight:bold;background:#eef6ff"' if highlight and r.entry == highlight else ""
        conf = escape(r.confidence) if r.confidence != "unconfirmed" else f"<b>{escape(r.confidence)}</b>"
        av = escape(availability_cell(r))
        if not r.available:
            style = ' class="ftlab-unavailable" style="color:#888;background:#f4f4f4"'
            cost, av = f"<s>{cost}</s>", f"<b style='color:#b00'>{av}</b>"
        elif r.availability_status == "closing":
            av = f"<b style='color:#9a5b00'>{av}</b>"
        attrs.append(f"{style} title='{escape(r.availability_note, quote=True)}'")
        cells.append([PATH_LABELS.get(r.path, r.path), r.model, Html(f"<code>{escape(r.entry)}</code>"), Html(cost),
                      r.rate, r.as_of, Html(conf), Html(av)])
    return table(cells, ["path", "model", "entry", "training cost", "rate", "as of", "confidence", "availability"],
                 caption=Html(f"<b>Training tokens:</b> {tokens:,}"), note=Html("<br>".join(escape(f) for f in _FOOTNOTES)),
                 row_attrs=attrs, right=["training cost"])


def cost_table_html(tokens: int, rows: Sequence[CostRow], *, highlight: str | None = None) -> str:
    """:func:`training_costs_table` as HTML (the widget shows this)."""
    inner = training_costs_table(tokens, rows, highlight=highlight).to_html()
    return f"<div class='ftlab-cost-table-inner'>{inner}</div>"


def catalog_table(catalog: Catalog | None = None, as_of: str | _dt.date | None = None) -> Table:
    """Every catalog entry with its prices, source, as_of and availability on ``as_of``."""
    cat = _cat(catalog)

    def usd(v: Any) -> str:
        return f"${v:,.2f}" if isinstance(v, int | float) else "—"

    rows = []
    for m in cat.models:
        if m["pricing"] == "per_training_token":
            train = f"{usd(m.get('training_usd_per_1m'))}/M tokens"
        elif m["pricing"] == "per_training_hour":
            train = f"{usd(m.get('training_usd_per_hour'))}/training hour"
        else:
            train = f"{usd(m.get('training_usd_per_hour'))}/hour of RFT loop"
        if not m["fine_tunable"]:
            earlier = m.get("earlier_claim") or {}
            train = "<b>not fine-tunable</b>" + (
                f" (earlier: {usd(earlier.get('training_usd_per_1m'))}/M per {escape(earlier.get('source', ''))})"
                if earlier else "")
        rows.append([Html(f"<code>{escape(m['id'])}</code>"), cat.providers[m["provider"]]["name"], Html(train),
                     f"{usd(m.get('inference_in_usd_per_1m'))} / {usd(m.get('inference_out_usd_per_1m'))}",
                     m["as_of"], m["confidence"], availability(m, as_of, catalog=cat).label,
                     Html(f"<small>{escape(m['source'])}</small>")])
    for g in cat.gpus:
        rows.append([Html(f"<code>{escape(g['id'])}</code>"), "self-hosted GPU", f"{usd(g['usd_per_hour'])}/GPU-hour",
                     "your hardware", g["as_of"], g["confidence"], availability(g, as_of, catalog=cat).label,
                     Html(f"<small>{escape(g['source'])}</small>")])
    return table(rows, ["entry", "provider", "training", "inference in / out per M", "as of", "confidence",
                        "availability", "source"], css_class="ftlab-catalog")


def catalog_html(catalog: Catalog | None = None, as_of: str | _dt.date | None = None) -> str:
    """:func:`catalog_table` as HTML."""
    return catalog_table(catalog, as_of).to_html()


def self_hosted_table(rows: Sequence[CostRow], with_setup: Sequence[CostRow], setup_hours: float,
                      catalog: Catalog | None = None) -> Table:
    """The self-hosted GPU rows: training hours, cost without and with ``setup_hours`` of setup (notebook 02),
    and the article's setup caveat from the catalog below."""
    caveat = _cat(catalog).data["setup_caveat"]
    gpus = [r for r in rows if r.path == "hf_qlora"]
    setup = {r.entry: r for r in with_setup if r.path == "hf_qlora"}
    return table([(r.model, f"{r.gpu_hours:.2f}", cost_cell(r), cost_cell(setup[r.entry]), r.note) for r in gpus],
                 ["GPU", "training hours", "training only", f"+ {setup_hours:g} h setup", "throughput"],
                 right=["training hours", "training only", f"+ {setup_hours:g} h setup"], note=f"{caveat['text']} ({caveat['source']})")


def seed_vs_provider(tokens: int, *, as_of: str | _dt.date | None = None,
                     catalog: Catalog | None = None) -> list[dict[str, Any]]:
    """The article's training price next to the provider's, for every entry that has both (``provider_price``).

    Article 001 prints gpt-4.1 at $3.00/M and gpt-4.1-mini at $0.80/M *training*; those equal the
    fine-tuned models' *inference-input* prices, and OpenAI's own fine-tuning table lists training
    much higher. Each row: ``entry``, ``seed_usd_per_1m``, ``seed_cost_usd``, ``provider_usd_per_1m``,
    ``provider_cost_usd``, ``ratio`` (provider ÷ seed), ``inference_in_usd_per_1m`` (what the article's
    figure equals), the provider price's ``source``/``as_of``/``confidence``, and ``availability``.

    Example: ``seed_vs_provider(4_500_000)[0]`` → gpt-4.1: seed $13.50, provider $112.50 (×8.3).
    """
    cat = _cat(catalog)
    out = []
    for m in cat.models:
        pp = m.get("provider_price")
        if not pp or m.get("training_usd_per_1m") is None or pp.get("training_usd_per_1m") is None:
            continue
        seed, prov = m["training_usd_per_1m"], pp["training_usd_per_1m"]
        av = availability(m, as_of, catalog=cat)
        out.append({"entry": m["id"], "seed_usd_per_1m": seed, "seed_cost_usd": _money(tokens * seed / 1e6),
                    "seed_source": m["source"], "provider_usd_per_1m": prov,
                    "provider_cost_usd": _money(tokens * prov / 1e6), "ratio": round(prov / seed, 2) if seed else None,
                    "inference_in_usd_per_1m": pp.get("inference_in_usd_per_1m"), "source": pp["source"],
                    "as_of": pp["as_of"], "confidence": pp["confidence"], "availability": av.label})
    return out


def seed_vs_provider_table(rows: Sequence[dict[str, Any]], tokens: int) -> Table:
    """The side-by-side table notebook 02 shows (figures from :func:`seed_vs_provider`)."""
    return table([(Html(f"<code>{escape(r['entry'])}</code>"), f"${r['seed_usd_per_1m']:.2f}/M → ${r['seed_cost_usd']:,.2f}",
                   f"${r['provider_usd_per_1m']:.2f}/M → ${r['provider_cost_usd']:,.2f}", f"×{r['ratio']:g}",
                   f"${r['inference_in_usd_per_1m']:.2f}/M", f"{r['confidence']}, {r['as_of']}", r["availability"])
                  for r in rows],
                 ["model", f"article 001 ({tokens:,} tokens)", "OpenAI's list price", "ratio", "fine-tuned inference input",
                  "list price: confidence, as of", "availability"], css_class="ftlab-seed-vs-provider")


def seed_vs_provider_html(rows: Sequence[dict[str, Any]], tokens: int) -> str:
    """:func:`seed_vs_provider_table` as HTML."""
    return seed_vs_provider_table(rows, tokens).to_html()
