"""The sandbox, driven by the real ``openai`` SDK over real HTTP on 127.0.0.1, strict validation on."""

from __future__ import annotations

import json
import os
import signal
import time
import urllib.request

import openai
import pytest

from ftlab import data
from ftlab.sandbox import Faults, Sandbox, SandboxProcess
from tests.helpers import wait_until


def _client(url: str, **kw) -> openai.OpenAI:
    kw.setdefault("max_retries", 0)
    return openai.OpenAI(base_url=url, api_key="sk-test-not-secret", _strict_response_validation=True, **kw)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("sbx-files")
    out = data.write_toy_files(d)
    short = data.write_jsonl(data.support_splits()["train"][:5], d / "short.jsonl")
    return {**out, "short": short, "dir": d}


@pytest.fixture(scope="module")
def sbx(tmp_path_factory):
    with Sandbox(tmp_path_factory.mktemp("sbx")) as s:
        yield s


@pytest.fixture(scope="module")
def client(sbx):
    return _client(sbx.url)


def _upload(client, path, purpose="fine-tune"):
    with open(path, "rb") as f:
        return client.files.create(file=f, purpose=purpose)


def _wait(client, job_id, statuses=("succeeded", "failed", "cancelled"), timeout=600):
    def ended():
        job = client.fine_tuning.jobs.retrieve(job_id)
        return job if job.status in statuses else None

    return wait_until(ended, timeout=timeout, what=f"job {job_id} reaching {statuses}")


def test_files_roundtrip_and_pagination(client, files):
    up = _upload(client, files["upload"])
    assert up.id.startswith("file-") and up.object == "file" and up.purpose == "fine-tune"
    assert up.bytes == files["upload"].stat().st_size and up.filename == "support_upload.jsonl"
    assert client.files.retrieve(up.id) == up
    assert client.files.content(up.id).read() == files["upload"].read_bytes()
    ids = [_upload(client, files["validation"]).id for _ in range(3)]
    page = client.files.list(limit=2)
    assert [f.id for f in page.data] == ids[::-1][:2]  # newest first
    assert page.has_more is True
    rest = client.files.list(limit=2, after=page.data[-1].id)
    assert rest.data[0].id == ids[0]
    everything = [f.id for f in client.files.list(limit=2)]  # the SDK follows has_more / after
    assert everything[:4] == [*ids[::-1], up.id]
    assert client.files.list(purpose="assistants").data == []
    gone = client.files.delete(ids[0])
    assert gone.deleted and gone.id == ids[0]
    with pytest.raises(openai.NotFoundError) as e:
        client.files.retrieve(ids[0])
    assert e.value.body["message"] == f"No such File object: {ids[0]}"


def test_upload_errors(client, files):
    with pytest.raises(openai.BadRequestError) as e:
        _upload(client, files["upload"], purpose="nonsense")
    assert e.value.body["param"] == "purpose"
    txt = files["dir"] / "notes.txt"
    txt.write_text("hello")
    with pytest.raises(openai.BadRequestError, match=r"Must be \.jsonl"):
        _upload(client, txt)


def test_bad_file_fails_the_job_with_an_openai_error(client, files):
    bad = _upload(client, files["malformed"])
    job = client.fine_tuning.jobs.create(model="gpt-4.1-mini", training_file=bad.id)
    assert job.status == "validating_files" and job.model == "gpt-4.1-mini-2025-04-14"
    assert job.hyperparameters.n_epochs == "auto" and job.error is None
    job = _wait(client, job.id)
    assert job.status == "failed" and job.fine_tuned_model is None and job.finished_at
    assert job.error.code == "invalid_training_file" and job.error.param == "training_file"
    assert "Line 3" in job.error.message and "invalid_json" in job.error.message
    events = client.fine_tuning.jobs.list_events(job.id).data
    assert events[0].level == "error" and "failed" in events[0].message
    assert "toy model" in events[-1].message  # the first event says who stands in

    short = _upload(client, files["short"])
    job = _wait(client, client.fine_tuning.jobs.create(model="gpt-4o-mini", training_file=short.id).id)
    assert job.status == "failed" and job.error.code == "invalid_n_examples"
    assert job.error.message == "Training file has 5 example(s), but must have at least 10 examples."


