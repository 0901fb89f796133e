"""Chat generation helpers that work the same for the toy model and any hub model."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = ["chat_generate"]


def _messages_for_prompt(conversation: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Drop a trailing assistant turn (the reference answer) so the model writes its own."""
    msgs = list(conversation)
    if msgs and msgs[-1].get("role") == "assistant":
        msgs = msgs[:-1]
    return msgs


def chat_generate(
    model,
    tokenizer,
    conversations: Sequence[Sequence[dict[str, Any]]],
    *,
    max_new_tokens: int = 40,
    batch_size: int = 32,
    do_sample: bool = False,
    temperature: float = 1.0,
) -> list[str]:
    """Generate one assistant reply per conversation (greedy by default), batched with left padding.

    A trailing assistant message in a conversation is treated as the reference and dropped.

    Example::

        chat_generate(model, tok, [[{"role": "user", "content": "Uppercase: apple"}]])  # -> ["APPLE"]
    """
    import torch

    was_training = model.training
    model.eval()
    pad_side = tokenizer.padding_side
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    replies: list[str] = []
    device = next(model.parameters()).device
    try:
        for start in range(0, len(conversations), batch_size):
            chunk = [_messages_for_prompt(c) for c in conversations[start : start + batch_size]]
            prompts = [tokenizer.apply_chat_template(c, tokenize=False, add_generation_prompt=True) for c in chunk]
            enc = tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False).to(device)
            kwargs: dict[str, Any] = {"max_new_tokens": max_new_tokens, "do_sample": do_sample,
                                      "pad_token_id": tokenizer.pad_token_id, "eos_token_id": tokenizer.eos_token_id}
            if do_sample:
                kwargs["temperature"] = temperature
            else:
                kwargs.update(temperature=None, top_p=None, top_k=None)
            with torch.no_grad():
                out = model.generate(**enc, **kwargs)
            new = out[:, enc["input_ids"].shape[1] :]
            replies += [t.strip() for t in tokenizer.batch_decode(new, skip_special_tokens=True)]
    finally:
        tokenizer.padding_side = pad_side
        model.train(was_training)
    return replies
