"""Fault injection: the whole OpenAI workflow (upload → job → poll → completion → the fine-tuned model)
through the real ``openai`` SDK completes while the sandbox answers 429, 500 or slowly at a set rate,
and every retry the SDK makes is visible in its logs."""

from __future__ import annotations

import logging
import re
from collections import Counter

import pytest

from ftlab import data
from ftlab.sandbox import Faults, Sandbox
from ftlab.sandbox import workflow as wf

RATE = 0.3


@pytest.mark.slow  # a real (small) LoRA job on the toy model, with backoffs: ~30-60 s on the 2-core CPU
def test_full_workflow_completes_under_injected_faults_with_retries_in_the_logs(tmp_path, caplog):
    sp = data.support_splits()
    train = data.write_jsonl(sp["train"][:20], tmp_path / "train.jsonl")
    valid = data.write_jsonl(sp["validation"][:10], tmp_path / "valid.jsonl")
    # The draws are seeded per route, so they do not depend on how often the job was polled. Seed 174: a slow
    # first upload, a 429 on the second, a 429 on the job creation and on the first poll, and two 500s in a row
    # on the chat completion (the SDK's second retry gets through).
    faults = Faults(rate=RATE, seed=174, slow_s=0.2)
    caplog.set_level(logging.INFO, logger="openai")
    caplog.set_level(logging.INFO, logger="httpx2")
    with Sandbox(tmp_path / "sbx", faults=faults) as sbx:
        client = sbx.client(max_retries=2)  # the SDK's default
        tr, va = wf.upload(client, train), wf.upload(client, valid)
        job = client.fine_tuning.jobs.create(
            model="gpt-4.1-mini", training_file=tr.id, validation_file=va.id, suffix="faults", seed=1,
            method={"type": "supervised", "supervised": {"hyperparameters": {"n_epochs": 1, "batch_size": 4}}})
        job = wf.wait_for_job(client, job.id, poll_s=0.5, progress=False, show=None, timeout_s=600)
        assert job.status == "succeeded", job.error
        rows = wf.step_metrics(client, job)
        assert [r["step"] for r in rows] == [1, 2, 3, 4, 5]
        reply = wf.ask(client, job.fine_tuned_model, sp["test"][0]["messages"][:2])
        assert reply
        # nothing was duplicated by a retried POST
        assert sorted(f.purpose for f in client.files.list()) == ["fine-tune", "fine-tune", "fine-tune-results"]
        assert [j.id for j in client.fine_tuning.jobs.list()] == [job.id]
        secret = client.api_key

    kinds = Counter(k for k, _, _ in faults.injected)
    assert set(kinds) == {"429", "500", "slow"}, kinds
    failed = {(m, re.sub(r"(file|ftjob)-\w+", "{id}", p)) for k, m, p in faults.injected if k != "slow"}
    assert {("POST", "/files"), ("POST", "/fine_tuning/jobs"), ("GET", "/fine_tuning/jobs/{id}")} <= failed, failed

    retries = [r for r in caplog.records if r.name == "openai._base_client" and r.getMessage().startswith("Retrying")]
    assert len(retries) == kinds["429"] + kinds["500"], (len(retries), kinds)  # one retry per failed request
    statuses = Counter(re.search(r'"HTTP/1.1 (\d{3})', r.getMessage()).group(1)
                       for r in caplog.records if r.name == "httpx2" and "HTTP Request" in r.getMessage())
    assert statuses["429"] == kinds["429"] and statuses["500"] == kinds["500"], (statuses, kinds)
    assert secret not in caplog.text


def test_fault_draws_are_per_route_so_polling_does_not_shift_them():
    quiet, busy = Faults(rate=0.3, seed=174), Faults(rate=0.3, seed=174)
    for _ in range(3):
        quiet.draw("POST", "/files")
    busy.draw("POST", "/files")
    for _ in range(17):  # a slower job is polled more often; the other routes' draws must not move
        busy.draw("GET", "/fine_tuning/jobs/ftjob-abc")
    busy.draw("POST", "/files")
    busy.draw("POST", "/files")
    files = [(k, m, p) for k, m, p in busy.injected if p == "/files"]
    assert files == quiet.injected and files  # the same faults on the same uploads
    assert Faults.route("GET", "/fine_tuning/jobs/ftjob-x1/events") == "GET /fine_tuning/jobs/{id}/events"
    assert Faults.route("GET", "/models/ft:gpt-4.1-mini:org:s:abc") == "GET /models/{id}"