@pytest.mark.parametrize(("kwargs", "param", "code"), [
    ({"model": "gpt-5.4"}, "model", "model_not_available"),
    ({"model": "davinci-003"}, "model", "model_not_available"),
    ({"model": "o4-mini"}, "model", "invalid_method"),
    ({"training_file": "file-doesnotexist"}, "training_file", "invalid_training_file"),
    ({"hyperparameters": {"n_epochs": 0}}, "hyperparameters.n_epochs", None),
    ({"method": {"type": "supervised", "supervised": {"hyperparameters": {"batch_size": "big"}}}},
     "hyperparameters.batch_size", None),
    ({"method": {"type": "reinforcement"}}, "method.type", "unsupported_method"),  # DPO runs (test_sandbox_dpo.py)
    ({"suffix": "x" * 65}, "suffix", None),
    ({"seed": -1}, "seed", None),
    ({"metadata": {"k": 1}}, "metadata", None),
])
def test_job_create_is_checked_like_openai(client, files, kwargs, param, code):
    up = _upload(client, files["upload"])
    args = {"model": "gpt-4.1-mini", "training_file": up.id, **kwargs}
    with pytest.raises(openai.BadRequestError) as e:
        client.fine_tuning.jobs.create(**args)
    assert e.value.status_code == 400
    assert e.value.body["param"] == param and e.value.body["code"] == code
    assert e.value.body["type"] == "invalid_request_error" and e.value.body["message"]


def test_wrong_purpose_file_is_refused(client, files):
    other = _upload(client, files["upload"], purpose="assistants")
    with pytest.raises(openai.BadRequestError, match="requires purpose 'fine-tune'"):
        client.fine_tuning.jobs.create(model="gpt-4.1-mini", training_file=other.id)


def test_jobs_list_newest_first_with_metadata_and_cancel(client, files):
    bad = _upload(client, files["malformed"])
    made = [client.fine_tuning.jobs.create(model="gpt-4.1-nano", training_file=bad.id,
                                           metadata={"batch": "pagination", "i": str(i)}) for i in range(3)]
    page = client.fine_tuning.jobs.list(limit=2, metadata={"batch": "pagination"})
    assert [j.id for j in page.data] == [made[2].id, made[1].id] and page.has_more
    nxt = client.fine_tuning.jobs.list(limit=2, after=page.data[-1].id, metadata={"batch": "pagination"})
    assert [j.id for j in nxt.data] == [made[0].id] and not nxt.has_more
    for j in made:
        _wait(client, j.id)
    with pytest.raises(openai.BadRequestError) as e:  # a finished job cannot be cancelled
        client.fine_tuning.jobs.cancel(made[0].id)
    assert e.value.body["code"] == "job_not_cancellable"
    with pytest.raises(openai.NotFoundError):
        client.fine_tuning.jobs.retrieve("ftjob-nope")


def test_events_paginate_newest_first(client, files):
    bad = _upload(client, files["malformed"])
    job = _wait(client, client.fine_tuning.jobs.create(model="gpt-4.1-mini", training_file=bad.id).id)
    every = client.fine_tuning.jobs.list_events(job.id, limit=100).data
    assert len(every) >= 3
    assert [e.created_at for e in every] == sorted((e.created_at for e in every), reverse=True)
    first = client.fine_tuning.jobs.list_events(job.id, limit=2)
    assert first.has_more and [e.id for e in first.data] == [e.id for e in every[:2]]
    second = client.fine_tuning.jobs.list_events(job.id, limit=2, after=first.data[-1].id)
    assert [e.id for e in second.data] == [e.id for e in every[2:4]]
    assert client.fine_tuning.jobs.checkpoints.list(job.id).data == []


def test_chat_with_the_base_model_and_unknown_models(client):
    msgs = [{"role": "system", "content": data.GENERAL_SYSTEM}, {"role": "user", "content": "Uppercase: apple"}]
    r = client.chat.completions.create(model="gpt-4.1-mini", messages=msgs, temperature=0, max_tokens=8)
    assert r.object == "chat.completion" and r.model == "gpt-4.1-mini"
    assert r.choices[0].message.content == "APPLE" and r.choices[0].finish_reason == "stop"
    assert r.usage.prompt_tokens > 0 and r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens
    with pytest.raises(openai.NotFoundError) as e:
        client.chat.completions.create(model="ft:gpt-4.1-mini-2025-04-14:x::nope", messages=[{"role": "user", "content": "hi"}])
    assert e.value.body["code"] == "model_not_found"
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="gpt-4.1-mini", messages=[{"role": "user", "content": "hi"}], stream=True)
    names = [m.id for m in client.models.list()]
    assert "gpt-4.1-mini" in names and "gpt-5.4" not in names


