"""The verifiable reward GRPO learns from (ftlab's support-reply checker) and what it measures before and after."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from ftlab.core import seed_everything
from ftlab.data import (
    INTENTS,
    parse_support_reply,
    score_support_reply,
)

__all__ = ["format_rate", "grpo_outcome", "grpo_report", "mean_reward", "strict_accuracy", "support_reward"]


# ---------------------------------------------------------------------------------------------
# The verifiable reward
# ---------------------------------------------------------------------------------------------
def _text(completion: Any) -> str:
    if isinstance(completion, list):  # conversational: [{"role": "assistant", "content": ...}]
        return "".join(m.get("content") or "" for m in completion if isinstance(m, dict))
    return str(completion)


def _body_pattern(intent: str) -> re.Pattern[str]:
    """The reply sentence of ``intent`` (``INTENTS[intent]["reply"]``), any item, as a regex."""
    parts = [re.escape(x.replace("{o}", "")) for x in INTENTS[intent]["reply"].split("{item}")]
    return re.compile(r"\w+".join(parts))


def support_reward(completions: Sequence[Any], intent: Sequence[str], **_: Any) -> list[float]:
    """GRPO's verifiable reward, from ftlab's support-reply format: four checks worth 0.25 each,
    so that a reply that is almost right scores more than one that is not (a denser signal than all-or-nothing):

    1. it names the right intent (``intent: refund``),
    2. it has a well-formed order field (``order: 4821`` or ``order: none``),
    3. the whole header parses (``parse_support_reply``: the format),
    4. it says the intent's reply sentence (``Your refund has started.``).

    1.0 = a correct reply in the support format (``score_support_reply`` = 1). The order *number* is not
    checked: the toy cannot copy it (its greedy replies get it wrong too), so it would add noise, not signal.
    Called the way TRL calls reward functions (the dataset's extra columns come as keyword arguments).
    Example: ``support_reward([[{"role": "assistant", "content": "intent: cancel | order: 1 | It is cancelled."}]],
    ["cancel"]) == [1.0]``.
    """
    out = []
    for c, i in zip(completions, intent, strict=True):
        text = _text(c)
        checks = (re.search(rf"\bintent:\s*{re.escape(i)}\b", text, re.IGNORECASE) is not None,
                  re.search(r"\border:\s*(?:[0-9]+|none)\b", text, re.IGNORECASE) is not None,
                  parse_support_reply(text)[0] is not None,
                  i in INTENTS and _body_pattern(i).search(text) is not None)
        out.append(sum(checks) / len(checks))
    return out


def strict_accuracy(completions: Sequence[Any], intent: Sequence[str]) -> float:
    """Share of replies in the support format with the right intent (``score_support_reply``: all or nothing)."""
    return sum(score_support_reply(_text(c), {"intent": i}) for c, i in zip(completions, intent, strict=True)
               ) / max(len(completions), 1)


def mean_reward(model, tokenizer, rows: Sequence[dict[str, Any]], *, samples: int = 4, temperature: float = 1.0,
                max_new_tokens: int = 32, seed: int = 0) -> float:
    """Mean ``support_reward`` of replies sampled at ``temperature`` (GRPO's own sampling), ``samples`` per prompt."""
    from ftlab.generation import chat_generate

    seed_everything(seed)
    convs = [r["prompt"] for r in rows for _ in range(samples)]
    texts = chat_generate(model, tokenizer, convs, max_new_tokens=max_new_tokens, do_sample=True,
                          temperature=temperature)
    intents = [r["intent"] for r in rows for _ in range(samples)]
    return sum(support_reward(texts, intents)) / max(len(texts), 1)


def grpo_outcome(rewards_before: Sequence[float], rewards_after: Sequence[float],
                 history: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """What a GRPO run did: the median held-out reward before and after, TRL's share of groups whose replies
    all scored alike (``frac_reward_zero_std``, mean over the logged steps), and why there is no rise when there
    is none to expect: ``reward_saturated`` (the start already scores ≥ 0.99) or ``no_signal`` (≥ 90 % of the
    groups scored alike, so no advantage to learn from), with an ``explanation`` for the learner (or ``None``).

    Example: ``grpo_outcome([0.2, 0.21], [0.26, 0.27], [{"frac_reward_zero_std": 0.5}])["no_signal"] is False``.
    """
    import statistics

    before, after = statistics.median(rewards_before), statistics.median(rewards_after)
    zero_std = [h["frac_reward_zero_std"] for h in history if "frac_reward_zero_std" in h]
    frac = sum(zero_std) / len(zero_std) if zero_std else None
    saturated = before >= 0.99
    no_signal = frac is not None and frac >= 0.9
    explanation = None
    if saturated:
        explanation = (f"The reward was saturated before GRPO ({before:.3f}): the start adapter already answers the "
                       "held-out prompts correctly, every group scores alike, so GRPO has nothing to learn here and 'no "
                       "rise' is the expected result. To see GRPO raise a reward, use a harder grader (e.g. the order "
                       "number) or the toy model.")
    elif no_signal:
        explanation = (f"{frac:.0%} of GRPO's groups scored alike (held-out reward {before:.3f}): with no difference "
                       "within a group there is no advantage, so GRPO learned (almost) nothing. Sample more replies per "
                       "group (grpo_generations), start from a more trained adapter (grpo_start_steps) or give it more steps.")
    return {"reward_before": before, "reward_after": after, "frac_reward_zero_std": frac,
            "reward_saturated": saturated, "no_signal": no_signal, "explanation": explanation}


def format_rate(replies: Sequence[str]) -> float:
    """Share of replies in the support format (any intent)."""
    return sum(parse_support_reply(r)[0] is not None for r in replies) / max(len(replies), 1)


def grpo_report(outcome: dict[str, Any], rewards_before: Sequence[float], rewards_after: Sequence[float],
                kl: float) -> str:
    """A ``grpo_outcome`` as lines to print: the held-out reward before → after (the median and each seed's),
    the share of groups that taught nothing, the explanation when no rise is to be expected, and the KL."""
    lines = [f"held-out reward {outcome['reward_before']:.3f} -> {outcome['reward_after']:.3f} (median of "
             f"{len(rewards_after)} seeds: {[round(r, 3) for r in rewards_before]} -> {[round(r, 3) for r in rewards_after]})"]
    if outcome["frac_reward_zero_std"] is not None:  # TRL's frac_reward_zero_std: groups that all scored alike
        lines.append(f"groups whose replies all scored alike (no advantage, nothing learned): "
                     f"{outcome['frac_reward_zero_std']:.0%}")
    if outcome["explanation"]:
        lines.append(outcome["explanation"])
    return "\n".join([*lines, f"KL(GRPO || start) ≈ {kl:.3f} nats per reply"])
