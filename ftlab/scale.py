"""Scaling out past one GPU with Hugging Face accelerate: one training entry point, three launchers.

The training code is :func:`ftlab.train.train`, the same code notebook 04 runs. This module reads it a
config file and launches it:

- plainly: ``ftlab train --config run.yaml`` (one process);
- under accelerate: ``accelerate launch --config_file ftlab/accelerate/ddp.yaml -m ftlab train --config run.yaml``
  (DDP, FSDP + QLoRA, or 2 CPU processes over gloo with ``cpu_ddp.yaml``);
- from a notebook: ``launch_notebook(train_from_config, ("run.yaml",), num_processes=2)``
  (``accelerate.notebook_launcher``).

TRL's ``SFTTrainer`` is a transformers ``Trainer``, which asks accelerate how it was launched: the same
code becomes data parallel (every process a whole model, gradients averaged) or fully sharded (FSDP:
every process 1/N of the weights, gradients and optimizer states). Only rank 0 writes the adapter, the
run card and ``summary.json``.

How much memory each GPU needs is :func:`per_gpu_memory`: ftlab's estimator divided over the shards, plus
what does not shard. Example::

    >>> m = per_gpu_memory("llama-3.1-70b", 1024, 1, n_gpus=2, strategy="fsdp", gradient_checkpointing=True,
    ...                    kbit_prep=False, optim="adamw")
    >>> m.total_gib < m.single_gpu_gib
    True
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import types
import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from ftlab.errors import FtlabError, ParameterError
from ftlab.memory import (
    ALLOCATOR_SLACK,
    DEFAULT_CUDA_CONTEXT_GIB,
    GIB,
    MemoryEstimate,
    ModelShape,
    _ceil,
    _r512,
    estimate_memory,
    resolve_shape,
)
from ftlab.train import TrainConfig, TrainResult, distributed_env

__all__ = ["ACCELERATE_CONFIGS", "ACCELERATE_DIR", "DATA_KEYS", "GPU_SIZES", "PREFERENCE_KEYS",
           "STRATEGIES", "TOY_DATA", "PerGPUMemory", "RunSpec", "accelerate_config", "compare_runs",
           "free_port", "gpu_plan", "gpus_needed", "launch_command", "launch_notebook", "load_rows",
           "load_run_spec", "per_gpu_memory", "relative_difference", "run_launch", "split_per_gpu",
           "summarize", "train_from_config"]


ACCELERATE_DIR = Path(__file__).resolve().parent / "accelerate"
# The accelerate configs shipped with ftlab (ftlab/accelerate/<name>.yaml), and what each is for.
ACCELERATE_CONFIGS = {
    "single_gpu": "one GPU, one process (what `python` does too, but through the same launcher)",
    "ddp": "data parallel on N GPUs: models that fit one GPU, trained N times faster",
    "fsdp_qlora": "FSDP + QLoRA: a 4-bit model sharded over N GPUs, for models that do not fit one",
    "cpu_ddp": "2 CPU processes over gloo: the distributed code path, testable without a GPU",
}
DATA_KEYS = ("data", "eval_data", "train_file", "eval_file", "max_train_rows", "max_eval_rows")
PREFERENCE_KEYS = ("method", "beta", "sft_adapter")  # method: dpo (notebook 11)
TOY_DATA = "toy:support"
STRATEGIES = ("ddp", "fsdp")


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


# --- launching ------------------------------------------------------------------------------------------

def accelerate_config(name: str) -> Path:
    """The path of a shipped accelerate config: ``single_gpu``, ``ddp``, ``fsdp_qlora`` or ``cpu_ddp``
    (or any existing YAML file, returned as is)."""
    if name in ACCELERATE_CONFIGS:
        return ACCELERATE_DIR / f"{name}.yaml"
    if Path(name).is_file():
        return Path(name)
    raise ParameterError(f"accelerate config {name!r}: use one of {', '.join(ACCELERATE_CONFIGS)} or a YAML file")


def free_port() -> int:
    """A free TCP port on 127.0.0.1 for the rendezvous (so that parallel runs do not collide on 29500)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch_command(train_config: str | os.PathLike[str], accelerate: str = "cpu_ddp", *,
                   num_processes: int | None = None, port: int | None = None, output_dir: str | None = None,
                   json_out: bool = False) -> list[str]:
    """The ``accelerate launch ... -m ftlab train --config ...`` command line, as a list.

    >>> cmd = launch_command("run.yaml", "ddp", num_processes=2, port=29555)
    >>> " ".join(cmd[1:])  # doctest: +ELLIPSIS
    '-m accelerate.commands.launch --config_file .../ddp.yaml --num_processes 2 --main_process_port 29555 -m ftlab train --config run.yaml'
    """
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(accelerate_config(accelerate))]
    if num_processes is not None:
        cmd += ["--num_processes", str(num_processes)]
    if port is not None:
        cmd += ["--main_process_port", str(port)]
    cmd += ["-m", "ftlab", "train", "--config", str(train_config)]
    if output_dir:
        cmd += ["--out", str(output_dir)]
    if json_out:
        cmd.append("--json")
    return cmd


