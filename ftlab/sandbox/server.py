"""The HTTP side of the sandbox: routes, OpenAI-shaped responses and errors, fault injection.

Stdlib only (``http.server.ThreadingHTTPServer``, HTTP/1.1 keep-alive). The routes are the ones
the ``openai`` SDK calls for fine-tuning, under ``/v1`` (the prefix is optional)::

    POST   /files                     GET /files              GET /files/{id}
    DELETE /files/{id}                GET /files/{id}/content
    POST   /fine_tuning/jobs          GET /fine_tuning/jobs   GET /fine_tuning/jobs/{id}
    POST   /fine_tuning/jobs/{id}/cancel
    GET    /fine_tuning/jobs/{id}/events                      GET /fine_tuning/jobs/{id}/checkpoints
    POST   /chat/completions          GET /models             GET /models/{id}

The same routes also answer under ``/openai`` with ``?api-version=`` (Azure OpenAI's shape, which
``openai.AzureOpenAI`` calls), chat under ``/openai/deployments/{name}/chat/completions``.
"""

from __future__ import annotations

import json
import random
import re
import threading
import time
from dataclasses import dataclass, field
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from ftlab.sandbox.api import ORG_SLUG, ORGANIZATION, ApiError, parse_hyperparameters
from ftlab.sandbox.models import ModelRefused, fine_tunable_models, resolve_base_model
from ftlab.sandbox.store import Store, new_id, paginate, public

__all__ = ["FILE_PURPOSES", "MAX_UPLOAD", "App", "Faults", "Response", "SandboxHTTPServer", "parse_multipart"]


FILE_PURPOSES = ("assistants", "batch", "fine-tune", "vision", "user_data", "evals")
MAX_UPLOAD = 512 * 1024 * 1024


