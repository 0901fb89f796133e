"""The job runner: one worker thread takes jobs through OpenAI's lifecycle.

``validating_files`` → ``queued`` → ``running`` → ``succeeded`` | ``failed`` | ``cancelled``.

- Validation uses ftlab's validator (``ftlab.validate``) with the job's base model, so a file
  the validator rejects fails the job with an OpenAI-shaped ``error {code, message, param}``.
- Training is one call (``ftlab.sandbox.training.train_job``): LoRA on the local toy model, with a
  per-step report that becomes metric events, a checkpoint at the end of each epoch (the last
  3 kept, named ``ft:…:ckpt-step-N``) and a step-metrics CSV result file, base64-encoded the way
  OpenAI serves it.
- ``trained_tokens`` = the validator's billing tokens × epochs.
- A job that was ``running`` when the sandbox stopped is marked ``failed`` on restart with a
  clear error; jobs still validating or queued simply continue.

"auto" hyperparameters resolve like this: ``n_epochs`` by the OpenAI cookbook's heuristic
(``ftlab.validate.default_epochs``); ``batch_size`` to about 3% of the examples, from 1 to 8
(OpenAI does not publish its rule; this one keeps the toy's CPU runs short);
``learning_rate_multiplier`` to 2.0.
"""

from __future__ import annotations

import base64
import contextlib
import csv
import io
import shutil
import threading
import time
import traceback
from typing import Any

from ftlab.sandbox.api import IMPORT_LOCK, ORG_SLUG
from ftlab.sandbox.store import Store, new_id

__all__ = ["AUTO_BETA", "AUTO_LR_MULTIPLIER", "AUTO_MAX_BATCH", "KEEP_CHECKPOINTS", "JobFailed", "Runner",
           "decode_result_file", "resolve_auto"]


KEEP_CHECKPOINTS = 3
AUTO_LR_MULTIPLIER = 2.0
AUTO_MAX_BATCH = 8
AUTO_BETA = 0.1


def resolve_auto(hp: dict[str, Any], n_train: int) -> dict[str, Any]:
    """Concrete values for "auto" hyperparameters, given the number of training examples."""
    from ftlab.validate import default_epochs

    out = dict(hp)
    if out["n_epochs"] == "auto":
        out["n_epochs"] = default_epochs(n_train)
    if out["batch_size"] == "auto":
        out["batch_size"] = max(1, min(AUTO_MAX_BATCH, n_train // 32))
    if out["learning_rate_multiplier"] == "auto":
        out["learning_rate_multiplier"] = AUTO_LR_MULTIPLIER
    if out.get("beta") == "auto":
        out["beta"] = AUTO_BETA
    return out


class JobFailed(Exception):
    def __init__(self, code: str, message: str, param: str | None = None):
        super().__init__(message)
        self.code, self.message, self.param = code, message, param


def _file_error(report, param: str) -> JobFailed:
    """An OpenAI-style error for a file the validator rejected."""
    what = "training" if param == "training_file" else "validation"
    codes = report.codes()
    if set(codes) <= {"too_few_examples", "empty_file"}:
        return JobFailed("invalid_n_examples", f"{what.capitalize()} file has {report.n_examples} example(s), "
                                               "but must have at least 10 examples.", param)
    shown = [f for f in report.errors if f.code not in ("too_few_examples",)][:3]
    details = "; ".join(f"{'Line ' + str(f.line) if f.line else 'File'}: {f.message} ({f.code})" for f in shown)
    more = len(report.errors) - len(shown)
    tail = f"; and {more} more error(s)" if more > 0 else ""
    return JobFailed(f"invalid_{param}", f"The job failed due to an invalid {what} file. {details}{tail}. "
                                          "Run `ftlab validate` on it for the full list.", param)


class Runner:
    """Runs jobs one at a time in a background thread."""

    def __init__(self, store: Store, *, toy_seed: int = 0, base_model: str | None = None):
        self.store = store
        self.toy_seed = toy_seed
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        try:
            from ftlab.toymodel import TOY_MODEL_ID
        except ImportError:
            TOY_MODEL_ID = "ftlab/toy-llama"
        self.toy_model_id = base_model or TOY_MODEL_ID  # the local model jobs fine-tune
        self.current: str | None = None

    # -- thread control --------------------------------------------------------------------
    def start(self, *, warm: bool = True) -> None:
        self.recover()
        self._thread = threading.Thread(target=self._loop, name="ftlab-sandbox-runner", daemon=True)
        self._thread.start()
        if warm:
            threading.Thread(target=self._warm, name="ftlab-sandbox-warmup", daemon=True).start()

    def _warm(self) -> None:
        """Import the training stack and make sure the toy model is built, so the first job starts at once.

        Holds ``IMPORT_LOCK``: the job thread takes it before training, because some libraries' lazy
        modules (trl's) are not safe to import from two threads at once.
        """
        with IMPORT_LOCK, contextlib.suppress(Exception):  # an optimisation: real jobs report real errors
            import peft  # noqa: F401
            import trl  # noqa: F401

            import ftlab.train  # noqa: F401
            from ftlab.toymodel import resolve_model

            resolve_model(self.toy_model_id, seed=self.toy_seed)

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread:
            self._thread.join(timeout)

    def wake(self) -> None:
        self._wake.set()

    def recover(self) -> None:
        """After a restart: a job that was training cannot resume, so it fails with a clear error."""
        for job in self.store.list_jobs():
            if job["status"] == "running":
                self._fail(job["id"], JobFailed(
                    "sandbox_restarted", "The sandbox stopped while this job was running, so its training was "
                    "lost. Create the job again with the same files; they are still uploaded."))

    def _next(self) -> dict[str, Any] | None:
        waiting = [j for j in self.store.list_jobs() if j["status"] in ("validating_files", "queued")]
        return min(waiting, key=lambda j: j["_seq"]) if waiting else None

    def _loop(self) -> None:
        while not self._stop.is_set():
            job = self._next()
            if job is None:
                self._wake.wait(1.0)
                self._wake.clear()
                continue
            self.current = job["id"]
            try:
                self.process(job["id"])
            except JobFailed as exc:
                self._fail(job["id"], exc)
            except Exception as exc:  # a bug or a crash in training: the job fails, the sandbox keeps serving
                detail = traceback.format_exception_only(type(exc), exc)[-1].strip()
                self._fail(job["id"], JobFailed("internal_error", f"The sandbox failed while running the job: {detail}"))
            finally:
                self.current = None

    # -- the lifecycle -------------------------------------------------------------------------
    def cancelled(self, jid: str) -> bool:
        job = self.store.get_job(jid)
        return job is None or job["status"] == "cancelled"

    def _set(self, jid: str, from_status: tuple[str, ...], **changes: Any) -> bool:
        return self.store.update_job(jid, only_if_status=from_status, **changes) is not None

    def _fail(self, jid: str, exc: JobFailed) -> None:
        error = {"code": exc.code, "message": exc.message, "param": exc.param}
        if self._set(jid, ("validating_files", "queued", "running"), status="failed", error=error,
                     finished_at=int(time.time()), estimated_finish=None):
            self.store.add_event(jid, f"Fine-tuning job failed: {exc.message}", level="error")

    def _validate(self, jid: str, fid: str | None, param: str, alias: str, method: str = "supervised"):
        from ftlab.validate import validate_bytes
        from ftlab.validate_dpo import validate_dpo_bytes

        check = validate_dpo_bytes if method == "dpo" else validate_bytes  # OpenAI's preference format for DPO

        if fid is None:
            return None
        if self.store.get_file(fid) is None:
            raise JobFailed(f"invalid_{param}", f"The {param.replace('_', ' ')} {fid} was deleted before the job "
                                                "could read it.", param)
        self.store.add_event(jid, f"Validating {param.replace('_', ' ')}: {fid}")
        report = check(self.store.file_bytes(fid), model=alias)
        if not report.ok:
            raise _file_error(report, param)
        for w in report.warnings[:5]:
            self.store.add_event(jid, f"{param.replace('_', ' ').capitalize()} warning: "
                                      f"{'line ' + str(w.line) if w.line else 'file'}: {w.message} ({w.code})",
                                 level="warn")
        return report

    def process(self, jid: str) -> None:
        job = self.store.get_job(jid)
        alias = job["_sandbox"]["alias"]
        if job["status"] == "validating_files":
            kind = job["method"]["type"]
            train_report = self._validate(jid, job["training_file"], "training_file", alias, kind)
            self._validate(jid, job.get("validation_file"), "validation_file", alias, kind)
            hp = resolve_auto(job["hyperparameters"], train_report.n_examples)
            sandbox = {**job["_sandbox"], "billing_tokens": train_report.stats["billing_tokens"],
                       "n_train": train_report.n_examples}
            if not self._set(jid, ("validating_files",), status="queued", hyperparameters=hp,
                             method={"type": kind, kind: {"hyperparameters": hp}}, _sandbox=sandbox):
                return  # cancelled meanwhile
            self.store.add_event(jid, "Files validated, moving job to queued state")
        job = self.store.get_job(jid)
        if job["status"] != "queued":
            return
        if not self._set(jid, ("queued",), status="running"):
            return
        self.store.add_event(jid, "Fine-tuning job started")
        self.train(jid)

    def train(self, jid: str) -> None:
        with IMPORT_LOCK:  # wait for the warm-up's imports to finish
            from ftlab.sandbox.training import TrainingUnavailable, train_job

        job = self.store.get_job(jid)
        hp = job["hyperparameters"]
        out_dir = self.store.job_dir(jid)
        name = _model_name(job)
        metrics_rows: list[dict[str, Any]] = []
        kept: list[dict[str, Any]] = []
        started = time.monotonic()

        def on_step(step: int, total: int, m: dict[str, Any]) -> None:
            row = {"step": step, "train_loss": m.get("train_loss"), "train_accuracy": m.get("train_mean_token_accuracy"),
                   "valid_loss": m.get("valid_loss"), "valid_mean_token_accuracy": m.get("valid_mean_token_accuracy")}
            metrics_rows.append(row)
            msg = f"Step {step}/{total}: training loss={_fmt(m.get('train_loss'))}"
            if m.get("valid_loss") is not None:
                msg += f", validation loss={_fmt(m.get('valid_loss'))}"
            data = {"step": step, "total_steps": total, **{k: v for k, v in m.items() if v is not None}}
            self.store.add_event(jid, msg, type="metrics", data=data)
            elapsed = time.monotonic() - started
            eta = int(time.time() + elapsed / max(step, 1) * max(total - step, 0))
            self.store.update_job(jid, only_if_status=("running",), estimated_finish=eta,
                                  _sandbox={**job["_sandbox"], "step": step, "total_steps": total})

        def on_epoch(epoch: int, step: int, save) -> None:
            folder = out_dir / f"ckpt-step-{step}"
            save(folder)
            last = next((r for r in reversed(metrics_rows) if r["train_loss"] is not None), {})
            last_valid = next((r for r in reversed(metrics_rows) if r["valid_loss"] is not None), {})
            ck = {"id": new_id("ftckpt_"), "object": "fine_tuning.job.checkpoint", "created_at": int(time.time()),
                  "fine_tuned_model_checkpoint": f"{name}:ckpt-step-{step}", "fine_tuning_job_id": jid,
                  "step_number": step,
                  "metrics": {"step": float(step), "train_loss": last.get("train_loss"),
                              "train_mean_token_accuracy": last.get("train_accuracy"),
                              "valid_loss": last_valid.get("valid_loss"),
                              "valid_mean_token_accuracy": last_valid.get("valid_mean_token_accuracy"),
                              "full_valid_loss": last_valid.get("valid_loss"),
                              "full_valid_mean_token_accuracy": last_valid.get("valid_mean_token_accuracy")},
                  "_adapter_dir": str(folder), "_epoch": epoch}
            kept.append(ck)
            while len(kept) > KEEP_CHECKPOINTS:
                old = kept.pop(0)
                shutil.rmtree(old["_adapter_dir"], ignore_errors=True)
            self.store.set_checkpoints(jid, kept)
            self.store.add_event(jid, f"Checkpoint created at step {step}")

        train_rows = _rows(self.store.file_bytes(job["training_file"]))
        valid_rows = _rows(self.store.file_bytes(job["validation_file"])) if job.get("validation_file") else []
        try:
            outcome = train_job(
                train_rows, valid_rows, method=job["method"]["type"], beta=hp.get("beta"),
                n_epochs=hp["n_epochs"], batch_size=hp["batch_size"],
                learning_rate_multiplier=hp["learning_rate_multiplier"], seed=job["seed"], toy_seed=self.toy_seed,
                model_id=self.toy_model_id,
                out_dir=out_dir / "train", on_step=on_step, on_epoch=on_epoch,
                should_stop=lambda: self.cancelled(jid) or self._stop.is_set())
        except TrainingUnavailable as exc:
            raise JobFailed("training_unavailable", str(exc)) from None
        if self.cancelled(jid):
            shutil.rmtree(out_dir / "train", ignore_errors=True)
            return
        if self._stop.is_set():
            raise JobFailed("sandbox_stopped", "The sandbox was stopped while this job was running, so its training "
                                               "was lost. Create the job again with the same files.")
        by_step = {r["step"]: r for r in metrics_rows}
        for ck in kept:  # validation at an epoch's end is logged after the epoch-end hook: fill it in
            r = by_step.get(ck["step_number"], {})
            m = ck["metrics"]
            m["train_loss"] = r.get("train_loss", m["train_loss"])
            m["train_mean_token_accuracy"] = r.get("train_accuracy", m["train_mean_token_accuracy"])
            if r.get("valid_loss") is not None:
                m["valid_loss"] = m["full_valid_loss"] = r["valid_loss"]
                m["valid_mean_token_accuracy"] = m["full_valid_mean_token_accuracy"] = r["valid_mean_token_accuracy"]
        self.store.set_checkpoints(jid, kept)
        adapter_dir = out_dir / "adapter"
        shutil.rmtree(adapter_dir, ignore_errors=True)
        shutil.copytree(outcome.adapter_dir, adapter_dir)
        shutil.rmtree(out_dir / "train", ignore_errors=True)
        result = self.store.add_file("step_metrics.csv", "fine-tune-results", _metrics_csv(metrics_rows))
        job = self.store.get_job(jid)
        sandbox = {**job["_sandbox"], "adapter_dir": str(adapter_dir), "train_seconds": outcome.seconds}
        trained = job["_sandbox"]["billing_tokens"] * hp["n_epochs"]
        if self._set(jid, ("running",), status="succeeded", fine_tuned_model=name, finished_at=int(time.time()),
                     estimated_finish=None,
                     trained_tokens=trained, result_files=[result["id"]], _sandbox=sandbox):
            self.store.add_event(jid, f"New fine-tuned model created: {name}")
            self.store.add_event(jid, "The job has successfully completed")


def _fmt(x: Any) -> str:
    return "n/a" if x is None else f"{x:.4f}"


def _model_name(job: dict[str, Any]) -> str:
    """OpenAI's fine-tuned model name: ``ft:{base}:{org}:{suffix}:{id8}``."""
    return f"ft:{job['model']}:{ORG_SLUG}:{job.get('user_provided_suffix') or ''}:{job['id'][-8:]}"


def _rows(data: bytes) -> list[dict[str, Any]]:
    import json

    return [json.loads(line) for line in data.decode("utf-8").splitlines() if line.strip()]


def _metrics_csv(rows: list[dict[str, Any]]) -> bytes:
    """The step-metrics CSV, base64-encoded as OpenAI serves result files."""
    buf = io.StringIO()
    cols = ["step", "train_loss", "train_accuracy", "valid_loss", "valid_mean_token_accuracy"]
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(cols)
    for r in rows:
        w.writerow(["" if r.get(c) is None else (f"{r[c]:.5f}" if isinstance(r[c], float) else r[c]) for c in cols])
    return base64.b64encode(buf.getvalue().encode("utf-8"))


def decode_result_file(content: bytes) -> str:
    """The CSV text of a result file (base64, as OpenAI serves it; plain CSV is accepted too)."""
    text = content.strip()
    if text.startswith(b"step,"):
        return text.decode("utf-8")
    return base64.b64decode(text).decode("utf-8")
