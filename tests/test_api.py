"""The public API: every module lists its public names in ``__all__``, the names exist, one name means one
thing across ``ftlab``, public functions are typed and documented, and no module grows past 600 lines."""

from __future__ import annotations

import importlib
import inspect
import types
from pathlib import Path

import pytest

import ftlab
from tests.helpers import BOOKS

PKG = Path(ftlab.__file__).parent
MAX_LINES = 600

# Issue 24 wants these split; each may not grow past its line count of today, and the list can only shrink.
TOO_LONG: dict[str, int] = {}

# Modules that others are editing now: they get their ``__all__`` when that work lands (issue 24).
NO_ALL_YET: set[str] = set()

# One name, several meanings (issue 24 wants them renamed). The list can only shrink.
KNOWN_COLLISIONS = {
    "training_tokens": {"ftlab.check", "ftlab.cost"},  # an exercise checker is named after its answer
    "is_refusal": {"ftlab.data", "ftlab.probes"},  # the toy's exact refusal sentence vs real phrasing
    "write_jsonl": {"ftlab.data", "ftlab.preference"},
}
# The same name in sibling modules by design: an interface each module fills in.
INTERFACES = {
    "register": "ftlab.commands.",  # each CLI subcommand registers itself
    "FORMAT": "ftlab.cloud.",       # each cloud platform's file format ...
    "SOURCES": "ftlab.cloud.",      # ... and where it is documented
    "main": "",                     # a script's entry point (ftlab.cli, ftlab.oneclick)
}

# Public functions that still lack a type hint (usually ``model``/``tokenizer``) or a docstring. Only shrinks.
UNTYPED = {
    "ftlab.data.support.support_dataset", "ftlab.diagnose.plot.plot_diagnosis", "ftlab.diagnose.runs.train_for_pattern", "ftlab.toymodel.build_toy_model",
    "ftlab.train.config.apply_recommendation", "ftlab.train.loss.choose_loss_mask", "ftlab.train.model.first_lora_module", "ftlab.train.loss.heldout_loss",
    "ftlab.train.loss.heldout_metrics", "ftlab.train.model.load_adapter", "ftlab.train.model.load_base", "ftlab.train.model.lora_targets",
    "ftlab.train.config.lr_scale", "ftlab.train.loss.preflight_loss_mask", "ftlab.train.model.quantization_config", "ftlab.train.sft.sft_config",
    "ftlab.train.config.size_defaults", "ftlab.train.model.target_modules_for", "ftlab.train.sft.train", "ftlab.train.cache.train_cached",
    "ftlab.train.cache.training_key",
    "ftlab.check.exercise", "ftlab.cli.build_parser", "ftlab.cli.main", "ftlab.cloud.azure.from_azure",
    "ftlab.cloud.bedrock.from_bedrock_prompt_completion", "ftlab.cloud.common.no_file_rules",
    "ftlab.cloud.together.from_together", "ftlab.cloud.vertex.gcs_upload_request",
    "ftlab.commands.convert.register", "ftlab.commands.cost.register", "ftlab.commands.diagnose.register",
    "ftlab.commands.estimate_memory.register", "ftlab.commands.exercises.register",
    "ftlab.commands.gguf_setup.register", "ftlab.commands.run.register", "ftlab.commands.sandbox.register",
    "ftlab.commands.sweep.register", "ftlab.commands.toy_model.register", "ftlab.commands.train.register",
    "ftlab.commands.validate.register", "ftlab.core.folder_lock", "ftlab.evaluate.scoring.evaluate_model",
    "ftlab.evaluate.scoring.load_model", "ftlab.evaluate.plot.plot_comparison", "ftlab.evaluate.plot.plot_four_way",
    "ftlab.evaluate.sets.train_candidate",
    "ftlab.generation.chat_generate", "ftlab.merge.parity.default_tolerance", "ftlab.merge.serve.generation_latency",
    "ftlab.merge.runtime.gguf_parity", "ftlab.merge.adapter.load_unmerged", "ftlab.merge.parity.logit_parity",
    "ftlab.merge.parity.logits_diff", "ftlab.merge.adapter.merge_adapter", "ftlab.merge.adapter.quantization_of",
    "ftlab.merge.serve.save_merged", "ftlab.offline.enable_from_env", "ftlab.offline.is_enabled",
    "ftlab.paths.path_form", "ftlab.preference.training.dpo_from_spec", "ftlab.preference.training.dpo_train_cached",
    "ftlab.preference.measure.general_skill_accuracy", "ftlab.preference.training.grpo_train_cached",
    "ftlab.preference.reward.mean_reward", "ftlab.preference.pairs.preference_pairs", "ftlab.preference.measure.reply_logprobs",
    "ftlab.preference.measure.sampled_kl", "ftlab.preference.measure.score_pairs", "ftlab.probes.exact_accuracy",
    "ftlab.probes.general_accuracy", "ftlab.probes.refusal_rate", "ftlab.probes.target_accuracy",
    "ftlab.runner.main_run", "ftlab.runner.run_all", "ftlab.sweep.plot_sweep",
    "ftlab.userdata.reference_accuracy",
}


def _module_name(path: Path) -> str:
    parts = path.relative_to(PKG.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, types.ModuleType]:
    names = sorted(_module_name(p) for p in PKG.rglob("*.py") if p.name != "__main__.py")
    return {n: importlib.import_module(n) for n in names}


MODULES = _modules()


def _public_defs(mod: types.ModuleType) -> list[str]:
    """Names a module defines (not imports) that do not start with ``_``."""
    return [n for n, v in vars(mod).items() if not n.startswith("_") and getattr(v, "__module__", None) == mod.__name__
            and not isinstance(v, types.ModuleType)]