def test_faults_cap_consecutive_failures_per_route():
    f = Faults(rate=1.0, kinds=("500",), max_consecutive=2)
    assert [f.draw("POST", "/chat/completions") for _ in range(3)] == ["500", "500", None]
    with pytest.raises(ValueError, match="kinds"):
        Faults(rate=0.1, kinds=("503",))


@pytest.mark.slow  # a real (small) LoRA job on the toy model: ~30-60 s on the 2-core CPU
def test_faults_past_the_retries_name_the_request_keep_the_work_and_a_rerun_picks_it_up(tmp_path):
    """A 500 streak longer than the SDK's 2 retries: notebook 03's cells stop with one line naming the request and
    the tries; the files and the job stay on the server, and running the cells again reuses them."""
    sp = data.support_splits()
    train = data.write_jsonl(sp["train"][:20], tmp_path / "train.jsonl")
    valid = data.write_jsonl(sp["validation"][:10], tmp_path / "valid.jsonl")
    faults = Faults(rate=0.0, kinds=("500",), max_consecutive=100)
    shown: list[str] = []

    def upload_and_create(client):  # notebook 03's upload + job cell
        tr, va = wf.upload(client, train), wf.upload(client, valid)
        return tr, va, wf.start_job(client, model="gpt-4.1-mini", training_file=tr.id, validation_file=va.id,
                                    suffix="past", seed=1, show=shown.append, method={
                                        "type": "supervised", "supervised": {"hyperparameters": {"n_epochs": 1}}})

    with Sandbox(tmp_path / "sbx", faults=faults) as sbx:
        client = sbx.client(max_retries=2)  # the SDK's default
        # 1. The uploads get through; job creation meets 500s past the retries.
        faults.rate, faults.only = 1.0, ("POST /fine_tuning/jobs",)
        with pytest.raises(wf.RequestFailed) as err:
            upload_and_create(client)
        msg = str(err.value)
        assert err.value.request.startswith("POST /fine_tuning/jobs") and err.value.tries == 3 and err.value.status == 500
        assert msg.startswith("POST /fine_tuning/jobs (model gpt-4.1-mini, training file file-") and "\n" not in msg
        assert "failed 3 times in a row (HTTP 500" in msg and "2 retries ran out" in msg and "run the cell again" in msg
        assert len(faults.injected) == 3  # the first try and both retries, nothing more
        faults.rate = 0.0
        uploaded = sorted(f.id for f in client.files.list(purpose="fine-tune"))
        assert len(uploaded) == 2 and not client.fine_tuning.jobs.list().data  # files kept, no job half-made
        # 2. Run the cell again: the same files, reused by content; now the job is created.
        tr, va, job = upload_and_create(client)
        assert sorted([tr.id, va.id]) == uploaded and not shown
        # 3. Polling meets 500s past the retries: the message names the job and how to pick it up.
        faults.rate, faults.only = 1.0, ("GET /fine_tuning/jobs/{id}",)
        with pytest.raises(wf.RequestFailed, match=rf"^GET /fine_tuning/jobs/{job.id} failed 3 times in a row "
                                                   rf".*wf\.wait_for_job\(client, '{job.id}'\) picks it up"):
            wf.wait_for_job(client, job.id, poll_s=0.2, progress=False, show=None)
        faults.rate = 0.0
        # 4. Run both cells again: no new upload, no second job; the job is picked up and finishes.
        tr2, va2, again = upload_and_create(client)
        assert (tr2.id, va2.id, again.id) == (tr.id, va.id, job.id)
        assert shown and shown[-1].startswith(f"picking up job {job.id}")
        done = wf.wait_for_job(client, again.id, poll_s=0.5, progress=False, show=None, timeout_s=600)
        assert done.status == "succeeded", done.error
        assert [j.id for j in client.fine_tuning.jobs.list()] == [job.id]
        assert sorted(f.purpose for f in client.files.list()) == ["fine-tune", "fine-tune", "fine-tune-results"]


def test_job_key_is_stable_and_tells_requests_apart():
    assert wf.job_key(model="m", training_file="file-a") == wf.job_key(training_file="file-a", model="m")
    assert wf.job_key(model="m", training_file="file-a") != wf.job_key(model="m", training_file="file-b")
    assert wf.job_key(model="m", training_file="f", seed=1) != wf.job_key(model="m", training_file="f", seed=2)