def run_launch(train_config: str | os.PathLike[str], accelerate: str = "cpu_ddp", *, output_dir: str,
               num_processes: int | None = None, timeout: float = 900, quiet: bool = True) -> dict[str, Any]:
    """Run ``accelerate launch`` in a subprocess and return rank 0's ``summary.json``.

    A subprocess keeps the distributed processes apart from the caller (a notebook kernel has threads and
    an accelerate state of its own). On failure the error names the last line the processes printed.
    """
    cmd = launch_command(train_config, accelerate, num_processes=num_processes, port=free_port(),
                         output_dir=output_dir)
    env = dict(os.environ, PYTHONUNBUFFERED="1", TOKENIZERS_PARALLELISM="false")
    if accelerate == "cpu_ddp":
        # CPU processes over gloo, also on a GPU machine: with a GPU visible, every process would put its model
        # on cuda:0 (one GPU, two ranks) and the comparison with a CPU run would compare two devices.
        env["CUDA_VISIBLE_DEVICES"] = ""
    try:
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise FtlabError(f"accelerate launch did not finish within {timeout:.0f} s: {' '.join(cmd)}") from None
    if not quiet:
        print(proc.stdout[-4000:], proc.stderr[-4000:], sep="\n")
    summary_path = Path(output_dir) / "summary.json"
    if proc.returncode != 0 or not summary_path.is_file():
        lines = (proc.stderr + "\n" + proc.stdout).strip().splitlines()
        ours = [ln for ln in lines if ln.startswith("ftlab train: error:")]  # a rank's one-line FtlabError
        errors = [ln for ln in lines if "Error" in ln]
        last = (ours or errors or lines or ["no output"])[-1]
        raise FtlabError(f"accelerate launch failed (exit {proc.returncode}): {last.strip()[:300]}")
    return json.loads(summary_path.read_text(encoding="utf-8"))


def launch_notebook(function: Callable[..., Any], args: Sequence[Any] = (), num_processes: int = 2,
                    **kwargs: Any) -> None:
    """Run ``function(*args)`` in ``num_processes`` processes with ``accelerate.notebook_launcher``.

    The processes are forked from the kernel, so two things must not have happened in it before (accelerate
    refuses both): an ``Accelerator``/``Trainer`` created in the kernel, or bitsandbytes imported (it
    initializes CUDA). Keep imports inside ``function``; it returns nothing to the caller, so write results
    to files (``train_from_config`` writes ``summary.json``). On a CPU the processes use gloo.
    """
    from accelerate import notebook_launcher
    from accelerate.state import AcceleratorState

    if num_processes < 1:
        raise ParameterError(f"num_processes={num_processes} must be at least 1")
    if AcceleratorState._shared_state:
        raise FtlabError("an Accelerator (or a Trainer) already ran in this kernel, so notebook_launcher cannot fork "
                         "clean processes: restart the kernel and launch before training here, or use run_launch()")
    if "bitsandbytes" in sys.modules:
        raise FtlabError("bitsandbytes is already imported in this kernel (it initializes CUDA), so notebook_launcher "
                         "cannot fork: restart the kernel and import it inside the launched function, or use run_launch()")
    kwargs.setdefault("use_port", str(free_port()))
    notebook_launcher(function, args=tuple(args), num_processes=num_processes, **kwargs)


