"""Trained adapters, cached by what makes them (``training_key``), and the named toy recipes that share them."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from ftlab.core import cache_dir, folder_lock, stable_hash
from ftlab.errors import FtlabError
from ftlab.runcard import library_versions
from ftlab.toymodel import resolve_model
from ftlab.train.config import TrainConfig, TrainResult
from ftlab.train.sft import data_fingerprint, train

__all__ = ["RECIPE_RHYTHM", "TRAINING_RECIPES", "recipe_config", "recipe_rows", "train_cached", "train_own", "train_recipe",
           "training_key"]


# Fields of TrainConfig that do not change the trained weights: left out of the cache key. ``data_version`` is free
# text for the run card (the data itself is hashed): notebooks 04, 06 and 11 describe the same support split in their
# own words and still share one adapter.
_NOT_IN_KEY = ("output_dir", "report_to", "resume_from_checkpoint", "data_version")
_KEY_LIBRARIES = ("torch", "transformers", "trl", "peft", "bitsandbytes", "accelerate")


def training_key(cfg: TrainConfig, train_rows, eval_rows=None) -> str:
    """The cache key of a run: a hash of the config, the data, the base model and the library versions.

    Two calls with the same key train the same adapter, so ``train_cached`` reuses it. The toy
    model's resolved folder name carries the hash of its recipe and corpus, so a rebuilt toy base
    never reuses a stale adapter. Example: ``training_key(cfg, rows) == training_key(cfg, list(rows))``.
    """
    rows = list(train_rows) if not hasattr(train_rows, "column_names") else train_rows.to_list()
    evals = None if eval_rows is None else (list(eval_rows) if not hasattr(eval_rows, "column_names")
                                            else eval_rows.to_list())
    libs = library_versions()
    return stable_hash({
        # device "auto" stays out of the key, so adapters cached before the field existed are still found
        "config": {k: v for k, v in asdict(cfg).items() if k not in _NOT_IN_KEY and (k, v) != ("device", "auto")},
        "base": str(resolve_model(cfg.model_id, seed=cfg.toy_seed)),
        "train": data_fingerprint(rows), "eval": data_fingerprint(evals),
        "libraries": {k: libs.get(k) for k in _KEY_LIBRARIES},
    }, 16)


def train_cached(cfg: TrainConfig, train_rows, eval_rows=None, *, force: bool = False,
                 cache: str | os.PathLike[str] | None = None, data_file: str | None = None) -> TrainResult:
    """``train()``, but reuse the adapter of an identical earlier run (same ``training_key``).

    Runs live in ``$FTLAB_CACHE/adapters/<key>`` (``cfg.output_dir`` is ignored). A lock file makes a
    second process wait for the first one's training and then reuse it; a run killed halfway leaves no
    ``train_result.json`` and is trained again. ``data_file`` goes to the run card (the rows are hashed either way).
    Notebooks 04, 06 and 11 share one support adapter through it; 07 and 08 share theirs::

        result = train_cached(TrainConfig(report_to="none"), data.support_splits(0)["train"])
        result.cached  # False the first time, True afterwards
    """
    key = training_key(cfg, train_rows, eval_rows)
    root = Path(cache) if cache else cache_dir("adapters")
    root.mkdir(parents=True, exist_ok=True)
    folder = root / key
    with folder_lock(folder):
        done = folder / "train_result.json"
        if done.exists() and not force:
            info = json.loads(done.read_text())
            if Path(info["adapter_dir"]).is_dir():
                info.update(cached=True, train_loss=[tuple(x) for x in info["train_loss"]],
                            eval_loss=[tuple(x) for x in info["eval_loss"]])
                return TrainResult(**info)
        shutil.rmtree(folder, ignore_errors=True)  # a half-written run, or force
        run_cfg = TrainConfig(**{**asdict(cfg), "output_dir": str(folder), "resume_from_checkpoint": None})
        result = train(run_cfg, train_rows, eval_rows, data_file=data_file)
        for ckpt in folder.glob("checkpoint-*"):  # the adapter is saved; checkpoints only cost disk
            shutil.rmtree(ckpt, ignore_errors=True)
        tmp = done.with_suffix(".tmp")
        tmp.write_text(json.dumps(result.to_dict(), indent=2))
        tmp.replace(done)
        return result


TRAINING_RECIPES = {
    "support": "the support training split only (notebook 04's narrow data)",
    "mixed": "the support split + 100 general-skill examples + 60 refusals, shuffled (ftlab.data.support_mix)",
}


# Each recipe's evaluation rhythm (eval_steps, save_steps). The support recipe trains 256 steps at the toy's size
# defaults: evaluating every 32 steps gives 8 points of the curve for half the evaluation time of every 16 (each
# evaluation of the 180 validation rows costs ~0.7 s on the 2-core CPU, 16 of them ~12 s of a ~60 s run). Measured
# (toy v8, seed 0): every 16 steps, best step 256, final validation loss 0.702; every 32, best step 224, 0.686 (the
# evaluations shift the random stream, so the two runs differ a little); held-out target accuracy 0.93 both ways.
RECIPE_RHYTHM = {"support": (32, 64), "mixed": (16, 32)}


def recipe_rows(recipe: str, toy_seed: int = 0) -> list[dict[str, Any]]:
    """The training rows of a named toy recipe (``TRAINING_RECIPES``)."""
    from ftlab.data import support_mix, support_splits

    if recipe == "support":
        return support_splits(toy_seed)["train"]
    if recipe == "mixed":
        return support_mix(toy_seed)
    raise FtlabError(f"recipe={recipe!r}: use one of {sorted(TRAINING_RECIPES)}")


def train_recipe(recipe: str = "mixed", *, toy_seed: int = 0, **config: Any) -> TrainResult:
    """Train (or reuse from the cache) an adapter on a named toy recipe, with the support validation split.

    ``config`` overrides ``TrainConfig`` fields. Notebooks that call it with the same arguments share one adapter
    (06 and 11 on the support recipe at the toy's size defaults, which is also notebook 04's run).
    Example: ``train_recipe("support").adapter_dir``.
    """
    from ftlab.data import support_splits

    cfg = recipe_config(recipe, toy_seed=toy_seed, **config)
    return train_cached(cfg, recipe_rows(recipe, toy_seed), support_splits(toy_seed)["validation"])


def recipe_config(recipe: str, *, toy_seed: int = 0, **config: Any) -> TrainConfig:
    """The ``TrainConfig`` that ``train_recipe`` trains: ``config`` over the recipe's evaluation rhythm.
    Example: ``recipe_config("support", learning_rate=5e-3, num_train_epochs=4.0).eval_steps == 32``."""
    config.setdefault("report_to", "none")
    eval_steps, save_steps = RECIPE_RHYTHM.get(recipe, (16, 32))
    config.setdefault("eval_steps", eval_steps)  # notebook 04's evaluation rhythm for the support recipe
    config.setdefault("save_steps", save_steps)
    config.setdefault("data_version", f"toy support v1, recipe {recipe!r} (seed {toy_seed})")
    return TrainConfig(toy_seed=toy_seed, **config)


def train_own(rows: Sequence[dict[str, Any]], *, data_file: str = "", toy_seed: int = 0, **config: Any) -> TrainResult:
    """Train (or reuse from the cache) an adapter on the learner's own rows, with no validation set: their
    held-out rows stay out of training entirely. ``config`` overrides ``TrainConfig`` fields.
    Example: ``train_own(load_user_data("my.jsonl")[0], data_file="my.jsonl", max_steps=10)``."""
    config.setdefault("report_to", "none")
    config.setdefault("data_version", f"your data: {Path(data_file).name} ({len(rows)} training rows)")
    return train_cached(TrainConfig(toy_seed=toy_seed, **config), list(rows), None)
