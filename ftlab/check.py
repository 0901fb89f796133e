"""Exercise checks: ``ftlab.check.<name>(answer, ...)`` tells a learner whether an answer is right.

``ftlab exercises`` turns each ``# BEGIN SOLUTION`` region of a notebook into a prompt, an
answer cell and a check cell that calls one of these functions (see ``ftlab.exercises``).
Every check works its expected value out again from the notebook's own inputs (the data file,
the model, the loss history) with ftlab's reference code, then compares it with the answer:

- right: it shows ``✓ name: ...``, records the figure ``exercise:name = True`` (tests and
  ``ftlab run`` read it back) and returns ``True``;
- wrong or not answered yet (``...`` left in place): it raises ``ExerciseIncorrect``, a one-line
  error with a hint, which stops "Run all" at the exercise, before cells that need the answer.

Example::

    >>> training_tokens(4_500_000, examples=5000, tokens_per_example=300, epochs=3)  # doctest: +SKIP
    ✓ training_tokens: 5,000 × 300 × 3 = 4,500,000 training tokens
    True

Each check is registered with its notebook and its prompt (``EXERCISES``), so that the exercise
notebooks, the instructor guide and the tests all read the same text.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from html import escape
from typing import Any

from ftlab.errors import FtlabError
from ftlab.figures import MIME, record

__all__ = ["EXERCISES", "FAILURE_DEFENCES", "ExerciseIncorrect", "ExerciseSpec", "base_only_correct",
           "billing_tokens", "checks", "exercise", "failure_defence", "lora_target_modules", "loss_pattern",
           "merged_weight", "training_tokens"]


class ExerciseIncorrect(FtlabError):
    """An exercise answer is wrong or missing; the message says what to look at."""


@dataclass(frozen=True)
class ExerciseSpec:
    """One registered exercise: the check function, the notebook it belongs to and its prompt (Markdown)."""

    name: str
    notebook: str
    title: str
    prompt: str
    check: Callable[..., bool]


EXERCISES: dict[str, ExerciseSpec] = {}


def exercise(notebook: str, title: str, prompt: str):
    """Register a check function as the exercise of the same name (``notebook`` is its number, e.g. ``"03"``)."""

    def wrap(fn: Callable[..., bool]) -> Callable[..., bool]:
        EXERCISES[fn.__name__] = ExerciseSpec(fn.__name__, notebook, title, prompt.strip(), fn)
        return fn

    return wrap


def _unanswered(name: str, **answers: Any) -> None:
    missing = [k for k, v in answers.items() if v is ... or v is None]
    if missing:
        raise ExerciseIncorrect(
            f"{name}: not answered yet: set {', '.join(missing)} in the exercise cell above (replace the ...), run it, then run this check"
        )


def _right(name: str, message: str) -> bool:
    key = f"exercise:{name}"
    record(key, True, show=False)
    text = f"✓ {name}: {message}"
    try:
        from IPython import get_ipython
        from IPython.display import display

        if get_ipython() is not None:  # one output: the figure for the tests, green text for the learner
            html = f'<p style="color:#1a7f37"><b>{escape(text)}</b></p>'
            display({MIME: {"name": key, "value": True}, "text/html": html, "text/plain": text}, raw=True)
            return True
    except ImportError:  # pragma: no cover - IPython is a dependency
        pass
    print(text)
    return True


def _wrong(name: str, message: str) -> ExerciseIncorrect:
    return ExerciseIncorrect(f"✗ {name}: {message}")


def _as_int(name: str, value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value):
        raise _wrong(name, f"{what} should be a whole number, got {value!r} ({type(value).__name__})")
    return int(value)


# ---------------------------------------------------------------------------------------------
# 02 · cost math
# ---------------------------------------------------------------------------------------------


@exercise("02", "Training tokens", """
OpenAI and the managed platforms bill **training tokens**. Compute them for the run in the
parameters cell (`examples`, `tokens_per_example`, `epochs`) and store the number in `tokens`.
With the defaults this is the articles' worked example.
""")
def training_tokens(tokens: Any, examples: int, tokens_per_example: int, epochs: int) -> bool:
    """Right when ``tokens`` = examples × tokens per example × epochs.

    Example: ``training_tokens(4_500_000, 5000, 300, 3)`` is right; ``1_500_000`` (one epoch) is not.
    """
    name = "training_tokens"
    _unanswered(name, tokens=tokens)
    got = _as_int(name, tokens, "tokens")
    want = examples * tokens_per_example * epochs
    if got == want:
        return _right(name, f"{examples:,} × {tokens_per_example:,} × {epochs} = {want:,} training tokens")
    if got == examples * tokens_per_example:
        raise _wrong(name, f"{got:,} is one pass over the data; every one of the {epochs} epochs is billed again")
    raise _wrong(name, f"{got:,} is not it: multiply the examples, the tokens per example and the epochs")


# ---------------------------------------------------------------------------------------------
# 03 · the OpenAI path
# ---------------------------------------------------------------------------------------------


@exercise("03", "Billing tokens", """
Before you upload, work out what OpenAI will bill. `report.stats` (`s`) holds the token count
of every example (`s["examples"][i]["tokens"]`) and the model's per-example limit
(`s["max_tokens_per_example"]`): tokens beyond the limit are cut off and not billed. Compute
the **trained tokens** of the whole job, over all `n_epochs` epochs, in `trained_tokens`.
""")
def billing_tokens(trained_tokens: Any, train_file: str | os.PathLike[str], model: str, n_epochs: int) -> bool:
    """Right when ``trained_tokens`` = Σ min(tokens, limit) over the file's examples × ``n_epochs``.

    The expected value comes from validating ``train_file`` again with ``ftlab.validate`` (exact
    tiktoken counts with the model's encoding, the cookbook's counting rule).
    """
    from ftlab.validate import validate_file

    name = "billing_tokens"
    _unanswered(name, trained_tokens=trained_tokens)
    got = _as_int(name, trained_tokens, "trained_tokens")
    stats = validate_file(train_file, model=model, n_epochs=n_epochs).stats
    per_epoch, want = stats["billing_tokens"], stats["trained_tokens"]
    if got == want:
        return _right(name, f"{per_epoch:,} billing tokens per epoch × {n_epochs} epochs = {want:,} trained tokens")
    if got == per_epoch:
        raise _wrong(name, f"{got:,} is one epoch; OpenAI bills billing tokens × epochs ({n_epochs})")
    uncapped = sum(e["tokens"] for e in stats["examples"]) * n_epochs
    if got == uncapped != want:
        raise _wrong(name, "cap each example at the model's limit first: tokens past it are not trained or billed")
    raise _wrong(name, f"{got:,} is off by {got - want:+,}: sum each example's tokens (capped at the limit), then × epochs")


# ---------------------------------------------------------------------------------------------
# 04 · QLoRA
# ---------------------------------------------------------------------------------------------


@exercise("04", "LoRA on the seven projections", """
Write the `target_modules` of the LoRA config: the list of the **seven projection modules of a
Llama block** that the articles put adapters on (four in attention, three in the MLP), by the names
the model uses. Store the list in `modules`. Tip: `{n.rsplit(".", 1)[-1] for n, _ in
base.named_modules()}` lists the names in this model.
""")
def lora_target_modules(modules: Any, model: Any) -> bool:
    """Right when ``modules`` names exactly the seven Llama projections and each exists in ``model``.

    Example: ``lora_target_modules(["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj",
    "down_proj"], base)`` is right; leaving out the MLP (``gate_proj up_proj down_proj``) is not.
    """
    from ftlab.train import LLAMA_TARGET_MODULES

    name = "lora_target_modules"
    _unanswered(name, modules=modules)
    if isinstance(modules, str) or not isinstance(modules, Iterable):
        raise _wrong(name, f"modules should be a list of module names, got {type(modules).__name__}")
    got = list(modules)
    if not all(isinstance(m, str) for m in got):
        raise _wrong(name, "modules should hold module names (strings) such as 'q_proj'")
    in_model = {n.rsplit(".", 1)[-1] for n, _ in model.named_modules()}
    unknown = [m for m in got if m not in in_model]
    if unknown:
        raise _wrong(name, f"{', '.join(unknown)}: no module of this model has that name")
    want = set(LLAMA_TARGET_MODULES)
    missing, extra = [m for m in LLAMA_TARGET_MODULES if m not in got], sorted(set(got) - want)
    if len(got) != len(set(got)):
        raise _wrong(name, "a module is listed twice")
    if extra:
        raise _wrong(name, f"{', '.join(extra)} is not one of the seven projections (the linear layers of attention and MLP)")
    if missing:
        mlp = {"gate_proj", "up_proj", "down_proj"} & set(missing)
        where = "the MLP's" if mlp == set(missing) else "attention's" if not mlp else "some"
        raise _wrong(name, f"{len(missing)} missing: {where} projections are adapted too")
    return _right(name, f"LoRA adapts all seven projections: {', '.join(LLAMA_TARGET_MODULES)}")


def checks() -> dict[str, ExerciseSpec]:
    """The registered exercises by name."""
    return dict(EXERCISES)


# ---------------------------------------------------------------------------------------------
# 05 · loss-curve diagnosis
# ---------------------------------------------------------------------------------------------


@exercise("05", "Name the pattern of a loss curve", """
The plot above shows one of the five runs, without its name: the training loss (solid) and the
validation loss (dashed). Read it with the articles' table at the top of this notebook and name its
pattern with one of the codes `"healthy"`, `"plateau"`, `"overfitting"`, `"flat"`, `"unstable"`.
Store the code in `pattern`.
""")
def loss_pattern(pattern: Any, history: Any) -> bool:
    """Right when ``pattern`` is what ``ftlab.diagnose`` names the curve ``history`` (a path, a LossHistory, ...).

    Example: for a run whose validation loss turns upwards, ``loss_pattern("overfitting", h)`` is right.
    """
    from ftlab.diagnose import PATTERNS, diagnose

    name = "loss_pattern"
    _unanswered(name, pattern=pattern)
    codes = ", ".join(f'"{c}"' for c in PATTERNS)
    if not isinstance(pattern, str) or pattern.strip().lower() not in PATTERNS:
        raise _wrong(name, f"{pattern!r} is not one of the articles' five codes: {codes}")
    got = pattern.strip().lower()
    d = diagnose(history)
    if got == d.pattern:
        return _right(name, f"{d.pattern}: {PATTERNS[d.pattern].meaning}. Action: {d.action}")
    hints = {
        "flat": "did the training loss really barely move from its start?",
        "unstable": "is the training loss spiky or NaN throughout, or does it settle?",
        "overfitting": "does the validation loss turn upwards while the training loss keeps falling?",
        "plateau": "has the validation loss stopped improving in the last third of the run?",
        "healthy": "is the validation loss still clearly falling at the end?",
    }
    raise _wrong(name, f"not {got}: {hints[got]} Compare the curve's start, end, noise and the validation loss")


# ---------------------------------------------------------------------------------------------
# 07 · evaluation
# ---------------------------------------------------------------------------------------------


@exercise("07", "Find the base_only_correct cases", """
The article's `base_only_correct` are the cases the baseline got right and the fine-tuned model
gets wrong: what fine-tuning broke. Find them among the **general-skill probes** (category 2),
where they are catastrophic forgetting, example by example. `c.base.general_correct` and
`c.tuned.general_correct` hold one `True`/`False` per probe, in the same order. Store the
**indices** of the base-only-correct probes, in increasing order, in `forgotten`.
""")
def base_only_correct(cases: Any, base_correct: Any, tuned_correct: Any) -> bool:
    """Right when ``cases`` lists the indices where ``base_correct`` is true and ``tuned_correct`` is false.

    Example: ``base_only_correct([1], [True, True, False], [True, False, True])`` is right; ``[2]`` (what
    fine-tuning fixed, ``ft_only_correct``) is not.
    """
    from ftlab.evaluate import four_way

    name = "base_only_correct"
    _unanswered(name, forgotten=cases)
    base, tuned = list(base_correct), list(tuned_correct)
    want = four_way(base, tuned).base_only_indices
    if isinstance(cases, bool | int | float | str) or not isinstance(cases, Iterable):
        raise _wrong(name, f"give the list of indices (e.g. [3, 17]), not {type(cases).__name__} {cases!r}")
    got = list(cases)
    if got and all(isinstance(x, bool) for x in got):
        raise _wrong(name, "that is a list of True/False; give the indices where the base was right and fine-tuned wrong")
    if not all(isinstance(x, int) and not isinstance(x, bool) for x in got):
        raise _wrong(name, "the list should hold integer indices of probes")
    if got == want:
        share = len(want) / max(len(base), 1)
        return _right(name, f"{len(want)} of {len(base)} probes ({share:.1%}) were right before and wrong after fine-tuning")
    ft_only = [i for i, (b, t) in enumerate(zip(base, tuned, strict=True)) if t and not b]
    if got == ft_only != want:
        raise _wrong(name, "those are the ft_only_correct cases (what fine-tuning fixed); you want the reverse")
    if sorted(got) == want:
        raise _wrong(name, "the right indices, but sort them in increasing order")
    extra, missing = sorted(set(got) - set(want)), sorted(set(want) - set(got))
    raise _wrong(name, f"{len(extra)} index(es) too many, {len(missing)} missing: base right AND fine-tuned wrong, both")


# ---------------------------------------------------------------------------------------------
# 06 · merging
# ---------------------------------------------------------------------------------------------


@exercise("06", "Merge one layer by hand", """
Merging replaces each adapted layer's weight `W` by `W + (lora_alpha / r) · B · A`. `lora_q` is the
first block's `q_proj` of the unmerged adapter: its base weight is `lora_q.base_layer.weight`, the
LoRA matrices are `lora_q.lora_A["default"].weight` (r × in) and `lora_q.lora_B["default"].weight`
(out × r), and `lora_q.scaling["default"]` is `lora_alpha / r`. Compute the merged weight in
`w_merged` (a tensor of the base weight's shape).
""")
def merged_weight(w_merged: Any, lora_layer: Any, merged_model_weight: Any = None) -> bool:
    """Right when ``w_merged`` equals the layer's base weight plus PEFT's own delta (``get_delta_weight``).

    When ``merged_model_weight`` (the same layer in the merged model) is given, the answer must match it too.
    """
    import torch

    name = "merged_weight"
    _unanswered(name, w_merged=w_merged)
    if not isinstance(w_merged, torch.Tensor):
        raise _wrong(name, f"w_merged should be a torch tensor, got {type(w_merged).__name__}")
    with torch.no_grad():
        base = lora_layer.base_layer.weight.detach().float()
        delta = lora_layer.get_delta_weight("default").detach().float()
        got = w_merged.detach().float()
        if got.shape != base.shape:
            raise _wrong(name, f"shape {tuple(got.shape)}, but the weight is {tuple(base.shape)}: B · A, not A · B")
        want = base + delta
        tol = 1e-5 * max(1.0, float(want.abs().max()))
        if torch.allclose(got, want, atol=tol, rtol=1e-4):
            if merged_model_weight is not None and not torch.allclose(
                    got, merged_model_weight.detach().float(), atol=tol, rtol=1e-4):
                raise _wrong(name, "it matches W + ΔW here, but not the merged model's weight: is it the same layer?")
            return _right(name, f"W + {lora_layer.scaling['default']:g} · B · A: max |ΔW| added "
                                f"{float(delta.abs().max()):.2e}, the same as the merged model")
        scale = lora_layer.scaling["default"]
        if scale != 1 and torch.allclose(got, base + delta / scale, atol=tol, rtol=1e-4):
            raise _wrong(name, f"the LoRA update is scaled by lora_alpha / r = {scale:g}: multiply B · A by it")
        if torch.allclose(got, delta, atol=tol, rtol=1e-4):
            raise _wrong(name, "that is only the update ΔW: add it to the base weight W")
        raise _wrong(name, f"off by up to {float((got - want).abs().max()):.3g}: W + (lora_alpha / r) · B · A")


# ---------------------------------------------------------------------------------------------
# 08 · failure modes
# ---------------------------------------------------------------------------------------------

# Article 001's "Defense" column, lettered in an order that does not follow the modes.
FAILURE_DEFENCES = {
    "A": "Fine-tune for behavior (format, tone, reasoning style); use RAG or tools for facts",
    "B": "Run safety eval suite post-training; compare refusal rates on adversarial prompts",
    "C": "Validation split + OverfitDetector callback; stop at 1-3 epochs; add data diversity",
    "D": "Eval on diverse benchmarks before/after; use lower learning rate; include general examples in "
         "training mix (5-10%)",
    "E": "Check training data diversity; shuffle thoroughly; add entropy penalty; inspect outlier inputs",
}
_SEED_DEFENCE = {"catastrophic_forgetting": "D", "overfitting": "C", "knowledge_memorization": "A",
                 "mode_collapse": "E", "safety_degradation": "B"}
_SYMPTOM = {
    "catastrophic_forgetting": "general-task accuracy drops after fine-tuning",
    "overfitting": "validation loss diverges from training loss",
    "knowledge_memorization": "the model 'knows' facts from training data rather than current ground truth",
    "mode_collapse": "the model outputs the same format or phrase for all inputs",
    "safety_degradation": "the model complies with requests the base model refused",
}


@exercise("08", "Pick the defence for each failure mode", """
Article 001 gives one defence for each failure mode. Match them: set `defence` to a dict from each mode
(`"catastrophic_forgetting"`, `"overfitting"`, `"knowledge_memorization"`, `"mode_collapse"`,
`"safety_degradation"`) to the letter of its defence:

- **A**: fine-tune for behaviour (format, tone, reasoning style); use RAG or tools for facts
- **B**: run a safety eval suite after training; compare refusal rates on adversarial prompts
- **C**: validation split + OverfitDetector callback; stop at 1-3 epochs; add data diversity
- **D**: eval on diverse benchmarks before/after; lower learning rate; general examples in the mix (5-10 %)
- **E**: check training data diversity; shuffle thoroughly; entropy penalty; inspect outlier inputs

The four runs above used each of these (except the entropy penalty).
""")
def failure_defence(defence: Any) -> bool:
    """Right when ``defence`` maps each of the five failure modes to the letter of article 001's defence.

    Example: ``failure_defence({"catastrophic_forgetting": "D", "overfitting": "C", "knowledge_memorization": "A",
    "mode_collapse": "E", "safety_degradation": "B"})`` is right.
    """
    name = "failure_defence"
    _unanswered(name, defence=defence)
    if not isinstance(defence, dict):
        raise _wrong(name, f"defence should be a dict {{mode: letter}}, got {type(defence).__name__}")
    got = {str(k).strip().lower().replace(" ", "_"): str(v).strip().upper() for k, v in defence.items()}
    missing = [m for m in _SEED_DEFENCE if m not in got]
    unknown = [m for m in got if m not in _SEED_DEFENCE]
    if unknown:
        raise _wrong(name, f"unknown mode(s) {', '.join(unknown)}; the five are {', '.join(_SEED_DEFENCE)}")
    if missing:
        raise _wrong(name, f"give a letter for every mode; missing: {', '.join(missing)}")
    bad_letters = sorted({v for v in got.values() if v not in FAILURE_DEFENCES})
    if bad_letters:
        raise _wrong(name, f"{', '.join(bad_letters)}: pick letters from A-E")
    wrong = [m for m in _SEED_DEFENCE if got[m] != _SEED_DEFENCE[m]]
    if wrong:
        m = wrong[0]
        raise _wrong(name, f"{len(wrong)} of 5 wrong, e.g. {m}: its symptom is that {_SYMPTOM[m]}; "
                           f"which defence removes that cause?")
    return _right(name, "all five match article 001's table; notebook 08 measured whether each defence worked")
