"""The sandbox's state on disk: files, jobs, events and checkpoints survive a restart.

Layout under the data folder::

    files/<file-id>.json   the File object        files/<file-id>.bin   its bytes
    jobs/<ftjob-id>.json   the job (public fields + "_sandbox" internals)
    jobs/<ftjob-id>/events.jsonl, checkpoints.json, adapter/, ckpt-step-N/

Every JSON write goes to a temporary file and is renamed into place, so a kill never leaves a
half-written object. Events are appended one line each; a torn last line is skipped on load.
"""

from __future__ import annotations

import json
import os
import secrets
import string
import threading
import time
from pathlib import Path
from typing import Any

__all__ = ["Store", "new_id", "paginate", "public"]


_ALPHABET = string.ascii_letters + string.digits


def new_id(prefix: str, n: int = 24) -> str:
    """An OpenAI-style id: ``new_id("file-", 22)`` → ``file-3kT9...``."""
    return prefix + "".join(secrets.choice(_ALPHABET) for _ in range(n))


def _write_json(path: Path, obj: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    tmp.write_text(json.dumps(obj), encoding="utf-8")
    os.replace(tmp, path)


def _read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def _claim(root: Path):
    """Hold an exclusive lock on the data folder while serving it (released even on SIGKILL)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX: no guard
        return None
    f = (root / ".lock").open("a+")
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        f.close()
        from ftlab.errors import FtlabError

        raise FtlabError(f"another sandbox is already serving {root}; stop it or pick another --data-dir") from None
    return f


def _last_event_seq(path: Path) -> int:
    """The ``_seq`` of the newest complete event in an ``events.jsonl`` (0 if none)."""
    try:
        lines = path.read_bytes().splitlines()
    except OSError:
        return 0
    for raw in reversed(lines):
        try:
            return int(json.loads(raw)["_seq"])
        except (ValueError, KeyError, TypeError):
            continue
    return 0


def public(obj: dict[str, Any]) -> dict[str, Any]:
    """The API view of a stored object: internal keys (``_…``) removed."""
    return {k: v for k, v in obj.items() if not k.startswith("_")}


class Store:
    """Thread-safe, persistent state. All reads return copies; all writes persist before returning."""

    def __init__(self, root: str | os.PathLike[str]):
        self.root = Path(root)
        (self.root / "files").mkdir(parents=True, exist_ok=True)
        (self.root / "jobs").mkdir(parents=True, exist_ok=True)
        self._lockfile = _claim(self.root)
        self.lock = threading.RLock()
        self.files: dict[str, dict[str, Any]] = {}
        self.jobs: dict[str, dict[str, Any]] = {}
        self._seq = 0
        self._load()

    def close(self) -> None:
        """Release the data folder for another sandbox."""
        if self._lockfile is not None:
            self._lockfile.close()
            self._lockfile = None

    # -- loading --------------------------------------------------------------------------
    def _load(self) -> None:
        for p in (self.root / "files").glob("*.json"):
            try:
                obj = _read_json(p)
            except (OSError, ValueError):
                continue
            if (self.root / "files" / f"{obj['id']}.bin").exists():
                self.files[obj["id"]] = obj
        for p in (self.root / "jobs").glob("*.json"):
            try:
                self.jobs[p.stem] = _read_json(p)
            except (OSError, ValueError):
                continue
        seqs = [o.get("_seq", 0) for o in [*self.files.values(), *self.jobs.values()]]
        # Events share the counter: after a restart, new events must still sort after the old ones.
        seqs += [_last_event_seq(p) for p in (self.root / "jobs").glob("*/events.jsonl")]
        self._seq = max(seqs, default=0)

    def next_seq(self) -> int:
        with self.lock:
            self._seq += 1
            return self._seq

    # -- files ----------------------------------------------------------------------------
    def add_file(self, filename: str, purpose: str, data: bytes) -> dict[str, Any]:
        with self.lock:
            fid = new_id("file-", 22)
            obj = {"id": fid, "object": "file", "bytes": len(data), "created_at": int(time.time()),
                   "filename": filename, "purpose": purpose, "status": "processed", "expires_at": None,
                   "status_details": None, "_seq": self.next_seq()}
            (self.root / "files" / f"{fid}.bin").write_bytes(data)
            _write_json(self.root / "files" / f"{fid}.json", obj)
            self.files[fid] = obj
            return dict(obj)

    def get_file(self, fid: str) -> dict[str, Any] | None:
        with self.lock:
            obj = self.files.get(fid)
            return dict(obj) if obj else None

    def file_bytes(self, fid: str) -> bytes:
        return (self.root / "files" / f"{fid}.bin").read_bytes()

    def delete_file(self, fid: str) -> bool:
        with self.lock:
            if self.files.pop(fid, None) is None:
                return False
            for suffix in (".json", ".bin"):
                (self.root / "files" / f"{fid}{suffix}").unlink(missing_ok=True)
            return True

    def list_files(self, purpose: str | None = None) -> list[dict[str, Any]]:
        with self.lock:
            rows = [dict(f) for f in self.files.values() if purpose is None or f["purpose"] == purpose]
        return sorted(rows, key=lambda o: o["_seq"], reverse=True)

    # -- jobs -----------------------------------------------------------------------------
    def job_dir(self, jid: str) -> Path:
        d = self.root / "jobs" / jid
        d.mkdir(parents=True, exist_ok=True)
        return d

    def add_job(self, job: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            job["_seq"] = self.next_seq()
            _write_json(self.root / "jobs" / f"{job['id']}.json", job)
            self.jobs[job["id"]] = job
            return dict(job)

    def get_job(self, jid: str) -> dict[str, Any] | None:
        with self.lock:
            obj = self.jobs.get(jid)
            return json.loads(json.dumps(obj)) if obj else None

    def update_job(self, jid: str, *, only_if_status: tuple[str, ...] | None = None, **changes: Any) -> dict[str, Any] | None:
        """Apply ``changes`` and persist; with ``only_if_status``, only when the job is in one of those states.

        Returns the updated job, or ``None`` when the status guard refused the change.
        """
        with self.lock:
            job = self.jobs[jid]
            if only_if_status is not None and job["status"] not in only_if_status:
                return None
            job.update(changes)
            _write_json(self.root / "jobs" / f"{jid}.json", job)
            return json.loads(json.dumps(job))

    def list_jobs(self) -> list[dict[str, Any]]:
        with self.lock:
            rows = [json.loads(json.dumps(j)) for j in self.jobs.values()]
        return sorted(rows, key=lambda o: o["_seq"], reverse=True)

    # -- events and checkpoints -------------------------------------------------------------
    def add_event(self, jid: str, message: str, *, level: str = "info", type: str = "message",
                  data: dict[str, Any] | None = None) -> dict[str, Any]:
        ev = {"id": new_id("ftevent-"), "object": "fine_tuning.job.event", "created_at": int(time.time()),
              "level": level, "message": message, "type": type, "data": data or {}, "_seq": self.next_seq()}
        line = (json.dumps(ev) + "\n").encode("utf-8")
        with self.lock, (self.job_dir(jid) / "events.jsonl").open("ab+") as f:
            if f.tell() > 0:  # a line cut short by a kill mid-write must not swallow this event
                f.seek(-1, os.SEEK_END)
                if f.read(1) != b"\n":
                    line = b"\n" + line
            f.write(line)
        return ev

    def events(self, jid: str) -> list[dict[str, Any]]:
        """Events newest first."""
        path = self.root / "jobs" / jid / "events.jsonl"
        out = []
        with self.lock:
            if path.exists():
                for line in path.read_text(encoding="utf-8").splitlines():
                    try:
                        out.append(json.loads(line))
                    except ValueError:
                        continue
        return sorted(out, key=lambda o: o["_seq"], reverse=True)

    def checkpoints(self, jid: str) -> list[dict[str, Any]]:
        """Checkpoints newest first."""
        path = self.root / "jobs" / jid / "checkpoints.json"
        with self.lock:
            rows = _read_json(path) if path.exists() else []
        return sorted(rows, key=lambda o: o["step_number"], reverse=True)

    def set_checkpoints(self, jid: str, rows: list[dict[str, Any]]) -> None:
        with self.lock:
            _write_json(self.job_dir(jid) / "checkpoints.json", rows)


def paginate(rows: list[dict[str, Any]], after: str | None, limit: int) -> tuple[list[dict[str, Any]], bool]:
    """OpenAI cursor pagination over rows already in list order: the ``limit`` rows after id ``after``."""
    start = 0
    if after:
        ids = [r["id"] for r in rows]
        start = ids.index(after) + 1 if after in ids else len(rows)
    page = rows[start : start + limit]
    return page, start + limit < len(rows)
