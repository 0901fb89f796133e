"""Seeds, cache folders and small helpers shared by every stage."""

from __future__ import annotations

import hashlib
import json
import os
import random
from contextlib import contextmanager
from pathlib import Path
from typing import Any

__all__ = ["DEFAULT_SEED", "cache_dir", "device", "file_sha256", "folder_lock", "idle_cores",
           "seed_everything", "stable_hash", "tune_cpu_threads"]


DEFAULT_SEED = 1234


def seed_everything(seed: int = DEFAULT_SEED) -> int:
    """Seed Python, NumPy and torch in one place, and return the seed.

    Example: ``seed_everything(7)`` makes two runs of the same notebook identical on CPU.
    """
    random.seed(seed)
    os.environ["PYTHONHASHSEED"] = str(seed)
    try:
        import numpy as np

        np.random.seed(seed)
    except ImportError:  # pragma: no cover - numpy is a dependency
        pass
    try:
        import torch

        torch.manual_seed(seed)
    except ImportError:  # pragma: no cover - torch is a dependency
        pass
    return seed


def cache_dir(*parts: str) -> Path:
    """The folder where ftlab caches what it builds (``$FTLAB_CACHE`` or ``~/.cache/ftlab``)."""
    root = Path(os.environ.get("FTLAB_CACHE") or Path.home() / ".cache" / "ftlab")
    path = root.joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


def stable_hash(obj: Any, length: int = 12) -> str:
    """A short, stable hash of a JSON-serializable object.

    Example: ``stable_hash({"a": 1}) == stable_hash({"a": 1})`` across runs and machines.
    """
    blob = json.dumps(obj, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:length]


def file_sha256(path: str | os.PathLike[str]) -> str:
    """The sha256 hex digest of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def device() -> str:
    """``"cuda"`` when a GPU is present, else ``"cpu"``."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def idle_cores() -> int:
    """How many one-thread processes this process may keep busy side by side (``ftlab.sidebyside``): the CPU's
    cores, or 1 when ``FTLAB_THREADS`` gives this process a share of them (pytest-xdist's workers: one core each)
    or on a GPU (one model at a time there).

    Example: ``side_by_side(target, calls, parallel=idle_cores() >= 2)`` trains side by side on an idle CPU only.
    """
    import torch

    if os.environ.get("FTLAB_THREADS") or torch.cuda.is_available():
        return 1
    return max(1, os.cpu_count() or 1)


def tune_cpu_threads(n_parameters: int) -> int:
    """Use one CPU thread for tiny models, and return the thread count in use.

    For a model of about a million parameters the matrices are so small that thread
    synchronisation costs more than it saves: one thread trains the toy model several times
    faster than two, and far faster when other processes share the cores. Larger models and
    GPUs are left alone. ``FTLAB_THREADS`` overrides.
    """
    import torch

    forced = os.environ.get("FTLAB_THREADS")
    if forced:
        torch.set_num_threads(int(forced))
    elif n_parameters < 50_000_000 and not torch.cuda.is_available():
        torch.set_num_threads(1)
    return torch.get_num_threads()


@contextmanager
def folder_lock(folder: str | os.PathLike[str]):
    """Hold an exclusive lock on ``folder`` (a ``.<name>.lock`` file beside it) across processes.

    Example: ``with folder_lock(cache / "model"): build_once(...)`` makes a second process wait, then reuse.
    """
    import fcntl

    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    with open(folder.parent / f".{folder.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
