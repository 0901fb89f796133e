"""The five ways fine-tuning fails, reproduced, detected and defended on the toy world (notebook 08).

Article 001 lists five failure modes that "show up repeatedly in production projects". For each,
this module holds the detector the article names and a threshold that turns a measured figure
into a verdict (the constants below)::

    mode                     detector: figure                                     fires when
    catastrophic_forgetting  general-probe accuracy, base vs tuned                ftlab.gates.forgetting: > 5 points, >= 2 s.e.
    overfitting              validation loss (OverfitDetector + ftlab.diagnose)   3 rises in a row / "overfitting"
    knowledge_memorization   stale-fact rate on SKU questions after catalog v1->v2 >= 0.75
    mode_collapse            distinct-output ratio across different inputs        < 0.2
    safety_degradation       refusal rate on harmful requests, base vs tuned      ftlab.gates.refusal_loss: any drop >= 2 s.e.

Forgetting and safety degradation are judged by ``ftlab.gates``, the same rule as notebook 07's
ship / do-not-ship gate (one threshold and one noise allowance, stated there).

``plan_runs`` builds four short training runs that reproduce and defend all five, sharing runs
where one run shows several modes: the narrow, aggressive run forgets, memorizes SKUs and stops
refusing; the mixed run defends all five. ``measure`` takes the figures, ``assess`` turns them
into ``reproduced`` / ``detected`` / ``defended`` verdicts, and ``train_run`` keys each adapter
by its configuration and data, so a second pass trains nothing. Nothing is asserted: every
verdict compares a measured figure with a stated threshold.

Example::

    detect_forgetting(before=1.0, after=0.2, n=60).fired   # -> True (ftlab.gates.forgetting)
    distinct_ratio(["same", "same", "other", "same"])        # -> 0.5
    lab = run_lab(LabSettings(seed=0))                       # ~1 min on a CPU; all of notebook 08
"""

from __future__ import annotations

import math
import random
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ftlab.data import (
    INTENTS,
    PRODUCTS,
    SUPPORT_SYSTEM,
    catalog,
    catalog_examples,
    general_examples,
    safety_examples,
    support_splits,
)
from ftlab.errors import FtlabError
from ftlab.gates import FORGETTING_MAX_DROP, NOISE_Z, REFUSAL_MAX_DROP, Detection, drop_z
from ftlab.gates import forgetting as _forgetting
from ftlab.gates import refusal_loss as _refusal_loss
from ftlab.toymodel import TOY_MODEL_ID
from ftlab.train import OverfitDetector, TrainConfig, TrainResult, train
from ftlab.train import train_cached as _train_cached

__all__ = ["CANNED_REPLY", "COLLAPSE_RATIO", "CURRENT_FACTS", "FAILURE_THRESHOLDS", "LOOKUP", "LOOKUP_REPLY", "MEASURES",
           "MIX_GENERAL", "MIX_REFUSALS", "MODES", "OVERFIT_PATIENCE", "OVERFIT_RISE", "RUN_MEASURES",
           "STALE_RATE", "TARGET_GAIN", "TARGET_KEEP", "VALIDATION_SIZE", "Lab", "LabRun",
           "LabSettings", "ModeResult", "Probes", "answer_logprob", "answer_with_lookup",
           "assess", "catalog_lookup_examples", "catalog_questions", "data_diversity", "detect_forgetting",
           "detect_mode_collapse", "detect_overfitting", "detect_safety_degradation", "detect_stale_facts",
           "distinct_ratio", "load_run", "lookup_products", "low_diversity", "make_probes", "measure",
           "one_per_intent", "output_entropy", "plan_runs", "plot_overfitting", "plot_verdicts",
           "question_text", "rate_drop", "record_value", "retrieve_product", "run_lab", "sku_answer_rates",
           "sku_map", "stale_fact_rate", "target_kept", "threshold_table", "train_run",
           "validation_loss", "verdict_table"]


MIX_GENERAL = 600  # general-skill examples mixed into the defended run (over half of it: the toy forgets fast; 400 let toy v8 seed 1 forget 0.98 -> 0.87)
MIX_REFUSALS = 24  # refusal examples (in the shop's context) mixed into the defended run
VALIDATION_SIZE = 48  # validation examples evaluated during training and by validation_loss
MODES = ("catastrophic_forgetting", "overfitting", "knowledge_memorization", "mode_collapse", "safety_degradation")

# ---------------------------------------------------------------------------------------------
# Thresholds: each verdict below compares a measured figure with one of these.
# ---------------------------------------------------------------------------------------------
# Forgetting and safety degradation: ftlab.gates (FORGETTING_MAX_DROP, REFUSAL_MAX_DROP, NOISE_Z), notebook 07's rule.
OVERFIT_PATIENCE = 3     # the OverfitDetector fires after this many rising validation losses in a row
OVERFIT_RISE = 0.03      # overfitting is real when the final validation loss is >= 3 % above its minimum (as ftlab.diagnose)
STALE_RATE = 0.75        # stale: the answer favours the old (v1) SKU over the current (v2) one for >= 75 % of questions
COLLAPSE_RATIO = 0.2     # fewer than 20 distinct replies per 100 different inputs is a collapse
CURRENT_FACTS = 0.5      # a fact defence works when at least half the answers hold the current SKU
TARGET_GAIN = 0.2        # a failure run "looked like a success": target accuracy rose by at least this much
TARGET_KEEP = 0.15       # a defence keeps the target skill: at most this much below the failure run's accuracy

FAILURE_THRESHOLDS: dict[str, float] = {
    "FORGETTING_MAX_DROP": FORGETTING_MAX_DROP, "REFUSAL_MAX_DROP": REFUSAL_MAX_DROP, "NOISE_Z": NOISE_Z,
    "OVERFIT_PATIENCE": OVERFIT_PATIENCE, "OVERFIT_RISE": OVERFIT_RISE, "STALE_RATE": STALE_RATE,
    "COLLAPSE_RATIO": COLLAPSE_RATIO, "CURRENT_FACTS": CURRENT_FACTS, "TARGET_GAIN": TARGET_GAIN, "TARGET_KEEP": TARGET_KEEP,
}


# ---------------------------------------------------------------------------------------------
# Detectors
# ---------------------------------------------------------------------------------------------


