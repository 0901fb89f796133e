"""Together AI: its conversational JSONL (the OpenAI chat shape, checked the way Together's SDK checks
it) and the LoRA job request through the ``together`` SDK: printed with ``dry_run=True``, submitted
when ``TOGETHER_API_KEY`` is set.
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ftlab.cloud.common import (
    _ROLES,
    RETRIEVED,
    Format,
    _echo_default,
    _messages_head,
    _only_keys,
    _only_msg_keys,
    _require_valid,
    _Unholdable,
    _where,
)
from ftlab.errors import FtlabError

__all__ = ["FORMAT", "SOURCES", "TOGETHER_API", "from_together", "submit_together_job", "to_together",
           "together_job_request"]

# Where the format rules come from: (page, date, what it says). Shown by notebook 09.
SOURCES: list[tuple[str, str, str]] = [
    ("https://docs.together.ai/docs/fine-tuning/data-preparation", RETRIEVED,
     "messages with roles system/user/assistant; starts with system or user, then user and assistant alternate; "
     "a line with two formats is rejected"),
    ("https://docs.together.ai/docs/fine-tuning/function-calling", RETRIEVED,
     "tools field per line, assistant tool_calls instead of content, tool role for results"),
    ("https://github.com/togethercomputer/together-python (src/together/utils/files.py, constants.py)", RETRIEVED,
     "the SDK's check_file: only messages (+tools) per line, content a string, weight an int 0 or 1"),
]


# --- Together AI: conversational JSONL ---------------------------------------------------
# Source: docs.together.ai/docs/fine-tuning/data-preparation and .../fine-tuning/function-calling
# (read 2026-11-23), and the SDK's own checker (togethercomputer/together-python,
# src/together/utils/files.py + constants.py): a line holds "messages" (and optionally "tools")
# and nothing else; roles system/user/assistant/tool; content a string; "weight" an int 0 or 1.
_TOGETHER_MSG_KEYS = {"role", "content", "weight", "tool_calls", "tool_call_id"}


def to_together(example: dict[str, Any], line: int = 1) -> dict[str, Any]:
    """One OpenAI chat example as a Together conversational line (the same shape, checked)."""
    fmt = "Together's conversational format"
    _only_keys(example, {"messages", "tools"}, _where(line), fmt)
    for j, m in enumerate(example["messages"]):
        w = _where(line, j)
        _only_msg_keys(m, _TOGETHER_MSG_KEYS, w, fmt)
        if isinstance(m.get("content"), list):
            raise _Unholdable(f"{w}: content as a list of parts; {fmt} takes a string")
    return copy.deepcopy(example)


def from_together(record: dict[str, Any]) -> dict[str, Any]:
    return copy.deepcopy(record)



def _validate_together(rec: dict[str, Any], line: int) -> list[str]:
    errs, msgs = _messages_head(rec, line, ("messages", "tools"),
                                "extra column {}; a conversational line holds messages (and tools) only")
    if msgs is None:
        return errs
    prev = None
    for j, m in enumerate(msgs):
        wj = _where(line, j)
        if not isinstance(m, dict) or m.get("role") not in _ROLES:
            errs.append(f"{wj}: role must be one of {', '.join(_ROLES)}")
            continue
        role = m["role"]
        if j == 0 and role not in ("system", "user"):
            errs.append(f"{wj}: a conversation starts with system or user, got {role!r}")
        if "content" in m and m["content"] is not None and not isinstance(m["content"], str):
            errs.append(f"{wj}: content must be a string")
        if m.get("content") is None and not (role == "assistant" and m.get("tool_calls")):
            errs.append(f"{wj}: content missing")
        if "weight" in m and (isinstance(m["weight"], bool) or m["weight"] not in (0, 1)):
            errs.append(f"{wj}: weight must be the integer 0 or 1, got {m['weight']!r}")
        if role == prev and role != "tool":
            errs.append(f"{wj}: two {role!r} messages in a row; user and assistant must alternate")
        prev = role
    return errs




FORMAT = Format("together", "together", lambda ex, line, warnings: to_together(ex, line), from_together,
                _validate_together)


# --- Together AI -------------------------------------------------------------------------
# REST: POST https://api.together.xyz/v1/fine-tunes (docs.together.ai/reference/post-fine-tunes,
# read 2026-11-23) with {"training_file", "model", "n_epochs", "learning_rate", "training_type":
# {"type": "Lora", "lora_r", "lora_alpha", ...}, "training_method": {"method": "sft"}, ...};
# the SDK call is client.fine_tuning.create(training_file=..., model=..., lora=True, ...), after
# client.files.upload(file=..., purpose="fine-tune", check=True) returned the file id.
TOGETHER_API = "https://api.together.xyz/v1"


def together_job_request(*, model: str = "meta-llama/Meta-Llama-3.1-8B-Instruct-Reference",
                         training_file_id: str = "<file id from client.files.upload>",
                         validation_file_id: str | None = None, n_epochs: int = 3, learning_rate: float = 1e-5,
                         lora: bool = True, lora_r: int = 8, lora_alpha: int = 16, n_evals: int = 0,
                         suffix: str = "ftlab-support") -> dict[str, Any]:
    """The Together SDK keyword arguments and the REST body of one fine-tuning job."""
    sdk = {"training_file": training_file_id, "model": model, "n_epochs": n_epochs, "learning_rate": learning_rate,
           "lora": lora, "suffix": suffix}
    body: dict[str, Any] = {"training_file": training_file_id, "model": model, "n_epochs": n_epochs,
                            "learning_rate": learning_rate, "suffix": suffix,
                            "training_method": {"method": "sft", "train_on_inputs": "auto"},
                            "training_type": {"type": "Lora", "lora_r": lora_r, "lora_alpha": lora_alpha,
                                              "lora_dropout": 0.0, "lora_trainable_modules": "all-linear"}
                            if lora else {"type": "Full"}}
    if lora:
        sdk.update(lora_r=lora_r, lora_alpha=lora_alpha)
    if validation_file_id:
        sdk.update(validation_file=validation_file_id, n_evals=n_evals)
        body.update(validation_file=validation_file_id, n_evals=n_evals)
    return {"sdk": sdk, "rest": {"method": "POST", "url": f"{TOGETHER_API}/fine-tunes", "body": body}}


def submit_together_job(train_file: str | os.PathLike[str], *, model: str = "meta-llama/Meta-Llama-3.1-8B-Instruct-Reference",
                        validation_file: str | os.PathLike[str] | None = None, n_epochs: int = 3,
                        learning_rate: float = 1e-5, n_evals: int = 0, suffix: str = "ftlab-support",
                        dry_run: bool = True, echo: Callable[[str], None] = _echo_default) -> dict[str, Any]:
    """Upload a Together-format file and start a LoRA job with the ``together`` SDK.

    ``dry_run=True`` prints ``client.files.upload(...)``, ``client.fine_tuning.create(...)`` and the
    REST body, and sends nothing. ``dry_run=False`` needs ``TOGETHER_API_KEY`` and the optional
    ``together`` package (``pip install together``).
    """
    train_file = Path(train_file)
    _require_valid(train_file, FORMAT)
    if validation_file is not None:
        _require_valid(Path(validation_file), FORMAT)
    req = together_job_request(model=model, n_epochs=n_epochs, learning_rate=learning_rate, suffix=suffix,
                               n_evals=n_evals,
                               validation_file_id="<validation file id>" if validation_file is not None else None)
    plan = {"dry_run": dry_run, "request": req, "job": None}
    if dry_run:
        echo("dry run: nothing uploaded, nothing submitted")
        echo("from together import Together\nclient = Together()  # reads TOGETHER_API_KEY")
        echo(f"train = client.files.upload(file={str(train_file)!r}, purpose='fine-tune', check=True)")
        if validation_file is not None:
            echo(f"val = client.files.upload(file={str(validation_file)!r}, purpose='fine-tune', check=True)")
        kwargs = ", ".join(f"{k}={v!r}" for k, v in req["sdk"].items())
        echo(f"job = client.fine_tuning.create({kwargs})".replace("'<file id from client.files.upload>'", "train.id")
             .replace("'<validation file id>'", "val.id"))
        echo(f"# REST: POST {req['rest']['url']}\n{json.dumps(req['rest']['body'], indent=2)}")
        return plan
    if not os.environ.get("TOGETHER_API_KEY"):
        raise FtlabError("TOGETHER_API_KEY is not set; export it (never pass keys as parameters) or keep dry_run=True")
    try:
        from together import Together
    except ImportError:
        raise FtlabError("the together SDK is not installed: pip install together (or keep dry_run=True)") from None
    client = Together()
    train_id = client.files.upload(file=str(train_file), purpose="fine-tune", check=True).id
    sdk = dict(req["sdk"], training_file=train_id)
    if validation_file is not None:
        sdk["validation_file"] = client.files.upload(file=str(validation_file), purpose="fine-tune", check=True).id
    job = client.fine_tuning.create(**sdk)
    plan["job"] = {"id": job.id, "status": str(getattr(job, "status", ""))}
    echo(f"submitted Together job {job.id}")
    return plan
