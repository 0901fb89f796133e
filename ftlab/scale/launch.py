"""Launching: the shipped accelerate configs and the three ways to start a run (``run_launch``, the command
line it runs, and ``launch_notebook``).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ftlab.errors import FtlabError, ParameterError

__all__ = [
    "ACCELERATE_CONFIGS",
    "ACCELERATE_DIR",
    "accelerate_config",
    "free_port",
    "launch_command",
    "launch_notebook",
    "run_launch",
]


ACCELERATE_DIR = Path(__file__).resolve().parent.parent / "accelerate"  # ftlab/accelerate
# The accelerate configs shipped with ftlab (ftlab/accelerate/<name>.yaml), and what each is for.
ACCELERATE_CONFIGS = {
    "single_gpu": "one GPU, one process (what `python` does too, but through the same launcher)",
    "ddp": "data parallel on N GPUs: models that fit one GPU, trained N times faster",
    "fsdp_qlora": "FSDP + QLoRA: a 4-bit model sharded over N GPUs, for models that do not fit one",
    "cpu_ddp": "2 CPU processes over gloo: the distributed code path, testable without a GPU",
}


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
