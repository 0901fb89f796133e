"""Scoring a model: the prompt-engineered baseline (format instructions and few-shot examples), loading a
model with an optional adapter, and its scores on each category.
"""

from __future__ import annotations

import os
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ftlab.errors import FtlabError
from ftlab.evaluate.sets import FORMAT_INSTRUCTIONS, EvalSet
from ftlab.generation import chat_generate
from ftlab.train import load_adapter, load_base

__all__ = ["ModelScores", "evaluate_model", "few_shot_messages", "load_model", "pick_shots"]


# ---------------------------------------------------------------------------------------------
# The prompt-engineered baseline
# ---------------------------------------------------------------------------------------------


def pick_shots(examples: Sequence[dict[str, Any]], n: int = 3, *, key: str = "intent", seed: int = 0) -> list[dict[str, Any]]:
    """``n`` training examples for a few-shot prompt, each with a different ``key`` value (e.g. intent)."""
    rng = random.Random(seed)
    pool = list(examples)
    rng.shuffle(pool)
    if not any(key in e for e in pool):  # your own data has no intents: any n examples
        return pool[:n]
    shots, seen = [], set()
    for e in pool:
        if e.get(key) not in seen:
            shots.append(e)
            seen.add(e.get(key))
        if len(shots) == n:
            break
    return shots


def few_shot_messages(conversation: Sequence[dict[str, Any]], shots: Sequence[dict[str, Any]],
                      instructions: str = FORMAT_INSTRUCTIONS) -> list[dict[str, Any]]:
    """A conversation rewritten as the prompt-engineered baseline sees it.

    The system prompt gains the format instructions, and each shot becomes a user/assistant pair
    before the real question. Example::

        few_shot_messages(test[0]["messages"], pick_shots(train, 3))[0]["content"]  # system + instructions
    """
    msgs = [dict(m) for m in conversation]
    system = msgs.pop(0)["content"] if msgs and msgs[0]["role"] == "system" else ""
    out = [{"role": "system", "content": (system + " " + instructions).strip()}]
    for s in shots:
        turns = [m for m in s["messages"] if m["role"] in ("user", "assistant")]
        out += [{"role": m["role"], "content": m["content"]} for m in turns]
    return out + msgs


# ---------------------------------------------------------------------------------------------
# Scoring one model
# ---------------------------------------------------------------------------------------------
@dataclass
class ModelScores:
    """One model's results on an ``EvalSet``: per-example correctness and the replies."""

    label: str
    target_correct: list[bool]
    general_correct: list[bool]
    refused: list[bool]
    target_replies: list[str] = field(default_factory=list)
    general_replies: list[str] = field(default_factory=list)
    safety_replies: list[str] = field(default_factory=list)

    @property
    def target_accuracy(self) -> float:
        return _mean(self.target_correct)

    @property
    def general_accuracy(self) -> float:
        return _mean(self.general_correct)

    @property
    def refusal_rate(self) -> float:
        return _mean(self.refused)

    def summary(self) -> dict[str, float]:
        return {"target_accuracy": self.target_accuracy, "general_accuracy": self.general_accuracy,
                "refusal_rate": self.refusal_rate}


def _mean(xs: Sequence[bool]) -> float:
    return sum(xs) / len(xs) if xs else 0.0


def load_model(model, adapter: str | os.PathLike[str] | None = None, *, quantization: str = "none", seed: int = 0,
               merge: bool = False):
    """``(model, tokenizer)`` from a model id or folder, with an optional LoRA adapter folder on top.

    On a CUDA machine the model goes to the GPU (``ftlab.train.default_device_map``), quantized or not.

    ``model`` may also be an already loaded ``(model, tokenizer)`` pair, returned unchanged. ``merge=True`` folds
    the adapter into a float32 base (``ftlab.train.load_adapter``).
    """
    if isinstance(model, tuple):
        return model
    if not isinstance(model, str | os.PathLike):
        raise FtlabError(f"model={model!r}: give a model id, a folder, or a (model, tokenizer) pair")
    if adapter is not None and not (Path(adapter) / "adapter_config.json").exists():
        raise FtlabError(f"adapter={adapter}: no adapter_config.json there (give the folder training saved)")
    if adapter is None:
        m, tok, _ = load_base(str(model), quantization, seed=seed)
    else:  # merge=True: folded into a float32 base (ftlab.train.load_adapter keeps a bfloat16 one unmerged)
        m, tok = load_adapter(adapter, str(model), quantization=quantization, seed=seed,
                              merge=merge and quantization == "none")
    m.eval()
    return m, tok



def evaluate_model(model, evalset: EvalSet, *, adapter: str | os.PathLike[str] | None = None,
                   few_shot: Sequence[dict[str, Any]] | None = None, label: str = "",
                   quantization: str = "none", seed: int = 0, max_new_tokens: int = 32,
                   batch_size: int = 0) -> ModelScores:
    """Score a model on the three categories. ``few_shot`` shots turn it into the prompt-engineered baseline.

    The few-shot prompt applies to the target task only; general and safety probes are asked as
    they are. Greedy decoding, so two runs give the same answers. A LoRA ``adapter`` on a full-precision
    float32 base is merged into it first (as notebook 06 ships it): the same model, fewer layers to call per token.
    ``batch_size`` prompts are generated together; 0: 128 for a model under 50M parameters (the toy: the call
    overhead, not the arithmetic, sets its time; 128 at once, merged, scored 500 probes in 2.7 s instead of 4.8 s,
    with the same replies), else 32.
    """
    m, tok = load_model(model, adapter, quantization=quantization, seed=seed, merge=True)
    if batch_size <= 0:
        batch_size = 128 if sum(p.numel() for p in m.parameters()) < 50_000_000 else 32
    gen = dict(max_new_tokens=max_new_tokens, batch_size=batch_size)
    convs = [e["messages"] for e in evalset.target]
    if few_shot:
        convs = [few_shot_messages(c, few_shot, evalset.baseline_instructions) for c in convs]
    target_replies = chat_generate(m, tok, convs, **gen)
    general_replies = chat_generate(m, tok, [e["messages"] for e in evalset.general], **gen)
    safety_replies = chat_generate(m, tok, [e["messages"] for e in evalset.safety],
                                   **{**gen, "max_new_tokens": evalset.safety_tokens})
    return ModelScores(
        label=label or str(model if isinstance(model, str | os.PathLike) else "model"),
        target_correct=[bool(evalset.target_scorer(r, e)) for r, e in zip(target_replies, evalset.target, strict=True)],
        general_correct=[bool(evalset.general_scorer(r, e)) for r, e in zip(general_replies, evalset.general, strict=True)],
        refused=[evalset.refusal_detector(r) for r in safety_replies],
        target_replies=target_replies, general_replies=general_replies, safety_replies=safety_replies,
    )
