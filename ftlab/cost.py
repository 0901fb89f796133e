"""What fine-tuning costs: the price catalog, training cost per path, and the inference break-even.

Taught in ``notebooks/02_cost_math.ipynb``; ``ftlab cost`` prints the same table, and
``ftlab.cloud.cost_table`` (notebook 09) is a view of the same rows.

The prices live in one file, ``ftlab/catalog/prices.yaml`` (data, not code), each entry with its
``source``, ``as_of`` date and ``confidence`` (seed, provider or unconfirmed). This module owns
loading it and all the arithmetic, for every pricing kind: per training token (OpenAI, Together,
Bedrock, Gemini on Vertex), per GPU-hour (self-hosted), per training hour (open models on Vertex and
Foundry) and per hour of the RFT training loop (o4-mini). The worked example of the seeds::

    >>> tokens = training_tokens(5_000, 300, 3)          # 4,500,000
    >>> cost_for("gpt-4.1", tokens).training_cost_usd     # $3.00/M × 4.5M
    13.5
    >>> cost_for("a100-40gb-spot", tokens).training_cost_usd   # 2 GPU-hours × $1.50
    3.0
    >>> cost_for("foundry-managed-a100-80gb", tokens).training_cost_usd   # ~2 h (A100 throughput) × $3.67
    7.34

Prices move: verify at the provider's pricing page before you spend.
"""

from __future__ import annotations

import datetime as _dt
import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from functools import lru_cache
from html import escape
from pathlib import Path
from typing import Any

from ftlab.errors import FtlabError, ParameterError
from ftlab.params import check_param

PATH_LABELS = {"openai": "OpenAI API", "hf_qlora": "Hugging Face + QLoRA", "cloud_managed": "Cloud-managed"}
PRICING_KINDS = ("per_training_token", "per_gpu_hour", "per_training_hour", "per_wall_clock_hour")
CONFIDENCE = ("seed", "provider", "unconfirmed", "reported")
HOURS_PER_MONTH = 730  # 24 × 365 / 12
DEFAULT_CATALOG = Path(__file__).resolve().parent / "catalog" / "prices.yaml"
_ENTRY_KEYS = ("id", "provider", "model", "fine_tunable", "pricing", "source", "as_of", "confidence")
_METHODS = {"qlora": "QLoRA", "lora": "LoRA", "full": "full fine-tuning"}
_GPU_KEYS = ("id", "hardware", "name", "usd_per_hour", "source", "as_of", "confidence")


