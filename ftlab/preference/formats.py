"""The managed services' formats: OpenAI/Azure DPO rows, Bedrock/Foundry RFT prompts, and the files for them."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ftlab.preference.pairs import preference_pairs, rl_prompts

__all__ = ["from_openai_dpo", "managed_files", "to_openai_dpo", "to_rft_row", "write_jsonl"]


# ---------------------------------------------------------------------------------------------
# Managed formats
# ---------------------------------------------------------------------------------------------
def to_openai_dpo(pair: dict[str, Any]) -> dict[str, Any]:
    """One pair in OpenAI's preference format, which Azure AI Foundry DPO reads too::

        {"input": {"messages": [...]}, "preferred_output": [{...}], "non_preferred_output": [{...}]}

    https://developers.openai.com/api/docs/guides/direct-preference-optimization,
    https://learn.microsoft.com/en-us/azure/foundry/openai/how-to/fine-tuning-direct-preference-optimization
    """
    return {"input": {"messages": pair["prompt"]}, "preferred_output": pair["chosen"],
            "non_preferred_output": pair["rejected"]}


def from_openai_dpo(row: dict[str, Any]) -> dict[str, Any]:
    """An OpenAI preference line back to TRL's ``{"prompt", "chosen", "rejected"}`` (tools are kept)."""
    out = {"prompt": row["input"]["messages"], "chosen": row["preferred_output"],
           "rejected": row["non_preferred_output"]}
    if row["input"].get("tools"):
        out["tools"] = row["input"]["tools"]
    return out


def to_rft_row(row: dict[str, Any], *, system: bool = True) -> dict[str, Any]:
    """A prompt for reinforcement fine-tuning: ``{"messages": [...], "reference_answer": {...}}``.

    Amazon Bedrock RFT (Nova and open-weight models) reads OpenAI chat ``messages`` plus a
    ``reference_answer`` the grader Lambda compares against, at least 100 records
    (https://docs.aws.amazon.com/bedrock/latest/userguide/rft-prepare-data.html,
    https://docs.aws.amazon.com/bedrock/latest/userguide/rft-prepare-data-open-weight.html).
    Azure AI Foundry RFT (o4-mini) takes no system message, so ``system=False`` folds it into the user turn
    (https://learn.microsoft.com/en-us/azure/ai-services/openai/how-to/reinforcement-fine-tuning).
    """
    msgs = [dict(m) for m in row["prompt"]]
    if not system and msgs and msgs[0]["role"] in ("system", "developer"):
        first = msgs.pop(0)
        msgs[0] = {**msgs[0], "content": f"{first['content']}\n\n{msgs[0]['content']}"}
    return {"messages": msgs, "reference_answer": {"intent": row["intent"], "order": row["order"] or "none"}}


def write_jsonl(rows: Sequence[dict[str, Any]], path: str | os.PathLike[str]) -> Path:
    """Write rows as UTF-8 JSONL; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def managed_files(folder: str | os.PathLike[str], seed: int = 0) -> dict[str, Path]:
    """Write the preference data in every managed format that has one; returns ``{name: path}``.

    ``openai_dpo`` (OpenAI, and Azure AI Foundry DPO: the same format), ``bedrock_rft`` (Amazon Bedrock
    RFT) and ``foundry_rft`` (Azure AI Foundry RFT, no system message). Amazon Bedrock has no DPO
    customization: its methods are fine-tuning, continued pre-training, distillation and RFT.
    """
    folder = Path(folder)
    pairs, rl = preference_pairs(seed), rl_prompts(seed, n_train=128)
    return {"openai_dpo": write_jsonl([to_openai_dpo(p) for p in pairs["train"]], folder / "openai_dpo.jsonl"),
            "bedrock_rft": write_jsonl([to_rft_row(r) for r in rl["train"]], folder / "bedrock_rft.jsonl"),
            "foundry_rft": write_jsonl([to_rft_row(r, system=False) for r in rl["train"]],
                                       folder / "foundry_rft.jsonl")}