def test_raw_http_error_shapes(sbx):
    req = urllib.request.Request(sbx.url + "/files")
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(req, timeout=10)
    assert e.value.code == 401
    body = json.loads(e.value.read())
    assert set(body["error"]) == {"message", "type", "param", "code"}
    req = urllib.request.Request(sbx.url + "/nowhere", headers={"Authorization": "Bearer sk-test"})
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(req, timeout=10)
    assert e.value.code == 404 and json.loads(e.value.read())["error"]["message"] == "Invalid URL (GET /v1/nowhere)"


def test_injected_faults_are_survived_by_the_sdk_retries(tmp_path, files):
    faults = Faults(rate=0.5, seed=3, slow_s=0.05)
    with Sandbox(tmp_path, faults=faults) as s:
        c = _client(s.url, max_retries=2)
        for _ in range(30):  # a fixed prefix of requests: the seeded draws below include every kind
            assert c.files.list().data == []
        up = _upload(c, files["upload"])
        assert c.files.content(up.id).read() == files["upload"].read_bytes()
        bad = _upload(c, files["malformed"])
        job = c.fine_tuning.jobs.create(model="gpt-4.1-mini", training_file=bad.id)
        job = _wait(c, job.id)
        assert job.status == "failed"
        assert len(c.fine_tuning.jobs.list_events(job.id).data) >= 3
        assert len(c.files.list().data) == 2  # retried uploads did not duplicate files
        assert len(c.fine_tuning.jobs.list().data) == 1
    kinds = {k for k, _, _ in faults.injected}
    assert {"429", "500", "slow"} <= kinds, faults.injected


def test_restart_loses_nothing(tmp_path, files):
    sp = SandboxProcess(tmp_path).start()
    try:
        c = _client(sp.url)
        up = _upload(c, files["upload"])
        bad = _upload(c, files["malformed"])
        failed = _wait(c, c.fine_tuning.jobs.create(model="gpt-4.1-mini", training_file=bad.id, suffix="r1").id)
        events = c.fine_tuning.jobs.list_events(failed.id).data
    finally:
        sp.proc.send_signal(signal.SIGKILL)
        sp.proc.wait()
    with SandboxProcess(tmp_path) as sp2:
        c = _client(sp2.url)
        assert {f.id for f in c.files.list()} == {up.id, bad.id}
        assert c.files.content(up.id).read() == files["upload"].read_bytes()
        again = c.fine_tuning.jobs.retrieve(failed.id)
        assert again == failed
        assert c.fine_tuning.jobs.list_events(failed.id).data == events


def test_cli_rejects_a_bad_port(cli):
    code, _, err = cli("sandbox", "--port", "70000")
    assert code == 2 and "--port" in err
    code, _, err = cli("sandbox", "--fault-rate", "2")
    assert code == 2 and "rate" in err


def test_one_sandbox_per_data_folder(tmp_path):
    from ftlab.errors import FtlabError

    with Sandbox(tmp_path), pytest.raises(FtlabError, match="already serving"):
        Sandbox(tmp_path).start()
    with Sandbox(tmp_path) as again:  # released on stop
        assert again.url.startswith("http://127.0.0.1:")



# ---------------------------------------------------------------------------------------------
# Real training: the toy model is fine-tuned with LoRA (one job shared by the tests below)
# ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def trained(client, files):
    sp = data.support_splits()
    tr = _upload(client, data.write_jsonl(sp["train"][:240], files["dir"] / "train240.jsonl"))
    va = _upload(client, data.write_jsonl(sp["validation"][:20], files["dir"] / "valid20.jsonl"))
    job = client.fine_tuning.jobs.create(
        model="gpt-4.1-mini", training_file=tr.id, validation_file=va.id, suffix="support", seed=7,
        metadata={"purpose": "test"},
        method={"type": "supervised", "supervised": {"hyperparameters": {"n_epochs": 4, "batch_size": 8}}})
    return _wait(client, job.id), tr


