"""Vertex AI: Gemini supervised tuning data (``systemInstruction``, ``contents``, ``functionCall``
parts), its rules, and the tuning-job request: printed with ``dry_run=True``, sent to Cloud Storage
and the Vertex AI REST API when credentials exist.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ftlab.cloud.common import (
    RETRIEVED,
    Format,
    Problem,
    _alternation_errors,
    _content_from_texts,
    _echo_default,
    _leading_system,
    _nonempty,
    _nonempty_list,
    _object_head,
    _only_keys,
    _only_msg_keys,
    _require_valid,
    _texts,
    _Unholdable,
    _where,
)
from ftlab.errors import FtlabError

__all__ = ["FORMAT", "GCS_UPLOAD_API", "SOURCES", "VERTEX_API", "VERTEX_RECOMMENDED_MIN", "from_vertex",
           "gcs_upload_request", "submit_vertex_job", "to_vertex", "vertex_tuning_request"]

VERTEX_RECOMMENDED_MIN = 100

# Where the format rules come from: (page, date, what it says). Shown by notebook 09.
SOURCES: list[tuple[str, str, str]] = [
    ("https://cloud.google.com/vertex-ai/generative-ai/docs/models/gemini-supervised-tuning-prepare",
     f"page last updated 2025-09-04, read {RETRIEVED}",
     "systemInstruction {role, parts[text]}, contents [{role user|model, parts}]; start with 100 examples"),
    ("https://cloud.google.com/vertex-ai/generative-ai/docs/models/tune-function-calling", RETRIEVED,
     "functionCall / functionResponse parts and tools[{functionDeclarations}] in tuning data"),
]


# --- Vertex AI: Gemini supervised tuning -------------------------------------------------
# Source: "Prepare supervised fine-tuning data for Gemini models" (cloud.google.com/vertex-ai/
# generative-ai/docs/models/gemini-supervised-tuning-prepare, last updated 2025-09-04, read
# 2026-11-23): {"systemInstruction": {"role": ..., "parts": [{"text": ...}]}, "contents":
# [{"role": "user"|"model", "parts": [...]}]}; and "Tune function calling" (.../tune-function-
# calling, read 2026-11-23): functionCall {name, args} parts, functionResponse parts and
# "tools": [{"functionDeclarations": [...]}]. Gemini's functionCall carries no call id, so ids
# are not kept (a warning); args must be a JSON object; parameters use Vertex's OpenAPI Schema.
_VERTEX_SCHEMA_KEYS = {"type", "format", "title", "description", "nullable", "default", "items", "minItems",
                       "maxItems", "enum", "properties", "propertyOrdering", "required", "minProperties",
                       "maxProperties", "minLength", "maxLength", "pattern", "example", "anyOf", "minimum",
                       "maximum"}


def _schema_to_vertex(schema: Any, where: str) -> Any:
    if not isinstance(schema, dict):
        return schema
    out = {}
    for key, value in schema.items():
        if key not in _VERTEX_SCHEMA_KEYS:
            raise _Unholdable(f"{where}: JSON-schema keyword {key!r} has no equivalent in Vertex's function Schema")
        if key == "type":
            if not isinstance(value, str):
                raise _Unholdable(f"{where}: a list of types ({value}); Vertex's Schema takes one type (use nullable)")
            value = value.upper()
        elif key == "properties":
            value = {k: _schema_to_vertex(v, f"{where}.{k}") for k, v in value.items()}
        elif key == "items":
            value = _schema_to_vertex(value, f"{where}[]")
        elif key == "anyOf":
            value = [_schema_to_vertex(v, where) for v in value]
        out[key] = value
    return out


def _schema_from_vertex(schema: Any) -> Any:
    if not isinstance(schema, dict):
        return schema
    out = {}
    for key, value in schema.items():
        if key == "type" and isinstance(value, str):
            value = value.lower()
        elif key == "properties":
            value = {k: _schema_from_vertex(v) for k, v in value.items()}
        elif key == "items":
            value = _schema_from_vertex(value)
        elif key == "anyOf":
            value = [_schema_from_vertex(v) for v in value]
        out[key] = value
    return out


def _vertex_tools(tools: Any, line: int) -> list[dict[str, Any]]:
    w = f"line {line}, tools"
    if not isinstance(tools, list):
        raise _Unholdable(f"{w}: 'tools' must be a list")
    decls = []
    for k, tool in enumerate(tools):
        wk = f"{w}[{k}]"
        if not (isinstance(tool, dict) and tool.get("type") == "function" and isinstance(tool.get("function"), dict)):
            raise _Unholdable(f"{wk}: only function tools convert ({{'type': 'function', 'function': {{...}}}})")
        fn = tool["function"]
        extra = sorted(set(fn) - {"name", "description", "parameters"})
        if extra:
            raise _Unholdable(f"{wk}: function field {extra[0]!r} has no equivalent in Vertex's functionDeclarations")
        decl = {"name": fn["name"]}
        if "description" in fn:
            decl["description"] = fn["description"]
        if "parameters" in fn:
            decl["parameters"] = _schema_to_vertex(fn["parameters"], f"{wk}.parameters")
        decls.append(decl)
    return [{"functionDeclarations": decls}]


def to_vertex(example: dict[str, Any], line: int = 1, warnings: list[str] | None = None) -> dict[str, Any]:
    """One OpenAI chat example as a Gemini supervised-tuning record.

    Example: system → ``systemInstruction``, user → ``{"role": "user", "parts": [{"text": ...}]}``,
    assistant → ``{"role": "model", ...}``; assistant ``tool_calls`` → ``functionCall`` parts,
    ``tool`` messages → ``functionResponse`` parts ``{"name", "response": {"content": text}}``.
    """
    fmt = "Vertex AI's Gemini tuning format"
    _only_keys(example, {"messages", "tools"}, _where(line), fmt)
    msgs = example["messages"]
    system, start = _leading_system(msgs, line, fmt)
    contents: list[dict[str, Any]] = []
    names: dict[str, str] = {}
    dropped_ids = False
    for j in range(start, len(msgs)):
        m, w = msgs[j], _where(line, j)
        role = m["role"]
        if role == "system":
            raise _Unholdable(f"{w}: a system message after the conversation started; {fmt} has one "
                              "systemInstruction, at the top")
        if role == "user":
            _only_msg_keys(m, {"role", "content"}, w, fmt)
            contents.append({"role": "user", "parts": [{"text": t} for t in _nonempty(_texts(m["content"], w, fmt), w)]})
        elif role == "assistant":
            if "function_call" in m:
                raise _Unholdable(f"{w}: legacy 'function_call'; rewrite it as tool_calls")
            _only_msg_keys(m, {"role", "content", "tool_calls"}, w, fmt)
            parts: list[dict[str, Any]] = []
            if m.get("content") not in (None, ""):
                parts += [{"text": t} for t in _nonempty(_texts(m["content"], w, fmt), w)]
            for k, call in enumerate(m.get("tool_calls") or []):
                wk = f"{w}, tool call {k + 1}"
                fn = call.get("function") if isinstance(call, dict) else None
                if not (isinstance(call, dict) and call.get("type", "function") == "function" and isinstance(fn, dict)
                        and isinstance(fn.get("name"), str)):
                    raise _Unholdable(f"{wk}: expected {{'type': 'function', 'function': {{'name', 'arguments'}}}}")
                try:
                    args = json.loads(fn.get("arguments", "{}"))
                except (TypeError, json.JSONDecodeError):
                    raise _Unholdable(f"{wk}: arguments are not valid JSON") from None
                if not isinstance(args, dict):
                    raise _Unholdable(f"{wk}: arguments decode to a {type(args).__name__}, not an object (double-encoded "
                                      "JSON?); Gemini's functionCall.args must be an object")
                if "id" in call:
                    names[call["id"]] = fn["name"]
                    dropped_ids = True
                parts.append({"functionCall": {"name": fn["name"], "args": args}})
            if not parts:
                raise _Unholdable(f"{w}: assistant message with neither text nor tool calls")
            contents.append({"role": "model", "parts": parts})
        else:  # tool
            _only_msg_keys(m, {"role", "content", "tool_call_id"}, w, fmt)
            if m.get("tool_call_id") not in names:
                raise _Unholdable(f"{w}: tool result for unknown tool_call_id {m.get('tool_call_id')!r}; Gemini pairs a "
                                  "functionResponse with its functionCall by name")
            if not isinstance(m["content"], str):
                raise _Unholdable(f"{w}: tool result content as a list of parts; give it as one string")
            part = {"functionResponse": {"name": names[m["tool_call_id"]], "response": {"content": m["content"]}}}
            prev = msgs[j - 1]["role"] if j > 0 else None
            if prev == "tool" and contents and contents[-1]["role"] == "user":
                contents[-1]["parts"].append(part)  # parallel calls: all responses in one turn
            else:
                contents.append({"role": "user", "parts": [part]})
    record: dict[str, Any] = {}
    if system:
        record["systemInstruction"] = {"role": "system", "parts": [{"text": t} for t in system]}
    record["contents"] = contents
    if "tools" in example:
        record["tools"] = _vertex_tools(example["tools"], line)
    if dropped_ids and warnings is not None:
        warnings.append(f"line {line}: tool_call ids are not part of Gemini's functionCall (calls and responses pair by "
                        "name and order); reading back numbers them call_1, call_2, ...")
    return record


def from_vertex(record: dict[str, Any]) -> dict[str, Any]:
    """A Gemini tuning record back as an OpenAI chat example (tool-call ids renumbered)."""
    si = record.get("systemInstruction") or record.get("system_instruction") or {}
    messages: list[dict[str, Any]] = [{"role": "system", "content": p["text"]} for p in si.get("parts", [])]
    counter = 0
    pending: list[tuple[str, str]] = []
    for c in record["contents"]:
        parts = c["parts"]
        if c["role"] == "model":
            msg: dict[str, Any] = {"role": "assistant"}
            texts = [p["text"] for p in parts if "text" in p]
            if texts:
                msg["content"] = _content_from_texts(texts)
            calls = [p["functionCall"] for p in parts if "functionCall" in p]
            if calls:
                msg["tool_calls"] = []
                pending = []
                for call in calls:
                    counter += 1
                    cid = f"call_{counter}"
                    pending.append((call["name"], cid))
                    msg["tool_calls"].append({"id": cid, "type": "function", "function": {
                        "name": call["name"], "arguments": json.dumps(call.get("args", {}), ensure_ascii=False)}})
            messages.append(msg)
        elif parts and all("functionResponse" in p for p in parts):
            for p in parts:
                fr = p["functionResponse"]
                idx = next((i for i, (name, _) in enumerate(pending) if name == fr["name"]), None)
                cid = pending.pop(idx)[1] if idx is not None else f"call_{fr['name']}"
                resp = fr.get("response", {})
                content = resp["content"] if set(resp) == {"content"} and isinstance(resp["content"], str) \
                    else json.dumps(resp, ensure_ascii=False)
                messages.append({"role": "tool", "tool_call_id": cid, "content": content})
        else:
            messages.append({"role": "user", "content": _content_from_texts([p["text"] for p in parts])})
    example: dict[str, Any] = {"messages": messages}
    if "tools" in record:
        example["tools"] = [{"type": "function", "function": {
            k: (_schema_from_vertex(v) if k == "parameters" else v) for k, v in decl.items()}}
            for group in record["tools"] for decl in group.get("functionDeclarations", [])]
    return example


def _validate_vertex(rec: dict[str, Any], line: int) -> list[str]:
    w, errs, ok = _object_head(rec, line, ("systemInstruction", "system_instruction", "contents", "tools"),
                               "unexpected field {} (allowed: systemInstruction, contents, tools)")
    if not ok:
        return errs
    si = rec.get("systemInstruction", rec.get("system_instruction"))
    if si is not None and not (isinstance(si, dict) and isinstance(si.get("parts"), list)
                               and all(isinstance(p, dict) and isinstance(p.get("text"), str) and p["text"]
                                       for p in si["parts"])):
        errs.append(f"{w}: systemInstruction must be {{'parts': [{{'text': ...}}]}}")
    contents = _nonempty_list(rec, "contents", w, errs)
    if contents is None:
        return errs
    roles, calls = [], 0
    for j, c in enumerate(contents):
        wj = f"{w}, content {j + 1}"
        if not isinstance(c, dict) or c.get("role") not in ("user", "model") or not isinstance(c.get("parts"), list) \
                or not c["parts"]:
            errs.append(f"{wj}: a content is {{'role': 'user'|'model', 'parts': [...]}} with at least one part")
            continue
        roles.append(c["role"])
        for p in c["parts"]:
            kinds = [k for k in ("text", "functionCall", "functionResponse", "fileData") if k in p] \
                if isinstance(p, dict) else []
            if len(kinds) != 1 or len(p) != 1:
                errs.append(f"{wj}: a part holds exactly one of text, functionCall, functionResponse, fileData")
                break
            kind = kinds[0]
            if kind == "text" and (not isinstance(p["text"], str) or not p["text"]):
                errs.append(f"{wj}: empty text part")
                break
            if kind == "functionCall":
                calls += 1
                fc = p["functionCall"]
                if c["role"] != "model" or not isinstance(fc.get("name"), str) or not isinstance(fc.get("args", {}), dict):
                    errs.append(f"{wj}: functionCall belongs to a model turn, with a name and object args")
                    break
            if kind == "functionResponse":
                fr = p["functionResponse"]
                if not isinstance(fr.get("name"), str) or not isinstance(fr.get("response"), dict):
                    errs.append(f"{wj}: functionResponse has a name and an object response")
                    break
    errs += _alternation_errors(roles, "user", "model", w, ("user", "model"))
    if calls and "tools" not in rec:
        errs.append(f"{w}: functionCall parts without a tools field; declare the functions (tools[].functionDeclarations)")
    return errs




def _file_rules(n: int, n_bytes: int | None, has_bom: bool | None) -> tuple[list[Problem], list[str]]:
    if 0 < n < VERTEX_RECOMMENDED_MIN:
        return [], [f"{n} examples; Vertex recommends starting with {VERTEX_RECOMMENDED_MIN}"]
    return [], []


FORMAT = Format("vertex", "vertex", to_vertex, from_vertex, _validate_vertex, _file_rules)


# --- Vertex AI ---------------------------------------------------------------------------
# REST: POST https://{location}-aiplatform.googleapis.com/v1/projects/{p}/locations/{l}/tuningJobs
# with {"baseModel", "supervisedTuningSpec": {"trainingDatasetUri", "validationDatasetUri",
# "hyperParameters": {"epochCount", "learningRateMultiplier", "adapterSize"}}, "tunedModelDisplayName"}
# (Vertex AI "Tune Gemini models by using supervised fine-tuning", read 2026-11-23). The dataset
# goes to Cloud Storage first: POST https://storage.googleapis.com/upload/storage/v1/b/{bucket}/o
# ?uploadType=media&name={object} (Cloud Storage JSON API, simple upload).
_ADAPTER = {1: "ADAPTER_SIZE_ONE", 2: "ADAPTER_SIZE_TWO", 4: "ADAPTER_SIZE_FOUR", 8: "ADAPTER_SIZE_EIGHT",
            16: "ADAPTER_SIZE_SIXTEEN", 32: "ADAPTER_SIZE_THIRTY_TWO"}
VERTEX_API = "https://{location}-aiplatform.googleapis.com"
GCS_UPLOAD_API = "https://storage.googleapis.com"


def vertex_tuning_request(*, project: str, training_uri: str, location: str = "us-central1",
                          base_model: str = "gemini-2.5-flash", validation_uri: str | None = None, epochs: int = 3,
                          learning_rate_multiplier: float = 1.0, adapter_size: int = 4,
                          display_name: str = "ftlab-support", api_root: str | None = None) -> dict[str, Any]:
    """The exact REST call that creates a Vertex AI supervised tuning job, and its google-genai equivalent."""
    if adapter_size not in _ADAPTER:
        raise FtlabError(f"adapter_size {adapter_size}; use one of {', '.join(map(str, _ADAPTER))}")
    spec: dict[str, Any] = {"trainingDatasetUri": training_uri}
    if validation_uri:
        spec["validationDatasetUri"] = validation_uri
    spec["hyperParameters"] = {"epochCount": str(epochs), "learningRateMultiplier": learning_rate_multiplier,
                               "adapterSize": _ADAPTER[adapter_size]}
    body = {"baseModel": base_model, "supervisedTuningSpec": spec, "tunedModelDisplayName": display_name}
    root = (api_root or VERTEX_API).format(location=location).rstrip("/")
    sdk = (
        "from google import genai\nfrom google.genai import types\n\n"
        f"client = genai.Client(vertexai=True, project={project!r}, location={location!r})\n"
        f"job = client.tunings.tune(\n    base_model={base_model!r},\n"
        f"    training_dataset=types.TuningDataset(gcs_uri={training_uri!r}),\n"
        f"    config=types.CreateTuningJobConfig(\n        epoch_count={epochs}, learning_rate_multiplier="
        f"{learning_rate_multiplier}, adapter_size={_ADAPTER[adapter_size]!r},\n"
        f"        tuned_model_display_name={display_name!r}"
        + (f",\n        validation_dataset=types.TuningValidationDataset(gcs_uri={validation_uri!r})" if validation_uri else "")
        + "))"
    )
    return {"method": "POST", "url": f"{root}/v1/projects/{project}/locations/{location}/tuningJobs", "body": body,
            "sdk": sdk}


def gcs_upload_request(bucket: str, object_name: str, file: str | os.PathLike[str],
                       storage_root: str | None = None) -> dict[str, Any]:
    root = (storage_root or GCS_UPLOAD_API).rstrip("/")
    return {"method": "POST", "file": str(file), "gcs_uri": f"gs://{bucket}/{object_name}",
            "url": f"{root}/upload/storage/v1/b/{bucket}/o?uploadType=media&name={urllib.parse.quote(object_name, safe='')}",
            "headers": {"Content-Type": "application/jsonl"}}


def _google_token(access_token: str | None) -> str:
    token = access_token or os.environ.get("GOOGLE_CLOUD_ACCESS_TOKEN")
    if token:
        return token
    try:
        import google.auth
        import google.auth.transport.requests
    except ImportError:
        raise FtlabError("no Google credentials: set GOOGLE_CLOUD_ACCESS_TOKEN (gcloud auth print-access-token) or "
                         "pip install google-auth and run gcloud auth application-default login") from None
    try:
        creds, _ = google.auth.default(scopes=["https://www.googleapis.com/auth/cloud-platform"])
        creds.refresh(google.auth.transport.requests.Request())
    except Exception as exc:  # google.auth raises several unrelated types
        raise FtlabError(f"no usable Google credentials ({type(exc).__name__}); run gcloud auth application-default login") from None
    return creds.token


def _http(method: str, url: str, *, token: str, data: bytes, content_type: str) -> dict[str, Any]:
    req = urllib.request.Request(url, data=data, method=method,
                                 headers={"Authorization": f"Bearer {token}", "Content-Type": content_type})
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            return json.loads(resp.read().decode() or "{}")
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode(errors="replace")[:300]
        raise FtlabError(f"{method} {url.split('?')[0]} failed: HTTP {exc.code}: {detail}") from None


def submit_vertex_job(train_file: str | os.PathLike[str], *, project: str, bucket: str, location: str = "us-central1",
                      base_model: str = "gemini-2.5-flash", validation_file: str | os.PathLike[str] | None = None,
                      epochs: int = 3, learning_rate_multiplier: float = 1.0, adapter_size: int = 4,
                      display_name: str = "ftlab-support", prefix: str = "ftlab", dry_run: bool = True,
                      access_token: str | None = None, api_root: str | None = None, storage_root: str | None = None,
                      echo: Callable[[str], None] = _echo_default) -> dict[str, Any]:
    """Upload a Vertex-format file to Cloud Storage and create a Gemini tuning job.

    ``dry_run=True`` prints the uploads, the REST call and the google-genai SDK call, and sends
    nothing. ``dry_run=False`` needs a token (``access_token``, ``GOOGLE_CLOUD_ACCESS_TOKEN`` or
    google-auth's default credentials) and returns the created TuningJob resource.
    """
    train_file = Path(train_file)
    _require_valid(train_file, FORMAT)
    uploads = [gcs_upload_request(bucket, f"{prefix}/{display_name}/train.jsonl", train_file, storage_root)]
    if validation_file is not None:
        _require_valid(Path(validation_file), FORMAT)
        uploads.append(gcs_upload_request(bucket, f"{prefix}/{display_name}/validation.jsonl", validation_file,
                                          storage_root))
    create = vertex_tuning_request(project=project, location=location, base_model=base_model,
                                   training_uri=uploads[0]["gcs_uri"],
                                   validation_uri=uploads[1]["gcs_uri"] if len(uploads) > 1 else None, epochs=epochs,
                                   learning_rate_multiplier=learning_rate_multiplier, adapter_size=adapter_size,
                                   display_name=display_name, api_root=api_root)
    plan = {"dry_run": dry_run, "uploads": uploads, "create": create, "job": None}
    if dry_run:
        echo("dry run: nothing uploaded, nothing submitted")
        for u in uploads:
            echo(f"POST {u['url']}  <- {u['file']}")
        echo(f"POST {create['url']}\n{json.dumps(create['body'], indent=2)}")
        echo("# the same with the google-genai SDK:\n" + create["sdk"])
        return plan
    token = _google_token(access_token)
    for u in uploads:
        _http("POST", u["url"], token=token, data=Path(u["file"]).read_bytes(), content_type="application/jsonl")
    plan["job"] = _http("POST", create["url"], token=token, data=json.dumps(create["body"]).encode(),
                        content_type="application/json")
    echo(f"created {plan['job'].get('name', '?')} ({plan['job'].get('state', '?')})")
    return plan
