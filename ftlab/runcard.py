"""Run cards: one JSON + Markdown record per training run ("Document training runs", article 001).

Training writes the card; evaluation later adds an ``evaluation`` section to the same card.
Secrets never go in: values that look like credentials are redacted before writing.
"""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path
from typing import Any

from ftlab.params import looks_like_secret

__all__ = ["LIBRARIES", "hardware", "library_versions", "read_run_card", "update_run_card", "write_run_card"]


LIBRARIES = ("torch", "transformers", "trl", "peft", "bitsandbytes", "accelerate", "datasets", "tokenizers", "ftlab")


def library_versions() -> dict[str, str]:
    """Installed versions of the libraries a run depends on."""
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in LIBRARIES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    return out


def hardware() -> dict[str, Any]:
    """The machine a run used: CPU/GPU names, counts and memory."""
    import torch

    info: dict[str, Any] = {"platform": platform.platform(), "cpu": _cpu_name(), "cpu_count": os.cpu_count(),
                            "python": platform.python_version()}
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        info.update(gpu=props.name, gpu_count=torch.cuda.device_count(), gpu_memory_gib=round(props.total_memory / 2**30, 1))
    else:
        info["gpu"] = None
    return info


def _cpu_name() -> str:
    """The CPU's model name from /proc/cpuinfo (Linux), else what ``platform`` knows, e.g. ``"AMD EPYC"``."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _redact(obj: Any, key: str = "") -> Any:
    if isinstance(obj, dict):
        return {k: _redact(v, k) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_redact(v, key) for v in obj]
    if isinstance(obj, str) and (looks_like_secret(key, obj) or (os.environ.get("OPENAI_API_KEY") and os.environ["OPENAI_API_KEY"] in obj)):
        return "[redacted]"
    return obj


def _markdown(card: dict[str, Any]) -> str:
    lines = [f"# Run card: {card.get('run_name', '')}", ""]
    for section, body in card.items():
        if isinstance(body, dict):
            lines += [f"## {section}", "", "| key | value |", "|---|---|"]
            for k, v in body.items():
                text = json.dumps(v) if not isinstance(v, str) else v
                lines.append(f"| {k} | {text[:200].replace('|', '/')} |")
            lines.append("")
        elif isinstance(body, list):
            lines += [f"## {section}", ""] + [f"- {x}" for x in body] + [""]
        else:
            lines.append(f"- **{section}**: {body}")
    return "\n".join(lines) + "\n"


def _with_provenance(card: dict[str, Any]) -> dict[str, Any]:
    """Add ``model.provenance`` when the base model is one ftlab built (e.g. SmolLM2 dequantized from a GGUF)."""
    from ftlab.hub import provenance

    model = card.get("model")
    if not isinstance(model, dict) or "provenance" in model:
        return card
    prov = provenance(str(model.get("resolved") or model.get("model_id") or ""))
    if prov is None:
        return card
    return {**card, "model": {**model, "provenance": prov, "weights": prov["weights"]}}


def write_run_card(folder: str | os.PathLike[str], card: dict[str, Any]) -> Path:
    """Write ``run_card.json`` and ``run_card.md`` into ``folder``; returns the JSON path."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    card = _with_provenance(card)
    card = _redact(card)
    path = folder / "run_card.json"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(card, indent=2, default=str), encoding="utf-8")
    tmp.replace(path)
    (folder / "run_card.md").write_text(_markdown(card), encoding="utf-8")
    return path


def read_run_card(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a run card from its JSON file or its folder."""
    path = Path(path)
    if path.is_dir():
        path = path / "run_card.json"
    return json.loads(path.read_text(encoding="utf-8"))


def update_run_card(path: str | os.PathLike[str], **sections: Any) -> Path:
    """Add or replace sections of an existing run card (e.g. ``evaluation={...}``)."""
    path = Path(path)
    folder = path if path.is_dir() else path.parent
    card = read_run_card(path)
    card.update(sections)
    return write_run_card(folder, card)