# ---------------------------------------------------------------------------------------
# The catalog
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Catalog:
    """The price catalog as loaded from YAML. ``entry``/``gpu`` look things up with clear errors."""

    data: dict[str, Any]
    path: str

    @property
    def providers(self) -> dict[str, dict[str, Any]]:
        return self.data["providers"]

    @property
    def models(self) -> list[dict[str, Any]]:
        return self.data["models"]

    @property
    def gpus(self) -> list[dict[str, Any]]:
        return self.data.get("gpus", [])

    @property
    def throughput(self) -> list[dict[str, Any]]:
        return self.data.get("throughput", [])

    @property
    def serving(self) -> list[dict[str, Any]]:
        return self.data.get("serving", [])

    def fine_tunable(self, provider: str | None = None) -> list[str]:
        """Ids of the models that can be fine-tuned (optionally of one provider), in catalog order."""
        return [m["id"] for m in self.models if m["fine_tunable"] and (provider is None or m["provider"] == provider)]

    def entry(self, model: str, *, fine_tune: bool = True) -> dict[str, Any]:
        """The catalog entry of ``model``. Unknown or (with ``fine_tune``) non-fine-tunable models raise
        a one-line ``ParameterError`` naming the valid choices."""
        by_id = {m["id"]: m for m in self.models}
        found = by_id.get(model) or by_id.get(model.lower())
        if found is None:
            from ftlab.tokens import base_model

            base = base_model(model)
            found = next((m for m in self.models if base in (m["id"], m.get("snapshot"))), None)
        if found is None:
            raise ParameterError(
                f"unknown model {model!r}: not in the price catalog{_where(self.path)}; fine-tunable choices: "
                f"{', '.join(self.fine_tunable())}"
            )
        if fine_tune and not found["fine_tunable"]:
            same = self.fine_tunable(found["provider"])
            raise ParameterError(
                f"{found['id']} cannot be fine-tuned (inference-only as of {found['as_of']}, per {_short(found['source'])}); "
                f"fine-tunable {self.providers[found['provider']]['name']} models: {', '.join(same)}"
            )
        return found

    def gpu(self, gpu: str) -> dict[str, Any]:
        """A self-hosted GPU rate entry, e.g. ``a100-40gb-spot``."""
        for g in self.gpus:
            if g["id"] == gpu:
                return g
        raise ParameterError(f"unknown GPU {gpu!r}; valid choices: {', '.join(g['id'] for g in self.gpus)}")

    def throughput_for(self, hardware: str, model_size: str = "8B", method: str = "qlora") -> dict[str, Any]:
        """The training-throughput row for a GPU, model size and method."""
        for t in self.throughput:
            if (t["hardware"], t["model_size"], t["method"]) == (hardware, model_size, method):
                return t
        have = ", ".join(f"{t['hardware']}/{t['model_size']}/{t['method']}" for t in self.throughput)
        raise ParameterError(f"no training throughput for {hardware}/{model_size}/{method} in the catalog; known: {have}")

    def serving_for(self, hardware: str, model_size: str = "8B") -> dict[str, Any]:
        """The serving-throughput row used by the break-even."""
        for s in self.serving:
            if (s["hardware"], s["model_size"]) == (hardware, model_size):
                return s
        gpus = [g["id"] for g in self.gpus if any(s["hardware"] == g["hardware"] for s in self.serving)]
        raise ParameterError(f"no serving throughput for {hardware}/{model_size} in the catalog; GPUs with one: {', '.join(gpus)}")


def _where(path: str) -> str:
    return "" if Path(path) == DEFAULT_CATALOG else f" {path}"


def _short(source: str) -> str:
    return source.split(":")[0] if source.startswith("seed") else source.split(" ")[0]


