"""What is evaluated: the held-out eval sets (toy or your own files), the inputs checked, and the candidates
trained for the comparison.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ftlab.data import (
    INTENTS,
    SUPPORT_SYSTEM,
    general_examples,
    is_refusal,
    safety_examples,
    score_support_reply,
    support_splits,
)
from ftlab.probes import (
    TOY_KIND,
    exact_match,
    general_probes,
    load_probe_file,
    probe_kind,
    safety_probes,
    scorers_for,
)

__all__ = [
    "FORMAT_INSTRUCTIONS",
    "OWN_DATA",
    "EvalSet",
    "check_eval_inputs",
    "eval_set_for",
    "reference_match",
    "toy_eval_set",
    "train_candidate",
    "train_side_by_side",
    "validation_set",
]


# The toy task's prompt engineering: the reply format and the intents, spelled out.
FORMAT_INSTRUCTIONS = ("Answer in exactly one line: 'intent: <intent> | order: <order number or none> | <reply>'. "
                       "Intents: " + ", ".join(sorted(INTENTS)) + ".")


# ---------------------------------------------------------------------------------------------
# The dataset: three categories of held-out examples
# ---------------------------------------------------------------------------------------------
@dataclass
class EvalSet:
    """Held-out examples for the three categories. Each is a list of ``{"messages": [...], ...}``.

    ``target`` examples carry what ``target_scorer(reply, example)`` needs (the toy's scorer reads
    ``intent``), ``general`` ones an ``answer`` that ``general_scorer`` checks (exact match for the toy,
    ``ftlab.probes.probe_correct`` for a real model), ``safety`` prompts are harmful requests that
    ``refusal_detector(reply)`` must recognize as refused. For your own task, pass your own scorers,
    refusal detector and baseline instructions (``eval_set_for`` does it from a model id and files).
    """

    target: list[dict[str, Any]]
    general: list[dict[str, Any]]
    safety: list[dict[str, Any]]
    name: str = ""
    target_scorer: Callable[[str, dict[str, Any]], float] = score_support_reply
    refusal_detector: Callable[[str], bool] = is_refusal
    baseline_instructions: str = ""  # appended to the system prompt of the few-shot baseline
    general_scorer: Callable[[str, dict[str, Any]], bool] = exact_match
    safety_tokens: int = 16  # reply length for the safety probes: a real model's refusal takes ~20 tokens

    def sizes(self) -> dict[str, int]:
        return {"target": len(self.target), "general": len(self.general), "safety": len(self.safety)}


def toy_eval_set(seed: int = 0, *, n_target: int = 200, n_general: int = 200, n_safety: int = 100) -> EvalSet:
    """The toy world's held-out sets: the support test split, the general probes, the safety probes.

    Half of the safety probes come under the general assistant's system prompt, half under the
    shop's, the context the fine-tuned model serves in. Probes never overlap training (``probe=True``).
    """
    half = n_safety // 2
    safety = safety_examples(half, seed=seed, probe=True)
    safety += safety_examples(n_safety - half, seed=seed + 1, probe=True, system=SUPPORT_SYSTEM)
    return EvalSet(target=support_splits(seed)["test"][:n_target],
                   general=general_examples(n_general, seed=seed, probe=True), safety=safety,
                   name=f"toy world (seed {seed}): support test, general probes, safety probes",
                   baseline_instructions=FORMAT_INSTRUCTIONS)


def reference_match(reply: str, example: dict[str, Any]) -> bool:
    """Target score for the learner's own data: the normalized reply equals the normalized reference (the
    example's last assistant message), as notebook 04's exact match (``ftlab.userdata.normalize_reply``).
    Example: ``"Paris."`` matches a reference ``"paris"``."""
    from ftlab.userdata import normalize_reply, reference_reply

    ref = normalize_reply(reference_reply(example))
    return bool(ref) and normalize_reply(reply) == ref


def eval_set_for(model_id: str, *, toy_seed: int = 0, n_target: int = 200, n_general: int = 200, n_safety: int = 100,
                 general_probe_file: str = "", safety_probe_file: str = "",
                 target: Sequence[dict[str, Any]] | None = None) -> EvalSet:
    """The held-out sets for a model: the toy's (``toy_eval_set``, unchanged) for the toy, and for a real
    model the 40 real-answer general probes, English harmful requests and robust scoring
    (``ftlab.probes.scorers_for``). The toy support task stays category 1 unless ``target`` (e.g. the
    held-out part of your own data, scored by ``reference_match``) is given. A probe file replaces the
    built-in general or safety probes (``ftlab.probes.load_probe_file``; "" keeps them).

    Example: ``eval_set_for("HuggingFaceTB/SmolLM2-135M-Instruct", n_general=20).sizes()["general"] == 20``.
    """
    kind = probe_kind(model_id)
    if kind == TOY_KIND:
        es = toy_eval_set(toy_seed, n_target=n_target, n_general=n_general, n_safety=n_safety)
    else:
        half = n_safety // 2
        safety = safety_probes(model_id, n=half, seed=toy_seed)
        safety += safety_probes(model_id, n=n_safety - half, seed=toy_seed + 1, system=SUPPORT_SYSTEM)
        general_scorer, detector = scorers_for(model_id)
        es = EvalSet(safety_tokens=32, target=support_splits(toy_seed)["test"][:n_target],
                     general=general_probes(model_id)[:n_general], safety=safety,
                     name=f"real model: support test (seed {toy_seed}), real-answer general probes, safety probes",
                     baseline_instructions=FORMAT_INSTRUCTIONS, general_scorer=general_scorer, refusal_detector=detector)
    parts = [es.name]
    # your probe files need not use the toy's one refusal sentence or exact answers: they are scored robustly
    general_scorer, detector = scorers_for("real")
    if general_probe_file:
        es.general = load_probe_file(general_probe_file, kind="general", param="general_probe_file")[:n_general]
        es.general_scorer = general_scorer
        parts.append(f"general probes from {Path(general_probe_file).name}")
    if safety_probe_file:
        es.safety = load_probe_file(safety_probe_file, kind="safety", param="safety_probe_file")[:n_safety]
        es.refusal_detector, es.safety_tokens = detector, max(es.safety_tokens, 32)
        parts.append(f"safety probes from {Path(safety_probe_file).name}")
    if target is not None:
        es.target, es.target_scorer, es.baseline_instructions = list(target)[:n_target], reference_match, ""
        parts.append("target: your held-out examples (normalized exact match)")
    es.name = "; ".join(parts)
    return es


OWN_DATA = "own"  # the candidate name for a model trained on your train_file


def check_eval_inputs(recipes: str, train_file: str = "", eval_file: str = "", general_probe_file: str = "",
                      safety_probe_file: str = "", *, seed: int = 0) -> tuple[list[str], list[dict[str, Any]], list[dict[str, Any]]]:
    """Notebook 07's check of its data parameters: ``(candidates, your train rows, your held-out rows)``.

    Without ``train_file`` the candidates are the named toy ``recipes``; with it, one candidate,
    ``"own"``, trained on your file (validated by ``ftlab validate``; ``eval_file`` or 15 % split off is
    held out). Probe files are read here, so a bad line stops the notebook before anything is trained.
    Every problem is one ``ParameterError`` line.
    """
    from ftlab.errors import ParameterError
    from ftlab.train import TRAINING_RECIPES
    from ftlab.userdata import user_data_params

    own_train, own_eval = user_data_params(train_file, eval_file, seed=seed)
    if train_file:
        chosen = [OWN_DATA]
    else:
        chosen = [r.strip() for r in recipes.split(",") if r.strip()]
        if not chosen or [r for r in chosen if r not in TRAINING_RECIPES]:
            raise ParameterError(f"parameter 'recipes' = {recipes!r}: use a comma-separated list of "
                                 f"{sorted(TRAINING_RECIPES)}")
    for param, path, kind in (("general_probe_file", general_probe_file, "general"),
                              ("safety_probe_file", safety_probe_file, "safety")):
        if path:
            load_probe_file(path, kind=kind, param=param)
    return chosen, own_train, own_eval


def train_candidate(name: str, own_rows: Sequence[dict[str, Any]] = (), *, data_file: str = "", toy_seed: int = 0,
                    n_general: int = 0, **config: Any):
    """Train (or reuse from the cache) one candidate adapter: a toy recipe (``train_recipe``, the same
    adapter notebook 06 merges), or ``"own"``: your rows. Your held-out rows are not passed to training,
    not even as a validation set, so that category 1 stays held out. ``n_general`` > 0 gives the
    ``"mixed"`` recipe that many general-skill examples (``support_mix``). ``config`` overrides ``TrainConfig``."""
    from ftlab.train import TrainConfig, train_cached, train_own, train_recipe

    if name == "mixed" and n_general:
        from ftlab.data import support_mix

        config.setdefault("report_to", "none")
        config.setdefault("eval_steps", 16)
        config.setdefault("save_steps", 32)
        config.setdefault("data_version", f"toy support v1, recipe 'mixed' with {n_general} general examples (seed {toy_seed})")
        return train_cached(TrainConfig(toy_seed=toy_seed, **config), support_mix(toy_seed, n_general=n_general),
                            support_splits(toy_seed)["validation"])
    if name != OWN_DATA:
        return train_recipe(name, toy_seed=toy_seed, **config)
    return train_own(own_rows, data_file=data_file, toy_seed=toy_seed, **config)


def train_side_by_side(candidates: Sequence[dict[str, Any]], *, parallel: bool | None = None, processes: int = 0) -> int:
    """Train several toy candidates at the same time, one single-threaded process each (``ftlab.sidebyside``),
    into ftlab's adapter cache, so that ``train_candidate`` with the same arguments then finds each one cached,
    and a core that would sit idle trains too (07's three next steps at batch 32, shared 2-core machine, load ~3:
    171 s one after another, 155 s side by side; each process pays ~5 s of imports). Each dict holds
    ``train_candidate``'s keyword arguments (JSON values, no own rows). ``parallel``: whether to (``None``:
    ``ftlab.core.idle_cores() >= 2``, so not under the test workers nor on a GPU). Returns how many were trained here.

    Example: ``train_side_by_side([dict(name="mixed", n_general=300, **config), dict(name="mixed", ...)])``.
    """
    from ftlab.core import idle_cores
    from ftlab.sidebyside import side_by_side

    parallel = idle_cores() >= 2 if parallel is None else parallel
    return side_by_side("ftlab.evaluate:train_candidate", candidates, parallel=parallel, processes=processes)


def validation_set(evalset: EvalSet, *, toy_seed: int = 0, n_target: int = 100, n_general: int = 200,
                   n_safety: int = 100) -> EvalSet:
    """A validation split of the toy's three categories, for choosing a next step without the test probes.

    Target: the support validation split; general and safety: probes drawn with other seeds; each without
    any prompt that ``evalset`` (the test sets) holds, so choosing on it never looks at a test probe. Its
    scorers are ``evalset``'s. Example: ``validation_set(toy_eval_set(0)).sizes()["general"] <= 200``.
    """
    test_prompts = {_user_text(e) for e in evalset.target + evalset.general + evalset.safety}
    target = [e for e in support_splits(toy_seed)["validation"] if _user_text(e) not in test_prompts][:n_target]
    general = [e for e in general_examples(2 * n_general, seed=toy_seed + 1000, probe=True)
               if _user_text(e) not in test_prompts][:n_general]
    half = n_safety // 2
    safety = safety_examples(2 * half, seed=toy_seed + 1000, probe=True)
    safety += safety_examples(2 * (n_safety - half), seed=toy_seed + 1001, probe=True, system=SUPPORT_SYSTEM)
    safety = [e for e in safety if _user_text(e) not in test_prompts]
    safety = safety[:half] + [e for e in safety if e["messages"][0]["content"] == SUPPORT_SYSTEM][:n_safety - half]
    return EvalSet(target=target, general=general, safety=safety,
                   name=f"validation (toy seed {toy_seed}): support validation split, probes not in the test sets",
                   target_scorer=evalset.target_scorer, refusal_detector=evalset.refusal_detector,
                   baseline_instructions=evalset.baseline_instructions, general_scorer=evalset.general_scorer,
                   safety_tokens=evalset.safety_tokens)


def _user_text(example: dict[str, Any]) -> str:
    return next((m["content"] for m in reversed(example["messages"]) if m["role"] == "user"), "")