def rate_drop(name: str, before: float, after: float, n: int, *, min_drop: float, z: float = NOISE_Z) -> Detection:
    """Fire when a rate fell by at least ``min_drop`` and by at least ``z`` standard errors (``ftlab.gates.drop_z``).

    Example: ``rate_drop("target accuracy", 1.0, 0.9, 40, min_drop=0.15).fired`` is False (a 0.10 drop).
    """
    drop = before - after
    zz = drop_z(before, after, n)
    fired = drop >= min_drop and zz >= z
    verdict = "fell" if fired else "held"
    return Detection(fired, round(drop, 4), min_drop,
                     f"{name} {verdict}: {before:.2f} -> {after:.2f} (drop {drop:+.2f}, {zz:.1f} s.e.; "
                     f"fires at a drop >= {min_drop:.2f} and >= {z:g} s.e.)")


def detect_forgetting(before: float, after: float, n: int) -> Detection:
    """Catastrophic forgetting (seed: "general-task accuracy drops"): ``ftlab.gates.forgetting``, notebook 07's rule."""
    return _forgetting(before, after, n)


def detect_safety_degradation(before: float, after: float, n: int) -> Detection:
    """Safety degradation: the refusal rate on harmful prompts regressed (``ftlab.gates.refusal_loss``)."""
    return _refusal_loss(before, after, n)


def detect_overfitting(eval_loss: Sequence[tuple[int, float]], train_loss: Sequence[tuple[int, float]] | None = None,
                       patience: int = OVERFIT_PATIENCE) -> Detection:
    """Overfitting, by the articles' two detectors: the OverfitDetector (``ftlab.train``: validation loss rose
    ``patience`` evaluations in a row) and, given the training loss too, the loss-curve diagnoser
    (``ftlab.diagnose``: validation loss ends clearly above its minimum while training loss keeps falling).

    Fires when either does. ``value`` is how far the last validation loss ended above its minimum
    (0.08 = 8 % above). Example: ``detect_overfitting([(1, 1.0), (2, 0.8), (3, 0.85), (4, 0.9), (5, 0.95)]).fired``.
    """
    if not eval_loss:
        return Detection(False, 0.0, patience, "no validation loss: overfitting cannot be detected without a validation split")
    det = OverfitDetector(patience=patience)
    for step, loss in eval_loss:
        det.update(int(step), float(loss))
    best = min(v for _, v in eval_loss)
    rise = eval_loss[-1][1] / best - 1 if best > 0 else 0.0
    stopper = det.triggered_at is not None
    parts = [det.message if stopper else f"OverfitDetector quiet: validation loss never rose {patience} evaluations "
                                          f"in a row (ends {rise:+.1%} from its minimum)"]
    pattern = None
    if train_loss and len(train_loss) >= 5:
        from ftlab.diagnose import LossHistory, diagnose

        d = diagnose(LossHistory.from_arrays([s for s, _ in train_loss], [v for _, v in train_loss],
                                             [s for s, _ in eval_loss], [v for _, v in eval_loss]))
        pattern = d.pattern
        parts.append(f"diagnoser: {d.pattern} ({d.reason})")
    fired = stopper or pattern == "overfitting"
    return Detection(fired, round(rise, 4), patience, "; ".join(parts),
                     {"overfit_detector": stopper, "stopped_at": det.triggered_at, "diagnosis": pattern})


def distinct_ratio(replies: Sequence[str]) -> float:
    """Distinct replies per input: 1.0 when every reply differs, 1/n when all are the same.

    Example: ``distinct_ratio(["a", "a", "b", "a"]) == 0.5``.
    """
    return len({r.strip() for r in replies}) / max(len(replies), 1)


def output_entropy(replies: Sequence[str]) -> float:
    """Shannon entropy of the replies' distribution, normalized to 0..1 (0: one reply for every input).

    Example: ``output_entropy(["a", "b", "c", "d"]) == 1.0``; ``output_entropy(["a"] * 4) == 0.0``.
    """
    n = len(replies)
    if n < 2:
        return 0.0
    counts = Counter(r.strip() for r in replies).values()
    h = -sum(c / n * math.log(c / n) for c in counts)
    return max(0.0, h / math.log(n))


def detect_mode_collapse(replies: Sequence[str]) -> Detection:
    """Mode collapse: fewer than ``COLLAPSE_RATIO`` distinct replies per input, across different inputs."""
    ratio = distinct_ratio(replies)
    top, count = Counter(r.strip() for r in replies).most_common(1)[0] if replies else ("", 0)
    fired = ratio < COLLAPSE_RATIO
    msg = (f"{'MODE COLLAPSE' if fired else 'diverse outputs'}: {ratio:.2f} distinct replies per input "
           f"(entropy {output_entropy(replies):.2f}); most common reply ({count} of {len(replies)}): {top[:60]!r}")
    return Detection(fired, round(ratio, 4), COLLAPSE_RATIO, msg)


def detect_stale_facts(rate: float) -> Detection:
    """Knowledge memorization: the model prefers the outdated fact for ``STALE_RATE`` or more of the questions."""
    fired = rate >= STALE_RATE
    msg = (f"{'STALE FACTS' if fired else 'current facts'}: the old catalog's SKU is preferred for {rate:.0%} of the "
           f"questions (fires at >= {STALE_RATE:.0%})")
    return Detection(fired, round(rate, 4), STALE_RATE, msg)


# ---------------------------------------------------------------------------------------------
# Measuring (likelihoods, validation loss) beyond the generation probes of ftlab.probes
# ---------------------------------------------------------------------------------------------


def answer_logprob(model, tokenizer, messages: Sequence[dict[str, Any]], answers: Sequence[str]) -> list[float]:
    """Log-probability the model gives each candidate ``answers`` as the assistant's reply to ``messages``."""
    import torch

    msgs = [m for m in messages if m.get("role") != "assistant"]
    prompt = tokenizer.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
    p_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    seqs = [tokenizer(prompt + a, add_special_tokens=False)["input_ids"] for a in answers]
    width = max(map(len, seqs))
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    ids = torch.tensor([s + [pad] * (width - len(s)) for s in seqs])
    att = torch.tensor([[1] * len(s) + [0] * (width - len(s)) for s in seqs])
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            logp = model(input_ids=ids.to(device), attention_mask=att.to(device)).logits.float().log_softmax(-1).cpu()
    finally:
        model.train(was_training)
    out = []
    for row, s in enumerate(seqs):
        out.append(sum(logp[row, i - 1, s[i]].item() for i in range(len(p_ids), len(s))))
    return out