@pytest.mark.slow
def test_job_succeeds_with_openai_shaped_results(client, trained):
    from ftlab.validate import validate_bytes

    job, tr = trained
    assert job.status == "succeeded", job.error
    assert job.fine_tuned_model == f"ft:gpt-4.1-mini-2025-04-14:ftlab-sandbox:support:{job.id[-8:]}"
    assert job.hyperparameters.n_epochs == 4 and job.hyperparameters.batch_size == 8
    assert job.hyperparameters.learning_rate_multiplier == 2.0  # "auto" resolved
    billing = validate_bytes(client.files.content(tr.id).read(), model="gpt-4.1-mini").stats["billing_tokens"]
    assert job.trained_tokens == billing * 4
    assert job.finished_at >= job.created_at and job.estimated_finish is None
    events = list(client.fine_tuning.jobs.list_events(job.id, limit=1000))
    steps = [e for e in events if e.type == "metrics"]
    assert len(steps) == 120 and steps[0].data["step"] == 120 and steps[0].data["total_steps"] == 120
    assert any(e.data.get("valid_loss") is not None for e in steps)
    assert events[0].message == "The job has successfully completed"
    first, last = steps[-1].data["train_loss"], steps[0].data["train_loss"]
    assert last < first / 2, (first, last)


@pytest.mark.slow
def test_checkpoints_one_per_epoch_last_three_kept(client, trained):
    job, _ = trained
    cks = client.fine_tuning.jobs.checkpoints.list(job.id).data
    assert [c.step_number for c in cks] == [120, 90, 60]  # newest first; epoch 1 (step 30) was dropped
    assert [c.fine_tuned_model_checkpoint for c in cks] == [f"{job.fine_tuned_model}:ckpt-step-{n}" for n in (120, 90, 60)]
    assert all(c.id.startswith("ftckpt_") and c.metrics.train_loss is not None for c in cks)
    assert cks[0].metrics.full_valid_loss is not None
    page = client.fine_tuning.jobs.checkpoints.list(job.id, limit=2)
    assert page.has_more and [c.step_number for c in page.data] == [120, 90]


@pytest.mark.slow
def test_result_file_is_base64_step_metrics_csv(client, trained):
    import base64

    from ftlab.sandbox.workflow import final_losses, step_metrics

    job, _ = trained
    meta = client.files.retrieve(job.result_files[0])
    assert meta.purpose == "fine-tune-results" and meta.filename == "step_metrics.csv"
    raw = client.files.content(job.result_files[0]).read()
    text = base64.b64decode(raw).decode()
    assert text.splitlines()[0] == "step,train_loss,train_accuracy,valid_loss,valid_mean_token_accuracy"
    assert len(text.splitlines()) == 121
    rows = step_metrics(client, job)
    assert [r["step"] for r in rows] == list(range(1, 121))
    losses = final_losses(rows)
    assert losses["train_loss"] == rows[-1]["train_loss"] and losses["valid_loss"] is not None


@pytest.mark.slow
def test_fine_tuned_model_shows_the_learned_behaviour(client, trained):
    from ftlab.sandbox.workflow import ask

    job, _ = trained
    held_out = data.support_splits()["test"][:10]
    formatted = {"base": 0, "ft": 0, "intent": 0}
    for ex in held_out:
        base = ask(client, "gpt-4.1-mini", ex["messages"])
        tuned = ask(client, job.fine_tuned_model, ex["messages"])
        formatted["base"] += data.parse_support_reply(base)[0] is not None
        formatted["ft"] += data.parse_support_reply(tuned)[0] is not None
        formatted["intent"] += data.parse_support_reply(tuned)[0] == ex["intent"]
    assert formatted["base"] == 0 and formatted["ft"] >= 9 and formatted["intent"] >= 6, formatted
    ck = client.fine_tuning.jobs.checkpoints.list(job.id).data[-1].fine_tuned_model_checkpoint
    r = client.chat.completions.create(model=ck, messages=held_out[0]["messages"][:2], temperature=0)
    assert r.model == ck and r.choices[0].message.content
    assert job.fine_tuned_model in [m.id for m in client.models.list()]