def test_every_module_with_public_names_has_all():
    missing = [n for n, m in MODULES.items() if _public_defs(m) and not hasattr(m, "__all__") and n not in NO_ALL_YET]
    assert not missing, f"add __all__ to: {missing}"
    done = [n for n in NO_ALL_YET if hasattr(MODULES[n], "__all__")]
    assert not done, f"these have __all__ now: remove them from NO_ALL_YET: {done}"


def test_every_name_in_all_exists_and_every_definition_is_listed():
    bad = [f"{n}.{name}" for n, m in MODULES.items() for name in getattr(m, "__all__", []) if not hasattr(m, name)]
    assert not bad, f"in __all__ but not defined: {bad}"
    unlisted = [f"{n}.{name}" for n, m in MODULES.items() if hasattr(m, "__all__")
                for name in _public_defs(m) if name not in m.__all__]
    assert not unlisted, f"public but not in __all__ (add it, or start its name with _): {unlisted}"


def collisions(modules: dict[str, types.ModuleType]) -> dict[str, set[str]]:
    """Names that two modules export for different objects: ``{name: {module, ...}}`` (one module per object)."""
    seen: dict[str, list[tuple[str, object]]] = {}
    for n, m in modules.items():
        for name in getattr(m, "__all__", []):
            obj = getattr(m, name, None)
            if not any(obj is o for _, o in seen.setdefault(name, [])):
                seen[name].append((n, obj))
    return {name: {n for n, _ in objs} for name, objs in seen.items() if len(objs) > 1}


def test_one_name_means_one_thing():
    found = {name: mods for name, mods in collisions(MODULES).items()
             if not (name in INTERFACES and all(m.startswith(INTERFACES[name]) for m in mods))}
    new = {name: mods for name, mods in found.items() if KNOWN_COLLISIONS.get(name) != mods}
    assert not new, f"one name, several meanings (rename one): {new}"
    gone = set(KNOWN_COLLISIONS) - set(found)
    assert not gone, f"renamed: remove from KNOWN_COLLISIONS: {gone}"


def test_the_collision_check_can_fail():
    a, b, c = types.ModuleType("a"), types.ModuleType("b"), types.ModuleType("c")
    a.f, b.f, c.f = (lambda: 1), (lambda: 2), None
    c.f = a.f  # a re-export of one object is fine
    for m in (a, b, c):
        m.__all__ = ["f"]
    assert collisions({"a": a, "c": c}) == {}
    assert collisions({"a": a, "b": b, "c": c}) == {"f": {"a", "b"}}


def untyped(name: str, fn: object) -> list[str]:
    """What a public function lacks: a parameter's or the return's type hint, or a docstring."""
    sig = inspect.signature(fn)
    lacks = [f"a hint on {p}" for p, prm in sig.parameters.items()
             if prm.annotation is inspect.Parameter.empty and p not in ("self", "cls")]
    if sig.return_annotation is inspect.Signature.empty:
        lacks.append("a return hint")
    if not (fn.__doc__ or "").strip():
        lacks.append("a docstring")
    return lacks


def _public_functions() -> dict[str, object]:
    return {f"{n}.{name}": getattr(m, name) for n, m in MODULES.items() for name in getattr(m, "__all__", [])
            if inspect.isfunction(getattr(m, name, None)) and getattr(m, name).__module__ == n}


def test_public_functions_are_typed_and_documented():
    funcs = _public_functions()
    bad = {k: untyped(k, f) for k, f in funcs.items() if k not in UNTYPED and untyped(k, f)}
    assert not bad, "\n".join(f"{k} lacks {', '.join(v)}" for k, v in bad.items())
    fixed = sorted(k for k in UNTYPED if k not in funcs or not untyped(k, funcs[k]))
    assert not fixed, f"typed and documented now (or gone): remove from UNTYPED: {fixed}"


def test_the_typing_check_can_fail():
    def f(x, y: int):
        return x

    def g(x: int) -> int:
        """Doc."""
        return x

    assert untyped("f", f) == ["a hint on x", "a return hint", "a docstring"]
    assert untyped("g", g) == []


def _line_counts() -> dict[str, int]:
    return {str(p.relative_to(PKG)): len(p.read_text(encoding="utf-8").splitlines()) for p in PKG.rglob("*.py")}


@pytest.mark.parametrize("path", sorted(_line_counts()))
def test_no_module_over_600_lines(path):
    n, ceiling = _line_counts()[path], TOO_LONG.get(path, MAX_LINES)
    assert n <= ceiling, f"ftlab/{path} has {n} lines (at most {ceiling}): split it by stage (issue 24)"


def test_the_too_long_list_only_shrinks():
    counts = _line_counts()
    stale = {p: counts.get(p) for p in TOO_LONG if counts.get(p, 0) <= MAX_LINES}
    assert not stale, f"now within {MAX_LINES} lines (or gone): remove from TOO_LONG: {stale}"


def test_notebooks_import_only_public_names():
    """What a notebook imports from ``ftlab`` is in that module's ``__all__`` (or is a module): the notebooks use
    the public API, so a private helper can change without breaking a lesson (issue 24)."""
    import ast
    import json

    private = []
    for nb in BOOKS:
        cells = json.loads(nb.read_text(encoding="utf-8"))["cells"]
        src = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
        for node in ast.walk(ast.parse(src)):
            if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "ftlab":
                mod = importlib.import_module(node.module)
                public = set(getattr(mod, "__all__", ()))
                for alias in node.names:
                    is_module = isinstance(getattr(mod, alias.name, None), types.ModuleType)
                    if alias.name not in public and not is_module:
                        private.append(f"{nb.stem}: from {node.module} import {alias.name}")
    assert not private, "\n".join(private)
