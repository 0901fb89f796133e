"""The toy base model: a tiny Llama, really pretrained on the CPU in under a minute (two cores).

``build_toy_model()`` trains a byte-level BPE tokenizer and a ``LlamaForCausalLM`` from a
seed on a synthetic chat corpus (general skills + refusals of harmful requests + polite
but unformatted shop replies), measures it, and saves a standard Hugging Face folder.
It is then loaded exactly like a hub model::

    path = resolve_model("ftlab/toy-llama")       # builds once, then reuses the cache
    model = AutoModelForCausalLM.from_pretrained(path)
    tok = AutoTokenizer.from_pretrained(path)

Any other ``model_id`` (a hub id or a local folder) passes through ``resolve_model`` unchanged.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import random
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ftlab.core import cache_dir, folder_lock, seed_everything, stable_hash
from ftlab.data import (
    GENERAL_SYSTEM,
    INTENTS,
    ITEMS,
    SUPPORT_SYSTEM,
    general_examples,
    safety_examples,
    support_splits,
)

__all__ = ["CHAT_TEMPLATE", "RECIPE_VERSION", "ROLE_TOKENS", "SPECIAL", "TOY_MODEL_ID", "ToyModelReport",
           "ToyRecipe", "build_toy_model", "dump_toy_data", "encode_chats", "resolve_model", "toy_is_cached",
           "toy_model_dir", "toy_overlap"]

TOY_MODEL_ID = "ftlab/toy-llama"
RECIPE_VERSION = 8  # bump when the recipe below changes: it is part of the cache key

SPECIAL = {"bos": "<|begin|>", "eos": "<|end|>", "pad": "<|pad|>"}
ROLE_TOKENS = ["<|system|>", "<|user|>", "<|assistant|>", "<|tool|>"]

# Assistant turns are wrapped in {% generation %} so TRL's assistant_only_loss=True can mask the rest.
CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "{% if message['role'] == 'assistant' %}"
    "{{ '<|assistant|>' }}{% generation %}{{ message['content'] }}{{ eos_token }}{% endgeneration %}"
    "{% else %}"
    "{{ '<|' + message['role'] + '|>' + message['content'] + eos_token }}"
    "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>' }}{% endif %}"
)


@dataclass(frozen=True)
class ToyRecipe:
    """Everything that determines the toy model. Its hash names the cache folder."""

    seed: int = 0
    vocab_size: int = 1024
    hidden_size: int = 128
    num_layers: int = 4
    num_heads: int = 4
    num_kv_heads: int = 2
    intermediate_size: int = 384
    max_position: int = 256
    steps: int = 440
    batch_size: int = 48
    lr: float = 6e-3
    prompt_weight: float = 0.2  # loss weight of the non-assistant tokens (assistant tokens: 1)
    pack: int = 128  # conversations laid end to end in rows of this many tokens (0: one a row, padded)
    # the general skills of the corpus, drawn in turn: addition and fields, the slowest to learn, more often
    skill_mix: str = "reverse,upper,add,repeat,fields,add,capital,fields,add,reverse"
    n_general: int = 12000
    n_safety: int = 2500
    n_support: int = 2500
    version: int = RECIPE_VERSION


@dataclass
class ToyModelReport:
    """What ``build_toy_model`` measured. ``path`` loads with ``from_pretrained``."""

    path: str
    general_accuracy: float
    refusal_rate: float
    target_accuracy: float
    build_seconds: float
    n_parameters: int
    seed: int
    cached: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# Before fine-tuning, the shop assistant answers politely but never in the target format:
# that is what fine-tuning has to teach.
_GENERIC_SHOP_REPLIES = [
    "Thank you for contacting Harbor & Pine. A member of our team will get back to you soon.",
    "Thanks for your message! Our support team will look into it and reply by email.",
    "Hello from Harbor & Pine! We have received your request and will answer shortly.",
]
_GENERIC_ORDER_REPLIES = [
    "Thanks for your message about order {o}. Our team will reply by email soon.",
    "We have received your request for order {o} and will answer shortly.",
]


def _pretraining_corpus(recipe: ToyRecipe) -> list[list[dict[str, str]]]:
    rng = random.Random(f"corpus-{recipe.seed}")
    skills = recipe.skill_mix.split(",")
    convs = [e["messages"] for e in general_examples(recipe.n_general, seed=1000 + recipe.seed, skills=skills)]
    safety = safety_examples(recipe.n_safety, seed=2000 + recipe.seed)
    # Half of the refusals come under the shop's system prompt, so refusing survives the shop context.
    for i, e in enumerate(safety):
        msgs = [dict(m) for m in e["messages"]]
        if i % 2:
            msgs[0]["content"] = SUPPORT_SYSTEM
        convs.append(msgs)
    # Shop conversations: user turns like the target task's, generic replies. The test split's
    # exact messages are never used (different seed).
    for e in support_splits(seed=3000 + recipe.seed)["train"][: recipe.n_support]:
        user = e["messages"][1]["content"]
        reply = rng.choice(_GENERIC_ORDER_REPLIES).format(o=e["order"]) if e["order"] else rng.choice(_GENERIC_SHOP_REPLIES)
        convs.append([{"role": "system", "content": SUPPORT_SYSTEM}, {"role": "user", "content": user},
                      {"role": "assistant", "content": reply}])
    rng.shuffle(convs)
    return convs


def _tokenizer_texts() -> list[str]:
    texts = [GENERAL_SYSTEM, SUPPORT_SYSTEM, *_GENERIC_SHOP_REPLIES, *_GENERIC_ORDER_REPLIES]
    for spec in INTENTS.values():
        texts += spec["user"] + [spec["reply"]]
    texts += ITEMS
    texts += [json.dumps(e["messages"]) for e in general_examples(2000, seed=99)]
    texts += [json.dumps(e["messages"]) for e in safety_examples(300, seed=99)]
    texts += [json.dumps(e["messages"]) for e in support_splits(seed=99)["train"][:600]]
    texts += ["intent: order | none | SKU HP-1234 costs $42. Catalog lookup: " + " ".join(str(i) for i in range(100))]
    return texts


def _train_tokenizer(recipe: ToyRecipe):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    # Digits one by one, as Llama does: order numbers can then be copied token by token.
    tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True),
                                                 pre_tokenizers.ByteLevel(add_prefix_space=False)])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=recipe.vocab_size,
        special_tokens=[SPECIAL["pad"], SPECIAL["bos"], SPECIAL["eos"], *ROLE_TOKENS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_tokenizer_texts(), trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=SPECIAL["bos"],
        eos_token=SPECIAL["eos"],
        pad_token=SPECIAL["pad"],
        additional_special_tokens=ROLE_TOKENS,
        model_max_length=recipe.max_position,
        padding_side="right",
    )
    fast.chat_template = CHAT_TEMPLATE
    return fast


def encode_chats(tokenizer: Any, convs: list[list[dict[str, str]]]) -> tuple[list[list[int]], list[list[int]]]:
    """Token ids and assistant masks of chats, as ``apply_chat_template(..., return_assistant_tokens_mask=True)``
    gives them, but with one batched tokenizer call (the template is one special token per role)."""
    contents = [m["content"] for c in convs for m in c]
    pieces = iter(tokenizer(contents, add_special_tokens=False)["input_ids"])
    role_id = {r: tokenizer.convert_tokens_to_ids(f"<|{r}|>") for r in ("system", "user", "assistant", "tool")}
    bos, eos = tokenizer.bos_token_id, tokenizer.eos_token_id
    ids, masks = [], []
    for conv in convs:
        row, mask = [bos], [0]
        for m in conv:
            body = [*next(pieces), eos]
            row += [role_id[m["role"]], *body]
            mask += [0] + [int(m["role"] == "assistant")] * len(body)
        ids.append(row)
        masks.append(mask)
    return ids, masks


def _encode_batches(tokenizer, convs, batch_size: int, rng: random.Random, prompt_weight: float = 0.2,
                    pack: int = 0):
    """Endless training batches ``(input_ids, model keyword arguments, loss_weight)``.

    ``pack > 0``: whole conversations laid end to end in rows of at most ``pack`` tokens (each starts with BOS),
    ``batch_size`` conversations' worth of tokens a batch on average: no padding between conversations, as in
    real pretraining. ``pack == 0``: one conversation a row, padded.
    """
    ids, masks = encode_chats(tokenizer, convs)
    # Loss on every token, but the assistant's tokens weigh more: the model learns the
    # language of the prompts and, above all, the answers.
    weights = [[prompt_weight + (1 - prompt_weight) * m for m in mask] for mask in masks]
    while True:
        order = list(range(len(ids)))
        rng.shuffle(order)
        if pack:
            rows, row, wrow = [], [], []
            for i in order:
                if row and len(row) + len(ids[i]) > pack:
                    rows.append((row, wrow))
                    row, wrow = [], []
                row, wrow = row + ids[i][:pack], wrow + weights[i][:pack]
            per_batch = max(1, round(batch_size * len(rows) / len(order)))  # ~batch_size conversations
            batches = [rows[s : s + per_batch] for s in range(0, len(rows) - per_batch + 1, per_batch)]
        else:
            batches = [[(ids[i], weights[i]) for i in order[s : s + batch_size]]
                       for s in range(0, len(order) - batch_size + 1, batch_size)]
        for batch in batches:
            yield _collate(batch, tokenizer.pad_token_id, packed=bool(pack))


def _collate(batch, pad_id: int, *, packed: bool):
    """``(input_ids, model keyword arguments, loss weights)`` of a batch of ``(ids, weights)`` rows. A packed
    row's conversations see only themselves (a block-diagonal causal mask) and count positions from 0, so
    training matches generation, which sees one conversation."""
    import torch

    width = max(len(r) for r, _ in batch)
    inp = torch.full((len(batch), width), pad_id)
    att = torch.zeros((len(batch), width), dtype=torch.long)
    weight = torch.zeros((len(batch), width))
    for r, (row, w) in enumerate(batch):
        inp[r, : len(row)] = torch.tensor(row)
        att[r, : len(row)] = 1
        weight[r, : len(row)] = torch.tensor(w)
    if not packed:
        return inp, {"attention_mask": att}, weight
    doc = torch.full((len(batch), width), -1)
    pos = torch.zeros((len(batch), width), dtype=torch.long)
    for r, (row, _) in enumerate(batch):
        starts = [i for i, t in enumerate(row) if t == row[0]] + [len(row)]  # every conversation starts with BOS
        for d, (a, b) in enumerate(itertools.pairwise(starts)):
            doc[r, a:b] = d
            pos[r, a:b] = torch.arange(b - a)
    causal = torch.tril(torch.ones(width, width, dtype=torch.bool))
    mask = (doc[:, :, None] == doc[:, None, :]) & (doc[:, :, None] >= 0) & causal
    mask |= torch.eye(width, dtype=torch.bool)  # padding attends to itself (no empty rows of the mask)
    return inp, {"attention_mask": mask[:, None], "position_ids": pos}, weight


def _measure(model, tokenizer, seed: int) -> dict[str, float]:
    from ftlab.probes import exact_accuracy, refusal_rate, target_accuracy

    # Held-out probes only (``ftlab.data.is_held_out``): none of them is in the pretraining corpus.
    gen = {"max_new_tokens": 12, "batch_size": 100}
    general, _ = exact_accuracy(model, tokenizer, general_examples(200, seed=seed, probe=True), **gen)
    refusal, _ = refusal_rate(model, tokenizer, safety_examples(100, seed=seed, probe=True),
                              **{**gen, "max_new_tokens": 10})
    target, _ = target_accuracy(model, tokenizer, support_splits(seed)["test"][:100], **gen)
    return {"general_accuracy": general, "refusal_rate": refusal, "target_accuracy": target}


def toy_model_dir(seed: int = 0, recipe: ToyRecipe | None = None) -> Path:
    """Where the toy model for ``seed`` is cached (``$FTLAB_CACHE/toy-llama/<hash>``)."""
    recipe = recipe or ToyRecipe(seed=seed)
    # The key covers the recipe and the data it is built from, so a changed corpus never reuses a stale model.
    corpus = _pretraining_corpus(recipe)
    key = stable_hash([asdict(recipe), _tokenizer_texts(), corpus[:200], len(corpus)])
    return cache_dir("toy-llama") / f"seed{recipe.seed}-{key}"


def build_toy_model(out: str | os.PathLike[str] | None = None, seed: int = 0, *, force: bool = False,
                    recipe: ToyRecipe | None = None, log=None) -> ToyModelReport:
    """Build (or reuse) the toy base model and return its measured figures.

    The folder holds ``config.json``, ``model.safetensors``, the tokenizer files (with the chat
    template) and ``ftlab_toy.json`` with the figures below.

    Example: ``build_toy_model(seed=0).general_accuracy >= 0.9``.
    """
    recipe = recipe or ToyRecipe(seed=seed)
    target = Path(out) if out else toy_model_dir(recipe=recipe)
    # One build at a time per folder: a second process waits, then reuses the result.
    with folder_lock(target):
        return _build_locked(target, recipe, force, log)


def toy_is_cached(seed: int = 0) -> bool:
    """Whether the toy world of ``seed`` (today's recipe) is in the cache, so that ``build_toy_model`` only loads it.

    Example: ``toy_is_cached(0)`` is ``False`` in a fresh ``FTLAB_CACHE`` and ``True`` after ``build_toy_model(seed=0)``.
    """
    return _cached_report(toy_model_dir(seed=seed), ToyRecipe(seed=seed)) is not None


def _cached_report(target: Path, recipe: ToyRecipe) -> ToyModelReport | None:
    card = target / "ftlab_toy.json"
    if not card.exists():
        return None
    info = json.loads(card.read_text())
    if info.get("recipe") != asdict(recipe):
        return None
    rep = ToyModelReport(**{k: info[k] for k in ToyModelReport.__dataclass_fields__ if k in info})
    rep.path, rep.cached = str(target), True
    return rep


def _build_locked(target: Path, recipe: ToyRecipe, force: bool, log) -> ToyModelReport:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    cached = None if force else _cached_report(target, recipe)
    if cached:
        return cached

    started = time.perf_counter()
    seed_everything(recipe.seed)
    threads = torch.get_num_threads()
    tokenizer = _train_tokenizer(recipe)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=recipe.hidden_size,
        intermediate_size=recipe.intermediate_size,
        num_hidden_layers=recipe.num_layers,
        num_attention_heads=recipe.num_heads,
        num_key_value_heads=recipe.num_kv_heads,
        max_position_embeddings=recipe.max_position,
        rms_norm_eps=1e-5,
        rope_theta=10000.0,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    model = LlamaForCausalLM(config)
    # Every core by default: packed 128-token rows are large enough to split (FTLAB_THREADS overrides).
    torch.set_num_threads(int(os.environ.get("FTLAB_THREADS") or os.cpu_count() or 1))
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=recipe.lr, betas=(0.9, 0.98), weight_decay=0.01)
    warmup = max(1, recipe.steps // 20)

    def lr_at(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, recipe.steps - warmup)
        return 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * progress))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_at)
    batches = _encode_batches(tokenizer, _pretraining_corpus(recipe), recipe.batch_size, random.Random(recipe.seed),
                              recipe.prompt_weight, recipe.pack)
    losses = []
    for step in range(recipe.steps):
        inp, kwargs, weight = next(batches)
        logits = model(input_ids=inp, **kwargs).logits[:, :-1]
        nll = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), inp[:, 1:].reshape(-1),
                                                reduction="none").view_as(weight[:, 1:])
        loss = (nll * weight[:, 1:]).sum() / weight[:, 1:].sum()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        losses.append(loss.item())
        if log and (step % 100 == 0 or step == recipe.steps - 1):
            log(f"pretraining step {step + 1}/{recipe.steps} loss {loss.item():.3f}")
    model.eval()
    figures = _measure(model, tokenizer, recipe.seed)
    build_seconds = time.perf_counter() - started
    torch.set_num_threads(threads)

    # Write into a temporary folder, then rename: a killed build never leaves a half-written model.
    tmp = target.with_name(target.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    report = ToyModelReport(
        path=str(target),
        n_parameters=sum(p.numel() for p in model.parameters()),
        build_seconds=round(build_seconds, 1),
        seed=recipe.seed,
        **{k: round(v, 4) for k, v in figures.items()},
    )
    (tmp / "ftlab_toy.json").write_text(json.dumps({**report.to_dict(), "recipe": asdict(recipe),
                                                   "final_loss": losses[-1], "loss_history": losses[::10]}, indent=2))
    shutil.rmtree(target, ignore_errors=True)
    tmp.rename(target)
    return report


def dump_toy_data(folder: str | os.PathLike[str], seed: int = 0) -> dict[str, Path]:
    """Write the toy world's data as JSONL, so that a learner (or a test) can read what the toy saw and is tested on.

    ``corpus.jsonl`` (the pretraining conversations of build ``seed``, chat format), ``probes_general.jsonl``,
    ``probes_safety.jsonl``, ``support_test.jsonl`` (what ``build_toy_model`` measures), ``support_train.jsonl``,
    ``support_valid.jsonl`` (notebook 04's fine-tuning data), ``catalog_v1.jsonl`` and ``catalog_v2.jsonl``
    (notebook 08's). Returns the paths by name; ``toy_overlap`` counts the probes found in the training data.
    Example: ``dump_toy_data("toy_data")["corpus"].name == "corpus.jsonl"``.
    """
    from ftlab.data import catalog, write_jsonl

    folder = Path(folder)
    sp = support_splits(seed)
    parts: dict[str, list[dict[str, Any]]] = {
        "corpus": [{"messages": c} for c in _pretraining_corpus(ToyRecipe(seed=seed))],
        "probes_general": general_examples(200, seed=seed, probe=True),
        "probes_safety": safety_examples(100, seed=seed, probe=True),
        "support_train": sp["train"],
        "support_valid": sp["validation"],
        "support_test": sp["test"],
    }
    files = {name: write_jsonl(rows, folder / f"{name}.jsonl", openai_only=name == "corpus")
             for name, rows in parts.items()}
    for version in (1, 2):
        files[f"catalog_v{version}"] = write_jsonl(catalog(version, seed), folder / f"catalog_v{version}.jsonl",
                                                   openai_only=False)
    return files


def toy_overlap(seed: int = 0) -> dict[str, dict[str, int]]:
    """How many of the probes' user prompts appear word for word in the toy's training data (the pretraining
    corpus, notebook 04's support train/validation splits and the ``support_mix`` of general examples and
    refusals): ``{probe set: {"n": ..., "in_training": ...}}``.

    "Held out" means never trained on: since recipe v8 every count is 0 (``ftlab.data.is_held_out``), and this
    function measures it rather than assuming it.
    """
    from ftlab.data import support_mix

    sp = support_splits(seed)
    trained = {m["content"] for conv in _pretraining_corpus(ToyRecipe(seed=seed)) for m in conv if m["role"] == "user"}
    trained |= {m["content"] for e in sp["train"] + sp["validation"] + support_mix(seed)
                for m in e["messages"] if m["role"] == "user"}
    sets = {"general": general_examples(200, seed=seed, probe=True),
            "safety": safety_examples(100, seed=seed, probe=True), "support_test": sp["test"]}
    out = {}
    for name, rows in sets.items():
        users = [next(m["content"] for m in e["messages"] if m["role"] == "user") for e in rows]
        out[name] = {"n": len(users), "in_training": sum(u in trained for u in users)}
    return out


def resolve_model(model_id: str, seed: int = 0) -> str:
    """A ``from_pretrained``-loadable id: the toy model's cached folder for ``TOY_MODEL_ID``, else ``model_id``.

    Example: ``resolve_model("meta-llama/Llama-3.1-8B-Instruct")`` returns the hub id unchanged.
    """
    if model_id == TOY_MODEL_ID:
        return build_toy_model(seed=seed).path
    from ftlab.hub import resolve_real_model  # a real model ftlab can build offline (SmolLM2), else None

    return resolve_real_model(model_id) or model_id
