"""Availability: can a fine-tuning job be started on a catalog entry, on a given date?"""

from __future__ import annotations

import datetime as _dt
from dataclasses import asdict, dataclass
from typing import Any

from ftlab.cost.catalog import ORG_STATUS_LABELS, ORG_STATUSES, Catalog, _cat, _date
from ftlab.errors import ParameterError
from ftlab.params import check_param

__all__ = ["Availability", "availability", "parse_date", "wind_down"]


def parse_date(value: str | _dt.date | None, param: str = "as_of") -> _dt.date:
    """``value`` as a date: a ``date``, an ISO ``YYYY-MM-DD`` string, or None for today (UTC).

    Example: ``parse_date("2026-12-02") == date(2026, 12, 2)``; ``parse_date("12/02/2026")`` raises a
    one-line ``ParameterError`` naming ``param``.
    """
    if value is None or value == "":
        return _dt.datetime.now(_dt.UTC).date()
    if isinstance(value, _dt.datetime):
        return value.date()
    if isinstance(value, _dt.date):
        return value
    try:
        return _dt.date.fromisoformat(str(value).strip())
    except ValueError:
        raise ParameterError(f"{param} {value!r} is not a date: give it as YYYY-MM-DD, e.g. 2026-12-02") from None


@dataclass(frozen=True)
class Availability:
    """Whether a fine-tuning job can be started on a catalog entry on ``as_of``.

    ``status`` is open | closing | closed | retired; ``date`` the date that applies (closing: the day
    it closes; closed: the day it closed; retired: the base model's shutdown; open: None);
    ``reason`` says why, with the dates; ``source``, ``source_as_of`` and ``confidence`` cite it.
    """

    entry: str
    status: str
    date: str | None
    reason: str
    as_of: str
    org_status: str | None = None
    retires_on: str | None = None
    alternative: str | None = None
    source: str = ""
    source_as_of: str = ""
    confidence: str = ""

    @property
    def available(self) -> bool:
        """True when a job can still be started (open, or closing but not yet closed)."""
        return self.status in ("open", "closing")

    @property
    def label(self) -> str:
        """How the status reads in a table: ``open``, ``closing 2027-01-06``, ``CLOSED since 2027-01-06``."""
        if self.status == "open":
            return "open"
        if self.status == "closing":
            return f"closing {self.date}"
        return f"{self.status.upper()} since {self.date}"

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def wind_down(name: str = "openai_self_serve", catalog: Catalog | None = None) -> dict[str, Any]:
    """A staged wind-down from the catalog's ``wind_downs`` (stages with dates, source, confidence).

    Example: ``[s["date"] for s in wind_down()["stages"]] == ["2026-05-07", "2026-07-02", "2027-01-06"]``.
    """
    cat = _cat(catalog)
    wd = cat.data.get("wind_downs", {}).get(name)
    if wd is None:
        raise ParameterError(f"no wind-down {name!r} in the price catalog; known: {', '.join(cat.data.get('wind_downs', {}))}")
    return wd


def availability(entry: str | dict[str, Any], as_of: str | _dt.date | None = None, *, org_status: str | None = None,
                 catalog: Catalog | None = None) -> Availability:
    """The status of ``entry`` (a catalog id or entry) on ``as_of`` (default today), for an organisation
    in ``org_status`` (new | inactive | active; None: no particular organisation).

    Example (OpenAI's self-serve wind-down, stages 2026-05-07, 2026-07-02, 2027-01-06)::

        >>> availability("gpt-4.1-mini", "2026-12-02").status
        'closing'
        >>> availability("gpt-4.1-mini", "2026-12-02", org_status="new").status   # closed for them since 2026-05-07
        'closed'
        >>> availability("gpt-4.1-mini", "2027-02-01").status, availability("gpt-4.1-nano", "2026-12-02").status
        ('closed', 'retired')
    """
    cat = _cat(catalog)
    day = parse_date(as_of)
    if org_status is not None:
        check_param("org_status", org_status, str, choices=list(ORG_STATUSES))
    if isinstance(entry, str):
        found = next((g for g in cat.gpus if g["id"] == entry), None) or cat.entry(entry, fine_tune=False)
    else:
        found = entry
    av = found.get("availability") or {}
    base = {"entry": found["id"], "as_of": day.isoformat(), "org_status": org_status,
            "retires_on": av.get("retires_on"), "alternative": av.get("alternative"),
            "source": av.get("source", ""), "source_as_of": str(av.get("as_of", "")),
            "confidence": av.get("confidence", "unconfirmed")}
    if not av:
        return Availability(status="open", date=None, reason="no availability known to ftlab: check the provider",
                            **{**base, "confidence": "unconfirmed"})
    retires = _date(av.get("retires_on"))
    closure, closed_for_org, stage_text, wd = None, None, "", None
    if av.get("wind_down"):
        wd = wind_down(av["wind_down"], cat)
        stages = sorted(wd["stages"], key=lambda s: s["date"])
        closure = _date(stages[-1]["date"])
        first = _date(stages[0]["date"])
        if org_status is not None:
            hit = next((s for s in stages if org_status in s["org_status"]), stages[-1])
            closed_for_org, stage_text = _date(hit["date"]), hit["text"]
    elif av.get("status") in ("closed", "retired"):
        since = av.get("since") or av.get("as_of")
        return Availability(status=av["status"], date=str(since), reason=av.get("note") or f"{av['status']} ({av['source']})",
                            **base)
    # Which ending comes first decides the word: a route closed before the base model retired stays "closed".
    if retires is not None and day >= retires and (closure is None or retires < closure):
        return Availability(status="retired", date=retires.isoformat(),
                            reason=f"the base model was shut down on {retires.isoformat()}: no new jobs, and its "
                                   "fine-tuned models stopped serving with it", **base)
    if closure is not None and wd is not None:
        name = wd["name"]
        if day >= closure:
            tail = f"; the base model retires on {retires.isoformat()}" if retires and retires > closure else ""
            return Availability(status="closed", date=closure.isoformat(),
                                reason=f"{name} closed to everyone on {closure.isoformat()}{tail}", **base)
        if closed_for_org is not None and day >= closed_for_org:
            who = ORG_STATUS_LABELS[org_status]
            return Availability(status="closed", date=closed_for_org.isoformat(),
                                reason=f"{name}: since {closed_for_org.isoformat()} {stage_text} (your organisation: {who}); "
                                       f"for everyone on {closure.isoformat()}", **base)
        if day >= first:
            return Availability(status="closing", date=closure.isoformat(),
                                reason=f"{name} is winding down (announced {wd['announced']}): new jobs end for everyone "
                                       f"on {closure.isoformat()}; earlier stages: "
                                       + "; ".join(f"{s['date']}: {s['text']}" for s in stages[:-1]), **base)
        return Availability(status="open", date=None, reason=f"open; {name} starts winding down on {first.isoformat()}", **base)
    return Availability(status="open", date=None, reason=av.get("note") or f"open as of {av.get('as_of')}", **base)


