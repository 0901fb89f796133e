"""Kill the sandbox server (SIGKILL) in the middle of a job and restart it on the same data folder.

No uploaded file or job is lost: the job that was training is marked failed with a clear error (its
events kept, the failure listed newest), the job waiting behind it resumes and succeeds, and what a
finished job produced (its ``ft:`` model, checkpoints, result file) survives another kill.
"""

from __future__ import annotations

import signal

import openai
import pytest

from ftlab import data
from ftlab.sandbox import SandboxProcess
from ftlab.sandbox import workflow as wf
from tests.helpers import wait_until


def _client(url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=url, api_key="sk-test-not-secret", max_retries=0, _strict_response_validation=True)


def _kill(sp: SandboxProcess) -> None:
    sp.proc.send_signal(signal.SIGKILL)
    sp.proc.wait()
    sp.proc = None


def _state(c: openai.OpenAI, job_ids: list[str]) -> dict:
    return {"files": {f.id: (f, c.files.content(f.id).read()) for f in c.files.list()},
            "jobs": {j: c.fine_tuning.jobs.retrieve(j) for j in job_ids},
            "events": {j: list(c.fine_tuning.jobs.list_events(j, limit=1000)) for j in job_ids}}


@pytest.mark.slow  # three sandbox processes and a real (small) LoRA job: ~1-2 min on the 2-core CPU
def test_sigkill_mid_job_then_restart_loses_no_file_or_job(tmp_path):
    sp = data.support_splits()
    paths = {"long": data.write_jsonl(sp["train"], tmp_path / "long.jsonl"),
             "small": data.write_jsonl(sp["train"][:20], tmp_path / "small.jsonl"),
             "valid": data.write_jsonl(sp["validation"][:10], tmp_path / "valid.jsonl"),
             "late": data.write_jsonl(sp["train"][20:40], tmp_path / "late.jsonl")}
    home = tmp_path / "sbx"

    first = SandboxProcess(home).start()
    try:
        c = _client(first.url)
        up = {k: wf.upload(c, p) for k, p in paths.items() if k != "late"}
        running = c.fine_tuning.jobs.create(model="gpt-4.1-mini", training_file=up["long"].id,
                                            hyperparameters={"n_epochs": 20})
        waiting = c.fine_tuning.jobs.create(
            model="gpt-4.1-mini", training_file=up["small"].id, validation_file=up["valid"].id, suffix="after-kill",
            method={"type": "supervised", "supervised": {"hyperparameters": {"n_epochs": 1, "batch_size": 4}}})
        wait_until(lambda: any(e.type == "metrics" for e in c.fine_tuning.jobs.list_events(running.id).data),
                   timeout=300, what="the first job starting to train")
        up["late"] = wf.upload(c, paths["late"])  # acknowledged just before the kill
        before = _state(c, [running.id, waiting.id])
        assert before["jobs"][running.id].status == "running"
        assert before["jobs"][waiting.id].status == "validating_files"  # jobs run one at a time
    finally:
        _kill(first)

    with SandboxProcess(home) as second:
        c = _client(second.url)
        after = _state(c, [running.id, waiting.id])
        # every acknowledged upload is there, byte for byte
        assert {k: (f.model_dump(), b) for k, (f, b) in after["files"].items()} == \
               {k: (f.model_dump(), b) for k, (f, b) in before["files"].items()}
        assert {f.id for f in up.values()} == set(after["files"])
        # the job that was training is failed with a clear error; none of its history is lost
        failed = after["jobs"][running.id]
        assert failed.status == "failed" and failed.error.code == "sandbox_restarted"
        assert "Create the job again with the same files" in failed.error.message and failed.finished_at
        events = after["events"][running.id]
        assert events[0].level == "error" and "sandbox stopped while this job was running" in events[0].message
        old = before["events"][running.id]  # (training went on for a moment after this snapshot)
        assert events[-len(old):] == old and all(e.type == "metrics" for e in events[1:-len(old)])
        # the job waiting behind it resumes and completes
        done = wf.wait_for_job(c, waiting.id, poll_s=0.5, progress=False, show=None, timeout_s=600)
        assert done.status == "succeeded", done.error
        assert [e.message for e in c.fine_tuning.jobs.list_events(waiting.id, limit=1000)][-1] == \
               before["events"][waiting.id][-1].message
        answer = wf.ask(c, done.fine_tuned_model, sp["test"][0]["messages"][:2])
        finished = _state(c, [running.id, waiting.id])
        checkpoints = c.fine_tuning.jobs.checkpoints.list(waiting.id).data
        assert checkpoints and done.result_files
        second.stop()  # (a graceful stop; then one more SIGKILL below, on an idle sandbox)

    third = SandboxProcess(home).start()
    try:
        c = _client(third.url)
        _kill(third)
        third.start()
        c = _client(third.url)
        again = _state(c, [running.id, waiting.id])
        assert again["jobs"] == finished["jobs"] and again["events"] == finished["events"]
        assert {k: b for k, (_, b) in again["files"].items()} == {k: b for k, (_, b) in finished["files"].items()}
        assert c.fine_tuning.jobs.checkpoints.list(waiting.id).data == checkpoints
        assert wf.ask(c, done.fine_tuned_model, sp["test"][0]["messages"][:2]) == answer
    finally:
        third.stop()


def test_store_events_keep_their_order_after_a_restart_and_a_torn_write(tmp_path):
    """Unit level: the event counter survives a reload, and a line cut short by a kill swallows no later event."""
    from ftlab.sandbox.store import Store

    s = Store(tmp_path)
    for msg in ("created", "step 1", "step 2"):
        s.add_event("ftjob-x", msg)
    s.close()
    with (tmp_path / "jobs" / "ftjob-x" / "events.jsonl").open("ab") as f:
        f.write(b'{"id": "ftevent-torn", "object": "fine_tun')  # SIGKILL mid-write
    s = Store(tmp_path)
    s.add_event("ftjob-x", "failed after restart", level="error")
    assert [e["message"] for e in s.events("ftjob-x")] == ["failed after restart", "step 2", "step 1", "created"]
    s.close()