@dataclass
class Faults:
    """Fault injection: each API request fails (429 or 500) or is slowed with probability ``rate``.

    The draws are seeded per route (method + path with ids replaced by ``{id}``): the n-th request
    to ``POST /files`` gets the same draw whatever else the client sent before it, so a test does not
    depend on how many times a job was polled. At most ``max_consecutive`` faults in a row on a route,
    so a client with the SDK's default 2 retries always gets through.

    Example::

        >>> f = Faults(rate=1.0, kinds=("429",), max_consecutive=1)
        >>> f.draw("POST", "/files"), f.draw("POST", "/files"), f.draw("GET", "/files/file-abc")
        ('429', None, '429')
        >>> f.injected[-1]
        ('429', 'GET', '/files/file-abc')
    """

    rate: float = 0.0
    kinds: tuple[str, ...] = ("429", "500", "slow")
    slow_s: float = 0.5
    seed: int = 0
    max_consecutive: int = 2
    only: tuple[str, ...] = ()  # route keys (``Faults.route``) that get faults; empty: every route
    injected: list[tuple[str, str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        bad = [k for k in self.kinds if k not in ("429", "500", "slow")]
        if bad or not self.kinds or not 0 <= self.rate <= 1:
            raise ValueError(f"faults: rate must be in [0, 1] and kinds one or more of 429, 500, slow (got rate "
                             f"{self.rate}, kinds {','.join(self.kinds) or 'none'})")
        self._lock = threading.Lock()
        self._count: dict[str, int] = {}
        self._streak: dict[str, int] = {}

    @staticmethod
    def route(method: str, path: str) -> str:
        """The key a draw is seeded by: ``route("GET", "/fine_tuning/jobs/ftjob-x1/events")`` is
        ``"GET /fine_tuning/jobs/{id}/events"``."""
        return f"{method} " + re.sub(r"^(/files|/fine_tuning/jobs|/models)/[^/]+", r"\1/{id}", path)

    def draw(self, method: str, path: str) -> str | None:
        with self._lock:
            key = self.route(method, path)
            n = self._count.get(key, 0)
            self._count[key] = n + 1
            rng = random.Random(f"{self.seed}|{key}|{n}")
            if (self.rate <= 0 or (self.only and key not in self.only) or self._streak.get(key, 0) >= self.max_consecutive
                    or rng.random() >= self.rate):
                self._streak[key] = 0
                return None
            kind = rng.choice(self.kinds)
            self._streak[key] = self._streak.get(key, 0) + 1 if kind != "slow" else 0
            self.injected.append((kind, method, path))
            return kind


@dataclass
class Response:
    status: int
    body: bytes
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


def _json(obj: Any, status: int = 200) -> Response:
    return Response(status, json.dumps(obj).encode("utf-8"))


def _list(rows: list[dict[str, Any]], has_more: bool, *, ids: bool = False) -> Response:
    out: dict[str, Any] = {"object": "list", "data": [public(r) for r in rows], "has_more": has_more}
    if ids:
        out["first_id"] = rows[0]["id"] if rows else None
        out["last_id"] = rows[-1]["id"] if rows else None
    return _json(out)


def _limit(query: dict[str, str], default: int, maximum: int) -> int:
    raw = query.get("limit")
    if raw is None:
        return default
    try:
        n = int(raw)
    except ValueError:
        raise ApiError(400, f"Invalid 'limit': expected an integer, got {raw!r}.", param="limit") from None
    if not 1 <= n <= maximum:
        raise ApiError(400, f"Invalid 'limit': {n}. It must be between 1 and {maximum}.", param="limit")
    return n


def parse_multipart(content_type: str, body: bytes) -> dict[str, tuple[str | None, bytes]]:
    """``{field: (filename, bytes)}`` from a multipart/form-data body."""
    m = Message()
    m["content-type"] = content_type
    boundary = m.get_param("boundary")
    if not boundary or not isinstance(boundary, str):
        raise ApiError(400, "Expected multipart/form-data with a boundary.")
    delim = b"--" + boundary.encode("latin-1")
    fields: dict[str, tuple[str | None, bytes]] = {}
    for part in body.split(delim)[1:]:
        if part.startswith(b"--"):
            break
        part = part.removeprefix(b"\r\n")
        head, sep, content = part.partition(b"\r\n\r\n")
        if not sep:
            continue
        content = content.removesuffix(b"\r\n")
        h = Message()
        for line in head.decode("utf-8", "replace").split("\r\n"):
            if ":" in line:
                k, v = line.split(":", 1)
                h[k.strip()] = v.strip()
        name = h.get_param("name", header="content-disposition")
        filename = h.get_filename()
        if isinstance(name, str):
            fields[name] = (filename, content)
    return fields


class App:
    """The API logic, independent of the socket layer: ``handle(method, path, query, headers, body)``."""

    def __init__(self, store: Store, runner, inference, faults: Faults | None = None, gate=None):
        self.store, self.runner, self.inference = store, runner, inference
        self.faults = faults or Faults()
        self.gate = gate  # ftlab.sandbox.gate.WindDownGate: refuse OpenAI job creation once the date says so

    # -- dispatch ---------------------------------------------------------------------------
    def handle(self, method: str, raw_path: str, headers: dict[str, str], body: bytes) -> Response:
        url = urlsplit(raw_path)
        path = url.path.rstrip("/")
        if path.startswith("/v1"):
            path = path[3:]
        query = {k: v[-1] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        # Azure OpenAI's shape of the same API: /openai/...?api-version=..., key in an api-key header, and
        # /openai/deployments/{name}/chat/completions for inference. Never gated by the OpenAI wind-down.
        azure = path.startswith("/openai/") or path == "/openai"
        if azure:
            path = re.sub(r"^/openai(/deployments/[^/]+)?", "", path)
            if headers.get("api-key") and "authorization" not in headers:
                headers = {**headers, "authorization": f"Bearer {headers['api-key']}"}
        try:
            if azure and "api-version" not in query:
                raise ApiError(404, "Resource not found: Azure OpenAI routes need an api-version query parameter.",
                               code="404")
            if path == "/sandbox/health":
                return _json({"ok": True, "jobs": len(self.store.jobs), "files": len(self.store.files)})
            if not headers.get("authorization", "").lower().startswith("bearer ") or len(headers["authorization"]) < 8:
                raise ApiError(401, "You didn't provide an API key. You need to provide your API key in an "
                                    "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).")
            fault = self.faults.draw(method, path)
            if fault == "429":
                raise ApiError(429, "Rate limit reached for requests (sandbox fault injection). Please retry.",
                               type="requests", code="rate_limit_exceeded", headers={"retry-after-ms": "50"})
            if fault == "500":
                raise ApiError(500, "The server had an error while processing your request (sandbox fault "
                                    "injection). Retry your request.", type="server_error")
            if fault == "slow":
                time.sleep(self.faults.slow_s)
            return self.route(method, path, query, headers, body, azure=azure)
        except ApiError as exc:
            resp = _json(exc.body(), exc.status)
            resp.headers.update(exc.headers)
            return resp

    def route(self, method: str, path: str, query: dict[str, str], headers: dict[str, str], body: bytes,
              azure: bool = False) -> Response:
        parts = path.strip("/").split("/")
        if parts[:1] == ["files"]:
            if len(parts) == 1 and method == "POST":
                return self.create_file(headers.get("content-type", ""), body)
            if len(parts) == 1 and method == "GET":
                return self.list_files(query)
            if len(parts) == 2 and method == "GET":
                return _json(public(self._file(parts[1])))
            if len(parts) == 2 and method == "DELETE":
                self._file(parts[1])
                self.store.delete_file(parts[1])
                return _json({"id": parts[1], "object": "file", "deleted": True})
            if len(parts) == 3 and parts[2] == "content" and method == "GET":
                self._file(parts[1])
                return Response(200, self.store.file_bytes(parts[1]), "application/octet-stream")
        if parts[:2] == ["fine_tuning", "jobs"]:
            if len(parts) == 2 and method == "POST":
                req = _body_json(body)
                refused = self.gate and not azure and isinstance(req.get("model"), str) and self.gate.refusal(req["model"])
                if refused:
                    raise ApiError(refused[0], refused[1], param="model", code=refused[2])
                return _json(public(self.create_job(req)))
            if len(parts) == 2 and method == "GET":
                return self.list_jobs(query)
            if len(parts) == 3 and method == "GET":
                return _json(public(self._job(parts[2])))
            if len(parts) == 4 and parts[3] == "cancel" and method == "POST":
                return _json(public(self.cancel_job(parts[2])))
            if len(parts) == 4 and parts[3] == "events" and method == "GET":
                self._job(parts[2])
                page, more = paginate(self.store.events(parts[2]), query.get("after"), _limit(query, 20, 1000))
                return _list(page, more)
            if len(parts) == 4 and parts[3] == "checkpoints" and method == "GET":
                self._job(parts[2])
                page, more = paginate(self.store.checkpoints(parts[2]), query.get("after"), _limit(query, 10, 100))
                return _list(page, more, ids=True)
        if parts == ["chat", "completions"] and method == "POST":
            return _json(self.chat(_body_json(body)))
        if parts[:1] == ["models"] and method == "GET":
            models = self.models()
            if len(parts) == 1:
                return _json({"object": "list", "data": models})
            name = "/".join(parts[1:])
            for m in models:
                if m["id"] == name:
                    return _json(m)
            raise ApiError(404, f"The model '{name}' does not exist", param="model", code="model_not_found")
        raise ApiError(404, f"Invalid URL ({method} /v1{path})")

    # -- files -------------------------------------------------------------------------------
    def _file(self, fid: str) -> dict[str, Any]:
        obj = self.store.get_file(fid)
        if obj is None:
            raise ApiError(404, f"No such File object: {fid}", param="id")
        return obj

    def create_file(self, content_type: str, body: bytes) -> Response:
        if not content_type.lower().startswith("multipart/form-data"):
            raise ApiError(400, "Expected a multipart/form-data upload with 'file' and 'purpose'.")
        if len(body) > MAX_UPLOAD:
            raise ApiError(413, "File too large: the limit is 512 MB.", param="file")
        fields = parse_multipart(content_type, body)
        if "file" not in fields:
            raise ApiError(400, "Missing required parameter: 'file'.", param="file")
        if "purpose" not in fields:
            raise ApiError(400, "Missing required parameter: 'purpose'.", param="purpose")
        purpose = fields["purpose"][1].decode("utf-8", "replace")
        if purpose not in FILE_PURPOSES:
            raise ApiError(400, f"'{purpose}' is not one of {list(FILE_PURPOSES)} - 'purpose'", param="purpose")
        filename = fields["file"][0] or "upload"
        data = fields["file"][1]
        if purpose == "fine-tune" and not filename.lower().endswith(".jsonl"):
            raise ApiError(400, f"Invalid file format for Fine-Tuning API. Must be .jsonl (got {filename!r}).",
                           param="file")
        return _json(public(self.store.add_file(filename, purpose, data)))

    def list_files(self, query: dict[str, str]) -> Response:
        rows = self.store.list_files(query.get("purpose") or None)
        if query.get("order", "desc") == "asc":
            rows.reverse()
        elif query.get("order", "desc") != "desc":
            raise ApiError(400, f"Invalid 'order': {query['order']!r}; expected 'asc' or 'desc'.", param="order")
        page, more = paginate(rows, query.get("after"), _limit(query, 10000, 10000))
        return _list(page, more, ids=True)

    # -- jobs --------------------------------------------------------------------------------
    def _job(self, jid: str) -> dict[str, Any]:
        job = self.store.get_job(jid)
        if job is None:
            raise ApiError(404, f"Could not find fine-tuning job: {jid}", param="fine_tuning_job_id",
                           code="fine_tuning_job_not_found")
        return job

    def _training_file(self, fid: Any, param: str) -> dict[str, Any]:
        if not isinstance(fid, str) or not fid:
            raise ApiError(400, f"Missing required parameter: '{param}'.", param=param)
        f = self.store.get_file(fid)
        if f is None:
            raise ApiError(400, f"invalid {param}: {fid}", param=param, code=f"invalid_{param}")
        if f["purpose"] != "fine-tune":
            raise ApiError(400, f"File {fid} has purpose '{f['purpose']}', but fine-tuning requires purpose "
                                "'fine-tune'. Upload it again with purpose='fine-tune'.", param=param)
        return f

    def create_job(self, req: dict[str, Any]) -> dict[str, Any]:
        model = req.get("model")
        if not isinstance(model, str) or not model:
            raise ApiError(400, "Missing required parameter: 'model'.", param="model")
        method = req.get("method") or {"type": "supervised"}
        if not isinstance(method, dict) or method.get("type") not in ("supervised", "dpo", "reinforcement"):
            raise ApiError(400, "Invalid 'method': expected an object with type 'supervised', 'dpo' or 'reinforcement'.",
                           param="method")
        if method["type"] == "reinforcement":  # the API's own error shape: RFT needs a grader the sandbox lacks
            raise ApiError(400, "The sandbox does not run reinforcement fine-tuning (it needs graders and o4-mini); "
                                "notebook 11 trains GRPO with a verifiable reward locally instead.",
                           param="method.type", code="unsupported_method")
        try:
            base = resolve_base_model(model, "supervised")
        except ModelRefused as exc:
            raise ApiError(400, str(exc), param="model", code=exc.code) from None
        self._training_file(req.get("training_file"), "training_file")
        if req.get("validation_file") is not None:
            self._training_file(req["validation_file"], "validation_file")
            if req["validation_file"] == req["training_file"]:
                raise ApiError(400, "The validation file must differ from the training file.", param="validation_file")
        kind = method["type"]  # "supervised" or "dpo": method[kind]["hyperparameters"]
        supervised = method.get(kind) or {}
        legacy = req.get("hyperparameters")
        if legacy and supervised.get("hyperparameters"):
            raise ApiError(400, f"Give hyperparameters in 'method.{kind}.hyperparameters' only (the top-level "
                                "'hyperparameters' is deprecated).", param="hyperparameters")
        hp = parse_hyperparameters(supervised.get("hyperparameters") or legacy or {}, kind)
        suffix = req.get("suffix")
        if suffix is not None and (not isinstance(suffix, str) or len(suffix) > 64
                                   or not re.fullmatch(r"[A-Za-z0-9_-]*", suffix)):
            raise ApiError(400, "Invalid 'suffix': up to 64 characters of letters, digits, '-' and '_'.", param="suffix")
        seed = req.get("seed")
        if seed is None:
            seed = random.randrange(0, 2**31)
        elif isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= 2147483647:
            raise ApiError(400, "Invalid 'seed': expected an integer from 0 to 2147483647.", param="seed")
        metadata = req.get("metadata")
        if metadata is not None and (not isinstance(metadata, dict) or len(metadata) > 16
                or any(not isinstance(k, str) or len(k) > 64 or not isinstance(v, str) or len(v) > 512
                       for k, v in metadata.items())):
            raise ApiError(400, "Invalid 'metadata': up to 16 string keys (≤64 chars) with string values "
                                "(≤512 chars).", param="metadata")
        if req.get("integrations"):
            raise ApiError(400, "The sandbox runs offline and supports no integrations (e.g. wandb); leave "
                                "'integrations' out.", param="integrations")
        jid = new_id("ftjob-")
        job = {
            "id": jid, "object": "fine_tuning.job", "model": base.snapshot, "created_at": int(time.time()),
            "finished_at": None, "fine_tuned_model": None, "organization_id": ORGANIZATION, "result_files": [],
            "status": "validating_files", "validation_file": req.get("validation_file"),
            "training_file": req["training_file"], "hyperparameters": dict(hp), "trained_tokens": None,
            "error": None, "user_provided_suffix": suffix, "seed": seed, "estimated_finish": None,
            "integrations": [], "metadata": metadata,
            "method": {"type": kind, kind: {"hyperparameters": dict(hp)}},
            "_sandbox": {"alias": base.alias},
        }
        job = self.store.add_job(job)
        self.store.add_event(jid, f"Created fine-tuning job: {jid}. Sandbox: the local toy model "
                                  f"{self.runner.toy_model_id} is fine-tuned with LoRA in place of {base.snapshot}.")
        self.runner.wake()
        return job

    def list_jobs(self, query: dict[str, str]) -> Response:
        rows = self.store.list_jobs()
        wanted = {k[len("metadata["):-1]: v for k, v in query.items() if k.startswith("metadata[") and k.endswith("]")}
        if wanted:
            rows = [r for r in rows if all((r.get("metadata") or {}).get(k) == v for k, v in wanted.items())]
        page, more = paginate(rows, query.get("after"), _limit(query, 20, 100))
        return _list(page, more)

    def cancel_job(self, jid: str) -> dict[str, Any]:
        job = self._job(jid)
        updated = self.store.update_job(jid, only_if_status=("validating_files", "queued", "running"),
                                        status="cancelled", finished_at=int(time.time()), estimated_finish=None)
        if updated is None:
            raise ApiError(400, f"Job {jid} has already {job['status']}: it cannot be cancelled.",
                           param="fine_tuning_job_id", code="job_not_cancellable")
        self.store.add_event(jid, "Fine-tuning job cancelled")
        return updated

    # -- models and chat ------------------------------------------------------------------------
    def models(self) -> list[dict[str, Any]]:
        out = []
        for info in fine_tunable_models().values():
            for name in dict.fromkeys([info.alias, info.snapshot]):
                out.append({"id": name, "object": "model", "created": 0, "owned_by": "system"})
        for job in self.store.list_jobs():
            if job["status"] == "succeeded" and job.get("fine_tuned_model"):
                out.append({"id": job["fine_tuned_model"], "object": "model", "created": job["finished_at"],
                            "owned_by": ORG_SLUG})
                for ck in self.store.checkpoints(job["id"]):
                    out.append({"id": ck["fine_tuned_model_checkpoint"], "object": "model",
                                "created": ck["created_at"], "owned_by": ORG_SLUG})
        return out

    def resolve_chat_model(self, name: str) -> tuple[str, str | None]:
        """``(alias for token counting, adapter folder or None for the base model)``."""
        if name.startswith("ft:"):
            for job in self.store.list_jobs():
                if job["status"] != "succeeded":
                    continue
                if job.get("fine_tuned_model") == name:
                    return job["_sandbox"]["alias"], job["_sandbox"]["adapter_dir"]
                for ck in self.store.checkpoints(job["id"]):
                    if ck["fine_tuned_model_checkpoint"] == name:
                        return job["_sandbox"]["alias"], ck["_adapter_dir"]
        else:
            for info in fine_tunable_models().values():
                if name in (info.alias, info.snapshot):
                    return info.alias, None
        raise ApiError(404, f"The model `{name}` does not exist or you do not have access to it.",
                       param="model", code="model_not_found")

    def chat(self, req: dict[str, Any]) -> dict[str, Any]:
        from ftlab.tokens import count_chat_tokens, count_tokens

        model = req.get("model")
        if not isinstance(model, str) or not model:
            raise ApiError(400, "Missing required parameter: 'model'.", param="model")
        messages = req.get("messages")
        if not isinstance(messages, list) or not messages:
            raise ApiError(400, "Missing required parameter: 'messages'.", param="messages")
        for i, m in enumerate(messages):
            if (not isinstance(m, dict) or m.get("role") not in ("system", "developer", "user", "assistant")
                    or not isinstance(m.get("content"), str)):
                raise ApiError(400, f"Invalid 'messages[{i}]': the sandbox's toy model takes text messages with "
                                    "role system, developer, user or assistant and string content.",
                               param=f"messages[{i}]")
        if req.get("stream"):
            raise ApiError(400, "The sandbox does not stream; call without stream=True.", param="stream")
        if req.get("tools") or req.get("functions"):
            raise ApiError(400, "The sandbox's toy model does not call tools; leave 'tools' out.", param="tools")
        n = req.get("n", 1)
        if n not in (1, None):
            raise ApiError(400, "The sandbox returns one choice: use n=1.", param="n")
        max_tokens = req.get("max_completion_tokens") or req.get("max_tokens") or 64
        if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or not 1 <= max_tokens <= 512:
            raise ApiError(400, "Invalid 'max_tokens': expected an integer from 1 to 512 in the sandbox.",
                           param="max_tokens")
        temperature = req.get("temperature", 1.0)
        if temperature is None:
            temperature = 1.0
        if isinstance(temperature, bool) or not isinstance(temperature, int | float) or not 0 <= temperature <= 2:
            raise ApiError(400, "Invalid 'temperature': expected a number from 0 to 2.", param="temperature")
        seed = req.get("seed")
        alias, adapter = self.resolve_chat_model(model)
        reply, finish = self.inference.generate(adapter, messages, max_tokens=max_tokens,
                                                temperature=float(temperature), seed=seed)
        prompt_tokens = count_chat_tokens([{"role": m["role"], "content": m["content"]} for m in messages], alias)
        completion_tokens = count_tokens(reply, alias)
        return {
            "id": new_id("chatcmpl-", 29), "object": "chat.completion", "created": int(time.time()), "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": reply, "refusal": None,
                                                 "annotations": []},
                         "logprobs": None, "finish_reason": finish}],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                      "total_tokens": prompt_tokens + completion_tokens},
            "service_tier": "default", "system_fingerprint": "fp_ftlab_sandbox",
        }