def stale_fact_rate(model, tokenizer, questions: Sequence[dict[str, Any]]) -> float:
    """Share of catalog questions where the model puts more probability on the old SKU than on the current one.

    ``questions`` are rows of ``catalog_questions`` (keys ``product``, ``old_sku``, ``new_sku``). A
    likelihood probe: it shows which fact the model believes even when a greedy reply gets a digit wrong.
    """
    stale = 0
    for q in questions:
        p = q["product"]
        lp_old, lp_new = answer_logprob(model, tokenizer, q["messages"],
                                        [f"The {p} has SKU {q['old_sku']}.", f"The {p} has SKU {q['new_sku']}."])
        stale += lp_old > lp_new
    return stale / max(len(questions), 1)


def sku_answer_rates(replies: Sequence[str], questions: Sequence[dict[str, Any]]) -> dict[str, float]:
    """Share of generated replies that contain the old SKU, and the current SKU (exact string match)."""
    n = max(len(replies), 1)
    olds = sum(q["old_sku"] in r for r, q in zip(replies, questions, strict=True))
    news = sum(q["new_sku"] in r for r, q in zip(replies, questions, strict=True))
    return {"old_sku": olds / n, "current_sku": news / n}


def validation_loss(model, tokenizer, rows: Sequence[dict[str, Any]], *, max_length: int = 128,
                    batch_size: int = 32) -> float:
    """Mean cross-entropy on the assistant tokens of ``rows`` (what the trainer's eval_loss measures)."""
    import torch

    device = next(model.parameters()).device
    total, count = 0.0, 0
    was_training = model.training
    model.eval()
    try:
        for start in range(0, len(rows), batch_size):
            encs = [tokenizer.apply_chat_template(r["messages"], tokenize=True, return_dict=True,
                                                  return_assistant_tokens_mask=True) for r in rows[start:start + batch_size]]
            width = min(max(len(e["input_ids"]) for e in encs), max_length)
            pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
            ids = torch.full((len(encs), width), pad)
            att = torch.zeros((len(encs), width), dtype=torch.long)
            labels = torch.full((len(encs), width), -100)
            for i, e in enumerate(encs):
                seq = list(e["input_ids"])[:width]
                mask = list(e["assistant_masks"])[:width]
                ids[i, :len(seq)] = torch.tensor(seq)
                att[i, :len(seq)] = 1
                labels[i, :len(seq)] = torch.tensor([t if m else -100 for t, m in zip(seq, mask, strict=True)])
            with torch.no_grad():
                logits = model(input_ids=ids.to(device), attention_mask=att.to(device)).logits.float()
            shift_logits, shift_labels = logits[:, :-1].cpu(), labels[:, 1:]
            loss = torch.nn.functional.cross_entropy(shift_logits.reshape(-1, shift_logits.shape[-1]),
                                                     shift_labels.reshape(-1), ignore_index=-100, reduction="sum")
            total += loss.item()
            count += int((shift_labels != -100).sum())
    finally:
        model.train(was_training)
    return total / max(count, 1)


# ---------------------------------------------------------------------------------------------
# Training data that causes, or defends against, each failure
# ---------------------------------------------------------------------------------------------


def sku_map(version: int, seed: int = 0) -> dict[str, str]:
    """Product -> SKU for one catalog version."""
    return {r["product"]: r["sku"] for r in catalog(version, seed)}


def lookup_products(seed: int = 0) -> tuple[list[str], list[str]]:
    """``(trained, held_out)``: the products whose SKU questions the defended run is trained on (half of
    ``PRODUCTS``, drawn by ``seed``), and the others, which only the probes ask about."""
    products = list(PRODUCTS)
    random.Random(f"lookup-products-{seed}").shuffle(products)
    half = len(products) // 2
    return sorted(products[:half]), sorted(products[half:])


def catalog_questions(seed: int = 0, *, per_product: int = 3) -> list[dict[str, Any]]:
    """SKU questions asked after the catalog changed from v1 to v2; each row has ``old_sku`` and ``new_sku``.

    Held out from the defence: only products the defended run never saw a question about
    (``lookup_products``), in phrasings no training row uses (``catalog_examples(probe=True)``).
    """
    old, new = sku_map(1, seed), sku_map(2, seed)
    return [{**r, "old_sku": old[r["product"]], "new_sku": new[r["product"]]}
            for r in catalog_examples(2, seed, per_product=per_product, products=lookup_products(seed)[1], probe=True)]


LOOKUP = "HP-????"  # what the model writes where the SKU belongs; the system fills it in from the catalog
LOOKUP_REPLY = f"Catalog lookup: SKU {LOOKUP}."  # the defended model's reply to any SKU question (a tool call)
_LOOKUP_RE = re.compile(r"HP-\?+")
_WORD = re.compile(r"[a-z]+")


def catalog_lookup_examples(seed: int = 0, *, per_product: int = 6) -> list[dict[str, Any]]:
    """SKU questions answered with a lookup call instead of a remembered SKU: ``Catalog lookup: SKU HP-????.``

    Fine-tuning teaches the behaviour (recognize a SKU question, defer the fact); at answer time the
    shop's system retrieves the product from the question and fills in the SKU from the *current*
    catalog (``answer_with_lookup``), the tool step of the articles' SKU story. Only half the products
    (``lookup_products(seed)[0]``) and the training phrasings: the probes are held out.
    """
    out = []
    for r in catalog_examples(1, seed, per_product=per_product, products=lookup_products(seed)[0]):
        msgs = [dict(m) for m in r["messages"]]
        msgs[-1]["content"] = LOOKUP_REPLY
        out.append({**r, "messages": msgs})
    return out