@pytest.mark.slow
def test_cancel_a_running_job(client, files, trained):
    up = _upload(client, files["train"])
    job = client.fine_tuning.jobs.create(model="gpt-4.1-mini", training_file=up.id,
                                         hyperparameters={"n_epochs": 20, "batch_size": 1})
    wait_until(lambda: any(e.type == "metrics" for e in client.fine_tuning.jobs.list_events(job.id).data),
               timeout=300, what="the job starting to train")
    assert client.fine_tuning.jobs.retrieve(job.id).status == "running"
    assert client.fine_tuning.jobs.cancel(job.id).status == "cancelled"
    time.sleep(2)  # the runner stops at the next step
    done = client.fine_tuning.jobs.retrieve(job.id)
    assert done.status == "cancelled" and done.fine_tuned_model is None and done.trained_tokens is None
    n = len(list(client.fine_tuning.jobs.list_events(job.id, limit=1000)))
    time.sleep(1)
    assert len(list(client.fine_tuning.jobs.list_events(job.id, limit=1000))) == n  # training really stopped
    assert client.fine_tuning.jobs.checkpoints.list(job.id).data == []


@pytest.mark.slow
def test_job_running_at_kill_time_fails_clearly_after_restart(tmp_path, files):
    sp = SandboxProcess(tmp_path).start()
    try:
        c = _client(sp.url)
        up = _upload(c, files["train"])
        job = c.fine_tuning.jobs.create(model="gpt-4.1-mini", training_file=up.id, hyperparameters={"n_epochs": 20})
        deadline = time.time() + 300
        while c.fine_tuning.jobs.retrieve(job.id).status != "running":
            assert time.time() < deadline
            time.sleep(0.2)
    finally:
        sp.proc.send_signal(signal.SIGKILL)
        sp.proc.wait()
    with SandboxProcess(tmp_path) as sp2:
        c = _client(sp2.url)
        job = c.fine_tuning.jobs.retrieve(job.id)
        assert job.status == "failed" and job.error.code == "sandbox_restarted"
        assert "Create the job again" in job.error.message
        assert c.files.retrieve(up.id).id == up.id


def test_sandbox_process_exits_with_its_parent(tmp_path):
    """A launcher that dies (e.g. a crashed notebook kernel) leaves no sandbox behind."""
    import subprocess
    import sys

    code = ("from ftlab.sandbox import SandboxProcess; import os, sys; "
            f"sp = SandboxProcess({str(tmp_path)!r}).start(); print(sp.proc.pid, flush=True); os._exit(0)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    pid = int(out.stdout.split()[0])
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.2)
    else:
        os.kill(pid, signal.SIGKILL)
        raise AssertionError("the sandbox outlived its launcher")


# ---------------------------------------------------------------------------------------
# The wind-down emulation (--as-of / --org-status) and the Azure OpenAI shape of the same API
# ---------------------------------------------------------------------------------------
def test_wind_down_refuses_job_creation_in_the_api_error_shape(tmp_path, files):
    with Sandbox(tmp_path / "new", as_of="2026-12-02", org_status="new") as s:
        c = _client(s.url)
        bad = _upload(c, files["malformed"])  # a file the job would reject: allowed jobs end at validation
        with pytest.raises(openai.PermissionDeniedError) as e:
            c.fine_tuning.jobs.create(model="gpt-4.1-mini", training_file=bad.id)
        assert e.value.status_code == 403
        assert set(e.value.body) == {"message", "type", "param", "code"}
        assert e.value.body["code"] == "fine_tuning_unavailable" and e.value.body["param"] == "model"
        assert "2026-05-07" in e.value.body["message"] and "azure-openai-gpt-4.1-mini" in e.value.body["message"]
        with pytest.raises(openai.NotFoundError) as e:  # retired base model (2026-10-23)
            c.fine_tuning.jobs.create(model="gpt-4.1-nano-2025-04-14", training_file=bad.id)
        assert e.value.body["code"] == "model_not_found" and "2026-10-23" in e.value.body["message"]
        assert c.fine_tuning.jobs.list().data == []  # nothing was created
        # The Azure OpenAI routes of the same sandbox are not gated: same SDK, AzureOpenAI client.
        az = s.azure_client(max_retries=0)
        up = _upload(az, files["malformed"])
        job = az.fine_tuning.jobs.create(model="gpt-4.1-mini", training_file=up.id)
        assert job.id.startswith("ftjob-") and job.model.startswith("gpt-4.1-mini")
        assert [j.id for j in c.fine_tuning.jobs.list().data] == [job.id]  # one store behind both shapes
        assert _wait(az, job.id).status == "failed"
        assert {m.id for m in az.models.list()} == {m.id for m in c.models.list()}


