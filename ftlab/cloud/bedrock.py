"""Amazon Bedrock: the ``bedrock-conversation-2024`` and prompt/completion formats, their rules, and
submission through boto3 (S3 upload, ``create_model_customization_job``, polling), which runs offline
against moto's in-process ``mock_aws`` and, with real credentials and ``dry_run=False``, against AWS.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import time
from collections.abc import Callable, Iterator
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
    _timestamp_name,
    _Unholdable,
    _where,
)
from ftlab.errors import FtlabError

__all__ = ["BEDROCK_FORMATS", "BEDROCK_MAX_RECORDS", "BEDROCK_PC_MAX_CHARS", "BEDROCK_SCHEMA", "BEDROCK_TERMINAL",
           "CONVERSATION", "PROMPT_COMPLETION", "SOURCES", "bedrock_job_request", "bedrock_job_status",
           "create_bedrock_prerequisites", "format_for", "from_bedrock", "from_bedrock_prompt_completion",
           "mock_aws", "stop_bedrock_job", "submit_bedrock_job", "to_bedrock", "to_bedrock_prompt_completion",
           "wait_for_bedrock_job"]

BEDROCK_FORMATS = ("conversation", "prompt-completion")
BEDROCK_SCHEMA = "bedrock-conversation-2024"
BEDROCK_MAX_RECORDS = 20_000  # Nova: sum of training and validation records
BEDROCK_PC_MAX_CHARS = 4096 * 6  # 4,096 tokens at batch size 1, x 6 characters per token
_NOVA_RESERVED = ("User:", "Bot:", "Assistant:", "System:", "<image>", "<video>", "[EOS]")

# Where the format rules come from: (page, date, what it says). Shown by notebook 09.
SOURCES: list[tuple[str, str, str]] = [
    ("https://docs.aws.amazon.com/bedrock/latest/userguide/preparing-text-data.html", RETRIEVED,
     "prompt/completion for non-conversational models; Converse format (schemaVersion bedrock-conversation-2024, "
     "system, messages with content blocks) for single- and multi-turn"),
    ("https://docs.aws.amazon.com/nova/latest/userguide/fine-tune-prepare-data-understanding.html", RETRIEVED,
     "Nova: roles user and assistant only, first turn user, last turn assistant, reserved keywords "
     "User:, Bot:, Assistant:, System:, <image>, <video>, [EOS]"),
    ("https://docs.aws.amazon.com/bedrock/latest/userguide/model-training-validation-requirements.html", RETRIEVED,
     "4,096 input+output tokens at batch size 1; character quota per sample = token quota x 6"),
    ("https://docs.aws.amazon.com/bedrock/latest/userguide/model-customization-prepare.html", RETRIEVED,
     "which models take prompt/completion (Titan Text, Cohere Command, Llama 2) and which take messages"),
]


# --- Bedrock: bedrock-conversation-2024 -------------------------------------------------
# Source: "Prepare data for fine-tuning text-to-text models", Converse API format, and the Nova
# data rules (docs.aws.amazon.com/bedrock/latest/userguide/preparing-text-data.html and
# docs.aws.amazon.com/nova/latest/userguide/fine-tune-prepare-data-understanding.html, read
# 2026-11-23): {"schemaVersion": "bedrock-conversation-2024", "system": [{"text": ...}],
# "messages": [{"role": "user"|"assistant", "content": [{"text": ...}]}]}. Fine-tuned Nova and
# Llama models on Bedrock take no tool-use blocks in training data, so tool calls are errors.
def to_bedrock(example: dict[str, Any], line: int = 1) -> dict[str, Any]:
    """One OpenAI chat example as a ``bedrock-conversation-2024`` record.

    Example: ``{"messages": [{"role": "system", "content": "S"}, {"role": "user", "content": "Q"},
    {"role": "assistant", "content": "A"}]}`` becomes ``{"schemaVersion": "bedrock-conversation-2024",
    "system": [{"text": "S"}], "messages": [{"role": "user", "content": [{"text": "Q"}]},
    {"role": "assistant", "content": [{"text": "A"}]}]}``.
    """
    fmt = "Bedrock's bedrock-conversation-2024 format"
    _only_keys(example, {"messages"}, _where(line), fmt)
    msgs = example["messages"]
    system, start = _leading_system(msgs, line, fmt)
    out = []
    for j in range(start, len(msgs)):
        m, w = msgs[j], _where(line, j)
        if m["role"] == "system":
            raise _Unholdable(f"{w}: a system message after the conversation started; {fmt} has one system field, "
                              "at the top")
        if m["role"] == "tool":
            raise _Unholdable(f"{w}: a tool result: {fmt} has no tool-use blocks for fine-tuning; use Vertex, "
                              "Together or Azure for tool-calling data, or drop the tool turns")
        _only_msg_keys(m, {"role", "content"}, w, fmt)
        texts = _nonempty(_texts(m["content"], w, fmt), w)
        out.append({"role": m["role"], "content": [{"text": t} for t in texts]})
    record: dict[str, Any] = {"schemaVersion": BEDROCK_SCHEMA}
    if system:
        record["system"] = [{"text": t} for t in system]
    record["messages"] = out
    return record


def from_bedrock(record: dict[str, Any]) -> dict[str, Any]:
    """A ``bedrock-conversation-2024`` record back as an OpenAI chat example."""
    messages: list[dict[str, Any]] = [{"role": "system", "content": b["text"]} for b in record.get("system", [])]
    for m in record["messages"]:
        messages.append({"role": m["role"], "content": _content_from_texts([b["text"] for b in m["content"]])})
    return {"messages": messages}


# --- Bedrock: prompt/completion ----------------------------------------------------------
# Source: preparing-text-data.html, "Non-conversational tasks" (read 2026-11-23): {"prompt": ...,
# "completion": ...} for Titan Text, Cohere Command and Llama 2 (model-customization-prepare.html).
# The format has no system field and one turn, so anything else is an error, not a silent merge.
def to_bedrock_prompt_completion(example: dict[str, Any], line: int = 1) -> dict[str, Any]:
    """One single-turn example as ``{"prompt": user, "completion": assistant}``."""
    fmt = "Bedrock's prompt/completion format"
    _only_keys(example, {"messages"}, _where(line), fmt)
    msgs = example["messages"]
    if msgs[0]["role"] == "system":
        raise _Unholdable(f"{_where(line, 0)}: a system message: {fmt} has no system field; use the conversation "
                          "format (--bedrock-format conversation: Nova, Llama 3.x, Claude 3 Haiku) or remove it")
    if [m["role"] for m in msgs] != ["user", "assistant"]:
        raise _Unholdable(f"{_where(line)}: {fmt} holds exactly one user turn and one assistant turn, got "
                          f"{' → '.join(m['role'] for m in msgs)}")
    for j, m in enumerate(msgs):
        _only_msg_keys(m, {"role", "content"}, _where(line, j), fmt)
        if not isinstance(m["content"], str):
            raise _Unholdable(f"{_where(line, j)}: content as a list of parts; {fmt} takes one string")
        _nonempty([m["content"]], _where(line, j))
    return {"prompt": msgs[0]["content"], "completion": msgs[1]["content"]}


def from_bedrock_prompt_completion(record: dict[str, Any]) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": record["prompt"]},
                         {"role": "assistant", "content": record["completion"]}]}


def _validate_bedrock(rec: dict[str, Any], line: int) -> list[str]:
    w, errs, ok = _object_head(rec, line, ("schemaVersion", "system", "messages"),
                               "unexpected field {} (allowed: schemaVersion, system, messages)")
    if not ok:
        return errs
    if not isinstance(rec.get("schemaVersion"), str):
        errs.append(f"{w}: schemaVersion missing; use {BEDROCK_SCHEMA!r}")
    system = rec.get("system", [])
    if not isinstance(system, list) or not all(isinstance(b, dict) and set(b) == {"text"} and isinstance(b["text"], str)
                                               and b["text"] for b in system):
        errs.append(f"{w}: system must be a list of {{'text': non-empty string}} blocks")
        system = []
    msgs = _nonempty_list(rec, "messages", w, errs)
    if msgs is None:
        return errs
    roles = []
    for j, m in enumerate(msgs):
        wj = _where(line, j)
        if not isinstance(m, dict) or set(m) != {"role", "content"}:
            errs.append(f"{wj}: a message is {{'role', 'content'}}")
            continue
        if m["role"] not in ("user", "assistant"):
            errs.append(f"{wj}: role {m['role']!r}; Bedrock conversations take user and assistant only")
        roles.append(m["role"])
        blocks = m["content"]
        if not isinstance(blocks, list) or not blocks:
            errs.append(f"{wj}: content must be a non-empty list of blocks")
            continue
        for b in blocks:
            if not (isinstance(b, dict) and set(b) == {"text"}):
                kind = sorted(b)[0] if isinstance(b, dict) and b else "?"
                errs.append(f"{wj}: a {kind!r} block; ftlab checks text-only datasets (image and video blocks need the "
                            "S3 rules of the Nova data page)")
                break
            if not isinstance(b["text"], str) or not b["text"]:
                errs.append(f"{wj}: empty or non-string text block")
                break
    errs += _alternation_errors(roles, "user", "assistant", w, ("user", "assistant"))
    prompts = [b["text"] for b in system] + [b.get("text", "") for m in msgs if isinstance(m, dict)
                                               and m.get("role") == "user" and isinstance(m.get("content"), list)
                                               for b in m["content"] if isinstance(b, dict)]
    for text in prompts:
        hit = next((k for k in _NOVA_RESERVED if isinstance(text, str) and text.lstrip().startswith(k)), None)
        if hit:
            errs.append(f"{w}: a prompt starts with {hit!r}, a reserved keyword for Nova fine-tuning; reword it")
            break
    return errs


def _validate_bedrock_pc(rec: dict[str, Any], line: int) -> list[str]:
    w = _where(line)
    if not isinstance(rec, dict) or set(rec) != {"prompt", "completion"}:
        return [f"{w}: a prompt/completion line has exactly the fields 'prompt' and 'completion'"]
    errs = [f"{w}: {k} must be a non-empty string" for k in ("prompt", "completion")
            if not isinstance(rec[k], str) or not rec[k]]
    if not errs and len(rec["prompt"]) + len(rec["completion"]) > BEDROCK_PC_MAX_CHARS:
        errs.append(f"{w}: {len(rec['prompt']) + len(rec['completion'])} characters; the quota is 4,096 tokens x 6 = "
                    f"{BEDROCK_PC_MAX_CHARS} characters per sample")
    return errs




def _file_rules(n: int, n_bytes: int | None, has_bom: bool | None) -> tuple[list[Problem], list[str]]:
    if n > BEDROCK_MAX_RECORDS:
        return [Problem(None, "file", f"{n} records; Bedrock (Nova) takes at most {BEDROCK_MAX_RECORDS} training + "
                                      "validation records")], []
    return [], []


CONVERSATION = Format("bedrock", "bedrock", lambda ex, line, warnings: to_bedrock(ex, line), from_bedrock,
                      _validate_bedrock, _file_rules)
PROMPT_COMPLETION = Format("bedrock-prompt-completion", "bedrock",
                           lambda ex, line, warnings: to_bedrock_prompt_completion(ex, line),
                           from_bedrock_prompt_completion, _validate_bedrock_pc, _file_rules)


def format_for(bedrock_format: str) -> Format:
    """The :class:`Format` of ``"conversation"`` or ``"prompt-completion"`` (anything else: a one-line error)."""
    if bedrock_format not in BEDROCK_FORMATS:
        raise FtlabError(f"unknown Bedrock format {bedrock_format!r}; use one of: {', '.join(BEDROCK_FORMATS)}")
    return PROMPT_COMPLETION if bedrock_format == "prompt-completion" else CONVERSATION


# --- submission through boto3 (real or moto) -----------------------------------------------------
BEDROCK_TERMINAL = ("Completed", "Failed", "Stopped")
_JOB_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9+\-.])*$")


@contextlib.contextmanager
def mock_aws(enabled: bool = True) -> Iterator[bool]:
    """moto's in-process AWS for the ``with`` block: every boto3 call inside it is answered offline, with fake
    credentials, and its buckets, roles and jobs vanish at the end. ``enabled=False`` mocks nothing: the calls
    go to your real AWS account. Yields whether AWS is mocked.

    Example: ``with mock_aws(): submit_bedrock_job(path, dry_run=False, ...)`` submits to moto, not to AWS.
    """
    if not enabled:
        yield False
        return
    try:
        from moto import mock_aws as moto_mock_aws
    except ImportError as exc:
        raise FtlabError("moto is not installed: pip install 'moto[s3,bedrock]' (or set aws_mock=False for real AWS)") from exc
    with moto_mock_aws():
        yield True


def _session(session: Any = None, region: str = "us-east-1") -> Any:
    if session is not None:
        return session
    import boto3

    return boto3.Session(region_name=region)


def create_bedrock_prerequisites(*, bucket: str, role_name: str = "ftlab-bedrock-customization",
                                 region: str = "us-east-1", session: Any = None) -> str:
    """Create (or reuse) the S3 bucket and the IAM service role a customization job needs; return the role ARN.

    Real boto3 calls: against moto's ``mock_aws`` offline, against your account with real credentials.
    The role trusts ``bedrock.amazonaws.com`` and may read and write only ``bucket``.
    """
    sess = _session(session, region)
    s3, iam = sess.client("s3", region_name=region), sess.client("iam", region_name=region)
    try:
        if region == "us-east-1":
            s3.create_bucket(Bucket=bucket)
        else:
            s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": region})
    except s3.exceptions.BucketAlreadyOwnedByYou:
        pass
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "bedrock.amazonaws.com"},
                                                     "Action": "sts:AssumeRole"}]}
    access = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
                                                      "Action": ["s3:GetObject", "s3:PutObject", "s3:ListBucket"],
                                                      "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"]}]}
    try:
        arn = iam.create_role(RoleName=role_name, AssumeRolePolicyDocument=json.dumps(trust),
                              Description="ftlab: Bedrock model customization")["Role"]["Arn"]
    except iam.exceptions.EntityAlreadyExistsException:
        arn = iam.get_role(RoleName=role_name)["Role"]["Arn"]
    iam.put_role_policy(RoleName=role_name, PolicyName="ftlab-training-data", PolicyDocument=json.dumps(access))
    return arn


def bedrock_job_request(*, job_name: str, custom_model_name: str, role_arn: str, base_model: str, training_uri: str,
                        output_uri: str, validation_uri: str | None = None,
                        hyperparameters: dict[str, Any] | None = None) -> dict[str, Any]:
    """The keyword arguments of ``bedrock.create_model_customization_job`` (hyperparameters are strings)."""
    if not _JOB_NAME.match(job_name) or len(job_name) > 63:
        raise FtlabError(f"Bedrock job name {job_name!r}: use letters, digits, '-', '+', '.', at most 63 characters")
    request: dict[str, Any] = {
        "jobName": job_name, "customModelName": custom_model_name, "roleArn": role_arn,
        "baseModelIdentifier": base_model, "customizationType": "FINE_TUNING",
        "trainingDataConfig": {"s3Uri": training_uri}, "outputDataConfig": {"s3Uri": output_uri},
        "hyperParameters": {k: str(v) for k, v in (hyperparameters or {"epochCount": 2}).items()},
    }
    if validation_uri:
        request["validationDataConfig"] = {"validators": [{"s3Uri": validation_uri}]}
    return request


def submit_bedrock_job(train_file: str | os.PathLike[str], *, bucket: str, role_arn: str,
                       base_model: str = "amazon.nova-micro-v1:0", job_name: str | None = None,
                       custom_model_name: str | None = None, validation_file: str | os.PathLike[str] | None = None,
                       hyperparameters: dict[str, Any] | None = None, prefix: str = "ftlab", region: str = "us-east-1",
                       bedrock_format: str = "conversation", dry_run: bool = True, session: Any = None,
                       echo: Callable[[str], None] = _echo_default) -> dict[str, Any]:
    """Upload a Bedrock-format file to S3 and start a model customization job.

    ``dry_run=True`` (the default) prints the uploads and the request and touches nothing.
    ``dry_run=False`` needs AWS credentials (moto's ``mock_aws`` provides fake ones offline):
    it uploads with ``s3.upload_file``, checks the objects exist, and calls
    ``create_model_customization_job``. Returns ``{"job_arn", "job_name", "request", "uploads"}``.
    ``bedrock_format="prompt-completion"`` submits a prompt/completion file (Titan, Cohere models).
    """
    train_file = Path(train_file)
    fmt = format_for(bedrock_format)
    _require_valid(train_file, fmt)
    if validation_file is not None:
        _require_valid(Path(validation_file), fmt)
    job_name = job_name or _timestamp_name()
    base = f"{prefix.strip('/')}/{job_name}"
    uploads = [(train_file, f"{base}/train.jsonl")]
    if validation_file is not None:
        uploads.append((Path(validation_file), f"{base}/validation.jsonl"))
    request = bedrock_job_request(
        job_name=job_name, custom_model_name=custom_model_name or f"{job_name}-model", role_arn=role_arn,
        base_model=base_model, training_uri=f"s3://{bucket}/{uploads[0][1]}", output_uri=f"s3://{bucket}/{base}/output/",
        validation_uri=f"s3://{bucket}/{uploads[1][1]}" if validation_file is not None else None,
        hyperparameters=hyperparameters)
    plan = {"dry_run": dry_run, "uploads": [{"file": str(p), "s3_uri": f"s3://{bucket}/{k}"} for p, k in uploads],
            "request": request, "job_name": job_name, "job_arn": None}
    if dry_run:
        echo("dry run: nothing uploaded, nothing submitted")
        for u in plan["uploads"]:
            echo(f"s3.upload_file({u['file']!r}, {bucket!r}, {u['s3_uri'].split('/', 3)[3]!r})")
        echo("bedrock.create_model_customization_job(**" + json.dumps(request, indent=2) + ")")
        return plan
    sess = _session(session, region)
    if sess.get_credentials() is None:
        raise FtlabError("no AWS credentials found (env, ~/.aws or a role); configure them or keep dry_run=True")
    s3 = sess.client("s3", region_name=region)
    for path, key in uploads:
        s3.upload_file(str(path), bucket, key)
        size = s3.head_object(Bucket=bucket, Key=key)["ContentLength"]
        if size != path.stat().st_size:
            raise FtlabError(f"s3://{bucket}/{key} holds {size} bytes, the file {path.stat().st_size}; upload again")
    bedrock = sess.client("bedrock", region_name=region)
    plan["job_arn"] = bedrock.create_model_customization_job(**request)["jobArn"]
    echo(f"submitted {job_name}: {plan['job_arn']}")
    return plan


def bedrock_job_status(job_name: str, *, region: str = "us-east-1", session: Any = None) -> dict[str, Any]:
    """``get_model_customization_job`` by job *name*.

    AWS accepts the name or the ARN; moto 5.2 finds jobs by name only (the ARN raises
    ResourceNotFoundException there), so ftlab always asks by name, which works on both.
    """
    bedrock = _session(session, region).client("bedrock", region_name=region)
    return bedrock.get_model_customization_job(jobIdentifier=job_name)


def wait_for_bedrock_job(job_name: str, *, region: str = "us-east-1", session: Any = None, interval: float = 60.0,
                         timeout: float | None = None, max_polls: int | None = None,
                         echo: Callable[[str], None] = _echo_default) -> dict[str, Any]:
    """Poll until the job is Completed, Failed or Stopped, or ``timeout`` / ``max_polls`` runs out.

    Returns ``{"status", "finished", "polls": [status, ...], "job": last response}``. A real
    job takes tens of minutes; moto never trains, so its jobs stay InProgress until stopped.
    """
    started, polls = time.monotonic(), []
    while True:
        job = bedrock_job_status(job_name, region=region, session=session)
        polls.append(job["status"])
        echo(f"poll {len(polls)}: {job_name} is {job['status']}")
        finished = job["status"] in BEDROCK_TERMINAL
        out_of_time = timeout is not None and time.monotonic() - started + interval > timeout
        if finished or out_of_time or (max_polls is not None and len(polls) >= max_polls):
            return {"status": job["status"], "finished": finished, "polls": polls, "job": job}
        time.sleep(interval)


def stop_bedrock_job(job_name: str, *, region: str = "us-east-1", session: Any = None) -> str:
    """Stop a running customization job; returns the status Bedrock reports afterwards."""
    bedrock = _session(session, region).client("bedrock", region_name=region)
    bedrock.stop_model_customization_job(jobIdentifier=job_name)
    return bedrock_job_status(job_name, region=region, session=session)["status"]