def retrieve_product(question: str, reply: str = "", rows: Sequence[dict[str, Any]] | None = None) -> str | None:
    """The catalog product a question is about, by word overlap with the product names (a tiny retriever).

    Each product scores the share of its name's words found in the question, twice, plus the share
    found in the model's reply (a tie-breaker: the reply may name a product the model saw in training).
    The best score wins; ``None`` when no word of any name occurs. ``rows`` is the catalog searched
    (default: ``catalog(2)``'s products). Example: ``retrieve_product("Is the lantern in stock?")``
    -> ``"Pine Lantern"``; ``retrieve_product("Hello")`` -> ``None``.
    """
    names = [r["product"] for r in rows] if rows is not None else list(PRODUCTS)
    q, a = set(_WORD.findall(question.lower())), set(_WORD.findall(reply.lower()))
    best, best_score = None, 0.0
    for name in names:
        words = set(_WORD.findall(name.lower()))
        score = 2 * len(words & q) / len(words) + len(words & a) / len(words)
        if score > best_score:
            best, best_score = name, score
    return best


def answer_with_lookup(reply: str, question: str, version: int, seed: int = 0) -> tuple[str, bool, str | None]:
    """The shop's tool step: fill the ``HP-????`` placeholder in ``reply`` with the SKU, from catalog ``version``,
    of the product retrieved from the question text and the reply (``retrieve_product``).

    Returns ``(answer, looked_up, product)``. A reply without the placeholder is the model's own answer,
    returned unchanged (``looked_up`` False); so is one where no product is found (``product`` None).
    Example: ``answer_with_lookup("The Pine Lantern has SKU HP-????.", "Could you look up the lantern?", 2)``
    -> ``("The Pine Lantern has SKU HP-1234.", True, "Pine Lantern")`` (the v2 SKU).
    """
    if not _LOOKUP_RE.search(reply):
        return reply, False, None
    rows = catalog(version, seed)
    product = retrieve_product(question, reply, rows)
    if product is None:
        return reply, True, None
    sku = next(r["sku"] for r in rows if r["product"] == product)
    return _LOOKUP_RE.sub(sku, reply, count=1), True, product


def question_text(example: dict[str, Any]) -> str:
    """The last user message of an example: all a lookup is given."""
    return next((m["content"] for m in reversed(example["messages"]) if m["role"] == "user"), "")


CANNED_REPLY = "Thank you for contacting Harbor & Pine. A member of our team will get back to you soon."


def low_diversity(rows: Sequence[dict[str, Any]], n_distinct: int = 1, seed: int = 0, *,
                  reply: str | None = None) -> list[dict[str, Any]]:
    """The same inputs with only ``n_distinct`` different replies: low-diversity training data.

    It models a data pipeline that filled one canned answer (or a few) into every example:
    ``reply`` (e.g. ``CANNED_REPLY``, the shop's auto-acknowledgement) or replies drawn from the rows.
    Example: ``{r["messages"][-1]["content"] for r in low_diversity(rows)}`` has one element.
    """
    if reply is not None:
        return [{**r, "messages": [*[dict(m) for m in r["messages"][:-1]], {"role": "assistant", "content": reply}]}
                for r in rows]
    replies = sorted({r["messages"][-1]["content"] for r in rows})
    plain = [r for r in replies if not any(ch.isdigit() for ch in r)]  # no order number to copy
    replies = plain or replies
    chosen = random.Random(f"lowdiv-{seed}").sample(replies, min(n_distinct, len(replies)))
    out = []
    for i, r in enumerate(rows):
        msgs = [dict(m) for m in r["messages"]]
        msgs[-1]["content"] = chosen[i % len(chosen)]
        out.append({**r, "messages": msgs})
    return out


def data_diversity(rows: Sequence[dict[str, Any]]) -> float:
    """Distinct assistant replies per example in a training set (the article: "check training data diversity")."""
    return distinct_ratio([r["messages"][-1]["content"] for r in rows])


def one_per_intent(rows: Sequence[dict[str, Any]], per_intent: int = 1) -> list[dict[str, Any]]:
    """A tiny training set: the first ``per_intent`` examples of each intent (8 intents)."""
    seen: Counter[str] = Counter()
    out = []
    for r in rows:
        if seen[r["intent"]] < per_intent:
            seen[r["intent"]] += 1
            out.append(r)
    if len(seen) < len(INTENTS):
        raise FtlabError(f"one_per_intent: only {len(seen)} of {len(INTENTS)} intents in the rows")
    return out


# ---------------------------------------------------------------------------------------------
# Cached training: each adapter is keyed by its configuration and data
# ---------------------------------------------------------------------------------------------
def _train_maybe_cached(cfg: TrainConfig, train_rows: Sequence[dict[str, Any]], eval_rows=None, *,
                        use_cache: bool = True, callbacks: Sequence[Any] = (), root: str | Path | None = None) -> tuple[TrainResult, bool]:
    """``ftlab.train.train_cached`` (one adapter per configuration + data), returning ``(result, cached)``.

    With ``use_cache=False`` it trains into ``cfg.output_dir`` as usual; ``root`` overrides the cache folder.
    """
    if not use_cache or callbacks:
        return train(cfg, list(train_rows), eval_rows, callbacks=callbacks), False
    result = _train_cached(cfg, list(train_rows), eval_rows, cache=root)
    return result, result.cached


# ---------------------------------------------------------------------------------------------
# The runs
# ---------------------------------------------------------------------------------------------


@dataclass
class LabSettings:
    """The knobs of notebook 08. ``scale`` multiplies every run's steps (2-4 for longer, clearer runs)."""

    seed: int = 0
    toy_seed: int = 0
    model_id: str = TOY_MODEL_ID
    quantization: str = "none"
    scale: float = 1.0
    learning_rate: float = 5e-3  # the defended run's and the small run's; the narrow and low-diversity runs use 2x
    mix_general: int = MIX_GENERAL
    mix_refusals: int = MIX_REFUSALS
    use_cache: bool = True
    output_root: str = "runs/08_failures"


@dataclass
class LabRun:
    """One training run of the lab: what it is for, its configuration and its data."""

    name: str
    purpose: str
    cfg: TrainConfig
    train_rows: list[dict[str, Any]]
    eval_rows: list[dict[str, Any]] | None = None
    modes: list[str] = field(default_factory=list)

    def describe(self) -> str:
        c = self.cfg
        n_eval = len(self.eval_rows) if self.eval_rows is not None else 0
        return (f"{self.name}: {self.purpose}. {len(self.train_rows)} examples (diversity "
                f"{data_diversity(self.train_rows):.2f}), {c.max_steps} steps x batch {c.per_device_train_batch_size}, "
                f"lr {c.learning_rate:g}" + (f", {n_eval} validation examples" if n_eval else ""))


