"""The price catalog (``ftlab/catalog/prices.yaml``): loading it, checking it, and looking entries up."""

from __future__ import annotations

import datetime as _dt
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from ftlab.errors import FtlabError, ParameterError

__all__ = ["AVAILABILITY_STATUSES", "CONFIDENCE", "DEFAULT_CATALOG", "HOURS_PER_MONTH", "ORG_STATUSES",
           "ORG_STATUS_LABELS", "PATH_LABELS", "PRICING_KINDS", "Catalog", "load_catalog"]


PATH_LABELS = {"openai": "OpenAI API", "hf_qlora": "Hugging Face + QLoRA", "cloud_managed": "Cloud-managed"}
PRICING_KINDS = ("per_training_token", "per_gpu_hour", "per_training_hour", "per_wall_clock_hour")
CONFIDENCE = ("seed", "provider", "unconfirmed", "reported")
HOURS_PER_MONTH = 730  # 24 × 365 / 12
DEFAULT_CATALOG = Path(__file__).resolve().parent.parent / "catalog" / "prices.yaml"
_ENTRY_KEYS = ("id", "provider", "model", "fine_tunable", "pricing", "source", "as_of", "confidence")
_METHODS = {"qlora": "QLoRA", "lora": "LoRA", "full": "full fine-tuning"}
_GPU_KEYS = ("id", "hardware", "name", "usd_per_hour", "source", "as_of", "confidence")


AVAILABILITY_STATUSES = ("open", "closing", "closed", "retired")
ORG_STATUSES = ("new", "inactive", "active")
ORG_STATUS_LABELS = {"new": "never fine-tuned", "inactive": "fine-tuned before, no fine-tuned-model inference in 60 days",
                     "active": "fine-tunes and serves fine-tuned models"}


def _date(text: Any) -> _dt.date | None:
    if text is None:
        return None
    try:
        return _dt.date.fromisoformat(str(text)[:10])
    except ValueError:
        return None


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


