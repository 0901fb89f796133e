"""The training config file (``RunSpec``, read with each line's number for errors), the run it describes, its
``summary.json``, and comparing a single-process run with a distributed one.
"""

from __future__ import annotations

import json
import os
import types
import typing
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from ftlab.errors import FtlabError, ParameterError
from ftlab.scale.launch import ACCELERATE_DIR
from ftlab.train import TrainConfig, TrainResult, distributed_env

__all__ = [
    "DATA_KEYS",
    "PREFERENCE_KEYS",
    "TOY_DATA",
    "RunSpec",
    "compare_runs",
    "load_rows",
    "load_run_spec",
    "relative_difference",
    "summarize",
    "train_from_config",
]


DATA_KEYS = ("data", "eval_data", "train_file", "eval_file", "max_train_rows", "max_eval_rows")
PREFERENCE_KEYS = ("method", "beta", "sft_adapter")  # method: dpo (notebook 11)
TOY_DATA = "toy:support"


# --- the training config file -----------------------------------------------------------------------------

@dataclass
class RunSpec:
    """A training config file, parsed: the ``TrainConfig`` and where the examples come from."""

    train: TrainConfig
    data: str = TOY_DATA  # "toy:support" or a JSONL file of {"messages": [...]}
    eval_data: str | None = None  # a JSONL file; None: the toy validation split for toy data, else no eval
    max_train_rows: int | None = None
    max_eval_rows: int | None = None
    source: str = ""  # the file it came from
    train_file: str = ""  # the learner's OpenAI chat JSONL, validated first (ftlab.userdata); wins over data
    eval_file: str = ""  # its held-out file; empty: 15 % of train_file held out deterministically
    method: str = "sft"  # "sft" (SFTTrainer) or "dpo" (DPOTrainer on preference pairs: ftlab.preference)
    beta: float = 0.1  # DPO's beta (method: dpo)
    sft_adapter: str | None = None  # method: dpo: the SFT adapter to start from (its copy is the reference)

    def to_dict(self) -> dict[str, Any]:
        from dataclasses import asdict

        return {"data": self.data, "eval_data": self.eval_data, "train_file": self.train_file,
                "eval_file": self.eval_file, "max_train_rows": self.max_train_rows,
                "max_eval_rows": self.max_eval_rows, **asdict(self.train)}


def _key_lines(text: str) -> dict[str, int]:
    """1-based line of each top-level key of a YAML/JSON mapping (for error messages)."""
    import yaml

    try:
        node = yaml.compose(text)
    except yaml.YAMLError:
        return {}
    if not isinstance(node, yaml.MappingNode):
        return {}
    return {k.value: k.start_mark.line + 1 for k, _ in node.value if isinstance(k, yaml.ScalarNode)}


def _type_name(hint: Any) -> str:
    return getattr(hint, "__name__", None) or str(hint).replace("typing.", "")


def _coerce(name: str, value: Any, hint: Any, where: str) -> Any:
    """Check ``value`` against a dataclass field's type; numbers written as text (``5e-3``, which YAML
    reads as a string) become numbers."""
    options = typing.get_args(hint) if typing.get_origin(hint) in (typing.Union, types.UnionType) else (hint,)
    if value is None:
        if type(None) in options:
            return None
        raise ParameterError(f"{where}: {name} must not be empty (expected {_type_name(hint)})")
    for t in options:
        base = typing.get_origin(t) or t
        if base is bool and isinstance(value, bool):
            return value
        if base is int and isinstance(value, int) and not isinstance(value, bool):
            return value
        if base is float and isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        if base is float and isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
        if base is str and isinstance(value, str):
            return value
        if base is list and isinstance(value, list) and all(isinstance(v, str) for v in value):
            return value
        if base is dict and isinstance(value, dict):
            return value
        if t is Any:
            return value
    raise ParameterError(f"{where}: {name}={value!r} must be {_type_name(hint)}")


def load_run_spec(config: str | os.PathLike[str] | dict[str, Any], **overrides: Any) -> RunSpec:
    """Read a training config (YAML or JSON file, or a dict): ``TrainConfig`` fields plus the data keys.

    ``data`` is ``"toy:support"`` (the toy world's support set, with its validation split) or a JSONL file
    of ``{"messages": [...]}`` rows; ``eval_data`` a JSONL file; ``max_train_rows``/``max_eval_rows`` cut
    them. Relative data paths are resolved against the config file's folder. ``overrides`` win over the file.

    >>> spec = load_run_spec({"quantization": "none", "learning_rate": "5e-3", "max_steps": 4})
    >>> spec.train.learning_rate, spec.data
    (0.005, 'toy:support')
    """
    import yaml

    if isinstance(config, dict):
        raw, where, lines, folder = dict(config), "config", {}, Path.cwd()
    else:
        path = Path(config)
        if not path.is_file():
            raise FtlabError(f"training config {path} not found (give a YAML or JSON file; examples in "
                             f"{ACCELERATE_DIR.parent / 'accelerate'}/train_*.yaml)")
        text = path.read_text(encoding="utf-8")
        where, folder = str(path), path.resolve().parent
        try:
            raw = yaml.safe_load(text) if text.strip() else {}
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            line = f" line {mark.line + 1}" if mark else ""
            raise FtlabError(f"{path}:{line} not valid YAML/JSON ({getattr(exc, 'problem', None) or exc})") from None
        if not isinstance(raw, dict):
            raise FtlabError(f"{path}: expected a mapping of settings (key: value), got {type(raw).__name__}")
        lines = _key_lines(text)
    raw.update(overrides)
    hints = typing.get_type_hints(TrainConfig)
    names = [f.name for f in fields(TrainConfig)]
    kwargs: dict[str, Any] = {}
    spec_kwargs: dict[str, Any] = {}
    for key, value in raw.items():
        at = f"{where} line {lines[key]}" if key in lines else where
        if key in ("train_file", "eval_file"):
            if value is not None and not isinstance(value, str):
                raise ParameterError(f"{at}: {key} must be a JSONL path, got {value!r}")
            spec_kwargs[key] = value or ""
        elif key in ("data", "eval_data"):
            if value is not None and not isinstance(value, str):
                raise ParameterError(f"{at}: {key} must be '{TOY_DATA}' or a JSONL path, got {value!r}")
            spec_kwargs[key] = value
        elif key in ("max_train_rows", "max_eval_rows"):
            spec_kwargs[key] = _coerce(key, value, int | None, at)
            if spec_kwargs[key] is not None and spec_kwargs[key] < 1:
                raise ParameterError(f"{at}: {key}={value} must be at least 1 (or leave it out)")
        elif key in PREFERENCE_KEYS:
            spec_kwargs[key] = _coerce(key, value, {"method": str, "beta": float, "sft_adapter": str | None}[key], at)
            if key == "method" and value not in ("sft", "dpo"):
                raise ParameterError(f"{at}: method={value!r}: use 'sft' or 'dpo'")
        elif key in names:
            kwargs[key] = _coerce(key, value, hints[key], at)
        else:
            raise ParameterError(f"{at}: unknown setting {key!r}; use TrainConfig fields ({', '.join(names)}) "
                                 f"or {', '.join(DATA_KEYS + PREFERENCE_KEYS)}")
    for key in ("train_file", "eval_file"):
        if spec_kwargs.get(key) and not Path(spec_kwargs[key]).expanduser().is_absolute():
            spec_kwargs[key] = str(folder / spec_kwargs[key])
    for key in ("data", "eval_data", "sft_adapter"):
        value = spec_kwargs.get(key)
        if value and not value.startswith("toy:") and value.lower() != "none" and not Path(value).is_absolute():
            spec_kwargs[key] = str(folder / value)
        if isinstance(value, str) and value.lower() == "none":
            spec_kwargs[key] = "none"
    cfg = TrainConfig(**kwargs)
    cfg.validate()
    return RunSpec(train=cfg, source=where, **spec_kwargs)


def _read_rows(path: str, what: str) -> list[dict[str, Any]]:
    p = Path(path)
    if not p.is_file():
        raise FtlabError(f"{what} file {p} not found")
    rows = []
    with p.open(encoding="utf-8") as f:
        for i, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise FtlabError(f"{p} line {i}: not valid JSON ({exc.msg}); check it with `ftlab validate {p}`") from None
            if not isinstance(row, dict) or not isinstance(row.get("messages"), list):
                raise FtlabError(f"{p} line {i}: expected {{\"messages\": [...]}}; check it with `ftlab validate {p}`")
            rows.append(row)
    if not rows:
        raise FtlabError(f"{what} file {p} has no examples")
    return rows


def load_rows(spec: RunSpec) -> tuple[list[dict[str, Any]], list[dict[str, Any]] | None, str | None]:
    """``(train_rows, eval_rows or None, data_file or None)`` for a :class:`RunSpec`."""
    from ftlab import data as toy

    data_file = None
    if spec.train_file:  # the learner's own data: validated, 15 % held out unless eval_file is given
        from ftlab.userdata import load_user_data

        train_rows, eval_rows = load_user_data(spec.train_file, spec.eval_file or None, seed=spec.train.seed)
        data_file = spec.train_file
    elif spec.data == TOY_DATA:
        splits = toy.support_splits(spec.train.toy_seed)
        train_rows, eval_rows = splits["train"], splits["validation"]
    elif spec.data.startswith("toy:"):
        raise ParameterError(f"{spec.source}: data={spec.data!r}: the toy data set is '{TOY_DATA}'")
    else:
        train_rows, eval_rows, data_file = _read_rows(spec.data, "training data"), None, spec.data
    if spec.train_file:
        pass  # train_file/eval_file decide the eval rows
    elif spec.eval_data == "none":
        eval_rows = None
    elif spec.eval_data and spec.eval_data != TOY_DATA:
        eval_rows = _read_rows(spec.eval_data, "eval_data")
    if spec.max_train_rows:
        train_rows = train_rows[: spec.max_train_rows]
    if spec.max_eval_rows and eval_rows is not None:
        eval_rows = eval_rows[: spec.max_eval_rows]
    return train_rows, eval_rows, data_file


def summarize(result: TrainResult, spec: RunSpec, processes: int) -> dict[str, Any]:
    """What ``summary.json`` holds: losses, steps, the batch per process and in all, the time."""
    cfg = spec.train
    return {
        "processes": processes,
        "per_device_train_batch_size": cfg.per_device_train_batch_size,
        "gradient_accumulation_steps": cfg.gradient_accumulation_steps,
        "effective_batch": cfg.per_device_train_batch_size * cfg.gradient_accumulation_steps * processes,
        "global_step": result.global_step,
        "final_train_loss": result.train_loss[-1][1] if result.train_loss else None,
        "final_eval_loss": result.eval_loss[-1][1] if result.eval_loss else None,
        "best_eval_loss": result.best_eval_loss,
        "train_loss": result.train_loss,
        "eval_loss": result.eval_loss,
        "stop_reason": result.stop_reason,
        "seconds": result.seconds,
        "output_dir": result.output_dir,
        "adapter_dir": result.adapter_dir,
        "run_card": result.run_card,
        "config": spec.source,
        "data": spec.data,
        "quantization": cfg.quantization,
    }


def train_from_config(config: str | os.PathLike[str] | dict[str, Any], output_dir: str | None = None,
                      **overrides: Any) -> dict[str, Any]:
    """Train from a config file with :func:`ftlab.train.train`, however the process was launched.

    Under ``accelerate launch`` (or :func:`launch_notebook`) every process runs this; the Trainer splits the
    batches, averages the gradients (DDP) or shards the model (FSDP). Rank 0 writes
    ``<output_dir>/summary.json`` (see :func:`summarize`), the adapter and the run card. Returns the summary
    on every rank.
    """
    from ftlab.train import train

    if output_dir:
        overrides["output_dir"] = output_dir
    spec = load_run_spec(config, **overrides)
    if spec.method == "dpo":
        from ftlab.preference import dpo_from_spec

        return dpo_from_spec(spec)
    train_rows, eval_rows, data_file = load_rows(spec)
    result = train(spec.train, train_rows, eval_rows, data_file=data_file)
    env = distributed_env()
    summary = summarize(result, spec, env["world_size"])
    if env["rank"] == 0:
        out = Path(result.output_dir) / "summary.json"
        out.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return summary


def relative_difference(a: float, b: float) -> float:
    """``|a - b| / |b|``: how far ``a`` is from the reference ``b``.

    >>> round(relative_difference(1.01, 1.0), 4)
    0.01
    """
    if b == 0:
        raise ParameterError("the reference value is 0: a relative difference is undefined")
    return abs(a - b) / abs(b)


def compare_runs(single: dict[str, Any], distributed: dict[str, Any], tolerance: float) -> dict[str, Any]:
    """Compare two ``summary.json`` dicts that should be the same training: the relative difference of the
    final eval losses against ``tolerance``, and the largest difference along the eval curve.

    Refuses runs that are not comparable (different effective batch or number of steps).
    """
    for key in ("effective_batch", "global_step"):
        if single[key] != distributed[key]:
            raise FtlabError(f"the runs differ in {key} ({single[key]} vs {distributed[key]}): compare runs with the "
                             "same effective batch and steps")
    if single["final_eval_loss"] is None or distributed["final_eval_loss"] is None:
        raise FtlabError("a run has no eval loss: give both runs validation data (eval_data or toy:support)")
    rel = relative_difference(distributed["final_eval_loss"], single["final_eval_loss"])
    curve = max(relative_difference(d[1], s[1])
                for s, d in zip(single["eval_loss"], distributed["eval_loss"], strict=True))
    return {"single_eval_loss": single["final_eval_loss"], "ddp_eval_loss": distributed["final_eval_loss"],
            "relative_difference": rel, "max_curve_difference": curve, "tolerance": tolerance,
            "match": rel <= tolerance, "effective_batch": single["effective_batch"], "steps": single["global_step"],
            "processes": distributed["processes"]}