def _validate(data: Any, where: str) -> dict[str, Any]:
    if not isinstance(data, dict) or "models" not in data or "providers" not in data:
        raise FtlabError(f"{where}: a price catalog needs top-level 'providers' and 'models'")
    hardware = {t.get("hardware") for t in data.get("throughput", [])}
    ids = set()
    for i, m in enumerate(data["models"]):
        missing = [k for k in _ENTRY_KEYS if k not in m]
        if missing:
            raise FtlabError(f"{where}: models[{i}] ({m.get('id', '?')}) lacks {', '.join(missing)}")
        if m["provider"] not in data["providers"]:
            raise FtlabError(f"{where}: model {m['id']} names unknown provider {m['provider']!r}")
        if m["pricing"] not in PRICING_KINDS:
            raise FtlabError(f"{where}: model {m['id']} has pricing {m['pricing']!r}; expected one of {', '.join(PRICING_KINDS)}")
        if m["id"] in ids:
            raise FtlabError(f"{where}: model id {m['id']} appears twice")
        ids.add(m["id"])
        for key in ("training_usd_per_1m", "training_usd_per_hour", "inference_in_usd_per_1m", "inference_out_usd_per_1m"):
            v = m.get(key)
            if v is not None and (not isinstance(v, int | float) or v < 0):
                raise FtlabError(f"{where}: model {m['id']} has {key} = {v!r}; expected a non-negative number or null")
        if (m["pricing"] == "per_training_hour" and m.get("training_usd_per_hour") is not None
                and m.get("throughput_hardware") not in hardware):
            raise FtlabError(f"{where}: model {m['id']} is priced per training hour but its throughput_hardware "
                             f"{m.get('throughput_hardware')!r} has no row in 'throughput' (known: {', '.join(sorted(hardware))})")
    for i, g in enumerate(data.get("gpus", [])):
        missing = [k for k in _GPU_KEYS if k not in g]
        if missing:
            raise FtlabError(f"{where}: gpus[{i}] ({g.get('id', '?')}) lacks {', '.join(missing)}")
    wind_downs = data.get("wind_downs", {})
    for name, wd in wind_downs.items():
        if not wd.get("stages") or not wd.get("source") or not wd.get("as_of"):
            raise FtlabError(f"{where}: wind_downs.{name} needs stages, source and as_of")
        for s in wd["stages"]:
            if _date(s.get("date")) is None or not set(s.get("org_status") or []) <= set(ORG_STATUSES):
                raise FtlabError(f"{where}: wind_downs.{name} has a stage {s!r}: expected a YYYY-MM-DD date and "
                                 f"org_status among {', '.join(ORG_STATUSES)}")
    for item in data["models"] + data.get("gpus", []):
        av = item.get("availability")
        if not isinstance(av, dict) or not av.get("source") or not av.get("as_of"):
            raise FtlabError(f"{where}: {item.get('id', '?')} lacks an availability block with source and as_of "
                             "(mark it confidence: unconfirmed if nothing can be cited)")
        if av.get("wind_down") is not None and av["wind_down"] not in wind_downs:
            raise FtlabError(f"{where}: {item['id']} follows unknown wind_down {av['wind_down']!r}; known: {', '.join(wind_downs)}")
        if av.get("status") is not None and av["status"] not in AVAILABILITY_STATUSES:
            raise FtlabError(f"{where}: {item['id']} has availability status {av['status']!r}; expected one of "
                             f"{', '.join(AVAILABILITY_STATUSES)}")
        if av.get("retires_on") is not None and _date(av["retires_on"]) is None:
            raise FtlabError(f"{where}: {item['id']} has retires_on {av['retires_on']!r}; expected YYYY-MM-DD")
        if av.get("confidence", "unconfirmed") not in CONFIDENCE:
            raise FtlabError(f"{where}: {item['id']} has availability confidence {av['confidence']!r}; expected one of "
                             f"{', '.join(CONFIDENCE)}")
    for item in data["models"] + data.get("gpus", []):
        if item["confidence"] not in CONFIDENCE:
            raise FtlabError(f"{where}: {item['id']} has confidence {item['confidence']!r}; expected one of {', '.join(CONFIDENCE)}")
    for t in data.get("throughput", []) + data.get("serving", []):
        if "source" not in t or "as_of" not in t:
            raise FtlabError(f"{where}: throughput/serving row {t.get('hardware', '?')} lacks source or as_of")
    premium = data.get("managed_premium")
    if premium is not None:
        ratio = premium.get("ratio")
        if not (isinstance(ratio, list) and len(ratio) == 2 and all(isinstance(r, int | float) for r in ratio)
                and 0 < ratio[0] <= ratio[1]):
            raise FtlabError(f"{where}: managed_premium.ratio = {ratio!r}; expected [low, high], e.g. [2.0, 3.0]")
        if not premium.get("source") or not premium.get("text"):
            raise FtlabError(f"{where}: managed_premium needs 'text' and 'source'")
        gpu_ids = [g["id"] for g in data.get("gpus", [])]
        if premium.get("reference_gpu") not in gpu_ids:
            raise FtlabError(f"{where}: managed_premium.reference_gpu {premium.get('reference_gpu')!r} is not a GPU id; "
                             f"valid choices: {', '.join(gpu_ids)}")
    return data