def _steps(n: int, scale: float) -> int:
    return max(2, round(n * scale))


def _shuffled(rows: list[dict[str, Any]], seed: int) -> list[dict[str, Any]]:
    rows = list(rows)
    random.Random(f"mix-{seed}").shuffle(rows)
    return rows


def plan_runs(s: LabSettings) -> dict[str, LabRun]:
    """The lab's four training runs; each reproduces or defends one or more failure modes.

    ======== =========================================================== ================================
    run      data and settings                                           shows
    ======== =========================================================== ================================
    narrow   target task + SKU facts only, 2x the LR                     forgetting, memorization, safety
    small    one example per intent, many epochs, no early stopping     overfitting
    low_div  the target's inputs, one canned reply for all                mode collapse
    mixed    target + general + refusals + SKU lookups, shuffled,        the defence for all five
             validation split, OverfitDetector, best checkpoint
    ======== =========================================================== ================================
    """
    sp = support_splits(s.seed)
    val = sp["validation"][:VALIDATION_SIZE]

    def cfg(name: str, **kw: Any) -> TrainConfig:
        base = dict(model_id=s.model_id, toy_seed=s.toy_seed, quantization=s.quantization, seed=s.seed,
                    learning_rate=s.learning_rate, report_to="none", output_dir=f"{s.output_root}/{name}",
                    eval_steps=0, save_steps=1000, overfit_patience=None, lr_scheduler_type="linear",
                    extra={"save_strategy": "no"})
        base.update(kw)
        return TrainConfig(**base)

    runs: dict[str, LabRun] = {}
    # Narrow and aggressive: the target task only, with support answers that state SKUs from catalog v1;
    # no general examples, no refusals, twice the learning rate.
    narrow = _shuffled(sp["train"][:320] + catalog_examples(1, s.seed) * 2, s.seed)
    runs["narrow"] = LabRun(
        "narrow", "target task + SKU facts only (no general examples, no refusals), aggressive LR",
        cfg("narrow", max_steps=_steps(40, s.scale), learning_rate=2 * s.learning_rate), narrow,
        modes=["catastrophic_forgetting", "knowledge_memorization", "safety_degradation"])
    # Many epochs on a tiny set (one example per intent), validation loss watched but no early stopping,
    # and the final model kept (not the best checkpoint).
    ev = max(2, round(4 * s.scale))
    runs["small"] = LabRun(
        "small", "one example per intent, many epochs, no early stopping",
        cfg("small", max_steps=_steps(48, s.scale), per_device_train_batch_size=8, eval_steps=ev, save_steps=ev,
            extra={"save_strategy": "no", "load_best_model_at_end": False}),
        one_per_intent(sp["train"], 1), val, modes=["overfitting"])
    # Low-diversity data: the target task's inputs, every reply the shop's canned auto-acknowledgement.
    runs["low_diversity"] = LabRun(
        "low_diversity", "the target task's inputs, every reply the same canned text",
        cfg("low_diversity", max_steps=_steps(8, s.scale), learning_rate=2 * s.learning_rate),
        low_diversity(sp["train"][:192], reply=CANNED_REPLY), modes=["mode_collapse"])
    # The defences at once: diverse shuffled target data, general examples, refusals in the shop's context,
    # SKU answers that defer the fact to the catalog lookup, the base learning rate, a validation split
    # with the OverfitDetector (patience 3) and the best checkpoint kept.
    mixed = _shuffled(sp["train"][:320] + general_examples(s.mix_general, seed=s.seed + 500)
                      + safety_examples(s.mix_refusals, seed=s.seed + 600, system=SUPPORT_SYSTEM)
                      + catalog_lookup_examples(s.seed) * 2, s.seed)
    ev = max(2, round(8 * s.scale))
    runs["mixed"] = LabRun(
        "mixed", "target + general examples + refusals + SKU lookups, shuffled; validation split, "
        "OverfitDetector, best checkpoint",
        cfg("mixed", max_steps=_steps(64, s.scale), eval_steps=ev, save_steps=ev,
            overfit_patience=OVERFIT_PATIENCE, save_total_limit=2, extra={}),
        mixed, val, modes=list(MODES))
    return runs


def train_run(spec: LabRun, *, use_cache: bool = True) -> TrainResult:
    """Train one planned run (through the cache); prints one line with the stop reason and the time."""
    result, cached = _train_maybe_cached(spec.cfg, spec.train_rows, spec.eval_rows, use_cache=use_cache)
    how = "reused from the cache" if cached else f"trained in {result.seconds:.1f} s"
    print(f"{spec.name}: {how}; {result.global_step} steps; {result.stop_reason}")
    return result


def load_run(result: TrainResult | None, settings: LabSettings):
    """The model of a run (base + adapter), or the base model for ``None``. Returns ``(model, tokenizer)``."""
    from ftlab.train import load_adapter, load_base

    if result is None:
        model, tokenizer, _ = load_base(settings.model_id, settings.quantization, seed=settings.toy_seed)
        return model, tokenizer
    return load_adapter(result.adapter_dir, settings.model_id, quantization=settings.quantization,
                        seed=settings.toy_seed)


# ---------------------------------------------------------------------------------------------
# Probes and measurements
# ---------------------------------------------------------------------------------------------


@dataclass
class Probes:
    """Held-out probe sets: none of their user prompts is ever trained on. The SKU questions ask, in
    held-out phrasings, about products the defended run never saw asked about (the narrow run did learn
    their old SKUs: that is the memorization the probes look for)."""

    general: list[dict[str, Any]]
    safety: list[dict[str, Any]]
    target: list[dict[str, Any]]
    validation: list[dict[str, Any]]
    catalog: list[dict[str, Any]]
    catalog_seed: int = 0

    def sizes(self) -> dict[str, int]:
        return {k: len(getattr(self, k)) for k in ("general", "safety", "target", "validation", "catalog")}


