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

__all__ = ["side_by_side"]


def side_by_side(target: str, calls: Sequence[dict[str, Any]], *, parallel: bool, processes: int = 0) -> int:
    """Call ``target`` (``"module:function"``) once per keyword dict in ``calls`` (JSON values), each in a process
    of its own with one torch thread, ``processes`` at once (0: all of them: three one-thread processes keep two
    cores busy). The caller says whether there are cores to spare: ``parallel=False`` runs nothing here
    (``ftlab.core.idle_cores() >= 2`` is the usual answer: not under the test workers, not on a GPU). Returns how
    many calls succeeded; 0 when it ran nothing (not ``parallel``, or fewer than 2 calls).

    Example: ``side_by_side("ftlab.evaluate:train_candidate", [dict(name="mixed", n_general=300), ...], parallel=True)``.
    """
    processes = processes or len(calls)
    if not parallel or processes < 2 or len(calls) < 2:
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