# --- memory per GPU ---------------------------------------------------------------------------------------

@dataclass
class PerGPUMemory:
    """The memory one GPU holds when a training step is spread over ``n_gpus`` (bytes per GPU)."""

    model: str
    strategy: str
    n_gpus: int
    sharded: dict[str, int]  # already divided by n_gpus
    replicated: dict[str, int]  # what every GPU holds in full
    total: int
    single_gpu_total: int
    offloaded: int = 0  # bytes per process kept in CPU RAM (FSDP with fsdp_offload_params)
    notes: list[str] = field(default_factory=list)

    @property
    def total_gib(self) -> float:
        return self.total / GIB

    @property
    def single_gpu_gib(self) -> float:
        return self.single_gpu_total / GIB

    @property
    def peak_allocated(self) -> int:
        """What ``torch.cuda.max_memory_allocated`` should report on each GPU: the total less the CUDA
        context, the allocator's slack and paged optimizer states."""
        skip = ("cuda_context", "allocator_overhead", "optimizer_states_paged")
        return sum(v for k, v in [*self.sharded.items(), *self.replicated.items()] if k not in skip)

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "strategy": self.strategy, "n_gpus": self.n_gpus,
                "total_gib": round(self.total_gib, 3), "peak_allocated_gib": round(self.peak_allocated / GIB, 3),
                "single_gpu_gib": round(self.single_gpu_gib, 3),
                "offloaded_gib": round(self.offloaded / GIB, 3),
                "sharded_gib": {k: round(v / GIB, 4) for k, v in self.sharded.items()},
                "replicated_gib": {k: round(v / GIB, 4) for k, v in self.replicated.items()},
                "notes": list(self.notes)}

    def table(self) -> str:
        width = max(len(k) for k in [*self.sharded, *self.replicated])
        lines = [f"{self.model}, {self.strategy.upper()} on {self.n_gpus} GPUs: per GPU"]
        if self.offloaded:
            lines.append(f"  in CPU RAM (fsdp_offload_params), per process: {self.offloaded / GIB:.3f} GiB")
        if self.sharded:
            lines.append(f"  sharded (÷{self.n_gpus}):")
            lines += [f"    {k:<{width}}  {v / GIB:8.3f} GiB" for k, v in self.sharded.items()]
        lines.append("  on every GPU in full:")
        lines += [f"    {k:<{width}}  {v / GIB:8.3f} GiB" for k, v in self.replicated.items()]
        lines.append(f"  {'total per GPU':<{width + 2}}  {self.total_gib:8.3f} GiB   (one GPU alone: {self.single_gpu_gib:.3f} GiB)")
        return "\n".join(lines)


def _packed_weight_bytes(shape: ModelShape, quant: str) -> int:
    """Bytes of the quantized linear weights themselves (the 4-bit codes), without their quantization state."""
    per_layer = 0
    for n_in, n_out in shape.linear_shapes().values():
        n = n_in * n_out
        per_layer += {"bf16": _r512(2 * n), "int8": _r512(n)}.get(quant, _r512(_ceil(n, 2)))
    return per_layer * shape.num_layers