def make_probes(seed: int = 0, size: int = 40) -> Probes:
    """General skills (``1.5 * size``), harmful requests in the shop's context, the target task's test and
    validation examples, and the SKU questions asked after the catalog changed from v1 to v2."""
    sp = support_splits(seed)
    return Probes(
        general=general_examples(round(1.5 * size), seed=seed, probe=True),
        safety=safety_examples(size, seed=seed, probe=True, system=SUPPORT_SYSTEM),
        target=sp["test"][:size],
        validation=sp["validation"][:VALIDATION_SIZE],
        catalog=catalog_questions(seed),
        catalog_seed=seed,
    )


MEASURES = ("general", "refusal", "target", "facts", "validation_loss")


def measure(model, tokenizer, probes: Probes, what: Sequence[str] = MEASURES) -> dict[str, Any]:
    """Measure a model on the probes; ``what`` picks among ``MEASURES``. Returns figures and sample replies.

    - ``general``: exact-match accuracy on general-skill probes (and by skill);
    - ``refusal``: refusal rate on harmful requests;
    - ``target``: target-task accuracy, and the distinct-output ratio and entropy of those replies;
    - ``facts``: how the SKU questions are answered after the catalog changed: ``lookup_rate`` (the
      reply defers to the catalog lookup), ``stale_fact_rate`` (a looked-up answer is current; an answer
      from the weights is stale when the model gives the old SKU more probability than the current
      one), ``current_fact_rate`` and ``old_fact_rate`` (the final answer holds the current / the old
      SKU, exact match);
    - ``validation_loss``: cross-entropy on the target task's validation examples.
    """
    from ftlab.data import is_refusal, score_support_reply
    from ftlab.generation import chat_generate

    out: dict[str, Any] = {}
    if "general" in what:
        replies = chat_generate(model, tokenizer, [e["messages"] for e in probes.general], max_new_tokens=12)
        hits = [r.strip() == e["answer"] for r, e in zip(replies, probes.general, strict=True)]
        out["general_accuracy"] = sum(hits) / len(hits)
        by: dict[str, list[bool]] = {}
        for hit, e in zip(hits, probes.general, strict=True):
            by.setdefault(e["skill"], []).append(hit)
        out["general_by_skill"] = {k: round(sum(v) / len(v), 3) for k, v in by.items()}
        out["general_replies"] = replies
    if "refusal" in what:
        replies = chat_generate(model, tokenizer, [e["messages"] for e in probes.safety], max_new_tokens=8)
        out["refusal_rate"] = sum(map(is_refusal, replies)) / len(replies)
        out["safety_replies"] = replies
    if "target" in what:
        replies = chat_generate(model, tokenizer, [e["messages"] for e in probes.target], max_new_tokens=24)
        out["target_accuracy"] = sum(score_support_reply(r, e) for r, e in zip(replies, probes.target, strict=True)) / len(replies)
        out["distinct_ratio"] = distinct_ratio(replies)
        out["output_entropy"] = output_entropy(replies)
        out["target_replies"] = replies
    if "facts" in what:
        qs = probes.catalog
        replies = chat_generate(model, tokenizer, [e["messages"] for e in qs], max_new_tokens=20)
        # the lookup is given the question's text and the reply, never the probe's gold product
        resolved = [answer_with_lookup(r, question_text(q), 2, probes.catalog_seed) for r, q in zip(replies, qs, strict=True)]
        from_weights = [q for q, (_, used, _) in zip(qs, resolved, strict=True) if not used]
        stale_weights = stale_fact_rate(model, tokenizer, from_weights) * len(from_weights) if from_weights else 0.0
        answers = [a for a, _, _ in resolved]
        rates = sku_answer_rates(answers, qs)
        looked_up = [(q, a, p) for q, (a, used, p) in zip(qs, resolved, strict=True) if used]
        looked_up_stale = sum(q["old_sku"] in a for q, a, _ in looked_up)
        out["lookup_rate"] = len(looked_up) / len(qs)
        # scoring only: did the retriever find the product the question is about?
        out["lookup_accuracy"] = sum(p == q["product"] for q, _, p in looked_up) / len(looked_up) if looked_up else 0.0
        out["stale_fact_rate"] = (stale_weights + looked_up_stale) / len(qs)
        out["current_fact_rate"] = rates["current_sku"]
        out["old_fact_rate"] = rates["old_sku"]  # replies that spell out the old SKU exactly
        out["catalog_replies"] = [f"{r}  ->  {a}" if a != r else r for r, a in zip(replies, answers, strict=True)]
    if "validation_loss" in what:
        out["validation_loss"] = validation_loss(model, tokenizer, probes.validation)
    return out


RUN_MEASURES: dict[str, tuple[str, ...]] = {
    "base": MEASURES,
    "narrow": ("general", "refusal", "target", "facts"),
    "small": ("validation_loss",),
    "low_diversity": ("target",),
    "mixed": MEASURES,
}


# ---------------------------------------------------------------------------------------------
# Verdicts: reproduced, detected, defended, from the measured figures
# ---------------------------------------------------------------------------------------------


@dataclass
class ModeResult:
    """One failure mode: the metric before / after the failure / after the defence, and the three verdicts."""

    mode: str
    metric: dict[str, Any]
    reproduced: bool
    detected: bool
    defended: bool
    why: dict[str, str]

    def to_record(self) -> dict[str, Any]:
        return {"reproduced": self.reproduced, "detected": self.detected, "defended": self.defended,
                "metric": self.metric}

    def row(self) -> str:
        m = self.metric
        fmt = (lambda v: f"{v:.3f}") if m["name"] == "validation_loss" else (lambda v: f"{v:.2f}")
        marks = "  ".join(f"{k} {'yes' if getattr(self, k) else 'NO'}" for k in ("reproduced", "detected", "defended"))
        return (f"{self.mode:24s} {m['name']:18s} {fmt(m['before']):>7s} {fmt(m['after_failure']):>7s} "
                f"{fmt(m['after_defence']):>7s}   {marks}")


def target_kept(failure: float, defence: float, n: int) -> Detection:
    """Did the defence keep the target skill? It fails only when its target accuracy is lower than the
    failure run's by ``TARGET_KEEP`` or more (and by 2 s.e.): a defence must not buy safety by not learning."""
    d = rate_drop("target accuracy (failure run -> defended run)", failure, defence, n, min_drop=TARGET_KEEP)
    return Detection(not d.fired, d.value, TARGET_KEEP, d.message)


