"""Run several trainings of the toy at once, one single-threaded process each, into ftlab's caches.

The toy model trains on one CPU thread (its matrices are too small for two: ``ftlab.core.tune_cpu_threads``), so a
notebook that trains several independent toy runs leaves the other cores idle. ``side_by_side`` starts one process
per call, all at once, and waits; the notebook then makes the same calls and finds each run cached. A call that
failed in its process is simply made again where the notebook makes it, and shows its error there.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Sequence
from typing import Any

__all__ = ["side_by_side", "side_by_side_processes"]


def side_by_side_processes() -> int:
    """How many processes ``side_by_side`` may keep busy: the CPU cores, or 1 when ``FTLAB_THREADS`` gives this
    process a share of them (pytest-xdist's workers: one core each) or on a GPU (one model at a time there)."""
    import torch

    if os.environ.get("FTLAB_THREADS") or torch.cuda.is_available():
        return 1
    return max(1, os.cpu_count() or 1)


def side_by_side(target: str, calls: Sequence[dict[str, Any]], *, processes: int = 0) -> int:
    """Call ``target`` (``"module:function"``) once per keyword dict in ``calls`` (JSON values), each in a process
    of its own with one torch thread, ``processes`` at once (0: all of them, when ``side_by_side_processes()``
    finds 2 cores or more: three one-thread processes keep two cores busy). Returns how many calls succeeded;
    0 when it ran nothing (one core to use, or fewer than 2 calls).

    Example: ``side_by_side("ftlab.evaluate:train_candidate", [dict(name="mixed", n_general=300), ...])``.
    """
    processes = processes or (len(calls) if side_by_side_processes() >= 2 else 1)
    if processes < 2 or len(calls) < 2:
        return 0
    module, function = target.split(":")
    code = f"import json, sys; from {module} import {function}; {function}(**json.loads(sys.argv[1]))"
    env = {**os.environ, "FTLAB_THREADS": "1"}
    waiting, running, done = list(calls), [], 0
    while waiting or running:
        while waiting and len(running) < processes:
            args = [sys.executable, "-c", code, json.dumps(waiting.pop(0))]
            running.append(subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env))
        done += running.pop(0).wait() == 0
    return done