def _body_json(body: bytes) -> dict[str, Any]:
    try:
        obj = json.loads(body.decode("utf-8") or "null")
    except (UnicodeDecodeError, ValueError):
        raise ApiError(400, "We could not parse the JSON body of your request. The OpenAI API expects a JSON "
                            "payload.") from None
    if not isinstance(obj, dict):
        raise ApiError(400, "The request body must be a JSON object.")
    return obj


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "ftlab-sandbox"
    sys_version = ""

    def _serve(self, method: str) -> None:
        headers = {k.lower(): v for k, v in self.headers.items()}
        try:
            if headers.get("transfer-encoding", "").lower() == "chunked":
                body = self._read_chunked()
            else:
                body = self.rfile.read(int(headers.get("content-length") or 0))
        except (ValueError, OSError):
            self.close_connection = True
            return
        started = time.monotonic()
        try:
            resp = self.server.app.handle(method, self.path, headers, body)  # type: ignore[attr-defined]
        except Exception as exc:  # a bug in the sandbox: answer like OpenAI's 500, keep serving
            self.server.errors.append(repr(exc))  # type: ignore[attr-defined]
            err = ApiError(500, f"The sandbox failed while processing your request: {exc}", type="server_error")
            resp = _json(err.body(), 500)
        self.send_response(resp.status)
        self.send_header("Content-Type", resp.content_type)
        self.send_header("Content-Length", str(len(resp.body)))
        self.send_header("x-request-id", new_id("req_", 32))
        self.send_header("openai-processing-ms", str(int((time.monotonic() - started) * 1000)))
        self.send_header("openai-organization", ORG_SLUG)
        for k, v in resp.headers.items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(resp.body)

    def _read_chunked(self) -> bytes:
        out = b""
        while True:
            size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                self.rfile.readline()
                return out
            out += self.rfile.read(size)
            self.rfile.readline()

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def do_DELETE(self) -> None:
        self._serve("DELETE")

    def log_message(self, format: str, *args: Any) -> None:
        if getattr(self.server, "verbose", False):
            super().log_message(format, *args)


class SandboxHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], app: App, *, verbose: bool = False):
        super().__init__(address, _Handler)
        self.app = app
        self.verbose = verbose
        self.errors: list[str] = []
