"""The sandbox's DPO jobs, through the real openai SDK over HTTP: validated with the preference validator,
trained with TRL's DPOTrainer, with events, metrics and a usable model; reinforcement is refused in the
API's error shape."""

from __future__ import annotations

import json

import openai
import pytest

from ftlab import preference as pref
from ftlab.sandbox import Sandbox
from ftlab.sandbox.workflow import wait_for_job


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    with Sandbox(tmp_path_factory.mktemp("sbx-dpo")) as s:
        yield s.client()


def _upload(client, tmp_path, rows):
    path = tmp_path / "prefs.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return client.files.create(file=path.open("rb"), purpose="fine-tune")


@pytest.mark.timeout(900)
def test_dpo_job_trains_with_beta_and_reports_metrics(client, tmp_path):
    rows = [pref.to_openai_dpo(p) for p in pref.preference_pairs()["train"][:32]]
    f = _upload(client, tmp_path, rows)
    job = client.fine_tuning.jobs.create(model="gpt-4.1-mini", training_file=f.id, seed=1,
                                         method={"type": "dpo", "dpo": {"hyperparameters": {"beta": 0.25, "n_epochs": 1}}})
    assert job.method.type == "dpo" and job.method.dpo.hyperparameters.beta == 0.25
    job = wait_for_job(client, job.id, poll_s=0.5, progress=False, show=None)
    assert job.status == "succeeded", job.error
    assert job.method.dpo.hyperparameters.batch_size >= 1 and job.trained_tokens > 0
    events = client.fine_tuning.jobs.list_events(job.id, limit=100).data
    steps = [e for e in events if e.type == "metrics"]
    assert steps and all("train_loss" in e.data for e in steps)
    assert any("rewards_margins" in e.data for e in steps)  # DPO's own metric, from TRL's logs
    reply = client.chat.completions.create(model=job.fine_tuned_model,
                                           messages=rows[0]["input"]["messages"], max_tokens=20)
    assert isinstance(reply.choices[0].message.content, str)


def test_dpo_job_fails_on_a_file_in_the_sft_format(client, tmp_path):
    rows = [{"messages": [{"role": "user", "content": f"hi {i}"}, {"role": "assistant", "content": "hello"}]}
            for i in range(12)]
    f = _upload(client, tmp_path, rows)
    job = client.fine_tuning.jobs.create(model="gpt-4.1-mini", training_file=f.id, method={"type": "dpo"})
    job = wait_for_job(client, job.id, poll_s=0.2, progress=False, show=None)
    assert job.status == "failed" and job.error.code == "invalid_training_file"
    assert "missing_input" in job.error.message and "Line 1" in job.error.message


def test_dpo_hyperparameters_are_checked(client, tmp_path):
    f = _upload(client, tmp_path, [pref.to_openai_dpo(p) for p in pref.preference_pairs()["train"][:12]])
    with pytest.raises(openai.BadRequestError) as exc:
        client.fine_tuning.jobs.create(model="gpt-4.1-mini", training_file=f.id,
                                       method={"type": "dpo", "dpo": {"hyperparameters": {"beta": -1}}})
    assert exc.value.body["param"] == "hyperparameters.beta"
    with pytest.raises(openai.BadRequestError) as exc:  # beta belongs to DPO, not to supervised
        client.fine_tuning.jobs.create(model="gpt-4.1-mini", training_file=f.id,
                                       method={"type": "supervised", "supervised": {"hyperparameters": {"beta": 0.1}}})
    assert "beta" in exc.value.body["message"]


def test_reinforcement_gets_the_apis_error_shape(client, tmp_path):
    f = _upload(client, tmp_path, [pref.to_openai_dpo(p) for p in pref.preference_pairs()["train"][:12]])
    with pytest.raises(openai.BadRequestError) as exc:
        client.fine_tuning.jobs.create(model="o4-mini", training_file=f.id, method={"type": "reinforcement"})
    assert exc.value.status_code == 400
    assert set(exc.value.body) >= {"message", "type", "param", "code"}
    assert exc.value.body["type"] == "invalid_request_error" and exc.value.body["param"] == "method.type"
