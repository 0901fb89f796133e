"""Which tokens the loss sees (the loss mask, checked before training) and the held-out loss and metrics."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ftlab.errors import FtlabError

__all__ = [
    "FTLAB_TRAINING_TEMPLATES",
    "LOSS_MODES",
    "LossMask",
    "choose_loss_mask",
    "heldout_loss",
    "heldout_metrics",
    "preflight_loss_mask",
]


# Generation-tagged ChatML training templates, for ChatML families whose templates TRL does not patch. Each renders
# exactly like the model's own template (checked on the data before use) and marks the assistant's reply + <|im_end|>.
def _chatml_training_template(default_system: str | None) -> str:
    first = ("{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\\n"
             + default_system + "<|im_end|>\\n' }}{% endif %}") if default_system else ""
    return ("{% for message in messages %}" + first
            + "{% if message['role'] == 'assistant' %}{{ '<|im_start|>assistant\\n' }}"
            "{% generation %}{{ message['content'] + '<|im_end|>' }}{% endgeneration %}{{ '\\n' }}"
            "{% else %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
            "{% endif %}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}")


FTLAB_TRAINING_TEMPLATES = {
    "SmolLM2 (ChatML)": _chatml_training_template("You are a helpful AI assistant named SmolLM, trained by Hugging Face"),
    "Qwen2 (ChatML)": _chatml_training_template("You are a helpful assistant."),
    "ChatML": _chatml_training_template(None),
}
LOSS_MODES = ("auto", "assistant_only", "completion_only", "all")


@dataclass
class LossMask:
    """Which tokens the loss sees. ``mode``: ``assistant_only`` (every assistant turn, through a template with
    ``{% generation %}``), ``completion_only`` (the last assistant message of each conversation: the fallback
    for templates ftlab has no generation-tagged version of), or ``all``. ``template``: the chat template to
    train with (None: the tokenizer's own); ``source`` says where it came from."""

    mode: str
    template: str | None
    source: str

    def describe(self) -> str:
        what = {"assistant_only": "assistant-only loss (every assistant turn)",
                "completion_only": "completion-only loss (the last assistant message of each conversation)",
                "all": "loss on every token"}[self.mode]
        return f"{what}; {self.source}"

    def to_dict(self) -> dict[str, Any]:
        return {"mode": self.mode, "source": self.source, "description": self.describe()}


def _has_generation(template: str | None) -> bool:
    import re

    return bool(template) and re.search(r"\{%-?\s*generation\s*-?%\}", template) is not None


def _renders_like(tokenizer, template: str, rows: Sequence[dict[str, Any]]) -> bool:
    """True when ``template`` renders the rows (and their prompts) exactly as the tokenizer's own template does."""
    try:
        for row in list(rows)[:8]:
            msgs = row["messages"]
            for m, gen in ((msgs, False), (msgs[:-1], True)):
                if not m:
                    continue
                own = tokenizer.apply_chat_template(m, tokenize=False, add_generation_prompt=gen)
                other = tokenizer.apply_chat_template(m, tokenize=False, add_generation_prompt=gen, chat_template=template)
                if own != other:
                    return False
    except Exception:  # a template that cannot render these rows
        return False
    return True


def choose_loss_mask(tokenizer, rows: Sequence[dict[str, Any]], loss: str = "auto") -> LossMask:
    """Pick how to mask the loss, as TRL 1.x does for known families, and say which was used.

    ``auto``: the tokenizer's template if it has ``{% generation %}``; else TRL's training template for its family
    (Llama 3, Qwen2.5/3, Gemma, Phi-3, ...; ``trl.chat_template_utils.get_training_chat_template``); else ftlab's
    generation-tagged ChatML variants (SmolLM2, Qwen2, plain ChatML); any of them only if it renders the data
    exactly like the model's own template. Otherwise completion-only loss on the last assistant message.
    ``assistant_only`` forces the tokenizer's own template (every label masked if it has no markers: the
    pre-flight then stops); ``completion_only`` and ``all`` are taken as given.
    Example: ``choose_loss_mask(smollm2_tokenizer, rows).source`` names ftlab's SmolLM2 (ChatML) template.
    """
    if loss not in LOSS_MODES:
        raise FtlabError(f"loss={loss!r}: use one of {', '.join(LOSS_MODES)}")
    if loss == "all":
        return LossMask("all", None, "every token of the conversation is trained")
    if loss == "completion_only":
        return LossMask("completion_only", None, "asked for (loss='completion_only')")
    own = tokenizer.chat_template if isinstance(tokenizer.chat_template, str) else None
    if loss == "assistant_only" or _has_generation(own):
        return LossMask("assistant_only", None, "the model's own chat template marks assistant turns "
                        "with {% generation %}" if _has_generation(own) else "the model's own chat template (forced)")
    rows = [rows[i] for i in range(len(rows))] if hasattr(rows, "column_names") else list(rows)
    try:
        from trl.chat_template_utils import get_training_chat_template

        trl_template = get_training_chat_template(tokenizer)
    except Exception:  # TRL could not inspect this template
        trl_template = None
    if trl_template and _renders_like(tokenizer, trl_template, rows):
        return LossMask("assistant_only", trl_template, "TRL's generation-tagged training template for this family")
    for name, template in FTLAB_TRAINING_TEMPLATES.items():
        if _renders_like(tokenizer, template, rows):
            return LossMask("assistant_only", template, f"ftlab's generation-tagged {name} training template "
                            "(renders exactly like the model's own)")
    if rows and all(r["messages"] and r["messages"][-1]["role"] == "assistant" for r in rows):
        return LossMask("completion_only", None, "no generation-tagged version of this chat template is known, "
                        "so only the last assistant message of each conversation is trained")
    raise FtlabError("pre-flight: this chat template has no {% generation %} markers and no known training version, "
                     "and some conversations do not end with an assistant message (completion-only loss needs that): "
                     "end every example with the assistant reply, or pass a template with {% generation %}")


def _masked_ids(tokenizer, messages, mask: LossMask) -> tuple[list[int], list[int]]:
    """Token ids of a conversation and which of them the loss sees (1) under ``mask``."""
    if mask.mode == "completion_only":
        prompt = list(tokenizer.apply_chat_template(messages[:-1], tokenize=True, return_dict=True,
                                                    add_generation_prompt=True)["input_ids"])
        ids = list(tokenizer.apply_chat_template(messages, tokenize=True, return_dict=True)["input_ids"])
        n = 0
        while n < min(len(prompt), len(ids)) and prompt[n] == ids[n]:
            n += 1
        return ids, [0] * n + [1] * (len(ids) - n)
    if mask.mode == "all":
        ids = list(tokenizer.apply_chat_template(messages, tokenize=True, return_dict=True)["input_ids"])
        return ids, [1] * len(ids)
    kwargs = {"chat_template": mask.template} if mask.template else {}
    enc = tokenizer.apply_chat_template(messages, tokenize=True, return_dict=True, return_assistant_tokens_mask=True,
                                        **kwargs)
    return list(enc["input_ids"]), list(enc["assistant_masks"])


def preflight_loss_mask(tokenizer, rows: Sequence[dict[str, Any]], *, assistant_only_loss: bool = True,
                        max_length: int = 128, show: int = 1, loss: str = "auto") -> dict[str, Any]:
    """Check which tokens will be trained on, before training. Fails loudly on the two silent killers.

    - every label masked (the chat template has no ``{% generation %}`` block, or max_length cuts the reply);
    - no EOS trained (the model never learns to stop).

    ``loss`` picks the masking (:func:`choose_loss_mask`; ``assistant_only_loss=False`` means ``"all"``).
    Returns ``{"trained_tokens", "total_tokens", "eos_trained", "example", "loss_mask"}`` where ``example``
    shows the first conversation with trained tokens in ``[[...]]`` and ``loss_mask`` is the :class:`LossMask`.
    """
    mask_kind = choose_loss_mask(tokenizer, rows, loss if assistant_only_loss else "all")
    trained = total = 0
    eos_trained = False
    example = ""
    for i, row in enumerate(rows[: max(8, show)]):
        ids, mask = _masked_ids(tokenizer, row["messages"], mask_kind)
        ids, mask = ids[:max_length], mask[:max_length]
        trained += sum(mask)
        total += len(ids)
        eos_trained |= any(m and t == tokenizer.eos_token_id for t, m in zip(ids, mask, strict=True))
        if i < show:
            parts, cur, cur_m = [], [], None
            for t, m in zip(ids, mask, strict=True):
                if cur and m != cur_m:
                    text = tokenizer.decode(cur)
                    parts.append(f"[[{text}]]" if cur_m else text)
                    cur = []
                cur.append(t)
                cur_m = m
            if cur:
                text = tokenizer.decode(cur)
                parts.append(f"[[{text}]]" if cur_m else text)
            example = "".join(parts)
    if trained == 0:
        raise FtlabError(
            "pre-flight: every label is masked, so training would learn nothing. The chat template must mark "
            "assistant turns with {% generation %} for assistant_only_loss=True, and max_length must not cut the replies."
        )
    if not eos_trained:
        raise FtlabError(
            "pre-flight: no EOS token is trained, so the model would never learn to stop. Make the chat template "
            "emit eos_token inside the {% generation %} block of assistant turns."
        )
    return {"trained_tokens": trained, "total_tokens": total, "eos_trained": eos_trained, "example": example,
            "loss_mask": mask_kind}


def heldout_loss(model, tokenizer, rows: Sequence[dict[str, Any]], *, max_length: int = 128, loss: str = "auto",
                 batch_size: int = 8) -> float:
    """Mean cross-entropy per trained token on held-out rows, masked exactly as training masks them
    (:func:`choose_loss_mask`): the same quantity as the trainer's ``eval_loss``, for a model before or after.

    Example: ``heldout_loss(base, tok, eval_rows) > heldout_loss(tuned, tok, eval_rows)`` after a good run.
    """
    import torch

    rows = list(rows)
    kind = choose_loss_mask(tokenizer, rows, loss)
    device = next(model.parameters()).device
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    total, count = 0.0, 0
    was_training = model.training
    model.eval()
    try:
        for start in range(0, len(rows), batch_size):
            encoded = [_masked_ids(tokenizer, r["messages"], kind) for r in rows[start:start + batch_size]]
            encoded = [(ids[:max_length], mask[:max_length]) for ids, mask in encoded]
            width = max(len(ids) for ids, _ in encoded)
            ids = torch.tensor([i + [pad] * (width - len(i)) for i, _ in encoded], device=device)
            att = torch.tensor([[1] * len(i) + [0] * (width - len(i)) for i, _ in encoded], device=device)
            keep = torch.tensor([m + [0] * (width - len(m)) for _, m in encoded], device=device).bool()
            with torch.no_grad():
                logits = model(input_ids=ids, attention_mask=att).logits[:, :-1].float()
            sel = keep[:, 1:]
            total += torch.nn.functional.cross_entropy(logits[sel], ids[:, 1:][sel], reduction="sum").item()
            count += int(sel.sum())
    finally:
        model.train(was_training)
    return total / max(count, 1)


def heldout_metrics(model, tokenizer, rows: Sequence[dict[str, Any]], *, loss_rows: Sequence[dict[str, Any]] | None = None,
                    max_length: int = 128, support_score: bool = False, max_new_tokens: int | None = None
                    ) -> dict[str, Any]:
    """Scores of one model on held-out rows: ``eval_loss`` (:func:`heldout_loss` on ``loss_rows``, default
    ``rows``), ``exact_match`` (normalized reply == the held-out assistant message, ``ftlab.userdata``),
    ``target_accuracy`` (the toy support-reply score, with ``support_score``; else None) and the ``replies``.

    Example: ``heldout_metrics(tuned, tok, test, support_score=True)["target_accuracy"]`` is notebook 04's
    ``target_accuracy_after``.
    """
    from ftlab.generation import chat_generate
    from ftlab.probes import target_accuracy
    from ftlab.userdata import exact_match_rate, reference_reply

    rows = list(rows)
    target = None
    if support_score:
        target, replies = target_accuracy(model, tokenizer, rows, max_new_tokens=max_new_tokens or 32)
    else:
        longest = max(len(tokenizer(reference_reply(r), add_special_tokens=False)["input_ids"]) for r in rows)
        replies = chat_generate(model, tokenizer, [r["messages"] for r in rows], max_new_tokens=max_new_tokens or longest + 8)
    return {"eval_loss": heldout_loss(model, tokenizer, loss_rows if loss_rows is not None else rows, max_length=max_length),
            "exact_match": exact_match_rate(replies, rows), "target_accuracy": target, "replies": replies}