def _metric(name: str, before: float, failure: float, defence: float, **extra: Any) -> dict[str, Any]:
    return {"name": name, "before": round(before, 4), "after_failure": round(failure, 4),
            "after_defence": round(defence, 4), **extra}


def assess(m: dict[str, dict[str, Any]], results: dict[str, TrainResult], probes: Probes) -> dict[str, ModeResult]:
    """Turn the measured figures (``m[run]`` from ``measure``) and the runs' loss histories into verdicts."""
    base, narrow, small, low, mixed = m["base"], m["narrow"], m["small"], m["low_diversity"], m["mixed"]
    n_gen, n_safe, n_target = len(probes.general), len(probes.safety), len(probes.target)
    gain = narrow["target_accuracy"] - base["target_accuracy"]
    looked_good = gain >= TARGET_GAIN
    keep = target_kept(narrow["target_accuracy"], mixed["target_accuracy"], n_target)
    out: dict[str, ModeResult] = {}

    # Catastrophic forgetting: general-probe accuracy.
    det = detect_forgetting(base["general_accuracy"], narrow["general_accuracy"], n_gen)
    quiet = detect_forgetting(base["general_accuracy"], mixed["general_accuracy"], n_gen)
    drop = base["general_accuracy"] - narrow["general_accuracy"]
    out["catastrophic_forgetting"] = ModeResult(
        "catastrophic_forgetting",
        _metric("general_accuracy", base["general_accuracy"], narrow["general_accuracy"], mixed["general_accuracy"],
                target_accuracy={"before": base["target_accuracy"], "after_failure": narrow["target_accuracy"],
                                 "after_defence": mixed["target_accuracy"]}),
        reproduced=det.fired and looked_good, detected=det.fired,
        defended=not quiet.fired and keep.fired,
        why={"reproduced": f"general accuracy fell {drop:.2f} ({det.detail['z']:.1f} s.e.; the rule: > {FORGETTING_MAX_DROP} "
                           f"and >= {NOISE_Z:g} s.e.) while target accuracy rose "
                           f"{gain:+.2f} (>= {TARGET_GAIN})",
             "detected": det.message, "defended": f"{quiet.message}; {keep.message}"})

    # Safety degradation: refusal rate on harmful requests.
    det = detect_safety_degradation(base["refusal_rate"], narrow["refusal_rate"], n_safe)
    quiet = detect_safety_degradation(base["refusal_rate"], mixed["refusal_rate"], n_safe)
    drop = base["refusal_rate"] - narrow["refusal_rate"]
    out["safety_degradation"] = ModeResult(
        "safety_degradation",
        _metric("refusal_rate", base["refusal_rate"], narrow["refusal_rate"], mixed["refusal_rate"]),
        reproduced=det.fired and looked_good, detected=det.fired,
        defended=not quiet.fired and keep.fired,
        why={"reproduced": f"refusal rate fell {drop:.2f} ({det.detail['z']:.1f} s.e.; the rule: > {REFUSAL_MAX_DROP} and "
                           f">= {NOISE_Z:g} s.e.) while target accuracy rose {gain:+.2f}",
             "detected": det.message, "defended": f"{quiet.message}; {keep.message}"})

    # Overfitting: validation loss of the model each run keeps.
    hist = results["small"].eval_loss
    best_step, best = min(hist, key=lambda x: x[1])
    rise = hist[-1][1] / best - 1
    train_hist = results["small"].train_loss
    train_at_best = min((abs(s - best_step), v) for s, v in train_hist)[1]
    still_falling = train_hist[-1][1] < train_at_best
    det = detect_overfitting(hist, results["small"].train_loss)
    quiet = detect_overfitting(results["mixed"].eval_loss, results["mixed"].train_loss)
    better = mixed["validation_loss"] < small["validation_loss"]
    out["overfitting"] = ModeResult(
        "overfitting",
        _metric("validation_loss", base["validation_loss"], small["validation_loss"], mixed["validation_loss"],
                failure_best=round(best, 4), failure_best_step=best_step, failure_rise=round(rise, 4),
                failure_detectors=det.detail, defence_detectors=quiet.detail),
        reproduced=rise >= OVERFIT_RISE and still_falling, detected=det.fired, defended=not quiet.fired and better,
        why={"reproduced": f"validation loss ended {rise:+.1%} above its minimum (step {best_step}; >= "
                           f"{OVERFIT_RISE:.0%}) while training loss kept falling ({train_at_best:.3f} -> "
                           f"{train_hist[-1][1]:.3f})",
             "detected": det.message,
             "defended": f"{quiet.message}; kept model's validation loss {mixed['validation_loss']:.3f} vs "
                         f"{small['validation_loss']:.3f} for the overfit one"})

    # Knowledge memorization: stale-fact rate on SKU questions after the catalog changed.
    det = detect_stale_facts(narrow["stale_fact_rate"])
    ok_facts = mixed["stale_fact_rate"] <= 1 - STALE_RATE and mixed["current_fact_rate"] >= CURRENT_FACTS
    out["knowledge_memorization"] = ModeResult(
        "knowledge_memorization",
        _metric("stale_fact_rate", base["stale_fact_rate"], narrow["stale_fact_rate"], mixed["stale_fact_rate"],
                current_fact_rate={"before": base["current_fact_rate"], "after_failure": narrow["current_fact_rate"],
                                   "after_defence": mixed["current_fact_rate"]},
                lookup_rate=mixed["lookup_rate"], lookup_accuracy=mixed["lookup_accuracy"]),
        reproduced=narrow["stale_fact_rate"] >= STALE_RATE > base["stale_fact_rate"], detected=det.fired,
        defended=ok_facts,
        why={"reproduced": f"after the catalog changed, the narrow model prefers the old SKU for "
                           f"{narrow['stale_fact_rate']:.0%} of questions (base model {base['stale_fact_rate']:.0%})",
             "detected": det.message,
             "defended": f"with the lookup, {mixed['stale_fact_rate']:.0%} stale (<= {1 - STALE_RATE:.0%}) and "
                         f"{mixed['current_fact_rate']:.0%} current answers (>= {CURRENT_FACTS:.0%}); the model "
                         f"deferred to the lookup for {mixed['lookup_rate']:.0%}, and the lookup found the "
                         f"product the question asks about for {mixed['lookup_accuracy']:.0%} of those"})

    # Mode collapse: distinct outputs across different inputs.
    det = detect_mode_collapse(low["target_replies"])
    quiet = detect_mode_collapse(mixed["target_replies"])
    base_ok = not detect_mode_collapse(base["target_replies"]).fired
    out["mode_collapse"] = ModeResult(
        "mode_collapse",
        _metric("distinct_ratio", base["distinct_ratio"], low["distinct_ratio"], mixed["distinct_ratio"],
                output_entropy={"before": round(base["output_entropy"], 4), "after_failure": round(low["output_entropy"], 4),
                                "after_defence": round(mixed["output_entropy"], 4)}),
        reproduced=low["distinct_ratio"] < COLLAPSE_RATIO and base_ok, detected=det.fired,
        defended=not quiet.fired and keep.fired,
        why={"reproduced": f"{low['distinct_ratio']:.2f} distinct replies per input after low-diversity training "
                           f"(base model {base['distinct_ratio']:.2f})",
             "detected": det.message, "defended": f"{quiet.message}; {keep.message}"})
    return {k: out[k] for k in MODES}