def test_wind_down_follows_the_date_and_the_organisation(tmp_path, files):
    with Sandbox(tmp_path / "active", as_of="2026-12-02", org_status="active") as s:
        c = _client(s.url)
        job = c.fine_tuning.jobs.create(model="gpt-4.1-mini", training_file=_upload(c, files["malformed"]).id)
        assert _wait(c, job.id).status == "failed"  # created (then refused by validation, not by the date)
    with Sandbox(tmp_path / "later", as_of="2027-01-06", org_status="active") as s:
        c = _client(s.url)
        with pytest.raises(openai.PermissionDeniedError, match="closed to everyone on 2027-01-06"):
            c.fine_tuning.jobs.create(model="gpt-4.1-mini", training_file=_upload(c, files["malformed"]).id)


def test_azure_routes_need_an_api_version(sbx):
    req = urllib.request.Request(sbx.url.removesuffix("/v1") + "/openai/models", headers={"api-key": "k" * 10})
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(req, timeout=10)
    assert e.value.code == 404 and "api-version" in json.loads(e.value.read())["error"]["message"]
    req = urllib.request.Request(sbx.url.removesuffix("/v1") + "/openai/models?api-version=2025-04-01-preview",
                                 headers={"api-key": "k" * 10})
    with urllib.request.urlopen(req, timeout=10) as r:
        assert json.loads(r.read())["object"] == "list"


def test_cli_as_of_org_status(tmp_path, files):
    import subprocess
    import sys

    url_file = tmp_path / "url"
    proc = subprocess.Popen([sys.executable, "-m", "ftlab", "sandbox", "--port", "0", "--data-dir", str(tmp_path / "d"),
                             "--url-file", str(url_file), "--as-of", "2026-12-02", "--org-status", "inactive"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.time() + 120
        while not (url_file.exists() and url_file.read_text().strip()) and time.time() < deadline:
            assert proc.poll() is None, proc.stdout.read()
            time.sleep(0.2)
        c = _client(url_file.read_text().strip())
        with pytest.raises(openai.PermissionDeniedError) as e:
            c.fine_tuning.jobs.create(model="gpt-4.1", training_file=_upload(c, files["malformed"]).id)
        assert "2026-07-02" in e.value.body["message"]
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
    assert "emulating OpenAI's fine-tuning wind-down on 2026-12-02" in out
    bad = subprocess.run([sys.executable, "-m", "ftlab", "sandbox", "--as-of", "2026-02-30", "--port", "0",
                          "--data-dir", str(tmp_path / "e")], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "--as-of '2026-02-30' is not a date" in bad.stderr and "Traceback" not in bad.stderr


@pytest.mark.slow
def test_run_job_does_the_lifecycle_and_picks_the_job_up_again(sbx, tmp_path):
    """``workflow.run_job`` (notebook 05): upload, start, wait and save the step metrics as served; the same
    request again returns the same finished job instead of paying for a second one."""
    import base64

    from ftlab.sandbox import workflow as wf

    files = wf.write_job_files(tmp_path, 16, 10, seed=3)
    client = sbx.client()
    job = wf.run_job(client, files, model="gpt-4.1-mini", hyperparameters={"n_epochs": 1, "batch_size": 8}, seed=3,
                     result_csv=tmp_path / "metrics.csv")
    assert job.status == "succeeded", job.error
    rows = base64.b64decode((tmp_path / "metrics.csv").read_bytes()).decode().splitlines()  # base64, as OpenAI serves it
    assert rows[0].startswith("step,train_loss") and len(rows) == 1 + 2  # 16 rows / batch 8, one epoch
    again = wf.run_job(client, files, model="gpt-4.1-mini", hyperparameters={"n_epochs": 1, "batch_size": 8}, seed=3)
    assert again.id == job.id