def split_per_gpu(est: MemoryEstimate, shape: ModelShape, n_gpus: int, strategy: str = "fsdp",
                  prefetch_units: int = 2, offload: bool = False) -> PerGPUMemory:
    """Spread a single-GPU :class:`~ftlab.memory.MemoryEstimate` over ``n_gpus``.

    **DDP** replicates everything: each GPU holds the single-GPU step, plus DDP's gradient buckets (a flat
    copy of every trainable gradient, for the all-reduce). It trains N micro-batches at once; it does not
    make a model fit.

    **FSDP** (``FULL_SHARD``) keeps 1/N of each parameter, gradient and optimizer state on each GPU:
    the 4-bit codes, embeddings, lm_head, norms, LoRA weights, their gradients and optimizer states. What
    does not shard:

    - activations, backward transients and the loss: each GPU runs its own micro-batch;
    - the 4-bit quantization state (absmax, code book): module attributes, not FSDP parameters;
    - the gathered units: FSDP all-gathers a decoder layer before using it and frees it after; with
      ``BACKWARD_PRE`` prefetch ``prefetch_units`` layers are whole at once. The root unit (embeddings,
      final norm, lm_head) stays gathered from the forward to the backward (FSDP does not reshard the root
      after the forward), so at the peak it is whole;
    - the CUDA context, and the allocator's slack on what this GPU holds.

    With ``offload=True`` (``fsdp_offload_params``) the shards, their gradients and the optimizer states live
    in CPU RAM; the GPU holds what does not shard and the gathered units, whole.

    NCCL's communication buffers (some hundred MiB) are not counted.
    """
    if n_gpus < 1:
        raise ParameterError(f"n_gpus={n_gpus} must be at least 1")
    if strategy not in STRATEGIES:
        raise ParameterError(f"strategy={strategy!r}: use one of {', '.join(STRATEGIES)}")
    if offload and strategy != "fsdp":
        raise ParameterError("offload=True is FSDP's fsdp_offload_params; DDP keeps everything on the GPU")
    b = est.breakdown
    notes: list[str] = []
    context = b["cuda_context"]
    if strategy == "ddp":
        replicated = {k: v for k, v in b.items() if k not in ("allocator_overhead", "cuda_context")}
        replicated["ddp_gradient_buckets"] = b["lora_params"] if n_gpus > 1 else 0
        sharded: dict[str, int] = {}
        notes.append("DDP: every GPU holds the whole model and a micro-batch; N GPUs train N micro-batches per step")
    else:
        L = shape.num_layers
        codes = min(_packed_weight_bytes(shape, est.setup.quant), b["weights_quantized"])
        layer_unit = (codes + b["weights_other"] + b["lora_params"]) / L
        # a gathered unit adds the other GPUs' shards to this one's; offloaded, it arrives whole from the CPU
        not_own = 1.0 if offload else 1 - 1 / n_gpus
        sharded = {k: _ceil(int(v), n_gpus) for k, v in {
            "weights_4bit_codes": codes, "weights_embeddings_lm_head": b["weights_embeddings_lm_head"],
            "weights_other": b["weights_other"], "lora_params": b["lora_params"], "gradients": b["gradients"],
            "optimizer_states": b["optimizer_states"], "optimizer_states_paged": b["optimizer_states_paged"],
        }.items()}
        replicated = {
            "weights_quant_state": b["weights_quantized"] - codes,
            "fsdp_gathered_layers": int(min(prefetch_units, L) * layer_unit * not_own),
            "fsdp_gathered_root": int(b["weights_embeddings_lm_head"] * not_own),
            "activations": b["activations"], "backward_transients": b["backward_transients"],
            "logits_and_loss": b["logits_and_loss"],
        }
        notes.append(f"FSDP FULL_SHARD: parameters, gradients and optimizer states ÷{n_gpus}; each GPU still "
                     "holds its micro-batch's activations and, at the peak, the layers being used")
    offloaded = 0
    if offload:
        offloaded = sum(sharded.values())
        sharded = {}
        notes.append("fsdp_offload_params: the shards, gradients and optimizer states wait in CPU RAM; "
                     "each step copies them to the GPU and back (slower)")
    # what torch.cuda.max_memory_allocated sees: everything but the paged optimizer states (managed memory)
    peak = sum(v for k, v in [*sharded.items(), *replicated.items()] if k != "optimizer_states_paged")
    replicated["allocator_overhead"] = int(ALLOCATOR_SLACK * peak)
    replicated["cuda_context"] = context
    total = sum(sharded.values()) + sum(replicated.values())
    notes.append("NCCL communication buffers (a few hundred MiB per GPU) are not counted")
    return PerGPUMemory(model=est.model, strategy=strategy, n_gpus=n_gpus, sharded=sharded, replicated=replicated,
                        total=int(total), single_gpu_total=est.total, offloaded=int(offloaded), notes=notes)