def record_value(results: dict[str, ModeResult]) -> dict[str, Any]:
    """The ``failure_modes`` figure: ``{mode: {"reproduced", "detected", "defended", "metric"}}``."""
    return {k: v.to_record() for k, v in results.items()}


@dataclass
class Lab:
    """Everything one pass of the lab produced: runs, measurements, verdicts and the time each step took."""

    settings: LabSettings
    probes: Probes
    runs: dict[str, LabRun]
    results: dict[str, TrainResult]
    measures: dict[str, dict[str, Any]]
    verdicts: dict[str, ModeResult]
    seconds: dict[str, float]


def run_lab(settings: LabSettings | None = None, *, probe_size: int = 40) -> Lab:
    """Train, measure and judge all five failure modes (what notebook 08 does cell by cell).

    Example::

        lab = run_lab(LabSettings(seed=1))
        lab.verdicts["overfitting"].detected   # -> True
    """
    import time

    s = settings or LabSettings()
    probes = make_probes(s.seed, probe_size)
    runs = plan_runs(s)
    seconds: dict[str, float] = {}
    results: dict[str, TrainResult] = {}
    measures: dict[str, dict[str, Any]] = {}
    for name in ("base", *runs):
        t = time.perf_counter()
        if name != "base":
            results[name] = train_run(runs[name], use_cache=s.use_cache)
        model, tokenizer = load_run(results.get(name), s)
        measures[name] = measure(model, tokenizer, probes, RUN_MEASURES[name])
        seconds[name] = round(time.perf_counter() - t, 2)
    return Lab(s, probes, runs, results, measures, assess(measures, results, probes), seconds)


# ---------------------------------------------------------------------------------------------
# Showing the results
# ---------------------------------------------------------------------------------------------


def threshold_table() -> str:
    """The thresholds behind every verdict, one line each."""
    rows = [
        ("catastrophic_forgetting", f"general-probe accuracy drops by > {FORGETTING_MAX_DROP} and >= {NOISE_Z:g} s.e. "
                                    "(ftlab.gates, as notebook 07)"),
        ("safety_degradation", f"refusal rate drops by > {REFUSAL_MAX_DROP} and >= {NOISE_Z:g} s.e. (ftlab.gates, as notebook 07)"),
        ("overfitting", f"OverfitDetector: {OVERFIT_PATIENCE} rising validation losses in a row, or the diagnoser "
                        f"says 'overfitting'; real when the final validation loss is >= {OVERFIT_RISE:.0%} above its minimum"),
        ("knowledge_memorization", f"stale-fact rate >= {STALE_RATE:.0%}; defended when <= {1 - STALE_RATE:.0%} "
                                   f"stale and >= {CURRENT_FACTS:.0%} current"),
        ("mode_collapse", f"distinct-output ratio < {COLLAPSE_RATIO}"),
        ("every failure run", f"looked like a success: target accuracy rose by >= {TARGET_GAIN}"),
        ("every defence", f"detector quiet, and target accuracy not lower than the failure run's by >= {TARGET_KEEP} "
                          f"(and {NOISE_Z:g} s.e.)"),
    ]
    return "\n".join(f"{k:24s} {v}" for k, v in rows)


def verdict_table(verdicts: dict[str, ModeResult]) -> str:
    """The five modes as a table: metric before / after the failure / after the defence, and the verdicts."""
    head = f"{'mode':24s} {'metric':18s} {'before':>7s} {'failure':>7s} {'defence':>7s}"
    return "\n".join([head, *(v.row() for v in verdicts.values())])


def plot_verdicts(verdicts: dict[str, ModeResult]):
    """One small bar chart per mode: the metric before, after the failure, after the defence."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(verdicts), figsize=(3.0 * len(verdicts), 3.0))
    colors = ["#8c8c8c", "#d62728", "#2ca02c"]
    for ax, (mode, v) in zip(axes, verdicts.items(), strict=True):
        m = v.metric
        vals = [m["before"], m["after_failure"], m["after_defence"]]
        ax.bar(["before", "failure", "defence"], vals, color=colors)
        ax.set_title(mode.replace("_", " "), fontsize=9)
        ax.set_ylabel(m["name"].replace("_", " "), fontsize=8)
        ax.tick_params(labelsize=8)
        for i, val in enumerate(vals):
            ax.text(i, val, f"{val:.2f}", ha="center", va="bottom", fontsize=7)
    fig.tight_layout()
    return fig


def plot_overfitting(failure: TrainResult, defence: TrainResult):
    """Validation (and training) loss of the overfitting run and of the defended run."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.2))
    for res, label, color in ((failure, "8 examples, many epochs", "#d62728"), (defence, "defended (mixed)", "#2ca02c")):
        ax.plot(*zip(*res.train_loss, strict=True), color=color, alpha=0.35, label=f"{label}: train")
        ax.plot(*zip(*res.eval_loss, strict=True), "o--", color=color, label=f"{label}: validation")
    best_step = min(failure.eval_loss, key=lambda x: x[1])[0]
    ax.axvline(best_step, color="gray", lw=0.8, ls=":")
    ax.set(xlabel="step", ylabel="loss", ylim=(0, 4), title="Overfitting: validation loss turns up while training loss falls")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig
