"""The OpenAI fine-tuning workflow, one code path for the real API and the sandbox.

Taught in ``notebooks/03_openai_finetune.ipynb``. Only the connection differs:

- ``OPENAI_API_KEY`` set in the environment → the real API (the SDK reads the key itself; ftlab
  never reads, prints or stores it);
- otherwise → a local sandbox is started and stopped around the work.

Example::

    with connect() as conn:                      # sandbox unless OPENAI_API_KEY is set
        f = upload(conn.client, "train.jsonl")
        job = conn.client.fine_tuning.jobs.create(model="gpt-4.1-mini", training_file=f.id)
        job = wait_for_job(conn.client, job.id)
        rows = step_metrics(conn.client, job)
"""

from __future__ import annotations

import os
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from html import escape
from pathlib import Path
from typing import Any

from ftlab.errors import FtlabError, PersonalDataWarning
from ftlab.sandbox.api import TERMINAL
from ftlab.show import Html, Table, table

__all__ = [
    "Connection",
    "RequestFailed",
    "ask",
    "compare_models",
    "connect",
    "file_digest",
    "final_losses",
    "job_key",
    "openai_models",
    "openai_models_html",
    "openai_models_table",
    "plot_losses",
    "refused",
    "run_job",
    "sandbox_result_file",
    "start_job",
    "step_metrics",
    "support_scores",
    "try_create_job",
    "upload",
    "wait_for_job",
    "write_job_files",
]


warnings.simplefilter("always", PersonalDataWarning)  # every upload warns, not just the first


@dataclass
class Connection:
    """An ``openai.OpenAI`` client and, in sandbox mode, the sandbox serving it."""

    client: Any
    mode: str  # "openai" or "sandbox"
    sandbox: Any = None
    _tmp: Any = field(default=None, repr=False)

    @property
    def where(self) -> str:
        """Where requests go, without any credential."""
        if self.mode == "sandbox":
            return f"the local sandbox at {self.sandbox.url}"
        return f"the OpenAI API at {self.client.base_url} (key from OPENAI_API_KEY, not shown)"

    def close(self) -> None:
        if self.sandbox is not None:
            self.sandbox.stop()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:  # never shows the key
        return f"Connection(mode={self.mode!r}, {self.where})"


def connect(*, sandbox_dir: str | os.PathLike[str] | None = None, fault_rate: float = 0.0,
            max_retries: int = 2, in_process: bool = False, base_model: str | None = None) -> Connection:
    """Connect to OpenAI when ``OPENAI_API_KEY`` is set in the environment, else start a sandbox.

    The sandbox runs in its own process (``in_process=True``: in threads of this one) and keeps its
    state in ``sandbox_dir`` (default: a temporary folder removed on ``close``). ``base_model``: the local
    model the sandbox's jobs fine-tune in place of the OpenAI model (None: the toy; e.g.
    ``"HuggingFaceTB/SmolLM2-135M-Instruct"``, as ``ftlab sandbox --base-model``).
    """
    from openai import OpenAI

    if os.environ.get("OPENAI_API_KEY"):
        return Connection(OpenAI(max_retries=max_retries), "openai")  # the SDK reads the key from the env
    from ftlab.sandbox import Faults, Sandbox, SandboxProcess

    tmp = None
    if not sandbox_dir:
        tmp = tempfile.TemporaryDirectory(prefix="ftlab-sandbox-")
        sandbox_dir = tmp.name
    if in_process:
        sbx = Sandbox(sandbox_dir, faults=Faults(rate=fault_rate), base_model=base_model).start()
    else:
        sbx = SandboxProcess(sandbox_dir, fault_rate=fault_rate, base_model=base_model).start()
    return Connection(sbx.client(max_retries=max_retries), "sandbox", sbx, tmp)


class RequestFailed(FtlabError):
    """An API request still failed after the SDK's retries; the message says which, how often, and what is kept."""

    def __init__(self, message: str, *, request: str, tries: int, status: int | None):
        super().__init__(message)
        self.request, self.tries, self.status = request, tries, status


def _api(client: Any, request: str, call: Callable[[], Any], kept: str) -> Any:
    """Run one SDK call; when a retryable failure (429, 5xx, timeout, no connection) outlasts the SDK's
    retries, raise ``RequestFailed`` naming the request, the number of tries and what is safe on the server."""
    import openai

    try:
        return call()
    except (openai.APIStatusError, openai.APIConnectionError) as exc:
        status = getattr(exc, "status_code", None)
        if status is not None and status not in (408, 409, 429) and status < 500:
            raise  # a 4xx: the API's own message says what is wrong with the request
        retries = int(getattr(client, "max_retries", 0))
        what = f"HTTP {status}" if status else type(exc).__name__
        detail = (getattr(exc, "message", None) or str(exc)).splitlines()[0][:200]
        raise RequestFailed(
            f"{request} failed {retries + 1} times in a row ({what}: {detail}); the SDK's {retries} retries ran out. "
            f"{kept} Wait a minute and run the cell again, or connect with more retries "
            f"(wf.connect(max_retries={max(4, 2 * retries)})).", request=request, tries=retries + 1,
            status=status) from exc


def file_digest(path: str | os.PathLike[str]) -> str:
    """The first 12 hex digits of a file's SHA-256: ``upload`` names the uploaded file with it."""
    import hashlib

    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:12]


def upload(client: Any, path: str | os.PathLike[str], *, check_personal_data: bool = True,
           reuse: bool = True) -> Any:
    """Upload a JSONL file for fine-tuning and return the File object.

    Before anything is sent, the file is scanned for personal data (e-mails, phone numbers, card
    numbers); what is found is named by line in a ``PersonalDataWarning``. It warns, it does not
    block: masking is the uploader's call.

    The upload is named ``<stem>.<sha256[:12]>.jsonl``, so the same content is never uploaded twice:
    with ``reuse`` (the default) a file already on the server with that name and size is returned
    instead, and running the cell again after a failure picks up what did get through.
    """
    p = Path(path)
    if not p.is_file():
        raise FtlabError(f"{p}: no such file to upload")
    content = p.read_bytes()
    if check_personal_data:
        from ftlab.validate import describe_personal_data, personal_data_by_line

        found = personal_data_by_line(content)
        if found:
            warnings.warn(PersonalDataWarning(
                f"{p.name}: possible personal data, {describe_personal_data(found)}. Remove or mask it before "
                "uploading: uploaded files stay with the provider until you delete them."), stacklevel=2)
    name = f"{p.stem}.{file_digest(p)}{p.suffix}"
    kept = "Nothing was lost: files uploaded before are kept on the server and reused by content."
    if reuse:
        for f in _api(client, f"GET /files (looking for {name})",
                      lambda: list(client.files.list(purpose="fine-tune")), kept):
            if f.filename == name and f.bytes == len(content) and getattr(f, "status", None) != "error":
                return f
    return _api(client, f"POST /files (uploading {p.name}, {len(content):,} bytes)",
                lambda: client.files.create(file=(name, content), purpose="fine-tune"), kept)


def job_key(**request: Any) -> str:
    """A stable key for a job request (model, files, suffix, seed, method): equal requests, equal keys."""
    import hashlib
    import json

    return hashlib.sha256(json.dumps(request, sort_keys=True, default=str).encode()).hexdigest()[:16]


def start_job(client: Any, *, model: str, training_file: str, validation_file: str | None = None,
              suffix: str | None = None, seed: int | None = None, method: dict[str, Any] | None = None,
              metadata: dict[str, str] | None = None, reuse: bool = True,
              show: Callable[[str], None] | None = print) -> Any:
    """Create a fine-tuning job, or pick up the one this same request already created.

    The request's ``job_key`` goes into the job's ``metadata`` (``ftlab_request``). With ``reuse``, a job
    with that key that has not failed or been cancelled is returned instead of a new one: running the
    cell again after a failure (or after a restart of the kernel) never starts, and pays for, a second job.
    """
    key = job_key(model=model, training_file=training_file, validation_file=validation_file, suffix=suffix,
                  seed=seed, method=method)
    kept = f"The uploaded files ({', '.join(f for f in (training_file, validation_file) if f)}) are kept on the server."
    if reuse:
        found = _api(client, f"GET /fine_tuning/jobs (looking for ftlab_request={key})",
                     lambda: list(client.fine_tuning.jobs.list(metadata={"ftlab_request": key}, limit=100)), kept)
        live = [j for j in found if j.status not in ("failed", "cancelled")]
        if live:
            if show is not None:
                show(f"picking up job {live[0].id} ({live[0].status}): the same request created it before")
            return live[0]
    body: dict[str, Any] = {"model": model, "training_file": training_file,
                            "metadata": {**(metadata or {}), "ftlab_request": key}}
    body.update({k: v for k, v in {"validation_file": validation_file, "suffix": suffix, "seed": seed,
                                   "method": method}.items() if v is not None})
    return _api(client, f"POST /fine_tuning/jobs (model {model}, training file {training_file})",
                lambda: client.fine_tuning.jobs.create(**body), kept + " Running the cell again creates the job, "
                "or picks it up if this request did create one.")



def wait_for_job(client: Any, job_id: str, *, poll_s: float = 2.0, timeout_s: float | None = None,
                 progress: bool = True, show: Callable[[str], None] | None = print) -> Any:
    """Poll a job until it ends, with a progress bar over training steps and its new events.

    Returns the final job. ``show`` receives each new event line (``None`` silences them).
    """
    seen: set[str] = set()
    bar = None
    started = time.monotonic()
    kept = (f"The job keeps running on the server: wf.wait_for_job(client, {job_id!r}) picks it up again, "
            "and so does running the cells again (wf.start_job finds it).")
    try:
        while True:
            job = _api(client, f"GET /fine_tuning/jobs/{job_id}", lambda: client.fine_tuning.jobs.retrieve(job_id), kept)
            events = _api(client, f"GET /fine_tuning/jobs/{job_id}/events",
                          lambda: client.fine_tuning.jobs.list_events(job_id, limit=100).data, kept)
            fresh = [e for e in events if e.id not in seen]
            for e in reversed(fresh):  # the API lists newest first
                seen.add(e.id)
                data = e.data if isinstance(e.data, dict) else {}
                if progress and data.get("total_steps"):
                    if bar is None:
                        from tqdm.auto import tqdm

                        bar = tqdm(total=int(data["total_steps"]), desc=f"{job_id} training", unit="step")
                    bar.n = int(data.get("step", bar.n))
                    if data.get("train_loss") is not None:
                        bar.set_postfix(train_loss=f"{data['train_loss']:.3f}")
                    bar.refresh()
                elif show is not None:
                    show(f"{time.strftime('%H:%M:%S', time.localtime(e.created_at))} {e.level}: {e.message}")
            if job.status in TERMINAL:
                return job
            if timeout_s is not None and time.monotonic() - started > timeout_s:
                raise FtlabError(f"job {job_id} is still {job.status} after {timeout_s:.0f} s; wait longer or cancel it "
                                 f"with client.fine_tuning.jobs.cancel({job_id!r})")
            time.sleep(poll_s)
    finally:
        if bar is not None:
            bar.close()


def run_job(client: Any, files: dict[str, Path], *, model: str, hyperparameters: dict[str, Any], seed: int = 0,
            poll_s: float = 0.5, result_csv: str | os.PathLike[str] | None = None, method: str = "supervised") -> Any:
    """The whole lifecycle in one call, for notebooks where the job is a means, not the lesson (notebook 03 walks
    through it step by step): upload ``files["train"]`` (and ``files["validation"]``), start a ``method`` job
    (``"supervised"`` or ``"dpo"``; or find the one this same request started before), wait for it quietly, and
    save its step-metrics result file, exactly as served, to ``result_csv``. Returns the finished job.

    Example: ``run_job(client, write_job_files(d, 48, 16), model="gpt-4.1-mini", hyperparameters={"n_epochs": 3})``.
    """
    valid = upload(client, files["validation"]).id if files.get("validation") else None
    job = start_job(client, model=model, training_file=upload(client, files["train"]).id, validation_file=valid,
                    seed=seed, method={"type": method, method: {"hyperparameters": dict(hyperparameters)}}, show=None)
    job = wait_for_job(client, job.id, poll_s=poll_s, progress=False, show=None)
    if result_csv is not None and job.result_files:
        Path(result_csv).write_bytes(client.files.content(job.result_files[0]).read())
    return job


def sandbox_result_file(folder: str | os.PathLike[str], *, n_train: int = 48, n_validation: int = 16, epochs: int = 3,
                        seed: int = 0) -> tuple[Any, Path]:
    """A small supervised job on a local sandbox (``folder/sandbox``, nothing billed) on the toy support task's
    first rows, its trainer's logs silenced; returns ``(job, path)`` of its step-metrics result file, saved as the
    API serves it (``folder/step_metrics.csv``), for a notebook that reads a real result file (notebook 05).

    Example: ``job, csv = sandbox_result_file("runs/05/openai"); diagnose(csv)``.
    """
    import contextlib
    import io

    from ftlab.sandbox import Sandbox

    folder = Path(folder)
    csv_path = folder / "step_metrics.csv"
    with Sandbox(folder / "sandbox") as sandbox, contextlib.redirect_stdout(io.StringIO()):  # quiet trainer logs
        job = run_job(sandbox.client(), write_job_files(folder, n_train, n_validation, seed), model="gpt-4.1-mini",
                      hyperparameters={"n_epochs": epochs, "batch_size": 8}, seed=seed, result_csv=csv_path)
    return job, csv_path


def step_metrics(client: Any, job: Any) -> list[dict[str, float | None]]:
    """The job's step-metrics result file as rows of floats (``None`` where a value is missing).

    OpenAI serves the CSV base64-encoded; plain CSV is accepted too.
    """
    import csv
    import io

    from ftlab.sandbox.jobs import decode_result_file

    if not job.result_files:
        raise FtlabError(f"job {job.id} has no result files (status {job.status})")
    text = decode_result_file(client.files.content(job.result_files[0]).read())
    rows = []
    for r in csv.DictReader(io.StringIO(text)):
        rows.append({k: (float(v) if v not in ("", None) else None) for k, v in r.items()})
    return rows


def final_losses(rows: Sequence[dict[str, float | None]]) -> dict[str, float | None]:
    """The last training loss and the last validation loss in the step metrics."""
    def last(key: str) -> float | None:
        return next((r[key] for r in reversed(rows) if r.get(key) is not None), None)

    return {"train_loss": last("train_loss"), "valid_loss": last("valid_loss")}


def plot_losses(rows: Sequence[dict[str, float | None]], ax: Any = None, title: str = "") -> Any:
    """Training loss per step and validation loss where it was measured (``ftlab.show.loss_plot``)."""
    from ftlab.show import loss_plot

    return loss_plot(rows, ax=ax, title=title or "Fine-tuning loss (from the job's result file)")


def ask(client: Any, model: str, messages: Sequence[dict[str, Any]], *, max_tokens: int = 48) -> str:
    """One deterministic chat completion (temperature 0); a trailing reference answer is dropped."""
    msgs = [dict(m) for m in messages]
    if msgs and msgs[-1].get("role") == "assistant":
        msgs = msgs[:-1]
    r = client.chat.completions.create(model=model, messages=msgs, temperature=0, max_tokens=max_tokens)
    return r.choices[0].message.content or ""


def compare_models(client: Any, base_model: str, tuned_model: str, examples: Sequence[dict[str, Any]],
                   scores: dict[str, Callable[[str, dict[str, Any]], float]]) -> dict[str, Any]:
    """Ask both models every held-out example (temperature 0) and score the replies.

    Returns ``{"rows": [...], "base": {score: mean}, "fine_tuned": {score: mean}}``.
    """
    rows = []
    for ex in examples:
        before, after = ask(client, base_model, ex["messages"]), ask(client, tuned_model, ex["messages"])
        user = next(m["content"] for m in ex["messages"] if m["role"] == "user")
        rows.append({"prompt": user, "base": before, "fine_tuned": after,
                     **{f"base_{k}": f(before, ex) for k, f in scores.items()},
                     **{f"fine_tuned_{k}": f(after, ex) for k, f in scores.items()}})
    n = max(1, len(rows))
    return {"rows": rows,
            "base": {k: sum(r[f"base_{k}"] for r in rows) / n for k in scores},
            "fine_tuned": {k: sum(r[f"fine_tuned_{k}"] for r in rows) / n for k in scores}}


# ---------------------------------------------------------------------------------------
# Notebook 03 helpers: the files to upload, the OpenAI models table, the support-task scores
# ---------------------------------------------------------------------------------------
def write_job_files(folder: str | os.PathLike[str], n_train: int, n_validation: int, seed: int = 0,
                    user_data: tuple[Sequence[dict[str, Any]], Sequence[dict[str, Any]]] | None = None) -> dict[str, Path]:
    """The upload pair ``{"train": …, "validation": …}`` as OpenAI chat JSONL files: the toy support task's first
    ``n_train`` / ``n_validation`` rows, or ``user_data`` (your ``(train, validation)`` rows, as
    ``ftlab.userdata.load_user_data`` split them), messages only."""
    from ftlab.data import support_splits, write_jsonl

    folder = Path(folder)
    if user_data is not None:
        return {name: write_jsonl([{"messages": r["messages"]} for r in rows], folder / f"{name}.jsonl")
                for name, rows in zip(("train", "validation"), user_data, strict=True)}
    sp = support_splits(seed)
    if n_train > len(sp["train"]) or n_validation > len(sp["validation"]):
        raise FtlabError(f"n_train ≤ {len(sp['train'])} and n_validation ≤ {len(sp['validation'])} for the toy task")
    return {"train": write_jsonl(sp["train"][:n_train], folder / "support_train.jsonl"),
            "validation": write_jsonl(sp["validation"][:n_validation], folder / "support_validation.jsonl")}


def refused(client: Any, **request: Any) -> dict[str, Any] | None:
    """The error body of ``client.fine_tuning.jobs.create(**request)`` when the API refuses it as a bad request
    (HTTP 400: OpenAI's error shape, ``type``, ``param``, ``message``); ``None`` when it created the job.

    Example: ``refused(client, model="o4-mini", training_file=f, method={"type": "reinforcement"})["param"]``.
    """
    import openai

    try:
        client.fine_tuning.jobs.create(**request)
    except openai.BadRequestError as exc:
        return exc.body
    return None


def try_create_job(client: Any, **request: Any) -> tuple[Any, str | None]:
    """``client.fine_tuning.jobs.create(**request)``, where the server may refuse it (OpenAI's wind-down: HTTP 403
    or 404). Returns ``(job, None)``, or ``(None, code)`` after printing the refusal's status, code and message."""
    import openai

    try:
        return client.fine_tuning.jobs.create(**request), None
    except (openai.PermissionDeniedError, openai.NotFoundError) as err:
        print(f"{type(client).__name__}(...) HTTP {err.status_code} {err.body['code']}: {err.body['message']}")
        return None, err.body["code"]


def openai_models() -> list[dict[str, Any]]:
    """The OpenAI models in ftlab's price catalog: fine-tunable or not, method, prices, data-sharing prices."""
    from ftlab.cost import load_catalog
    from ftlab.sandbox.models import supervised_models

    cat = load_catalog()
    discount = cat.providers["openai"].get("data_sharing_inference_discount") or 0.0
    sandbox = set(supervised_models())
    rows = []
    for m in cat.models:
        if m["provider"] != "openai":
            continue
        p_in, p_out = m.get("inference_in_usd_per_1m"), m.get("inference_out_usd_per_1m")
        rows.append({
            "model": m["id"], "snapshot": m.get("snapshot"), "fine_tunable": m["fine_tunable"],
            "method": m.get("method", "supervised" if m["fine_tunable"] else "none (inference only)"),
            "training_usd_per_1m": m.get("training_usd_per_1m"), "training_usd_per_hour": m.get("training_usd_per_hour"),
            "inference_usd_per_1m": (p_in, p_out),
            "inference_with_data_sharing": (p_in * (1 - discount), p_out * (1 - discount)) if p_in and p_out else None,
            "in_sandbox": m["id"] in sandbox, "source": m["source"], "as_of": m["as_of"],
        })
    return rows


def openai_models_table(rows: Sequence[dict[str, Any]] | None = None) -> Table:
    """``openai_models()`` as a table (notebook 03 displays it)."""
    def usd(v: Any) -> str:
        return f"${v:,.2f}" if isinstance(v, int | float) else "—"

    body = []
    for r in rows if rows is not None else openai_models():
        if r["training_usd_per_1m"] is not None:
            train = f"{usd(r['training_usd_per_1m'])}/M tokens"
        elif r["training_usd_per_hour"] is not None:
            train = f"{usd(r['training_usd_per_hour'])}/hour"
        else:
            train = "—"
        inf, shared = r["inference_usd_per_1m"], r["inference_with_data_sharing"]
        body.append([Html(f"<code>{escape(r['model'])}</code>"), "yes" if r["fine_tunable"] else Html("<b>no</b>"),
                     r["method"], train, f"{usd(inf[0])} / {usd(inf[1])}",
                     f"{usd(shared[0])} / {usd(shared[1])}" if shared else "—", "yes" if r["in_sandbox"] else "no",
                     r["as_of"]])
    return table(body, ["model", "fine-tunable", "method", "training", "fine-tuned inference in / out per M",
                        "with data sharing", "sandbox trains it", "as of"])


def openai_models_html(rows: Sequence[dict[str, Any]] | None = None) -> str:
    """``openai_models()`` as an HTML table (:func:`openai_models_table`)."""
    return openai_models_table(rows).to_html()


def support_scores() -> dict[str, Callable[[str, dict[str, Any]], float]]:
    """Scorers for the toy support task: the reply ``format``, the right ``intent`` (the task's accuracy,
    ``data.score_support_reply``) and the copied ``order`` number."""
    from ftlab.data import order_correct, parse_support_reply, score_support_reply

    return {
        "format": lambda reply, ex: float(parse_support_reply(reply)[0] is not None),
        "intent": score_support_reply,
        "order": lambda reply, ex: float(order_correct(reply, ex)),
    }