def per_gpu_memory(model: str | ModelShape | dict, seq_len: int, batch_size: int = 1, *, n_gpus: int = 2,
                   strategy: str = "fsdp", cuda_context_gib: float = DEFAULT_CUDA_CONTEXT_GIB,
                   prefetch_units: int = 2, offload: bool = False, **options: Any) -> PerGPUMemory:
    """The memory per GPU of a training step with ``batch_size`` rows of ``seq_len`` tokens *per GPU*,
    spread over ``n_gpus`` with ``strategy`` ``"ddp"`` or ``"fsdp"``. ``options`` go to
    :func:`ftlab.memory.estimate_memory` (``gradient_checkpointing``, ``optim``, ``kbit_prep``, ...)."""
    shape = resolve_shape(model)
    est = estimate_memory(shape, seq_len, batch_size, cuda_context_gib=cuda_context_gib, **options)
    return split_per_gpu(est, shape, n_gpus, strategy, prefetch_units, offload)


def gpus_needed(model: str | ModelShape | dict, seq_len: int, batch_size: int, gpu_mem_gib: float, *,
                strategy: str = "fsdp", max_gpus: int = 16, budget_fraction: float = 0.92, offload: bool = False,
                **options: Any) -> PerGPUMemory | None:
    """The fewest GPUs of ``gpu_mem_gib`` on which the step fits (92% of the memory by default), with its
    per-GPU split; ``None`` if even ``max_gpus`` are not enough. With DDP the answer is 1 or None: DDP
    replicates the model, so more GPUs never make it fit."""
    for n in range(1, max_gpus + 1):
        fsdp = strategy == "fsdp" and (n > 1 or offload)
        m = per_gpu_memory(model, seq_len, batch_size, n_gpus=n, strategy="fsdp" if fsdp else "ddp",
                           offload=offload and fsdp, **options)
        if m.total_gib <= budget_fraction * gpu_mem_gib:
            return m
        if strategy == "ddp":
            return None
    return None


def relative_difference(a: float, b: float) -> float:
    """``|a - b| / |b|``: how far ``a`` is from the reference ``b``.

    >>> round(relative_difference(1.01, 1.0), 4)
    0.01
    """
    if b == 0:
        raise ParameterError("the reference value is 0: a relative difference is undefined")
    return abs(a - b) / abs(b)


# GPUs as sold (their memory in GB as the vendor states it, which is close to GiB for these cards).
GPU_SIZES = {"RTX 4090 (24 GB)": 24.0, "L40S / RTX 6000 Ada (48 GB)": 48.0, "A100 / H100 (80 GB)": 80.0,
             "H200 (141 GB)": 141.0}


def gpu_plan(models: Sequence[str], seq_len: int, batch_size: int = 1, *, gpu_sizes: dict[str, float] | None = None,
             **options: Any) -> list[dict[str, Any]]:
    """For each model and GPU: how many GPUs the step needs (one, else FSDP over several), and the memory per GPU.

    >>> rows = gpu_plan(["llama-3.1-8b"], 1024, 4, gradient_checkpointing=True)
    >>> [r["gpus"] for r in rows]
    [1, 1, 1, 1]
    """
    rows = []
    for model in models:
        for gpu, gib in (gpu_sizes or GPU_SIZES).items():
            fit = gpus_needed(model, seq_len, batch_size, gib, **options)
            rows.append({"model": model, "gpu": gpu, "gpu_gib": gib, "gpus": fit.n_gpus if fit else None,
                         "how": ("FSDP" if fit.strategy == "fsdp" else "one GPU") if fit else "does not fit 16 GPUs",
                         "per_gpu_gib": round(fit.total_gib, 1) if fit else None})
    return rows


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