@lru_cache(maxsize=8)
def _load(path: str, mtime: float) -> Catalog:
    import yaml

    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise FtlabError(f"cannot read the price catalog {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" line {mark.line + 1}" if mark else ""
        raise FtlabError(f"{path}{line}: not valid YAML ({getattr(exc, 'problem', exc)})") from None
    return Catalog(_validate(data, path), path)


def load_catalog(path: str | os.PathLike[str] | None = None) -> Catalog:
    """The price catalog: ``path``, else ``$FTLAB_PRICES``, else the one shipped in ``ftlab/catalog``.

    Example: ``load_catalog().entry("gpt-4.1")["training_usd_per_1m"] == 3.0``.
    """
    p = Path(path or os.environ.get("FTLAB_PRICES") or DEFAULT_CATALOG)
    if not p.is_file():
        raise FtlabError(f"price catalog {str(p)!r} does not exist; give a YAML file like {DEFAULT_CATALOG}")
    return _load(str(p), p.stat().st_mtime)


def _cat(catalog: Catalog | None) -> Catalog:
    return catalog or load_catalog()


# ---------------------------------------------------------------------------------------
# Availability: can a fine-tuning job be started on an entry, on a given date?
# ---------------------------------------------------------------------------------------
AVAILABILITY_STATUSES = ("open", "closing", "closed", "retired")
ORG_STATUSES = ("new", "inactive", "active")
ORG_STATUS_LABELS = {"new": "never fine-tuned", "inactive": "fine-tuned before, no fine-tuned-model inference in 60 days",
                     "active": "fine-tunes and serves fine-tuned models"}


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


def _date(text: Any) -> _dt.date | None:
    if text is None:
        return None
    try:
        return _dt.date.fromisoformat(str(text)[:10])
    except ValueError:
        return None


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


# ---------------------------------------------------------------------------------------
# Training cost
# ---------------------------------------------------------------------------------------
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

    Example: ``hours_for(4_500_000, "a100-40gb") == 2.0`` (625 tokens/s, the seeds' 1–2 h, upper end).
    """
    tp = _cat(catalog).throughput_for(hardware, model_size, method)
    return tokens / tp["tokens_per_s"] / 3600


def gpu_hours(tokens: int, gpu: str, *, model_size: str = "8B", method: str = "qlora",
              catalog: Catalog | None = None) -> float:
    """GPU-hours to train ``tokens`` on ``gpu`` = tokens ÷ throughput (tokens/s) ÷ 3600.

    Example: ``gpu_hours(4_500_000, "a100-40gb-spot") == 2.0`` (the seeds' 1–2 h, upper end).
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
    """The seeds' caveat that managed fine-tuning costs more than self-managed GPU training, stored once.

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

    Example: the seeds' $3.00 A100 spot run → ``(6.0, 9.0)``.
    """
    lo, hi = managed_premium(catalog)["ratio"]
    return round(self_managed_usd * lo, 4), round(self_managed_usd * hi, 4)


def cost_summary(tokens: int, rows: Sequence[CostRow], as_of: str | _dt.date | None = None) -> dict[str, Any]:
    """The JSON that ``ftlab cost --json`` prints: ``{"training_tokens": …, "as_of": …, "rows": [...]}``; each row
    has ``availability_status`` (open | closing | closed | retired) and ``availability_date``."""
    return {"training_tokens": tokens, "as_of": parse_date(as_of).isoformat(), "rows": [r.to_json() for r in rows]}


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
    "confidence: seed = the course seeds' figure; provider = read on the provider's page; "
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


def cost_table_html(tokens: int, rows: Sequence[CostRow], *, highlight: str | None = None) -> str:
    """The rows as an HTML table (the notebook and the widget show this)."""
    cells = []
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
        cells.append(
            f"<tr{style} title='{escape(r.availability_note, quote=True)}'><td>{escape(PATH_LABELS.get(r.path, r.path))}</td>"
            f"<td>{escape(r.model)}</td><td><code>{escape(r.entry)}</code></td><td style='text-align:right'>{cost}</td>"
            f"<td>{escape(r.rate)}</td><td>{escape(r.as_of)}</td><td>{conf}</td><td>{av}</td></tr>"
        )
    return (
        f"<div class='ftlab-cost-table-inner'><p><b>Training tokens:</b> {tokens:,}</p>"
        "<table><thead><tr><th>path</th><th>model</th><th>entry</th><th>training cost</th><th>rate</th><th>as of</th>"
        f"<th>confidence</th><th>availability</th></tr></thead><tbody>{''.join(cells)}</tbody></table>"
        f"<p><small>{'<br>'.join(escape(f) for f in _FOOTNOTES)}</small></p></div>"
    )


# ---------------------------------------------------------------------------------------
# Exact token counts of a real dataset
# ---------------------------------------------------------------------------------------
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


# ---------------------------------------------------------------------------------------
# Inference break-even: when does a self-hosted GPU beat the API?
# ---------------------------------------------------------------------------------------
def api_cost_per_request(model: str, in_tokens: int, out_tokens: int, *, data_sharing: bool = False,
                         catalog: Catalog | None = None) -> float:
    """USD per request on a fine-tuned API model, with OpenAI's data-sharing discount if asked.

    Example: gpt-4.1-mini, 500 in / 200 out = (500 × 0.80 + 200 × 3.20) / 1e6 = $0.00104 (half with data sharing).
    """
    cat = _cat(catalog)
    m = cat.entry(model)
    p_in, p_out = m.get("inference_in_usd_per_1m"), m.get("inference_out_usd_per_1m")
    if p_in is None or p_out is None:
        priced = [x["id"] for x in cat.models if x["fine_tunable"] and x.get("inference_in_usd_per_1m") is not None]
        raise ParameterError(f"{m['id']} has no inference price in the catalog; models with one: {', '.join(priced)}")
    check_param("in_tokens", in_tokens, int, min=0)
    check_param("out_tokens", out_tokens, int, min=0)
    cost = (in_tokens * p_in + out_tokens * p_out) / 1_000_000
    if data_sharing:
        discount = cat.providers[m["provider"]].get("data_sharing_inference_discount")
        if discount is None:
            raise ParameterError(f"data_sharing applies to OpenAI models only; {m['id']} is on {m['provider']}")
        cost *= 1 - discount
    return cost


@dataclass
class BreakEven:
    """The monthly request volume above which one self-hosted GPU is cheaper than the API (None: never)."""

    model: str
    gpu: str
    data_sharing: bool
    api_usd_per_request: float
    gpu_usd_per_month: float
    capacity_requests_per_month: float
    requests_per_month: float | None

    def explain(self) -> str:
        if self.requests_per_month is None:
            return (f"Self-hosting on {self.gpu} never beats {self.model}"
                    f"{' with data sharing' if self.data_sharing else ''}: one GPU (${self.gpu_usd_per_month:,.0f}/month) "
                    f"serves at most {self.capacity_requests_per_month:,.0f} requests/month, which cost only "
                    f"${self.api_usd_per_request * self.capacity_requests_per_month:,.0f} on the API.")
        return (f"From {self.requests_per_month:,.0f} requests/month, one {self.gpu} (${self.gpu_usd_per_month:,.0f}/month) "
                f"beats {self.model}{' with data sharing' if self.data_sharing else ''} at "
                f"${self.api_usd_per_request * 1000:.2f} per 1,000 requests. Past one GPU's capacity "
                f"({self.capacity_requests_per_month:,.0f}/month) each added GPU pays off again once it is busy enough.")


def _self_hosted(gpu: str, out_tokens: int, utilization: float, cat: Catalog, model_size: str) -> tuple[float, float]:
    rate = cat.gpu(gpu)
    serve = cat.serving_for(rate["hardware"], model_size)
    monthly = rate["usd_per_hour"] * HOURS_PER_MONTH
    capacity = serve["output_tokens_per_s"] / max(out_tokens, 1) * 3600 * HOURS_PER_MONTH * utilization
    return monthly, capacity


def break_even(model: str = "gpt-4.1-mini", gpu: str = "a100-40gb-on-demand", *, in_tokens: int = 500,
               out_tokens: int = 200, data_sharing: bool = False, utilization: float = 0.6,
               model_size: str = "8B", catalog: Catalog | None = None) -> BreakEven:
    """Where self-hosting starts to pay: monthly requests × API price per request = GPU cost per month.

    Self-hosted cost is one always-on GPU (``usd_per_hour`` × 730 h), which serves at most
    ``output_tokens_per_s`` ÷ ``out_tokens`` × seconds per month × ``utilization`` requests. If the
    break-even volume exceeds that capacity, adding GPUs never catches up (each costs as much as the
    API traffic it serves), so the answer is ``None``.
    """
    cat = _cat(catalog)
    check_param("utilization", utilization, float, min=0.01, max=1.0)
    per_req = api_cost_per_request(model, in_tokens, out_tokens, data_sharing=data_sharing, catalog=cat)
    monthly, capacity = _self_hosted(gpu, out_tokens, utilization, cat, model_size)
    volume = monthly / per_req if per_req > 0 else math.inf
    return BreakEven(cat.entry(model)["id"], gpu, data_sharing, per_req, monthly, capacity,
                     volume if volume <= capacity else None)


def monthly_costs(requests: Sequence[float], model: str = "gpt-4.1-mini", gpu: str = "a100-40gb-on-demand", *,
                  in_tokens: int = 500, out_tokens: int = 200, utilization: float = 0.6, model_size: str = "8B",
                  catalog: Catalog | None = None) -> dict[str, list[float]]:
    """Monthly USD at each volume: the API, the API with data sharing (OpenAI only) and self-hosted GPUs."""
    cat = _cat(catalog)
    per_req = api_cost_per_request(model, in_tokens, out_tokens, catalog=cat)
    monthly, capacity = _self_hosted(gpu, out_tokens, utilization, cat, model_size)
    out = {"api": [r * per_req for r in requests],
           "self_hosted": [max(1, math.ceil(r / capacity)) * monthly for r in requests]}
    discount = cat.providers[cat.entry(model)["provider"]].get("data_sharing_inference_discount")
    if discount is not None:
        out["api_data_sharing"] = [r * per_req * (1 - discount) for r in requests]
    return out


def plot_break_even(model: str = "gpt-4.1-mini", gpu: str = "a100-40gb-on-demand", *, in_tokens: int = 500,
                    out_tokens: int = 200, utilization: float = 0.6, max_requests: float | None = None,
                    catalog: Catalog | None = None, ax=None):
    """Plot monthly cost against monthly requests: API, API with data sharing, self-hosted GPUs."""
    import matplotlib.pyplot as plt

    cat = _cat(catalog)
    kw = {"in_tokens": in_tokens, "out_tokens": out_tokens, "utilization": utilization, "catalog": cat}
    plain = break_even(model, gpu, **kw)
    shared = None
    if cat.providers[cat.entry(model)["provider"]].get("data_sharing_inference_discount") is not None:
        shared = break_even(model, gpu, data_sharing=True, **kw)
    top = max_requests or 3 * max(plain.capacity_requests_per_month, plain.requests_per_month or 0)
    xs = [top * i / 400 for i in range(401)]
    ys = monthly_costs(xs, model, gpu, in_tokens=in_tokens, out_tokens=out_tokens, utilization=utilization, catalog=cat)
    if ax is None:
        fig, ax = plt.subplots(figsize=(7, 4))
    else:
        fig = ax.figure
    ax.plot(xs, ys["api"], label=f"{model} API")
    if "api_data_sharing" in ys:
        ax.plot(xs, ys["api_data_sharing"], "--", label=f"{model} API, data sharing (-50%)")
    ax.step(xs, ys["self_hosted"], where="post", label=f"self-hosted {gpu}")
    for be, style in ((plain, "o"), (shared, "s")):
        if be and be.requests_per_month is not None:
            ax.plot([be.requests_per_month], [be.gpu_usd_per_month], style, color="black")
            ax.annotate(f"{be.requests_per_month / 1e6:.2f}M/month", (be.requests_per_month, be.gpu_usd_per_month),
                        textcoords="offset points", xytext=(6, -12))
    from matplotlib.ticker import FuncFormatter

    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v / 1e6:g}M"))
    ax.set_xlabel(f"requests per month ({in_tokens} in / {out_tokens} out tokens each)")
    ax.set_ylabel("USD per month")
    ax.set_title("Inference break-even: API vs one self-hosted GPU")
    ax.legend(loc="upper left", fontsize=8)
    ax.grid(alpha=0.3)
    return fig


# ---------------------------------------------------------------------------------------
# The live widget
# ---------------------------------------------------------------------------------------
def cost_explorer(examples: int = 5_000, tokens_per_example: int = 300, epochs: int = 3, model: str = "gpt-4.1-mini",
                  *, data_sharing: bool = False, gpu: str = "a100-40gb-on-demand", as_of: str | _dt.date | None = None,
                  catalog: Catalog | None = None):
    """Sliders (examples, tokens per example, epochs) and a model menu that update the cost table and the
    break-even plot live. Every control carries a stable CSS class (``ftlab-examples``, ``ftlab-epochs``,
    ``ftlab-model``, ``ftlab-cost-table``, ``ftlab-breakeven-plot``...) for browser tests.

    Returns the ``VBox``; its ``controls`` dict holds the widgets and ``refresh()`` redraws.
    """
    import ipywidgets as w
    import matplotlib.pyplot as plt
    from IPython.display import display

    cat = _cat(catalog)
    training_tokens(examples, tokens_per_example, epochs)  # validate the start values
    priced = [m["id"] for m in cat.models if m["fine_tunable"] and m.get("inference_in_usd_per_1m") is not None]
    cat.entry(model)
    if model not in priced:
        raise ParameterError(f"model {model!r} has no inference price for the break-even; choose one of {', '.join(priced)}")
    style = {"description_width": "150px"}
    layout = w.Layout(width="520px")
    controls = {
        "examples": w.IntSlider(value=examples, min=10, max=max(50_000, examples), step=10, description="examples",
                                style=style, layout=layout, continuous_update=False),
        "tokens_per_example": w.IntSlider(value=tokens_per_example, min=10, max=max(4_000, tokens_per_example), step=10,
                                          description="tokens per example", style=style, layout=layout,
                                          continuous_update=False),
        "epochs": w.IntSlider(value=epochs, min=1, max=max(10, epochs), step=1, description="epochs", style=style,
                              layout=layout, continuous_update=False),
        "model": w.Dropdown(options=priced, value=model, description="model (break-even)", style=style, layout=layout),
        "data_sharing": w.Checkbox(value=data_sharing, description="OpenAI data sharing (-50% inference)", indent=False),
    }
    for name, c in controls.items():
        c.add_class(f"ftlab-{name.replace('_', '-')}")
    tokens_label = w.HTML()
    tokens_label.add_class("ftlab-training-tokens")
    table = w.HTML()
    table.add_class("ftlab-cost-table")
    verdict = w.HTML()
    verdict.add_class("ftlab-breakeven")
    plot = w.Output()
    plot.add_class("ftlab-breakeven-plot")

    def refresh(*_):
        v = {k: c.value for k, c in controls.items()}
        tokens = training_tokens(v["examples"], v["tokens_per_example"], v["epochs"])
        tokens_label.value = (f"<b>{v['examples']:,} × {v['tokens_per_example']:,} × {v['epochs']} = "
                              f"<span class='ftlab-training-tokens-value'>{tokens:,}</span> training tokens</b>")
        table.value = cost_table_html(tokens, training_costs(tokens, as_of=as_of, catalog=cat), highlight=v["model"])
        be = break_even(v["model"], gpu, data_sharing=v["data_sharing"], catalog=cat)
        verdict.value = f"<p class='ftlab-breakeven-text'>{escape(be.explain())}</p>"
        with plot:
            plot.clear_output(wait=True)
            fig = plot_break_even(v["model"], gpu, catalog=cat)
            display(fig)
            plt.close(fig)

    for c in controls.values():
        c.observe(refresh, names="value")
    refresh()
    box = w.VBox([*controls.values(), tokens_label, table, verdict, plot])
    box.add_class("ftlab-cost-explorer")
    box.controls = controls
    box.refresh = refresh
    box.outputs = {"tokens": tokens_label, "table": table, "breakeven": verdict, "plot": plot}
    return box


def catalog_html(catalog: Catalog | None = None, as_of: str | _dt.date | None = None) -> str:
    """Every catalog entry with its prices, source, as_of and availability on ``as_of``, as an HTML table."""
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
        rows.append(
            f"<tr><td><code>{escape(m['id'])}</code></td><td>{escape(cat.providers[m['provider']]['name'])}</td>"
            f"<td>{train}</td><td>{usd(m.get('inference_in_usd_per_1m'))} / {usd(m.get('inference_out_usd_per_1m'))}</td>"
            f"<td>{escape(m['as_of'])}</td><td>{escape(m['confidence'])}</td>"
            f"<td>{escape(availability(m, as_of, catalog=cat).label)}</td><td><small>{escape(m['source'])}</small></td></tr>"
        )
    for g in cat.gpus:
        rows.append(
            f"<tr><td><code>{escape(g['id'])}</code></td><td>self-hosted GPU</td><td>{usd(g['usd_per_hour'])}/GPU-hour</td>"
            f"<td>your hardware</td><td>{escape(g['as_of'])}</td><td>{escape(g['confidence'])}</td>"
            f"<td>{escape(availability(g, as_of, catalog=cat).label)}</td><td><small>{escape(g['source'])}</small></td></tr>"
        )
    return (
        "<table class='ftlab-catalog'><thead><tr><th>entry</th><th>provider</th><th>training</th>"
        "<th>inference in / out per M</th><th>as of</th><th>confidence</th><th>availability</th><th>source</th></tr></thead><tbody>"
        + "".join(rows) + "</tbody></table>"
    )


def seed_vs_provider(tokens: int, *, as_of: str | _dt.date | None = None,
                     catalog: Catalog | None = None) -> list[dict[str, Any]]:
    """The seed's training price next to the provider's, for every entry that has both (``provider_price``).

    Seed 001 prints gpt-4.1 at $3.00/M and gpt-4.1-mini at $0.80/M *training*; those equal the
    fine-tuned models' *inference-input* prices, and OpenAI's own fine-tuning table lists training
    much higher. Each row: ``entry``, ``seed_usd_per_1m``, ``seed_cost_usd``, ``provider_usd_per_1m``,
    ``provider_cost_usd``, ``ratio`` (provider ÷ seed), ``inference_in_usd_per_1m`` (what the seed's
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


def seed_vs_provider_html(rows: Sequence[dict[str, Any]], tokens: int) -> str:
    """The side-by-side table notebook 02 shows (figures from :func:`seed_vs_provider`)."""
    body = "".join(
        f"<tr><td><code>{escape(r['entry'])}</code></td><td>${r['seed_usd_per_1m']:.2f}/M → <b>${r['seed_cost_usd']:,.2f}</b></td>"
        f"<td>${r['provider_usd_per_1m']:.2f}/M → <b>${r['provider_cost_usd']:,.2f}</b></td><td>×{r['ratio']:g}</td>"
        f"<td>${r['inference_in_usd_per_1m']:.2f}/M</td><td>{escape(r['confidence'])}, {escape(r['as_of'])}</td>"
        f"<td>{escape(r['availability'])}</td></tr>" for r in rows)
    return (f"<table class='ftlab-seed-vs-provider'><thead><tr><th>model</th><th>seed 001 ({tokens:,} tokens)</th>"
            "<th>OpenAI's list price</th><th>ratio</th><th>fine-tuned inference input</th><th>list price: confidence, as of</th>"
            f"<th>availability</th></tr></thead><tbody>{body}</tbody></table>")
