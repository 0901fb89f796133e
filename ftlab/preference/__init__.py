"""Learning from preferences (DPO) and from a verifiable reward (GRPO), after SFT. Notebook 11.

SFT copies one right answer. When the goal is "this reply rather than that one" (tone, style) or
"any reply that passes a check", two other signals train better:

- **DPO** (TRL's ``DPOTrainer``) learns from pairs: a prompt, a preferred and a non-preferred reply.
  ftlab generates them deterministically from the toy world: the shop now wants its formatted replies
  to end on a courteous line, so the courteous reply is *chosen* and the curt SFT reply *rejected*.
- **GRPO** (TRL's ``GRPOTrainer``) samples a group of replies per prompt and reinforces the ones a
  grader scores above the group's mean. The grader here is ftlab's own support-reply checker
  (``support_reward``: intent, order field, header, reply sentence, 0.25 each), a verifiable reward like OpenAI's
  ``string_check``/``python`` graders in reinforcement fine-tuning (RFT).

Measurements, all on held-out prompts (no held-out prompt is in any training mix)::

    pairs = preference_pairs()                      # {"train": [...], "heldout": [...]}
    before = score_pairs(model, tok, pairs["heldout"])                    # summed log-probabilities
    preference_accuracy(score_pairs(model, tok, pairs["heldout"], per_token=True))  # share where the chosen
                                                    # reply is likelier per token (sums favour short replies)
    reward_margins(after, before, beta=0.1)         # DPO's implicit reward margin vs the reference
    sampled_kl(policy, reference, tok, prompts)     # unbiased: exact sampled ids, temperature 1, no top-k/top-p

The managed services take the same data in their own formats: ``to_openai_dpo`` (OpenAI and Azure AI
Foundry DPO), ``to_rft_row`` (Bedrock and Foundry RFT prompts with a ``reference_answer``).

The package, by step:

- ``pairs``: ``preference_pairs``, ``rl_prompts``, ``heldout_overlap``.
- ``formats``: ``to_openai_dpo``, ``to_rft_row``, ``managed_files``.
- ``measure``: ``score_pairs``, ``preference_accuracy``, ``reward_margins``, ``sampled_kl``, ``dpo_measures``,
  ``dpo_report``.
- ``reward``: ``support_reward``, ``mean_reward``, ``grpo_outcome``, ``grpo_report``.
- ``training``: ``dpo_train``, ``grpo_train`` and their cached forms, ``dpo_from_spec``.
"""

from __future__ import annotations

from ftlab.preference.formats import from_openai_dpo, managed_files, to_openai_dpo, to_rft_row, write_jsonl
from ftlab.preference.measure import (
    _sample_ids,  # noqa: F401 (used outside the package)
    dpo_measures,
    dpo_report,
    general_skill_accuracy,
    preference_accuracy,
    reply_logprobs,
    reward_margins,
    sampled_kl,
    score_pairs,
)
from ftlab.preference.pairs import (
    FALLBACK_REJECTED,
    N_GRPO_PROMPTS,
    N_HELDOUT_PAIRS,
    N_TRAIN_PAIRS,
    _user_turns,  # noqa: F401 (used outside the package)
    heldout_overlap,
    preference_pairs,
    rl_prompts,
    shuffled,
)
from ftlab.preference.reward import (
    format_rate,
    grpo_outcome,
    grpo_report,
    mean_reward,
    strict_accuracy,
    support_reward,
)
from ftlab.preference.training import (
    PreferenceResult,
    dpo_from_spec,
    dpo_train,
    dpo_train_cached,
    grpo_train,
    grpo_train_cached,
)

__all__ = ["FALLBACK_REJECTED", "N_GRPO_PROMPTS", "N_HELDOUT_PAIRS", "N_TRAIN_PAIRS", "PreferenceResult",
           "dpo_from_spec", "dpo_measures", "dpo_report", "dpo_train", "dpo_train_cached", "format_rate", "from_openai_dpo", "general_skill_accuracy", "grpo_outcome", "grpo_report", "grpo_train",
           "grpo_train_cached", "heldout_overlap", "managed_files", "mean_reward", "preference_accuracy",
           "preference_pairs", "reply_logprobs", "reward_margins", "rl_prompts", "sampled_kl", "score_pairs",
           "shuffled", "strict_accuracy", "support_reward", "to_openai_dpo", "to_rft_row", "write_jsonl"]
